"""Snapshots: the files a host's facts read, captured into one file, and a FileSource answering from it.

``hostaudit collect`` (or the POSIX ``collect.sh`` it prints) captures every path declared with
``@fact(paths=...)``, by checks' ``reads`` and by the ``hostaudit_collect_paths`` hook; ``hostaudit
run --snapshot FILE`` then audits the snapshot exactly as it would have audited the host.

Two formats, told apart by their first bytes (a gzip-compressed file of either is accepted too):

* JSON (``hostaudit collect``), ``reports/schemas/snapshot-v1.json``: ``{"format":
  "hostaudit-snapshot", "schema_version": 1, "tool_version", "hostname", "collected_at", "source":
  {"mode": "live"|"image", "root", "collector"}, "patterns": [...], "entries": {PATH: ENTRY}}``.
  An ENTRY has a ``type``: ``file`` (``data`` + ``encoding`` utf-8 | base64 | gzip+base64 and
  ``size``; or ``omitted`` + ``size``, a lower bound, for a file past the cap; or ``error``),
  ``dir`` (``names``: its listing, when captured; or ``error``), ``link`` (``target``, raw),
  ``char`` | ``block`` (with ``mode``, "0660": the permission bits in octal, ``uid`` and ``gid``,
  when the collector recorded them; older snapshots have none: unknown) | ``fifo`` | ``socket`` |
  ``other``, ``absent`` (looked for, not there) or
  ``error`` (could not even be looked at: ``error``). Paths are where things are inside the root:
  a symlink is stored where it is, what it points to under its own (resolved) path.
* Line text (``collect.sh``: JSON is painful in sh), one record a line, fields separated by one
  space. First line ``hostaudit-snapshot 1``, last line ``end`` (without it: truncated)::

      meta KEY VALUE              tool, collected_at, mode (live|image), root, hostname
      dir PATH                    a directory; the "name NAME" lines that follow are its listing
      dir PATH -                  a directory whose listing was not captured
      link PATH TARGET            a symbolic link and its raw target
      kind PATH KIND              char, block, fifo, socket or other
      kind PATH KIND MODE UID GID a device node (char, block) with its permission bits (octal
                                  digits, as "stat -c %a" prints them) and numeric owner and group
      absent PATH                 looked for, not there
      file PATH b64|hex           a regular file; its content follows as base64 (or "od -An -tx1"
                                  hex) lines, ended by a line "."
      file PATH large SIZE        not captured: larger than the cap (SIZE: at least this)
      file PATH denied            not readable
      file PATH failed            reading it failed

  A PATH/NAME/TARGET/VALUE made only of ``[A-Za-z0-9._/+:@,=~-]`` is written as is; any other
  is ``%`` + base64 of its bytes, or ``!`` + hex. Identical repeated records are allowed.

A snapshot is untrusted input: every type, path, size and encoding is checked while loading, and
anything wrong is refused with one line (UsageError), never half-loaded.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import os
import re
import zlib
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from typing import Any

from audit.errors import FactError, FactUnavailable, UsageError, fresh
from audit.host.core import Host, ParseCache
from audit.host.fs import MAX_READ, Kind, normalize, walk_inside
from audit.inputfile import read_user_file
from audit.model import TargetMode
from audit.record import Record

FORMAT = "hostaudit-snapshot"
SCHEMA_VERSION = 1
TEXT_MAGIC = b"hostaudit-snapshot "

#: Content a snapshot may hold in all (what collect stores, after compression and encoding).
TOTAL_CAP = 64 * 1024 * 1024
#: The largest file captured because a glob matched it (``/boot/*`` also matches initrd images,
#: which no fact reads); a file named literally gets the reader's own cap (MAX_READ).
GLOB_FILE_CAP = 1024 * 1024
#: Loading limits: the snapshot file, everything decoded from it, entries, lengths.
MAX_INPUT = 256 * 1024 * 1024
MAX_DECODED = 256 * 1024 * 1024
MAX_ENTRIES = 200_000
MAX_NAMES = 1_000_000
MAX_PATH = 4096
MAX_NAME = 255
MAX_META = 4096
#: Files stored as readable text when valid UTF-8 and smaller than this; larger ones compressed.
COMPRESS_FROM = 1024

KINDS: tuple[str, ...] = ("file", "dir", "link", "char", "block", "fifo", "socket", "other")
TYPES: tuple[str, ...] = (*KINDS, "absent", "error")
ENCODINGS = ("utf-8", "base64", "gzip+base64")
GLOB_MAGIC = re.compile(r"[*?\[]")
SAFE_FIELD = re.compile(r"[A-Za-z0-9._/+:@,=~-]+")
_SAFE_BYTES = re.compile(rb"[A-Za-z0-9._/+:@,=~-]+")


class SnapshotError(UsageError):
    """A snapshot that cannot be loaded or written (one clear line)."""


# ------------------------------------------------------------------------------------------------
# The model
# ------------------------------------------------------------------------------------------------
class Entry(Record):
    """One captured path (a named tuple: a snapshot holds thousands, and a fleet run loads thousands
    of snapshots; built by keyword only)."""

    type: str
    data: bytes | None = None  # file content
    size: int | None = None  # file: content length, or a lower bound when omitted
    omitted: str | None = None  # file: why its content is not here
    error: str | None = None  # file/dir/error: the problem reading it
    names: tuple[str, ...] | None = None  # dir: its listing, when captured
    target: str | None = None  # link: raw target
    owner: tuple[int, int, int] | None = None  # char/block: (permission bits, uid, gid), when recorded


class Snapshot(Record):
    entries: Mapping[str, Entry]
    mode: str = "live"  # what was captured: "live" or "image"
    hostname: str | None = None
    collected_at: str | None = None
    tool_version: str | None = None
    root: str | None = None
    collector: str | None = None
    patterns: tuple[str, ...] = ()
    #: directories that hold an entry without being one (a set; asked only, never listed)
    implicit_dirs: Container[str] = frozenset()


def _ancestors(path: str) -> Iterable[str]:
    while path != "/":
        path = path.rsplit("/", 1)[0] or "/"
        yield path


# ------------------------------------------------------------------------------------------------
# Reading a snapshot: SnapshotFS
# ------------------------------------------------------------------------------------------------
_IMPLICIT_DIR = Entry(type="dir")


class _Absent:
    """A path the snapshot does not hold, found without a walk: its FactUnavailable is made only
    when one is raised (most askers only want to know whether a path is there)."""

    __slots__ = ("name", "parent", "shown")

    def __init__(self, parent: str, name: str, shown: str) -> None:
        self.parent, self.name, self.shown = parent, name, shown


class SnapshotFS:
    """A FileSource over a loaded snapshot that answers like RootFS did on the captured host.

    Paths resolve component by component as in RootFS: an absolute symlink is re-rooted, ``..``
    stops at the root, more than MAX_SYMLINKS links is an error. A path the collector never looked
    at is "not captured" (unavailable, so a skip), never invented.
    """

    def __init__(self, snap: Snapshot, *, name: str) -> None:
        self.snap = snap
        self.name = name
        # a snapshot never changes: each path is walked once (checks ask for the same paths often)
        self._resolved: dict[tuple[str, bool], tuple[str, Entry] | _Absent | FactUnavailable | FactError] = {}

    def describe(self) -> str:
        # The captured root, as RootFS said it on that host: messages then match a direct run.
        return self.snap.root or f"snapshot {self.name}"

    def _lookup(self, path: str) -> Entry | None:
        e = self.snap.entries.get(path)
        if e is not None and e.type != "absent":
            return e
        if path == "/" or path in self.snap.implicit_dirs:
            return _IMPLICIT_DIR
        return None

    def _missing(self, parent: str, name: str, shown: str) -> FactUnavailable:
        cand = f"{parent.rstrip('/')}/{name}"
        e = self.snap.entries.get(cand)
        pe = self.snap.entries.get(parent)
        unlisted = pe is not None and pe.names is not None and name not in pe.names
        if unlisted or (e is not None and e.type == "absent"):
            return FactUnavailable(f"{shown} does not exist", source=shown)
        return FactUnavailable(f"{shown} was not captured in this snapshot", source=shown)

    def resolve(self, path: str, *, follow_last: bool = True) -> tuple[str, Entry]:
        """The captured path ``path`` designates, and its entry (the same walk as RootFS.resolve)."""
        done = self._resolution(path, follow_last)
        if type(done) is tuple:
            return done
        if type(done) is _Absent:
            raise self._missing(done.parent, done.name, done.shown)
        # A new exception each time: raising the kept one would tie it, through its traceback's
        # frames, to this object, a reference cycle per path that only the garbage collector frees.
        raise fresh(done)

    def _resolution(self, path: str, follow_last: bool) -> tuple[str, Entry] | _Absent | FactUnavailable | FactError:
        """What ``resolve`` returns or raises, kept per path: the askers that only want to know
        whether a path is there (``kind``, ``readlink``, ``owner``) take a failure without raising it,
        some hundred times a host in a fleet."""
        key = (path, follow_last)
        done = self._resolved.get(key)
        if done is None:
            try:
                done = self._resolve(path, follow_last=follow_last)
            except (FactUnavailable, FactError) as exc:
                done = exc.with_traceback(None)
            self._resolved[key] = done
        return done

    def _resolve(self, path: str, *, follow_last: bool) -> tuple[str, Entry] | _Absent:
        entries = self.snap.entries
        e = entries.get(path)
        # a key of entries passed check_path when the snapshot was loaded: no need to match it again
        good = path != "/" and (e is not None or _GOOD_PATH.match(path) is not None)
        if e is not None and good:
            # A path the snapshot holds as it is: every directory above an entry is a directory (the
            # loader refuses an entry under anything else), so the walk would reach it directly.
            if e.type == "absent":
                raise FactUnavailable(f"{path} does not exist", source=path)
            if e.type == "error":
                raise FactError(path, e.error or "cannot be looked at")
            if e.type != "link" or not follow_last:
                return path, e
        elif good:
            # A directory the snapshot has entries under without holding it: reached directly too.
            if path in self.snap.implicit_dirs:
                return path, _IMPLICIT_DIR
            # A path the snapshot does not hold: the walk reaches the deepest directory above it that
            # the snapshot holds or has entries under (all above that are directories, as above)
            # and stops at the next name when nothing is there.
            below = path
            while True:
                parent = below.rsplit("/", 1)[0] or "/"
                if parent == "/" or parent in self.snap.implicit_dirs:
                    break
                pe = entries.get(parent)
                if pe is not None and pe.type != "absent":
                    if pe.type != "dir":
                        return self._walk(path, follow_last=follow_last)  # a link, a file: walked
                    break
                below = parent
            be = entries.get(below)
            if be is None or be.type == "absent":
                return _Absent(parent, below.rsplit("/", 1)[1], path)
        return self._walk(path, follow_last=follow_last)

    def _walk(self, path: str, *, follow_last: bool) -> tuple[str, Entry]:
        """The walk component by component, which the shortcuts above give the answer of."""
        shown = normalize(path)

        def step(parent: str, name: str, more: bool) -> str | None:
            pe = self._lookup(parent)
            if pe is None or pe.type != "dir":
                raise FactUnavailable(f"{shown} does not exist (a parent is not a directory)", source=shown)
            e = self._lookup(f"{parent.rstrip('/')}/{name}")
            if e is None:
                raise self._missing(parent, name, shown)
            if e.type == "error":
                raise FactError(shown, e.error or "cannot be looked at")
            return (e.target or "") if e.type == "link" else None

        final = walk_inside(path, step, follow_last=follow_last)
        return final, self._lookup(final) or _IMPLICIT_DIR

    def read_bytes(self, path: str, *, limit: int = MAX_READ) -> bytes:
        _, e = self.resolve(path)
        data = e.data
        if e.type == "file" and data is not None and e.error is None and len(data) <= limit:
            return data  # the common case; what follows says why not
        shown = normalize(path)
        if e.type == "socket":
            raise FactError(shown, "cannot open: No such device or address")
        if e.type != "file":
            raise FactError(shown, f"is not a regular file ({e.type}); not read")
        if e.error is not None:
            raise FactError(shown, e.error)
        if e.data is None:
            if e.size is not None and e.size > limit:
                raise FactError(shown, f"larger than the {limit} byte cap; not read")
            why = f" ({e.omitted})" if e.omitted else ""
            raise FactUnavailable(f"{shown} was not captured in this snapshot{why}", source=shown)
        if len(e.data) > limit:
            raise FactError(shown, f"larger than the {limit} byte cap; not read")
        return e.data

    def listdir(self, path: str) -> list[str]:
        _, e = self.resolve(path)
        if e.type == "dir" and e.error is None and e.names is not None:
            return sorted(e.names)
        shown = normalize(path)
        if e.type != "dir":
            raise FactError(shown, "is not a directory")
        if e.error is not None:
            raise FactError(shown, e.error)
        if e.names is None:
            raise FactUnavailable(f"{shown}: its listing was not captured in this snapshot", source=shown)
        return sorted(e.names)

    def _there(self, path: str, follow: bool) -> Entry | None:
        """The entry ``path`` resolves to; None when it is not there; a FactError raised."""
        done = self._resolution(path, follow)
        if type(done) is tuple:
            return done[1]
        if type(done) is _Absent or isinstance(done, FactUnavailable):
            return None
        raise fresh(done)

    def kind(self, path: str, *, follow: bool = True) -> Kind | None:
        e = self._there(path, follow)
        return None if e is None else e.type  # type: ignore[return-value]

    def readlink(self, path: str) -> str | None:
        e = self._there(path, False)
        return e.target if e is not None and e.type == "link" else None

    def owner(self, path: str) -> tuple[int, int, int] | None:
        e = self._there(path, True)
        if e is None:
            return None
        if e.owner is None:
            shown = normalize(path)
            why = "recorded for device nodes only" if e.type not in ("char", "block") else "an older collector"
            raise FactUnavailable(f"{shown}: its mode and owner were not captured in this snapshot ({why})",
                                  source=shown)
        return e.owner


class SnapshotHost(Host):
    """A Host over a snapshot; a snapshot of an image says what an image says when /proc is absent."""

    def __init__(self, fs: SnapshotFS, *, root: str, parse_cache: ParseCache | None = None) -> None:
        super().__init__(fs, mode=TargetMode.SNAPSHOT, root=root, parse_cache=parse_cache)
        self.snapshot = fs.snap

    def runtime_unavailable(self, path: str) -> FactUnavailable:
        if self.snapshot.mode == "image":
            return FactUnavailable(
                f"{path} is a runtime fact and is not present here (an unbooted image has no running kernel)",
                source=path,
            )
        return super().runtime_unavailable(path)


# ------------------------------------------------------------------------------------------------
# Loading and validating
# ------------------------------------------------------------------------------------------------
def _fail(problem: str) -> SnapshotError:
    return SnapshotError(problem)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


#: A path as a snapshot stores it: absolute, normalized, no NUL, no component longer than MAX_NAME.
_GOOD_PATH = re.compile(rf"(?:/(?!\.\.?(?:/|\Z))[^/\x00]{{1,{MAX_NAME}}})+\Z|/\Z")


def check_path(path: Any) -> str:
    if isinstance(path, str) and len(path) <= MAX_PATH and _GOOD_PATH.match(path):
        return path  # the common case, in one regular expression; the checks below name the problem
    if not isinstance(path, str):
        raise _fail(f"a path is {type(path).__name__}, not a string")
    if not path.startswith("/"):
        raise _fail(f"path {_short(path)} is not absolute")
    if len(path) > MAX_PATH:
        raise _fail(f"path {_short(path)} is longer than {MAX_PATH} characters")
    if "\0" in path:
        raise _fail(f"path {_short(path)} contains a NUL byte")
    if path != normalize(path) or "/../" in f"{path}/" or "/./" in f"{path}/":
        raise _fail(f"path {_short(path)} is not normalized (no '..', '.', '//' or trailing '/')")
    if any(len(p) > MAX_NAME for p in path.split("/")):
        raise _fail(f"path {_short(path)} has a component longer than {MAX_NAME} characters")
    return path


def check_name(name: Any, where: str) -> str:
    if not isinstance(name, str):
        raise _fail(f"{where}: a name is {type(name).__name__}, not a string")
    if name in ("", ".", "..") or "/" in name or "\0" in name or len(name) > MAX_NAME:
        raise _fail(f"{where}: bad directory entry name {_short(name)}")
    return name


def _check_str(value: Any, where: str, *, limit: int = MAX_META, empty: bool = True) -> str:
    if not isinstance(value, str):
        raise _fail(f"{where}: expected a string, got {type(value).__name__}")
    if len(value) > limit:
        raise _fail(f"{where}: longer than {limit} characters")
    if "\0" in value:
        raise _fail(f"{where}: contains a NUL byte")
    if not empty and not value:
        raise _fail(f"{where}: empty")
    return value


def _check_int(value: Any, where: str, *, limit: int = 1 << 53) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"{where}: expected a whole number, got {type(value).__name__}")
    if not 0 <= value <= limit:
        raise _fail(f"{where}: {value} is out of range")
    return value


class _Budget:
    """Decoded bytes so far, so a hostile snapshot cannot expand without bound; and the cache that
    spares a fleet run decoding the same content (a kernel config) once per host."""

    def __init__(self, cache: ParseCache | None = None) -> None:
        self.used = 0
        self.cache = cache

    def take(self, n: int, where: str) -> None:
        self.used += n
        if self.used > MAX_DECODED:
            raise _fail(f"{where}: the snapshot decodes to more than {MAX_DECODED} bytes")

    def decoded(self, encoded: str | bytes, decode: Callable[[], bytes]) -> bytes:
        """``decode()``, or what it gave for the same ``encoded`` content of another snapshot."""
        if self.cache is None or len(encoded) < 4096:
            return decode()
        return self.cache.content(encoded, decode)


def _b64(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise _fail(f"{where}: data is not valid base64") from None


def _gunzip_exact(blob: bytes, where: str, limit: int) -> bytes:
    """Decompress one whole gzip member: truncated, trailing or oversized data is refused."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(blob, limit + 1)
    except zlib.error as exc:
        raise _fail(f"{where}: data is not valid gzip ({exc})") from None
    if len(out) > limit or d.unconsumed_tail:
        raise _fail(f"{where}: data decompresses to more than {limit} bytes")
    if not d.eof:
        raise _fail(f"{where}: gzip data is truncated")
    if d.unused_data:
        raise _fail(f"{where}: trailing bytes after the gzip data")
    return out


