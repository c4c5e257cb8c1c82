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
  ``char`` | ``block`` | ``fifo`` | ``socket`` | ``other``, ``absent`` (looked for, not there) or
  ``error`` (could not even be looked at: ``error``). Paths are where things are inside the root:
  a symlink is stored where it is, what it points to under its own (resolved) path.
* Line text (``collect.sh``: JSON is painful in sh), one record a line, fields separated by one
  space. First line ``hostaudit-snapshot 1``, last line ``end`` (without it: truncated)::

      meta KEY VALUE              tool, collected_at, mode (live|image), root, hostname
      dir PATH                    a directory; the "name NAME" lines that follow are its listing
      dir PATH -                  a directory whose listing was not captured
      link PATH TARGET            a symbolic link and its raw target
      kind PATH KIND              char, block, fifo, socket or other
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
import dataclasses
import json
import os
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from audit.errors import FactError, FactUnavailable, UsageError
from audit.host.core import Host
from audit.host.fs import MAX_READ, Kind, normalize, walk_inside
from audit.inputfile import read_user_file
from audit.model import TargetMode

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


class SnapshotError(UsageError):
    """A snapshot that cannot be loaded or written (one clear line)."""


# ------------------------------------------------------------------------------------------------
# The model
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    type: str
    data: bytes | None = None  # file content
    size: int | None = None  # file: content length, or a lower bound when omitted
    omitted: str | None = None  # file: why its content is not here
    error: str | None = None  # file/dir/error: the problem reading it
    names: tuple[str, ...] | None = None  # dir: its listing, when captured
    target: str | None = None  # link: raw target


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    entries: Mapping[str, Entry]
    mode: str = "live"  # what was captured: "live" or "image"
    hostname: str | None = None
    collected_at: str | None = None
    tool_version: str | None = None
    root: str | None = None
    collector: str | None = None
    patterns: tuple[str, ...] = ()
    implicit_dirs: frozenset[str] = field(default=frozenset(), repr=False)


def _ancestors(path: str) -> Iterable[str]:
    while path != "/":
        path = path.rsplit("/", 1)[0] or "/"
        yield path


# ------------------------------------------------------------------------------------------------
# Reading a snapshot: SnapshotFS
# ------------------------------------------------------------------------------------------------
_IMPLICIT_DIR = Entry(type="dir")


class SnapshotFS:
    """A FileSource over a loaded snapshot that answers like RootFS did on the captured host.

    Paths resolve component by component as in RootFS: an absolute symlink is re-rooted, ``..``
    stops at the root, more than MAX_SYMLINKS links is an error. A path the collector never looked
    at is "not captured" (unavailable, so a skip), never invented.
    """

    def __init__(self, snap: Snapshot, *, name: str) -> None:
        self.snap = snap
        self.name = name

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
        shown = normalize(path)
        _, e = self.resolve(path)
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
        shown = normalize(path)
        _, e = self.resolve(path)
        if e.type != "dir":
            raise FactError(shown, "is not a directory")
        if e.error is not None:
            raise FactError(shown, e.error)
        if e.names is None:
            raise FactUnavailable(f"{shown}: its listing was not captured in this snapshot", source=shown)
        return sorted(e.names)

    def kind(self, path: str, *, follow: bool = True) -> Kind | None:
        try:
            _, e = self.resolve(path, follow_last=follow)
        except FactUnavailable:
            return None
        return e.type  # type: ignore[return-value]

    def readlink(self, path: str) -> str | None:
        try:
            _, e = self.resolve(path, follow_last=False)
        except FactUnavailable:
            return None
        return e.target if e.type == "link" else None


class SnapshotHost(Host):
    """A Host over a snapshot; a snapshot of an image says what an image says when /proc is absent."""

    def __init__(self, fs: SnapshotFS, *, root: str) -> None:
        super().__init__(fs, mode=TargetMode.SNAPSHOT, root=root)
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


def check_path(path: Any) -> str:
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
    """Decoded bytes so far, so a hostile snapshot cannot expand without bound."""

    def __init__(self) -> None:
        self.used = 0

    def take(self, n: int, where: str) -> None:
        self.used += n
        if self.used > MAX_DECODED:
            raise _fail(f"{where}: the snapshot decodes to more than {MAX_DECODED} bytes")


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
}


def _json_entry(path: str, raw: Any, budget: _Budget) -> Entry:
    where = f"entry {_short(path)}"
    if not isinstance(raw, dict):
        raise _fail(f"{where}: expected an object, got {type(raw).__name__}")
    kind = raw.get("type")
    if kind not in TYPES:
        raise _fail(f"{where}: unknown type {_short(kind)}")
    allowed = _ENTRY_KEYS.get(kind, {"type"})
    extra = sorted(set(raw) - allowed, key=str)
    if extra:
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
        else:
            data = _b64(text, where)
            if enc == "gzip+base64":
                data = _gunzip_exact(data, where, MAX_READ)
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
    return Entry(type=kind)


