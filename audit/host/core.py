"""The one way to read an audited host: a ``Host`` over a confined ``FileSource``.

Checks never open files themselves: they ask the host for facts. A fact is a function
``f(host) -> value`` declared with ``@fact(paths=...)``; the host computes it once and caches the
value or the exception (``FactUnavailable`` → skip, ``FactError`` → error). The declared paths
are what a snapshot must capture, so a plugin's own facts travel too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from audit.errors import FactError, FactUnavailable
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


class Host:
    """A host to audit: the live machine, an unbooted image root, or (later) a snapshot."""

    def __init__(self, fs: FileSource, *, mode: TargetMode, root: str) -> None:
        self.fs = fs
        self.mode = mode
        self.root = root
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
                hit = (False, exc)
            self._cache[fn] = hit
        ok, value = hit
        if ok:
            return value  # type: ignore[no-any-return]
        raise value

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
        return self.fs.read_bytes(path, limit=limit).decode("utf-8", errors="replace")

    def read_runtime(self, path: str) -> str:
        """Like read_text, but a missing /proc, /sys or /dev file on an image says why."""
        try:
            return self.read_text(path)
        except (FactUnavailable, FactError):  # FactError: a /proc that loops or cannot be looked at
            if not self.has_runtime:
                raise self.runtime_unavailable(path) from None
            raise

    def parse(self, path: str, parser: Callable[[str], T], *, runtime: bool = False) -> T:
        """Read ``path`` and run a pure parser on it; a ParseError names the file and line."""
        text = self.read_runtime(path) if runtime else self.read_text(path)
        return parse_text(path, text, parser)

    def exists(self, path: str) -> bool:
        return self.fs.kind(path) is not None

    def kind(self, path: str, *, follow: bool = True) -> Kind | None:
        return self.fs.kind(path, follow=follow)

    def listdir(self, path: str) -> list[str]:
        return self.fs.listdir(path)

    def readlink(self, path: str) -> str | None:
        return self.fs.readlink(path)

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

