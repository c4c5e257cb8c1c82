"""arm64 hosts: a guest is tied to its host's CPU implementation before any feature counts.

KVM/arm64 shows a guest the MIDR_EL1, REVIDR_EL1 and AIDR_EL1 of the host and, by default, treats
them as invariant: a guest cannot move between hosts of different implementations, whatever their
Features. So on arm64 the implementations (implementer, part, variant, revision, as /proc/cpuinfo
prints them) are compared first, and only hosts of one implementation are compared feature by
feature. Names of implementers and parts come from ``data/arm64_parts.json``, transcribed from the
kernel's ``arch/arm64/include/asm/cputype.h`` (its source and version are recorded there).

Pure functions on parsed /proc/cpuinfo; the sources of every statement about KVM are in ``KVM``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from importlib import resources

from audit.cpu.models import Verdict
from audit.parsers.cpuinfo import CpuInfo, Midr
from audit.record import Record

#: What hostaudit says about KVM on arm64, each with where it comes from.
KVM = {
    "invariant": (
        "KVM/arm64 shows a guest its host's MIDR_EL1, REVIDR_EL1 and AIDR_EL1 and, by default, treats "
        "them as invariant (Linux Documentation/virt/kvm/api.rst, KVM_CAP_ARM_WRITABLE_IMP_ID_REGS: 'By "
        "default, these registers are visible to userspace but treated as invariant')"),
    "writable": (
        "from Linux 6.15 a VMM may set MIDR_EL1, REVIDR_EL1 and AIDR_EL1 for a VM before it first runs "
        "(KVM_CAP_ARM_WRITABLE_IMP_ID_REGS, commit 3adaee78306148da5df5d3d655e9a90bf18e9513 'KVM: arm64: "
        "Allow userspace to change the implementation ID registers', merged with 'KVM/arm64 updates for "
        "6.15'), and 6.15 also gives a guest a paravirtual list of the implementations it may run on, for "
        "its errata workarounds; cross-implementation migration needs both hosts on such a kernel and a "
        "VMM that uses them, which /proc/cpuinfo cannot show: hostaudit does not count it as compatible"),
    "big_little": (
        "KVM shows each vCPU the MIDR_EL1 of the physical CPU it runs on, which changes when the vCPU "
        "moves between the clusters of a big.LITTLE host (commit 3adaee78306148da5df5d3d655e9a90bf18e9513)"),
    "feature_regs": (
        "the guest's feature ID registers are its host's too; Linux 6.7 generalised userspace writes to them "
        "('KVM/arm64 updates for 6.7': writable ID registers, to opt a guest out of features), but which "
        "fields may be lowered depends on the kernel release (KVM_ARM_GET_REG_WRITABLE_MASKS on B tells)"),
    "revidr": (
        "REVIDR_EL1 and AIDR_EL1 are not in /proc/cpuinfo: compare "
        "/sys/devices/system/cpu/cpu*/regs/identification/revidr_el1 (and aidr_el1 where the kernel has it) "
        "on both hosts"),
    "no_models": (
        "KVM on arm64 has no named CPU models: QEMU gives a KVM guest -cpu host (libvirt host-passthrough), "
        "which ties it to the host's implementation; hostaudit's model table is libvirt's x86 CPU map"),
}

#: arm64 hwcaps that describe the host kernel, not the CPU (Linux Documentation/arch/arm64/elf_hwcaps.rst):
#: left out of every comparison.
KERNEL_ONLY = {
    "evtstrm": "HWCAP_EVTSTRM: the kernel set the generic timer to generate an event stream",
    "cpuid": "HWCAP_CPUID: the kernel emulates EL0 reads of ID registers",
}

_ARM_ARCHES = ("arm64", "arm")


def is_arm(cpu: CpuInfo) -> bool:
    return cpu.arch in _ARM_ARCHES or bool(cpu.midrs)


@functools.cache
def load_parts() -> Mapping:
    """The implementer and part names (data/arm64_parts.json), read once."""
    text = resources.files("audit.cpu").joinpath("data", "arm64_parts.json").read_text(encoding="utf-8")
    return json.loads(text)


def _hex(value: int | None, width: int) -> str:
    return "?" if value is None else f"0x{value:0{width}x}"


def implementer_name(code: int | None) -> str | None:
    entry = load_parts()["implementers"].get(_hex(code, 2))
    return str(entry["name"]) if entry else None


def part_name(implementer: int | None, part: int | None) -> str | None:
    entry = load_parts()["parts"].get(_hex(implementer, 2), {}).get(_hex(part, 3))
    return str(entry["name"]) if entry else None


def describe(m: Midr) -> str:
    """'Arm Neoverse N1 r3p1 (0x41/0xd0c)'; ids the kernel's table does not name stay numbers."""
    who = implementer_name(m.implementer) or f"implementer {_hex(m.implementer, 2)}"
    what = part_name(m.implementer, m.part) or f"part {_hex(m.part, 3)}"
    r = "?" if m.variant is None else m.variant
    p = "?" if m.revision is None else m.revision
    return f"{who} {what} r{r}p{p} ({_hex(m.implementer, 2)}/{_hex(m.part, 3)})"


