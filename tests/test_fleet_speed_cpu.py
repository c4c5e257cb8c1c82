"""A big folder for ``cpu baseline`` is read by one process per core: the same sources in the same
order as reading it in this process, hosts of one CPU sharing one set of flags, and a file that
cannot be read refused with the error reading it alone gives."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from audit.cpu import sources
from audit.cpu.sources import CpuSource
from audit.errors import UsageError
from audit.parsers.cpuinfo import CpuInfo, Midr

DATA = Path(__file__).parent / "data" / "cpuinfo"


def _folder(tmp_path: Path, broken: bool) -> list[str]:
    samples = sorted(p for p in DATA.glob("*.txt") if not p.name.startswith("arm64"))[:3]
    paths = []
    for i in range(12):
        dest = tmp_path / f"h{i:02d}.txt"
        dest.write_bytes(samples[i % len(samples)].read_bytes())
        paths.append(str(dest))
    if broken:
        (tmp_path / "h07.txt").write_bytes(b"\0binary")
    return paths


def test_parallel_read_gives_what_a_serial_read_gives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _folder(tmp_path, broken=False)
    monkeypatch.setattr(sources, "PARALLEL_FROM", 10**9)
    serial = sources.load_files(paths)
    monkeypatch.setattr(sources, "PARALLEL_FROM", 4)
    monkeypatch.setattr(sources, "_cores", lambda: 2)
    parallel = sources.load_files(paths)
    assert parallel == serial
    by_flags = {s.cpu.flags: s.cpu.flags for s in parallel}
    assert all(s.cpu.flags is by_flags[s.cpu.flags] for s in parallel)  # one set per CPU model


def test_parallel_read_refuses_a_bad_file_as_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = _folder(tmp_path, broken=True)
    with pytest.raises(UsageError) as alone:
        sources.load_file(paths[7])
    monkeypatch.setattr(sources, "PARALLEL_FROM", 4)
    monkeypatch.setattr(sources, "_cores", lambda: 2)
    with pytest.raises(UsageError) as got:
        sources.load_files(paths)
    assert str(got.value) == str(alone.value)


@pytest.mark.parametrize("flags", [frozenset({"fpu", "vmx", "sse2", "pdpe1gb"}),
                                   frozenset({"a\nb", "c"}),  # a name a hostile libvirt cache could hold
                                   frozenset()])
def test_what_a_worker_sends_is_the_source_it_read(flags: frozenset[str]) -> None:
    cpu = CpuInfo(vendor="GenuineIntel", model_name="Xeon", family="6", model="79", flags=flags, processors=2,
                  midrs=(Midr(0x41, 0xD0C, 3, 1),))
    src = CpuSource(name="h", source="/x/h.snap", kind="snapshot", cpu=cpu, kernel_release="6.1.0-13-amd64",
                    notes=("a note",))
    shared: dict[frozenset[str], frozenset[str]] = {}
    by_text: dict[str, frozenset[str]] = {}
    back = sources._from_wire(pickle.loads(pickle.dumps(sources._to_wire(src))), shared, by_text)
    assert back == src
    assert type(back) is CpuSource and type(back.cpu) is CpuInfo and type(back.cpu.flags) is frozenset
    again = sources._from_wire(pickle.loads(pickle.dumps(sources._to_wire(src))), shared, by_text)
    assert again.cpu.flags is back.cpu.flags  # one set for every host with these flags
