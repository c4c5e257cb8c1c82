"""Auditing a disk image through libguestfs, for what debugfs cannot read (a root on LVM, XFS or
btrfs, or spread over several partitions): a ``FileSource`` over one ``guestfish --ro`` session.

One appliance (a small VM) is started per image. Its inspection finds the Linux root and the file
systems the root's fstab mounts, which are mounted read-only; the image itself is added read-only,
so what the appliance writes (a journal replay) goes to a throw-away overlay. Nothing from the
image is executed: guestfish runs its own kernel and tools. Then, as for debugfs, every path is
resolved here, component by component, with hostaudit's own rules (``walk_inside``): guestfish is
only asked about physical paths whose every parent was seen to be a real directory, and never
follows a link itself, so an absolute link is re-rooted in the image and never reaches the
appliance's own files. Names go to guestfish hex-escaped inside double quotes (a name from the
image never becomes a command) and every answer ends with a random marker, so no file content or
name can end it early.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time

from audit.errors import FactError, FactUnavailable
from audit.host.diskimage import (
    _SBIN,
    LINK_CAP,
    LIST_CAP,
    STAT_CAP,
    TOTAL_READ_CAP,
    ImageError,
    Node,
    NodeLookups,
    image_format,
)
from audit.host.fs import MAX_READ, walk_inside
from audit.parsers.paths import normalize
from audit.record import Record

#: Starting the appliance, inspecting the image and mounting its file systems. Under TCG on a 2-core
#: VM this took 20 s to 2 min (measured, depending on the load); a KVM host that cannot run guests
#: hangs for good, which is why the settings below pick TCG there.
LAUNCH_TIMEOUT = 300.0
#: One command once the file systems are mounted: a lookup takes milliseconds, a 2 MiB read less
#: than a second.
COMMAND_TIMEOUT = 60.0
#: Bytes a single ``pread`` is asked for (the protocol's messages are at most 4 MiB).
CHUNK = 2 * 1024 * 1024
MAX_ROOTS = 16
MAX_MOUNTS = 64
#: What guestfish writes to stderr that we keep (the end of it).
ERR_CAP = 64 * 1024
INSTALL_HINT = "Debian/Ubuntu: apt-get install libguestfs-tools"

#: Bytes passed to guestfish as they are; any other is written \xHH.
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._+-:@,=")
#: A mount point from the image's fstab that is mounted: plain names only.
_MOUNTPOINT = re.compile(r"(/[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*)+")
_STAT_LINE = re.compile(rb"^(st_[a-z_0-9]+): (-?\d+)$", re.M)
#: An error guestfish reports (its debug and trace lines, when LIBGUESTFS_DEBUG asks, are not).
_ERROR_LINE = re.compile(r"^(?:\*stdin\*:\d+: )?(?:libguestfs: error: |guestfish: )(.*)$", re.M)


class GuestfishGone(Exception):
    """guestfish ended (or was stopped) while a command was running."""


def quote(arg: str) -> str:
    """``arg`` as one double-quoted guestfish word, every byte outside a small safe set written as
    ``\\xHH``: no quote, space, newline, backslash or non-UTF-8 byte of a name from the image is
    ever read by guestfish as anything but that byte."""
    raw = os.fsencode(arg)
    if b"\0" in raw:
        raise ValueError("a NUL byte cannot be passed to guestfish")
    return '"' + "".join(chr(b) if b in _SAFE else f"\\x{b:02x}" for b in raw) + '"'


def _shown(text: str, limit: int = 80) -> str:
    """Text from the image (a product name, a device) fit for one line of a message."""
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def problems(stderr: str) -> str:
    """The errors guestfish reported, on one line, without their ``*stdin*:N: libguestfs: error:``
    ("": none)."""
    found = [m.group(1).strip() for m in _ERROR_LINE.finditer(stderr)]
    return "; ".join(_shown(line, 300) for line in found if line)[:400]


def tail(stderr: str, lines: int = 3) -> str:
    """The last lines guestfish wrote, on one line: why it ended."""
    kept = [line.strip() for line in stderr.splitlines() if line.strip()][-lines:]
    return "; ".join(_shown(line, 200) for line in kept) or "no message"


def session_members(sid: int) -> list[int]:
    """The processes of the session ``sid`` that still run (zombies left out)."""
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return []
    found = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 3 and fields[3] == str(sid).encode() and fields[0] not in (b"Z", b"X"):
            found.append(pid)
    return found


def _kill_session(sid: int, *, wait: float = 5.0) -> None:
    """Kill every process of the session ``sid`` (guestfish, qemu, libguestfs's recovery process),
    whatever process group each is in, and wait up to ``wait`` seconds for them to be gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(sid, signal.SIGKILL)
    deadline = time.monotonic() + wait
    while True:
        members = session_members(sid)
        for pid in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if not members or time.monotonic() > deadline:
            return
        time.sleep(0.05)


class Reply(Record):
    out: bytes  # stdout before the marker (empty when it went past its cap)
    err: str  # what guestfish wrote to stderr meanwhile
    overflow: bool  # stdout went past its cap: not kept


class Session:
    """One guestfish process, driven over pipes one command at a time: the command (prefixed with
    ``-``, so an error does not end guestfish) then ``echo MARKER``; its answer is what stdout holds
    before the marker, its error what stderr received meanwhile (guestfish flushes both after each
    command). Bounded: time per command, stdout and stderr bytes kept."""

    def __init__(self, argv: list[str], env: dict[str, str], *, cwd: str) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, cwd=cwd, start_new_session=True)
        assert self.proc.stdin is not None and self.proc.stdout is not None and self.proc.stderr is not None
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)
        self._sel.register(self.proc.stderr, selectors.EVENT_READ)
        self._lock = threading.Lock()
        self.commands = 0
        self.alive = True
        self._reaped = False

    def call(self, command: str, *args: str, timeout: float = COMMAND_TIMEOUT, cap: int = STAT_CAP) -> Reply:
        """Run one guestfish command; TimeoutError (guestfish is then stopped) or GuestfishGone."""
        marker = secrets.token_hex(16)
        end = f"{marker}\n".encode()
        line = f"-{command}{''.join(' ' + quote(a) for a in args)}\necho {marker}\n".encode()
        with self._lock:
            if not self.alive:
                raise GuestfishGone("guestfish was stopped before")
            stdin, stdout = self.proc.stdin, self.proc.stdout
            assert stdin is not None and stdout is not None
            self.commands += 1
            try:
                stdin.write(line)
                stdin.flush()
            except OSError:
                self.kill()
                raise GuestfishGone(f"guestfish ended (exit {self.proc.poll()})") from None
            out, err = bytearray(), bytearray()
            overflow = False
            deadline = time.monotonic() + timeout
            while not out.endswith(end):
                left = deadline - time.monotonic()
                if left <= 0:
                    self.kill()
                    raise TimeoutError(f"guestfish {command} took longer than {timeout:g} s; stopped")
                for key, _ in self._sel.select(left):
                    chunk = os.read(key.fd, 1 << 16)
                    if key.fileobj is stdout:
                        if not chunk:
                            self.kill()
                            raise GuestfishGone(f"guestfish ended: {tail(err.decode('utf-8', 'replace'))}")
                        out += chunk
                        if len(out) > cap + len(end):
                            overflow = True  # not kept; read on to the marker, which may be split
                            del out[: len(out) - len(end)]
                    elif chunk:
                        err += chunk
                        del err[:-ERR_CAP]
                    else:
                        self._sel.unregister(key.fileobj)
            # guestfish wrote its error before the marker: it is in the pipe already
            while any(key.fileobj is self.proc.stderr for key, _ in self._sel.select(0)):
                chunk = os.read(self.proc.stderr.fileno(), 1 << 16)  # type: ignore[union-attr]
                if not chunk:
                    self._sel.unregister(self.proc.stderr)  # type: ignore[arg-type]
                    break
                err += chunk
                del err[:-ERR_CAP]
            return Reply(b"" if overflow else bytes(out[: -len(end)]), err.decode("utf-8", "replace"), overflow)

    def kill(self) -> None:
        """Stop guestfish and its appliance now."""
        self.alive = False
        if self._reaped:
            return  # its process id may belong to another process by now
        _kill_session(self.proc.pid)  # guestfish is alive or a zombie: its id is not reused yet
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
            self._reaped = True

    def _exited(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for guestfish to end, without reaping it (see kill)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None:
                    return
            except ChildProcessError:
                return
            time.sleep(0.05)

    def close(self) -> None:
        """End the session: guestfish shuts its appliance down; killed if it takes over 30 s."""
        if self._reaped:
            return
        if self.alive:
            self.alive = False
            try:
                self.proc.stdin.write(b"quit\n")  # type: ignore[union-attr]
                self.proc.stdin.close()  # type: ignore[union-attr]
            except (OSError, ValueError):
                pass
            self._exited(30)
        self.kill()  # what may be left of the session (nothing, normally), then reaped
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError):
                pipe.close()  # type: ignore[union-attr]
        self._sel.close()


