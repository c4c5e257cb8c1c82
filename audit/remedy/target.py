"""What a remediation is written for: the machine in front of the check, read once per host."""

from __future__ import annotations

from dataclasses import dataclass

from audit.boot.facts import boot_cmdline
from audit.errors import FactError, FactUnavailable
from audit.host import facts
from audit.host.core import Host
from audit.host.kernel import os_release_fact
from audit.model import TargetMode
from audit.parsers.systemd import UNIT_DIRS

#: The package installer of each distribution family (RHEL's depends on its release: see ``rhel_installer``).
INSTALLERS = {"debian": "apt-get", "suse": "zypper"}


@dataclass(frozen=True, slots=True, kw_only=True)
class FixTarget:
    """The facts a remediation depends on; the defaults describe a live systemd host of unknown family."""

    mode: TargetMode = TargetMode.LIVE
    runtime: bool = True  # a running kernel to change now (live, or a snapshot that captured /proc)
    family: str | None = None  # 'debian', 'rhel', 'suse'; None: unknown
    installer: str | None = None  # 'apt-get', 'dnf', 'yum', 'zypper'; None: family unknown
    init: str = "systemd"  # 'systemd', or 'sysv' (CentOS/RHEL 6: chkconfig and service)
    loader: str | None = None  # the boot loader the resolver found ('grub2', 'grub2-bls', ...); None: unknown
    family_hint: str = ""  # the resolver's hint for the tool that manages the boot configuration
    config_path: str | None = None  # the boot loader's configuration file

    @classmethod
    def of(cls, host: Host) -> FixTarget:
        """The target ``host`` is, computed once per host; facts that cannot be read leave their default."""
        return host.fact(_read_target)


def _read_target(host: Host) -> FixTarget:
    try:
        boot = host.fact(boot_cmdline)
        loader, hint, config_path = boot.loader, boot.config.family_hint or "", boot.config.config_path
    except (FactUnavailable, FactError):
        loader, hint, config_path = None, "", None
    family = distro_family(host)
    installer = rhel_installer(host) if family == "rhel" else INSTALLERS.get(family or "")
    return FixTarget(mode=host.mode, runtime=host.has_runtime, family=family, installer=installer,
                     init="sysv" if _sysv_only(host) else "systemd", loader=loader, family_hint=hint,
                     config_path=config_path)


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