_ENTRY_KEYS = {
    "file": {"type", "encoding", "data", "size", "omitted", "error"},
    "dir": {"type", "names", "error"},
    "link": {"type", "target"},
    "error": {"type", "error"},
    "char": {"type", "mode", "uid", "gid"},
    "block": {"type", "mode", "uid", "gid"},
}
#: A device node's permission bits as a snapshot writes them: octal digits ("0660", "660").
_MODE = re.compile(r"[0-7]{1,4}")
_ID_MAX = (1 << 32) - 2  # (uid_t)-1 is no id


def _node_owner(mode: Any, uid: Any, gid: Any, where: str) -> tuple[int, int, int]:
    """A device node's (permission bits, uid, gid), checked."""
    if not isinstance(mode, str) or not _MODE.fullmatch(mode):
        raise _fail(f"{where}: mode {_short(mode)} is not 1 to 4 octal digits")
    return (int(mode, 8), _check_int(uid, f"{where}: uid", limit=_ID_MAX),
            _check_int(gid, f"{where}: gid", limit=_ID_MAX))


def _json_entry(path: str, raw: Any, budget: _Budget) -> Entry:
    where = f"entry {_short(path)}"
    if not isinstance(raw, dict):
        raise _fail(f"{where}: expected an object, got {type(raw).__name__}")
    kind = raw.get("type")
    if kind not in TYPES:
        raise _fail(f"{where}: unknown type {_short(kind)}")
    allowed = _ENTRY_KEYS.get(kind, {"type"})
    if not allowed.issuperset(raw):
        extra = sorted(set(raw) - allowed, key=str)
        raise _fail(f"{where}: unexpected key {_short(extra[0])} for a {kind}")
    if kind == "file":
        size = _check_int(raw["size"], f"{where}: size") if "size" in raw else None
        if "error" in raw:
            if set(raw) - {"type", "error"}:
                raise _fail(f"{where}: a file with an error has no data")
            return Entry(type="file", error=_check_str(raw["error"], f"{where}: error", empty=False))
        if "omitted" in raw:
            if "data" in raw or "encoding" in raw or size is None:
                raise _fail(f"{where}: an omitted file has a size and no data")
            return Entry(type="file", size=size, omitted=_check_str(raw["omitted"], f"{where}: omitted"))
        if "data" not in raw or "encoding" not in raw or size is None:
            raise _fail(f"{where}: a file needs data, encoding and size")
        enc = raw["encoding"]
        if enc not in ENCODINGS:
            raise _fail(f"{where}: unknown encoding {_short(enc)}")
        text = _check_str(raw["data"], f"{where}: data", limit=MAX_INPUT)
        if enc == "utf-8":
            try:
                data = text.encode("utf-8")
            except UnicodeEncodeError:
                raise _fail(f"{where}: utf-8 data holds an unpaired surrogate") from None
        elif enc == "base64":
            data = budget.decoded(text, lambda: _b64(text, where))
        else:
            data = budget.decoded(text, lambda: _gunzip_exact(_b64(text, where), where, MAX_READ))
        if len(data) > MAX_READ:
            raise _fail(f"{where}: content larger than {MAX_READ} bytes")
        if len(data) != size:
            raise _fail(f"{where}: size {size} does not match the {len(data)} bytes of data (truncated?)")
        budget.take(len(data), where)
        return Entry(type="file", data=data, size=size)
    if kind == "dir":
        if "error" in raw:
            if "names" in raw:
                raise _fail(f"{where}: a directory with an error has no listing")
            return Entry(type="dir", error=_check_str(raw["error"], f"{where}: error", empty=False))
        if "names" not in raw:
            return Entry(type="dir")
        names = raw["names"]
        if not isinstance(names, list):
            raise _fail(f"{where}: names: expected a list, got {type(names).__name__}")
        return Entry(type="dir", names=_names(names, where, budget))
    if kind == "link":
        if "target" not in raw:
            raise _fail(f"{where}: a link needs a target")
        return Entry(type="link", target=_check_str(raw["target"], f"{where}: target", limit=MAX_PATH, empty=False))
    if kind == "error":
        if "error" not in raw:
            raise _fail(f"{where}: an error entry needs the error")
        return Entry(type="error", error=_check_str(raw["error"], f"{where}: error", empty=False))
    if len(raw) > 1:  # a device node's mode and owner: all three or none
        if set(raw) != _ENTRY_KEYS[kind]:
            raise _fail(f"{where}: a {kind} has mode, uid and gid together or none of them")
        return Entry(type=kind, owner=_node_owner(raw["mode"], raw["uid"], raw["gid"], where))
    return Entry(type=kind)


