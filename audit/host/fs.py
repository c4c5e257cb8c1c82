"""Read-only file access confined to one root directory.

Every path is resolved component by component inside the root: an absolute symlink is re-rooted,
``..`` stops at the root, so a link inside an untrusted image never reaches a file of the machine
running the audit. Only regular files are read, with a size cap, and nothing is ever written.
A third backend (snapshots) implements the same ``FileSource`` protocol.
"""

from __future__ import annotations

import errno
import os
import stat
import zlib
from collections.abc import Callable
from typing import Literal, Protocol

from audit.errors import FactError, FactUnavailable
from audit.parsers.paths import normalize

Kind = Literal["file", "dir", "char", "block", "fifo", "socket", "link", "other"]

#: The largest file hostaudit reads. /proc/cpuinfo of a 512-CPU host is under 2 MiB.
MAX_READ = 32 * 1024 * 1024
MAX_SYMLINKS = 40


class FileSource(Protocol):
    """What the host layer needs from a backend. Paths are absolute, as seen inside the root."""

    def read_bytes(self, path: str, *, limit: int = MAX_READ) -> bytes:
        """The content of a regular file; FactUnavailable if absent, FactError if unusable."""
        ...

    def listdir(self, path: str) -> list[str]:
        """Sorted names in a directory; FactUnavailable if absent."""
        ...

    def kind(self, path: str, *, follow: bool = True) -> Kind | None:
        """What is at ``path`` (None when nothing is)."""
        ...

    def readlink(self, path: str) -> str | None:
        """The raw target of a symlink at ``path`` (None when it is not a symlink)."""
        ...

    def owner(self, path: str) -> tuple[int, int, int] | None:
        """(permission bits, uid, gid) of what is at ``path``, symlinks followed; None when nothing
        is. FactUnavailable when the backend does not know them (a snapshot records them for device
        nodes only, and older snapshots not at all)."""
        ...

    def describe(self) -> str:
        """Where the files come from, for messages."""
        ...


def walk_inside(path: str, step: Callable[[str, str, bool], str | None], *, follow_last: bool = True) -> str:
    """Resolve ``path`` component by component with the root as ``/``: the one walker behind
    every backend (a directory tree, a snapshot, the snapshot collector).

    ``step(parent, name, more)`` looks at one component and returns its symlink target, or None
    when it is not a symlink; it raises to stop the walk (a missing component). ``more`` says
    whether components follow. An absolute target restarts at the root and ``..`` stops there, so
    no link can lead outside; a last symlink is followed only with ``follow_last``.
    """
    pending = [p for p in path.split("/") if p not in ("", ".")]
    pending.reverse()  # a stack: the next component is at the end
    done: list[str] = []
    links = 0
    while pending:
        part = pending.pop()
        if part == "..":
            if done:
                done.pop()
            continue
        target = step("/" + "/".join(done), part, bool(pending))
        if target is not None and (pending or follow_last):
            links += 1
            if links > MAX_SYMLINKS:
                raise FactError(normalize(path), "too many levels of symbolic links")
            if target.startswith("/"):
                done = []  # re-rooted: an absolute link points inside the root, never outside
            pending.extend(reversed([p for p in target.split("/") if p not in ("", ".")]))
            continue
        done.append(part)
    return "/" + "/".join(done)


def _kind_of(mode: int) -> Kind:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISCHR(mode):
        return "char"
    if stat.S_ISBLK(mode):
        return "block"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISLNK(mode):
        return "link"
    return "other"


def _lookup_failed(shown: str, exc: OSError, *, race: bool = False) -> FactUnavailable | FactError:
    """What looking at or opening ``shown`` failing with ``exc`` means: absent, or unusable.
    ``race``: the path was resolved inside a root first, so a symbolic link now was put there since."""
    if isinstance(exc, FileNotFoundError):
        return FactUnavailable(f"{shown} does not exist", source=shown)
    if isinstance(exc, NotADirectoryError):
        return FactUnavailable(f"{shown} does not exist (a parent is not a directory)", source=shown)
    if isinstance(exc, PermissionError):
        return FactError(shown, "permission denied (run hostaudit as root to read it)")
    if exc.errno == errno.ELOOP:
        return FactError(shown, "is a symbolic link after resolution; refused" if race
                         else "too many levels of symbolic links")
    return FactError(shown, f"cannot open: {exc.strerror}")


