"""Files the user names on the command line (a policy, a snapshot, a cpuinfo dump, a report): checked
before they are read, so a FIFO, a device or a huge file ends in one line instead of a hang.

Files inside an audited root are read through ``audit.host.fs`` instead, confined to that root.
"""

from __future__ import annotations

import errno
import os
import stat

from audit.errors import UsageError

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_user_file(path: str, *, what: str, cap: int) -> bytes:
    """The bytes of the regular file ``path`` (at most ``cap``), or UsageError naming ``what`` and
    the path. Opened non-blocking, so opening a FIFO cannot wait for a writer; its type and size
    are checked before a byte is read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket, or a FIFO with no writer on some systems
            raise UsageError(f"{what} {path}: not a regular file") from None
        raise UsageError(f"{what} {path}: cannot read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
            raise UsageError(f"{what} {path}: not a regular file ({kind})")
        if st.st_size > cap:
            raise UsageError(f"{what} {path}: {st.st_size} bytes, larger than the {cap}-byte limit")
        chunks: list[bytes] = []
        size = 0
        while size <= cap:
            chunk = os.read(fd, min(1 << 20, cap + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > cap:  # it grew while being read
            raise UsageError(f"{what} {path}: larger than the {cap}-byte limit")
        return b"".join(chunks)
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def read_user_text(path: str, *, what: str, cap: int) -> str:
    """Like ``read_user_file``, decoded as UTF-8; anything else is a UsageError naming the byte."""
    data = read_user_file(path, what=what, cap=cap)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what} {path}: not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r})") \
            from None


def files_in(folder: str) -> list[str]:
    """The paths of the regular files in ``folder`` (a link to one counts), names starting with "."
    left out, sorted by name, not recursive. Each entry's type is the one the directory records: a
    stat only for a link, not for each of ten thousand snapshots. OSError when the folder cannot
    be read; an entry that cannot be looked at is left out."""
    def is_file(entry: os.DirEntry[str]) -> bool:
        try:
            return entry.is_file()
        except OSError:
            return False

    with os.scandir(folder) as listing:
        names = sorted(e.name for e in listing if not e.name.startswith(".") and is_file(e))
    return [os.path.join(folder, n) for n in names]
