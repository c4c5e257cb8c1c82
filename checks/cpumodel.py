"""The fleet gate: this host's CPU offers the pool's required CPU model and flags (policy [cpu])."""

from __future__ import annotations

from audit import hookimpl
from audit.host.arch import I386, X86_64, arch_name
from audit.host.core import Host
from audit.model import Check, Evidence, Outcome, Severity, check, errored, failed, passed, skipped
from audit.policy import Policy

CPUINFO = "/proc/cpuinfo"


def _shown(names: list[str], limit: int = 12) -> str:
    return " ".join(names[:limit]) + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def _other_arch(arch: str, expected: str, ev: Evidence) -> Outcome:
    """[cpu] names libvirt's x86 CPU models and x86 flags: a pool of x86 guests. A host of another
    architecture cannot run them under KVM, so it fails the gate (a skip would let it through).
    An arm64 pool has no shared model to gate on: KVM on arm64 runs a named CPU model only on that
    very CPU, otherwise "-cpu host" or "-cpu max" (QEMU issue 239, Peter Maydell), so its hosts
    need the same CPU (compare their implementer, part and Features)."""
    return failed(
        f"this host is {arch}: the pool's {expected} is x86 (libvirt's x86 CPU map), which KVM on {arch} cannot"
        " give a guest",
        ev,
        fix=[f"# this host cannot join a pool of x86 guests ({expected})",
             f"# a pool of {arch} hosts runs its guests with the host CPU (libvirt host-passthrough, QEMU -cpu host):"
             " give it hosts with the same CPU, and a policy without [cpu] required_model/required_flags"],
        notes="KVM runs guests of the host's own architecture.",
    )


@check(
    "cpu.baseline",
    title="CPU supports the pool's required CPU model and flags",
    severity=Severity.HIGH,
    reads=[CPUINFO],
    runtime_only=True,
    example_fix=[
        "# keep this host out of the pool: its guests' CPU model needs features this CPU lacks",
        "# or lower the pool's model to what every host shares: hostaudit cpu baseline <snapshots of all hosts>",
    ],
)
def cpu_baseline(host: Host, policy: Policy) -> Outcome:
    """Guests in a live-migration pool run with one CPU model (libvirt <cpu mode='custom'>, QEMU
    -cpu MODEL). A host whose CPU lacks a feature of that model cannot start those guests or
    receive them by migration, and one accepted anyway breaks migration for the whole pool. The
    policy's [cpu] required_model and required_flags gate a new host before it joins."""
    model_name = policy.cpu_required_model
    wanted_flags = tuple(policy.cpu_required_flags)
    if not model_name and not wanted_flags:
        return skipped("the policy requires no CPU model or flags ([cpu] required_model, required_flags)")
    from audit.cpu import models as cm  # the model table is only loaded for a policy that uses it
    table = cm.load_table()
    if model_name and model_name not in table.models:
        return errored(
            f"unknown CPU model {model_name!r} in [cpu] required_model ({policy.source}); "
            "see 'hostaudit cpu models' for the names",
            Evidence(source=policy.source, observed=f"required_model = {model_name!r}", expected="a model name"),
        )
    cpu = host.cpuinfo
    vendor = cm.vendor_of(cpu.vendor, cpu.flags, table)
    has = cm.guest_visible(cpu.flags, table) | cm.normalise(cpu.flags, table)
    lacks_model = sorted(cm.missing_for(model_name, cpu.flags, table)) if model_name else []
    lacks_flags = sorted({f for want in wanted_flags for f in cm.normalise([want], table)} - has)
    newest = cm.newest_model(cpu.flags, vendor, table)
    unknown = sorted(cm.unknown_flags(cpu.flags, table))
    # A model feature KVM gives every guest only from some kernel on (arch_capabilities): missing
    # where this kernel is known not to give it, assumed where that cannot be told.
    assumed: list[str] = []
    rules = table.kernel.kvm_provides if table.kernel else {}
    if model_name:
        from audit.cpu.sources import running_kernel

        kernel = running_kernel(host)
        for feature, rule in rules.items():
            if feature in table.model(model_name).features and feature not in cm.normalise(cpu.flags, table):
                given = cm.kvm_provides(feature, vendor=vendor, kernel=kernel, flags=cpu.flags, table=table)
                if given is False:
                    lacks_model = sorted({*lacks_model, feature})
                elif given is None:
                    assumed.append(f"{feature} (KVM gives it to every guest from Linux {rule['since']}; "
                                   f"running kernel {kernel or 'unknown'})")

    expected = " and ".join(filter(None, [
        f"model {model_name}" if model_name else "",
        f"flags {' '.join(wanted_flags)}" if wanted_flags else "",
    ]))
    parts = [f"{cpu.model_name or 'unknown model'} ({cpu.vendor or 'unknown vendor'})",
             f"newest model it supports: {newest.name if newest else 'none'}"]
    if lacks_model:
        parts.append(f"lacks for {model_name}: {_shown(lacks_model)}")
    if lacks_flags:
        parts.append(f"lacks flags: {_shown(lacks_flags)}")
    if assumed:
        parts.append("assumed: " + ", ".join(assumed))
    if unknown:
        parts.append(f"flags hostaudit does not know (not counted): {_shown(unknown)}")
    if cpu.flags_differ:
        parts.append("flags differ between processors: only flags common to all counted")
    ev = Evidence(source=CPUINFO, observed="; ".join(parts), expected=expected)

    arch = arch_name(host)
    if arch is not None and arch not in (X86_64, I386):
        return _other_arch(arch, expected, ev)
    if not lacks_model and not lacks_flags:
        return passed(f"CPU supports {expected}", ev)
    what = []
    if lacks_model:
        what.append(f"{len(lacks_model)} feature(s) of {model_name} ({_shown(lacks_model, 6)})")
    if lacks_flags:
        what.append(f"required flag(s) {_shown(lacks_flags, 6)}")
    guest = "hypervisor" in cpu.flags
    notes = ("CPU features come from the processor and its firmware settings (some, such as AES-NI, can be "
             "disabled there)")
    notes += (". This host is a virtual machine: its own CPU model (set on the outer hypervisor) must include them."
              if guest else "; a host that lacks them cannot run the pool's guests.")
    fix = [
        f"# this host cannot join a pool whose guests use {expected}",
        f"# pool members' newest shared model: hostaudit cpu baseline <snapshots>; this host alone supports "
        f"{newest.name if newest else 'no named model'}",
    ]
    if guest:
        fix.append("# on the outer hypervisor: give this VM a CPU model with these features (or host-passthrough)")
    return failed(f"CPU lacks {' and '.join(what)}", ev, fix=fix, notes=notes)


@hookimpl
def hostaudit_checks() -> list[Check]:
    return [cpu_baseline]