# ------------------------------------------------------------------------------------------------
# The file system: the mounted image, one lookup at a time
# ------------------------------------------------------------------------------------------------
class GuestfishFS(NodeLookups):
    """The file systems of a disk image's Linux root as libguestfs mounted them (read-only), read
    through ``session``. Same rules and caps as ``DebugfsFS``."""

    def __init__(self, session: Session, *, name: str, total_cap: int = TOTAL_READ_CAP,
                 launch_seconds: float = 0.0) -> None:
        self.session = session
        self.name = name
        self.total_cap = total_cap
        self.read_total = 0
        self.launch_seconds = launch_seconds
        self._nodes: dict[str, Node | None] = {}
        self._links: dict[str, str] = {}
        self._dirs: dict[str, list[str]] = {}
        root = self._lstat("/", "/")
        if root is None or not stat.S_ISDIR(root.mode):
            raise FactError("/", "the root directory of the image cannot be read")

    @property
    def runs(self) -> int:
        return self.session.commands

    def describe(self) -> str:
        return self.name

    def close(self) -> None:
        self.session.close()

    # -- guestfish ----------------------------------------------------------------------------------
    def _call(self, shown: str, command: str, *args: str, cap: int) -> Reply:
        try:
            return self.session.call(command, *args, cap=cap)
        except (TimeoutError, GuestfishGone) as exc:
            raise FactError(shown, f"reading the image: {exc}") from None

    def _lstat(self, phys: str, shown: str) -> Node | None:
        if phys in self._nodes:
            return self._nodes[phys]
        reply = self._call(shown, "lstatns", phys, cap=STAT_CAP)
        fields = {m.group(1).decode(): int(m.group(2)) for m in _STAT_LINE.finditer(reply.out)}
        if "st_mode" not in fields:
            if "No such file or directory" in reply.err or "Not a directory" in reply.err:
                self._nodes[phys] = None
                return None
            raise FactError(shown, f"guestfish: {problems(reply.err) or 'lstat gave no answer'}")
        node = Node(ino=fields.get("st_ino", 0), mode=fields["st_mode"], uid=fields.get("st_uid", 0) & 0xFFFFFFFF,
                    gid=fields.get("st_gid", 0) & 0xFFFFFFFF, size=fields.get("st_size", 0))
        self._nodes[phys] = node
        return node

    def _target(self, phys: str, node: Node, shown: str) -> str:
        found = self._links.get(phys)
        if found is not None:
            return found
        if node.size > LINK_CAP:
            raise FactError(shown, f"symbolic link target of {node.size} bytes; not read")
        reply = self._call(shown, "readlink", phys, cap=LINK_CAP + 1)
        raw = reply.out
        if reply.overflow or not raw.endswith(b"\n") or b"\0" in raw or problems(reply.err):
            raise FactError(shown, f"symbolic link target not readable: {problems(reply.err) or 'no answer'}")
        target = os.fsdecode(raw[:-1])
        self._links[phys] = target
        return target

    # -- resolution ----------------------------------------------------------------------------------
    def _resolve(self, path: str, *, follow_last: bool) -> tuple[str, Node]:
        shown = normalize(path)

        def step(parent: str, name: str, more: bool) -> str | None:
            pnode = self._nodes[parent]
            if pnode is None or not stat.S_ISDIR(pnode.mode):
                raise FactUnavailable(f"{shown} does not exist (a parent is not a directory)", source=shown)
            child = f"{parent.rstrip('/')}/{name}"
            node = self._lstat(child, shown)
            if node is None:
                raise FactUnavailable(f"{shown} does not exist", source=shown)
            return self._target(child, node, shown) if stat.S_ISLNK(node.mode) else None

        inside = walk_inside(path, step, follow_last=follow_last)
        node = self._nodes[inside]
        assert node is not None
        return inside, node

    # -- FileSource -----------------------------------------------------------------------------------
    def read_bytes(self, path: str, *, limit: int = MAX_READ) -> bytes:
        shown = normalize(path)
        phys, node = self._file_to_read(path, shown, limit)
        data = bytearray()
        while len(data) < node.size:
            count = min(CHUNK, node.size - len(data))
            reply = self._call(shown, "pread", phys, str(count), str(len(data)), cap=count)
            if reply.overflow or problems(reply.err) or not reply.out:
                raise FactError(shown, f"read failed: {problems(reply.err) or 'guestfish gave no data'}")
            data += reply.out
        if len(data) != node.size:
            raise FactError(shown, f"read failed: guestfish gave {len(data)} of its {node.size} bytes")
        self.read_total += len(data)
        return bytes(data)

    def listdir(self, path: str) -> list[str]:
        shown = normalize(path)
        phys, node = self._resolve(path, follow_last=True)
        if not stat.S_ISDIR(node.mode):
            raise FactError(shown, "is not a directory")
        found = self._dirs.get(phys)
        if found is None:
            reply = self._call(shown, "ls0", phys, "-", cap=LIST_CAP)
            if reply.overflow:
                raise FactError(shown, f"the listing is longer than {LIST_CAP} bytes; not read")
            if problems(reply.err):
                raise FactError(shown, f"guestfish: {problems(reply.err)}")
            names = {os.fsdecode(n) for n in reply.out.split(b"\0") if n not in (b"", b".", b"..")}
            found = self._dirs[phys] = sorted(names)
        return list(found)

    def _link(self, found: tuple[str, Node], shown: str) -> str:
        return self._target(found[0], found[1], shown)


