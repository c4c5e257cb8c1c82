"""Changes to the running system and what makes them persistent: runtime writes, sysctl.d, kernel
modules, service units (systemd or SysV), /etc/fstab lines and swap."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from audit.remedy.target import FixTarget

q = shlex.quote  # every value from the audited host goes through this before it enters a command


def _why(cmd: str, why: str | None) -> str:
    return f"{cmd}   # {why}" if why else cmd


def write_now(path: str, value: str | int, *, why: str | None = None) -> str:
    """Write ``value`` to a /proc or /sys file of the running kernel (lost at the next boot)."""
    return _why(f"echo {q(str(value))} > {q(path)}", why)


def runtime_only(target: FixTarget, cmds: Sequence[str]) -> list[str]:
    """``cmds`` that change the running kernel, left out where the target has none (an image)."""
    return list(cmds) if target.runtime else []


def sysctl_persist(conf: str, key: str, value: str | int) -> list[str]:
    """``key = value`` in a sysctl.d file: applied by systemd-sysctl at every boot."""
    return [f"echo {q(f'{key} = {value}')} > {q(conf)}"]


def load_module(module: str, *, why: str | None = None) -> list[str]:
    return [_why(f"modprobe {q(module)}", why)]


def persist_module(module: str) -> list[str]:
    """Load ``module`` now and at every boot (modules-load.d)."""
    return [*load_module(module), f"echo {q(module)} > /etc/modules-load.d/{q(module)}.conf"]


def module_options(module: str, options: str, conf: str) -> list[str]:
    """``options <module> <options>`` in a modprobe.d file, for the next time the module loads."""
    return [f"echo {q(f'options {module} {options}')} > {q(conf)}"]


def remove_file(path: str) -> list[str]:
    return [f"rm {q(path)}"]


def _sysv_name(unit: str) -> str:
    return unit.removesuffix(".service")


def enable_units(target: FixTarget, units: Sequence[str]) -> list[str]:
    """Start ``units`` now and at every boot: ``systemctl enable --now``, or chkconfig and service on SysV."""
    if target.init == "sysv":
        names = [_sysv_name(u) for u in units]
        return [*(f"chkconfig {q(n)} on" for n in names), *(f"service {q(n)} start" for n in names)]
    return ["systemctl enable --now " + " ".join(q(u) for u in units)]


def disable_units(target: FixTarget, units: Sequence[str], *, stop: bool = True, mask: bool = False) -> list[str]:
    """Stop starting ``units`` at boot (``stop``: and stop them now; ``mask``: and forbid starting them)."""
    if target.init == "sysv":
        names = [_sysv_name(u) for u in units]
        cmds = ["; ".join(f"service {q(n)} stop" for n in names)] if stop else []
        return [*cmds, "; ".join(f"chkconfig {q(n)} off" for n in names)]
    listed = " ".join(q(u) for u in units)
    return [f"systemctl disable{' --now' if stop else ''} {listed}"] + ([f"systemctl mask {listed}"] if mask else [])


def unmask_unit(unit: str) -> list[str]:
    return [f"systemctl unmask {q(unit)}"]


def fstab_append(line: str) -> str:
    """A line added to /etc/fstab (the filesystem or swap then comes back at every boot)."""
    return f"echo {q(line)} >> /etc/fstab"


def swap_file(path: str, size: int) -> list[str]:
    """A swap file of at least ``size`` bytes (whole GiB), on now and at every boot."""
    gib = max(1, -(-size // (1 << 30)))
    p = q(path)
    return [
        f"fallocate -l {gib}G {p} && chmod 600 {p} && mkswap {p}",
        f"swapon {p}",
        fstab_append(f"{path} none swap defaults 0 0"),
    ]


def dedupe_lines(path: str) -> list[str]:
    """Drop the repeated copies of identical entry lines of ``path`` (comments and blank lines kept),
    keeping the first; the file keeps its inode and mode. A second run changes nothing."""
    p = shlex.quote(path)
    new = shlex.quote(path + ".hostaudit-new")
    return [f"awk '/^[[:space:]]*(#|$)/ || !seen[$0]++' {p} > {new} && cat {new} > {p} && rm -f {new}"]