def _names(names: list[Any], where: str, budget: _Budget) -> tuple[str, ...]:
    budget.take(len(names) * 8, where)
    checked = tuple(check_name(n, where) for n in names)
    if len(set(checked)) != len(checked):
        raise _fail(f"{where}: a name is listed twice")
    return tuple(sorted(checked))


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
    if meta.get("mode") is None:
        raise _fail("the source mode (live or image) is missing")
    if meta.get("mode") not in ("live", "image"):
        raise _fail(f"source mode {_short(meta.get('mode'))} is neither 'live' nor 'image'")
    snap = Snapshot(entries=entries, implicit_dirs=frozenset(implicit), **meta)
    if snap.hostname is None:
        snap = dataclasses.replace(snap, hostname=_hostname_of(snap))
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


def _from_json(blob: bytes) -> Snapshot:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise _fail(f"key {_short(k)} appears twice")
            out[k] = v
        return out

    try:
        doc = json.loads(blob.decode("utf-8"), object_pairs_hook=no_duplicates)
    except SnapshotError:
        raise
    except UnicodeDecodeError:
        raise _fail("not valid UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise _fail(f"not valid JSON (truncated?): {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (RecursionError, ValueError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else _short(str(exc))
        raise _fail(f"not valid JSON: {why}") from None
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
    budget = _Budget()
    entries = {check_path(p): _json_entry(p, raw, budget) for p, raw in entries_raw.items()}
    return _finish(
        entries,
        mode=source.get("mode"),
        hostname=opt(doc.get("hostname"), "hostname"),
        collected_at=opt(doc.get("collected_at"), "collected_at"),
        tool_version=opt(doc.get("tool_version"), "tool_version"),
        root=opt(source.get("root"), "source.root"),
        collector=opt(source.get("collector"), "source.collector"),
        patterns=tuple(_check_str(p, "patterns") for p in patterns),
    )


# -- the line format ------------------------------------------------------------------------------
def _field(raw: bytes, where: str) -> str:
    """A decoded field as the str os functions would give (undecodable bytes as surrogates)."""
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


def _from_text(blob: bytes) -> Snapshot:
    lines = blob.split(b"\n")
    header = lines[0].rstrip(b"\r").split(b" ")
    if len(header) != 2 or header[1] != str(SCHEMA_VERSION).encode():
        version = header[1].decode("latin-1") if len(header) > 1 else "(none)"
        raise _fail(f"unsupported text snapshot version {_short(version)} (this hostaudit reads {SCHEMA_VERSION})")
    entries: dict[str, Entry] = {}
    meta: dict[str, str] = {}
    budget = _Budget()
    listing: tuple[str, list[str]] | None = None  # the directory whose "name" lines come next
    i = 1
    ended = False

    def put(path: str, entry: Entry, where: str) -> None:
        old = entries.get(path)
        if old is None or old == entry:
            entries[path] = entry
            return
        if old.type == entry.type == "dir" and old.names is None and old.error is None:
            entries[path] = entry  # "dir P -" then the listing: keep the listing
            return
        if old.type == entry.type == "dir" and entry.names is None and entry.error is None:
            return
        raise _fail(f"{where}: conflicting records for {_short(path)}")

    def close_listing() -> None:
        nonlocal listing
        if listing is not None:
            path, names = listing
            put(path, Entry(type="dir", names=_names(names, f"dir {_short(path)}", budget)), f"dir {_short(path)}")
            listing = None

    while i < len(lines):
        line = lines[i].rstrip(b"\r")
        where = f"line {i + 1}"
        i += 1
        if ended:
            if line.strip():
                raise _fail(f"{where}: data after the end line")
            continue
        if not line:
            continue
        parts = line.split(b" ")
        rec = parts[0]
        if rec == b"name":
            if listing is None or len(parts) != 2:
                raise _fail(f"{where}: a name line outside a directory listing")
            if len(listing[1]) >= MAX_NAMES:
                raise _fail(f"{where}: too many names")
            listing[1].append(check_name(_field(parts[1], where), where))
            continue
        close_listing()
        if len(entries) > MAX_ENTRIES:
            raise _fail(f"more than {MAX_ENTRIES} entries")
        if rec == b"end" and len(parts) == 1:
            ended = True
        elif rec == b"meta" and len(parts) == 3:
            key = parts[1].decode("latin-1")
            if key not in ("tool", "collected_at", "mode", "root", "hostname"):
                raise _fail(f"{where}: unknown meta key {_short(key)}")
            meta[key] = _check_str(_field(parts[2], where), where)
        elif rec == b"dir" and len(parts) in (2, 3):
            path = check_path(_field(parts[1], where))
            if len(parts) == 3:
                if parts[2] != b"-":
                    raise _fail(f"{where}: bad dir record")
                put(path, Entry(type="dir"), where)
            else:
                listing = (path, [])
        elif rec == b"link" and len(parts) == 3:
            target = _check_str(_field(parts[2], where), where, limit=MAX_PATH, empty=False)
            put(check_path(_field(parts[1], where)), Entry(type="link", target=target), where)
        elif rec == b"kind" and len(parts) == 3:
            kind = parts[2].decode("latin-1")
            if kind not in ("char", "block", "fifo", "socket", "other"):
                raise _fail(f"{where}: unknown kind {_short(kind)}")
            put(check_path(_field(parts[1], where)), Entry(type=kind), where)
        elif rec == b"absent" and len(parts) == 2:
            put(check_path(_field(parts[1], where)), Entry(type="absent"), where)
        elif rec == b"file" and len(parts) in (3, 4):
            path = check_path(_field(parts[1], where))
            how = parts[2]
            if how in (b"b64", b"hex") and len(parts) == 3:
                chunks: list[bytes] = []
                while True:
                    if i >= len(lines):
                        raise _fail(f"{where}: file content of {_short(path)} is truncated")
                    data_line = lines[i].rstrip(b"\r")
                    i += 1
                    if data_line == b".":
                        break
                    chunks.append(data_line)
                    if len(chunks) * 80 > 4 * MAX_READ:
                        raise _fail(f"{where}: content of {_short(path)} is larger than {MAX_READ} bytes")
                joined = b"".join(chunks)
                if how == b"b64":
                    data = _b64(joined.decode("latin-1"), where)
                else:
                    try:
                        data = bytes.fromhex(b"".join(joined.split()).decode("ascii"))
                    except (ValueError, UnicodeDecodeError):
                        raise _fail(f"{where}: content of {_short(path)} is not valid hex") from None
                if len(data) > MAX_READ:
                    raise _fail(f"{where}: content of {_short(path)} is larger than {MAX_READ} bytes")
                budget.take(len(data), where)
                put(path, Entry(type="file", data=data, size=len(data)), where)
            elif how == b"large" and len(parts) == 4:
                try:
                    size = _check_int(int(parts[3].decode("ascii")), where)
                except (ValueError, UnicodeDecodeError):
                    raise _fail(f"{where}: bad size") from None
                put(path, Entry(type="file", size=size, omitted=f"larger than the collector's cap, {size}+ bytes"),
                    where)
            elif how == b"denied" and len(parts) == 3:
                put(path, Entry(type="file", error="permission denied (run hostaudit as root to read it)"), where)
            elif how == b"failed" and len(parts) == 3:
                put(path, Entry(type="file", error="read failed (reported by collect.sh)"), where)
            else:
                raise _fail(f"{where}: bad file record")
        else:
            shown = line[:40].decode("utf-8", errors="replace")
            raise _fail(f"{where}: unknown record {_short(shown)}")
    close_listing()
    if not ended:
        raise _fail("truncated: no 'end' line (the collection was interrupted or hit its size cap)")
    return _finish(
        entries,
        mode=meta.get("mode"),
        hostname=meta.get("hostname") or None,
        collected_at=meta.get("collected_at"),
        tool_version=meta.get("tool"),
        root=meta.get("root"),
        collector="collect.sh",
    )


def parse_snapshot(blob: bytes) -> Snapshot:
    """A Snapshot from the bytes of either format (gzip-compressed or not); SnapshotError if bad."""
    if len(blob) > MAX_INPUT:
        raise _fail(f"larger than {MAX_INPUT} bytes")
    if blob[:2] == b"\x1f\x8b":
        blob = _gunzip_exact(blob, "gzip-compressed snapshot", MAX_INPUT)
    head = blob.lstrip()[:1]
    if head == b"{":
        return _from_json(blob)
    if blob.startswith(TEXT_MAGIC):
        return _from_text(blob)
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


def load_snapshot(path: str) -> Snapshot:
    blob = read_input(path)
    try:
        return parse_snapshot(blob)
    except SnapshotError as exc:
        raise SnapshotError(f"snapshot {path}: {exc}") from None


def host_from_snapshot(snap: Snapshot, *, name: str) -> Host:
    return SnapshotHost(SnapshotFS(snap, name=name), root=name)


def load_snapshot_host(path: str) -> Host:
    """The Host for ``run --snapshot``: mode SNAPSHOT, root the snapshot's path."""
    return host_from_snapshot(load_snapshot(path), name=path)