# ------------------------------------------------------------------------------------------------
# The appliance: where it runs, inspection, the root and its mounts
# ------------------------------------------------------------------------------------------------
def no_kvm_reason(cpuinfo: str = "/proc/cpuinfo", kvm: str = "/dev/kvm") -> str | None:
    """Why this machine cannot run the appliance under KVM (None: it can). A VM without nested
    virtualization may still have /dev/kvm (a paravirtual KVM); qemu then hangs, so the CPU flags
    are what counts on x86."""
    if not os.path.exists(kvm):
        return f"no {kvm}"
    if not os.access(kvm, os.R_OK | os.W_OK):
        return f"{kvm} is not usable by this user"
    if os.uname().machine in ("x86_64", "i386", "i686", "amd64"):
        try:
            with open(cpuinfo, "rb") as f:
                text = f.read(4 * 1024 * 1024).decode("ascii", "replace")
        except OSError:
            return None
        m = re.search(r"^flags\s*:(.*)$", text, re.M)
        if m is not None and not {"vmx", "svm"} & set(m.group(1).split()):
            return "no vmx/svm CPU flag: no hardware virtualization here"
    return None


def appliance_env() -> tuple[dict[str, str], str | None]:
    """The environment guestfish runs with, and why it runs its appliance under TCG (None: KVM).
    The caller's LIBGUESTFS_*, SUPERMIN_* and TMPDIR are kept (its cache, its debug switches);
    LIBGUESTFS_BACKEND defaults to direct (libvirt may not run here)."""
    env = {k: v for k, v in os.environ.items()
           if k.startswith(("LIBGUESTFS_", "SUPERMIN_")) or k in ("TMPDIR", "HOME")}
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    env["PATH"] = os.pathsep.join(dirs + [d for d in _SBIN if d not in dirs])
    env["LC_ALL"] = "C"
    env.setdefault("LIBGUESTFS_BACKEND", "direct")
    why = no_kvm_reason()
    settings = env.get("LIBGUESTFS_BACKEND_SETTINGS")
    if settings is not None:  # the caller's choice
        return env, ("LIBGUESTFS_BACKEND_SETTINGS says so" if "force_tcg" in settings else None)
    if why:
        env["LIBGUESTFS_BACKEND_SETTINGS"] = "force_tcg"
    return env, why


