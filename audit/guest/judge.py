"""Can this guest move to that host? One verdict per guest x destination, with its reasons.

CPU: host-passthrough is judged only against the guest's current host (``--from``), else unknown;
an unexpanded host-model starts on any host of its architecture (libvirt computes the CPU there); a
custom model, or a host-model libvirt already expanded (a running guest's live XML), needs every
feature of the model (libvirt's x86 CPU map, audit.cpu.models) and every required or forced feature
on the destination, and none of its forbidden ones. Feature names are libvirt's, mapped to
/proc/cpuinfo names through the model table. Memory: huge page backing needs a pool of that size,
a hugetlbfs mount of it (unless memfd-backed) and enough free pages for the guest's memory.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from audit.cpu.sources import CpuSource
from audit.errors import FactError, FactUnavailable
from audit.guest.domain import Domain, parse_nodeset
from audit.record import Record


class Verdict(str, enum.Enum):
    OK = "ok"
    NOT_OK = "not-ok"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


_RANK = {Verdict.OK: 0, Verdict.UNKNOWN: 1, Verdict.NOT_OK: 2}


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    return max(verdicts, key=_RANK.__getitem__, default=Verdict.OK)


class Reason(Record):
    aspect: str  # 'arch', 'cpu', 'machine', 'memory'
    verdict: Verdict
    text: str


class Pool(Record):
    size: int
    nr: int
    free: int | None  # free minus reserved: what a new guest can take; None: not known (virsh capabilities)


class Memory(Record):
    default_size: int | None  # Hugepagesize in /proc/meminfo
    pools: dict[int, Pool]
    mounts: dict[int, tuple[str, ...]]  # page size -> hugetlbfs mount points
    mem_total: int | None
    #: where it came from; 'virsh capabilities' knows pools and RAM, not free pages or mounts
    source: str = "snapshot"

    @property
    def partial(self) -> bool:
        return self.source != "snapshot"


class Destination(Record):
    name: str
    source: str
    kind: str  # 'snapshot', 'cpuinfo', 'domcapabilities', 'qemu-caps-cache' or 'capabilities'
    cpu: CpuSource
    memory: Memory | None
    memory_why: str | None = None  # why memory is None
    #: further libvirt documents of this host (--caps): virsh capabilities (machine types per
    #: arch, topology), domcapabilities or cache files whose CPU view was not taken
    extra: tuple[Any, ...] = ()
    cpu_known: bool = True  # False: only 'virsh capabilities' was given, whose CPU is the physical one
    #: a snapshot's libvirt QEMU capabilities cache that is stale (audit.cpu.libvirtcaps.CachedCaps):
    #: it no longer describes the host, so nothing in it is used (CPU, usable models, machine types)
    stale_cache: Any = None

    @property
    def libvirt(self) -> tuple[Any, ...]:
        """Every libvirt capabilities document used for this host (audit.cpu.libvirtcaps.GuestCpu);
        a stale cache is not among them."""
        return ((self.cpu.guest,) if self.cpu.guest is not None else ()) + self.extra

    def usable_view(self) -> Any:
        """The document that says which CPU models QEMU/KVM here can run (domcapabilities
        preferred to the cache); None when none does, or the host's cache is stale."""
        from audit.cpu import libvirtcaps as lc
        from audit.cpu.sources import CPUINFO

        docs = [g for g in self.extra if g.lists_models]
        guest = self.cpu.guest
        if guest is not None and guest.lists_models and not (self.kind == "snapshot" and self.cpu.view == CPUINFO):
            docs.insert(0, guest)
        docs.sort(key=lambda g: g.kind != lc.KIND_DOMCAPS)
        return docs[0] if docs else None

    def machine_docs(self) -> list[Any]:
        return [g for g in self.libvirt if g.machines or g.guests]

    def describe(self) -> dict[str, Any]:
        machines = sorted({m for g in self.machine_docs() for m in (g.machines if not g.guests else
                                                                      (m for x in g.guests for m in x.machines))})
        usable = self.usable_view()
        return {"name": self.name, "source": self.source, "input": self.kind, "arch": self.cpu.arch,
                "vendor": self.cpu.vendor, "model_name": self.cpu.cpu.model_name,
                "memory_facts": self.memory is not None, "cpu_view": self.cpu.view,
                "machines": machines or None,
                "libvirt": [{"kind": g.kind, "source": g.source} for g in self.libvirt],
                "usable_models_from": f"{usable.kind} {usable.source}" if usable is not None else None,
                "stale_cache": None if self.stale_cache is None else
                {"source": self.stale_cache.path, "why": list(self.stale_cache.stale)}}

    def view_notes(self) -> list[str]:
        """Which CPU source the judgement used (a guest-CPU view is preferred), and why; a stale
        capabilities cache, and why it is not used."""
        from audit.cpu.sources import CPUINFO

        notes = [f"CPU source: {self.cpu.view}", *self.cpu.notes]
        stale = self.stale_cache
        if stale is not None and self.cpu.view == CPUINFO:  # the CPU source note says why it is stale
            notes.append(f"{stale.path} being stale, its usable CPU models and machine types are not used either")
        elif stale is not None:
            notes.append(f"libvirt's QEMU capabilities cache {stale.path} in {self.source} is stale "
                         f"({'; '.join(stale.stale)}): not used, for the CPU, usable CPU models or machine types")
        return notes


