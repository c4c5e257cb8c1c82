"""Installing a tool: its package on each distribution family, with the target's installer."""

from __future__ import annotations

from dataclasses import dataclass

from audit.remedy.target import FixTarget


@dataclass(frozen=True, slots=True, kw_only=True)
class Package:
    """What provides one tool on each family: ``"name"`` or ``"name   # why"``; None: nothing to install there."""

    debian: str | None = None
    rhel: str | None = None
    suse: str | None = None
    otherwise: str | None = None  # a comment for another or an unknown family; None: no line at all
    rhel_installer: str | None = None  # the installer the RHEL advice names whatever the release (else the target's)

    def on(self, family: str | None) -> str | None:
        return {"debian": self.debian, "rhel": self.rhel, "suse": self.suse}.get(family or "")


HUGEADM = Package(debian="libhugetlbfs-bin", rhel="libhugetlbfs-utils", suse="libhugetlbfs",
                  otherwise="# install your distribution's libhugetlbfs tools")
KSMTUNED = Package(debian="ksmtuned", rhel="ksmtuned   # ksm.service: qemu-kvm-common")
STOCK_KERNEL = Package(
    debian="linux-image-amd64   # Debian's stock kernel (Ubuntu: linux-generic)",
    rhel="kernel   # the distribution's stock kernel (yum on EL7)", rhel_installer="dnf",
    suse="kernel-default",
    otherwise="# install your distribution's stock kernel, or rebuild this one with the option enabled",
)


def install_command(installer: str, package: str) -> str:
    return f"{installer} install {package}"


def install(target: FixTarget, package: Package) -> list[str]:
    """The command that installs ``package`` on the target, or its ``otherwise`` advice."""
    name = package.on(target.family)
    if name is None or target.installer is None:
        return [package.otherwise] if package.otherwise else []
    installer = package.rhel_installer if target.family == "rhel" and package.rhel_installer else target.installer
    return [install_command(installer, name)]


def stock_kernel(target: FixTarget) -> list[str]:
    """The honest remedy for a missing kernel option: boot a kernel that was built with it."""
    return install(target, STOCK_KERNEL)
