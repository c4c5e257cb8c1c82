"""Reads stay inside the root: symlinks are re-rooted, '..' stops at the root, only regular files."""

from __future__ import annotations

import os
import stat
import threading
from functools import partial

import pytest

from audit.errors import FactError, FactUnavailable
from audit.host.core import Host
from audit.host.fs import RootFS, gunzip, normalize
from tests.conftest import Link


@pytest.fixture
def outside(tmp_path):
    """A file on the auditing machine that no image may reach."""
    secret = tmp_path / "secret.txt"
    secret.write_text("auditing machine's own file\n")
    return secret


def test_absolute_symlink_is_rerooted(make_root):
    root = make_root({"usr/lib/os-release": "ID=debian\n", "etc/os-release": Link("/usr/lib/os-release")})
    assert RootFS(str(root)).read_bytes("/etc/os-release") == b"ID=debian\n"


def test_absolute_symlink_to_host_file_stays_inside(make_root, outside):
    root = make_root({"etc/passwd": Link(str(outside))})
    with pytest.raises(FactUnavailable):
        RootFS(str(root)).read_bytes("/etc/passwd")


def test_dotdot_stops_at_root(make_root, outside):
    root = make_root({"a.txt": "inside\n", "etc/x": Link("../../../../../../a.txt")})
    fs = RootFS(str(root))
    assert fs.read_bytes("/etc/x") == b"inside\n"
    assert fs.read_bytes("/../../../a.txt") == b"inside\n"


def test_root_sharing_a_string_prefix_is_not_reachable(tmp_path):
    # field note #33: root /x/root must not reach /x/root.txt through '../root.txt'
    (tmp_path / "root").mkdir()
    (tmp_path / "root.txt").write_text("outside\n")
    fs = RootFS(str(tmp_path / "root"))
    with pytest.raises(FactUnavailable):
        fs.read_bytes("../root.txt")


def test_relative_link_through_symlinked_parent(make_root):
    # field note #34: a chain through a symlinked parent resolves against the link's own folder
    root = make_root({
        "usr/lib/real/os-release": "ID=rocky\n",
        "usr/lib/x/os-release": Link("../real/os-release"),
        "etc/alias": Link("/usr/lib/x"),
        "etc/os-release": Link("alias/os-release"),
    })
    assert RootFS(str(root)).read_bytes("/etc/os-release") == b"ID=rocky\n"


def test_symlink_loop_is_an_error(make_root):
    root = make_root({"a": Link("b"), "b": Link("a")})
    with pytest.raises(FactError, match="too many levels"):
        RootFS(str(root)).read_bytes("/a")


def test_directory_is_not_read(make_root):
    root = make_root({"proc/cpuinfo/x": "y"})
    with pytest.raises(FactError, match="not a regular file"):
        RootFS(str(root)).read_bytes("/proc/cpuinfo")


def test_fifo_is_refused_without_hanging(make_root):
    # field notes #36/#37: a FIFO in a collected tree must not block the audit
    root = make_root({})
    os.mkfifo(root / "fifo")
    result: list[BaseException] = []

    def read():
        try:
            RootFS(str(root)).read_bytes("/fifo")
        except BaseException as exc:
            result.append(exc)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "reading a FIFO blocked"
    assert isinstance(result[0], FactError)


def test_char_device_is_refused_and_kind_is_reported(make_root):
    root = make_root({})
    try:
        os.mknod(root / "kvm", 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # same numbers as /dev/null
    except PermissionError:
        pytest.skip("creating a device node needs root (CI runs as root)")
    fs = RootFS(str(root))
    assert fs.kind("/kvm") == "char"
    with pytest.raises(FactError, match="not a regular file"):
        fs.read_bytes("/kvm")


def test_size_cap(make_root):
    root = make_root({"big": "x" * 5000})
    with pytest.raises(FactError, match="byte cap"):
        RootFS(str(root)).read_bytes("/big", limit=4096)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_denied_names_the_file(make_root):
    root = make_root({"etc/shadow": "x"})
    os.chmod(root / "etc/shadow", 0)
    with pytest.raises(FactError, match="/etc/shadow: permission denied"):
        RootFS(str(root)).read_bytes("/etc/shadow")


def test_missing_file_is_unavailable_and_names_it(make_root):
    with pytest.raises(FactUnavailable, match="/proc/cpuinfo does not exist"):
        RootFS(str(make_root({}))).read_bytes("/proc/cpuinfo")


def test_listdir_and_readlink(make_root):
    root = make_root({"boot/b": "", "boot/a": "", "vmlinuz": Link("boot/vmlinuz-6.1.0-9-amd64")})
    fs = RootFS(str(root))
    assert fs.listdir("/boot") == ["a", "b"]
    assert fs.readlink("/vmlinuz") == "boot/vmlinuz-6.1.0-9-amd64"
    assert fs.readlink("/boot/a") is None


def test_normalize_terminates_on_double_slashes():
    # field note #30
    assert normalize("//dev//hugepages/") == "/dev/hugepages"
    assert normalize("/../../x/./y/..") == "/x"


def test_gunzip_bomb_is_capped():
    import gzip

    bomb = gzip.compress(b"\0" * (1 << 20))
    assert len(gunzip(bomb, source="/proc/config.gz")) == 1 << 20
    with pytest.raises(FactError, match="cap"):
        gunzip(bomb, source="/proc/config.gz", limit=1000)
    with pytest.raises(FactError, match="not valid gzip"):
        gunzip(b"not gzip", source="/proc/config.gz")


def test_host_invalid_utf8_is_replaced_not_fatal(make_root):
    host = Host.from_root(str(make_root({"etc/hostname": b"h\xffst\n"})))
    assert host.read_text("/etc/hostname") == "h\ufffdst\n"


def _outcome(call):
    try:
        return ("ok", call())
    except (FactUnavailable, FactError) as exc:
        return (type(exc).__name__, str(exc))


def test_the_live_root_answers_as_the_confined_walk_does(tmp_path):
    """At / the kernel resolves paths itself (no lstat a component); every answer must be the one the
    component-by-component walk gives on the same machine: content, kind, listing, link, error."""
    loop = tmp_path / "loop"
    os.symlink(loop, loop)
    (tmp_path / "file").write_text("x\n")
    os.symlink(tmp_path / "file", tmp_path / "link")
    os.symlink("/nonexistent-target", tmp_path / "dangling")
    direct = RootFS("/")
    walked = RootFS("/")
    walked.direct = False
    assert direct.direct
    paths = ["/proc/cpuinfo", "/proc/self/mounts", "/etc/os-release", "/etc/passwd/x", "/nonexistent/x",
             "/sys/kernel/mm/transparent_hugepage/enabled", "/dev/kvm", "/dev/null", "/proc/self/root/etc/hostname",
             "/etc/../etc/./hostname", "//etc//hostname", "/..", "/", str(loop), str(loop) + "/x",
             str(tmp_path / "file"), str(tmp_path / "link"), str(tmp_path / "dangling"), str(tmp_path)]
    for path in paths:
        for follow in (True, False):
            assert _outcome(partial(direct.kind, path, follow=follow)) == \
                _outcome(partial(walked.kind, path, follow=follow)), (path, follow)
        if path != "/proc/self/mounts":  # its content may change between two reads
            assert _outcome(partial(direct.read_bytes, path, limit=1 << 20)) == \
                _outcome(partial(walked.read_bytes, path, limit=1 << 20)), path
        for method in ("listdir", "readlink", "owner"):
            assert _outcome(partial(getattr(direct, method), path)) == \
                _outcome(partial(getattr(walked, method), path)), (method, path)
