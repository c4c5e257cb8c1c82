"""Auditing a disk image (raw or qcow2) without mounting or booting it: a ``FileSource`` over
e2fsprogs' ``debugfs`` on the image's ext2/3/4 root file system, read only.

debugfs is only ever handed inode numbers (``cat <12>``, ``ls -p <2>``), never a path: every path is
resolved here, component by component, with hostaudit's own rules (``walk_inside``: an absolute link
is re-rooted inside the image, ``..`` stops at its root), so neither a hostile name (a newline,
bytes that are not UTF-8) nor a link to the auditing machine's ``/etc/shadow`` can mislead it.
Every tool run is bounded (time, output bytes), every read capped, the whole audit's reads capped
too. A qcow2 image is first converted to raw by ``qemu-img`` (it reads only) into a private file
that is unlinked at once. What debugfs cannot read (a root on LVM, XFS, btrfs) goes to libguestfs
(``audit.host.libguestfs``): ``audit.host.images.open_source`` chooses.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time
from typing import TYPE_CHECKING

from audit.errors import FactError, FactUnavailable, UsageError
from audit.host.fs import MAX_READ, FileSource, Kind, _kind_of, walk_inside
from audit.parsers.paths import normalize
from audit.record import Record

if TYPE_CHECKING:
    pass

#: One debugfs or qemu-img run that takes longer is stuck (a corrupt or hostile image): stopped.
TOOL_TIMEOUT = 30.0
#: qemu-img converting a qcow2 image to raw: a whole disk, so longer.
CONVERT_TIMEOUT = 600.0
#: The most a directory listing or a ``stat`` may print (a directory of ~100 000 names).
LIST_CAP = 16 * 1024 * 1024
STAT_CAP = 64 * 1024
#: The most one audit reads out of an image, all files together.
TOTAL_READ_CAP = 256 * 1024 * 1024
#: The largest qcow2 (virtual size) converted; the raw copy is sparse, so it costs what is allocated.
CONVERT_CAP = 64 * 1024 * 1024 * 1024
#: The longest symbolic link target read (PATH_MAX).
LINK_CAP = 4096
MAX_PARTITIONS = 128
ROOT_INO = 2  # the root directory of every ext2/3/4 file system

INSTALL = {
    "debugfs": "e2fsprogs",
    "qemu-img": "qemu-utils",
}

_SBIN = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")
#: What the tools run with: no pager, no locale, nothing from the caller's environment.
_ENV = {"PATH": ":".join(_SBIN), "LC_ALL": "C", "PAGER": "__none__", "DEBUGFS_PAGER": "__none__"}


class ImageError(UsageError):
    """The image cannot be audited (a missing tool, no Linux root, a corrupt image): exit 2."""


class NoExtRoot(ImageError):
    """debugfs found no Linux root: ``found`` says what each partition holds, ``kinds`` the file
    systems seen (None: not recognised), ``whole`` that the image has no partition table."""

    def __init__(self, message: str, *, found: str, kinds: frozenset[str | None], whole: bool) -> None:
        super().__init__(message)
        self.found = found
        self.kinds = kinds
        self.whole = whole


def find_tool(name: str) -> str:
    """The path of ``name``, also in the sbin directories a non-root PATH lacks; ImageError naming
    the Debian package that provides it when it is missing."""
    found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(_SBIN))
    if not found:
        raise ImageError(f"--image needs {name}, which is not installed "
                         f"(Debian/Ubuntu: apt-get install {INSTALL.get(name, name)})")
    return found


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the tool and anything it started


class ToolOutput(Record):
    stdout: bytes
    stderr: str
    returncode: int
    truncated: bool  # stdout went past its cap: the tool was stopped


def run_tool(argv: list[str], *, cap: int, timeout: float = TOOL_TIMEOUT, pass_fds: tuple[int, ...] = ()) -> ToolOutput:
    """Run ``argv`` with nothing on stdin, stdout read up to ``cap`` bytes (then the tool is
    stopped), stderr up to 64 KiB, all within ``timeout`` seconds (TimeoutError past it)."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_ENV, pass_fds=pass_fds, start_new_session=True)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = bytearray(), bytearray()
    truncated = False
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, out)
        sel.register(proc.stderr, selectors.EVENT_READ, err)
        try:
            while sel.get_map() and not truncated:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{os.path.basename(argv[0])} took longer than {timeout:g} s; stopped")
                for key, _ in sel.select(left):
                    chunk = os.read(key.fd, 1 << 16)
                    if not chunk:
                        sel.unregister(key.fileobj)
                        continue
                    buf: bytearray = key.data
                    buf += chunk
                    if buf is err and len(err) > 65536:
                        del err[65536:]
                    if buf is out and len(out) > cap:
                        truncated = True  # stopped below: what it prints beyond is never read
                        break
        finally:
            if proc.poll() is None and (truncated or sel.get_map()):
                _kill(proc)
            proc.stdout.close()
            proc.stderr.close()
            try:  # its output closed, the tool ends: within what is left of the timeout
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill(proc)
                proc.wait()
    return ToolOutput(bytes(out[: cap + 1]), err.decode("utf-8", "replace"), proc.returncode or 0, truncated)


