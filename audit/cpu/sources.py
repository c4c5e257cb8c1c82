"""Where a CPU's flags come from for the cpu commands and pool checks: this machine (``local``), a
snapshot (JSON or collect.sh text), or a saved ``/proc/cpuinfo``; a directory of them for a pool."""

from __future__ import annotations

import os
import sys
from typing import Any, NamedTuple

from audit.errors import FactError, FactUnavailable, ParseError, UsageError
from audit.parsers.cpuinfo import CpuInfo, parse_cpuinfo

CPUINFO = "/proc/cpuinfo"


_VENDORS = {"GenuineIntel": "intel", "AuthenticAMD": "amd", "HygonGenuine": "hygon"}


class CpuSource(NamedTuple):
    name: str  # host name, or the file's name
    source: str  # "local", the path given
    kind: str  # "local", "snapshot", "cpuinfo"
    cpu: CpuInfo
    kernel_release: str | None = None  # the running kernel (local, snapshot of a running host)

    @property
    def vendor(self) -> str | None:
        """'intel', 'amd' or 'hygon' from vendor_id (Hygon is its own vendor for migration)."""
        return _VENDORS.get((self.cpu.vendor or "").strip(), self.cpu.vendor_kind)

    @property
    def arch(self) -> str | None:
        """'x86', 'arm64', 'arm', 's390x', 'powerpc' or None (from what the cpuinfo shows)."""
        return self.cpu.arch

    def describe(self) -> dict[str, Any]:
        from audit.cpu import arm64

        return {
            "name": self.name,
            "source": self.source,
            "input": self.kind,
            "model_name": self.cpu.model_name,
            "vendor": self.vendor,
            "processors": self.cpu.processors,
            "flags_differ": self.cpu.flags_differ,
            "kernel_release": self.kernel_release,
            "arch": self.cpu.arch,
            "implementations": arm64.implementation_docs(self.cpu),
        }


def running_kernel(host: Any) -> str | None:
    """The running kernel's release, when the host (live or a snapshot of one) says it; KVM is
    that kernel's. None for an image, or when the host does not say."""
    try:
        rel = host.kernel_release
    except (FactUnavailable, FactError):
        return None
    return rel.release if rel.how == "running kernel" else None


def _checked(cpu: CpuInfo, where: str) -> CpuInfo:
    if not cpu.flags:
        raise UsageError(f"{where}: no CPU flags found (neither an x86 flags line nor an ARM Features line)")
    return cpu


def load_local() -> CpuSource:
    from audit.host import facts
    from audit.host.core import Host

    host = Host.live()
    try:
        cpu = host.cpuinfo
    except (FactUnavailable, FactError) as exc:
        raise UsageError(f"local: cannot read this machine's {CPUINFO}: {exc}") from None
    try:
        name = host.fact(facts.hostname)
    except (FactUnavailable, FactError):
        name = "local"
    return CpuSource(name=name, source="local", kind="local", cpu=_checked(cpu, "local"),
                     kernel_release=running_kernel(host))


def load_file(path: str, flags: dict[frozenset[str], frozenset[str]] | None = None) -> CpuSource:
    """One input: a snapshot, read only as far as the CPU commands need (its metadata,
    /proc/cpuinfo, the host name and the running kernel's release, with the same checks as a full
    load on those entries: ``parse_snapshot(partial=True)``), else a /proc/cpuinfo file. Hosts of one
    CPU model share one set of flag names through ``flags``: a pool of ten thousand hosts holds one
    copy of each model's flags, not ten thousand."""
    from audit.host.fs import MAX_READ
    from audit.host.snapshot import host_from_snapshot, looks_like_snapshot, parse_snapshot, read_input

    blob = read_input(path, what="input")
    stem = os.path.basename(path)
    if looks_like_snapshot(blob):
        try:
            snap = parse_snapshot(blob, partial=True)
            del blob
            host = host_from_snapshot(snap, name=path)
            try:
                cpu = host.cpuinfo
            except FactUnavailable:
                raise UsageError(f"no {CPUINFO} in it (a snapshot of an image has no CPU)") from None
            except FactError as exc:
                raise UsageError(str(exc)) from None
            release = running_kernel(host)
        except UsageError as exc:  # a SnapshotError from an entry read here, too
            raise UsageError(f"snapshot {path}: {exc}") from None
        if flags is not None:
            shared = frozenset(sys.intern(f) for f in cpu.flags)
            cpu = cpu._replace(flags=flags.setdefault(shared, shared))
        return CpuSource(name=snap.hostname or stem, source=path, kind="snapshot", cpu=_checked(cpu, path),
                         kernel_release=release)
    if b"\0" in blob[:65536]:
        raise UsageError(f"{path}: neither a snapshot nor a /proc/cpuinfo file (binary data)")
    if len(blob) > MAX_READ:  # what hostaudit reads of any host file, /proc/cpuinfo included
        raise UsageError(f"{path}: {len(blob)} bytes, larger than the {MAX_READ}-byte limit of a /proc/cpuinfo file")
    try:
        cpu = parse_cpuinfo(blob.decode("utf-8", errors="replace"))
    except ParseError as exc:
        where = f"{path}:{exc.line}" if exc.line else path
        raise UsageError(f"{where}: neither a snapshot nor a /proc/cpuinfo file ({exc.problem})") from None
    return CpuSource(name=stem, source=path, kind="cpuinfo", cpu=_checked(cpu, path))


def load_input(spec: str, *, allow_dir: bool = False) -> list[CpuSource]:
    if spec == "local":
        return [load_local()]
    if os.path.isdir(spec):
        if not allow_dir:
            raise UsageError(f"{spec}: is a directory (give a snapshot or a /proc/cpuinfo file)")
        names = sorted(n for n in os.listdir(spec) if not n.startswith("."))
        files = [os.path.join(spec, n) for n in names if os.path.isfile(os.path.join(spec, n))]
        if not files:
            raise UsageError(f"{spec}: no snapshot or /proc/cpuinfo file in this directory")
        flags: dict[frozenset[str], frozenset[str]] = {}
        return [load_file(f, flags) for f in files]
    if not os.path.exists(spec):
        raise UsageError(f"{spec}: no such file (give a snapshot, a /proc/cpuinfo file or 'local')")
    return [load_file(spec)]
