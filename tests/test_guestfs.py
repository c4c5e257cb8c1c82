"""``--image`` through libguestfs: a root on LVM and XFS, with /boot on its own ext4 partition,
audited and collected like ``--root`` on the tree it was built from (hostile names and links
included); an image without a Linux root; a missing guestfish; a launch stopped at its timeout.

The image is built by guestfish itself (nothing is mounted on this machine), once per session:
each appliance start costs about 20 s under TCG on 2 cores (more under load), so these tests start
five in all. They skip, saying why, where libguestfs cannot run (no guestfish, no kernel in /boot
readable by this user); under CI=true they fail instead."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from audit.host import libguestfs
from audit.host.diskimage import ImageError
from audit.host.libguestfs import Root, choose_root, no_kvm_reason, quote
from tests.conftest import Link, build_tree
from tests.test_diskimage import make_image, results, tool
from tests.trees import debian12_tree

#: The fstab of the test image: libguestfs's inspection mounts /boot from it.
FSTAB = "/dev/hostaudit/root / xfs defaults 0 1\nLABEL=boot /boot ext4 defaults 0 2\n"
HOSTILE = {
    "etc/sysctl.d/10-new\nline.conf": "vm.swappiness = 10\n",
    "etc/sysctl.d/20-q\"uo'te $(touch pwned) `id` \\x41 | echo.conf": "kernel.numa_balancing = 0\n",
    "etc/sysctl.d/" + os.fsdecode(b"30-bad\xff\xfe.conf"): "vm.nr_hugepages = 64\n",
    "etc/sysctl.d/40-abs.conf": Link("/usr/lib/sysctl.d/40-real.conf"),  # re-rooted inside the image
    "usr/lib/sysctl.d/40-real.conf": "vm.overcommit_memory = 0\n",
    "etc/sysctl.d/50-shadow.conf": Link("/etc/shadow"),  # the image has none: never this machine's
    "etc/sysctl.d/60-up.conf": Link("../../../../../etc/hostname"),  # .. stops at the image's root
    "etc/hostname": "lvm-xfs-image\n",
}


def blocker() -> str | None:
    """Why libguestfs cannot start its appliance here, as far as can be told without starting it."""
    if shutil.which("guestfish") is None:
        return "guestfish is not installed (apt-get install libguestfs-tools; .ci/install-test-deps installs it)"
    if os.environ.get("LIBGUESTFS_PATH"):
        return None  # a fixed appliance: no kernel of this machine needed
    kernels = glob.glob("/boot/vmlinuz-*")
    if not kernels:
        return "no kernel in /boot: supermin builds libguestfs's appliance from this machine's kernel"
    if not any(os.access(k, os.R_OK) for k in kernels):
        return (f"no /boot/vmlinuz-* is readable by uid {os.getuid()} (Ubuntu makes them root-only): supermin "
                "builds libguestfs's appliance from this machine's kernel; run as root or chmod 0644 them")
    return None


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def hostaudit(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """tests.test_cli.hostaudit with room for an appliance start under load (it allows 120 s)."""
    exe = shutil.which("hostaudit", path=os.path.dirname(sys.executable))
    cmd = [exe] if exe else [sys.executable, "-m", "audit"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=900)


@pytest.fixture(scope="session")
def lvm(tmp_path_factory) -> tuple[Path, Path]:
    """A Debian 12 tree (with hostile names) and a raw disk of it: GPT, partition 1 ext4 /boot,
    partition 2 an LVM PV whose LV hostaudit/root holds the rest on XFS. Built by guestfish."""
    reason = blocker()
    if reason:
        skip_or_fail(reason)
    base = tmp_path_factory.mktemp("lvm")
    spec = {**debian12_tree(), **HOSTILE, "bin": Link("usr/bin"), "usr/bin/sh": "", "etc/fstab": FSTAB}
    tree = build_tree(base / "tree", spec)
    archive = base / "tree.tar"
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(tree.iterdir()):
            tar.add(entry, arcname=entry.name)
    disk = base / "lvm.raw"
    with open(disk, "wb") as f:
        f.truncate(420 * 1024 * 1024)  # XFS wants 300 MB at least; sparse
    layout = "label: gpt\nstart=2048, size=131072, type=linux\nstart=133120, type=lvm\n"
    subprocess.run([tool("sfdisk"), "-q", str(disk)], input=layout, text=True, check=True, capture_output=True,
                   timeout=60)  # here, not in the appliance: partitioning there costs seconds a step
    script = f"""run
