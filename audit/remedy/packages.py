"""Installing a tool: its package on each distribution family, with the target's installer.

Installs never ask (``-y``, ``DEBIAN_FRONTEND=noninteractive``), pull only what the package needs
(no recommends, no weak dependencies) and are skipped when the package is already installed, so a
second run changes nothing. Into an image they run through the image's own package database
(``chroot "$ROOT" apt-get``, ``dnf --installroot``, ``zypper --root``) and never start a daemon: a
temporary ``policy-rc.d`` that refuses every start is in place while apt runs.
"""

from __future__ import annotations

from audit.model import replace
from audit.record import Record
from audit.remedy.target import FixTarget


class Package(Record):
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

POLICY_RC_D = "/usr/sbin/policy-rc.d"
#: invoke-rc.d asks policy-rc.d before starting a service; 101 means "not allowed" (Debian policy 9.3.3.1)
NO_DAEMONS = (f'[[ -e "$ROOT"{POLICY_RC_D} ]] || {{ printf \'#!/bin/sh\\nexit 101\\n\' > "$ROOT"{POLICY_RC_D};'
              f' chmod 755 "$ROOT"{POLICY_RC_D}; trap \'rm -f -- "$ROOT"{POLICY_RC_D}\' EXIT; }}'
              "   # no daemon starts inside the image (removed when the script ends)")


def _installed(target: FixTarget, installer: str, name: str) -> str:
    """A command that succeeds when ``name`` is installed on the target."""
    if installer == "apt-get":
        return target.inside(f"dpkg-query -W -f='${{db:Status-Status}}' {name}") + " 2>/dev/null | grep -qx installed"
    root = ' --root "$ROOT"' if target.image else ""
    return f"rpm{root} -q {name} >/dev/null 2>&1"


def _installer_command(target: FixTarget, installer: str, name: str) -> str:
    if installer == "apt-get":
        return "DEBIAN_FRONTEND=noninteractive " + target.inside(f"apt-get install -y --no-install-recommends {name}")
    if installer == "zypper":
        root = ' --root "$ROOT"' if target.image else ""
        return f"zypper{root} --non-interactive install --no-recommends {name}"
    root = ' --installroot "$ROOT"' if target.image else ""
    weak = " --setopt=install_weak_deps=False" if installer == "dnf" else ""
    return f"{installer}{root} -y{weak} install {name}"


def install_command(target: FixTarget, installer: str, package: str) -> list[str]:
    """Commands that install ``package`` (``"name"`` or ``"name   # why"``) with ``installer`` unless
    it is installed already."""
    name, hash_, why = package.partition("#")
    name = name.strip()
    cmd = f"{_installed(target, installer, name)} || {_installer_command(target, installer, name)}"
    cmds = [cmd + (f"   #{why}" if hash_ else "")]
    if installer == "apt-get" and target.image:
        cmds.insert(0, NO_DAEMONS)
    return cmds


def install(target: FixTarget, package: Package) -> list[str]:
    """The commands that install ``package`` on the target, or its ``otherwise`` advice."""
    name = package.on(target.family)
    if name is None or target.installer is None:
        return [package.otherwise] if package.otherwise else []
    installer = package.rhel_installer if target.family == "rhel" and package.rhel_installer else target.installer
    return install_command(target, installer, name)


#: Debian's stock kernel metapackage per architecture (the kernel's names: audit.host.arch), built
#: from linux-signed-<arch>: linux-image-amd64 "Linux for 64-bit PCs", linux-image-arm64 "Linux for
#: 64-bit ARMv8 machines" (packages.debian.org). Red Hat's ``kernel`` and SUSE's ``kernel-default``
#: are named alike on every architecture; Ubuntu's ``linux-generic`` too.
DEBIAN_STOCK_KERNEL = {"x86_64": "linux-image-amd64", "arm64": "linux-image-arm64"}


def stock_kernel(target: FixTarget, arch: str | None = None) -> list[str]:
    """The honest remedy for a missing kernel option: boot a kernel that was built with it.

    ``arch`` is the target's architecture (None: unknown, advised as before: the amd64 package).
    On an architecture without a Debian name here, a Debian target gets the ``otherwise`` advice."""
    if arch is None or arch == "x86_64":
        return install(target, STOCK_KERNEL)
    name = DEBIAN_STOCK_KERNEL.get(arch)
    debian = f"{name}   # Debian's stock kernel (Ubuntu: linux-generic)" if name else None
    return install(target, replace(STOCK_KERNEL, debian=debian))
