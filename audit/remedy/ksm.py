"""Kernel same-page merging on or off: its run file, the ksmtuned package and the units that start it
(systemd, or SysV init scripts on CentOS/RHEL 6)."""

from __future__ import annotations

from audit.parsers.memory import KSM_DIR
from audit.remedy.packages import KSMTUNED, install, install_command
from audit.remedy.system import disable_units, enable_units, runtime_only, write_now
from audit.remedy.target import FixTarget

KSM_RUN = f"{KSM_DIR}/run"


def ksm_on(target: FixTarget, *, now: bool = True) -> list[str]:
    """KSM running now (``now``, where the target has a running kernel) and started at every boot."""
    start = runtime_only(target, [write_now(KSM_RUN, 1)] if now else [])
    if target.init == "sysv":
        package = [install_command("yum", "qemu-kvm   # ships the ksm and ksmtuned init scripts")]
        return [*start, *package, *enable_units(target, ("ksm", "ksmtuned"))]
    units = ("ksmtuned.service", "ksm.service") if target.family == "rhel" else ("ksmtuned.service",)
    return [*start, *install(target, KSMTUNED), *enable_units(target, units)]


def ksm_off(target: FixTarget) -> list[str]:
    """KSM stopped with every shared page unmerged (where the target has a running kernel), and
    never started again: its units disabled, and masked under systemd."""
    stop = runtime_only(target, [write_now(KSM_RUN, 2, why="stop KSM and unmerge every shared page")])
    if target.init == "sysv":
        return [*stop, *disable_units(target, ("ksmtuned", "ksm"))]
    return [*stop, *disable_units(target, ("ksm.service", "ksmtuned.service"), mask=True)]


def ksm_units_off(target: FixTarget) -> list[str]:
    """The KSM units no longer started at boot (the kernel has no KSM for them to drive); SysV
    services are only unlinked."""
    return disable_units(target, ("ksmtuned.service", "ksm.service"), stop=target.init != "sysv")
