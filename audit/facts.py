"""Core facts: CPU, kernel release and build config, command line, OS, modules and crypto drivers.

Each is a function of the host, declared with the paths it reads. Missing ⇒ FactUnavailable
(skip), malformed ⇒ FactError naming file and line (error).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from audit.errors import FactError, FactUnavailable
from audit.fs import gunzip
from audit.host import Host, fact, parse_text
from audit.model import TargetMode
from audit.parsers.cmdline import Param, tokenize
from audit.parsers.cpuinfo import CpuInfo, parse_cpuinfo
from audit.parsers.kconfig import KernelConfig, parse_kconfig
from audit.parsers.modules import (
    CryptoAlg,
    parse_modules_builtin,
    parse_proc_crypto,
    parse_proc_modules,
)
from audit.parsers.osrelease import OsRelease, parse_os_release
from audit.parsers.version import newest

CPUINFO = "/proc/cpuinfo"
OSRELEASE_PROC = "/proc/sys/kernel/osrelease"
CONFIG_GZ = "/proc/config.gz"
CMDLINE = "/proc/cmdline"
MODULES = "/proc/modules"
CRYPTO = "/proc/crypto"
DEV_KVM = "/dev/kvm"
OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")
MODULE_DIRS = ("/lib/modules", "/usr/lib/modules")
_RELEASE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+~-]{0,127}$")


@fact(paths=[CPUINFO], runtime=True)
def cpuinfo(host: Host) -> CpuInfo:
    return host.parse(CPUINFO, parse_cpuinfo, runtime=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class KernelRelease:
    release: str
    source: str  # where it came from
    how: str  # "running kernel", "default boot link", "newest installed kernel"


def _strip_kernel_prefix(name: str) -> str | None:
    for prefix in ("vmlinuz-", "config-", "vmlinux-", "bzImage-"):
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix) :]
    return None


@fact(paths=[OSRELEASE_PROC, "?/vmlinuz", "?/boot/vmlinuz", "?/boot/*", "/boot/config-*", "/lib/modules/*",
             "/usr/lib/modules/*"])
def kernel_release(host: Host) -> KernelRelease:
    """Live: the running kernel. Image: what it boots by default, else its newest kernel."""
    if host.mode is not TargetMode.IMAGE or host.kind(OSRELEASE_PROC) == "file":
        try:
            rel = host.read_text(OSRELEASE_PROC).strip()
            if rel:
                if not _RELEASE.match(rel):
                    raise FactError(OSRELEASE_PROC, f"not a kernel release: {rel[:60]!r}")
                return KernelRelease(release=rel, source=OSRELEASE_PROC, how="running kernel")
        except FactUnavailable:
            pass
    for link in ("/vmlinuz", "/boot/vmlinuz"):
        target = host.readlink(link)
        if target:
            rel = _strip_kernel_prefix(posixpath.basename(target))
            if rel:
                return KernelRelease(release=rel, source=f"{link} -> {target}", how="default boot link")
    try:
        names = host.listdir("/boot")
    except FactUnavailable:
        names = []
    found = [r for n in names if (r := _strip_kernel_prefix(n)) and not r.endswith((".old", ".bak"))]
    best = newest(found)
    if best:
        return KernelRelease(release=best, source="/boot", how="newest installed kernel (by version order)")
    for d in MODULE_DIRS:
        try:
            rels = [n for n in host.listdir(d) if host.kind(f"{d}/{n}") == "dir"]
        except (FactUnavailable, FactError):
            continue
        best = newest(rels)
        if best:
            return KernelRelease(release=best, source=d, how="newest kernel module tree (by version order)")
    raise FactUnavailable("no kernel found: no /proc/sys/kernel/osrelease, /boot/vmlinuz-* or /lib/modules/*")


@dataclass(frozen=True, slots=True, kw_only=True)
class KconfigFact:
    config: KernelConfig
    source: str
    release: str


def kconfig_paths(release: str) -> tuple[str, ...]:
    return (
        f"/boot/config-{release}",
        f"/lib/modules/{release}/config",
        f"/usr/lib/modules/{release}/config",
    )


@fact(paths=[CONFIG_GZ, "/boot/config-{release}", "/lib/modules/{release}/config",
             "/usr/lib/modules/{release}/config"])
def kernel_config(host: Host) -> KconfigFact:
    """/proc/config.gz (the running kernel), then the release's config file."""
    rel = host.kernel_release.release
    if host.kind(CONFIG_GZ) == "file" and host.kernel_release.how == "running kernel":
        raw = host.read_bytes(CONFIG_GZ)
        text = gunzip(raw, source=CONFIG_GZ).decode("utf-8", errors="replace")
        return KconfigFact(config=parse_text(CONFIG_GZ, text, parse_kconfig), source=CONFIG_GZ, release=rel)
    for path in kconfig_paths(rel):
        if host.kind(path) == "file":
            return KconfigFact(config=host.parse(path, parse_kconfig), source=path, release=rel)
    tried = ", ".join((CONFIG_GZ, *kconfig_paths(rel)))
    raise FactUnavailable(f"no kernel config for {rel} (looked for {tried})")


@fact(paths=[CMDLINE], runtime=True)
def proc_cmdline(host: Host) -> list[Param]:
    return host.parse(CMDLINE, tokenize, runtime=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class OsReleaseFact:
    info: OsRelease
    source: str


@fact(paths=OS_RELEASE_PATHS)
def os_release_fact(host: Host) -> OsReleaseFact:
    for path in OS_RELEASE_PATHS:
        if host.kind(path) == "file":
            return OsReleaseFact(info=host.parse(path, parse_os_release), source=path)
    raise FactUnavailable("no /etc/os-release or /usr/lib/os-release")


def os_release(host: Host) -> OsRelease:
    return host.fact(os_release_fact).info


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
