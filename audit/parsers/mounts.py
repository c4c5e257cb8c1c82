"""Mount tables: /proc/mounts, /proc/self/mountinfo and /etc/fstab, plus hugetlbfs page sizes.

Paths the host layer reads: ``/proc/mounts`` (or ``/proc/self/mountinfo``) for the running state,
``/etc/fstab`` for the persistent one (systemd ``.mount`` units: see ``audit.parsers.systemd``).
Every row is kept in file order: stacked mounts on one mount point are all real, the last is visible.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from audit.errors import ParseError
from audit.parsers.text import lines
from audit.record import Record

# The kernel (seq_file mangle) and libmount escape space, tab, newline and backslash as \ooo.
_OCTAL = re.compile(r"(?:\\[0-3][0-7]{2})+")

_SIZE = re.compile(r"(?P<num>\d+)\s*(?P<suffix>[kmgtpe]?)(?:i?b)?", re.IGNORECASE)
_SIZE_SHIFT = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60}

#: read-only: a fleet run shares the parsed tables of one text among its hosts
OptionMap = Mapping[str, str | None]


class Mount(Record):
    source: str  # decoded: "hugetlbfs", "/dev/vda", "none"
    target: str  # decoded mount point, as the kernel printed it
    fstype: str
    options: tuple[str, ...]  # raw tokens in order, quotes kept: ("rw", "relatime", "pagesize=2M")
    option_map: OptionMap   # name -> value (quotes removed); None for a flag
    freq: int = 0
    passno: int = 0
    line: int = 0  # 1-based line in the parsed text, for evidence
    # Only /proc/self/mountinfo has these.
    mount_id: int | None = None
    parent_id: int | None = None
    root: str | None = None  # the part of the source filesystem that is mounted (bind mounts)
    super_options: tuple[str, ...] = ()


class FstabEntry(Record):
    spec: str  # fs_spec, decoded: "UUID=…", "/dev/sda1", "hugetlbfs"
    file: str  # fs_file (mount point, or "none"/"swap"), decoded
    vfstype: str
    options: tuple[str, ...]
    option_map: OptionMap
    freq: int = 0
    passno: int = 0
    line: int = 0


#: what separates fields: the kernel escapes space, tab, newline and backslash in a mount's fields
#: (``mangle``: "\\040"), and libc's getmntent splits at spaces and tabs only; str.split() would also
#: split at a form feed or U+2028 that the kernel writes as it is
_FIELD_SEP = re.compile(r"[ \t]+")


def _fields(line: str) -> list[str]:
    return [f for f in _FIELD_SEP.split(line.strip(" \t\r")) if f]


def decode_octal_escapes(text: str) -> str:
    r"""Undo ``\040``-style escapes. Runs of escapes are decoded as UTF-8 bytes.

    Bytes, not ``unicode-escape``: that codec reads the whole string as Latin-1 and turns an
    already-decoded ``ü`` into ``Ã¼`` (insights #2069). Invalid UTF-8 is kept with
    ``surrogateescape``, Python's convention for file names, so ``os.fsencode`` gives the real bytes.
    """
    if "\\" not in text:
        return text

    def repl(m: re.Match[str]) -> str:
        raw = bytes(int(m.group(0)[i + 1 : i + 4], 8) for i in range(0, len(m.group(0)), 4))
        return raw.decode("utf-8", errors="surrogateescape")

    return _OCTAL.sub(repl, text)


def split_options(text: str, *, line: int | None = None) -> tuple[tuple[str, ...], OptionMap]:
    """Split a comma-separated option string; commas inside double quotes do not split.

    SELinux puts quoted values with commas in mount options (``context="…:s0:c1,c2"``).
    A repeated option keeps its last value, as the kernel's option parsers do.
    """
    if '"' not in text:
        tokens = text.split(",")
    else:
        tokens = []
        buf: list[str] = []
        in_quote = False
        for ch in text:
            if ch == '"':
                in_quote = not in_quote
            if ch == "," and not in_quote:
                tokens.append("".join(buf))
                buf = []
            else:
                buf.append(ch)
        if in_quote:
            raise ParseError(f"unbalanced double quote in options {text!r}", line=line)
        tokens.append("".join(buf))
    options = tuple(t for t in tokens if t)
    option_map: dict[str, str | None] = {}
    for opt in options:
        name, eq, value = opt.partition("=")
        if eq and len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        option_map[name] = value if eq else None
    return options, MappingProxyType(option_map)


def _int_field(text: str, what: str, line: int) -> int:
    try:
        return int(text)
    except ValueError:
        raise ParseError(f"{what} is not an integer: {text!r}", line=line) from None


def parse_mounts(text: str) -> list[Mount]:
    """Parse /proc/mounts (``source target fstype options freq passno``), one Mount per row.

    No row is required: a container or chroot view may lack ``/``.
    """
    mounts: list[Mount] = []
    for lineno, raw in enumerate(lines(text), start=1):
        if not raw.strip():
            continue
        fields = _fields(raw)
        if len(fields) != 6:
            raise ParseError(f"expected 6 fields, found {len(fields)}: {raw.strip()!r}", line=lineno)
        source, target, fstype, opts, freq, passno = fields
        options, option_map = split_options(decode_octal_escapes(opts), line=lineno)
        mounts.append(
            Mount(
                source=decode_octal_escapes(source),
                target=decode_octal_escapes(target),
                fstype=decode_octal_escapes(fstype),
                options=options,
                option_map=option_map,
                freq=_int_field(freq, "dump frequency", lineno),
                passno=_int_field(passno, "pass number", lineno),
                line=lineno,
            )
        )
    return mounts


def parse_mountinfo(text: str) -> list[Mount]:
    """Parse /proc/self/mountinfo (proc(5)); ``options`` joins per-mount and superblock options.

    The joined tuple reads like the /proc/mounts column, so checks work on either source:
    hugetlbfs ``pagesize=`` is a superblock option and would otherwise be missed.
    """
    mounts: list[Mount] = []
    for lineno, raw in enumerate(lines(text), start=1):
        if not raw.strip():
            continue
        fields = _fields(raw)
        try:
            sep = fields.index("-", 6)
        except ValueError:
            raise ParseError("no ' - ' separator after the optional fields", line=lineno) from None
        if len(fields) - sep - 1 != 3:
            raise ParseError(f"expected 3 fields after ' - ', found {len(fields) - sep - 1}", line=lineno)
        mount_id, parent_id, _devno, root, target, mount_opts = fields[:6]
        fstype, source, super_opts = fields[sep + 1 :]
        per_mount, _ = split_options(decode_octal_escapes(mount_opts), line=lineno)
        per_super, _ = split_options(decode_octal_escapes(super_opts), line=lineno)
        joined = per_mount + tuple(o for o in per_super if o not in per_mount and o not in ("rw", "ro"))
        options, option_map = split_options(",".join(joined), line=lineno)
        mounts.append(
            Mount(
                source=decode_octal_escapes(source),
                target=decode_octal_escapes(target),
                fstype=decode_octal_escapes(fstype),
                options=options,
                option_map=option_map,
                line=lineno,
                mount_id=_int_field(mount_id, "mount ID", lineno),
                parent_id=_int_field(parent_id, "parent ID", lineno),
                root=decode_octal_escapes(root),
                super_options=per_super,
            )
        )
    return mounts


def parse_fstab(text: str) -> list[FstabEntry]:
    """Parse /etc/fstab. Options, freq and passno may be left out (``defaults``, 0, 0; fstab(5))."""
    entries: list[FstabEntry] = []
    for lineno, raw in enumerate(lines(text), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = _fields(stripped)
        # libmount stops at a '#' after the columns; treat it as a trailing comment.
        for i, f in enumerate(fields):
            if f.startswith("#"):
                fields = fields[:i]
                break
        if len(fields) < 3:
            raise ParseError(f"expected at least 3 fields, found {len(fields)}: {stripped!r}", line=lineno)
        if len(fields) > 6:
            raise ParseError(f"expected at most 6 fields, found {len(fields)}: {stripped!r}", line=lineno)
        spec, file, vfstype = fields[:3]
        opts = fields[3] if len(fields) > 3 else "defaults"
        options, option_map = split_options(decode_octal_escapes(opts), line=lineno)
        entries.append(
            FstabEntry(
                spec=decode_octal_escapes(spec),
                file=decode_octal_escapes(file),
                vfstype=decode_octal_escapes(vfstype),
                options=options,
                option_map=option_map,
                freq=_int_field(fields[4], "dump frequency (fs_freq)", lineno) if len(fields) > 4 else 0,
                passno=_int_field(fields[5], "pass number (fs_passno)", lineno) if len(fields) > 5 else 0,
                line=lineno,
            )
        )
    return entries


def normalize_mount_path(path: str) -> str:
    """``//dev//hugepages/`` -> ``/dev/hugepages``: repeated and trailing slashes, ``.`` parts.

    Not ``posixpath.normpath``: it keeps a leading ``//`` (POSIX leaves its meaning open), and a
    loop that walks up with ``dirname`` until ``/`` never ends on ``//`` (insights #1244, 61c0e16eb).
    ``..`` is kept: resolving it lexically would be wrong across symlinks.
    """
    absolute = path.startswith("/")
    parts = [p for p in path.split("/") if p and p != "."]
    joined = "/".join(parts)
    if absolute:
        return "/" + joined
    return joined or "."


def mounts_at(mounts: Iterable[Mount], path: str) -> list[Mount]:
    """Every row mounted exactly on ``path``, in table order (the last one is the visible one)."""
    want = normalize_mount_path(path)
    return [m for m in mounts if normalize_mount_path(m.target) == want]


def find_mount(mounts: Iterable[Mount], path: str) -> Mount | None:
    """The mount that holds ``path``: the visible (last) row on the longest matching mount point.

    Walks up a normalised component list, so it ends on every input (``//``, ``""``, relative).
    """
    rows = list(mounts)
    by_target: dict[str, Mount] = {}
    for m in rows:
        by_target[normalize_mount_path(m.target)] = m  # later rows cover earlier ones
    parts = [p for p in normalize_mount_path(path).split("/") if p]
    for n in range(len(parts), -1, -1):
        found = by_target.get("/" + "/".join(parts[:n]))
        if found is not None:
            return found
    return None


def hugetlbfs_mounts(mounts: Iterable[Mount]) -> list[Mount]:
    return [m for m in mounts if m.fstype == "hugetlbfs"]


def _parse_size(text: str) -> int:
    """Bytes from a memparse-style size: ``2M``, ``1024M``, ``1G``, ``2048k``, ``2097152``.

    Private on purpose: ``audit.parsers.hugepages.parse_size`` did not exist when this was written.
    Decimal only; the kernel's memparse would also read ``0x…`` and octal ``0…``, never used here.
    """
    m = _SIZE.fullmatch(text.strip())
    if m is None:
        raise ParseError(f"not a size: {text!r}")
    size = int(m.group("num")) << _SIZE_SHIFT[m.group("suffix").lower()]
    if size <= 0:
        raise ParseError(f"size must be positive: {text!r}")
    return size


def hugetlbfs_page_size(options: Mapping[str, str | None] | Iterable[str] | str, default_size: int) -> int:
    """Page size in bytes of a hugetlbfs mount; without ``pagesize=`` the default huge page size.

    ``options`` is a Mount/FstabEntry ``option_map``, an options tuple, or a raw ``a,b=c`` string
    (a systemd ``Options=`` value).
    """
    if isinstance(options, str):
        _, option_map = split_options(options)
    elif isinstance(options, Mapping):
        option_map = dict(options)
    else:
        _, option_map = split_options(",".join(options))
    if "pagesize" not in option_map:
        return default_size
    value = option_map["pagesize"]
    if not value:
        raise ParseError("hugetlbfs option pagesize has no value")
    return _parse_size(value)
