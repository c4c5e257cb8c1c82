"""Reading a snapshot only as far as needed (``parse_snapshot(partial=True)``, what ``hostaudit cpu``
uses): every entry it gives is the entry a full load gives, checked the same way when it is looked up;
a snapshot a full load refuses is refused as soon as the broken part is looked at; and ``cpu
baseline`` / ``cpu compare`` say over a pool exactly what they said reading every snapshot whole."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from audit.cli import cpu as cli_cpu
from audit.cpu.sources import load_input
from audit.errors import FactError, FactUnavailable, UsageError
from audit.host.collect import render_script
from audit.host.snapshot import SnapshotFS, parse_snapshot
from tests import trees
from tests.conftest import build_tree
from tests.test_fleet import capture, deb_tree, run
from tests.test_snapshot import HOSTILE

DASH = shutil.which("dash") or "/bin/sh"


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    """Running hosts of three CPUs, as hostaudit collect JSON and as collect.sh text."""
    from audit.capture import gather_patterns

    base = tmp_path_factory.mktemp("pool")
    folder = base / "pool"
    folder.mkdir()
    capture(base / "a", deb_tree("deb-a"), folder / "deb-a.json")
    el6 = trees.centos6_tree(live=True)
    el6["proc/sys/kernel/hostname"] = "el6-b\n"
    build_tree(base / "b", el6)
    rhel = trees.rhel9_tree()
    rhel.update(trees.live_tree(cpuinfo="intel-xeon-gold-6132-skylake-sp.txt", release=trees.EL9_RELEASE))
    rhel["etc/hostname"] = "el9-c\n"
    build_tree(base / "c", rhel)
    script = base / "collect.sh"
    script.write_text(render_script(gather_patterns(entry_points=False)))
    for name, root in (("el6-b.snap", base / "b"), ("el9-c.snap", base / "c")):
        out = subprocess.run([DASH, str(script), str(root)], capture_output=True, timeout=300, check=True)
        (folder / name).write_bytes(out.stdout)
    return folder


PROBES = ("/", "/proc", "/proc/cpuinfo", "/proc/sys/kernel/hostname", "/proc/sys/kernel/osrelease", "/etc/hostname",
          "/etc", "/boot", "/lib/modules", "/vmlinuz", "/nope", "/proc/nope", "/etc/os-release", "/usr/lib")


def _answers(fs: SnapshotFS, path: str) -> tuple:
    out = []
    for ask in (lambda: fs.read_bytes(path), lambda: fs.listdir(path), lambda: fs.kind(path),
                lambda: fs.readlink(path), lambda: fs.kind(path, follow=False)):
        try:
            out.append(("ok", ask()))
        except (FactUnavailable, FactError) as exc:
            out.append((type(exc).__name__, str(exc)))
    return tuple(out)


def test_every_entry_is_what_a_full_load_gives(pool: Path) -> None:
    for snap_file in sorted(pool.iterdir()):
        blob = snap_file.read_bytes()
        full, part = parse_snapshot(blob), parse_snapshot(blob, partial=True)
        assert (part.hostname, part.mode, part.root, part.patterns) == (full.hostname, full.mode, full.root,
                                                                          full.patterns)
        a, b = SnapshotFS(full, name="x"), SnapshotFS(part, name="x")
        for path in PROBES:
            assert _answers(a, path) == _answers(b, path), (snap_file.name, path)
        assert set(part.entries) == set(full.entries)
        assert all(part.entries[p] == e for p, e in full.entries.items())
        for d in (*PROBES, *full.entries, *full.implicit_dirs):
            assert (d in part.implicit_dirs) == (d in full.implicit_dirs), d


def test_only_what_is_read_is_decoded(pool: Path) -> None:
    snap = parse_snapshot((pool / "el9-c.snap").read_bytes(), partial=True)
    SnapshotFS(snap, name="x").read_bytes("/proc/cpuinfo")
    done = set(snap.entries._done)  # type: ignore[attr-defined]
    assert "/proc/cpuinfo" in done and len(done) <= 4
    assert not any(p.startswith("/boot/config-") for p in done)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_what_a_full_load_refuses_is_refused_when_looked_at(name: str) -> None:
    with pytest.raises(UsageError):
        parse_snapshot(HOSTILE[name])
    with pytest.raises(UsageError) as info:
        snap = parse_snapshot(HOSTILE[name], partial=True)
        for path in snap.entries:  # look at every entry, as a full load does
            snap.entries[path]
    assert "\n" not in str(info.value)


def test_a_broken_entry_not_read_does_not_matter_a_broken_one_read_does(pool: Path) -> None:
    doc = json.loads((pool / "deb-a.json").read_text())
    config = next(p for p in doc["entries"] if p.startswith("/boot/config-"))
    doc["entries"][config]["data"] = "!!! not base64"
    part = parse_snapshot(json.dumps(doc).encode(), partial=True)
    assert SnapshotFS(part, name="x").read_bytes("/proc/cpuinfo")
    with pytest.raises(UsageError, match="not valid base64"):
        parse_snapshot(json.dumps(doc).encode())
    doc["entries"]["/proc/cpuinfo"]["size"] = 1
    part = parse_snapshot(json.dumps(doc).encode(), partial=True)
    with pytest.raises(UsageError, match=r"entry '/proc/cpuinfo': size 1 does not match"):
        SnapshotFS(part, name="x").read_bytes("/proc/cpuinfo")


def test_text_format_fields_and_listings_read_partially() -> None:
    text = (b"hostaudit-snapshot 1\nmeta mode image\nmeta root /srv/img\nmeta tool collect.sh-0.1.0\n"
            b"dir /etc\nname hostname\nname %c3BhY2UgbmFtZQ==\nname !ff2e636f6e66\n"
            b"file /etc/hostname b64\naG9z\ndDEK\n.\n"
            b"dir /etc -\nlink /vmlinuz boot/vmlinuz-1\nkind /dev/kvm char\nabsent /proc\n"
            b"file /boot/initrd large 99999999\nfile /etc/shadow denied\nend\n")
    snap = parse_snapshot(text, partial=True)
    fs = SnapshotFS(snap, name="t")
    assert snap.mode == "image" and snap.root == "/srv/img" and snap.hostname == "host1"
    assert fs.listdir("/etc") == sorted(["hostname", "space name", os.fsdecode(b"\xff.conf")])
    assert fs.read_bytes("/etc/hostname") == b"host1\n"
    assert fs.readlink("/vmlinuz") == "boot/vmlinuz-1"
    assert fs.kind("/dev/kvm") == "char" and fs.kind("/proc/cpuinfo") is None
    with pytest.raises(FactError, match="permission denied"):
        fs.read_bytes("/etc/shadow")


def test_cpu_baseline_and_compare_say_what_full_reads_said(pool: Path) -> None:
    full = cli_cpu.baseline_doc(load_input(str(pool), allow_dir=True))
    proc = run("cpu", "baseline", str(pool), "--format", "json")
    assert proc.returncode in (0, 1), proc.stderr
    assert json.loads(proc.stdout) == json.loads(json.dumps(full))
    assert [h["name"] for h in full["hosts"]] == ["deb-a", "el6-b", "el9-c"]
    a, b = str(pool / "el6-b.snap"), str(pool / "deb-a.json")
    want = cli_cpu.compare_doc(load_input(a)[0], load_input(b)[0])
    proc = run("cpu", "compare", a, b, "--format", "json")
    assert json.loads(proc.stdout) == json.loads(json.dumps(want))
    assert proc.returncode == (0 if want["migration_safe"] else 1)


def test_cpu_inputs_are_refused_as_before(pool: Path, tmp_path: Path) -> None:
    image = tmp_path / "image.json"
    capture(tmp_path / "img", trees.debian12_tree(), image)
    for bad, message in ((image, "no /proc/cpuinfo in it (a snapshot of an image has no CPU)"),
                         (tmp_path / "broken.json", "not valid JSON")):
        if bad.name == "broken.json":
            bad.write_text("{")
        proc = run("cpu", "baseline", str(pool), str(bad))
        assert proc.returncode == 2 and proc.stderr.startswith(f"hostaudit: snapshot {bad}: "), proc.stderr
        assert message in proc.stderr
        with pytest.raises(UsageError) as old:
            load_input(str(bad))
        assert proc.stderr.strip() == f"hostaudit: {old.value}"


def _read_all(blob: bytes, *, partial: bool) -> tuple[str, object]:
    """('ok', what a reader sees of every entry) or ('refused', None); a partial read looks at all."""
    try:
        snap = parse_snapshot(blob, partial=partial)
        entries = {p: snap.entries[p] for p in snap.entries}
        return "ok", (entries, snap.hostname, snap.mode, snap.root,
                      sorted(d for p in entries for d in _parents(p) if d in snap.implicit_dirs))
    except UsageError as exc:
        assert str(exc) and "\n" not in str(exc)
        return "refused", None


def _parents(path: str) -> list[str]:
    out = []
    while path not in ("/", ""):
        path = path.rsplit("/", 1)[0] or "/"
        out.append(path)
    return out



def _fuzz_strategy():  # the fuzz suite's own generators: arbitrary bytes, JSON and line-format snapshots
    from hypothesis import strategies as st

    from tests.test_fuzz import JSON_SNAPSHOTS, TEXT_RECORDS

    return st.one_of(st.binary(max_size=300), JSON_SNAPSHOTS,
                     TEXT_RECORDS.map(lambda ls: ("hostaudit-snapshot 1\n" + "\n".join(ls)).encode()),
                     TEXT_RECORDS.map(lambda ls: ("hostaudit-snapshot 1\n" + "\n".join(ls) + "\nend\n").encode()))


def test_partial_and_full_reads_agree_on_arbitrary_input() -> None:
    from hypothesis import given

    from tests.test_fuzz import FUZZ

    @FUZZ
    @given(_fuzz_strategy())
    def check(blob: bytes) -> None:
        assert _read_all(blob, partial=True) == _read_all(blob, partial=False)

    check()
