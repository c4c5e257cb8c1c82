"""benchmarks/fleet.py makes the snapshots the fleet figures in the README are measured on: running
hosts (mode live), each with its own CPU and runtime state, as many processors as asked for."""

from __future__ import annotations

from pathlib import Path

from audit.cpu.sources import load_input
from audit.host.snapshot import load_snapshot
from audit.parsers.cpuinfo import parse_cpuinfo


def test_the_generated_hosts_are_running_hosts_each_with_its_own_state(tmp_path: Path) -> None:
    from benchmarks import fleet

    fleet.generate(tmp_path, 9, seed=5)
    snaps = [load_snapshot(str(p)) for p in sorted(tmp_path.glob("kvm-*"))]
    assert len(snaps) == 9 and {p.suffix for p in tmp_path.glob("kvm-*")} == {".json", ".snap"}
    assert {s.mode for s in snaps} == {"live"} and {s.root for s in snaps} == {"/"}
    cpus = {s.entries["/proc/cpuinfo"].data for s in snaps}
    thp = {s.entries["/sys/kernel/mm/transparent_hugepage/enabled"].data for s in snaps
           if "/sys/kernel/mm/transparent_hugepage/enabled" in s.entries}
    assert len(cpus) == 9 and len(thp) > 1
    hosts = load_input(str(tmp_path), allow_dir=True)
    assert all(h.kernel_release for h in hosts)  # a running kernel, which only a live snapshot has


def test_processors_asked_for(tmp_path: Path) -> None:
    from benchmarks import fleet

    fleet.generate(tmp_path, 3, seed=5, processors=8)
    for p in tmp_path.glob("kvm-*"):
        cpu = parse_cpuinfo(load_snapshot(str(p)).entries["/proc/cpuinfo"].data.decode())
        assert cpu.processors == 8 and not cpu.flags_differ