class Root(Record):
    device: str
    type: str
    distro: str
    product: str
    mountpoints: tuple[tuple[str, str], ...]  # (mount point, device), as inspection read the fstab
    os_release: bool | None = None  # looked at only when several Linux roots compete

    def label(self) -> str:
        what = self.product if self.product not in ("", "unknown") else f"{self.type} {self.distro}"
        return f"{_shown(self.device)} ({_shown(what)})"


def choose_root(roots: list[Root], shown: str) -> Root:
    """The Linux root to audit: the only one, else the only one with an os-release; ImageError
    naming what inspection found otherwise."""
    linux = [r for r in roots if r.type == "linux"]
    if not linux:
        found = ", ".join(r.label() for r in roots) or "no operating system on any file system"
        raise ImageError(f"--image {shown}: no Linux root found by libguestfs's inspection ({found})")
    if len(linux) == 1:
        return linux[0]
    marked = [r for r in linux if r.os_release]
    if len(marked) == 1:
        others = ", ".join(r.label() for r in linux if r is not marked[0])
        print(f"hostaudit: note: {shown}: several Linux roots; auditing {marked[0].label()}, the only one with an "
              f"os-release (not {others})", file=sys.stderr)
        return marked[0]
    raise ImageError(f"--image {shown}: several Linux roots ({', '.join(r.label() for r in linux)}); "
                     "hostaudit audits one root per image: give an image with one")


