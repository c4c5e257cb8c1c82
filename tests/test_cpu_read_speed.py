"""The CPU commands' fast read of a collect.sh text snapshot (``parse_snapshot(partial=True,
skim=True)``, issue #12): its records are found without splitting the whole file, and give exactly
what the full partial reader gives; whatever is not plainly written (an encoded path field, a
carriage return, a truncated file) is read by the full reader, so it is refused with the same error."""

from __future__ import annotations

import base64
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from audit.cpu import sources
from audit.errors import UsageError
from audit.host import snapshot
from audit.host.snapshot import SnapshotError, parse_snapshot

DASH = shutil.which("dash") or "/bin/sh"
CPUINFO = b"processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\nflags\t\t: fpu vmx sse2\n\n"


def _b64_lines(data: bytes) -> bytes:
    enc = base64.b64encode(data)
    return b"".join(enc[i:i + 76] + b"\n" for i in range(0, len(enc), 76))


def _hex_lines(data: bytes) -> bytes:
    return b"".join(b" " + b" ".join(b"%02x" % c for c in data[i:i + 16]) + b"\n" for i in range(0, len(data), 16))


def _text(*records: bytes, end: bytes = b"end\n") -> bytes:
    return b"hostaudit-snapshot 1\n" + b"".join(records) + end


def _file(path: bytes, data: bytes, how: bytes = b"b64") -> bytes:
    body = _b64_lines(data) if how == b"b64" else _hex_lines(data)
    return b"file " + path + b" " + how + b"\n" + body + b".\n"


META = b"meta tool collect.sh-0.1\nmeta mode live\nmeta root /\nmeta hostname h1\n"
PLAIN = _text(META, b"absent /bin\ndir /etc\nname hostname\nname os-release\n\n", _file(b"/etc/hostname", b"h1\n"),
              b"link /etc/os-release ../usr/lib/os-release\n", _file(b"/proc/cpuinfo", CPUINFO),
              b"dir /proc/sys -\nkind /dev/kvm char 660 0 36\nfile /boot/initrd large 99999999\n",
              _file(b"/proc/sys/kernel/osrelease", b"6.1.0-13-amd64\n", b"hex"), b"file /etc/shadow denied\n")


def _grouped(blob: bytes) -> tuple[dict[str, str], dict[str, list]]:
    """What the full partial reader indexes: ``_split_text``'s records by path."""
    meta, records = snapshot._split_text(blob)
    by_path: dict[str, list] = {}
    for path, rec in records:
        by_path.setdefault(path, []).append(rec)
    return meta, by_path


def _same_records(blob: bytes) -> bool:
    """The skim finds what a split finds (True), or leaves the snapshot to the split (False)."""
    got = snapshot._skim_text(blob)
    if got is None:
        return False
    meta, index = got
    want_meta, want = _grouped(blob)
    assert meta == want_meta
    for path, recs in want.items():
        assert index[path] == recs, path
    for probe in ("/", "/nope", "/proc", "/proc/cpuinfo/x", "/etc/hostname ", "/\u0100"):
        assert (probe in index) == (probe in want), probe
        prefix = probe.rstrip("/") + "/"
        assert index.first_under(prefix) == min((p for p in want if p.startswith(prefix)), default=None)
    assert dict(index) == want and len(index) == len(want)
    return True


def _sources(paths: list[str], monkeypatch: pytest.MonkeyPatch, *, skim: bool) -> list:
    """``load_files`` one by one (serially), with the fast read or with the full partial reader."""
    with monkeypatch.context() as m:
        m.setattr(sources, "PARALLEL_FROM", 10**9)
        if not skim:
            m.setattr(snapshot, "_skim_text", lambda blob: None)
        return sources.load_files(paths)


def _load(path: Path, monkeypatch: pytest.MonkeyPatch, *, skim: bool) -> tuple[str, object]:
    try:
        return "ok", _sources([str(path)], monkeypatch, skim=skim)
    except UsageError as exc:
        return "refused", str(exc)