class RootFS:
    """A directory tree: ``/`` for the live host, or an image root.

    Inside an image root every path is resolved component by component (``walk_inside``). At ``/``
    the kernel's own resolution is the same walk (absolute links start at ``/``, ``..`` stops
    there), so the live host hands paths to the kernel as they are and saves a ``lstat`` a
    component (the same answers: tests/test_fs.py compares the two).
    """

    def __init__(self, root: str) -> None:
        real = os.path.realpath(root)
        if not os.path.isdir(real):
            raise NotADirectoryError(root)
        self.root = real
        self.direct = real == "/"

    def describe(self) -> str:
        return self.root

    def resolve(self, path: str, *, follow_last: bool = True) -> str:
        """The path on the auditing machine that ``path`` inside the root designates.

        Raises FactUnavailable when a component is missing and FactError on a symlink loop.
        """
        shown = normalize(path)
        if self.direct:
            return self._direct(shown, follow_last)

        def step(parent: str, name: str, more: bool) -> str | None:
            candidate = os.path.join(self.root, parent.lstrip("/"), name)
            try:
                st = os.lstat(candidate)
            except (FileNotFoundError, NotADirectoryError, PermissionError) as exc:
                raise _lookup_failed(shown, exc) from None
            return os.readlink(candidate) if stat.S_ISLNK(st.st_mode) else None

        inside = walk_inside(path, step, follow_last=follow_last)
        return os.path.join(self.root, inside.lstrip("/")) if inside != "/" else self.root

    def _direct(self, shown: str, follow_last: bool) -> str:
        """``shown`` at ``/``, checked as ``resolve`` checks it; the kernel resolves it when used."""
        try:
            os.stat(shown) if follow_last else os.lstat(shown)
        except OSError as exc:
            raise _lookup_failed(shown, exc) from None
        return shown

    def read_bytes(self, path: str, *, limit: int = MAX_READ) -> bytes:
        shown = normalize(path)
        real = shown if self.direct else self.resolve(path)  # at /, open() reports what resolve would
        flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        if not self.direct:  # resolved inside the root: a symlink now is a race, never followed
            flags |= os.O_NOFOLLOW
        try:
            fd = os.open(real, flags)
        except OSError as exc:
            raise _lookup_failed(shown, exc, race=not self.direct) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise FactError(shown, f"is not a regular file ({_kind_of(st.st_mode)}); not read")
            chunks: list[bytes] = []
            total = 0
            while True:
                try:
                    chunk = os.read(fd, 1 << 16)
                except OSError as exc:
                    raise FactError(shown, f"read failed: {exc.strerror}") from None
                if not chunk:
                    break
                total += len(chunk)
                if total > limit:
                    raise FactError(shown, f"larger than the {limit} byte cap; not read")
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def listdir(self, path: str) -> list[str]:
        shown = normalize(path)
        real = self.resolve(path)
        try:
            return sorted(os.listdir(real))
        except FileNotFoundError:
            raise FactUnavailable(f"{shown} does not exist", source=shown) from None
        except NotADirectoryError:
            raise FactError(shown, "is not a directory") from None
        except PermissionError:
            raise FactError(shown, "permission denied (run hostaudit as root to read it)") from None

    def kind(self, path: str, *, follow: bool = True) -> Kind | None:
        if self.direct:
            shown = normalize(path)
            try:
                return _kind_of((os.stat(shown) if follow else os.lstat(shown)).st_mode)
            except (FileNotFoundError, NotADirectoryError):
                return None
            except OSError:
                self._direct(shown, follow)  # raises the error resolve() raises inside a root
                raise
        try:
            real = self.resolve(path, follow_last=follow)
            return _kind_of(os.lstat(real).st_mode)
        except (FactUnavailable, FileNotFoundError, NotADirectoryError):
            return None

    def readlink(self, path: str) -> str | None:
        try:
            real = self.resolve(path, follow_last=False)
            return os.readlink(real)
        except (FactUnavailable, OSError):
            return None

    def owner(self, path: str) -> tuple[int, int, int] | None:
        try:
            real = self.resolve(path)
            st = os.stat(real) if self.direct else os.lstat(real)
        except (FactUnavailable, FileNotFoundError, NotADirectoryError):
            return None
        except PermissionError:
            raise FactError(normalize(path), "permission denied (run hostaudit as root to read it)") from None
        return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def gunzip(data: bytes, *, source: str, limit: int = MAX_READ) -> bytes:
    """Decompress gzip data with an output cap (an image is untrusted: no decompression bombs)."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as exc:
        raise FactError(source, f"not valid gzip data ({exc})") from None
    if len(out) > limit:
        raise FactError(source, f"decompresses to more than the {limit} byte cap; not read")
    return out
