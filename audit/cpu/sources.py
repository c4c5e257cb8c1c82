"""Where a CPU's flags come from for the cpu commands and pool checks: this machine (``local``), a
snapshot (JSON or collect.sh text), or a saved ``/proc/cpuinfo``; a directory of them for a pool."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from audit.errors import FactError, FactUnavailable, ParseError, UsageError
from audit.inputfile import files_in
from audit.parsers.cpuinfo import CpuInfo, parse_cpuinfo
from audit.record import Record

CPUINFO = "/proc/cpuinfo"


_VENDORS = {"GenuineIntel": "intel", "AuthenticAMD": "amd", "HygonGenuine": "hygon"}


class CpuSource(Record):
    name: str  # host name, or the file's name
    source: str  # "local", the path given
    kind: str  # "local", "snapshot", "cpuinfo"
    cpu: CpuInfo
    kernel_release: str | None = None  # the running kernel (local, snapshot of a running host)
    #: where ``cpu.flags`` come from: "/proc/cpuinfo", or a guest-CPU view ("virsh domcapabilities
    #: host-model", "libvirt QEMU capabilities cache"), which the CPU commands prefer when present
    view: str = CPUINFO
    guest: Any = None  # audit.cpu.libvirtcaps.GuestCpu behind the view, when one was read
    notes: tuple[str, ...] = ()  # why a guest-CPU view was not used, and the like

    @property
    def vendor(self) -> str | None:
        """'intel', 'amd' or 'hygon' from vendor_id (Hygon is its own vendor for migration)."""
        return _VENDORS.get((self.cpu.vendor or "").strip(), self.cpu.vendor_kind)

    @property
    def arch(self) -> str | None:
        """'x86', 'arm64', 'arm', 's390x', 'powerpc' or None (from what the cpuinfo shows)."""
        return self.cpu.arch

    def describe(self) -> dict[str, Any]:
        """The host as the CPU commands' JSON shows it."""
        cpu = self.cpu
        if cpu.midrs:
            from audit.cpu import arm64

            impls = arm64.implementation_docs(cpu)
        else:
            impls = []
        return {
            "name": self.name,
            "source": self.source,
            "input": self.kind,
            "model_name": cpu.model_name,
            "vendor": self.vendor,
            "processors": cpu.processors,
            "flags_differ": cpu.flags_differ,
            "kernel_release": self.kernel_release,
            "arch": cpu.arch,
            "implementations": impls,
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


def _shared_flags(flags: dict[frozenset[str], frozenset[str]], mine: frozenset[str]) -> frozenset[str]:
    """The one set of flag names (interned) of the hosts with the flags ``mine``."""
    shared = flags.get(mine)
    if shared is None:
        shared = frozenset(sys.intern(f) for f in mine)
        flags[shared] = shared
    return shared


def load_file(path: str, flags: dict[frozenset[str], frozenset[str]] | None = None) -> CpuSource:
    """One input: a snapshot, read only as far as the CPU commands need (its metadata,
    /proc/cpuinfo, the host name and the running kernel's release, with the same checks as a full
    load on those entries: ``parse_snapshot(partial=True)``), else a /proc/cpuinfo file. Hosts of one
    CPU model share one set of flag names through ``flags``: a pool of ten thousand hosts holds one
    copy of each model's flags, not ten thousand."""
    from audit.cpu import libvirtcaps as lc
    from audit.host.fs import MAX_READ
    from audit.host.snapshot import host_from_snapshot, looks_like_snapshot, parse_snapshot, read_input

    blob = read_input(path, what="input")
    stem = os.path.basename(path)
    if lc.looks_like_xml(blob):
        return from_caps(lc.parse_caps(blob, path), path)
    if looks_like_snapshot(blob):
        try:
            snap = parse_snapshot(blob, partial=True, skim=True)
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
        cpu = _checked(cpu, path)
        view, guest, notes = _cached_view(host, cpu)
        if view != CPUINFO:  # the cache's KVM host CPU; a stale one is kept (guest) but not compared
            cpu = cpu._replace(flags=lc.guest_flags(guest))
        if flags is not None:
            cpu = cpu._replace(flags=_shared_flags(flags, cpu.flags))
        return CpuSource(name=snap.hostname or stem, source=path, kind="snapshot", cpu=cpu,
                         kernel_release=release, view=view, guest=guest, notes=notes)
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


CACHE_VIEW = "libvirt QEMU capabilities cache (KVM host CPU)"
DOMCAPS_VIEW = "virsh domcapabilities host-model"


def _cached_view(host: Any, cpu: CpuInfo) -> tuple[str, Any, tuple[str, ...]]:
    """(view, GuestCpu or None, notes): libvirt's QEMU capabilities cache of a snapshot when it is
    current, else /proc/cpuinfo and why."""
    from audit.cpu.libvirtcaps import kvm_caps

    entry, why = kvm_caps(host, cpu.arch)
    if entry is None:
        return CPUINFO, None, (why,) if why else ()
    if entry.stale:
        return CPUINFO, entry.caps, (f"libvirt's QEMU capabilities cache {entry.path} is stale "
                                     f"({'; '.join(entry.stale)}): {CPUINFO} used for the CPU",)
    if not entry.caps.host_props:
        return CPUINFO, entry.caps, (f"{entry.path} has no KVM host CPU: {CPUINFO} used for the CPU",)
    unchecked = f"; not compared with the host: {', '.join(entry.unchecked)}" if entry.unchecked else ""
    return CACHE_VIEW, entry.caps, (f"CPU from libvirt's QEMU capabilities cache {entry.path}, "
                                    f"in preference to {CPUINFO}{unchecked}",)


def from_caps(caps: Any, path: str) -> CpuSource:
    """A CpuSource from ``virsh domcapabilities`` output or a QEMU capabilities cache file: the
    guest-CPU view. ``virsh capabilities`` is refused: its <host><cpu> is the physical CPU."""
    from audit.cpu import libvirtcaps as lc

    if caps.kind == lc.KIND_CAPS:
        raise UsageError(f"{path}: 'virsh capabilities' output: its <host><cpu> is the physical CPU, not what "
                         "KVM can give a guest; give 'virsh domcapabilities' output (the guest-CPU view); "
                         "'guest check' takes it with --caps, for machine types")
    if not caps.has_cpu_view:
        raise UsageError(f"{path}: {caps.kind} without a host-model CPU or a KVM host CPU: nothing to compare")
    view = DOMCAPS_VIEW if caps.kind == lc.KIND_DOMCAPS else CACHE_VIEW
    label = f"host-model {caps.host_model}" if caps.host_model else "KVM host CPU"
    flags = lc.guest_flags(caps)
    notes: tuple[str, ...] = ()
    if caps.kind == lc.KIND_CACHE:
        notes = ("a capabilities cache given alone: whether it is stale (kernel, microcode) is not known",)
    elif caps.virt_type not in (None, "kvm"):
        notes = (f"domcapabilities of domain type {caps.virt_type!r}, not 'kvm': what QEMU emulates, not what "
                 "KVM gives a guest",)
    cpu = CpuInfo(vendor=lc.VENDOR_ID.get(caps.vendor or ""), model_name=f"guest CPU: {label}", family=None,
                  model=None, flags=flags, processors=0, arch=lc.ARCH.get(caps.arch or ""))
    if not flags:
        raise UsageError(f"{path}: no CPU features found in its {label}")
    return CpuSource(name=os.path.basename(path), source=path, kind=caps.kind, cpu=cpu, view=view, guest=caps,
                     notes=notes)


def load_input(spec: str, *, allow_dir: bool = False) -> list[CpuSource]:
    if spec == "local":
        return [load_local()]
    if os.path.isdir(spec):
        if not allow_dir:
            raise UsageError(f"{spec}: is a directory (give a snapshot or a /proc/cpuinfo file)")
        try:
            files = files_in(spec)
        except OSError as exc:
            raise UsageError(f"{spec}: cannot read the directory: {exc.strerror or exc}") from None
        if not files:
            raise UsageError(f"{spec}: no snapshot or /proc/cpuinfo file in this directory")
        return load_files(files)
    if not os.path.exists(spec):
        raise UsageError(f"{spec}: no such file (give a snapshot, a /proc/cpuinfo file or 'local')")
    return [load_file(spec)]


#: A folder of at least this many files is read by one process per core (a pool of thousands of
#: snapshots; below this, starting the processes costs more than it saves).
PARALLEL_FROM = 200


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _load_quietly(path: str) -> tuple[Any, ...] | None:
    """``load_file`` in a worker process, as ``_to_wire`` sends it; None when it fails (the parent
    reads that file again itself, so its error is raised exactly as reading it alone raises it)."""
    try:
        return _to_wire(load_file(path))
    except Exception:
        return None


def _to_wire(src: CpuSource) -> tuple[Any, ...]:
    """A source as a worker sends it to the parent: plain tuples, and the flags as one string (their
    names sorted, one per line) when no name holds a newline. Pickling a record calls Python code on
    both sides, and a host's hundred-odd flag names pickled one by one cost the parent and the
    worker more than all the rest of the host (issue #12: about a third of ``cpu baseline``'s time
    over 10,000 snapshots); one string is copied whole, and the parent makes one set per distinct
    string."""
    cpu = src.cpu
    names = sorted(cpu.flags)
    text = "\n".join(names) if names and not any("\n" in n for n in names) else None
    plain = tuple(cpu) if text is None else (*cpu[:_FLAGS], frozenset(), *cpu[_FLAGS + 1:])
    return (*src[:_CPU], plain, *src[_CPU + 1:]), text


def _from_wire(wire: tuple[Any, ...], flags: dict[frozenset[str], frozenset[str]],
               by_text: dict[str, frozenset[str]]) -> CpuSource:
    """The source ``_to_wire`` sent, its flags the pool's one set of those names."""
    fields, text = wire
    cpu = fields[_CPU]
    if text is None:
        shared = _shared_flags(flags, cpu[_FLAGS])
    else:
        shared = by_text.get(text)
        if shared is None:
            shared = by_text[text] = _shared_flags(flags, frozenset(text.split("\n")))
    return CpuSource._make((*fields[:_CPU], CpuInfo._make((*cpu[:_FLAGS], shared, *cpu[_FLAGS + 1:])),
                            *fields[_CPU + 1:]))


_CPU = CpuSource._fields.index("cpu")
_FLAGS = CpuInfo._fields.index("flags")


def load_files(paths: Sequence[str]) -> list[CpuSource]:
    """``load_file`` of every path, in order, hosts of one CPU model sharing one set of flag names;
    many files are read in parallel, one process per core (forked: nothing to import again)."""
    import multiprocessing

    flags: dict[frozenset[str], frozenset[str]] = {}
    workers = min(_cores(), len(paths) // (PARALLEL_FROM // 2))
    if len(paths) < PARALLEL_FROM or workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return [load_file(p, flags) for p in paths]
    out = []
    by_text: dict[str, frozenset[str]] = {}
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers, initializer=signal.signal, initargs=(signal.SIGINT, signal.SIG_IGN)) as pool:
        for path, wire in zip(paths, pool.imap(_load_quietly, paths, chunksize=32), strict=True):
            if wire is None:
                out.append(load_file(path, flags))  # raises what a read of this file alone raises
            else:
                out.append(_from_wire(wire, flags, by_text))
    return out