class Judgement(Record):
    verdict: Verdict
    reasons: tuple[Reason, ...]
    missing: tuple[str, ...]  # libvirt names the guest needs and the host lacks
    forbidden: tuple[str, ...]  # forbid features the host has
    unknown: tuple[str, ...]  # features hostaudit cannot judge from /proc/cpuinfo
    needs: dict[int, int]  # page size -> bytes of guest memory on huge pages of that size


def size_text(n: int) -> str:
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes" if n < 1 << 20 else f"{n / (1 << 20):.1f} MiB"


# ------------------------------------------------------------------------------------------------
# destinations
# ------------------------------------------------------------------------------------------------
def memory_facts(host: Any) -> Memory:
    """Huge page pools, hugetlbfs mounts and MemTotal of a host (raises FactUnavailable/FactError)."""
    from audit.host import memory as hm
    from audit.parsers.mounts import hugetlbfs_mounts, hugetlbfs_page_size

    info = host.fact(hm.meminfo)
    state = host.fact(hm.hugepage_state)
    pools = {p.size: Pool(p.size, p.nr or 0, max(0, (p.free or 0) - (p.resv or 0))) for p in state.pools}
    mounts: dict[int, list[str]] = {}
    for m in hugetlbfs_mounts(host.fact(hm.mounts)):
        try:
            size = hugetlbfs_page_size(m.option_map, info.hugepagesize or 0)
        except ValueError:
            continue
        mounts.setdefault(size, []).append(m.target)
    return Memory(info.hugepagesize, pools, {k: tuple(v) for k, v in mounts.items()}, info.mem_total)


def load_destination(path: str, caps: Sequence[str] = ()) -> Destination:
    """A destination from a snapshot (CPU and memory), a saved /proc/cpuinfo (CPU only),
    ``virsh domcapabilities`` output or a QEMU capabilities cache file (the guest-CPU view), or
    ``virsh capabilities`` output (machine types and topology only), then each of ``caps`` (--caps:
    more libvirt documents of the same host) added by ``with_caps``."""
    dest = _load_one(path)
    for c in caps:
        dest = with_caps(dest, c)
    return dest


_CAPS_ONLY_VIEW = ("none: 'virsh capabilities' describes the physical CPU, not what KVM gives a guest "
                   "(add 'virsh domcapabilities' output with --caps)")


