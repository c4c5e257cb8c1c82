"""Control groups: /proc/cgroups, /proc/<pid>/cgroup, cgroup v2's cgroup.controllers and
cgroup.subtree_control, and the cgroup rows of a mount table.

Pure functions from text to data; the host layer (``audit.host.cgroups``) adds the file names.
Mount rows are parsed by ``audit.parsers.mounts`` (octal escapes, quoted options): this module only
keeps the rows that mount a cgroup hierarchy, so a hostile or huge row of another file system costs
one scan and is never split.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from audit.errors import ParseError
from audit.parsers.mounts import Mount, parse_mountinfo, parse_mounts
from audit.parsers.text import lines
from audit.record import Record

#: cgroup v1 and v2 file system types.
CGROUP_V1 = "cgroup"
CGROUP_V2 = "cgroup2"

#: No mount row the kernel writes for a cgroup hierarchy comes near this: its options are the
#: controller names, ``name=`` and ``release_agent=<path>`` (PATH_MAX), its paths are PATH_MAX each.
MAX_CGROUP_ROW = 64 * 1024
#: /proc/cgroups rows are a name and three numbers; cgroup.controllers is a dozen names.
MAX_CGROUPS_LINE = 1024
MAX_CONTROLLER_LIST = 4096

#: Controller names as the kernel spells them (``cgroup_subsys.h``: ``cpuset``, ``net_cls``, ``dmem``).
_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
#: A v1 named hierarchy (``name=systemd``, ``name=openrc``).
_NAMED = re.compile(r"name=[^\s,:]{1,64}")

#: The kernel's two names for one controller: v1's ``blkio`` is v2's ``io`` (``legacy_name``).
LEGACY_NAMES = {"io": "blkio"}
V2_NAMES = {v: k for k, v in LEGACY_NAMES.items()}


class CgroupSubsys(Record):
    """One row of /proc/cgroups."""

    name: str  # the v1 (legacy) name: "blkio", not "io"
    hierarchy: int  # the v1 hierarchy it is bound to; 0: none (unmounted, or on cgroup v2)
    num_cgroups: int
    enabled: bool  # False: disabled at boot (cgroup_disable=)
    line: int


class ProcCgroup(Record):
    """One line of /proc/<pid>/cgroup: ``hierarchy-ID:controller-list:cgroup-path`` (cgroups(7))."""

    hierarchy: int  # 0 with no controllers: the cgroup v2 hierarchy
    controllers: tuple[str, ...]  # v1 controllers and "name=..." of the hierarchy; () on v2
    path: str
    line: int


def _check_length(line: str, limit: int, lineno: int, what: str) -> None:
    if len(line) > limit:
        raise ParseError(f"a {what} line of {len(line)} characters: longer than the kernel writes one "
                         f"(at most {limit} expected)", line=lineno)


def parse_proc_cgroups(text: str) -> tuple[CgroupSubsys, ...]:
    """/proc/cgroups: ``#subsys_name hierarchy num_cgroups enabled`` and one row per controller.

    The kernel separates the columns with tabs; copies (libvirt's test data) use spaces: any blank
    separates. An empty file is malformed: the kernel always writes the header. Kernels list only
    the controllers that have a v1 interface unless booted with ``cgroup_v1_proc=1`` (and lists
    nothing at all without CONFIG_CGROUPS, where the file does not exist), so a controller missing
    here may still be on cgroup v2.
    """
    rows: list[CgroupSubsys] = []
    saw_header = False
    for lineno, raw in enumerate(lines(text), start=1):
        _check_length(raw, MAX_CGROUPS_LINE, lineno, "/proc/cgroups")
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            saw_header = True
            continue
        fields = line.split()
        if len(fields) != 4:
            raise ParseError(f"expected 4 fields (name, hierarchy, num_cgroups, enabled), found {len(fields)}: "
                             f"{line[:80]!r}", line=lineno)
        name, hierarchy, num, enabled = fields
        if not _NAME.fullmatch(name):
            raise ParseError(f"not a controller name: {name[:40]!r}", line=lineno)
        if not (hierarchy.isascii() and hierarchy.isdigit() and num.isascii() and num.isdigit()):
            raise ParseError(f"hierarchy and num_cgroups must be numbers: {line[:80]!r}", line=lineno)
        if enabled not in ("0", "1"):
            raise ParseError(f"enabled must be 0 or 1, found {enabled[:20]!r}", line=lineno)
        rows.append(CgroupSubsys(name=name, hierarchy=int(hierarchy), num_cgroups=int(num), enabled=enabled == "1",
                                 line=lineno))
    if not rows and not saw_header:
        raise ParseError("empty: the kernel always writes the '#subsys_name' header")
    return tuple(rows)


def parse_proc_pid_cgroup(text: str) -> tuple[ProcCgroup, ...]:
    """/proc/self/cgroup or /proc/1/cgroup: one line per hierarchy the process is in.

    ``0::/path`` is the cgroup v2 hierarchy; ``N:cpu,cpuacct:/path`` a v1 one; ``N:name=systemd:/``
    a named v1 hierarchy without controllers. The path is everything after the second colon.
    """
    rows: list[ProcCgroup] = []
    for lineno, raw in enumerate(lines(text), start=1):
        _check_length(raw, MAX_CGROUP_ROW, lineno, "cgroup membership")
        if not raw.strip():
            continue
        parts = raw.split(":", 2)
        if len(parts) != 3:
            raise ParseError(f"expected 'hierarchy:controllers:path', found {raw[:80]!r}", line=lineno)
        hid, ctrls, path = parts
        if not (hid.isascii() and hid.isdigit()):
            raise ParseError(f"hierarchy ID is not a number: {hid[:20]!r}", line=lineno)
        names = tuple(c for c in ctrls.split(",") if c)
        for c in names:
            if not (_NAME.fullmatch(c) or _NAMED.fullmatch(c)):
                raise ParseError(f"not a controller name: {c[:40]!r}", line=lineno)
        if not path.startswith("/"):
            raise ParseError(f"cgroup path must start with '/': {path[:80]!r}", line=lineno)
        rows.append(ProcCgroup(hierarchy=int(hid), controllers=names, path=path, line=lineno))
    if not rows:
        raise ParseError("empty: every process is in at least one cgroup hierarchy")
    return tuple(rows)


def parse_controller_list(text: str) -> tuple[str, ...]:
    """cgroup.controllers or cgroup.subtree_control: controller names on one line, blank-separated.

    Empty is valid (no controller available, or none enabled): the kernel then writes a bare newline.
    """
    filled = [ln for ln in lines(text) if ln.strip()]
    if len(filled) > 1:
        raise ParseError(f"expected one line of controller names, found {len(filled)} lines", line=2)
    if not filled:
        return ()
    _check_length(filled[0], MAX_CONTROLLER_LIST, 1, "controller list")
    names = filled[0].split()
    for n in names:
        if not _NAME.fullmatch(n):
            raise ParseError(f"not a controller name: {n[:40]!r}", line=1)
    return tuple(names)


def _is_cgroup_fstype(fstype: str) -> bool:
    return fstype in (CGROUP_V1, CGROUP_V2)


def _cgroup_rows_only(text: str, fstype_of: Callable[[str], str | None]) -> str:
    """``text`` with every row that does not mount a cgroup hierarchy blanked (line numbers kept).

    A short row whose type cannot be found stays, so the mount parser reports it where it is; a long
    one is refused here, before anything splits it."""
    out: list[str] = []
    for lineno, raw in enumerate(text.split("\n"), start=1):
        fstype = fstype_of(raw)
        if fstype is not None and not _is_cgroup_fstype(fstype):
            out.append("")
            continue
        _check_length(raw, MAX_CGROUP_ROW, lineno, "cgroup mount" if fstype else "mount table")
        out.append(raw)
    return "\n".join(out)


def _mountinfo_fstype(raw: str) -> str | None:
    sep = raw.find(" - ")
    if sep < 0:
        return None if raw.strip() else ""
    rest = raw[sep + 3 : sep + 3 + 64].split(maxsplit=1)
    return rest[0] if rest else None


def _mounts_fstype(raw: str) -> str | None:
    if not raw.strip():
        return ""
    # source, target, fstype: the first two are escaped (no blanks), so the third blank-separated
    # word is the type; only the head of the row is looked at
    words = raw[:MAX_CGROUP_ROW].split(maxsplit=3)
    return words[2] if len(words) >= 3 else None


def parse_cgroup_mountinfo(text: str) -> list[Mount]:
    """The cgroup and cgroup2 rows of /proc/self/mountinfo, parsed by ``parse_mountinfo``."""
    return [m for m in parse_mountinfo(_cgroup_rows_only(text, _mountinfo_fstype)) if _is_cgroup_fstype(m.fstype)]


def parse_cgroup_mounts(text: str) -> list[Mount]:
    """The cgroup and cgroup2 rows of /proc/mounts, parsed by ``parse_mounts``."""
    return [m for m in parse_mounts(_cgroup_rows_only(text, _mounts_fstype)) if _is_cgroup_fstype(m.fstype)]


def v1_controllers(mount: Mount) -> tuple[str, ...]:
    """The controllers a cgroup v1 mount carries: its options that name one (``cpu,cpuacct``),
    without mount flags (``rw``, ``nosuid``, ``relatime``, ``xattr``, ``clone_children``...) and
    without ``name=``. libvirt does the same (``hasmntopt`` per controller name)."""
    flags = {"rw", "ro", "nosuid", "nodev", "noexec", "relatime", "noatime", "nodiratime", "strictatime",
             "lazytime", "sync", "dirsync", "mand", "seclabel", "xattr", "clone_children", "noprefix",
             "cpuset_v2_mode", "favordynmods", "all", "none"}
    return tuple(o for o, v in mount.option_map.items() if v is None and o not in flags and _NAME.fullmatch(o))


def controller_aliases(name: str) -> set[str]:
    """Both names of a controller (``io`` and ``blkio``), as cgroup_disable= accepts either."""
    return {name, LEGACY_NAMES.get(name, name), V2_NAMES.get(name, name)}


def names_in(values: Iterable[str]) -> set[str]:
    """The controller names a comma-separated kernel parameter value lists (cgroup_disable=, cgroup_no_v1=)."""
    out: set[str] = set()
    for v in values:
        out.update(t for t in v.split(",") if t)
    return out
