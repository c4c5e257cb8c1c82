"""Snapshots: SnapshotFS answers like RootFS, collect then run --snapshot equals a direct run,
hostile snapshots are refused in one line."""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from audit.capture import gather_patterns
from audit.errors import FactError, FactUnavailable, UsageError
from audit.host.collect import Patterns, Recorder, collect_document, encode_content, render_document
from audit.host.core import Host
from audit.host.fs import RootFS
from audit.host.registry import FACTS
from audit.host.snapshot import SnapshotFS, load_snapshot_host, parse_snapshot
from audit.model import TargetMode
from tests.conftest import DATA, Dir, Link, cpuinfo_sample, kconfig_sample

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "reports/schemas/snapshot-v1.json").read_text())
PROC = DATA / "proc" / "this-vm"


def hostaudit(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("hostaudit", path=os.path.dirname(sys.executable)) or shutil.which("hostaudit")
    cmd = [exe] if exe else [sys.executable, "-m", "audit"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


# -- trees built from the real samples -------------------------------------------------------------


def sysfs(listing: Path, base: str) -> dict:
    tree: dict = {}
    for line in listing.read_text().splitlines():
        if line.endswith("/") and "=" not in line:
            tree[f"{base}/{line.rstrip('/')}"] = Dir()
            continue
        name, _, value = line.partition("=")
        if not value.startswith("<"):
            tree[f"{base}/{name}"] = value + "\n"
    return tree


def live_like(cpu: str, release: str, config: str) -> dict:
    """A running Debian-like host: proc/, sys/, a kernel config in /boot, merged /usr."""
    tree = {
        "proc/cpuinfo": cpuinfo_sample(cpu),
        "proc/sys/kernel/osrelease": release + "\n",
        "proc/sys/kernel/hostname": "kvm-07\n",
        "proc/cmdline": f"BOOT_IMAGE=/boot/vmlinuz-{release} root=/dev/sda1 ro intel_iommu=on hugepages=64\n",
        "proc/meminfo": PROC / "meminfo",
        "proc/mounts": PROC / "mounts",
        "proc/swaps": PROC / "swaps",
        "proc/modules": "kvm_intel 409600 0 - Live 0x0\nkvm 1142784 1 kvm_intel, Live 0x0\n",
        "proc/crypto": "name         : aes\ndriver       : aes-aesni\nmodule       : kernel\n",
        f"boot/config-{release}": kconfig_sample(config),
        f"boot/vmlinuz-{release}": "kernel image\n",
        "vmlinuz": Link(f"boot/vmlinuz-{release}"),
        "lib": Link("usr/lib"),
        f"usr/lib/modules/{release}/modules.builtin": "kernel/crypto/aes_generic.ko\n",
        "etc/os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n',
        "etc/hostname": "kvm-07\n",
        "etc/default/grub": 'GRUB_CMDLINE_LINUX="intel_iommu=on hugepages=64"\n',
        "etc/sysctl.d/80-hugepages.conf": "vm.nr_hugepages = 64\n",
        "etc/sysctl.d/99-masked.conf": Link("/dev/null"),
        "etc/systemd/system/ksm.service": Link("/dev/null"),
        "etc/systemd/system/multi-user.target.wants/ksmtuned.service": Link("/lib/systemd/system/ksmtuned.service"),
        "usr/lib/systemd/system/ksmtuned.service": "[Service]\nExecStart=/usr/sbin/ksmtuned\n",
        "sys/firmware/efi/runtime": "",
    }
    tree.update(sysfs(PROC / "sys-kernel-mm-hugepages.txt", "sys/kernel/mm/hugepages"))
    tree.update(sysfs(PROC / "sys-kernel-mm-transparent_hugepage.txt", "sys/kernel/mm/transparent_hugepage"))
    tree.update(sysfs(PROC / "sys-kernel-mm-ksm.txt", "sys/kernel/mm/ksm"))
    tree.update(sysfs(PROC / "sys-kernel-mm-hugepages.txt", "sys/devices/system/node/node0/hugepages"))
    tree["sys/devices/system/node/possible"] = "0\n"
    return tree


def rhel_image() -> dict:
    rel = "5.14.0-570.18.1.el9_6.x86_64"
    return {
        "etc/os-release": 'NAME="AlmaLinux"\nID="almalinux"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.6"\n',
        f"boot/vmlinuz-{rel}": "kernel image\n",
        f"boot/config-{rel}": kconfig_sample(f"almalinux9-config-{rel}"),
        f"boot/initramfs-{rel}.img": b"\0" * (2 * 1024 * 1024),  # past the glob cap: not captured
        f"boot/loader/entries/abc-{rel}.conf": f"title AlmaLinux\nversion {rel}\nlinux /vmlinuz-{rel}\n"
                                               "options root=/dev/sda1 ro default_hugepagesz=1G hugepages=4\n",
        "boot/grub2/grubenv": "# GRUB Environment Block\nsaved_entry=abc\n" + "#" * 988,
        "lib": Link("usr/lib"),
        f"usr/lib/modules/{rel}/modules.builtin": "kernel/arch/x86/crypto/aesni-intel.ko\n",
        "etc/hostname": "golden\n",
    }


def el7_image() -> dict:
    rel = "3.10.0-1160.119.1.0.5.el7.x86_64"
    return {
        "etc/os-release": 'NAME="Oracle Linux Server"\nID="ol"\nID_LIKE="fedora"\nVERSION_ID="7.9"\n',
        "boot/vmlinuz": Link(f"vmlinuz-{rel}"),
        f"boot/vmlinuz-{rel}": "kernel image\n",
        f"boot/config-{rel}": kconfig_sample(f"oraclelinux7-rhck-config-{rel}"),
        "boot/config-3.10.0-1.el7.x86_64.old": "CONFIG_KSM=n\n",
        # hostile links: they must resolve inside the root and never reach the auditing machine
        "etc/sysctl.d/10-escape.conf": Link("../../../../../../../../etc/passwd"),
        "etc/sysctl.d/20-abs.conf": Link("/etc/shadow"),
        "etc/hostname": Link("hostname"),  # a loop
        "etc/systemd/system/loop.service": Link("loop2.service"),
        "etc/systemd/system/loop2.service": Link("loop.service"),
        "etc/rc3.d": Link("rc.d/rc3.d"),
        "etc/rc.d/rc3.d/S99ksm": Link("../init.d/ksm"),
        "etc/rc.d/init.d/ksm": "#!/bin/sh\n",
    }


TREES = {
    "debian-live-broadwell": lambda: live_like("intel-xeon-e5-2690v4-broadwell-ep.txt", "6.1.0-56-amd64",
                                               "debian12-config-6.1.0-56-amd64"),
    "this-vm-live": lambda: live_like("this-vm.txt", "6.18.44", "this-vm-config-6.18.44"),
    "amd-live-guest": lambda: live_like("qemu-virtual-cpu-2.5-kvm-guest.txt", "6.1.0-56-amd64",
                                        "debian12-config-6.1.0-56-amd64"),
    "alma9-image": rhel_image,
    "ol7-image-hostile-links": el7_image,
}


def _results(doc: dict) -> list[tuple]:
    return [(r["id"], r["status"], r["message"], json.dumps(r["evidence"], sort_keys=True),
             json.dumps(r["remediation"], sort_keys=True)) for r in doc["results"]]


# -- collect -> run --snapshot == run --root (console script, end to end) ----------------------------


@pytest.mark.parametrize("name", sorted(TREES))
def test_collect_then_run_equals_a_direct_run(make_root, tmp_path, name):
    root = make_root(TREES[name]())
    direct = hostaudit("--root", str(root), "--format", "json", "--no-entry-points")
    snap = tmp_path / "host.json"
    out = hostaudit("collect", "--root", str(root), "-o", str(snap), "--no-entry-points")
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    jsonschema.validate(json.loads(snap.read_text()), SCHEMA)
    via = hostaudit("run", "--snapshot", str(snap), "--format", "json", "--no-entry-points")
    assert via.returncode == direct.returncode, via.stderr
    a, b = json.loads(direct.stdout), json.loads(via.stdout)
    assert _results(b) == _results(a)
    assert b["target"]["mode"] == "snapshot"
    for key in ("hostname", "kernel_release", "kernel_release_source", "os", "os_id"):
        assert b["target"][key] == a["target"][key], key


def test_collect_to_stdout_is_the_same_document(make_root):
    root = make_root(rhel_image())
    a = hostaudit("collect", "--root", str(root), "--no-entry-points")
    b = hostaudit("collect", "--root", str(root), "-o", "-", "--no-entry-points")
    assert a.returncode == b.returncode == 0
    da, db = json.loads(a.stdout), json.loads(b.stdout)
    assert da["entries"] == db["entries"]
    assert da["source"] == {"mode": "image", "root": str(root), "collector": "hostaudit collect"}
    assert da["hostname"] == "golden"
    assert da["schema_version"] == 1 and da["tool_version"]
    assert da["collected_at"].endswith("Z")


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="needs a Linux /proc")
def test_collect_then_run_equals_a_live_run(tmp_path):
    snap = tmp_path / "live.json"
    before = hostaudit("--format", "json", "--no-entry-points")
    out = hostaudit("collect", "-o", str(snap), "--no-entry-points")
    assert out.returncode == 0, out.stderr
    after = hostaudit("--format", "json", "--no-entry-points")
    via = hostaudit("run", "--snapshot", str(snap), "--format", "json", "--no-entry-points")
    doc = json.loads(snap.read_text())
    jsonschema.validate(doc, SCHEMA)
    assert doc["source"]["mode"] == "live"
    got = _results(json.loads(via.stdout))
    # counters such as free memory may move between two runs: the snapshot must equal one of them
    assert got in (_results(json.loads(before.stdout)), _results(json.loads(after.stdout)))
    assert load_snapshot_host(str(snap)).has_runtime


# -- has_runtime through SnapshotFS ------------------------------------------------------------------


def _snapshot_host(root: Path, patterns: Patterns | None = None) -> Host:
    doc = collect_document(str(root), patterns or gather_patterns(entry_points=False))
    from audit.host.snapshot import host_from_snapshot

    return host_from_snapshot(parse_snapshot(render_document(doc).encode()), name="test.json")


def test_has_runtime_follows_proc_cpuinfo(make_root):
    live = _snapshot_host(make_root(TREES["this-vm-live"]()))
    image = _snapshot_host(make_root(rhel_image()))
    assert live.mode is image.mode is TargetMode.SNAPSHOT
    assert live.has_runtime and not image.has_runtime
    assert live.root == "test.json"


def test_every_declared_fact_path_is_a_pattern():
    pats = gather_patterns(entry_points=False)
    assert {p for spec in FACTS.values() for p in spec.paths} <= set(pats.paths)
    assert "/dev/kvm" in pats.paths  # from a check's reads, not a fact
    assert "/boot/config-{release}" in pats.paths
    assert any(p.startswith("/sys/devices/system/node/*/") for p in pats.paths)


def test_collect_paths_hook_adds_paths(make_root):
    from audit import hookimpl
    from audit.plugins import make_plugins

    class Extra:
        @hookimpl
        def hostaudit_collect_paths(self):
            return ["/etc/ovs/*.conf"]

    plugins = make_plugins(entry_points=False)
    plugins.pm.register(Extra(), name="ovs")
    import audit.plugins as plugmod

    real = plugmod.make_plugins
    plugmod.make_plugins = lambda **kw: plugins
    try:
        pats = gather_patterns(entry_points=False)
    finally:
        plugmod.make_plugins = real
    assert "/etc/ovs/*.conf" in pats.paths
    root = make_root({"etc/ovs/a.conf": "x=1\n", "etc/ovs/b.txt": "no\n"})
    host = _snapshot_host(root, pats)
    assert host.read_text("/etc/ovs/a.conf") == "x=1\n"
    assert host.listdir("/etc/ovs") == ["a.conf", "b.txt"]
    assert host.kind("/etc/ovs/b.txt") is None  # listed, not captured: unknown, not invented


# -- SnapshotFS answers exactly like RootFS -----------------------------------------------------------


def _outcome(fn):
    try:
        return ("ok", fn())
    except (FactUnavailable, FactError) as exc:
        return (type(exc).__name__, str(exc))


def _answers(fs, path: str) -> dict:
    return {
        "kind": _outcome(lambda: fs.kind(path)),
        "kind-nofollow": _outcome(lambda: fs.kind(path, follow=False)),
        "readlink": _outcome(lambda: fs.readlink(path)),
        "listdir": _outcome(lambda: fs.listdir(path)),
        "read": _outcome(lambda: fs.read_bytes(path)),
        "read-small": _outcome(lambda: fs.read_bytes(path, limit=4)),
    }


PROBES = [
    "/", "/etc", "/etc/hostname", "/etc/os-release", "/vmlinuz", "/boot/vmlinuz", "/lib/modules",
    "/lib/modules/6.1.0-56-amd64/modules.builtin", "/lib/../lib/./modules", "/../../etc/os-release",
    "/etc/sysctl.d/10-escape.conf", "/etc/sysctl.d/20-abs.conf", "/etc/loop1", "/etc/loop1/x",
    "/etc/os-release/child", "/dev/null", "/etc/systemd/system/ksm.service", "/run/fifo", "/run/sock",
    "/nope", "/nope/deeper", "/etc/dirlink", "/etc/dirlink/hostname", "/etc/weird", "/etc/big",
    "/etc/dotdir/.hidden", "/etc/rel-up", "/etc/sysctl.d",
]


def _probe_tree(make_root) -> Path:
    root = make_root({
        "etc/hostname": "h1\n",
        "etc/os-release": "ID=debian\n",
        "boot/vmlinuz-6.1.0-56-amd64": "k",
        "vmlinuz": Link("boot/vmlinuz-6.1.0-56-amd64"),
        "boot/vmlinuz": Link("/vmlinuz"),
        "lib": Link("usr/lib"),
        "usr/lib/modules/6.1.0-56-amd64/modules.builtin": "x\n",
        "etc/sysctl.d/10-escape.conf": Link("../../../../../../etc/os-release"),
        "etc/sysctl.d/20-abs.conf": Link("/etc/hostname"),
        "etc/loop1": Link("loop2"),
        "etc/loop2": Link("/etc/loop1"),
        "etc/systemd/system/ksm.service": Link("/dev/null"),
        "etc/dirlink": Link("."),
        "etc/rel-up": Link("../../../.."),
        "etc/weird": "caf\xe9 \x00 binary\n".encode("latin-1"),
        "etc/big": "y" * 5000,
        "etc/dotdir/.hidden": "h",
        "run": Dir(),
    })
    os.mkfifo(root / "run/fifo")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(root / "run/sock"))
    finally:
        sock.close()
    return root