# ------------------------------------------------------------------------------------------------
# The file system: debugfs, one inode at a time
# ------------------------------------------------------------------------------------------------
class Node(Record):
    ino: int
    mode: int
    uid: int
    gid: int
    size: int


#: One entry of ``ls -p``: /INODE/MODE/UID/GID/NAME/SIZE/ (SIZE empty for a directory). A name
#: cannot hold "/", so the fields are unambiguous even when it holds a newline or any other byte.
_LS_ENTRY = re.compile(rb"/(\d+)/([0-7]+)/(-?\d+)/(-?\d+)/([^/]*)/(\d*)/\n")
_STAT_SIZE = re.compile(rb"\bSize: (\d+)")
_FAST_LINK = b'Fast link dest: "'
#: stderr lines that say nothing: the banner, the catastrophic-mode note.
_NOISE = re.compile(r"^(debugfs \d[^\n]*|catastrophic mode[^\n]*|\s*)$")


def _problems(stderr: str) -> str:
    return "; ".join(line.strip() for line in stderr.splitlines() if not _NOISE.match(line))[:300]


class NodeLookups:
    """``kind``, ``readlink`` and ``owner`` of a FileSource over an image's nodes (debugfs,
    libguestfs), from its ``_resolve(path, follow_last)`` (the path reached and its Node, or
    FactUnavailable) and ``_link(found, shown)`` (a link's raw target)."""

    def _resolve(self, path: str, *, follow_last: bool) -> tuple[str, Node]:
        raise NotImplementedError

    def _link(self, found: tuple[str, Node], shown: str) -> str:
        raise NotImplementedError

    def kind(self, path: str, *, follow: bool = True) -> Kind | None:
        try:
            _, node = self._resolve(path, follow_last=follow)
        except FactUnavailable:
            return None
        return _kind_of(node.mode)

    def readlink(self, path: str) -> str | None:
        try:
            found = self._resolve(path, follow_last=False)
        except FactUnavailable:
            return None
        return self._link(found, normalize(path)) if stat.S_ISLNK(found[1].mode) else None

    def owner(self, path: str) -> tuple[int, int, int] | None:
        try:
            _, node = self._resolve(path, follow_last=True)
        except FactUnavailable:
            return None
        return stat.S_IMODE(node.mode), node.uid, node.gid

    read_total: int
    total_cap: int

    def _file_to_read(self, path: str, shown: str, limit: int) -> tuple[str, Node]:
        """The regular file ``path`` (the path reached, its Node) when it may be read: within
        ``limit`` and the audit's total cap (``read_total`` of ``total_cap``); FactError otherwise."""
        found = self._resolve(path, follow_last=True)
        node = found[1]
        if not stat.S_ISREG(node.mode):
            raise FactError(shown, f"is not a regular file ({_kind_of(node.mode)}); not read")
        if node.size > limit:
            raise FactError(shown, f"larger than the {limit} byte cap; not read")
        if self.read_total + node.size > self.total_cap:
            raise FactError(shown, f"not read: the audit has read {self.read_total} bytes out of the image "
                                   f"(the cap is {self.total_cap})")
        return found


