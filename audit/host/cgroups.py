"""Facts for control groups: the cgroup mounts, /proc/cgroups, the auditing process's own cgroups,
and the cgroup v2 tree down to libvirt's guest partition (machine.slice, or /machine without systemd).

Every path is declared with ``@fact`` so snapshots carry it. The cgroup v2 files are declared where
systemd and OpenRC mount the hierarchy: ``/sys/fs/cgroup`` (unified) and ``/sys/fs/cgroup/unified``
(hybrid). The partition directories are declared as directories, so a snapshot keeps their listing:
the guests' cgroups (``machine-qemu\\x2d1\\x2dvm.scope``) are told apart from interface files by name.
"""

from __future__ import annotations

import posixpath

from audit.errors import FactError, FactUnavailable
from audit.host.core import Host
from audit.host.registry import fact
from audit.parsers.cgroups import (
    CGROUP_V1,
    CGROUP_V2,
    CgroupSubsys,
    ProcCgroup,
    parse_cgroup_mountinfo,
    parse_cgroup_mounts,
    parse_controller_list,
    parse_proc_cgroups,
    parse_proc_pid_cgroup,
)
from audit.parsers.mounts import Mount, normalize_mount_path
from audit.record import Record

PROC_CGROUPS = "/proc/cgroups"
SELF_MOUNTINFO = "/proc/self/mountinfo"
PROC_MOUNTS = "/proc/mounts"
SELF_CGROUP = "/proc/self/cgroup"
CGROUP_FS = "/sys/fs/cgroup"
#: where systemd (and OpenRC's "hybrid" mode) mount cgroup v2 beside the v1 hierarchies
HYBRID_UNIFIED = "/sys/fs/cgroup/unified"
V2_ROOTS = (CGROUP_FS, HYBRID_UNIFIED)
#: libvirt's default resource partition "/machine": systemd's machine.slice, or a plain "machine"
#: directory where libvirt manages the cgroups itself (no systemd)
GUEST_PARTITIONS = ("machine.slice", "machine")
CONTROLLERS_FILE = "cgroup.controllers"
SUBTREE_FILE = "cgroup.subtree_control"
#: sd_booted(3): systemd is the init system of the running host when this directory exists
RUN_SYSTEMD = "/run/systemd/system"
#: the names a child cgroup of a guest partition has: systemd units (machined's scopes) and
#: libvirt's own groups without systemd ("qemu-1-vm.libvirt-qemu")
_CHILD_SUFFIXES = (".scope", ".slice", ".service")
_LIBVIRT_CHILD = ".libvirt-"


class CgroupMounts(Record):
    mounts: tuple[Mount, ...]  # the cgroup and cgroup2 rows, in table order
    source: str  # the file they were read from
    fs_mount: Mount | None = None  # what is mounted on /sys/fs/cgroup itself (a tmpfs on v1 hosts)


def _fs_row(text: str, source: str) -> Mount | None:
    """The visible row mounted on /sys/fs/cgroup, whatever its type (only those rows are parsed)."""
    from audit.parsers.mounts import parse_mountinfo, parse_mounts

    keep = [ln if (f" {CGROUP_FS} " in ln and len(ln) < 8192) else "" for ln in text.split("\n")]
    try:
        rows = (parse_mountinfo if source == SELF_MOUNTINFO else parse_mounts)("\n".join(keep))
    except ValueError:
        return None  # the cgroup rows are what is judged; a broken row here only loses a hint
    rows = [m for m in rows if normalize_mount_path(m.target) == CGROUP_FS]
    return rows[-1] if rows else None


@fact(paths=[SELF_MOUNTINFO, PROC_MOUNTS], runtime=True)
def cgroup_mounts(host: Host) -> CgroupMounts:
    """The cgroup hierarchies mounted in the auditing process's mount namespace: from
    /proc/self/mountinfo, else /proc/mounts (older snapshots, trees that only have that)."""
    if host.kind(SELF_MOUNTINFO) == "file":
        return host.parse(SELF_MOUNTINFO, _from_mountinfo, runtime=True)
    return host.parse(PROC_MOUNTS, _from_mounts, runtime=True)


def _from_mountinfo(text: str) -> CgroupMounts:
    """What /proc/self/mountinfo says (a parser of the whole fact: a fleet run shares one per text)."""
    return CgroupMounts(mounts=tuple(parse_cgroup_mountinfo(text)), source=SELF_MOUNTINFO,
                        fs_mount=_fs_row(text, SELF_MOUNTINFO))


def _from_mounts(text: str) -> CgroupMounts:
    return CgroupMounts(mounts=tuple(parse_cgroup_mounts(text)), source=PROC_MOUNTS,
                        fs_mount=_fs_row(text, PROC_MOUNTS))