def test_snapshot_fs_answers_like_rootfs(make_root):
    root = _probe_tree(make_root)
    rootfs = RootFS(str(root))
    rec = Recorder(rootfs)
    for p in PROBES:
        rec.add(p)
    rec.add("/etc/*/*")
    snap = parse_snapshot(render_document(rec.document(
        mode="image", root=str(root), hostname=None, collected_at="x", tool_version="t", patterns=PROBES)).encode())
    snapfs = SnapshotFS(snap, name="t")
    for p in [*PROBES, "/etc/dotdir", "/etc/systemd/system"]:
        assert _answers(snapfs, p) == _answers(rootfs, p), p
    assert snapfs.describe() == rootfs.describe()


def test_a_path_never_captured_is_unavailable_not_absent(make_root):
    root = make_root({"etc/hostname": "h\n", "etc/other": "o\n"})
    rec = Recorder(RootFS(str(root)))
    rec.add("/etc/hostname")
    snap = parse_snapshot(render_document(rec.document(
        mode="image", root="/r", hostname=None, collected_at="x", tool_version="t", patterns=[])).encode())
    fs = SnapshotFS(snap, name="t")
    with pytest.raises(FactUnavailable, match="not captured"):
        fs.read_bytes("/etc/other")
    with pytest.raises(FactUnavailable, match="listing was not captured"):
        fs.listdir("/etc")
    assert fs.kind("/etc") == "dir"


