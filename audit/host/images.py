"""``--image``: which reader opens a disk image (debugfs or libguestfs), and the Host and snapshot
made from it. The readers are ``audit.host.diskimage`` (debugfs, the fast path for an ext2/3/4
root) and ``audit.host.libguestfs`` (an appliance, for LVM, XFS, btrfs); this module chooses, so
that neither imports the other's way round."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from audit.host.diskimage import TOTAL_READ_CAP, ImageError, NoExtRoot, close_image, find_tool, open_image
from audit.host.fs import FileSource

if TYPE_CHECKING:
    from audit.host.collect import Patterns
    from audit.host.core import Host


#: --image-backend: debugfs where it can read the root, else libguestfs; or one of them.
BACKENDS = ("auto", "debugfs", "libguestfs")
#: What debugfs cannot read and libguestfs can (a partition not recognised may be one of them too).
_GUESTFS_KINDS = frozenset({"lvm", "xfs", "btrfs"})


def open_source(path: str, *, backend: str = "auto", total_cap: int = TOTAL_READ_CAP) -> FileSource:
    """The files of the Linux root of the disk image at ``path``, through ``backend``: with "auto",
    debugfs (fast, no appliance) when it finds an ext2/3/4 root, else libguestfs when the image
    holds what only libguestfs reads (LVM, XFS, btrfs, partitions not recognised) or when debugfs
    is not installed. ImageError when neither can."""
    if backend not in BACKENDS:
        raise ImageError(f"--image-backend {backend}: not one of {', '.join(BACKENDS)}")
    if backend == "libguestfs":
        from audit.host.libguestfs import open_guestfs

        return open_guestfs(path, total_cap=total_cap)
    if backend == "auto":
        try:
            find_tool("debugfs")
        except ImageError:
            from audit.host.libguestfs import find_guestfish, open_guestfs

            if find_guestfish() is None:
                raise
            return open_guestfs(path, total_cap=total_cap, why="debugfs (e2fsprogs) is not installed")
    try:
        return open_image(path, total_cap=total_cap)
    except NoExtRoot as exc:
        guestfs = bool(exc.kinds & _GUESTFS_KINDS) or (not exc.whole and None in exc.kinds)
        if backend == "auto" and guestfs:
            from audit.host.libguestfs import open_guestfs

            return open_guestfs(path, total_cap=total_cap, why=f"no ext2/3/4 root for debugfs ({exc.found})")
        if "luks" in exc.kinds:
            hint = " (LUKS: encrypted, not read)"
        elif backend == "debugfs" and guestfs:
            hint = " (LVM, XFS and btrfs are read through libguestfs: --image-backend auto)"
        else:
            hint = " (libguestfs's inspection can look too: --image-backend libguestfs)"
        raise ImageError(f"{exc}{hint}") from None


def image_host(path: str, *, backend: str = "auto") -> Host:
    """A Host over the root file system of the disk image at ``path`` (mode image)."""
    from audit.host.core import Host
    from audit.model import TargetMode

    return Host(open_source(path, backend=backend), mode=TargetMode.IMAGE, root=os.path.abspath(path))


def collect_image_document(path: str, patterns: Patterns, *, total_cap: int, clock: Callable[[], str] | None = None,
                           backend: str = "auto") -> dict[str, Any]:
    """The JSON snapshot document of the root file system of the disk image at ``path``: what
    ``collect_document`` captures from a directory tree, captured through debugfs or libguestfs."""
    from audit.host.collect import collect_from
    from audit.model import TargetMode

    fs = open_source(path, backend=backend)
    try:
        if clock is None:
            return collect_from(fs, patterns, mode=TargetMode.IMAGE, root=os.path.abspath(path), total_cap=total_cap)
        return collect_from(fs, patterns, mode=TargetMode.IMAGE, root=os.path.abspath(path), total_cap=total_cap,
                            clock=clock)
    finally:
        close_image(fs)
