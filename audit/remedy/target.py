"""What a remediation is written for: the machine in front of the check, read once per host."""

from __future__ import annotations

import contextlib
import re
import shlex
from collections.abc import Iterable

from audit.boot.facts import boot_cmdline
from audit.boot.model import DEFAULT_GRUB, DEFAULT_GRUB_D
from audit.errors import FactError, FactUnavailable
from audit.host import facts
from audit.host.core import Host
from audit.host.kernel import os_release_fact
from audit.model import TargetMode
from audit.parsers.cmdline import canonical_name
from audit.parsers.systemd import UNIT_DIRS
from audit.record import Record

#: The package installer of each distribution family (RHEL's depends on its release: see ``rhel_installer``).
INSTALLERS = {"debian": "apt-get", "suse": "zypper"}


class FixTarget(Record):
    """The facts a remediation depends on; the defaults describe a live systemd host of unknown family."""

    mode: TargetMode = TargetMode.LIVE
    runtime: bool = True  # a running kernel to change now (live, or a snapshot that captured /proc)
    family: str | None = None  # 'debian', 'rhel', 'suse'; None: unknown
    installer: str | None = None  # 'apt-get', 'dnf', 'yum', 'zypper'; None: family unknown
    init: str = "systemd"  # 'systemd', or 'sysv' (CentOS/RHEL 6: chkconfig and service)
    loader: str | None = None  # the boot loader the resolver found ('grub2', 'grub2-bls', ...); None: unknown
    family_hint: str = ""  # the resolver's hint for the tool that manages the boot configuration
    config_path: str | None = None  # the boot loader's configuration file
    generated: bool = True  # the boot configuration exists (False: an image's, predicted from its inputs)
    #: the generator's input files (/etc/default/grub, grub.d) and the parameter names (canonical)
    #: their command-line variables hold: where a parameter that is set again must be taken off first
    cmdline_files: tuple[tuple[str, frozenset[str]], ...] = ()
    snapshot_of_image: bool = False  # a snapshot taken of an image root: fixed like the image itself

    @classmethod
    def of(cls, host: Host) -> FixTarget:
        """The target ``host`` is, computed once per host; facts that cannot be read leave their default."""
        return host.fact(_read_target)

    @property
    def image(self) -> bool:
        """An image without a running kernel (a root, or a snapshot taken of one): its fix script runs
        from outside it, every path under ``"$ROOT"``, and changes nothing that runs. A root with a
        /proc (a container's view of a running host) is fixed like that running host."""
        return not self.runtime and (self.mode is TargetMode.IMAGE or self.snapshot_of_image)

    @property
    def now(self) -> bool:
        """Whether fixes change the running system too (a kernel runs there)."""
        return self.runtime

    def path(self, path: str) -> str:
        """``path`` (as seen inside the target) as a shell word: quoted, and under ``"$ROOT"`` on an image."""
        return '"$ROOT"' + shlex.quote(path) if self.image else shlex.quote(path)

    def inside(self, command: str) -> str:
        """``command`` run with the target's own tools: in a chroot on an image (no /proc, /dev needed)."""
        return f'chroot "$ROOT" {command}' if self.image else command

    def files_with(self, names: Iterable[str]) -> list[str]:
        """The generator input files whose command-line variables hold any of ``names``, in reading order."""
        wanted = {canonical_name(n) for n in names}
        return [path for path, held in self.cmdline_files if held & wanted]


def _read_target(host: Host) -> FixTarget:
    try:
        boot = host.fact(boot_cmdline)
        loader, hint, config_path = boot.loader, boot.config.family_hint or "", boot.config.config_path
        generated = not boot.config.predicted
    except (FactUnavailable, FactError):
        loader, hint, config_path, generated = None, "", None, True
    family = distro_family(host)
    installer = rhel_installer(host) if family == "rhel" else INSTALLERS.get(family or "")
    return FixTarget(mode=host.mode, runtime=host.has_runtime, family=family, installer=installer,
                     init="sysv" if _sysv_only(host) else "systemd", loader=loader, family_hint=hint,
                     config_path=config_path, generated=generated, cmdline_files=_cmdline_files(host, family),
                     snapshot_of_image=_snapshot_of_image(host))


def _snapshot_of_image(host: Host) -> bool:
    if host.mode is not TargetMode.SNAPSHOT:
        return False
    from audit.host.snapshot import SnapshotHost  # a large module that a live or root run never needs

    return isinstance(host, SnapshotHost) and host.snapshot.mode == "image"


#: A token of a kernel command line inside a shell assignment: its name, up to ``=``, a blank or a quote.
_TOKEN_NAME = re.compile(r"""(?:^|[\s"'=])([A-Za-z0-9_.-]+)(?==|[\s"']|$)""")


def cmdline_names(text: str) -> frozenset[str]:
    """The parameter names (canonical) on the lines of a GRUB defaults file that set a command-line
    variable. Generous on purpose: a name too many only costs a sed that changes nothing."""
    names: set[str] = set()
    for line in text.splitlines():
        head, eq, value = line.partition("=")
        if eq and "GRUB_CMDLINE_LINUX" in head and not head.lstrip().startswith("#"):
            names.update(canonical_name(m) for m in _TOKEN_NAME.findall(value) if not m.startswith("GRUB_"))
    return frozenset(names)


def _cmdline_files(host: Host, family: str | None) -> tuple[tuple[str, frozenset[str]], ...]:
    """The files grub-mkconfig reads the command line from (grub.d: the Debian family's patch)."""
    paths = [DEFAULT_GRUB]
    if family in (None, "debian"):
        with contextlib.suppress(FactUnavailable, FactError):
            paths += [f"{DEFAULT_GRUB_D}/{n}" for n in sorted(host.listdir(DEFAULT_GRUB_D)) if n.endswith(".cfg")]
    out = []
    for path in paths:
        try:
            names = cmdline_names(host.read_text(path))
        except (FactUnavailable, FactError):
            continue
        if names:
            out.append((path, names))
    return tuple(out)


def distro_family(host: Host) -> str | None:
    """'debian', 'rhel', 'suse' or None, for remediation wording only (os-release, else the release
    files of older hosts: CentOS/RHEL 6 has only /etc/redhat-release)."""
    try:
        return host.fact(facts.distro_family)
    except (FactUnavailable, FactError):
        return None


def rhel_installer(host: Host) -> str:
    """'dnf' on EL8+ and Fedora, 'yum' on EL7 and older (and without os-release: EL6)."""
    try:
        version = host.fact(os_release_fact).info.version_id or ""
    except (FactUnavailable, FactError):
        return "yum"
    major = version.split(".")[0]
    return "dnf" if major.isdigit() and int(major) >= 8 else "yum"


def _sysv_only(host: Host) -> bool:
    """No systemd unit directory but SysV rc directories (CentOS/RHEL 6): services are chkconfig's."""
    return (not any(host.kind(d) == "dir" for d in UNIT_DIRS)
            and any(host.kind(d) == "dir" for d in ("/etc/rc.d", "/etc/init.d")))