@fact(paths=[PROC_CGROUPS], runtime=True)
def proc_cgroups(host: Host) -> tuple[CgroupSubsys, ...]:
    """/proc/cgroups: which controllers the kernel has (with a v1 interface), enabled, and bound where."""
    return host.parse(PROC_CGROUPS, parse_proc_cgroups, runtime=True)


@fact(paths=[SELF_CGROUP], runtime=True)
def self_cgroup(host: Host) -> tuple[ProcCgroup, ...]:
    """The hierarchies the auditing process is in (cgroups(7)): evidence of the layout it sees."""
    return host.parse(SELF_CGROUP, parse_proc_pid_cgroup, runtime=True)


@fact(paths=[f"?{RUN_SYSTEMD}"], runtime=True)
def systemd_booted(host: Host) -> bool:
    """Is systemd the running init system (sd_booted: /run/systemd/system is a directory)?"""
    if not host.has_runtime:
        raise host.runtime_unavailable(RUN_SYSTEMD)
    return host.kind(RUN_SYSTEMD) == "dir"


class V2Level(Record):
    """One cgroup on the way down to the guests: the v2 root, then the guest partition."""

    path: str  # "/sys/fs/cgroup", "/sys/fs/cgroup/machine.slice"
    controllers: tuple[str, ...]  # cgroup.controllers: what its parent lets it use
    subtree_control: tuple[str, ...]  # cgroup.subtree_control: what it hands to its children
    children: tuple[str, ...] = ()  # child cgroups (for the partition: the guests' cgroups)


class V2Tree(Record):
    mount: Mount  # the cgroup2 row
    root: V2Level
    partition: V2Level | None  # machine.slice (or machine); None: not created yet (no guest started)


def _is_child_cgroup(name: str) -> bool:
    return name.endswith(_CHILD_SUFFIXES) or _LIBVIRT_CHILD in name


def _level(host: Host, path: str, *, children: bool) -> V2Level:
    ctrl_path = f"{path}/{CONTROLLERS_FILE}"
    if host.kind(ctrl_path) != "file":
        raise FactUnavailable(f"{ctrl_path} is not there to read (cgroup2 is mounted on {path})", source=ctrl_path)
    controllers = host.parse(ctrl_path, parse_controller_list)
    sub_path = f"{path}/{SUBTREE_FILE}"
    if host.kind(sub_path) != "file":
        raise FactUnavailable(f"{sub_path} is not there to read (cgroup2 is mounted on {path})", source=sub_path)
    subtree = host.parse(sub_path, parse_controller_list)
    kids: tuple[str, ...] = ()
    if children:
        try:
            kids = tuple(sorted(n for n in host.listdir(path) if _is_child_cgroup(n)))
        except (FactUnavailable, FactError):
            kids = ()
    return V2Level(path=path, controllers=controllers, subtree_control=subtree, children=kids)


def pick_cgroup2(mounts: tuple[Mount, ...]) -> Mount | None:
    """The cgroup v2 hierarchy libvirt would use: the visible cgroup2 row on /sys/fs/cgroup, else on
    /sys/fs/cgroup/unified, else the last cgroup2 row anywhere."""
    rows = [m for m in mounts if m.fstype == CGROUP_V2]
    for where in V2_ROOTS:
        at = [m for m in rows if normalize_mount_path(m.target) == where]
        if at:
            return at[-1]
    return rows[-1] if rows else None


@fact(paths=[*(f"{r}/{f}" for r in V2_ROOTS for f in (CONTROLLERS_FILE, SUBTREE_FILE)),
             *(f"{r}/{p}" for r in V2_ROOTS for p in GUEST_PARTITIONS),
             *(f"{r}/{p}/{f}" for r in V2_ROOTS for p in GUEST_PARTITIONS for f in (CONTROLLERS_FILE, SUBTREE_FILE))],
      runtime=True)
def cgroup2_tree(host: Host) -> V2Tree | None:
    """The cgroup v2 hierarchy from its root down to the guest partition; None without a cgroup2 mount."""
    mount = pick_cgroup2(host.fact(cgroup_mounts).mounts)
    if mount is None:
        return None
    base = normalize_mount_path(mount.target)
    root = _level(host, base, children=False)
    partition = None
    for name in GUEST_PARTITIONS:
        path = posixpath.join(base, name)
        if host.kind(path) == "dir":
            partition = _level(host, path, children=True)
            break
    return V2Tree(mount=mount, root=root, partition=partition)


def v1_mounts(mounts: tuple[Mount, ...]) -> tuple[Mount, ...]:
    return tuple(m for m in mounts if m.fstype == CGROUP_V1)