def _load_one(path: str) -> Destination:
    from audit.cpu import libvirtcaps as lc
    from audit.cpu.libvirtcaps import looks_like_xml
    from audit.cpu.sources import CPUINFO, load_file
    from audit.errors import UsageError
    from audit.host.snapshot import host_from_snapshot, looks_like_snapshot, parse_snapshot, read_input

    blob = read_input(path, what="host")
    if looks_like_xml(blob) and lc.root_kind(blob) == lc.KIND_CAPS:
        return _capabilities_only(lc.parse_caps(blob, path), path)
    if looks_like_xml(blob):
        del blob
        cpu = load_file(path)  # domcapabilities or a capabilities cache: the guest-CPU view
        return Destination(cpu.name, path, cpu.kind, cpu, None,
                           f"{cpu.kind} output says nothing about memory: give a snapshot (hostaudit collect)")
    if not looks_like_snapshot(blob):
        del blob
        cpu = load_file(path)
        return Destination(cpu.name, path, "cpuinfo", cpu, None,
                           "a /proc/cpuinfo file says nothing about memory: give a snapshot (hostaudit collect)")
    try:
        snap = parse_snapshot(blob)
    except UsageError as exc:
        raise UsageError(f"snapshot {path}: {exc}") from None
    del blob
    host = host_from_snapshot(snap, name=path)
    cpu = load_file(path)  # the CPU commands' own reading of it, with their checks
    stale = None
    if cpu.guest is not None and cpu.view == CPUINFO:  # the cache was read, not taken as the CPU: stale?
        entry, _why = lc.kvm_caps(host, cpu.arch)
        if entry is not None and entry.stale:
            stale, cpu = entry, cpu._replace(guest=None)  # nothing of a stale cache is QEMU's word now
    try:
        mem, why = memory_facts(host), None
    except (FactUnavailable, FactError) as exc:
        mem, why = None, f"memory facts unavailable: {exc}"
    return Destination(cpu.name, path, "snapshot", cpu, mem, why, stale_cache=stale)


def _capabilities_only(caps: Any, path: str) -> Destination:
    """'virsh capabilities' as the host itself: machine types and topology; the CPU is not judged."""
    import os

    from audit.cpu import libvirtcaps as lc
    from audit.parsers.cpuinfo import CpuInfo

    cpu = CpuInfo(vendor=None, model_name="not known (virsh capabilities)", family=None, model=None,
                  flags=frozenset(), processors=0, arch=lc.ARCH.get(caps.arch or ""))
    src = CpuSource(name=os.path.basename(path), source=path, kind=lc.KIND_CAPS, cpu=cpu, view=_CAPS_ONLY_VIEW)
    mem = memory_from_topology(caps)
    why = None if mem is not None else "virsh capabilities without NUMA topology says nothing about memory"
    return Destination(src.name, path, lc.KIND_CAPS, src, mem, why, extra=(caps,), cpu_known=False)


def memory_from_topology(caps: Any) -> Memory | None:
    """RAM and huge page pools from 'virsh capabilities' <topology> (summed over NUMA cells); free
    pages, reservations, the default size and hugetlbfs mounts are not in it."""
    if not caps.topology:
        return None
    pools: dict[int, int] = {}
    for cell in caps.topology:
        for size, count in cell.pages:
            if size > 4096:  # the base page size is listed too: not a huge page pool
                pools[size] = pools.get(size, 0) + count
    total = sum(c.memory for c in caps.topology if c.memory) or None
    return Memory(None, {k: Pool(k, n, None) for k, n in pools.items()}, {}, total,
                  source=f"virsh capabilities {caps.source}")


def with_caps(dest: Destination, path: str) -> Destination:
    """``dest`` with one more libvirt document of the same host (--caps). 'virsh capabilities'
    adds machine types per guest arch and, where nothing better is known, RAM and huge page
    pools; domcapabilities or a cache file with a CPU becomes the CPU view, in preference to
    /proc/cpuinfo and to the CPU view the host input gave."""
    from audit.cpu import libvirtcaps as lc
    from audit.cpu.sources import from_caps
    from audit.errors import UsageError
    from audit.host.snapshot import read_input

    blob = read_input(path, what="--caps")
    if not lc.looks_like_xml(blob) or lc.root_kind(blob) is None:
        raise UsageError(f"--caps {path}: not 'virsh capabilities', 'virsh domcapabilities' or a libvirt QEMU "
                         "capabilities cache file")
    caps = lc.parse_caps(blob, path)
    del blob
    arch = lc.ARCH.get(caps.arch or "")
    if arch and dest.cpu.arch and arch != dest.cpu.arch and caps.kind != lc.KIND_CAPS:
        raise UsageError(f"--caps {path}: describes {caps.arch} guests; {dest.source} is a {dest.cpu.arch} host")
    if caps.kind == lc.KIND_CAPS:
        mem, why = dest.memory, dest.memory_why
        if mem is None:
            mem = memory_from_topology(caps)
            why = why if mem is None else None
        return dest._replace(extra=(*dest.extra, caps), memory=mem, memory_why=why)
    if not caps.has_cpu_view:
        return dest._replace(extra=(*dest.extra, caps))
    cpu = from_caps(caps, path)
    if dest.cpu_known and dest.cpu.vendor and cpu.vendor and dest.cpu.vendor != cpu.vendor:
        raise UsageError(f"--caps {path}: a {cpu.vendor} CPU; {dest.source} has a {dest.cpu.vendor} one: "
                         "not the same host")
    old = dest.cpu
    note = (f"CPU from {caps.kind} {path} (--caps), in preference to {old.view} of {dest.source}"
            if dest.cpu_known else f"CPU from {caps.kind} {path} (--caps); {dest.source} gives machine types "
                                   "and topology only")
    # the CPU view it replaces: a domcapabilities or a current cache still gives machine types (and
    # usable models where the new view lists none); a stale cache is in dest.stale_cache, not here
    extra = (*dest.extra, old.guest) if old.guest is not None else dest.extra
    cpu = cpu._replace(name=dest.name, kernel_release=old.kernel_release, notes=(*cpu.notes, note))
    return dest._replace(cpu=cpu, extra=extra, cpu_known=True)


