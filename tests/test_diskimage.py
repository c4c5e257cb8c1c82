"""``--image``: a raw or qcow2 disk image audited through debugfs, read only, with the image's own
root: the same results as ``--root`` on the tree it was built from, and hostile images refused or
contained. Images are built without mounting (``mkfs.ext4 -d``), partitioned with sfdisk, converted
with qemu-img; a missing tool skips with the install hint (fails under CI=true)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from audit.errors import FactError, UsageError
from audit.host import diskimage, images
from audit.host.diskimage import ImageError, open_image, partitions, run_tool
from tests.conftest import Dir, Link, build_tree
from tests.test_cli import hostaudit
from tests.trees import debian12_tree

SBIN = ("/usr/sbin", "/sbin")
PACKAGES = {"mkfs.ext4": "e2fsprogs", "debugfs": "e2fsprogs", "sfdisk": "fdisk", "qemu-img": "qemu-utils"}


def tool(name: str) -> str:
    """The path of a tool the test needs; skip with the install hint (fail under CI=true) without it."""
    found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(SBIN))
    if found:
        return found
    hint = f"{name} is not installed (apt-get install {PACKAGES[name]}; .ci/install-test-deps installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(hint)
    pytest.skip(hint)


def make_image(tree: Path, out: Path, size: str = "64M") -> Path:
    """A raw ext4 file system image holding ``tree``, made without mounting anything."""
    tool("debugfs")
    subprocess.run([tool("mkfs.ext4"), "-q", "-F", "-d", str(tree), str(out), size], check=True,
                   capture_output=True, timeout=60)
    return out


def partitioned(fs_image: Path, out: Path, label: str) -> Path:
    """A raw disk with a ``label`` (gpt, dos) table whose one partition, at 1 MiB, holds ``fs_image``."""
    size = fs_image.stat().st_size
    with open(out, "wb") as f:
        f.truncate(size + 2 * 1024 * 1024)
    layout = f"label: {label}\nstart=2048, size={size // 512}, type=linux\n" if label == "gpt" else \
        f"label: {label}\nstart=2048, size={size // 512}, type=83\n"
    subprocess.run([tool("sfdisk"), "-q", str(out)], input=layout, text=True, check=True, capture_output=True,
                   timeout=60)
    with open(out, "r+b") as dst, open(fs_image, "rb") as src:
        dst.seek(2048 * 512)
        shutil.copyfileobj(src, dst)
    return out


def qcow2(raw: Path, out: Path) -> Path:
    subprocess.run([tool("qemu-img"), "convert", "-f", "raw", "-O", "qcow2", str(raw), str(out)], check=True,
                   capture_output=True, timeout=120)
    return out


def results(out: subprocess.CompletedProcess) -> dict[str, tuple[str, str, str]]:
    """Each check's status, message and evidence (the root path, which differs, taken out)."""
    assert out.returncode in (0, 1, 3), out.stderr
    doc = json.loads(out.stdout)
    root = doc["target"]["root"]
    return {r["id"]: (r["status"], r["message"], json.dumps(r.get("evidence"), sort_keys=True).replace(root, "ROOT"))
            for r in doc["results"]}


@pytest.fixture(scope="module")
def debian(tmp_path_factory) -> tuple[Path, Path]:
    """A Debian 12 tree and a raw ext4 image of it."""
    base = tmp_path_factory.mktemp("debian")
    tree = build_tree(base / "tree", debian12_tree())
    return tree, make_image(tree, base / "debian.raw")


