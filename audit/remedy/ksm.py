"""Kernel same-page merging on or off: its run file, the ksmtuned package and the units that start it
(systemd, or SysV init scripts on CentOS/RHEL 6)."""

from __future__ import annotations

from collections.abc import Sequence

from audit.parsers.memory import KSM_DIR
from audit.remedy.packages import KSMTUNED, install, install_command
from audit.remedy.system import disable_units, enable_units, runtime_only, unmask_unit, write_now
from audit.remedy.target import FixTarget

KSM_RUN = f"{KSM_DIR}/run"
UNITS = ("ksm.service", "ksmtuned.service")


def ksm_on(target: FixTarget, *, now: bool = True, masked: Sequence[str] = ()) -> list[str]:
    """KSM running now (``now``, where the target has a running kernel) and started at every boot;
    ``masked``: units masked now (an earlier "off"), unmasked first, since a masked unit cannot be enabled."""
    start = runtime_only(target, [write_now(KSM_RUN, 1)] if now else [])
    if target.init == "sysv":
        package = install_command(target, "yum", "qemu-kvm   # ships the ksm and ksmtuned init scripts")
        return [*start, *package, *enable_units(target, ("ksm", "ksmtuned"))]
    units = ("ksmtuned.service", "ksm.service") if target.family == "rhel" else ("ksmtuned.service",)
    unmask = [cmd for unit in UNITS if unit in masked for cmd in unmask_unit(target, unit)]
    return [*start, *install(target, KSMTUNED), *unmask, *enable_units(target, units)]


def ksm_off(target: FixTarget, enabled: Sequence[str] = UNITS) -> list[str]:
    """KSM stopped with every shared page unmerged (where the target has a running kernel), and
    never started again: the ``enabled`` units disabled, and both units masked under systemd
    (disabling a unit that is not installed fails; masking it does not)."""
    stop = runtime_only(target, [write_now(KSM_RUN, 2, why="stop KSM and unmerge every shared page")])
    if target.init == "sysv":
        return [*stop, *disable_units(target, [u for u in ("ksmtuned", "ksm") if f"{u}.service" in enabled
                                               or u in enabled])]
    return [*stop, *disable_units(target, [u for u in UNITS if u in enabled], mask=UNITS)]


def ksm_units_off(target: FixTarget, enabled: Sequence[str] = UNITS) -> list[str]:
    """The ``enabled`` KSM units no longer started at boot (the kernel has no KSM for them to drive);
    SysV services are only unlinked."""
    return disable_units(target, [u for u in ("ksmtuned.service", "ksm.service") if u in enabled],
                         stop=target.init != "sysv")