# ------------------------------------------------------------------------------------------------
# CPU
# ------------------------------------------------------------------------------------------------
_GUEST_ARCH = {"x86_64": "x86", "i686": "x86", "i386": "x86", "aarch64": "arm64", "armv7l": "arm",
               "armv6l": "arm", "s390x": "s390x", "ppc64": "powerpc", "ppc64le": "powerpc"}
#: libvirt's SVM sub-features (cpu_map x86_features.xml); vmx-* are matched by prefix
_NESTED = frozenset({"npt", "nrip-save", "lbrv", "tsc-scale", "vmcb-clean", "flushbyasid", "pause-filter",
                     "pfthreshold", "avic", "v-vmsave-vmload", "vgif", "vnmi", "svme-addr-chk", "svm-lock"})
#: features KVM gives every guest whatever the host shows
_ALWAYS = frozenset({"hypervisor"})
_LIBVIRT_VENDOR = {"intel": "Intel", "amd": "AMD", "hygon": "Hygon"}


class _Supply:
    """What a destination CPU offers, asked in libvirt feature names."""

    def __init__(self, cpu: CpuSource) -> None:
        from audit.cpu import models as cm

        self.cm = cm
        self.table = cm.load_table()
        self.raw = cm.normalise(cpu.cpu.flags, self.table)
        self.gv = cm.guest_visible(cpu.cpu.flags, self.table)

    def has_linux(self, flag: str) -> bool:
        return flag in self.gv or flag in self.raw

    def judge(self, name: str) -> tuple[str, str]:
        """('yes'|'no'|'unknown'|'skip', why) for one libvirt feature name."""
        lname = name.lower()
        if lname.startswith("vmx-") or lname in _NESTED:
            return "skip", "nested-virtualisation sub-feature, not compared"
        if lname in _ALWAYS:
            return "yes", "KVM sets it for every guest"
        extra = _not_in_cpuinfo().get(lname)
        if extra is not None:
            policy, linux, why = extra.get("policy"), extra.get("linux"), str(extra.get("reason", ""))
            if policy == "assume":
                return "skip", f"assumed: {why}"
            if policy == "ignore":
                return "skip", f"not compared: {why}"
            if linux and self.has_linux(str(linux)):
                return "yes", ""
            return "unknown", f"{name}: {why}"
        linux = self.cm.normalise([lname], self.table)
        if not linux:
            return "unknown", f"{name}: not a feature hostaudit knows"
        if any(f not in self.table.known for f in linux):
            return "unknown", f"{name}: not a feature hostaudit knows (libvirt's CPU map or the kernel's flags)"
        if all(self.has_linux(f) or f in self.table.kvm_provided for f in linux):
            return "yes", ""
        return "no", ""



@functools.cache
def _not_in_cpuinfo() -> dict[str, dict]:
    """libvirt features Linux does not print, each with how the model table treats it."""
    import json

    text = (Path(__file__).resolve().parents[1] / "cpu" / "data" / "cpu_models.json").read_text(encoding="utf-8")
    return dict(json.loads(text).get("not_in_cpuinfo", {}))