def _names(names: list[Any], where: str, budget: _Budget) -> tuple[str, ...]:
    budget.take(len(names) * 8, where)
    checked = tuple(check_name(n, where) for n in names)
    if len(set(checked)) != len(checked):
        raise _fail(f"{where}: a name is listed twice")
    return tuple(sorted(checked))


def _check_meta(meta: Mapping[str, Any]) -> None:
    if meta.get("mode") is None:
        raise _fail("the source mode (live or image) is missing")
    if meta.get("mode") not in ("live", "image"):
        raise _fail(f"source mode {_short(meta.get('mode'))} is neither 'live' nor 'image'")


def _finish(entries: dict[str, Entry], **meta: Any) -> Snapshot:
    """Structural checks shared by both formats; computes the implicit parent directories."""
    if len(entries) > MAX_ENTRIES:
        raise _fail(f"more than {MAX_ENTRIES} entries")
    root = entries.get("/")
    if root is not None and root.type not in ("dir", "absent"):
        raise _fail(f"the root is a {root.type}, not a directory")
    implicit: set[str] = set()
    for path, e in entries.items():
        if e.type == "absent" and path == "/":
            raise _fail("the root is recorded as absent")
        for anc in _ancestors(path):
            if anc in implicit:
                break
            ae = entries.get(anc)
            if ae is not None and ae.type != "dir":
                raise _fail(f"entry {_short(path)} lies under {_short(anc)}, which is a {ae.type}")
            implicit.add(anc)
    _check_meta(meta)
    snap = Snapshot(entries=entries, implicit_dirs=frozenset(implicit), **meta)
    if snap.hostname is None:
        snap = snap._replace(hostname=_hostname_of(snap))
    return snap