def implementations(cpu: CpuInfo) -> tuple[Midr, ...]:
    """The host's distinct implementations, in order of first appearance."""
    return tuple(m for m, _ in cpu.implementations)


def implementation_docs(cpu: CpuInfo) -> list[dict]:
    """JSON for each implementation: the MIDR fields, name, label and how many processors."""
    return [{"implementer": m.implementer, "part": m.part, "variant": m.variant, "revision": m.revision,
             "name": describe(m), "label": m.label, "processors": n} for m, n in cpu.implementations]


def features(cpu: CpuInfo) -> frozenset[str]:
    """The Features every processor shows, less the hwcaps that describe the kernel."""
    return frozenset(f for f in cpu.flags if f not in KERNEL_ONLY)


def implementations_text(impls: Iterable[Midr]) -> str:
    shown = [describe(m) for m in impls]
    return " + ".join(shown) if shown else "implementation not shown (no 'CPU implementer' lines)"


class Comparison(Record):
    verdict: Verdict
    same_implementation: bool
    missing: tuple[str, ...]  # Features A has and B lacks
    extra: tuple[str, ...]  # Features B has and A lacks
    headline: str  # the verdict in one line, what it rests on first
    recommendation: str
    notes: tuple[str, ...] = ()


def compare(a: CpuInfo, b: CpuInfo, *, b_kernel: str | None = None) -> Comparison:
    """Can a guest started on arm64 host A move to arm64 host B?

    Different implementations (or one not shown): incompatible, before any Feature is looked at.
    The same implementations and the same Features: identical (host-passthrough both ways). The
    same implementations with different Features: incompatible where B lacks one, else undecided:
    KVM shows the guest its host's feature ID registers, and whether B's KVM lets the VMM present
    A's values depends on B's kernel.
    """
    ia, ib = implementations(a), implementations(b)
    fa, fb = features(a), features(b)
    missing, extra = tuple(sorted(fa - fb)), tuple(sorted(fb - fa))
    notes: list[str] = []
    several = [side for side, impls in (("A", ia), ("B", ib)) if len(impls) > 1]
    if several:
        who = " and ".join(several)
        notes.append(f"{who} {'have' if len(several) > 1 else 'has'} several implementations (big.LITTLE): "
                     f"{KVM['big_little']}")
    same = bool(ia) and set(ia) == set(ib)
    if not same:
        if not ia or not ib:
            why = "the CPU implementation of " + ("A" if not ia else "B") + " is not shown in its /proc/cpuinfo"
        else:
            why = "different CPU implementations"
        headline = (f"incompatible: {why} (A: {implementations_text(ia)}; B: {implementations_text(ib)}); "
                    "a guest cannot move between CPU implementations, whatever their Features")
        notes[:0] = [KVM["invariant"], KVM["writable"]]
        if b_kernel:
            notes.append(f"B runs Linux {b_kernel}")
        rec = ("Do not live-migrate between these hosts: a running guest sees its host's MIDR_EL1, REVIDR_EL1 "
               "and AIDR_EL1 (and chose its errata workarounds for them). Shut the guest down and start it on B "
               "(cold migration), or keep pools to one CPU implementation.")
        return Comparison(verdict=Verdict.INCOMPATIBLE, same_implementation=False, missing=missing, extra=extra,
                          headline=headline, recommendation=rec, notes=tuple(notes))
    what = implementations_text(ia)
    if not missing and not extra:
        headline = (f"identical: the same CPU implementation ({what}) and the same Features; guests can move both "
                    "ways with host-passthrough (-cpu host)")
        notes += [KVM["revidr"], KVM["no_models"]]
        rec = (f"Same CPU implementation ({what}) and Features: host-passthrough (QEMU -cpu host) is the CPU to use, "
               "and migratable both ways if REVIDR_EL1 matches too (see the notes).")
        return Comparison(verdict=Verdict.IDENTICAL, same_implementation=True, missing=(), extra=(),
                          headline=headline, recommendation=rec, notes=tuple(notes))
    notes += [KVM["feature_regs"], KVM["revidr"]]
    if missing:
        headline = (f"incompatible: the same CPU implementation ({what}), but B lacks Features a guest on A may "
                    "use")
        rec = (f"B lacks {len(missing)} Feature(s) a guest on A may use ({', '.join(missing[:8])}"
               f"{', ...' if len(missing) > 8 else ''}): do not live-migrate guests from A to B.")
        return Comparison(verdict=Verdict.INCOMPATIBLE, same_implementation=True, missing=missing, extra=extra,
                          headline=headline, recommendation=rec, notes=tuple(notes))
    headline = (f"undecided: the same CPU implementation ({what}) and B has every Feature of A, but KVM shows a "
                "guest its host's feature ID registers: whether B can present A's depends on B's kernel")
    rec = ("A guest could move from A to B only where B's KVM lets the VMM lower B's feature ID registers to A's "
           f"values{f' (B runs Linux {b_kernel})' if b_kernel else ' (the kernel of B is not known here)'}; "
           "check before relying on it.")
    return Comparison(verdict=Verdict.UNDECIDED, same_implementation=True, missing=(), extra=extra,
                      headline=headline, recommendation=rec, notes=tuple(notes))