def _model_features(model: str, supply: _Supply, disabled: set[str]) -> tuple[str, list[str]] | None:
    """(libvirt vendor line, Linux flags the model needs minus what the guest disables), or None."""
    m = supply.table.models.get(model)
    if m is None:
        return None
    off = supply.cm.normalise(disabled, supply.table)
    return m.vendor or "generic", sorted(f for f in m.features if f not in off)


def judge_cpu(dom: Domain, dest: Destination,
              source: CpuSource | None = None) -> tuple[list[Reason], dict[str, list[str]]]:
    reasons: list[Reason] = []
    found: dict[str, list[str]] = {"missing": [], "forbidden": [], "unknown": []}
    arch = dest.cpu.arch
    garch = _GUEST_ARCH.get(dom.arch or "")
    if garch and arch and garch != arch:
        reasons.append(Reason("arch", Verdict.NOT_OK,
                              f"a {dom.arch} guest cannot run under KVM on this {arch} host"))
        return reasons, found
    mode = dom.cpu_mode
    if arch not in ("x86", None) and mode not in ("host-passthrough", "maximum", None):
        reasons.append(Reason("cpu", Verdict.UNKNOWN, f"CPU mode {mode} is compared on x86 hosts only"))
        return reasons, found
    plain = mode is None or (mode == "host-model" and dom.model is None)
    if not dest.cpu_known and not (plain and all(f.policy == "disable" for f in dom.features)):
        reasons.append(Reason("cpu", Verdict.UNKNOWN, (
            "CPU not checked: of this host only 'virsh capabilities' is known, whose <host><cpu> is the "
            "physical CPU, not what KVM gives a guest; add its 'virsh domcapabilities' output with --caps")))
        return reasons, found
    supply = _Supply(dest.cpu)
    disabled = {f.name for f in dom.features if f.policy == "disable"}
    if mode in ("host-passthrough", "maximum"):
        reasons.append(_passthrough(dom, dest, source))
    elif mode == "host-model" and dom.model is None:
        reasons.append(Reason("cpu", Verdict.OK, (
            "host-model, not expanded (a stopped guest, or dumpxml --inactive): libvirt computes the CPU "
            "from the host it starts on, so it starts on any host of its architecture; a running guest is "
            "judged by its live XML (virsh dumpxml without --inactive)")))
    elif mode is None:
        reasons.append(Reason("cpu", Verdict.OK, "no <cpu> model: the hypervisor's default CPU, which any "
                                                 "KVM host of this architecture provides"))
    elif dom.model is not None:
        reasons += _custom(dom, dest, supply, disabled, found)
    else:
        reasons.append(Reason("cpu", Verdict.UNKNOWN, f"CPU mode {mode} without a <model>"))
    reasons += _features(dom, supply, found)
    return reasons, found


def _passthrough(dom: Domain, dest: Destination, source: CpuSource | None) -> Reason:
    what = f"{dom.cpu_mode}: the guest sees its current host's CPU as it is"
    if source is None:
        return Reason("cpu", Verdict.UNKNOWN, (
            f"{what}; live migration is safe only to a host with an identical CPU (and microcode and kernel): "
            "give its current host with --from, or compare the two with 'hostaudit cpu compare'; a stopped "
            "guest starts here with this host's CPU"))
    from audit.cpu import models as cm

    c = cm.compare(source.cpu.flags, dest.cpu.cpu.flags, a_vendor=source.vendor, b_vendor=dest.cpu.vendor,
                   a_kernel=source.kernel_release, b_kernel=dest.cpu.kernel_release)
    if c.verdict is cm.Verdict.IDENTICAL and not c.cross_vendor:
        return Reason("cpu", Verdict.OK, f"{what}; {source.name} (--from) and this host show identical "
                                         "guest-visible CPU features")
    if c.verdict is cm.Verdict.SUPERSET and not c.cross_vendor:
        return Reason("cpu", Verdict.UNKNOWN, (
            f"{what}; this host has every feature of {source.name} (--from) and more: the guest keeps working "
            "but libvirt calls host-passthrough migration safe only between identical hosts"))
    lacks = ", ".join(c.missing[:12]) + (", ..." if len(c.missing) > 12 else "")
    why = cm.cross_vendor_text(source.vendor, dest.cpu.vendor) if c.cross_vendor else f"this host lacks {lacks}"
    return Reason("cpu", Verdict.NOT_OK, f"{what}; unlike {source.name} (--from): {why}")