def _hostname_of(snap: Snapshot) -> str | None:
    fs = SnapshotFS(snap, name="")
    for path in ("/proc/sys/kernel/hostname", "/etc/hostname"):
        try:
            name = fs.read_bytes(path, limit=4096).decode("utf-8", errors="replace").strip()
        except (FactUnavailable, FactError):
            continue
        if name:
            return name
    return None


# -- reading only the entries asked for (partial=True) ---------------------------------------------
class _LazyEntries(Mapping[str, Entry]):
    """The entries of a snapshot, each checked and decoded when it is first looked up, by the same
    code a full load runs on every entry (``make``); entries nobody looks up cost only their share
    of splitting the file. Looking an entry up also checks the entries of its parent directories,
    as a full load does (an entry under a file is refused)."""

    def __init__(self, raw: Mapping[str, Any], make: Callable[[str, Any], Entry]) -> None:
        self._raw = raw
        self._make = make
        self._done: dict[str, Entry] = {}
        self._sorted: list[str] | None = None

    def __getitem__(self, path: str) -> Entry:
        e = self._done.get(path)
        if e is not None:
            return e
        raw = self._raw[path]  # KeyError: not in the snapshot
        e = self._make(path, raw)
        if path == "/":
            if e.type == "absent":
                raise _fail("the root is recorded as absent")
            if e.type != "dir":
                raise _fail(f"the root is a {e.type}, not a directory")
        for anc in _ancestors(path):
            if anc in self._raw:
                ae = self[anc]
                if ae.type != "dir":
                    raise _fail(f"entry {_short(path)} lies under {_short(anc)}, which is a {ae.type}")
        self._done[path] = e
        return e

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, path: object) -> bool:
        return path in self._raw

    def get(self, path: str, default: Any = None) -> Any:  # without a KeyError for each path not held
        return self[path] if path in self._done or path in self._raw else default

    def exceeds(self, limit: int) -> bool:
        """More than ``limit`` entries? (Not counted when a skimmed snapshot cannot have so many.)"""
        if isinstance(self._raw, _SkimIndex) and self._raw.bound <= limit:
            return False
        return len(self._raw) > limit

    def has_children(self, path: str) -> bool:
        """Is ``path`` the parent directory of an entry (which is then checked like a full load would)?"""
        prefix = path.rstrip("/") + "/"
        first: str | None = None
        if isinstance(self._raw, _SkimIndex):
            first = self._raw.first_under(prefix)
        else:
            if self._sorted is None:
                self._sorted = sorted(self._raw)
            i = bisect.bisect_left(self._sorted, prefix)
            if i < len(self._sorted) and self._sorted[i].startswith(prefix):
                first = self._sorted[i]
        if first is None:
            return False
        check_path(first)
        return True


class _ImplicitDirs(Container[str]):
    """The implicit parent directories of a lazily read snapshot: asked, never listed."""

    def __init__(self, entries: _LazyEntries) -> None:
        self._entries = entries

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and self._entries.has_children(path)


def _finish_lazy(entries: _LazyEntries, **meta: Any) -> Snapshot:
    if entries.exceeds(MAX_ENTRIES):
        raise _fail(f"more than {MAX_ENTRIES} entries")
    entries.get("/")  # the root's own checks
    _check_meta(meta)
    snap = Snapshot(entries=entries, implicit_dirs=_ImplicitDirs(entries), **meta)
    if snap.hostname is None:
        snap = snap._replace(hostname=_hostname_of(snap))
    return snap


# -- JSON -----------------------------------------------------------------------------------------
def _first_duplicate(pairs: Sequence[tuple[Any, Any]]) -> Any:
    seen: set[Any] = set()
    for k, _ in pairs:
        if k in seen:
            return k
        seen.add(k)
    return None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _fail(f"key {_short(_first_duplicate(pairs))} appears twice")
    return out


class _Pairs(list):  # type: ignore[type-arg]
    """A JSON object not looked at yet: its (key, value) pairs, as the decoder saw them."""


def _plain(value: Any) -> Any:
    """What the full load's decoder makes of ``value``: objects as dicts (a key given twice refused)."""
    if isinstance(value, _Pairs):
        return {k: _plain(v) for k, v in _no_duplicates(value).items()}
    if isinstance(value, list):
        if not any(issubclass(t, list) for t in set(map(type, value))):
            return list(value)  # strings, numbers: nothing to convert
        return [_plain(v) for v in value]
    return value