def test_large_files_are_compressed_and_glob_matches_capped(make_root):
    rel = "6.1.0-56-amd64"
    root = make_root({
        f"boot/config-{rel}": kconfig_sample(f"debian12-config-{rel}"),
        f"boot/vmlinuz-{rel}": "k",
        f"boot/initrd.img-{rel}": b"\1" * (2 * 1024 * 1024),
    })
    doc = collect_document(str(root), gather_patterns(entry_points=False))
    cfg = doc["entries"][f"/boot/config-{rel}"]
    assert cfg["encoding"] == "gzip+base64"
    assert len(cfg["data"]) < cfg["size"] / 3
    initrd = doc["entries"][f"/boot/initrd.img-{rel}"]
    assert "omitted" in initrd and "data" not in initrd
    assert len(render_document(doc)) < 200_000


def test_encode_content_round_trips():
    for data in (b"", b"plain\n", "ünïcode\n".encode(), b"\xff\xfe\x00", b"a" * 5000, os.urandom(3000)):
        enc = encode_content(data)
        doc = {"format": "hostaudit-snapshot", "schema_version": 1, "source": {"mode": "image"},
               "entries": {"/f": {"type": "file", **enc}}}
        assert SnapshotFS(parse_snapshot(json.dumps(doc).encode()), name="t").read_bytes("/f") == data


