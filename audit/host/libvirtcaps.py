"""libvirt's QEMU capabilities cache as a fact: the files (what QEMU/KVM told libvirt it can give a
guest) and what the host says of its kernel and microcode, to tell whether they are stale.

This layer only reads, bounded; audit.cpu.libvirtcaps parses the XML (bounded: no DOCTYPE, depth
and element caps) and judges staleness. A snapshot carries the files through the declared glob.
"""

from __future__ import annotations

from audit.errors import FactError, FactUnavailable
from audit.host.core import Host
from audit.host.registry import fact
from audit.record import Record

CACHE_DIR = "/var/cache/libvirt/qemu/capabilities"
CPUINFO = "/proc/cpuinfo"
KERNEL_VERSION = "/proc/sys/kernel/version"
MAX_FILES = 64  # one file per QEMU binary; a host has a handful
MAX_BYTES = 8 << 20  # libvirt's own caps_*.xml are 150-300 KB


class CacheFiles(Record):
    files: tuple[tuple[str, bytes], ...]  # (path inside the root, its bytes), sorted by path
    kernel_release: str | None  # the running kernel, when the host says
    kernel_version: str | None  # /proc/sys/kernel/version (uname -v)
    cpuinfo: str | None  # /proc/cpuinfo, for its microcode line


@fact(paths=[f"{CACHE_DIR}/*", CPUINFO, KERNEL_VERSION, "/proc/sys/kernel/osrelease"])
def qemu_caps_cache(host: Host) -> CacheFiles:
    """Every ``*.xml`` in libvirt's QEMU capabilities cache; FactUnavailable when there is none."""
    names = sorted(n for n in host.listdir(CACHE_DIR) if n.endswith(".xml"))  # FactUnavailable if no dir
    if len(names) > MAX_FILES:
        raise FactError(CACHE_DIR, f"{len(names)} files, more than the {MAX_FILES} hostaudit reads")
    files = tuple((p, host.read_bytes(p, limit=MAX_BYTES)) for p in (f"{CACHE_DIR}/{n}" for n in names)
                  if host.kind(p) == "file")
    if not files:
        raise FactUnavailable(f"{CACHE_DIR} holds no capabilities (libvirtd has not probed QEMU)", source=CACHE_DIR)
    version = _optional_text(host, KERNEL_VERSION)
    return CacheFiles(files, _running_release(host), version.strip() if version else None,
                      _optional_text(host, CPUINFO))


def _running_release(host: Host) -> str | None:
    try:
        rel = host.kernel_release
    except (FactUnavailable, FactError):
        return None
    return rel.release if rel.how == "running kernel" else None


def _optional_text(host: Host, path: str) -> str | None:
    try:
        return host.read_text(path) if host.kind(path) == "file" else None
    except (FactUnavailable, FactError):
        return None