def _decode_json(blob: bytes, hook: Callable[[list[tuple[str, Any]]], Any]) -> Any:
    try:
        return json.loads(blob.decode("utf-8"), object_pairs_hook=hook)
    except SnapshotError:
        raise
    except UnicodeDecodeError:
        raise _fail("not valid UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise _fail(f"not valid JSON (truncated?): {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (RecursionError, ValueError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else _short(str(exc))
        raise _fail(f"not valid JSON: {why}") from None


def _json_meta(doc: Any) -> tuple[dict[str, Any], Any]:
    """The checked top level of a JSON snapshot: its metadata, and its entries still unchecked."""
    if not isinstance(doc, dict):
        raise _fail(f"expected a JSON object, got {type(doc).__name__}")
    if doc.get("format") != FORMAT:
        raise _fail(f"not a hostaudit snapshot (format is {_short(doc.get('format'))})")
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise _fail(f"unsupported schema_version {_short(version)} (this hostaudit reads {SCHEMA_VERSION})")
    allowed = {"format", "schema_version", "tool_version", "hostname", "collected_at", "source", "patterns",
               "entries"}
    extra = sorted(set(doc) - allowed)
    if extra:
        raise _fail(f"unexpected top-level key {_short(extra[0])}")
    source = doc.get("source")
    if not isinstance(source, dict) or set(source) - {"mode", "root", "collector"}:
        raise _fail("source: expected an object with mode, root and collector")

    def opt(value: Any, where: str) -> str | None:
        return None if value is None else _check_str(value, where)

    patterns = doc.get("patterns", [])
    if not isinstance(patterns, list) or len(patterns) > MAX_ENTRIES:
        raise _fail("patterns: expected a list of strings")
    entries_raw = doc.get("entries")
    if not isinstance(entries_raw, dict):
        raise _fail(f"entries: expected an object, got {type(entries_raw).__name__}")
    if len(entries_raw) > MAX_ENTRIES:
        raise _fail(f"more than {MAX_ENTRIES} entries")
    meta = {
        "mode": source.get("mode"),
        "hostname": opt(doc.get("hostname"), "hostname"),
        "collected_at": opt(doc.get("collected_at"), "collected_at"),
        "tool_version": opt(doc.get("tool_version"), "tool_version"),
        "root": opt(source.get("root"), "source.root"),
        "collector": opt(source.get("collector"), "source.collector"),
        "patterns": _check_strs(patterns, "patterns"),
    }
    return meta, entries_raw


def _check_strs(values: list[Any], where: str) -> tuple[str, ...]:
    """``_check_str`` on each value; at once when they are all fine (a snapshot lists ~200 patterns)."""
    if set(map(type, values)) <= {str} and (not values or (max(map(len, values)) <= MAX_META
                                                               and "\0" not in "".join(values))):
        return tuple(values)
    return tuple(_check_str(v, where) for v in values)


def _from_json(blob: bytes, cache: ParseCache | None = None) -> Snapshot:
    meta, entries_raw = _json_meta(_decode_json(blob, _no_duplicates))
    budget = _Budget(cache)
    entries = {check_path(p): _json_entry(p, raw, budget) for p, raw in entries_raw.items()}
    return _finish(entries, **meta)


def _from_json_lazy(blob: bytes, cache: ParseCache | None = None) -> Snapshot:
    top = _decode_json(blob, _Pairs)
    if not isinstance(top, _Pairs):
        raise _fail(f"expected a JSON object, got {type(top).__name__}")
    doc: dict[str, Any] = {}
    for k, v in _no_duplicates(top).items():
        # the entries stay pairs: each is checked when it is looked up
        doc[k] = _no_duplicates(v) if k == "entries" and isinstance(v, _Pairs) else _plain(v)
    meta, entries_raw = _json_meta(doc)
    budget = _Budget(cache)

    def make(path: str, raw: Any) -> Entry:
        return _json_entry(check_path(path), _plain(raw), budget)

    return _finish_lazy(_LazyEntries(entries_raw, make), **meta)


# -- the line format ------------------------------------------------------------------------------
def _field(raw: bytes, where: str) -> str:
    """A decoded field as the str os functions would give (undecodable bytes as surrogates)."""
    if _SAFE_BYTES.fullmatch(raw):
        return raw.decode("ascii")  # what os.fsdecode gives for these characters
    if raw[:1] == b"%":
        try:
            value = base64.b64decode(raw[1:], validate=True)
        except (binascii.Error, ValueError):
            raise _fail(f"{where}: bad base64 field") from None
    elif raw[:1] == b"!":
        try:
            value = bytes.fromhex(raw[1:].decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            raise _fail(f"{where}: bad hex field") from None
    elif SAFE_FIELD.fullmatch(raw.decode("latin-1")):
        value = raw
    else:
        raise _fail(f"{where}: bad field {_short(raw.decode('latin-1'))}")
    return os.fsdecode(value)


#: The lines that may follow "dir PATH": its listing, blank lines among them.
_NAME_LINES = re.compile(rb"(?:name [^\n]*\n|\r*\n)*")


def _dot_line(blob: bytes, pos: int) -> tuple[int, int] | None:
    """(start, end) of the first line from ``pos`` (a line start after the header, so > 0) that is
    "." (with any "\r"s after it): the line that ends a file's content. None when there is none."""
    size = len(blob)
    at = pos if blob.startswith(b".", pos) else blob.find(b"\n.", pos) + 1
    while at > 0:
        end = at + 1
        while end < size and blob[end] == 13:  # "\r"
            end += 1
        if end == size or blob[end] == 10:  # "\n"
            return at, end
        at = blob.find(b"\n.", at) + 1
    return None
_FILE_HOWS = {b"b64": 3, b"hex": 3, b"large": 4, b"denied": 3, b"failed": 3}


class _Where:
    """ "line N" of a place in a text snapshot, counted only if a message needs it (every check
    takes where it is looking; only a failing one says so)."""

    __slots__ = ("blob", "offset")

    def __init__(self, blob: bytes, offset: int) -> None:
        self.blob = blob
        self.offset = offset

    def __str__(self) -> str:
        return "line " + str(self.blob.count(b"\n", 0, self.offset) + 1)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


class _Record(Record):
    """One record of a text snapshot: where its line starts, its fields, and the byte span of the
    lines it owns (a directory's name lines, a file's content lines)."""

    offset: int
    parts: list[bytes]
    body: tuple[int, int] | None = None


#: A line that opens a file's content ("file PATH b64" or "hex"), with the newline before it.
_OPENER = re.compile(rb"\nfile [^ \n]* (?:b64|hex)\r*(?=\n|\Z)")


def _split_text(blob: bytes) -> tuple[dict[str, str], list[tuple[str, _Record]]]:
    """The metadata and the records (with the path each is about) of a text snapshot, in file order.

    The structure is checked here for the whole file (header, known records with the right number of
    fields, every file's content ended by its "." line, the "end" line and nothing after it); what a
    record holds (its path, names, content) is checked when the record is read (``_text_entry``).
    A file's content lines are skipped over (searched for the line that ends them), never looked at
    one by one; the lines between contents are split at once.
    """
    nl = blob.find(b"\n")
    header = (blob if nl < 0 else blob[:nl]).rstrip(b"\r").split(b" ")
    if len(header) != 2 or header[1] != str(SCHEMA_VERSION).encode():
        version = header[1].decode("latin-1") if len(header) > 1 else "(none)"
        raise _fail(f"unsupported text snapshot version {_short(version)} (this hostaudit reads {SCHEMA_VERSION})")
    meta: dict[str, str] = {}
    records: list[tuple[str, _Record]] = []
    append = records.append
    keys: dict[bytes, str] = {}
    size = len(blob)
    pos = size if nl < 0 else nl + 1

    def key(raw: bytes, at: int) -> str:
        """The path a record is about (checked when the record is read)."""
        k = keys.get(raw)
        if k is None:
            k = _field(raw, _Where(blob, at)) if raw[:1] in (b"%", b"!") else raw.decode("latin-1")
            keys[raw] = k
        return k

    while pos < size:
        opener = _OPENER.search(blob, pos - 1)
        stop = opener.start() + 1 if opener is not None else size  # where the next content's record is
        at = pos
        listing: tuple[int, list[bytes]] | None = None  # a "dir PATH" whose name lines come next
        for raw in blob[pos:stop].split(b"\n"):
            line_at, at = at, at + len(raw) + 1
            line = raw.rstrip(b"\r") if raw.endswith(b"\r") else raw
            if listing is not None:
                if not line or line.startswith(b"name "):
                    continue
                dir_at, dir_parts = listing
                append((key(dir_parts[1], dir_at), _Record(dir_at, dir_parts, (dir_at + len_line(blob, dir_at),
                                                                                  line_at))))
                listing = None
            if not line:
                continue
            parts = line.split(b" ")
            rec, n = parts[0], len(parts)
            if n == 2 and rec == b"absent":
                append((key(parts[1], line_at), _Record(line_at, parts)))
            elif n == 2 and rec == b"dir":
                listing = (line_at, parts)
            elif (n == 3 and rec in (b"link", b"kind")) or (n == 6 and rec == b"kind"):
                append((key(parts[1], line_at), _Record(line_at, parts)))
            elif n == 3 and rec == b"dir":
                if parts[2] != b"-":
                    raise _fail(f"{_Where(blob, line_at)}: bad dir record")
                append((key(parts[1], line_at), _Record(line_at, parts)))
            elif rec == b"file" and n in (3, 4):
                if _FILE_HOWS.get(parts[2]) != n or parts[2] in (b"b64", b"hex"):
                    raise _fail(f"{_Where(blob, line_at)}: bad file record")
                append((key(parts[1], line_at), _Record(line_at, parts)))
            elif rec == b"meta" and n == 3:
                where = _Where(blob, line_at)
                name = parts[1].decode("latin-1")
                if name not in ("tool", "collected_at", "mode", "root", "hostname"):
                    raise _fail(f"{where}: unknown meta key {_short(name)}")
                meta[name] = _check_str(_field(parts[2], where), where)
            elif rec == b"end" and n == 1:
                rest = blob[line_at + len(raw) + 1:]
                if rest.strip():
                    skip = len(rest) - len(rest.lstrip())
                    raise _fail(f"{_Where(blob, size - len(rest) + skip)}: data after the end line")
                return meta, records
            elif rec == b"name":
                raise _fail(f"{_Where(blob, line_at)}: a name line outside a directory listing")
            else:
                shown = line[:40].decode("utf-8", errors="replace")
                raise _fail(f"{_Where(blob, line_at)}: unknown record {_short(shown)}")
        if listing is not None:
            dir_at, dir_parts = listing
            append((key(dir_parts[1], dir_at), _Record(dir_at, dir_parts, (dir_at + len_line(blob, dir_at),
                                                                              min(stop, size)))))
        if opener is None:
            break
        head = blob[stop:opener.end()].rstrip(b"\r").split(b" ")
        body = opener.end() + 1  # the content starts on the next line
        dot = _dot_line(blob, body) if body <= size else None
        if dot is None:
            raise _fail(f"{_Where(blob, stop)}: file content of {_short(key(head[1], stop))} is truncated")
        append((key(head[1], stop), _Record(stop, head, (body, max(body, dot[0] - 1)))))
        pos = dot[1] + 1
    raise _fail("truncated: no 'end' line (the collection was interrupted or hit its size cap)")


def len_line(blob: bytes, at: int) -> int:
    """The length of the line at ``at`` with its newline."""
    end = blob.find(b"\n", at)
    return (len(blob) if end < 0 else end) - at + 1


def _text_content(blob: bytes, rec: _Record, path: str, where: _Where, budget: _Budget) -> bytes:
    assert rec.body is not None
    start, stop = rec.body
    block = blob[start:stop]
    if len(block) + 1 > 4 * MAX_READ // 80 and block.count(b"\n") + 1 > 4 * MAX_READ // 80:
        raise _fail(f"{where}: content of {_short(path)} is larger than {MAX_READ} bytes")

    def decode() -> bytes:
        if b"\r" in block:
            joined = b"".join(line.rstrip(b"\r") for line in block.split(b"\n"))
        else:
            joined = block.replace(b"\n", b"")
        if rec.parts[2] == b"b64":
            return _b64(joined.decode("latin-1"), where)
        try:
            return bytes.fromhex(b"".join(joined.split()).decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            raise _fail(f"{where}: content of {_short(path)} is not valid hex") from None

    data = budget.decoded(rec.parts[2] + b" " + block, decode)
    if len(data) > MAX_READ:
        raise _fail(f"{where}: content of {_short(path)} is larger than {MAX_READ} bytes")
    budget.take(len(data), where)
    return data


def _text_listing(blob: bytes, rec: _Record, path: str, budget: _Budget) -> tuple[str, ...]:
    assert rec.body is not None
    start, stop = rec.body
    names: list[str] = []
    at = start
    for raw in blob[start:stop].split(b"\n"):
        line_at, at = at, at + len(raw) + 1
        line = raw.rstrip(b"\r")
        if not line:
            continue
        parts = line.split(b" ")
        if len(parts) != 2:
            raise _fail(f"{_Where(blob, line_at)}: a name line outside a directory listing")
        if len(names) >= MAX_NAMES:
            raise _fail(f"{_Where(blob, line_at)}: too many names")
        where: Any = _Where(blob, line_at)
        names.append(check_name(_field(parts[1], where), where))
    return _names(names, f"dir {_short(path)}", budget)


def _text_entry(blob: bytes, rec: _Record, budget: _Budget) -> tuple[str, Entry, Any]:
    """(path, entry, where) of one record, every field checked."""
    where: Any = _Where(blob, rec.offset)
    parts = rec.parts
    kind = parts[0]
    path = check_path(_field(parts[1], where))
    if kind == b"dir":
        if rec.body is None:
            return path, Entry(type="dir"), where
        return path, Entry(type="dir", names=_text_listing(blob, rec, path, budget)), f"dir {_short(path)}"
    if kind == b"link":
        return path, Entry(type="link", target=_check_str(_field(parts[2], where), where, limit=MAX_PATH,
                                                          empty=False)), where
    if kind == b"kind":
        name = parts[2].decode("latin-1")
        if name not in ("char", "block", "fifo", "socket", "other"):
            raise _fail(f"{where}: unknown kind {_short(name)}")
        if len(parts) == 6:
            if name not in ("char", "block"):
                raise _fail(f"{where}: a {name} has no mode and owner")
            ids = [int(p) if p.isdigit() and len(p) <= 10 else -1 for p in parts[4:]]
            return path, Entry(type=name, owner=_node_owner(parts[3].decode("latin-1"), *ids, where)), where
        return path, Entry(type=name), where
    if kind == b"absent":
        return path, Entry(type="absent"), where
    how = parts[2]
    if how in (b"b64", b"hex"):
        data = _text_content(blob, rec, path, where, budget)
        return path, Entry(type="file", data=data, size=len(data)), where
    if how == b"large":
        try:
            size = _check_int(int(parts[3].decode("ascii")), where)
        except (ValueError, UnicodeDecodeError):
            raise _fail(f"{where}: bad size") from None
        return path, Entry(type="file", size=size, omitted=f"larger than the collector's cap, {size}+ bytes"), where
    if how == b"denied":
        return path, Entry(type="file", error="permission denied (run hostaudit as root to read it)"), where
    return path, Entry(type="file", error="read failed (reported by collect.sh)"), where


def _remembered_entry(blob: bytes, rec: _Record, budget: _Budget, cache: ParseCache) -> tuple[str, Entry, Any]:
    """``_text_entry`` through a fleet's cache: a record's fields and the bytes of the lines it owns
    make the same (immutable) entry on every host that holds them, so they are checked and decoded
    once per process; what the record costs the snapshot's budget is counted on every host."""
    line = b" ".join(rec.parts)
    body = b"" if rec.body is None else blob[rec.body[0]:rec.body[1]]
    before = budget.used

    def make() -> tuple[str, Entry, str | None, int]:
        path, entry, where = _text_entry(blob, rec, budget)
        return path, entry, where if isinstance(where, str) else None, budget.used - before

    path, entry, shown, cost = cache.remember((line, rec.body is not None, body), len(line) + len(body), make)
    where: Any = shown if shown is not None else _Where(blob, rec.offset)
    if budget.used == before and cost:  # kept from another host: its cost is this host's too
        budget.take(cost, where)
    return path, entry, where


def _merge(old: Entry | None, entry: Entry, path: str, where: Any) -> Entry:
    """Two records of one path: identical ones are allowed, and "dir P -" with P's listing."""
    if old is None or old == entry:
        return entry
    if old.type == entry.type == "dir" and old.names is None and old.error is None:
        return entry  # "dir P -" then the listing: keep the listing
    if old.type == entry.type == "dir" and entry.names is None and entry.error is None:
        return old
    raise _fail(f"{where}: conflicting records for {_short(path)}")


def _text_meta(meta: Mapping[str, str]) -> dict[str, Any]:
    return {
        "mode": meta.get("mode"),
        "hostname": meta.get("hostname") or None,
        "collected_at": meta.get("collected_at"),
        "tool_version": meta.get("tool"),
        "root": meta.get("root"),
        "collector": "collect.sh",
    }


def _from_text(blob: bytes, cache: ParseCache | None = None) -> Snapshot:
    meta, records = _split_text(blob)
    entries: dict[str, Entry] = {}
    budget = _Budget(cache)
    for _, rec in records:
        if cache is None:
            path, entry, where = _text_entry(blob, rec, budget)
        else:
            path, entry, where = _remembered_entry(blob, rec, budget, cache)
        entries[path] = _merge(entries.get(path), entry, path, where)
        if len(entries) > MAX_ENTRIES:
            raise _fail(f"more than {MAX_ENTRIES} entries")
    return _finish(entries, **_text_meta(meta))


_PLAIN_HEADER = TEXT_MAGIC + str(SCHEMA_VERSION).encode() + b"\n"
#: The record lines of a plainly written text snapshot, content left out (``_skim_text``): each
#: record as ``_split_text`` accepts it, a directory's listing right after it, "end" last. No
#: carriage return: a snapshot with any is left to ``_split_text``.
_SKIM_RECORDS = re.compile(rb"""(?:
    \n
  | absent\ [^ \n\r]*\n
  | dir\ [^ \n\r]*\n(?:name\ [^\n\r]*\n|\n)*
  | dir\ [^ \n\r]*\ -\n
  | (?:link|kind|meta)\ [^ \n\r]*\ [^ \n\r]*\n
  | kind(?:\ [^ \n\r]*){5}\n
  | file\ [^ \n\r]*\ (?:b64|hex|denied|failed)\n
  | file\ [^ \n\r]*\ large\ [^ \n\r]*\n
)*end(?:\n[ \t\n\x0b\x0c]*)?""", re.X)
#: A record about a path whose path field is encoded: such snapshots are split whole.
_SKIM_ENCODED = re.compile(rb"^(?:absent|dir|link|kind|file) [%!]", re.M)
_SKIM_PATHS = re.compile(rb"^(?:absent|dir|link|kind|file) ([^ \n]*)", re.M)
_PATH_RECORDS = frozenset({b"absent", b"dir", b"link", b"kind", b"file"})


class _SkimIndex(Mapping[str, list[_Record]]):
    """The records of a plainly written text snapshot by path, found when asked for (what grouping
    ``_split_text``'s records by path gives).

    ``text`` is the snapshot's record lines without file content: ``spans`` of the snapshot
    joined, ``starts`` where each begins in ``text``; ``bodies`` the content span of each file
    record, by where its line starts. Every path field is plain (none encoded), so a path's records
    are the lines whose second field is the path's bytes.
    """

    def __init__(self, blob: bytes, text: bytes, spans: list[tuple[int, int]], starts: list[int],
                 bodies: dict[int, tuple[int, int]]) -> None:
        self._blob = blob
        self._text = text
        self._spans = spans
        self._starts = starts
        self._bodies = bodies
        self._found: dict[str, list[_Record]] = {}
        self._all: dict[str, list[_Record]] | None = None
        #: at least as many lines as there are paths
        self.bound = text.count(b"\n")

    def _record(self, at: int) -> _Record:
        """The record whose line starts at ``at`` in ``text``."""
        text = self._text
        span = bisect.bisect_right(self._starts, at) - 1
        shift = self._spans[span][0] - self._starts[span]  # text offset -> snapshot offset
        end = text.find(b"\n", at)
        parts = text[at:end].split(b" ")
        if parts[0] == b"dir" and len(parts) == 2:
            stop = _NAME_LINES.match(text, end + 1).end()  # its listing (never past its span)
            return _Record(at + shift, parts, (end + 1 + shift, stop + shift))
        return _Record(at + shift, parts, self._bodies.get(at + shift))

    def _find(self, path: str) -> list[_Record]:
        got = self._found.get(path)
        if got is not None:
            return got
        try:
            raw = path.encode("latin-1")  # a plain path field is its key's latin-1 bytes
        except UnicodeEncodeError:
            raw = b" "
        hits: list[int] = []
        # (most paths asked for are not held: one search for the path field's start says so)
        if raw and b" " not in raw and b"\n" not in raw and (b" " + raw) in self._text:
            text = self._text
            for tail in (b" ", b"\n"):  # the path field is followed by a field or ends the line
                needle = b" " + raw + tail
                i = text.find(needle)
                while i >= 0:
                    at = text.rfind(b"\n", 0, i) + 1
                    if text[at:i] in _PATH_RECORDS:  # its second field, not a later one
                        hits.append(at)
                    i = text.find(needle, i + 1)
        got = self._found[path] = [self._record(at) for at in sorted(hits)]
        return got

    def __getitem__(self, path: str) -> list[_Record]:
        got = self._find(path)
        if not got:
            raise KeyError(path)
        return got

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and bool(self._find(path))

    def first_under(self, prefix: str) -> str | None:
        """The least path that starts with ``prefix`` (ending in "/"), or None."""
        try:
            raw = prefix.encode("latin-1")
        except UnicodeEncodeError:
            return None
        text, needle = self._text, b" " + raw
        least: bytes | None = None
        i = text.find(needle)
        while i >= 0:
            at = text.rfind(b"\n", 0, i) + 1
            if text[at:i] in _PATH_RECORDS:  # a path field
                end = text.find(b"\n", i)
                space = text.find(b" ", i + 1, end)
                field = text[i + 1:end if space < 0 else space]
                if least is None or field < least:
                    least = field  # latin-1 keeps the order of the bytes
            i = text.find(needle, i + 1)
        return None if least is None else least.decode("latin-1")

    def _every(self) -> dict[str, list[_Record]]:
        if self._all is None:
            self._all = {}
            for m in _SKIM_PATHS.finditer(self._text):
                self._all.setdefault(m.group(1).decode("latin-1"), []).append(self._record(m.start()))
        return self._all

    def __iter__(self) -> Iterator[str]:
        return iter(self._every())

    def __len__(self) -> int:
        return len(self._every())


def _lines_starting(text: bytes, prefix: bytes) -> Iterator[int]:
    """Where the lines of ``text`` that start with ``prefix`` start."""
    if text.startswith(prefix):
        yield 0
    needle = b"\n" + prefix
    i = text.find(needle)
    while i >= 0:
        yield i + 1
        i = text.find(needle, i + 1)


def _skim_text(blob: bytes) -> tuple[dict[str, str], _SkimIndex] | None:
    """The metadata and the records by path of a plainly written text snapshot, without looking at
    every line; None when it is not plainly written (``_split_text`` then splits and checks it
    whole, and says what is wrong).

    A file's content is skipped over, not looked at: its end is its first "." line (base64 content,
    which holds no "." and no space, is searched for its first "."; hex content, which holds
    spaces, for its first "." line, as ``_split_text`` does). The record lines left are checked as
    ``_split_text`` checks them (``_SKIM_RECORDS``, the metadata values, the "end" line), once, as
    one text. What is not checked is content itself (whether it decodes): that is checked when an
    entry is read. Content holding a "." line before its last leaves lines that are no records, so
    such a snapshot is left to ``_split_text``, which refuses it.
    """
    if not blob.startswith(_PLAIN_HEADER):
        return None
    size = len(blob)
    pos = look = len(_PLAIN_HEADER)  # where the record lines being gathered start; where to look on
    spans: list[tuple[int, int]] = []
    bodies: dict[int, tuple[int, int]] = {}
    while True:
        at = blob.find(b"\nfile ", look - 1) + 1
        if at == 0:
            spans.append((pos, size))
            break
        end = blob.find(b"\n", at)
        if end < 0:
            return None
        look = end + 1
        how = blob[blob.rfind(b" ", at, end) + 1:end]
        if how not in (b"b64", b"hex") or blob.count(b" ", at, end) != 2:
            continue  # a file record without content, or no record (_SKIM_RECORDS says)
        body = end + 1
        if how == b"hex":
            dot = _dot_line(blob, body)
            if dot is None or dot[1] != dot[0] + 1 or dot[1] == size:
                return None  # none, or one with a carriage return or without its newline
            dot_at = dot[0]
        else:  # base64 holds no "." and no space: its end is the first "." (searched for as a byte)
            dot_at = blob.find(b".", body)
            if dot_at < 0 or blob[dot_at - 1:dot_at + 2] != b"\n.\n" or blob.find(b" ", body, dot_at) >= 0:
                return None
        spans.append((pos, body))
        bodies[at] = (body, max(body, dot_at - 1))
        pos = look = dot_at + 2
    starts, n = [], 0
    for a, b in spans:
        starts.append(n)
        n += b - a
    text = b"".join(blob[a:b] for a, b in spans)
    if _SKIM_RECORDS.fullmatch(text) is None:
        return None
    if (b" %" in text or b" !" in text) and _SKIM_ENCODED.search(text) is not None:
        return None
    index = _SkimIndex(blob, text, spans, starts, bodies)
    if index.bound > MAX_ENTRIES:
        return None
    meta: dict[str, str] = {}
    try:
        for at in _lines_starting(text, b"meta "):
            rec = index._record(at)
            where = _Where(blob, rec.offset)
            name = rec.parts[1].decode("latin-1")
            if name not in ("tool", "collected_at", "mode", "root", "hostname"):
                return None
            meta[name] = _check_str(_field(rec.parts[2], where), where)
    except SnapshotError:
        return None
    return meta, index


def _from_text_lazy(blob: bytes, cache: ParseCache | None = None, *, skim: bool = False) -> Snapshot:
    skimmed = _skim_text(blob) if skim else None
    by_path: Mapping[str, list[_Record]]
    if skimmed is not None:
        meta, by_path = skimmed
    else:
        meta, records = _split_text(blob)
        by_path = {}
        for path, rec in records:
            by_path.setdefault(path, []).append(rec)
    budget = _Budget(cache)

    def make(path: str, recs: list[_Record]) -> Entry:
        entry: Entry | None = None
        for rec in recs:
            real, new, where = _text_entry(blob, rec, budget)
            if real != path:  # a field that is not what it claims to be
                raise _fail(f"{where}: bad field {_short(real)}")
            entry = _merge(entry, new, path, where)
        assert entry is not None
        return entry

    return _finish_lazy(_LazyEntries(by_path, make), **_text_meta(meta))


def parse_snapshot(blob: bytes, *, partial: bool = False, cache: ParseCache | None = None,
                   skim: bool = False) -> Snapshot:
    """A Snapshot from the bytes of either format (gzip-compressed or not); SnapshotError if bad.

    ``partial``: every entry is checked and decoded only when first looked up (with the checks a
    full load makes), so a reader of three entries (``hostaudit cpu``) pays for three; the top
    level, the metadata and the text format's structure are still checked whole. A problem in an
    entry is then raised (SnapshotError) by the read that looks it up. ``skim`` (with ``partial``,
    for the CPU commands): a text snapshot's records are found without reading every line
    (``_skim_text``): its structure is checked only around them, what is looked up as above.
    ``cache``: file content another snapshot held encoded the same way is not decoded again (a
    fleet run).
    """
    if len(blob) > MAX_INPUT:
        raise _fail(f"larger than {MAX_INPUT} bytes")
    if blob[:2] == b"\x1f\x8b":
        blob = _gunzip_exact(blob, "gzip-compressed snapshot", MAX_INPUT)
    head = blob.lstrip()[:1]
    if head == b"{":
        return _from_json_lazy(blob, cache) if partial else _from_json(blob, cache)
    if blob.startswith(TEXT_MAGIC):
        return _from_text_lazy(blob, cache, skim=skim) if partial else _from_text(blob, cache)
    if not blob.strip():
        raise _fail("empty file")
    raise _fail("not a hostaudit snapshot (neither JSON from 'hostaudit collect' nor collect.sh output)")


def looks_like_snapshot(blob: bytes) -> bool:
    """Cheap sniffing for commands that accept a snapshot or a plain /proc/cpuinfo file."""
    if blob[:2] == b"\x1f\x8b":
        return True
    stripped = blob.lstrip()
    return stripped.startswith(b"{") or blob.startswith(TEXT_MAGIC)


def read_input(path: str, *, what: str = "snapshot") -> bytes:
    """The bytes of a user-given file (a regular file, capped), or UsageError in one line."""
    return read_user_file(path, what=what, cap=MAX_INPUT)


def load_snapshot(path: str, *, partial: bool = False, cache: ParseCache | None = None) -> Snapshot:
    blob = read_input(path)
    try:
        return parse_snapshot(blob, partial=partial, cache=cache)
    except SnapshotError as exc:
        raise SnapshotError(f"snapshot {path}: {exc}") from None


def host_from_snapshot(snap: Snapshot, *, name: str, parse_cache: ParseCache | None = None) -> Host:
    return SnapshotHost(SnapshotFS(snap, name=name), root=name, parse_cache=parse_cache)


def load_snapshot_host(path: str, *, parse_cache: ParseCache | None = None) -> Host:
    """The Host for ``run --snapshot``: mode SNAPSHOT, root the snapshot's path."""
    return host_from_snapshot(load_snapshot(path, cache=parse_cache), name=path, parse_cache=parse_cache)
