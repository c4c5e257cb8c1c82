"""A folder of past JSON reports for periodic audits: ``run --history DIR [--keep N]``.

Each run adds ``DIR/<UTC start>.json`` (``20261130T020101Z.json``; a second run in the same second
gets ``...Z-2.json``), written atomically, points ``DIR/latest.json`` (a relative symlink, replaced
atomically) at it, and removes the oldest reports beyond the newest ``keep``. A lock file
(``DIR/.lock``, ``flock``) makes a concurrent run wait up to ``wait`` seconds, then give up with one
line. Nothing but files of this naming is ever removed, so DIR may hold other things.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import time
from collections.abc import Iterator

from audit.errors import UsageError
from reports.output import write_atomic

NAME = re.compile(r"^(\d{8}T\d{6}Z)(?:-(\d{1,6}))?\.json$")
LATEST = "latest.json"
LOCK = ".lock"
DEFAULT_KEEP = 30
DEFAULT_WAIT = 60.0


def _key(name: str) -> tuple[str, int]:
    m = NAME.match(name)
    assert m is not None
    return m.group(1), int(m.group(2) or 1)


def reports_in(folder: str) -> list[str]:
    """The history's report files, oldest first (names only)."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise UsageError(f"--history {folder}: cannot list it: {exc.strerror}") from None
    return sorted((n for n in names if NAME.match(n) and os.path.isfile(os.path.join(folder, n))), key=_key)


@contextlib.contextmanager
def locked(folder: str, *, wait: float = DEFAULT_WAIT) -> Iterator[None]:
    path = os.path.join(folder, LOCK)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise UsageError(f"--history {folder}: another hostaudit run has held {path} for "
                                     f"{wait:g} s; not recorded") from None
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # releases the lock


def _stamp(started_at: str) -> str:
    """``2026-11-30T02:01:01Z`` -> ``20261130T020101Z``."""
    digits = re.sub(r"[^0-9]", "", started_at)
    if len(digits) != 14:
        digits = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    return f"{digits[:8]}T{digits[8:]}Z"


def _point_latest(folder: str, name: str) -> None:
    tmp = os.path.join(folder, f".{LATEST}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(name, tmp)
    os.replace(tmp, os.path.join(folder, LATEST))


def record(folder: str, text: str, *, started_at: str, keep: int = DEFAULT_KEEP, mode: int | None = None,
           wait: float = DEFAULT_WAIT) -> str:
    """Add one JSON report to the history; the path written."""
    if keep < 1:
        raise UsageError(f"--keep {keep}: keep at least one report")
    try:
        os.makedirs(folder, mode=0o750, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--history {folder}: cannot create it: {exc.strerror}") from None
    if not os.path.isdir(folder):
        raise UsageError(f"--history {folder}: not a directory")
    with locked(folder, wait=wait):
        stamp = _stamp(started_at)
        name, n = f"{stamp}.json", 1
        while os.path.lexists(os.path.join(folder, name)):
            n += 1
            name = f"{stamp}-{n}.json"
        path = os.path.join(folder, name)
        write_atomic(path, text, mode=mode)
        _point_latest(folder, name)
        for old in reports_in(folder)[:-keep]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(folder, old))
    return path


def last_two(folder: str) -> tuple[str | None, str | None]:
    """(previous, latest) report paths of a history; None where there is none."""
    names = reports_in(folder)
    paths = [os.path.join(folder, n) for n in names[-2:]]
    if not paths:
        return None, None
    if len(paths) == 1:
        return None, paths[0]
    return paths[0], paths[1]