# -- real snapshots ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bench_pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Snapshots as the fleet benchmark makes them from the sample hosts (half collect.sh text)."""
    from benchmarks import fleet

    folder = tmp_path_factory.mktemp("bench")
    fleet.generate(folder, 12, seed=3)
    return folder


@pytest.fixture(scope="module")
def collect_sh_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A snapshot written by collect.sh itself (run by dash) of a live RHEL 9 host."""
    from audit.capture import gather_patterns
    from audit.host.collect import render_script
    from tests import trees
    from tests.conftest import build_tree

    base = tmp_path_factory.mktemp("collect")
    tree = trees.rhel9_tree()
    tree.update(trees.live_tree(cpuinfo="intel-xeon-gold-6132-skylake-sp.txt", release=trees.EL9_RELEASE))
    build_tree(base / "root", tree)
    script = base / "collect.sh"
    script.write_text(render_script(gather_patterns(entry_points=False)))
    out = subprocess.run([DASH, str(script), str(base / "root")], capture_output=True, timeout=300, check=True)
    dest = base / "el9.snap"
    dest.write_bytes(out.stdout)
    return dest


def test_real_snapshots_are_skimmed_to_what_a_split_finds(bench_pool: Path, collect_sh_snapshot: Path) -> None:
    texts = [*sorted(bench_pool.glob("*.snap")), collect_sh_snapshot]
    assert len(texts) >= 7
    for path in texts:
        assert _same_records(path.read_bytes()), path.name  # the fast path is taken, and agrees


def test_cpu_sources_are_what_the_full_partial_reader_gives(bench_pool: Path, collect_sh_snapshot: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [str(p) for p in sorted(bench_pool.iterdir()) if not p.name.startswith(".")] + [str(collect_sh_snapshot)]
    assert _sources(paths, monkeypatch, skim=True) == _sources(paths, monkeypatch, skim=False)


def test_a_hand_written_snapshot_with_every_record() -> None:
    assert _same_records(PLAIN)
    snap = parse_snapshot(PLAIN, partial=True, skim=True)
    fs = snapshot.SnapshotFS(snap, name="x")
    assert snap.hostname == "h1" and fs.read_bytes("/proc/cpuinfo") == CPUINFO
    assert fs.read_bytes("/proc/sys/kernel/osrelease") == b"6.1.0-13-amd64\n"  # hex content
    assert fs.listdir("/etc") == ["hostname", "os-release"] and fs.kind("/dev/kvm") == "char"
    assert "/proc/sys" in snap.implicit_dirs and "/usr" not in snap.implicit_dirs


# -- odd snapshots: the same answer, or the same error, as the full partial reader ----------------------
def _variants() -> dict[str, bytes]:
    cpu = _file(b"/proc/cpuinfo", CPUINFO)
    encoded = b"%" + base64.b64encode(b"/proc/cpuinfo")
    return {
        "plain": PLAIN,
        "duplicate record": _text(META, cpu, b"absent /x\n", cpu, b"absent /x\n"),
        "conflicting duplicate": _text(META, cpu, _file(b"/proc/cpuinfo", CPUINFO + b"\n")),
        "dir - then its listing": _text(META, b"dir /proc -\n", cpu, b"dir /proc\nname cpuinfo\n"),
        "encoded path": _text(META, _file(encoded, CPUINFO)),
        "encoded path and a plain one": _text(META, _file(encoded, CPUINFO), cpu),
        "bad encoded path": _text(META, b"absent %!!\n", cpu),
        "truncated": PLAIN[:len(PLAIN) // 2],
        "truncated in content": _text(META, cpu)[:-30],
        "no end": _text(META, cpu, end=b""),
        "data after end": _text(META, cpu, end=b"end\nabsent /x\n"),
        "blank lines after end": _text(META, cpu, end=b"end\n\n \n"),
        "bad base64 cpuinfo": _text(META, b"file /proc/cpuinfo b64\n!!!!\n.\n"),
        "bad hex cpuinfo": _text(META, b"file /proc/cpuinfo hex\n zz\n.\n"),
        "cpuinfo large": _text(META, b"file /proc/cpuinfo large 99999999\n"),
        "cpuinfo bad size": _text(META, b"file /proc/cpuinfo large x\n"),
        "cpuinfo denied": _text(META, b"file /proc/cpuinfo denied\n"),
        "cpuinfo a directory": _text(META, b"dir /proc/cpuinfo -\n"),
        "cpuinfo under a file": _text(META, b"file /proc failed\n", cpu),
        "bad path": _text(META, _file(b"/proc//cpuinfo", CPUINFO)),
        "bad record": _text(META, b"dir /proc x\n", cpu),
        "unknown record": _text(META, b"frob /proc\n", cpu),
        "name outside a listing": _text(META, cpu, b"name x\n"),
        "unknown meta": _text(META, b"meta colour blue\n", cpu),
        "bad meta field": _text(META, b"meta hostname %!!\n", cpu),
        "carriage returns": _text(META, cpu).replace(b"\n", b"\r\n"),
        "a space in content": _text(META, b"file /proc/cpuinfo b64\nAA AA\n.\n", cpu),
        "a dot line inside base64": _text(META, b"file /etc/motd b64\nAAAA\n.\nAAAA\n.\n", cpu),
        "a dot line inside base64, then a record": _text(META, b"file /etc/motd b64\nAAAA\n.\nabsent /x\n.\n", cpu),
        "no hostname meta": _text(META.replace(b"meta hostname h1\n", b""), _file(b"/etc/hostname", b"h2\n"), cpu),
        "image": _text(META.replace(b"live", b"image")),
        "header only": b"hostaudit-snapshot 1\n",
        "other version": b"hostaudit-snapshot 2\nend\n",
    }


@pytest.mark.parametrize("name", sorted(_variants()))
def test_odd_snapshots_read_as_the_full_partial_reader_reads_them(name: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    blob = _variants()[name]
    path = tmp_path / "host.snap"
    path.write_bytes(blob)
    got = _load(path, monkeypatch, skim=True)
    assert got == _load(path, monkeypatch, skim=False)
    if name in ("plain", "duplicate record", "dir - then its listing", "no hostname meta"):
        assert got[0] == "ok"
    if name.startswith(("encoded path", "carriage", "truncated", "bad encoded", "a dot line")):
        assert snapshot._skim_text(blob) is None  # left to the full reader
    try:
        snapshot._split_text(blob)
    except SnapshotError:
        return
    _same_records(blob)


def test_a_real_snapshot_cut_anywhere_reads_as_before(bench_pool: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    blob = next(iter(sorted(bench_pool.glob("*.snap")))).read_bytes()
    rng = random.Random(5)
    path = tmp_path / "cut.snap"
    for cut in [*rng.sample(range(len(blob)), 12), len(blob) - 1, len(blob) - 4]:
        path.write_bytes(blob[:cut])
        assert _load(path, monkeypatch, skim=True) == _load(path, monkeypatch, skim=False), cut


# -- arbitrary input ------------------------------------------------------------------------------------
def test_skim_agrees_with_the_split_on_arbitrary_text() -> None:
    """On whatever the fuzz suite's text generator makes: the skim leaves it to the split, or finds
    exactly what the split finds, or (its only freedom) takes a snapshot the split refuses."""
    from hypothesis import given
    from hypothesis import strategies as st

    from tests.test_fuzz import FUZZ, TEXT_RECORDS

    texts = st.one_of(TEXT_RECORDS.map(lambda ls: ("hostaudit-snapshot 1\n" + "\n".join(ls)).encode()),
                      TEXT_RECORDS.map(lambda ls: ("hostaudit-snapshot 1\n" + "\n".join(ls) + "\nend\n").encode()))

    @FUZZ
    @given(texts)
    def check(blob: bytes) -> None:
        try:
            snapshot._split_text(blob)
        except SnapshotError:
            return
        _same_records(blob)

    check()