def digest(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


# ------------------------------------------------------------------------------------------------ parity
def test_image_gives_the_results_of_root(debian):
    tree, raw = debian
    before = digest(raw)
    by_root = results(hostaudit("run", "--root", str(tree), "--format", "json"))
    by_image = hostaudit("run", "--image", str(raw), "--format", "json")
    assert results(by_image) == by_root
    target = json.loads(by_image.stdout)["target"]
    assert target["mode"] == "image" and target["root"] == str(raw)
    assert target["os_id"] == "debian"
    assert digest(raw) == before  # never written


@pytest.mark.parametrize("label", ["gpt", "dos"])
def test_a_partition_of_a_raw_disk(debian, tmp_path, label):
    tree, raw = debian
    disk = partitioned(raw, tmp_path / "disk.raw", label)
    fd = os.open(disk, os.O_RDONLY)
    try:
        assert partitions(fd, disk.stat().st_size)[0][:2] == (1, 1024 * 1024)
    finally:
        os.close(fd)
    out = hostaudit("run", "--image", str(disk), "--format", "json")
    assert results(out) == results(hostaudit("run", "--root", str(tree), "--format", "json"))


def test_qcow2_is_converted_privately_and_gives_the_same_results(debian, tmp_path):
    tree, raw = debian
    disk = qcow2(partitioned(raw, tmp_path / "disk.raw", "gpt"), tmp_path / "disk.qcow2")
    before = digest(disk)
    out = hostaudit("run", "--image", str(disk), "--format", "json", env={"TMPDIR": str(tmp_path)})
    assert results(out) == results(hostaudit("run", "--root", str(tree), "--format", "json"))
    assert digest(disk) == before
    assert not list(tmp_path.glob("hostaudit-image-*"))  # the raw copy is gone


def test_collect_image_captures_what_collect_root_does(debian, tmp_path):
    tree, raw = debian
    by_image = hostaudit("collect", "--image", str(raw), "-o", str(tmp_path / "image.snap"))
    assert by_image.returncode == 0, by_image.stderr
    assert hostaudit("collect", "--root", str(tree), "-o", str(tmp_path / "root.snap")).returncode == 0
    image = json.loads((tmp_path / "image.snap").read_text())
    root = json.loads((tmp_path / "root.snap").read_text())
    assert image["entries"] == root["entries"]
    assert image["source"]["mode"] == "image" and image["source"]["root"] == str(raw)
    # and the snapshot audits like the image
    snap = results(hostaudit("run", "--snapshot", str(tmp_path / "image.snap"), "--format", "json"))
    assert {k: v[0] for k, v in snap.items()} == {k: v[0] for k, v in results(
        hostaudit("run", "--image", str(raw), "--format", "json")).items()}


def test_debugfs_fast_path_is_fast(debian):
    """Measured: 18 debugfs runs of ~6 ms each audit the Debian test image (166 for a real 1.5 GB root)."""
    _, raw = debian
    fs = open_image(str(raw))
    try:
        from audit.engine import run_audit
        from audit.host.core import Host
        from audit.model import TargetMode
        from audit.plugins import make_plugins
        from audit.policy import load_policy

        report = run_audit(make_plugins(entry_points=False), Host(fs, mode=TargetMode.IMAGE, root=str(raw)),
                           load_policy())
        assert report.results and fs.runs < 400
    finally:
        diskimage.close_image(fs)


# ------------------------------------------------------------------------------------------------ hostile images
HOSTILE = {
    "etc/os-release": Link("/usr/lib/os-release"),
    "usr/lib/os-release": "ID=debian\n",
    "etc/passwd": "root:x:0:0:image:/root:/bin/sh\n",
    "etc/to-passwd": Link("/etc/passwd"),
    "etc/to-shadow": Link("/etc/shadow"),  # the image has none: never the auditing machine's
    "etc/up": Link("../../../../../etc/passwd"),
    "loop/a": Link("b"),
    "loop/b": Link("a"),
    "odd/new\nline": "newline\n",
    "odd/" + os.fsdecode(b"bad\xff\xfe"): "latin\n",
    "odd/with space": "space\n",
    "odd/long-link": Link("/" + "d/" * 60 + "x"),  # stored in a block, not the inode
    "d/" * 60 + "x": "deep\n",
    "big/file": b"\0" * (3 * 1024 * 1024),
    "empty": Dir(),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> diskimage.DebugfsFS:
    base = tmp_path_factory.mktemp("hostile")
    tree = build_tree(base / "tree", HOSTILE)
    os.mkfifo(tree / "odd/fifo")
    fs = open_image(str(make_image(tree, base / "hostile.raw")))
    yield fs
    diskimage.close_image(fs)


def test_links_resolve_inside_the_image(hostile):
    assert hostile.read_bytes("/etc/os-release") == b"ID=debian\n"
    assert hostile.read_bytes("/etc/to-passwd") == b"root:x:0:0:image:/root:/bin/sh\n"
    assert hostile.read_bytes("/etc/up") == b"root:x:0:0:image:/root:/bin/sh\n"  # .. stops at the root
    assert hostile.readlink("/etc/to-shadow") == "/etc/shadow"
    assert hostile.kind("/etc/to-shadow") is None
    assert hostile.read_bytes("/odd/long-link") == b"deep\n"
    assert hostile.readlink("/odd/long-link") == "/" + "d/" * 60 + "x"


def test_a_symlink_loop_is_an_error(hostile):
    with pytest.raises(FactError, match="too many levels"):
        hostile.read_bytes("/loop/a")
    assert hostile.kind("/loop/a", follow=False) == "link"


def test_odd_names_are_listed_and_read_exactly(hostile):
    odd = hostile.listdir("/odd")
    assert odd == sorted(["new\nline", os.fsdecode(b"bad\xff\xfe"), "with space", "long-link", "fifo"])
    assert hostile.read_bytes("/odd/new\nline") == b"newline\n"
    assert hostile.read_bytes("/odd/" + os.fsdecode(b"bad\xff\xfe")) == b"latin\n"
    assert hostile.read_bytes("/odd/with space") == b"space\n"
    assert hostile.listdir("/empty") == []


def test_only_regular_files_are_read_and_only_up_to_the_cap(hostile):
    with pytest.raises(FactError, match="not a regular file"):
        hostile.read_bytes("/odd/fifo")
    with pytest.raises(FactError, match="larger than the 1048576 byte cap"):
        hostile.read_bytes("/big/file", limit=1024 * 1024)
    assert len(hostile.read_bytes("/big/file")) == 3 * 1024 * 1024


def test_the_total_read_is_capped(hostile):
    fs = diskimage.DebugfsFS(hostile.fd, name="capped", total_cap=1024 * 1024)
    assert fs.read_bytes("/etc/passwd")
    with pytest.raises(FactError, match="the cap is 1048576"):
        fs.read_bytes("/big/file")


def test_owner_and_kinds(hostile):
    assert hostile.owner("/etc/passwd")[0] == 0o644
    assert hostile.kind("/odd/fifo") == "fifo"
    assert hostile.kind("/etc") == "dir"
    assert hostile.kind("/etc/passwd/x") is None
    assert hostile.owner("/nothing") is None


# ------------------------------------------------------------------------------------------------ errors: exit 2
def test_random_bytes_are_no_image(tmp_path):
    tool("debugfs")
    junk = tmp_path / "junk.img"
    junk.write_bytes(os.urandom(4 * 1024 * 1024))
    out = hostaudit("run", "--image", str(junk))
    assert out.returncode == 2
    assert "no Linux root found" in out.stderr and "Traceback" not in out.stderr


def test_a_truncated_file_system_is_an_error_not_a_crash(debian, tmp_path):
    _, raw = debian
    cut = tmp_path / "cut.raw"
    cut.write_bytes(raw.read_bytes()[: 512 * 1024])
    out = hostaudit("run", "--image", str(cut), "--format", "json")
    assert out.returncode in (2, 3) and "Traceback" not in out.stderr


def test_an_unreplayed_journal_is_said(debian, tmp_path):
    tree, raw = debian
    dirty = tmp_path / "dirty.raw"
    shutil.copyfile(raw, dirty)
    subprocess.run([tool("debugfs"), "-w", "-R", "feature needs_recovery", str(dirty)], check=True,
                   capture_output=True, timeout=60)  # the test's own copy: hostaudit never writes
    out = hostaudit("run", "--image", str(dirty), "--format", "json")
    assert "journal holds changes not yet written" in out.stderr
    assert results(out) == results(hostaudit("run", "--root", str(tree), "--format", "json"))


def test_an_image_without_os_release_has_no_linux_root(make_root, tmp_path):
    raw = make_image(make_root({"etc/hostname": "x\n"}), tmp_path / "data.raw", "8M")
    out = hostaudit("run", "--image", str(raw))
    assert out.returncode == 2
    assert "no Linux root found" in out.stderr and "the image: ext without os-release" in out.stderr


def test_a_missing_image_and_other_formats(tmp_path):
    tool("debugfs")
    out = hostaudit("run", "--image", str(tmp_path / "absent.qcow2"))
    assert out.returncode == 2 and "cannot open" in out.stderr
    vmdk = tmp_path / "disk.vmdk"
    vmdk.write_bytes(b"KDMV" + bytes(4096))
    out = hostaudit("run", "--image", str(vmdk))
    assert out.returncode == 2 and "a VMDK image; convert it first" in out.stderr


def test_a_qcow2_with_a_backing_file_is_refused(debian, tmp_path):
    _, raw = debian
    overlay = tmp_path / "overlay.qcow2"
    subprocess.run([tool("qemu-img"), "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(raw), str(overlay)],
                   check=True, capture_output=True, timeout=60)
    out = hostaudit("run", "--image", str(overlay))
    assert out.returncode == 2 and "reads another file" in out.stderr


def test_a_missing_tool_names_its_package(monkeypatch, tmp_path):
    monkeypatch.setattr(diskimage.shutil, "which", lambda *a, **k: None)
    with pytest.raises(ImageError, match=r"apt-get install e2fsprogs"):
        open_image(str(tmp_path / "any.raw"))
    assert issubclass(ImageError, UsageError)  # exit 2


def test_image_excludes_root_and_snapshot(tmp_path):
    out = hostaudit("run", "--image", "x.raw", "--root", str(tmp_path))
    assert out.returncode == 2 and "not allowed with" in out.stderr
    out = hostaudit("collect", "--script", "--image", "x.raw")
    assert out.returncode == 2


# ------------------------------------------------------------------------------------------------ bounds
def test_a_tool_is_stopped_at_its_output_cap_and_its_timeout():
    out = run_tool(["/bin/sh", "-c", "yes"], cap=10_000)
    assert out.truncated and len(out.stdout) == 10_001
    with pytest.raises(TimeoutError, match=r"longer than 0\.2 s"):
        run_tool(["/bin/sh", "-c", "sleep 5"], cap=100, timeout=0.2)


def _mbr(entries: list[tuple[int, int, int]]) -> bytes:
    block = bytearray(512)
    for i, (kind, lba, sectors) in enumerate(entries):
        struct.pack_into("<4xBxxxII", block, 446 + 16 * i, kind, lba, sectors)
    block[510:512] = b"\x55\xaa"
    return bytes(block)


def test_mbr_with_logical_partitions(tmp_path):
    disk = bytearray(64 * 1024 * 1024)
    disk[:512] = _mbr([(0x83, 2048, 4096), (0x05, 8192, 65536)])
    disk[8192 * 512 : 8193 * 512] = _mbr([(0x83, 2048, 1024), (0x05, 4096, 4096)])  # logical 5, next EBR
    disk[12288 * 512 : 12289 * 512] = _mbr([(0x83, 2048, 1024)])  # logical 6
    path = tmp_path / "mbr.raw"
    path.write_bytes(bytes(disk))
    fd = os.open(path, os.O_RDONLY)
    try:
        assert partitions(fd, len(disk)) == [(1, 2048 * 512, 4096 * 512), (5, 10240 * 512, 1024 * 512),
                                             (6, 14336 * 512, 1024 * 512)]
    finally:
        os.close(fd)


def test_an_ebr_chain_that_loops_ends(tmp_path):
    disk = bytearray(8 * 1024 * 1024)
    disk[:512] = _mbr([(0x05, 2048, 8192)])
    disk[2048 * 512 : 2049 * 512] = _mbr([(0x83, 64, 64), (0x05, 1, 64)])  # logical 5; next EBR at 2049
    disk[2049 * 512 : 2050 * 512] = _mbr([(0x83, 64, 64), (0x05, 1, 64)])  # logical 6; next: itself
    path = tmp_path / "loop.raw"
    path.write_bytes(bytes(disk))
    fd = os.open(path, os.O_RDONLY)
    try:
        assert [p.number for p in partitions(fd, len(disk))] == [5, 6]
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------------------ backend choice
def _disk_with(tmp_path, magic_at: int, magic: bytes, kind: int = 0x83) -> Path:
    """A raw disk whose one MBR partition (at 1 MiB) starts with ``magic`` at ``magic_at``."""
    disk = bytearray(8 * 1024 * 1024)
    disk[:512] = _mbr([(kind, 2048, 8192)])
    disk[2048 * 512 + magic_at : 2048 * 512 + magic_at + len(magic)] = magic
    path = tmp_path / "disk.raw"
    path.write_bytes(bytes(disk))
    return path


@pytest.fixture
def guestfs_calls(monkeypatch):
    """open_guestfs recorded instead of started (no appliance): each call's path and why."""
    from audit.host import libguestfs

    calls: list[tuple[str, str]] = []

    def fake(path, *, total_cap=0, why=""):
        calls.append((path, why))
        return "libguestfs"

    monkeypatch.setattr(libguestfs, "open_guestfs", fake)
    return calls


def test_auto_reads_lvm_through_libguestfs_and_says_why(tmp_path, guestfs_calls):
    tool("debugfs")
    disk = _disk_with(tmp_path, 512, b"LABELONE", 0x8E)
    assert images.open_source(str(disk)) == "libguestfs"
    assert guestfs_calls == [(str(disk), "no ext2/3/4 root for debugfs (partition 1: lvm)")]


def test_a_partition_not_recognised_goes_to_libguestfs_random_bytes_do_not(tmp_path, guestfs_calls):
    tool("debugfs")
    disk = _disk_with(tmp_path, 0, b"\x00")
    assert images.open_source(str(disk)) == "libguestfs"
    junk = tmp_path / "junk.img"
    junk.write_bytes(os.urandom(1024 * 1024))
    with pytest.raises(ImageError, match=r"no partition table and no file system recognised \(libguestfs's "
                                         r"inspection can look too: --image-backend libguestfs\)"):
        images.open_source(str(junk))
    assert len(guestfs_calls) == 1


def test_debugfs_backend_names_libguestfs_for_lvm_and_luks_is_said(tmp_path, guestfs_calls):
    tool("debugfs")
    disk = _disk_with(tmp_path, 512, b"LABELONE", 0x8E)
    with pytest.raises(ImageError, match=r"partition 1: lvm \(LVM, XFS and btrfs are read through libguestfs: "
                                         r"--image-backend auto\)"):
        images.open_source(str(disk), backend="debugfs")
    luks = _disk_with(tmp_path, 0, b"LUKS\xba\xbe")
    with pytest.raises(ImageError, match=r"partition 1: luks \(LUKS: encrypted, not read\)"):
        images.open_source(str(luks))
    assert guestfs_calls == []


def test_without_debugfs_auto_uses_libguestfs(tmp_path, guestfs_calls, monkeypatch):
    from audit.host import libguestfs

    def no_debugfs(name):
        raise ImageError(f"--image needs {name}, which is not installed")

    monkeypatch.setattr(images, "find_tool", no_debugfs)
    monkeypatch.setattr(libguestfs, "find_guestfish", lambda: "/usr/bin/guestfish")
    assert images.open_source(str(tmp_path / "any.raw")) == "libguestfs"
    assert guestfs_calls == [(str(tmp_path / "any.raw"), "debugfs (e2fsprogs) is not installed")]
    monkeypatch.setattr(libguestfs, "find_guestfish", lambda: None)
    with pytest.raises(ImageError, match="debugfs, which is not installed"):
        images.open_source(str(tmp_path / "any.raw"))


def test_an_unknown_backend_is_a_usage_error():
    with pytest.raises(UsageError, match="not one of auto, debugfs, libguestfs"):
        images.open_source("x.raw", backend="mount")
    out = hostaudit("run", "--image", "x.raw", "--image-backend", "mount")
    assert out.returncode == 2 and "invalid choice" in out.stderr