class DebugfsFS(NodeLookups):
    """One ext2/3/4 file system of an image, read through ``debugfs -c`` (read-only; catastrophic
    mode skips the bitmaps, which reading files does not need). ``fd`` is the image opened read-only,
    handed to debugfs as ``/proc/self/fd/N`` (so the image's own name, which may hold ``?`` or start
    with ``-``, never reaches it); ``offset`` is where the file system starts in it."""

    def __init__(self, fd: int, *, offset: int = 0, name: str, total_cap: int = TOTAL_READ_CAP,
                 debugfs: str | None = None) -> None:
        self.fd = fd
        self.offset = offset
        self.name = name
        self.debugfs = debugfs or find_tool("debugfs")
        self.total_cap = total_cap
        self.read_total = 0
        self.runs = 0
        self._dirs: dict[int, dict[str, Node]] = {}
        self._links: dict[int, str] = {}
        self._phys: dict[str, Node] = {}
        root = self._listing(ROOT_INO, "/").get(".")
        if root is None or not stat.S_ISDIR(root.mode):
            raise FactError("/", "the root directory of the file system cannot be read")
        self._phys["/"] = root

    def describe(self) -> str:
        return self.name

    # -- debugfs ----------------------------------------------------------------------------------
    def _debugfs(self, request: str, *, cap: int, shown: str) -> bytes:
        device = f"/proc/self/fd/{self.fd}" + (f"?offset={self.offset}" if self.offset else "")
        self.runs += 1
        try:
            out = run_tool([self.debugfs, "-c", "-R", request, device], cap=cap, pass_fds=(self.fd,))
        except TimeoutError as exc:
            raise FactError(shown, f"reading the image: {exc}") from None
        if out.truncated:
            raise FactError(shown, f"debugfs printed more than {cap} bytes for it; not read")
        problem = _problems(out.stderr)
        if problem and not out.stdout.strip():
            raise FactError(shown, f"debugfs: {problem}")
        return out.stdout

    def _listing(self, ino: int, shown: str) -> dict[str, Node]:
        found = self._dirs.get(ino)
        if found is not None:
            return found
        raw = self._debugfs(f"ls -p <{ino}>", cap=LIST_CAP, shown=shown)
        entries: dict[str, Node] = {}
        pos = 0
        while pos < len(raw):
            m = _LS_ENTRY.match(raw, pos)
            if m is None:
                if raw[pos:].strip():
                    raise FactError(shown, "the image's directory listing is not understood (a corrupt file system?)")
                break
            pos = m.end()
            name = os.fsdecode(m.group(5))
            if not name or "\0" in name or name in entries:
                continue  # a corrupt entry, or a second one of the same name: the first counts
            entries[name] = Node(ino=int(m.group(1)), mode=int(m.group(2), 8), uid=int(m.group(3)) & 0xFFFFFFFF,
                                 gid=int(m.group(4)) & 0xFFFFFFFF, size=int(m.group(6) or 0))
        self._dirs[ino] = entries
        return entries

    def _target(self, node: Node, shown: str) -> str:
        """The raw target of the symbolic link ``node``: a short one is in the inode (``stat`` shows
        it, exactly ``Size`` bytes), a longer one in a data block (``cat``)."""
        found = self._links.get(node.ino)
        if found is not None:
            return found
        if not 0 < node.size <= LINK_CAP:
            raise FactError(shown, f"symbolic link target of {node.size} bytes; not read")
        info = self._debugfs(f"stat <{node.ino}>", cap=STAT_CAP, shown=shown)
        at = info.find(_FAST_LINK)
        if at >= 0:
            start = at + len(_FAST_LINK)
            raw = info[start : start + node.size]
            if info[start + node.size : start + node.size + 1] != b'"':
                raise FactError(shown, "symbolic link target not understood (a corrupt file system?)")
        else:
            raw = self._debugfs(f"cat <{node.ino}>", cap=node.size, shown=shown)
            if len(raw) != node.size:
                raise FactError(shown, "symbolic link target not readable (a corrupt file system?)")
        if b"\0" in raw:
            raise FactError(shown, "symbolic link target holds a NUL byte (a corrupt file system?)")
        target = os.fsdecode(raw)
        self._links[node.ino] = target
        return target

    # -- resolution --------------------------------------------------------------------------------
    def _resolve(self, path: str, *, follow_last: bool) -> tuple[str, Node]:
        shown = normalize(path)

        def step(parent: str, name: str, more: bool) -> str | None:
            pnode = self._phys[parent]
            if not stat.S_ISDIR(pnode.mode):
                raise FactUnavailable(f"{shown} does not exist (a parent is not a directory)", source=shown)
            node = self._listing(pnode.ino, shown).get(name)
            if node is None or name in (".", ".."):
                raise FactUnavailable(f"{shown} does not exist", source=shown)
            child = f"{parent.rstrip('/')}/{name}"
            self._phys[child] = node
            return self._target(node, shown) if stat.S_ISLNK(node.mode) else None

        inside = walk_inside(path, step, follow_last=follow_last)
        return inside, self._phys[inside]

    # -- FileSource --------------------------------------------------------------------------------
    def read_bytes(self, path: str, *, limit: int = MAX_READ) -> bytes:
        shown = normalize(path)
        _, node = self._file_to_read(path, shown, limit)
        if node.size == 0:
            return b""
        data = self._debugfs(f"cat <{node.ino}>", cap=node.size, shown=shown)
        if len(data) != node.size:
            raise FactError(shown, f"read failed: debugfs gave {len(data)} of its {node.size} bytes")
        self.read_total += len(data)
        return data

    def listdir(self, path: str) -> list[str]:
        shown = normalize(path)
        _, node = self._resolve(path, follow_last=True)
        if not stat.S_ISDIR(node.mode):
            raise FactError(shown, "is not a directory")
        return sorted(n for n in self._listing(node.ino, shown) if n not in (".", ".."))

    def _link(self, found: tuple[str, Node], shown: str) -> str:
        return self._target(found[1], shown)


