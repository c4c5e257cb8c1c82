"""Changes to the running system and what makes them persistent: runtime writes, sysctl.d, kernel
modules, service units (systemd or SysV), /etc/fstab lines and swap.

Every command here can run twice and leave the same files as one run: whole files are written
(``>``), never appended to; a line is added to a shared file (fstab, sysctl.d) only when it is
missing; units are enabled, disabled and masked with commands that are no-ops the second time. On
an image (``FixTarget.image``) every path is under ``"$ROOT"``, directories are created before
files are written, units are enabled with ``systemctl --root`` and nothing starts or loads now.
Steps that depend on each other are separate commands, or ``;`` inside ``cond || { ...; }``, never
an ``a && b`` chain: the fix script runs under ``set -e``, which ignores a failure inside a chain.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Sequence

from audit.remedy.target import FixTarget

q = shlex.quote  # every value from the audited host goes through this before it enters a command

#: A comment command naming a finding that a fix makes appear (KSM turned on wants swap behind it);
#: the fix script repeats these in its closing note.
AFTERWARDS = "# afterwards: "


def afterwards(text: str) -> str:
    """A note for the end of the fix script: what a re-audit will ask for once this fix has run."""
    return AFTERWARDS + text


def _why(cmd: str, why: str | None) -> str:
    return f"{cmd}   # {why}" if why else cmd


def write_now(path: str, value: str | int, *, why: str | None = None) -> str:
    """Write ``value`` to a /proc or /sys file of the running kernel (lost at the next boot)."""
    return _why(f"echo {q(str(value))} > {q(path)}", why)


def runtime_only(target: FixTarget, cmds: Sequence[str]) -> list[str]:
    """``cmds`` that change the running system, left out where the target has none (an image)."""
    return list(cmds) if target.now else []


def make_dir(target: FixTarget, path: str) -> str:
    return f"mkdir -p {target.path(path)}"


def write_file(target: FixTarget, path: str, line: str) -> list[str]:
    """``path`` holding exactly ``line``: its directory made first, the whole file written."""
    return [make_dir(target, posixpath.dirname(path)), f"echo {q(line)} > {target.path(path)}"]


def ensure_line(target: FixTarget, path: str, line: str) -> str:
    """``line`` added to ``path`` unless the file already has it (the file is made when missing)."""
    p = target.path(path)
    return f"grep -qsxF -- {q(line)} {p} || echo {q(line)} >> {p}"


def _key_ere(key: str) -> str:
    """A sysctl key as an extended regular expression: ``.`` and ``/`` separate its parts alike."""
    return "[./]".join("".join(f"[{c}]" if c in ".[]()*+?{}|^$\\-" else c for c in part)
                       for part in key.replace("/", ".").split("."))


def sysctl_persist(target: FixTarget, conf: str, key: str, value: str | int) -> list[str]:
    """``key = value`` in a sysctl.d file (applied by systemd-sysctl at every boot): added when the file
    lacks that very line, after any other line for the key is taken out of it."""
    line = f"{key} = {value}"
    p = target.path(conf)
    drop = q(f"/^[[:space:]]*-?{_key_ere(key)}[[:space:]]*=/d")
    return [make_dir(target, posixpath.dirname(conf)),
            f"grep -qsxF -- {q(line)} {p} || {{ touch {p}; sed -i -E {drop} {p}; echo {q(line)} >> {p}; }}"]


def load_module(module: str, *, why: str | None = None) -> list[str]:
    return [_why(f"modprobe {q(module)}", why)]


def persist_module(target: FixTarget, module: str) -> list[str]:
    """Load ``module`` now (where a kernel runs) and at every boot (modules-load.d)."""
    return [*runtime_only(target, load_module(module)),
            *write_file(target, f"/etc/modules-load.d/{module}.conf", module)]


def module_options(module: str, options: str, conf: str) -> list[str]:
    """``options <module> <options>`` in a modprobe.d file, for the next time the module loads."""
    return [f"echo {q(f'options {module} {options}')} > {q(conf)}"]


def remove_file(path: str) -> list[str]:
    return [f"rm -f {q(path)}"]


def _sysv_name(unit: str) -> str:
    return unit.removesuffix(".service")


def _systemctl(target: FixTarget) -> str:
    # offline on an image: the build host's systemctl reads the image's unit files, starts nothing
    return 'systemctl --root="$ROOT"' if target.image else "systemctl"


def enable_units(target: FixTarget, units: Sequence[str]) -> list[str]:
    """Start ``units`` at every boot, and now where a system runs: ``systemctl enable --now`` (on an
    image ``systemctl --root="$ROOT" enable``), or chkconfig and service on SysV."""
    if target.init == "sysv":
        names = [_sysv_name(u) for u in units]
        cmds = [target.inside(f"chkconfig {q(n)} on") for n in names]
        return [*cmds, *runtime_only(target, [f"service {q(n)} start" for n in names])]
    listed = " ".join(q(u) for u in units)
    return [f"{_systemctl(target)} enable{' --now' if target.now else ''} {listed}"]


def disable_units(target: FixTarget, units: Sequence[str], *, stop: bool = True, mask: Sequence[str] = ()) -> list[str]:
    """Stop starting ``units`` at boot (``stop``: and stop them now, where a system runs); ``mask``:
    units to forbid starting at all (masking works whether or not the unit is installed)."""
    now = stop and target.now
    if target.init == "sysv":
        names = [_sysv_name(u) for u in units]
        cmds = ["; ".join(f"service {q(n)} stop" for n in names)] if now and names else []
        return [*cmds, *(["; ".join(target.inside(f"chkconfig {q(n)} off") for n in names)] if names else [])]
    cmds = [f"{_systemctl(target)} disable{' --now' if now else ''} " + " ".join(q(u) for u in units)] if units else []
    if mask:
        cmds.append(f"{_systemctl(target)} mask{' --now' if now else ''} " + " ".join(q(u) for u in mask))
    return cmds


def unmask_unit(target: FixTarget, unit: str) -> list[str]:
    return [f"{_systemctl(target)} unmask {q(unit)}"]


def fstab_append(target: FixTarget, line: str) -> str:
    """``line`` in /etc/fstab, added once (the filesystem or swap then comes back at every boot)."""
    return ensure_line(target, "/etc/fstab", line)


def swap_file(target: FixTarget, path: str, size: int) -> list[str]:
    """A swap file of at least ``size`` bytes (whole GiB), made once, on now (where a kernel runs)
    and at every boot."""
    gib = max(1, -(-size // (1 << 30)))
    p = target.path(path)
    on = f"swapon --show=NAME --noheadings | grep -qxF -- {q(path)} || swapon {q(path)}"
    return [
        f"[[ -e {p} ]] || {{ fallocate -l {gib}G {p}; chmod 600 {p}; mkswap {p}; }}",
        *runtime_only(target, [on]),
        fstab_append(target, f"{path} none swap defaults 0 0"),
    ]


def dedupe_lines(target: FixTarget, path: str) -> list[str]:
    """Drop the repeated copies of identical entry lines of ``path`` (comments and blank lines kept),
    keeping the first; the file keeps its inode and mode. A second run changes nothing. Three
    commands, not one ``&&`` chain: under ``set -e`` a failure inside a chain does not stop the script."""
    p = target.path(path)
    new = target.path(path + ".hostaudit-new")
    return [f"awk '/^[[:space:]]*(#|$)/ || !seen[$0]++' {p} > {new}", f"cat {new} > {p}", f"rm -f {new}"]
