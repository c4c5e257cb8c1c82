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


DISTRO_MARKERS = (("/etc/redhat-release", "rhel"), ("/etc/centos-release", "rhel"), ("/etc/debian_version", "debian"),
                  ("/etc/SuSE-release", "suse"))


@fact(paths=[*OS_RELEASE_PATHS, *(p for p, _ in DISTRO_MARKERS)])
def distro_family(host: Host) -> str | None:
    """'debian', 'rhel', 'suse' or None, for remediation wording only (never to gate a check).

    os-release first; hosts older than it (RHEL 6, whose grub.conf hostaudit still audits) are
    recognised by their release files."""
    try:
        family = host.fact(os_release_fact).info.family()
        if family:
            return family
    except (FactUnavailable, FactError):
        pass
    for path, family in DISTRO_MARKERS:
        if host.kind(path) == "file":
            return family
    return None


@fact(paths=[*OS_RELEASE_PATHS, *(p for p, _ in DISTRO_MARKERS)])
def os_name(host: Host) -> str:
    """A human name for the OS: os-release's PRETTY_NAME, else the first line of a release file."""
    try:
        name = host.fact(os_release_fact).info.pretty_name
        if name:
            return name
    except (FactUnavailable, FactError):
        pass
    for path, _ in DISTRO_MARKERS:
        if path != "/etc/debian_version" and host.kind(path) == "file":
            first = host.read_text(path, limit=4096).strip().splitlines()
            if first:
                return first[0].strip()
    if host.kind("/etc/debian_version") == "file":
        return "Debian " + host.read_text("/etc/debian_version", limit=4096).strip()
    raise FactUnavailable("no /etc/os-release or release file")