# ------------------------------------------------------------------------------------------------
# The image: format, partitions, the root file system
# ------------------------------------------------------------------------------------------------
class Part(Record):
    number: int  # 0: the whole image (no partition table)
    start: int  # bytes
    length: int


def _pread(fd: int, offset: int, size: int) -> bytes:
    try:
        return os.pread(fd, size, offset)
    except OSError:
        return b""


def partitions(fd: int, size: int) -> list[Part]:
    """The partitions of a raw disk, from its GPT (512- or 4096-byte sectors) or MBR (with logical
    partitions); bounded: at most MAX_PARTITIONS, each inside the image. [] without a table."""
    mbr = _pread(fd, 0, 512)
    if len(mbr) < 512 or mbr[510:512] != b"\x55\xaa":
        return []
    slots = [struct.unpack_from("<4xBxxxII", mbr, 446 + 16 * i) for i in range(4)]
    found: list[Part] = []
    if any(kind == 0xEE for kind, _, _ in slots):
        for sector in (512, 4096):
            hdr = _pread(fd, sector, 92)
            if len(hdr) < 92 or hdr[:8] != b"EFI PART":
                continue
            table_lba, count, entry_size = struct.unpack_from("<QII", hdr, 72)
            count = min(count, MAX_PARTITIONS)
            if not 128 <= entry_size <= 4096:
                return []
            table = _pread(fd, table_lba * sector, count * entry_size) if table_lba * sector < size else b""
            for i in range(len(table) // entry_size):
                entry = table[i * entry_size : (i + 1) * entry_size]
                first, last = struct.unpack_from("<QQ", entry, 32)
                if entry[:16] != bytes(16) and first <= last:
                    found.append(Part(i + 1, first * sector, (last - first + 1) * sector))
            break
    else:
        ebr_base = 0
        for i, (kind, lba, sectors) in enumerate(slots):
            if kind in (0x05, 0x0F, 0x85):
                ebr_base = lba
            elif kind and sectors:
                found.append(Part(i + 1, lba * 512, sectors * 512))
        ebr, number = ebr_base, 5
        visited: set[int] = set()
        for _ in range(MAX_PARTITIONS):  # the chain of logical partitions, each EBR naming the next
            if not ebr or ebr in visited:  # the end, or a chain that loops
                break
            visited.add(ebr)
            block = _pread(fd, ebr * 512, 512)
            if len(block) < 512 or block[510:512] != b"\x55\xaa":
                break
            kind, lba, sectors = struct.unpack_from("<4xBxxxII", block, 446)
            if kind and sectors:
                found.append(Part(number, (ebr + lba) * 512, sectors * 512))
                number += 1
            _, nxt, _ = struct.unpack_from("<4xBxxxII", block, 462)
            ebr = ebr_base + nxt if nxt else 0
    return [p for p in found if p.start < size and p.length > 0][:MAX_PARTITIONS]


def fs_type(fd: int, offset: int) -> str | None:
    """What file system (or volume) starts at ``offset``, by its magic number."""
    if _pread(fd, offset + 1080, 2) == b"\x53\xef":
        return "ext"
    head = _pread(fd, offset, 8)
    if head[:4] == b"XFSB":
        return "xfs"
    if head[:6] == b"LUKS\xba\xbe":
        return "luks"
    if _pread(fd, offset + 512, 8) == b"LABELONE":
        return "lvm"
    if _pread(fd, offset + 0x10040, 8) == b"_BHRfS_M":
        return "btrfs"
    if _pread(fd, offset + 4086, 10) == b"SWAPSPACE2":
        return "swap"
    if _pread(fd, offset + 510, 2) == b"\x55\xaa" and _pread(fd, offset + 82, 5) == b"FAT32":
        return "vfat"
    return None


#: Formats recognised only to be refused with advice (qemu-img converts them).
_OTHER_FORMATS = ((0, b"KDMV", "VMDK"), (0, b"vhdxfile", "VHDX"), (0x40, b"\x7f\x10\xda\xbe", "VDI"),
                  (0, b"QEVM", "QED"))


def _needs_recovery(fd: int, offset: int) -> bool:
    """An ext3/4 journal with changes not yet written to the file system (the host did not shut
    down cleanly): debugfs reads the file system as it is, without them."""
    data = _pread(fd, offset + 1024 + 0x60, 4)
    return len(data) == 4 and bool(struct.unpack("<I", data)[0] & 0x4)


def _qcow2_check(fd: int, shown: str, qemu_img: str) -> int:
    """The virtual size of the qcow2 image on ``fd``; ImageError when it is not one, or when it
    would make qemu read another file (a backing file, an external data file): that file would be
    on the auditing machine. qemu-img is told the format (no probing)."""
    src = f"/proc/self/fd/{fd}"
    try:
        info = run_tool([qemu_img, "info", "-f", "qcow2", "--output=json", src], cap=1 << 20, pass_fds=(fd,))
    except TimeoutError as exc:
        raise ImageError(f"--image {shown}: {exc}") from None
    try:
        meta = json.loads(info.stdout) if info.returncode == 0 and not info.truncated else None
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        why = _problems(info.stderr) or "qemu-img info failed"
        raise ImageError(f"--image {shown}: not a readable qcow2 image ({why})")
    data_file = (meta.get("format-specific") or {}).get("data", {}).get("data-file")
    if meta.get("backing-filename") or meta.get("full-backing-filename") or data_file:
        other = meta.get("backing-filename") or data_file
        raise ImageError(f"--image {shown}: the image reads another file ({other}); "
                         "refused: give a self-contained image (qemu-img convert -O qcow2 IMAGE FLAT.qcow2)")
    virtual = meta.get("virtual-size")
    if not isinstance(virtual, int) or virtual <= 0:
        raise ImageError(f"--image {shown}: qemu-img gave no size for it")
    return virtual


def _qcow2_to_raw(fd: int, shown: str) -> int:
    """The qcow2 image on ``fd`` as a raw copy: a private, already unlinked file, open read-only
    (an image that reads another file refused, see _qcow2_check)."""
    qemu_img = find_tool("qemu-img")
    src = f"/proc/self/fd/{fd}"
    virtual = _qcow2_check(fd, shown, qemu_img)
    if virtual > CONVERT_CAP:
        raise ImageError(f"--image {shown}: a disk of {virtual} bytes is larger than the {CONVERT_CAP} byte cap "
                         "of the qcow2 conversion")
    work = tempfile.mkdtemp(prefix="hostaudit-image-")
    try:
        raw = os.path.join(work, "disk.raw")
        try:
            out = run_tool([qemu_img, "convert", "-f", "qcow2", "-O", "raw", src, raw], cap=1 << 16,
                           timeout=CONVERT_TIMEOUT, pass_fds=(fd,))
        except TimeoutError as exc:
            raise ImageError(f"--image {shown}: {exc}") from None
        if out.returncode != 0:
            raise ImageError(f"--image {shown}: qemu-img convert failed: {_problems(out.stderr) or out.returncode}")
        return os.open(raw, os.O_RDONLY | os.O_CLOEXEC)  # stays readable once unlinked below
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _open(path: str, shown: str) -> tuple[int, str]:
    """``path`` opened read-only, and its format: "raw" or "qcow2". ImageError when it is not a
    disk image hostaudit reads (not a file or block device, another format)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        raise ImageError(f"--image {shown}: cannot open: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            raise ImageError(f"--image {shown}: not a disk image file")
        os.set_blocking(fd, True)
        head = _pread(fd, 0, 0x48)
        if head[:4] == b"QFI\xfb":
            return fd, "qcow2"
        for at, magic, fmt in _OTHER_FORMATS:
            if head[at : at + len(magic)] == magic:
                raise ImageError(f"--image {shown}: a {fmt} image; convert it first "
                                 f"(qemu-img convert -O qcow2 {shown} IMAGE.qcow2)")
        return fd, "raw"
    except BaseException:
        os.close(fd)
        raise


def image_format(path: str) -> str:
    """The format of the disk image at ``path``, "raw" or "qcow2", checked as for debugfs (a qcow2
    that reads another file refused): what libguestfs is told, so that qemu never probes it."""
    fd, fmt = _open(path, path)
    try:
        if fmt == "qcow2":
            _qcow2_check(fd, path, find_tool("qemu-img"))
        return fmt
    finally:
        os.close(fd)


def _has_os_release(fs: DebugfsFS) -> bool:
    try:
        return fs.kind("/etc/os-release", follow=False) is not None or fs.kind("/usr/lib/os-release") == "file"
    except FactError:
        return False


def open_image(path: str, *, total_cap: int = TOTAL_READ_CAP) -> DebugfsFS:
    """The root file system of the disk image at ``path`` (raw or qcow2): the first ext2/3/4 file
    system, the whole image or a partition, that holds an os-release. ImageError when there is none."""
    shown = path
    debugfs = find_tool("debugfs")
    fd, fmt = _open(path, shown)
    opened = [fd]
    try:
        if fmt == "qcow2":
            fd = _qcow2_to_raw(fd, shown)
            opened.append(fd)
        st = os.fstat(fd)
        size = st.st_size if stat.S_ISREG(st.st_mode) else os.lseek(fd, 0, os.SEEK_END)
        whole = [Part(0, 0, size)]
        parts = whole if fs_type(fd, 0) == "ext" else partitions(fd, size) or whole
        seen: list[str] = []
        kinds: set[str | None] = set()
        for part in parts:
            kind = fs_type(fd, part.start)
            kinds.add(kind)
            where = "the image" if part.number == 0 else f"partition {part.number}"
            seen.append(f"{where}: {kind or 'unknown'}")
            if kind != "ext":
                continue
            name = shown if part.number == 0 else f"{shown} (partition {part.number})"
            try:
                fs = DebugfsFS(fd, offset=part.start, name=name, total_cap=total_cap, debugfs=debugfs)
            except FactError as exc:
                seen[-1] += f" (unreadable: {exc.problem})"
                continue
            if not _has_os_release(fs):
                seen[-1] += " without os-release"
                continue
            if _needs_recovery(fd, part.start):
                print(f"hostaudit: warning: {name}: the file system's journal holds changes not yet written "
                      "(not shut down cleanly); they are not read", file=sys.stderr)
            for other in opened:
                if other != fd:
                    os.close(other)
            return fs
        found = "; ".join(seen)
        if parts is whole and kinds == {None}:
            found = "no partition table and no file system recognised"
        raise NoExtRoot(f"--image {shown}: no Linux root found (an ext2/3/4 file system with /etc/os-release "
                        f"or /usr/lib/os-release): {found}", found=found, kinds=frozenset(kinds),
                        whole=parts is whole)
    except BaseException:
        for other in opened:
            os.close(other)
        raise


def close_image(fs: FileSource) -> None:
    """Release what ``open_source`` holds: the image's descriptor, or the libguestfs appliance."""
    if isinstance(fs, DebugfsFS):
        with contextlib.suppress(OSError):
            os.close(fs.fd)
    else:
        close = getattr(fs, "close", None)
        if close is not None:
            close()