def _custom(dom: Domain, dest: Destination, supply: _Supply, disabled: set[str],
            found: dict[str, list[str]]) -> list[Reason]:
    assert dom.model is not None
    out: list[Reason] = []
    how = "host-model as libvirt expanded it" if dom.cpu_mode == "host-model" else f"custom model {dom.model}"
    if dom.cpu_mode == "custom" and dom.running and dom.check == "full":
        how = f"model {dom.model} (a running guest's live XML: host-model guests are expanded to this)"
    want = _LIBVIRT_VENDOR.get(dest.cpu.vendor or "")
    if dom.vendor and want and dom.vendor.lower() != want.lower():
        out.append(Reason("cpu", Verdict.NOT_OK, f"the guest CPU names vendor {dom.vendor}; this host is {want}"))
    got = _model_features(dom.model, supply, disabled)
    if got is None:
        found["unknown"].append(dom.model)
        out.append(Reason("cpu", Verdict.UNKNOWN, f"CPU model {dom.model} is not in hostaudit's table "
                                                  "(libvirt's x86 CPU map): its features cannot be checked"))
        return out
    line, needed = got
    lacking = [f for f in needed if not supply.has_linux(f) and f not in supply.table.kvm_provided]
    if lacking:
        names = supply.cm.libvirt_names(lacking, dest.cpu.vendor, supply.table)
        shown = [names.get(f, f) for f in lacking]
        found["missing"] += shown
        out.append(Reason("cpu", Verdict.NOT_OK, f"{how}: this host lacks {', '.join(shown)}"))
    else:
        out.append(Reason("cpu", Verdict.OK, f"{how}: this host has every feature of the model"))
    vendor = dest.cpu.vendor
    if line not in ("generic", vendor) and vendor:
        label = supply.cm.vendor_label(vendor)
        article = "an" if label[:1] in "AEIOU" else "a"  # an AMD, an Intel, a Hygon host
        out.append(Reason("cpu", Verdict.OK, f"note: {dom.model} is a model of {supply.cm.vendor_label(line)} "
                                             f"on {article} {label} host"))
    return out


def _features(dom: Domain, supply: _Supply, found: dict[str, list[str]]) -> list[Reason]:
    out: list[Reason] = []
    for f in dom.features:
        if f.policy == "disable":
            continue
        answer, why = supply.judge(f.name)
        if f.policy in ("require", "force"):
            if answer == "no":
                found["missing"].append(f.name)
                force = " (forced: KVM cannot give a guest a feature its host lacks)" if f.policy == "force" else ""
                out.append(Reason("cpu", Verdict.NOT_OK, f"{f.policy} {f.name}: this host lacks it{force}"))
            elif answer == "unknown":
                found["unknown"].append(f.name)
                out.append(Reason("cpu", Verdict.UNKNOWN, f"{f.policy} {why}"))
        elif f.policy == "forbid":
            if answer == "yes":
                found["forbidden"].append(f.name)
                out.append(Reason("cpu", Verdict.NOT_OK,
                                  f"forbid {f.name}: this host has it, and libvirt refuses a forbidden feature"))
            elif answer == "unknown":
                found["unknown"].append(f.name)
                out.append(Reason("cpu", Verdict.UNKNOWN, f"forbid {why}"))
        elif f.policy == "optional" and answer != "yes" and answer != "skip" and dom.running:
            out.append(Reason("cpu", Verdict.UNKNOWN, (
                f"optional {f.name}: this host {'lacks it' if answer == 'no' else 'may lack it'}; the running "
                "guest has it if its current host does")))
    return out


# ------------------------------------------------------------------------------------------------
# memory
# ------------------------------------------------------------------------------------------------
def hugepage_needs(dom: Domain, default_size: int | None) -> dict[int | None, int]:
    """Bytes of guest memory per huge page size (None: default size unknown)."""
    if not dom.hugepages or not dom.memory:
        return {}
    pages = list(dom.pages) or []
    needs: dict[int | None, int] = {}

    def size_of(p: Any) -> int | None:
        return (p.size if p is not None and p.size else None) or default_size

    if dom.cells and any(p.nodeset for p in pages):
        sets = [(p, parse_nodeset(p.nodeset)) for p in pages if p.nodeset]
        plain = next((p for p in pages if not p.nodeset), None)
        for cell in dom.cells:
            page = next((p for p, s in sets if cell.id in s), plain)
            if page is None:
                continue  # this cell is not backed by huge pages
            key = size_of(page)
            needs[key] = needs.get(key, 0) + cell.memory
        return needs
    page = next((p for p in pages if not p.nodeset), pages[0] if pages else None)
    return {size_of(page): dom.memory}


