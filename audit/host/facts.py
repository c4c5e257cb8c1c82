"""Facts beside the kernel's own: loaded and built-in modules, crypto drivers, host name, distribution.

Each is a function of the host, declared with the paths it reads. Missing ⇒ FactUnavailable
(skip), malformed ⇒ FactError naming file and line (error). The CPU, kernel and OS facts a ``Host``
exposes as properties live in ``audit.host.kernel``.
"""

from __future__ import annotations

from audit.errors import FactError, FactUnavailable
from audit.host.core import Host
from audit.host.kernel import MODULE_DIRS, OS_RELEASE_PATHS, os_release_fact
from audit.host.registry import fact
from audit.parsers.modules import (
    CryptoAlg,
    parse_modules_builtin,
    parse_proc_crypto,
    parse_proc_modules,
)
from audit.parsers.osrelease import IDENTITY_FILES, OsIdentity, identify_os

MODULES = "/proc/modules"
CRYPTO = "/proc/crypto"
DEV_KVM = "/dev/kvm"


@fact(paths=[MODULES], runtime=True)
def loaded_modules(host: Host) -> frozenset[str]:
    try:
        return host.parse(MODULES, parse_proc_modules, runtime=True)
    except FactUnavailable as exc:
        if host.has_runtime:
            raise FactUnavailable(
                f"{MODULES} does not exist (kernel without loadable module support, or booted with"
                " 'nomodule')",
                source=MODULES,
            ) from exc
        raise


@fact(paths=["/lib/modules/{release}/modules.builtin", "/usr/lib/modules/{release}/modules.builtin"])
def builtin_modules(host: Host) -> tuple[frozenset[str], str]:
    rel = host.kernel_release.release
    for d in MODULE_DIRS:
        path = f"{d}/{rel}/modules.builtin"
        if host.kind(path) == "file":
            return host.parse(path, parse_modules_builtin), path
    raise FactUnavailable(f"no modules.builtin for {rel}")


@fact(paths=[CRYPTO], runtime=True)
def crypto_algs(host: Host) -> list[CryptoAlg]:
    return host.parse(CRYPTO, parse_proc_crypto, runtime=True)


@fact(paths=["/proc/sys/kernel/hostname", "/etc/hostname"])
def hostname(host: Host) -> str:
    for path in ("/proc/sys/kernel/hostname", "/etc/hostname"):
        if host.kind(path) == "file":
            name = host.read_text(path, limit=4096).strip()
            if name:
                return name
    raise FactUnavailable("no hostname recorded")


def _identity(host: Host) -> OsIdentity | None:
    def read(path: str) -> str | None:
        return host.read_text(path, limit=4096) if host.kind(path) == "file" else None

    return identify_os(read)


@fact(paths=[*OS_RELEASE_PATHS, *IDENTITY_FILES])
def distro_family(host: Host) -> str | None:
    """'debian', 'rhel', 'suse' or None, for remediation wording only (never to gate a check).

    os-release first; hosts without it (RHEL 6, whose grub.conf hostaudit still audits, images
    stripped of it) are recognised by lsb-release, the CPE name and the release files."""
    try:
        family = host.fact(os_release_fact).info.family()
        if family:
            return family
    except (FactUnavailable, FactError):
        pass
    ident = _identity(host)
    return ident.family if ident else None


@fact(paths=[*OS_RELEASE_PATHS, *IDENTITY_FILES])
def os_name(host: Host) -> str:
    """A human name for the OS: os-release's PRETTY_NAME, else lsb-release or a release file."""
    try:
        name = host.fact(os_release_fact).info.pretty_name
        if name:
            return name
    except (FactUnavailable, FactError):
        pass
    ident = _identity(host)
    if ident is None or not ident.name:
        raise FactUnavailable("no /etc/os-release, lsb-release or release file")
    return ident.name