def test_the_cap_is_a_clear_error(make_root, tmp_path):
    noise = base64.b64encode(random.Random(1).randbytes(30000)).decode()  # does not compress away
    root = make_root({"etc/os-release": "ID=x\n" + noise})
    out = hostaudit("collect", "--root", str(root), "--max-size", "10K", "-o", str(tmp_path / "s.json"),
                    "--no-entry-points")
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1
    assert "more than 10240 bytes" in out.stderr and "/etc/os-release" in out.stderr
    assert not (tmp_path / "s.json").exists()


def test_collect_refuses_a_missing_root(tmp_path):
    out = hostaudit("collect", "--root", str(tmp_path / "nope"))
    assert out.returncode == 2 and "not a directory" in out.stderr


def test_write_is_atomic_and_keeps_the_old_file_on_error(make_root, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "s.json"
    target.write_text("old")
    root = make_root({"etc/os-release": base64.b64encode(random.Random(2).randbytes(30000)).decode()})
    assert hostaudit("collect", "--root", str(root), "--max-size", "1K", "-o", str(target)).returncode == 2
    assert target.read_text() == "old"
    assert hostaudit("collect", "--root", str(root), "-o", str(target)).returncode == 0
    assert json.loads(target.read_text())["format"] == "hostaudit-snapshot"
    assert [p.name for p in out_dir.iterdir()] == ["s.json"]  # no temporary file left behind


def test_a_gzipped_snapshot_is_accepted(make_root, tmp_path):
    root = make_root(rhel_image())
    doc = collect_document(str(root), gather_patterns(entry_points=False))
    snap = tmp_path / "s.json.gz"
    snap.write_bytes(gzip.compress(render_document(doc).encode()))
    assert load_snapshot_host(str(snap)).kernel_release.release == "5.14.0-570.18.1.el9_6.x86_64"


# -- hostile and broken snapshots: refused in one line, exit 2 ---------------------------------------


def _doc(entries=None, **top):
    doc = {"format": "hostaudit-snapshot", "schema_version": 1, "source": {"mode": "live"},
           "entries": entries if entries is not None else {"/proc/cpuinfo": {"type": "file", "encoding": "utf-8",
                                                                              "data": "x", "size": 1}}}
    doc.update(top)
    return json.dumps(doc).encode()


def _f(data: str = "x", **kw) -> dict:
    return {"type": "file", "encoding": "utf-8", "data": data, "size": len(data.encode()), **kw}


HOSTILE = {
    "not-json": b"{this is not json",
    "truncated-json": _doc()[:-20],
    "empty": b"",
    "binary": b"\x7fELF\x02\x01\x01",
    "array": b"[1, 2]",
    "wrong-format": _doc(format="something-else"),
    "schema-2": _doc(schema_version=2),
    "schema-bool": _doc(schema_version=True),
    "schema-string": _doc(schema_version="1"),
    "no-entries": json.dumps({"format": "hostaudit-snapshot", "schema_version": 1,
                              "source": {"mode": "live"}}).encode(),
    "entries-list": _doc(entries=[]),
    "mode-bad": _doc(source={"mode": "remote"}),
    "unknown-top-key": _doc(extra=1),
    "relative-path": _doc({"etc/passwd": _f()}),
    "dotdot-path": _doc({"/etc/../../passwd": _f()}),
    "dot-path": _doc({"/etc/./passwd": _f()}),
    "double-slash": _doc({"/etc//passwd": _f()}),
    "trailing-slash": _doc({"/etc/": {"type": "dir"}}),
    "nul-in-path": _doc({"/etc/pass\u0000wd": _f()}),
    "huge-path": _doc({"/" + "a" * 5000: _f()}),
    "huge-component": _doc({"/" + "a" * 300: _f()}),
    "entry-not-object": _doc({"/a": "file"}),
    "unknown-type": _doc({"/a": {"type": "device"}}),
    "type-int": _doc({"/a": {"type": 1}}),
    "extra-key": _doc({"/a": {**_f(), "mode": 420}}),
    "size-mismatch": _doc({"/a": {**_f("abc"), "size": 2}}),
    "size-negative": _doc({"/a": {**_f(""), "size": -1}}),
    "size-huge": _doc({"/a": {"type": "file", "omitted": "x", "size": 10 ** 30}}),
    "size-float": _doc({"/a": {**_f("a"), "size": 1.0}}),
    "size-bool": _doc({"/a": {**_f("a"), "size": True}}),
    "data-not-string": _doc({"/a": {"type": "file", "encoding": "utf-8", "data": 5, "size": 1}}),
    "bad-encoding": _doc({"/a": {"type": "file", "encoding": "rot13", "data": "x", "size": 1}}),
    "bad-base64": _doc({"/a": {"type": "file", "encoding": "base64", "data": "!!!notbase64", "size": 1}}),
    "bad-gzip": _doc({"/a": {"type": "file", "encoding": "gzip+base64", "data": base64.b64encode(b"nogzip").decode(),
                             "size": 1}}),
    "truncated-gzip": _doc({"/a": {"type": "file", "encoding": "gzip+base64",
                                   "data": base64.b64encode(gzip.compress(b"x" * 1000)[:-12]).decode(), "size": 1000}}),
    "gzip-bomb": _doc({"/a": {"type": "file", "encoding": "gzip+base64",
                              "data": base64.b64encode(gzip.compress(b"\0" * (40 * 1024 * 1024))).decode(),
                              "size": 40 * 1024 * 1024}}),
    "names-not-list": _doc({"/d": {"type": "dir", "names": "a b"}}),
    "name-with-slash": _doc({"/d": {"type": "dir", "names": ["a/b"]}}),
    "name-dotdot": _doc({"/d": {"type": "dir", "names": [".."]}}),
    "name-duplicate": _doc({"/d": {"type": "dir", "names": ["a", "a"]}}),
    "name-int": _doc({"/d": {"type": "dir", "names": [1]}}),
    "link-no-target": _doc({"/l": {"type": "link"}}),
    "link-empty-target": _doc({"/l": {"type": "link", "target": ""}}),
    "link-nul-target": _doc({"/l": {"type": "link", "target": "/a\u0000b"}}),
    "under-a-file": _doc({"/a": _f(), "/a/b": _f()}),
    "under-a-link": _doc({"/a": {"type": "link", "target": "/x"}, "/a/b": _f()}),
    "root-is-file": _doc({"/": _f()}),
    "duplicate-key": b'{"format": "hostaudit-snapshot", "schema_version": 1, "source": {"mode": "live"},'
                     b' "entries": {"/a": {"type": "absent"}, "/a": {"type": "absent"}}}',
    "deep-nesting": b'{"a":' * 100000 + b"1" + b"}" * 100000,
    "text-truncated": b"hostaudit-snapshot 1\nmeta mode live\nfile /a b64\nYWJj\n",
    "text-no-end": b"hostaudit-snapshot 1\nmeta mode live\nabsent /a\n",
    "text-version-9": b"hostaudit-snapshot 9\nmeta mode live\nend\n",
    "text-bad-record": b"hostaudit-snapshot 1\nmeta mode live\nchmod /a 777\nend\n",
    "text-bad-path": b"hostaudit-snapshot 1\nmeta mode live\nabsent /a/../b\nend\n",
    "text-relative": b"hostaudit-snapshot 1\nmeta mode live\nabsent a\nend\n",
    "text-bad-b64": b"hostaudit-snapshot 1\nmeta mode live\nfile /a b64\n*&^%\n.\nend\n",
    "text-bad-hex": b"hostaudit-snapshot 1\nmeta mode live\nfile /a hex\n zz 41\n.\nend\n",
    "text-bad-field": b"hostaudit-snapshot 1\nmeta mode live\nabsent /a\"b\nend\n",
    "text-nul-field": b"hostaudit-snapshot 1\nmeta mode live\nabsent %L2EAYg==\nend\n",
    "text-conflict": b"hostaudit-snapshot 1\nmeta mode live\nabsent /a\nkind /a char\nend\n",
    "text-no-mode": b"hostaudit-snapshot 1\nend\n",
    "text-after-end": b"hostaudit-snapshot 1\nmeta mode live\nend\nabsent /a\n",
    "text-name-outside": b"hostaudit-snapshot 1\nmeta mode live\nname x\nend\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_snapshots_are_refused(name):
    with pytest.raises(UsageError) as info:
        parse_snapshot(HOSTILE[name])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["not-json", "truncated-json", "schema-2", "dotdot-path", "bad-gzip", "gzip-bomb",
                                  "under-a-link", "text-truncated", "deep-nesting", "nul-in-path"])
def test_hostile_snapshots_exit_2_with_one_line(tmp_path, name):
    snap = tmp_path / "bad.json"
    snap.write_bytes(HOSTILE[name])
    out = hostaudit("run", "--snapshot", str(snap), "--no-entry-points")
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"hostaudit: snapshot {snap}: ")
    assert "Traceback" not in out.stderr