class Baseline(Record):
    features: frozenset[str]  # Features every host shows (kernel-only hwcaps left out)
    lost: Mapping[str, tuple[str, ...]]  # host name -> Features a guest there loses against the pool
    same_implementation: bool
    passthrough: bool  # one implementation, the same Features everywhere: host-passthrough fits the pool
    headline: str
    notes: tuple[str, ...] = ()


def baseline(hosts: Mapping[str, CpuInfo]) -> Baseline:
    """What an arm64 pool can give a guest. There is no named model to fall back on: either every
    host is the same implementation with the same Features (host-passthrough fits the pool), or
    the pool has no common CPU."""
    if not hosts:
        raise ValueError("baseline needs at least one host")
    impls = {name: implementations(c) for name, c in hosts.items()}
    feats = {name: features(c) for name, c in hosts.items()}
    shared = frozenset.intersection(*feats.values())
    lost = {name: tuple(sorted(f - shared)) for name, f in feats.items()}
    first = next(iter(impls.values()))
    same = bool(first) and all(set(i) == set(first) for i in impls.values())
    notes: list[str] = []
    if any(len(i) > 1 for i in impls.values()):
        notes.append(f"big.LITTLE hosts: {KVM['big_little']}")
    if not same:
        listed = "; ".join(f"{name}: {implementations_text(i)}" for name, i in impls.items())
        headline = (f"no common CPU: the hosts are different CPU implementations ({listed}); a guest cannot move "
                    "between CPU implementations, whatever their Features")
        notes[:0] = [KVM["invariant"], KVM["writable"]]
        return Baseline(features=shared, lost=lost, same_implementation=False, passthrough=False,
                        headline=headline, notes=tuple(notes))
    what = implementations_text(first)
    if any(lost.values()):
        headline = (f"no common CPU: every host is {what}, but their Features differ; host-passthrough would show "
                    "each guest its own host's Features")
        notes += [KVM["feature_regs"], KVM["no_models"]]
        return Baseline(features=shared, lost=lost, same_implementation=True, passthrough=False,
                        headline=headline, notes=tuple(notes))
    headline = (f"host-passthrough: every host is {what} with the same Features; QEMU -cpu host (libvirt "
                "host-passthrough) is the pool's CPU")
    notes += [KVM["revidr"], KVM["no_models"]]
    return Baseline(features=shared, lost=lost, same_implementation=True, passthrough=True, headline=headline,
                    notes=tuple(notes))