def _lines(reply: Reply) -> list[str]:
    return [line for line in os.fsdecode(reply.out).split("\n") if line]


def _one(session: Session, command: str, arg: str, timeout: float) -> str:
    reply = session.call(command, arg, timeout=timeout)
    lines = _lines(reply)
    return lines[0] if len(lines) == 1 else ""


def _mountpoints(reply: Reply) -> tuple[tuple[str, str], ...]:
    found = []
    for line in _lines(reply):
        mp, sep, dev = line.partition(": ")
        if sep and mp and dev:
            found.append((mp, dev))
    return tuple(found[:MAX_MOUNTS])


def _has_os_release(session: Session, device: str, timeout: float) -> bool:
    if problems(session.call("mount-ro", device, "/", timeout=timeout).err):
        return False
    try:
        return any(b"st_mode: " in session.call("lstatns", p, timeout=timeout).out
                   for p in ("/etc/os-release", "/usr/lib/os-release"))
    finally:
        session.call("umount-all", timeout=timeout)


def inspect(session: Session, deadline: float) -> list[Root]:
    """What libguestfs's inspection finds in the image: each root, its OS and its mounts."""
    def left() -> float:
        return max(0.1, deadline - time.monotonic())

    reply = session.call("inspect-os", timeout=left(), cap=1 << 20)
    if problems(reply.err) and not reply.out:
        raise ImageError(f"libguestfs's inspection failed: {problems(reply.err)}")
    roots = []
    for device in _lines(reply)[:MAX_ROOTS]:
        mounts = session.call("inspect-get-mountpoints", device, timeout=left(), cap=1 << 20)
        roots.append(Root(device=device, type=_one(session, "inspect-get-type", device, left()),
                          distro=_one(session, "inspect-get-distro", device, left()),
                          product=_one(session, "inspect-get-product-name", device, left()),
                          mountpoints=_mountpoints(mounts)))
    linux = [r for r in roots if r.type == "linux"]
    if len(linux) > 1:
        roots = [r._replace(os_release=_has_os_release(session, r.device, left())) if r.type == "linux" else r
                 for r in roots]
    return roots


def _is_real_dir(session: Session, path: str, timeout: float) -> bool:
    """Whether every component of ``path`` is a directory, not a link, in what is mounted: a mount
    point behind a link would otherwise be resolved in the appliance's own tree."""
    parts = [p for p in path.split("/") if p]
    for i in range(1, len(parts) + 1):
        out = session.call("lstatns", "/" + "/".join(parts[:i]), timeout=timeout).out
        m = re.search(rb"^st_mode: (\d+)$", out, re.M)
        if m is None or not stat.S_ISDIR(int(m.group(1))):
            return False
    return True


