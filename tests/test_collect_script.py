"""The agentless collector: ``hostaudit collect --script`` run by dash against real-sample trees gives
the same audit as a direct run, stays inside its root, reads no FIFO or device, writes nothing."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from audit.capture import gather_patterns
from audit.host.collect import pattern_cap, render_script
from audit.host.snapshot import SnapshotFS, load_snapshot, parse_snapshot
from tests.conftest import Dir, Link, cpuinfo_sample
from tests.test_snapshot import TREES, _results, hostaudit

DASH = shutil.which("dash")
pytestmark = pytest.mark.skipif(DASH is None, reason="dash is not installed (apt-get install -y dash)")

SECRET = "TOP-SECRET-outside-the-root"


@pytest.fixture(scope="module")
def script(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("script") / "collect.sh"
    out = hostaudit("collect", "--script", "--no-entry-points", "-o", str(path))
    assert out.returncode == 0, out.stderr
    return path


def run_script(script: Path, *args: str, shell: tuple[str, ...] = (), env: dict | None = None,
               cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*(shell or (DASH,)), str(script), *args], capture_output=True, timeout=300,
                          env=env, cwd=cwd)


def collect_sh(script: Path, root: Path, dest: Path, **kw) -> Path:
    out = run_script(script, str(root), **kw)
    assert out.returncode == 0, out.stderr.decode()
    dest.write_bytes(out.stdout)
    return dest


def test_the_script_is_posix_sh_and_lists_every_pattern(script):
    assert subprocess.run([DASH, "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    assert text.startswith("#!/bin/sh\n")
    for pattern in gather_patterns(entry_points=False).paths:
        assert f"\n# {pattern_cap(pattern)[0]}\n" in text, pattern


def test_script_from_stdout_matches_the_file(script):
    out = hostaudit("collect", "--script", "--no-entry-points")
    assert out.returncode == 0 and out.stdout == script.read_text()


@pytest.mark.parametrize("name", sorted(TREES))
def test_script_then_run_equals_a_direct_run(script, make_root, tmp_path, name):
    root = make_root(TREES[name]())
    snap = collect_sh(script, root, tmp_path / "host.snap")
    direct = hostaudit("--root", str(root), "--format", "json", "--no-entry-points")
    via = hostaudit("run", "--snapshot", str(snap), "--format", "json", "--no-entry-points")
    assert via.returncode == direct.returncode, via.stderr
    assert _results(json.loads(via.stdout)) == _results(json.loads(direct.stdout))
    # and the same as the Python collector's snapshot
    pysnap = tmp_path / "host.json"
    assert hostaudit("collect", "--root", str(root), "-o", str(pysnap), "--no-entry-points").returncode == 0
    via_py = hostaudit("run", "--snapshot", str(pysnap), "--format", "json", "--no-entry-points")
    assert _results(json.loads(via_py.stdout)) == _results(json.loads(via.stdout))
    snap_doc = load_snapshot(str(snap))
    assert snap_doc.mode == "image"  # any root but / is an image, even with proc/ inside
    assert snap_doc.root == str(root)
    assert snap_doc.collector == "collect.sh"


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="needs a Linux /proc")
def test_script_on_the_live_host(script, tmp_path):
    before = hostaudit("--format", "json", "--no-entry-points")
    out = run_script(script)
    assert out.returncode == 0, out.stderr.decode()
    assert out.stderr == b""
    after = hostaudit("--format", "json", "--no-entry-points")
    snap = tmp_path / "live.snap"
    snap.write_bytes(out.stdout)
    via = hostaudit("run", "--snapshot", str(snap), "--format", "json", "--no-entry-points")
    got = _results(json.loads(via.stdout))
    assert got in (_results(json.loads(before.stdout)), _results(json.loads(after.stdout)))
    loaded = load_snapshot(str(snap))
    assert loaded.mode == "live" and loaded.root == "/"


def _hostile_tree(tmp_path: Path, make_root) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "os-release").write_text(f"ID={SECRET}\n")
    (outside / "secret.conf").write_text(f"kernel.secret = {SECRET}\n")
    rel_to_outside = os.path.relpath(outside, tmp_path / "root0" / "etc")
    return make_root({
        "etc/os-release": Link(str(outside / "os-release")),  # absolute: re-rooted, not followed out
        "etc/sysctl.d": Link(rel_to_outside),  # relative, climbing out: ".." stops at the root
        "etc/default/grub.d": Link("../../.." + str(outside)),
        "usr/lib/os-release": Link("/../../../../../../../.." + str(outside / "os-release")),
        "boot/loader/entries/x.conf": Link(str(outside / "secret.conf")),
        "etc/hostname": Link("/etc/hostname"),  # a loop
        "proc/cpuinfo": cpuinfo_sample("intel-xeon-e5-2680v3-haswell-ep.txt"),
    })


def _all_text(snap_path: Path) -> str:
    snap = load_snapshot(str(snap_path))
    blobs = [e.data.decode("latin-1") for e in snap.entries.values() if e.data]
    return snap_path.read_bytes().decode("latin-1") + "".join(blobs)


def test_script_never_reads_outside_the_root(script, make_root, tmp_path):
    root = _hostile_tree(tmp_path, make_root)
    assert root == tmp_path / "root0"
    snap = collect_sh(script, root, tmp_path / "h.snap")
    text = _all_text(snap)
    assert SECRET not in text
    assert base64.b64encode(SECRET.encode()).decode()[:20] not in text
    direct = hostaudit("--root", str(root), "--format", "json", "--no-entry-points")
    via = hostaudit("run", "--snapshot", str(snap), "--format", "json", "--no-entry-points")
    assert _results(json.loads(via.stdout)) == _results(json.loads(direct.stdout))
    assert SECRET not in direct.stdout


def test_script_reads_no_fifo_and_no_device(script, make_root, tmp_path):
    root = make_root({"proc/cpuinfo": cpuinfo_sample("this-vm.txt"), "etc/sysctl.d": Dir(), "dev": Dir()})
    os.mkfifo(root / "etc/hostname")  # a reader would block forever
    os.mkfifo(root / "etc/sysctl.d/90-fifo.conf")
    try:
        os.mknod(root / "dev/kvm", 0o600 | 0o020000, os.makedev(10, 232))
        has_dev = True
    except (PermissionError, OSError):
        has_dev = False
    snap = collect_sh(script, root, tmp_path / "h.snap")  # returns: nothing blocked
    fs = SnapshotFS(load_snapshot(str(snap)), name="h")
    assert fs.kind("/etc/hostname") == "fifo"
    assert fs.kind("/etc/sysctl.d/90-fifo.conf") == "fifo"
    if has_dev:
        assert fs.kind("/dev/kvm") == "char"
    direct = hostaudit("--root", str(root), "--format", "json", "--no-entry-points")
    via = hostaudit("run", "--snapshot", str(snap), "--format", "json", "--no-entry-points")
    assert _results(json.loads(via.stdout)) == _results(json.loads(direct.stdout))


def _tools_dir(tmp_path: Path, without: set[str]) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("od", "tr", "head", "wc", "ls", "date", "readlink", "base64", "uname"):
        if tool not in without and (found := shutil.which(tool)):
            os.symlink(found, bin_dir / tool)
    return bin_dir


@pytest.mark.parametrize("missing", [{"base64"}, {"readlink"}, {"base64", "readlink", "head"}])
def test_fallbacks_when_tools_are_missing(script, make_root, tmp_path, missing):
    spec = TREES["debian-live-broadwell"]()
    spec["etc/sysctl.d/my settings.conf"] = "vm.swappiness = 10\n"
    spec["etc/sysctl.d/\udcff.conf"] = "vm.overcommit_memory = 1\n"
    root = make_root(spec)
    bin_dir = _tools_dir(tmp_path, missing)
    snap = collect_sh(script, root, tmp_path / "h.snap", env={"PATH": str(bin_dir)})
    raw = snap.read_bytes()
    if "base64" in missing:
        assert b" hex\n" in raw and b" b64\n" not in raw
    direct = hostaudit("--root", str(root), "--format", "json", "--no-entry-points")
    via = hostaudit("run", "--snapshot", str(snap), "--format", "json", "--no-entry-points")
    assert _results(json.loads(via.stdout)) == _results(json.loads(direct.stdout))
    fs = SnapshotFS(load_snapshot(str(snap)), name="h")
    assert "my settings.conf" in fs.listdir("/etc/sysctl.d")
    assert fs.read_bytes("/etc/sysctl.d/\udcff.conf") == b"vm.overcommit_memory = 1\n"
    assert fs.readlink("/vmlinuz") == "boot/vmlinuz-6.1.0-56-amd64"


def test_bash_in_posix_mode_gives_the_same_snapshot(script, make_root, tmp_path):
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    root = make_root(TREES["alma9-image"]())
    a = run_script(script, str(root))
    b = run_script(script, str(root), shell=(bash, "--posix"))
    assert a.returncode == b.returncode == 0
    strip = lambda raw: [ln for ln in raw.splitlines() if not ln.startswith(b"meta collected_at")]  # noqa: E731
    assert strip(a.stdout) == strip(b.stdout)


def test_script_writes_nothing(script, make_root, tmp_path):
    root = make_root(TREES["this-vm-live"]())
    cwd = tmp_path / "cwd"
    cwd.mkdir()

    def state() -> list[tuple]:
        return sorted((str(p), p.lstat().st_mtime_ns, p.lstat().st_size) for p in root.rglob("*"))

    before = state()
    out = run_script(script, str(root), cwd=str(cwd))
    assert out.returncode == 0
    assert state() == before
    assert list(cwd.iterdir()) == []


def test_script_stops_at_its_cap_and_the_result_is_refused(make_root, tmp_path):
    path = tmp_path / "small.sh"
    assert hostaudit("collect", "--script", "--max-size", "4K", "--no-entry-points", "-o", str(path)).returncode == 0
    root = make_root(TREES["debian-live-broadwell"]())
    out = run_script(path, str(root))
    assert out.returncode == 3
    assert b"stopped" in out.stderr
    snap = tmp_path / "cut.snap"
    snap.write_bytes(out.stdout)
    res = hostaudit("run", "--snapshot", str(snap))
    assert res.returncode == 2
    assert "truncated" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_script_usage_errors(script, tmp_path):
    assert run_script(script, str(tmp_path / "nope")).returncode == 2
    assert run_script(script, "/", "extra").returncode == 2
    assert hostaudit("collect", "--script", "--root", "/").returncode == 2


def test_glob_cap_applies_in_the_script(script, make_root, tmp_path):
    # a file only a glob names (/etc/sysctl.d/*.conf) is capped at the glob cap
    root = make_root({"etc/sysctl.d/big.conf": b"#" * (1024 * 1024 + 10), "etc/sysctl.d/small.conf": "a = 1\n"})
    snap = parse_snapshot(run_script(script, str(root)).stdout)
    entry = snap.entries["/etc/sysctl.d/big.conf"]
    assert entry.data is None and entry.size is not None and entry.size > 1024 * 1024
    assert snap.entries["/etc/sysctl.d/small.conf"].data == b"a = 1\n"


def test_kernel_images_are_presence_only_in_the_script(script, make_root):
    rel = "6.1.0-56-amd64"
    root = make_root({f"boot/vmlinuz-{rel}": b"\0" * 200_000, f"boot/config-{rel}": "CONFIG_KSM=y\n"})
    snap = parse_snapshot(run_script(script, str(root)).stdout)
    assert snap.entries[f"/boot/vmlinuz-{rel}"].type == "file"
    assert snap.entries[f"/boot/vmlinuz-{rel}"].data is None
    assert snap.entries[f"/boot/config-{rel}"].data == b"CONFIG_KSM=y\n"


def test_render_script_is_deterministic():
    pats = gather_patterns(entry_points=False)
    assert render_script(pats) == render_script(pats)