mkfs ext4 /dev/sda1 label:boot
pvcreate /dev/sda2
vgcreate hostaudit /dev/sda2
lvcreate-free root hostaudit 100
mkfs xfs /dev/hostaudit/root
mount /dev/hostaudit/root /
mkdir /boot
mount /dev/sda1 /boot
rmdir /boot/lost+found
tar-in {archive} /
umount-all
"""
    env, _ = libguestfs.appliance_env()
    started = time.monotonic()
    try:
        out = subprocess.run(["guestfish", "--format=raw", "-a", str(disk)], input=script, text=True,
                             capture_output=True, env=env, timeout=600, start_new_session=True)
    except subprocess.TimeoutExpired:
        skip_or_fail("guestfish did not build the LVM image within 600 s")
    if out.returncode != 0:
        skip_or_fail(f"libguestfs cannot run here: {libguestfs.problems(out.stderr) or libguestfs.tail(out.stderr)}")
    print(f"built {disk.name} in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return tree, disk


# ------------------------------------------------------------------------------------------------ parity
def test_an_lvm_xfs_root_gives_the_results_of_root(lvm):
    tree, disk = lvm
    started = time.monotonic()
    by_image = hostaudit("run", "--image", str(disk), "--format", "json")
    took = time.monotonic() - started
    assert "reading it through libguestfs" in by_image.stderr
    assert "partition 2: lvm" in by_image.stderr  # auto: debugfs found no ext root, and said what it saw
    by_root = results(hostaudit("run", "--root", str(tree), "--format", "json"))
    assert results(by_image) == by_root
    target = json.loads(by_image.stdout)["target"]
    assert target["mode"] == "image" and target["root"] == str(disk) and target["os_id"] == "debian"
    print(f"run --image through libguestfs: {took:.1f} s", file=sys.stderr)


def test_collect_image_reads_what_collect_root_does(lvm, tmp_path):
    """Every entry (hostile names, links kept as links and re-rooted, /boot from its own partition)
    exactly as collect --root records it from the tree."""
    tree, disk = lvm
    by_image = hostaudit("collect", "--image", str(disk), "--image-backend", "libguestfs",
                         "-o", str(tmp_path / "image.snap"))
    assert by_image.returncode == 0, by_image.stderr
    assert hostaudit("collect", "--root", str(tree), "-o", str(tmp_path / "root.snap")).returncode == 0
    image = json.loads((tmp_path / "image.snap").read_text())["entries"]
    root = json.loads((tmp_path / "root.snap").read_text())["entries"]
    assert image == root
    sysctl = {k.rsplit("/", 1)[1]: v for k, v in image.items() if k.startswith("/etc/sysctl.d/")}
    assert sysctl["10-new\nline.conf"]["data"] == "vm.swappiness = 10\n"
    assert sysctl["40-abs.conf"] == {"type": "link", "target": "/usr/lib/sysctl.d/40-real.conf"}
    assert image["/usr/lib/sysctl.d/40-real.conf"]["data"] == "vm.overcommit_memory = 0\n"
    assert image["/boot/grub/grub.cfg"]["type"] == "file"  # on partition 1, mounted from the fstab
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


# ------------------------------------------------------------------------------------------------ errors
def test_an_image_without_a_linux_root(lvm, make_root, tmp_path):
    raw = make_image(make_root({"etc/hostname": "x\n", "data/file": "y\n"}), tmp_path / "data.raw", "8M")
    out = hostaudit("run", "--image", str(raw), "--image-backend", "libguestfs")
    assert out.returncode == 2, out.stderr
    assert "no Linux root found by libguestfs's inspection (no operating system on any file system)" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_missing_guestfish_is_one_line_with_the_install_hint(lvm, tmp_path):
    """debugfs is still found (in sbin), finds LVM, and libguestfs is needed: not on PATH."""
    _, disk = lvm
    empty = tmp_path / "bin"
    empty.mkdir()
    out = hostaudit("run", "--image", str(disk), env={"PATH": str(empty)})
    assert out.returncode == 2
    line = out.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "no ext2/3/4 root for debugfs (partition 1: ext without os-release; partition 2: lvm)" in line
    assert "guestfish is not installed (Debian/Ubuntu: apt-get install libguestfs-tools)" in line


def test_the_launch_is_stopped_at_its_timeout(lvm, monkeypatch):
    _, disk = lvm
    sessions: list[libguestfs.Session] = []

    class Recorded(libguestfs.Session):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            sessions.append(self)

    monkeypatch.setattr(libguestfs, "Session", Recorded)
    started = time.monotonic()
    with pytest.raises(ImageError, match=r"did not start and mount the image within 2 s .*stopped"):
        libguestfs.open_guestfs(str(disk), launch_timeout=2)
    assert time.monotonic() - started < 30
    (session,) = sessions
    assert session.proc.returncode is not None
    assert libguestfs.session_members(session.proc.pid) == []  # guestfish, qemu and the rest are gone


# ------------------------------------------------------------------------------------------------ no appliance
@pytest.mark.parametrize("name", ["/etc/x y", '/a"b', "/a'b", "/new\nline", "/back\\slash", "/$(id)`id`|;#",
                                  "/" + os.fsdecode(b"\xff\xfe"), "-/x", "~root"])
def test_a_name_is_one_quoted_word_of_safe_bytes_and_escapes(name):
    word = quote(name)
    assert word[0] == word[-1] == '"'
    inner = word[1:-1]
    assert all(c.isascii() and (c.isalnum() or c in "/._+-:@,=\\") for c in inner)
    assert inner.replace("\\x", "").count("\\") == 0  # every backslash starts a \xHH escape
    decoded = bytes(int(inner[i + 2 : i + 4], 16) if inner[i] == "\\" else ord(inner[i])
                    for i in _positions(inner))
    assert decoded == os.fsencode(name)


def _positions(inner: str):
    i = 0
    while i < len(inner):
        yield i
        i += 4 if inner[i] == "\\" else 1


def test_a_nul_byte_is_refused():
    with pytest.raises(ValueError):
        quote("/a\0b")


def _root(device: str, type_: str = "linux", product: str = "Debian GNU/Linux 12", *, os_release=None) -> Root:
    return Root(device=device, type=type_, distro="debian", product=product, mountpoints=(("/", device),),
                os_release=os_release)


def test_one_linux_root_among_others_is_chosen():
    win = _root("/dev/sda2", "windows", "Windows 10 Pro")
    assert choose_root([win, _root("/dev/sda3")], "img").device == "/dev/sda3"


def test_several_linux_roots_pick_the_one_with_os_release_or_are_refused(capsys):
    a, b = _root("/dev/sda2", os_release=False), _root("/dev/vg/root", product="Fedora 40", os_release=True)
    assert choose_root([a, b], "img") is b
    assert "auditing /dev/vg/root (Fedora 40), the only one with an os-release" in capsys.readouterr().err
    with pytest.raises(ImageError, match=r"several Linux roots \(/dev/sda2 \(Debian GNU/Linux 12\), "
                                         r"/dev/vg/root \(Fedora 40\)\)"):
        choose_root([a._replace(os_release=True), b], "img")


def test_no_root_names_what_inspection_found():
    with pytest.raises(ImageError, match=r"no Linux root .*\(/dev/sda1 \(Windows 10 Pro\)\)"):
        choose_root([_root("/dev/sda1", "windows", "Windows 10 Pro")], "img")
    with pytest.raises(ImageError, match="no operating system on any file system"):
        choose_root([], "img")


def test_a_product_name_from_the_image_is_shown_on_one_line():
    label = _root("/dev/sda1", product="Evil\n\x1b[2Jname").label()
    assert "\n" not in label and "\x1b" not in label


def test_tcg_is_chosen_without_vmx_or_svm(tmp_path, monkeypatch):
    kvm = tmp_path / "kvm"
    kvm.write_bytes(b"")
    flags = tmp_path / "cpuinfo"
    flags.write_text("processor\t: 0\nflags\t\t: fpu sse2 hypervisor\n")
    monkeypatch.setattr(os, "uname", lambda: os.uname_result(("Linux", "h", "6.1", "#1", "x86_64")))
    assert "no vmx/svm" in no_kvm_reason(str(flags), str(kvm))
    flags.write_text("processor\t: 0\nflags\t\t: fpu vmx sse2\n")
    assert no_kvm_reason(str(flags), str(kvm)) is None
    assert no_kvm_reason(str(flags), str(tmp_path / "none")) == f"no {tmp_path / 'none'}"


def test_the_caller_settings_are_kept(monkeypatch):
    monkeypatch.setenv("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
    monkeypatch.setenv("LIBGUESTFS_BACKEND", "libvirt")
    env, why = libguestfs.appliance_env()
    assert env["LIBGUESTFS_BACKEND"] == "libvirt" and env["LIBGUESTFS_BACKEND_SETTINGS"] == "force_tcg"
    assert why == "LIBGUESTFS_BACKEND_SETTINGS says so"
    monkeypatch.delenv("LIBGUESTFS_BACKEND_SETTINGS")
    monkeypatch.delenv("LIBGUESTFS_BACKEND")
    env, why = libguestfs.appliance_env()
    assert env["LIBGUESTFS_BACKEND"] == "direct"
    assert ("LIBGUESTFS_BACKEND_SETTINGS" in env) == (why is not None)


def test_image_modules_are_not_imported_by_a_plain_run():
    out = subprocess.run([sys.executable, "-c", "import sys, audit.cli.main, audit.cli.run, audit.cli.collect; "
                          "print(sorted(m for m in sys.modules if m.startswith('audit.host.')))"],
                         capture_output=True, text=True, timeout=60)
    assert "libguestfs" not in out.stdout and "diskimage" not in out.stdout


def test_only_errors_count_not_debug_or_trace_lines():
    stderr = ("libguestfs: trace: pread \"/etc/x\" 5 0\nlibguestfs: trace: pread = <buffer:5>\n"
              "*stdin*:7: libguestfs: error: lstatns: /x: No such file or directory\n")
    assert libguestfs.problems(stderr) == "lstatns: /x: No such file or directory"
    assert libguestfs.problems("libguestfs: trace: launch\nlibguestfs: warning: x\n") == ""