def test_a_missing_snapshot_file_exits_2(tmp_path):
    out = hostaudit("run", "--snapshot", str(tmp_path / "nope.json"))
    assert out.returncode == 2 and "cannot read" in out.stderr


def test_text_format_fields_and_listings():
    text = (b"hostaudit-snapshot 1\nmeta mode image\nmeta root /srv/img\nmeta tool collect.sh-0.1.0\n"
            b"dir /etc\nname hostname\nname %c3BhY2UgbmFtZQ==\nname !ff2e636f6e66\n"
            b"file /etc/hostname b64\naG9z\ndDEK\n.\n"
            b"dir /etc -\nlink /vmlinuz boot/vmlinuz-1\nkind /dev/kvm char\nabsent /proc\n"
            b"file /boot/initrd large 99999999\nfile /etc/shadow denied\nend\n")
    snap = parse_snapshot(text)
    fs = SnapshotFS(snap, name="t")
    assert snap.mode == "image" and snap.root == "/srv/img" and snap.hostname == "host1"
    assert fs.listdir("/etc") == sorted(["hostname", "space name", os.fsdecode(b"\xff.conf")])
    assert fs.read_bytes("/etc/hostname") == b"host1\n"
    assert fs.readlink("/vmlinuz") == "boot/vmlinuz-1"
    assert fs.kind("/dev/kvm") == "char"
    assert fs.kind("/proc/cpuinfo") is None
    with pytest.raises(FactError, match="larger than"):
        fs.read_bytes("/boot/initrd")
    with pytest.raises(FactError, match="permission denied"):
        fs.read_bytes("/etc/shadow")


def test_kernel_images_and_tools_travel_as_presence_only(make_root, tmp_path):
    """A snapshot names /vmlinuz's target and that grub tools exist without carrying their bytes."""
    from audit.capture import gather_patterns
    from audit.host.collect import collect_document

    big = b"\x7fELF" + b"\0" * (3 << 20)
    root = make_root({
        "boot/vmlinuz-6.1.0-9-amd64": big,
        "vmlinuz": Link("boot/vmlinuz-6.1.0-9-amd64"),
        "usr/sbin/update-grub": big,
        "boot/config-6.1.0-9-amd64": "CONFIG_KSM=y\n",
    })
    doc = collect_document(str(root), gather_patterns(entry_points=False))
    entries = doc["entries"]
    assert entries["/vmlinuz"] == {"type": "link", "target": "boot/vmlinuz-6.1.0-9-amd64"}
    for path in ("/boot/vmlinuz-6.1.0-9-amd64", "/usr/sbin/update-grub"):
        assert entries[path]["type"] == "file" and "data" not in entries[path], path
    assert "data" in entries["/boot/config-6.1.0-9-amd64"]
    assert len(json.dumps(doc)) < 200_000
