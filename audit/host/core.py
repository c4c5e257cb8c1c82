"""The one way to read an audited host: a ``Host`` over a confined ``FileSource``.

Checks never open files themselves: they ask the host for facts. A fact is a function
``f(host) -> value`` declared with ``@fact(paths=...)``; the host computes it once and caches the
value or the exception (``FactUnavailable`` → skip, ``FactError`` → error). The declared paths
are what a snapshot must capture, so a plugin's own facts travel too.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from audit.errors import FactError, FactUnavailable, fresh
from audit.host import kernel
from audit.host.fs import MAX_READ, FileSource, Kind, RootFS, normalize
from audit.host.kernel import KconfigFact, KernelRelease
from audit.host.registry import parse_text
from audit.model import TargetMode

if TYPE_CHECKING:
    from audit.parsers.cmdline import Param
    from audit.parsers.cpuinfo import CpuInfo
    from audit.parsers.osrelease import OsRelease

T = TypeVar("T")

#: Values a parse may return that nobody can change: shared as they are.
_ATOMS = (str, bytes, int, float, complex, bool, type(None), enum.Enum, range)


def _copier(value: Any, depth: int = 0) -> tuple[bool, Callable[[], Any] | None]:
    """(understood, make): whether ``value`` is made only of things this knows how to share, and a
    function that makes a fresh copy of its mutable containers (lists, dicts, sets: at any depth,
    inside tuples, named tuples and frozen dataclasses), sharing everything immutable; ``make`` is
    None when nothing in it can be changed. Anything else (an object of a plain class, a dataclass
    that is not frozen) is not understood, and such a value is never cached."""
    if depth > 40:
        return False, None
    if isinstance(value, _ATOMS) or getattr(type(value), "shared_as_is", False) is True:
        return True, None  # (a class whose instances never change says so: ``shared_as_is = True``)
    if isinstance(value, tuple):
        kind = type(value)
        if kind is not tuple and not hasattr(kind, "_fields"):  # only plain and named tuples
            return False, None
        parts = [_copier(v, depth + 1) for v in value]
        if not all(ok for ok, _ in parts):
            return False, None
        if all(make is None for _, make in parts):
            return True, None
        makers = [make for _, make in parts]
        build = kind if kind is tuple else kind._make  # type: ignore[attr-defined]
        return True, lambda: build([m() if m else v for m, v in zip(makers, value, strict=True)])
    if isinstance(value, frozenset):
        ok = all(_copier(v, depth + 1) == (True, None) for v in value)
        return ok, None
    if isinstance(value, list | set):
        kind = type(value)
        if kind not in (list, set):
            return False, None
        parts = [_copier(v, depth + 1) for v in value]
        if not all(ok for ok, _ in parts):
            return False, None
        if all(make is None for _, make in parts):
            return True, lambda: kind(value)
        pairs = [(make, v) for (_, make), v in zip(parts, value, strict=True)]
        return True, lambda: kind(m() if m else v for m, v in pairs)
    if isinstance(value, MappingProxyType):  # a record's empty default: read-only
        ok = all(_copier(k, depth + 1) == (True, None) and _copier(v, depth + 1) == (True, None)
                 for k, v in value.items())
        return ok, None
    if isinstance(value, dict):
        if type(value) is not dict or not all(_copier(k, depth + 1) == (True, None) for k in value):
            return False, None
        parts = {k: _copier(v, depth + 1) for k, v in value.items()}
        if not all(ok for ok, _ in parts.values()):
            return False, None
        if all(make is None for _, make in parts.values()):
            return True, lambda: dict(value)
        return True, lambda: {k: (m() if m else value[k]) for k, (_, m) in parts.items()}
    params = getattr(type(value), "__dataclass_params__", None)  # a dataclass instance (a plugin's)
    if params is not None and not isinstance(value, type):
        if not params.frozen:
            return False, None
        import dataclasses  # only for a plugin's dataclass: its import is some 10 ms of start-up

        fields = [f.name for f in dataclasses.fields(value)]
        parts_by = {name: _copier(getattr(value, name), depth + 1) for name in fields}
        if not all(ok for ok, _ in parts_by.values()):
            return False, None
        changing = {name: make for name, (_, make) in parts_by.items() if make is not None}
        if not changing:
            return True, None
        cls = type(value)

        def copy() -> Any:
            new = object.__new__(cls)
            for name in fields:
                make = changing.get(name)
                object.__setattr__(new, name, make() if make else getattr(value, name))
            return new

        return True, copy
    return False, None


def host_text(data: bytes) -> str:
    """A host file's text: invalid UTF-8 is replaced, never fatal (host files are untrusted)."""
    return data.decode("utf-8", errors="replace")


