"""The facts a ``Host`` exposes as properties: CPU, kernel release and build config, the running
command line, the OS release.

Each is a function of the host, declared with the paths it reads. Missing ⇒ FactUnavailable
(skip), malformed ⇒ FactError naming file and line (error).
"""

from __future__ import annotations

import posixpath
import re

from audit.errors import FactError, FactUnavailable
from audit.host.fs import gunzip
from audit.host.registry import HostReader, fact, parse_text
from audit.model import TargetMode
from audit.parsers.cmdline import Param, tokenize
from audit.parsers.cpuinfo import CpuInfo, parse_cpuinfo
from audit.parsers.kconfig import KernelConfig, parse_kconfig
from audit.parsers.osrelease import OsRelease, parse_os_release
from audit.parsers.version import newest
from audit.record import Record

CPUINFO = "/proc/cpuinfo"
OSRELEASE_PROC = "/proc/sys/kernel/osrelease"
CONFIG_GZ = "/proc/config.gz"
CMDLINE = "/proc/cmdline"
OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")
MODULE_DIRS = ("/lib/modules", "/usr/lib/modules")
_RELEASE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+~-]{0,127}$")


@fact(paths=[CPUINFO], runtime=True)
def cpuinfo(host: HostReader) -> CpuInfo:
    return host.parse(CPUINFO, parse_cpuinfo, runtime=True)


class KernelRelease(Record):
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
def kernel_release(host: HostReader) -> KernelRelease:
    """Live: the running kernel. Image: what it boots by default, else its newest kernel."""
    if host.mode is not TargetMode.IMAGE or host.has_runtime:
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


class KconfigFact(Record):
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
def kernel_config(host: HostReader) -> KconfigFact:
    """/proc/config.gz (the running kernel), then the release's config file."""
    running = host.fact(kernel_release)
    rel = running.release
    if host.kind(CONFIG_GZ) == "file" and running.how == "running kernel":
        raw = host.read_bytes(CONFIG_GZ)
        text = gunzip(raw, source=CONFIG_GZ).decode("utf-8", errors="replace")
        return KconfigFact(config=parse_text(CONFIG_GZ, text, parse_kconfig), source=CONFIG_GZ, release=rel)
    for path in kconfig_paths(rel):
        if host.kind(path) == "file":
            return KconfigFact(config=host.parse(path, parse_kconfig), source=path, release=rel)
    tried = ", ".join((CONFIG_GZ, *kconfig_paths(rel)))
    raise FactUnavailable(f"no kernel config for {rel} (looked for {tried})")


@fact(paths=[CMDLINE], runtime=True)
def proc_cmdline(host: HostReader) -> list[Param]:
    return host.parse(CMDLINE, tokenize, runtime=True)


class OsReleaseFact(Record):
    info: OsRelease
    source: str


@fact(paths=OS_RELEASE_PATHS)
def os_release_fact(host: HostReader) -> OsReleaseFact:
    for path in OS_RELEASE_PATHS:
        if host.kind(path) == "file":
            return OsReleaseFact(info=host.parse(path, parse_os_release), source=path)
    raise FactUnavailable("no /etc/os-release or /usr/lib/os-release")


def os_release(host: HostReader) -> OsRelease:
    return host.fact(os_release_fact).info