def mount_root(session: Session, root: Root, shown: str, deadline: float) -> list[str]:
    """Mount ``root`` on / and its fstab's file systems below it, read-only, parents first; the
    warnings for those left out (the root itself failing is an ImageError)."""
    def left() -> float:
        return max(0.1, deadline - time.monotonic())

    mounts = dict(root.mountpoints)
    mounts["/"] = mounts.get("/", root.device)
    warnings = []
    for mp in sorted(mounts, key=lambda m: (len([p for p in m.split("/") if p]), m)):
        dev = mounts[mp]
        if mp != "/":
            if not _MOUNTPOINT.fullmatch(mp) or any(p in (".", "..") for p in mp.split("/")):
                warnings.append(f"the mount point {_shown(mp)!r} from its fstab is not a plain path; not mounted")
                continue
            if not _is_real_dir(session, mp, left()):
                warnings.append(f"{_shown(mp)} is not a directory of the root file system; {_shown(dev)} not mounted")
                continue
        reply = session.call("mount-ro", dev, mp, timeout=left())
        problem = problems(reply.err)
        if problem and mp == "/":
            raise ImageError(f"--image {shown}: its root {_shown(dev)} cannot be mounted: {problem}")
        if problem:
            warnings.append(f"{_shown(dev)} cannot be mounted on {_shown(mp)} ({problem}): what is under "
                            f"{_shown(mp)} is read from the file system below it")
    return warnings


def find_guestfish() -> str | None:
    return shutil.which("guestfish")


def open_guestfs(path: str, *, total_cap: int = TOTAL_READ_CAP, launch_timeout: float = LAUNCH_TIMEOUT,
                 why: str = "") -> GuestfishFS:
    """The Linux root of the disk image at ``path`` (raw or qcow2) as libguestfs's inspection finds
    it, its file systems mounted read-only in one appliance. ImageError when guestfish is missing,
    the appliance does not start (within ``launch_timeout`` seconds) or there is no single Linux
    root. ``why``: what the caller found that needs libguestfs, for the messages."""
    shown = path
    because = f"{why}: " if why else ""
    guestfish = find_guestfish()
    if guestfish is None:
        raise ImageError(f"--image {shown}: {because}reading it needs libguestfs, and guestfish is not installed "
                         f"({INSTALL_HINT})")
    fmt = image_format(path)
    env, tcg = appliance_env()
    under = f"under TCG emulation ({tcg})" if tcg else "under KVM"
    print(f"hostaudit: {shown}: {because}reading it through libguestfs: starting its appliance {under}, "
          f"stopped after {launch_timeout:g} s", file=sys.stderr)
    work = tempfile.mkdtemp(prefix="hostaudit-guestfs-")
    try:
        disk = os.path.join(work, "disk")  # a plain name: the image's own may hold ',', ':' or '://'
        os.symlink(os.path.abspath(path), disk)
        started = time.monotonic()
        deadline = started + launch_timeout
        session = Session([guestfish, "--ro", f"--format={fmt}", "-a", disk], env, cwd=work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    try:
        try:
            reply = session.call("run", timeout=launch_timeout)
        finally:
            shutil.rmtree(work, ignore_errors=True)  # qemu has the image open; nothing is left behind
        if problems(reply.err):
            raise ImageError(f"--image {shown}: libguestfs could not start its appliance: {problems(reply.err)} "
                             "(libguestfs-test-tool says why)")
        try:
            root = choose_root(inspect(session, deadline), shown)
        except ImageError as exc:
            if str(exc).startswith("--image"):
                raise
            raise ImageError(f"--image {shown}: {exc}") from None
        for warning in mount_root(session, root, shown, deadline):
            print(f"hostaudit: warning: {shown}: {warning}", file=sys.stderr)
        launch = time.monotonic() - started
        fs = GuestfishFS(session, name=f"{shown} ({_shown(root.device)}, through libguestfs)", total_cap=total_cap,
                         launch_seconds=launch)
    except TimeoutError:
        session.kill()
        raise ImageError(f"--image {shown}: the libguestfs appliance did not start and mount the image within "
                         f"{launch_timeout:g} s ({under}); stopped (guestfish and qemu killed)") from None
    except GuestfishGone as exc:
        session.close()
        raise ImageError(f"--image {shown}: libguestfs: {exc}") from None
    except FactError as exc:
        session.close()
        raise ImageError(f"--image {shown}: {exc}") from None
    except BaseException:
        session.close()
        raise
    atexit.register(session.close)  # a Host keeps it open for the audit; ended with the process
    return fs