#: how many snapshot records a ParseCache keeps (``remember``)
MAX_RECORDS = 1 << 16


class ParseCache:
    """What parsers made of a file's text, shared by the hosts one process audits (a fleet run):
    hosts built from one image hold the same kernel config, os-release, cpuinfo of one CPU model.

    Keyed by the parser and the text itself (Python's hash of the text, confirmed by comparing the
    text: two different texts never share an entry). A cached value is never handed out to be
    changed: what is immutable (strings, numbers, tuples, frozensets, frozen dataclasses of those)
    is shared as it is; the lists, dicts and sets in it are copied for each host that asks, so a
    check that changed its copy would change nothing another host sees. A value this does not know
    how to copy is not cached, nor is a parse that fails. Snapshots keep their decoded file content
    here too (``content``). Bounded: ``max_entries`` values and ``max_bytes`` of the text (and
    content) behind them, least recently used first out.
    """

    def __init__(self, *, max_entries: int = 256, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[Any, Any], tuple[Any, Callable[[], Any] | None, int]] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0
        self._records: dict[Any, Any] = {}
        self._records_bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _get(self, key: tuple[Any, Any]) -> tuple[Any, Callable[[], Any] | None, int] | None:
        hit = self._entries.get(key)
        if hit is not None:
            self._entries.move_to_end(key)
            self.hits += 1
        else:
            self.misses += 1
        return hit

    def _put(self, key: tuple[Any, Any], value: Any, make: Callable[[], Any] | None, size: int) -> None:
        if size > self.max_bytes:
            return
        self._entries[key] = (value, make, size)
        self._bytes += size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, (_, _, old) = self._entries.popitem(last=False)
            self._bytes -= old

    def parse(self, source: str, text: str | bytes, parser: Callable[[str], T]) -> T:
        """``parse_text(source, text, parser)``, from the cache when this parser has seen this text.
        ``text`` may be the file's bytes, decoded (``host_text``) only when not cached: a
        snapshot's hosts share one bytes object per distinct content (``content``), whose hash
        Python keeps, so a hit costs neither decoding nor hashing the text again."""
        key = (parser, text)
        hit = self._get(key)
        if hit is not None:
            value, make, _ = hit
            return make() if make is not None else value  # type: ignore[no-any-return]
        if isinstance(text, bytes):
            text = host_text(text)
        value = parse_text(source, text, parser)
        if len(text) <= self.max_bytes:
            understood, make = _copier(value)
            if understood:
                self._put(key, value, make, len(text))
                return make() if make is not None else value  # type: ignore[no-any-return]
        return value

    def remember(self, key: Any, size: int, make: Callable[[], T]) -> T:
        """``make()``, kept by ``key`` (``size`` bytes): what a text snapshot's record (its line and
        the lines it owns) is, the same on every host that holds those bytes, checked once. Up to
        MAX_RECORDS values and ``max_bytes`` of keys; past that, started afresh. ``make`` must give
        an immutable value; one that raises keeps nothing."""
        hit = self._records.get(key)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        value = make()
        if len(self._records) >= MAX_RECORDS or self._records_bytes + size > self.max_bytes:
            self._records.clear()
            self._records_bytes = 0
        if size <= self.max_bytes:
            self._records[key] = value
            self._records_bytes += size
        return value

    def content(self, encoded: str | bytes, decode: Callable[[], bytes]) -> bytes:
        """``decode()``, the bytes a snapshot holds as ``encoded`` (base64, compressed), shared by
        the snapshots that hold the same ``encoded``; a decoding that fails is not kept."""
        key = (ParseCache.content, encoded)
        hit = self._get(key)
        if hit is not None:
            return hit[0]  # type: ignore[no-any-return]
        data = decode()
        self._put(key, data, None, len(encoded) + len(data))
        return data