def judge_memory(dom: Domain, dest: Destination) -> tuple[list[Reason], dict[int, int]]:
    mem = dest.memory
    if mem is None:
        if dom.hugepages:
            return [Reason("memory", Verdict.UNKNOWN, f"huge pages not checked: {dest.memory_why}")], {}
        return [], {}
    out: list[Reason] = []
    if dom.memory and mem.mem_total and dom.memory > mem.mem_total:
        out.append(Reason("memory", Verdict.NOT_OK, f"the guest's {size_text(dom.memory)} is more than this host's "
                                                    f"{size_text(mem.mem_total)} of RAM"))
    needs = hugepage_needs(dom, mem.default_size)
    known: dict[int, int] = {}
    for size, need in sorted(needs.items(), key=lambda kv: kv[0] or 0):
        if size is None:
            out.append(Reason("memory", Verdict.UNKNOWN, "huge pages of the default size, which this host does not "
                                                         "say (no Hugepagesize in /proc/meminfo)"))
            continue
        known[size] = need
        out.append(_pool_reason(dom, mem, size, need))
    return out, known


def _pool_reason(dom: Domain, mem: Memory, size: int, need: int) -> Reason:
    label = size_text(size)
    pool = mem.pools.get(size)
    if pool is None:
        sizes = ", ".join(size_text(s) for s in sorted(mem.pools)) or "none"
        return Reason("memory", Verdict.NOT_OK, f"{label} huge pages: this host has no pool of that size "
                                                f"(its sizes: {sizes})")
    if pool.nr == 0:
        return Reason("memory", Verdict.NOT_OK, f"{label} huge pages: the pool is empty (nr_hugepages 0)")
    count = -(-need // size)
    if mem.partial or pool.free is None:
        if count > pool.nr:
            return Reason("memory", Verdict.NOT_OK, f"{label} huge pages: the guest needs {count} "
                                                    f"({size_text(need)}), the pool has {pool.nr} ({mem.source})")
        return Reason("memory", Verdict.UNKNOWN, (
            f"{label} huge pages: the guest needs {count} of the pool's {pool.nr}; how many are free, and the "
            f"hugetlbfs mounts, are not known from {mem.source} (give a snapshot: hostaudit collect)"))
    if not dom.memfd and not mem.mounts.get(size):
        return Reason("memory", Verdict.NOT_OK, f"{label} huge pages: no hugetlbfs mount of that page size "
                                                "(libvirt's QEMU driver backs guest memory with files there)")
    if count > pool.free:
        return Reason("memory", Verdict.NOT_OK, f"{label} huge pages: the guest needs {count} "
                                                f"({size_text(need)}), {pool.free} are free of {pool.nr}")
    where = "memfd" if dom.memfd else ", ".join(mem.mounts[size])
    return Reason("memory", Verdict.OK, f"{label} huge pages: the guest needs {count}, {pool.free} are free "
                                        f"of {pool.nr} ({where})")


# ------------------------------------------------------------------------------------------------
# the two together
# ------------------------------------------------------------------------------------------------
def judge_machine(dom: Domain, dest: Destination) -> list[Reason]:
    """The guest's <os><type machine=…> against the machine types the destination's QEMU offers
    under KVM for the guest's arch, where libvirt said which (virsh capabilities, the capabilities
    cache, domcapabilities of that machine); nothing when it did not (the host notes say so)."""
    docs = dest.machine_docs()
    if dom.machine is None or not docs:
        return []
    answers = [(g, g.offers_machine(dom.machine, dom.arch)) for g in docs]
    yes = next((g for g, a in answers if a is True), None)
    if yes is not None:
        return [Reason("machine", Verdict.OK, f"machine type {dom.machine}: this host's QEMU offers it "
                                              f"({yes.kind} {yes.source})")]
    no = next((g for g, a in answers if a is False), None)
    if no is not None:
        arch = f" for {dom.arch} guests" if dom.arch and no.guests else ""
        return [Reason("machine", Verdict.NOT_OK, (
            f"machine type {dom.machine}: this host's QEMU does not offer it under KVM{arch} ({no.kind} "
            f"{no.source}); libvirt refuses to start or migrate the guest there"))]
    described = ", ".join(sorted({m for g in docs for m in g.machines})) or "others"
    return [Reason("machine", Verdict.UNKNOWN, (
        f"machine type {dom.machine}: not known; {', '.join(g.source for g in docs)} describes machine "
        f"{described} only (virsh domcapabilities --machine NAME, virsh capabilities, or the capabilities "
        "cache lists the others)"))]


def judge_model_usable(dom: Domain, dest: Destination) -> list[Reason]:
    """QEMU/KVM's own word on the guest's named CPU model, where the destination's libvirt said
    which models it can run (domcapabilities, the capabilities cache). A model reported not usable
    is still fine when the guest disables every blocker libvirt named."""
    if dom.model is None or not dom.expanded:
        return []
    view = dest.usable_view()
    if view is None:
        return []
    where = f"{view.kind} {view.source}"
    usable = view.model_usable(dom.model)
    if usable:
        return [Reason("cpu", Verdict.OK, f"CPU model {dom.model}: QEMU/KVM here reports it usable ({where})")]
    if usable is None:
        return [Reason("cpu", Verdict.UNKNOWN, f"CPU model {dom.model}: QEMU did not say whether it is usable "
                                               f"here ({where})")]
    if dom.model not in view.unusable:
        if dom.fallback == "allow":
            return [Reason("cpu", Verdict.UNKNOWN, (
                f"CPU model {dom.model}: this host's QEMU does not offer it ({where}); with fallback='allow' "
                "libvirt picks a model it offers, which the guest then sees"))]
        return [Reason("cpu", Verdict.NOT_OK, f"CPU model {dom.model}: this host's QEMU does not offer it "
                                              f"({where})")]
    blockers = view.blockers_of(dom.model)
    if blockers:
        from audit.cpu import models as cm

        table = cm.load_table()
        off = cm.normalise([f.name for f in dom.features if f.policy in ("disable", "forbid")], table)
        left = [b for b in blockers if not cm.normalise([b], table) <= off or not cm.normalise([b], table)]
        if not left:
            return [Reason("cpu", Verdict.OK, (
                f"CPU model {dom.model}: not usable here as QEMU defines it (blockers: {', '.join(blockers)}), "
                f"but the guest disables every blocker ({where})"))]
        return [Reason("cpu", Verdict.NOT_OK, (
            f"CPU model {dom.model}: QEMU/KVM here reports it not usable; blockers: {', '.join(left)} ({where})"))]
    return [Reason("cpu", Verdict.NOT_OK, f"CPU model {dom.model}: this host's QEMU/KVM reports it not usable "
                                          f"({where})")]


def judge(dom: Domain, dest: Destination, source: CpuSource | None = None) -> Judgement:
    cpu_reasons, found = judge_cpu(dom, dest, source)
    mem_reasons, needs = judge_memory(dom, dest)
    reasons = (*cpu_reasons, *judge_model_usable(dom, dest), *judge_machine(dom, dest), *mem_reasons)
    return Judgement(
        verdict=worst(r.verdict for r in reasons),
        reasons=reasons,
        missing=tuple(dict.fromkeys(found["missing"])),
        forbidden=tuple(dict.fromkeys(found["forbidden"])),
        unknown=tuple(dict.fromkeys(found["unknown"])),
        needs=needs,
    )


def together_notes(doms: Sequence[Domain], dest: Destination, results: Sequence[Judgement]) -> list[str]:
    """Guests that can move here one by one but not all of them at once (free huge pages)."""
    if dest.memory is None:
        return []
    total: dict[int, list[int]] = {}
    for j in results:
        if j.verdict is Verdict.NOT_OK:
            continue
        for size, need in j.needs.items():
            total.setdefault(size, []).append(-(-need // size))
    notes = []
    for size, counts in sorted(total.items()):
        pool = dest.memory.pools.get(size)
        if pool is not None and pool.free is not None and len(counts) > 1 and sum(counts) > pool.free:
            notes.append(f"the {len(counts)} guests that fit here one by one need {sum(counts)} huge pages of "
                         f"{size_text(size)} together; {pool.free} are free")
    return notes