class Host:
    """A host to audit: the live machine, an unbooted image root, or (later) a snapshot."""

    def __init__(self, fs: FileSource, *, mode: TargetMode, root: str, parse_cache: ParseCache | None = None) -> None:
        self.fs = fs
        self.mode = mode
        self.root = root
        self.parse_cache = parse_cache
        self._cache: dict[Callable[..., Any], tuple[bool, Any]] = {}
        self._runtime: bool | None = None

    @classmethod
    def live(cls) -> Host:
        return cls(RootFS("/"), mode=TargetMode.LIVE, root="/")

    @classmethod
    def from_root(cls, root: str) -> Host:
        """An image (or a container's view) rooted at ``root``; ``/`` is the live host."""
        fs = RootFS(root)
        if fs.root == "/":
            return cls(fs, mode=TargetMode.LIVE, root="/")
        return cls(fs, mode=TargetMode.IMAGE, root=fs.root)

    # -- generic access -------------------------------------------------------------------------

    def fact(self, fn: Callable[[Host], T]) -> T:
        """The value of a fact function, computed once; its exception is cached and re-raised too."""
        hit = self._cache.get(fn)
        if hit is None:
            try:
                hit = (True, fn(self))
            except (FactUnavailable, FactError) as exc:
                hit = (False, exc.with_traceback(None))
            self._cache[fn] = hit
        ok, value = hit
        if ok:
            return value  # type: ignore[no-any-return]
        raise fresh(value)  # not the kept one: see audit.errors.fresh

    @property
    def has_runtime(self) -> bool:
        """Is there a running kernel to ask (/proc present under the root)? A /proc that loops or
        cannot be looked at is no running kernel: never an exception, since this is asked outside
        any check's error handling."""
        if self.mode is TargetMode.LIVE:
            return True
        if self._runtime is None:
            try:
                self._runtime = self.fs.kind("/proc/cpuinfo") == "file" or self.fs.kind("/proc/self") is not None
            except (FactUnavailable, FactError):
                self._runtime = False
        return self._runtime

    def runtime_unavailable(self, path: str) -> FactUnavailable:
        what = "an unbooted image has no running kernel" if self.mode is TargetMode.IMAGE else "not captured"
        return FactUnavailable(f"{path} is a runtime fact and is not present here ({what})", source=path)

    def read_bytes(self, path: str, *, limit: int = MAX_READ) -> bytes:
        return self.fs.read_bytes(path, limit=limit)

    def read_text(self, path: str, *, limit: int = MAX_READ) -> str:
        """A file's text; invalid UTF-8 is replaced, never fatal (host files are untrusted)."""
        return host_text(self.fs.read_bytes(path, limit=limit))

    def read_runtime(self, path: str) -> str:
        """Like read_text, but a missing /proc, /sys or /dev file on an image says why."""
        return host_text(self._runtime_bytes(path))

    def _runtime_bytes(self, path: str) -> bytes:
        try:
            return self.read_bytes(path)
        except (FactUnavailable, FactError):  # FactError: a /proc that loops or cannot be looked at
            if not self.has_runtime:
                raise self.runtime_unavailable(path) from None
            raise

    def parse(self, path: str, parser: Callable[[str], T], *, runtime: bool = False) -> T:
        """Read ``path`` and run a pure parser on it; a ParseError names the file and line. With a
        ``parse_cache`` (a fleet run), a text this parser has seen for another host is not parsed again."""
        data = self._runtime_bytes(path) if runtime else self.read_bytes(path)
        if self.parse_cache is not None:
            return self.parse_cache.parse(path, data, parser)
        return parse_text(path, host_text(data), parser)

    def exists(self, path: str) -> bool:
        return self.fs.kind(path) is not None

    def kind(self, path: str, *, follow: bool = True) -> Kind | None:
        return self.fs.kind(path, follow=follow)

    def listdir(self, path: str) -> list[str]:
        return self.fs.listdir(path)

    def readlink(self, path: str) -> str | None:
        return self.fs.readlink(path)

    def owner(self, path: str) -> tuple[int, int, int] | None:
        """(permission bits, uid, gid) of ``path``; None when absent (see ``FileSource.owner``)."""
        return self.fs.owner(path)

    def first_existing(self, paths: Sequence[str]) -> str | None:
        for p in paths:
            if self.fs.kind(p) == "file":
                return normalize(p)
        return None

    # -- common facts, as properties so checks read naturally -----------------------------------

    @property
    def cpuinfo(self) -> CpuInfo:
        return self.fact(kernel.cpuinfo)

    @property
    def kernel_release(self) -> KernelRelease:
        return self.fact(kernel.kernel_release)

    @property
    def kernel_config(self) -> KconfigFact:
        return self.fact(kernel.kernel_config)

    @property
    def os_release(self) -> OsRelease:
        return self.fact(kernel.os_release_fact).info

    @property
    def cmdline(self) -> list[Param]:
        return self.fact(kernel.proc_cmdline)

