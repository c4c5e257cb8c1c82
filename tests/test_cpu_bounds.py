"""/proc/cpuinfo parsing is bounded whatever the input: limits that raise ParseError naming what was
exceeded, memory counted with tracemalloc and work counted by calls, never timed; and the files the
cpu commands read go through the capped reader.

The hostile inputs are generated here: 16 MB with two million distinct flags (the case that took
918 MB and 12 s), and the same mass spread over thousands of processors.
"""

from __future__ import annotations

import os
import re
import tracemalloc
from collections.abc import Callable

import pytest

from audit.errors import ParseError
from audit.host.fs import MAX_READ
from audit.parsers import cpuinfo
from audit.parsers.cpuinfo import (
    MAX_DISTINCT_FLAGS,
    MAX_FLAGS_PER_LINE,
    MAX_PROCESSORS,
    MAX_VALUE_CHARS,
    parse_cpuinfo,
)
from tests.conftest import cpuinfo_sample
from tests.test_snapshot import hostaudit

HASWELL = "intel-xeon-e5-2680v3-haswell-ep.txt"
SKYLAKE = "intel-xeon-gold-6132-skylake-sp.txt"


def two_million_flags() -> str:
    """16 MB: one processor whose flags line holds 2,000,000 distinct words."""
    words = " ".join(f"f{i:06x}" for i in range(2_000_000))
    return f"processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: {words}\n"


def spread_flags(processors: int = 4000, per_line: int = 500) -> str:
    """16 MB of processors, each with its own 500 flags: few per line, millions in all."""
    blocks = []
    for p in range(processors):
        flags = " ".join(f"x{p:04x}_{i:03x}" for i in range(per_line))
        blocks.append(f"processor\t: {p}\nvendor_id\t: GenuineIntel\nflags\t\t: {flags}\n")
    return "\n".join(blocks)


def real_host(processors: int) -> str:
    """A real Skylake-SP processor block repeated, renumbered: a big host that parses."""
    block = cpuinfo_sample(SKYLAKE).read_text().strip()
    return "\n\n".join(re.sub(r"(?m)^processor\t: \d+", f"processor\t: {n}", block) for n in range(processors)) + "\n"


def peak_while(fn) -> int:
    """Peak bytes allocated while fn runs (the input is allocated before, so it is not counted)."""
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


# -- limits ----------------------------------------------------------------------------------------


def test_two_million_flags_in_16_mb_are_refused_within_a_megabyte():
    text = two_million_flags()
    assert len(text) > 15_000_000

    def parse() -> None:
        with pytest.raises(ParseError) as err:
            parse_cpuinfo(text)
        assert err.value.line == 3 and "flags line longer than" in err.value.problem

    assert peak_while(parse) < 1_000_000


def test_one_flag_more_than_a_line_may_hold():
    words = [f"f{i}" for i in range(MAX_FLAGS_PER_LINE + 1)]
    ok = parse_cpuinfo("processor\t: 0\nflags\t\t: " + " ".join(words[:-1]) + "\n")
    assert len(ok.flags) == MAX_FLAGS_PER_LINE == 4096
    with pytest.raises(ParseError) as err:
        parse_cpuinfo("processor\t: 0\nflags\t\t: " + " ".join(words) + "\n")
    assert err.value.line == 2
    assert err.value.problem == "more than 4096 flags on one processor's flags line: not a /proc/cpuinfo"


def test_distinct_flags_across_processors_are_capped_within_a_megabyte():
    text = spread_flags()
    assert len(text) > 15_000_000

    def parse() -> None:
        with pytest.raises(ParseError) as err:
            parse_cpuinfo(text)
        assert err.value.problem == f"more than {MAX_DISTINCT_FLAGS} distinct flags: not a /proc/cpuinfo"
        # the 9th processor brings the 4,500th flag: the parser stopped there, 8 blocks of 4 lines in
        assert err.value.line == 8 * 4 + 3

    assert peak_while(parse) < 1_000_000


def test_processors_are_capped():
    text = "".join(f"processor\t: {n}\nflags\t\t: fpu\n\n" for n in range(MAX_PROCESSORS + 1))
    with pytest.raises(ParseError) as err:
        parse_cpuinfo(text)
    assert err.value.problem == f"more than {MAX_PROCESSORS} processors: not a /proc/cpuinfo"


def test_a_value_longer_than_any_real_one():
    with pytest.raises(ParseError) as err:
        parse_cpuinfo("processor\t: 0\nmodel name\t: " + "x" * (MAX_VALUE_CHARS + 1) + "\nflags\t: fpu\n")
    assert err.value.line == 2 and "'model name' value longer than 1024 characters" in err.value.problem
    # lines hostaudit does not read may be anything: they are skipped, not copied
    cpu = parse_cpuinfo("processor\t: 0\nbugs\t\t: " + "y " * 200_000 + "\nflags\t: fpu\n")
    assert cpu.flags == {"fpu"}


# -- work and memory on real-shaped input ----------------------------------------------------------


class CountingWords:
    """Stands in for the parser's flags line splitter and counts how many flags lines it splits."""

    def __init__(self, pattern: Callable[[str], list[str]]) -> None:
        self.pattern = pattern
        self.calls = 0

    def __call__(self, *args):
        self.calls += 1
        return self.pattern(*args)


def test_processors_that_share_a_flags_line_build_one_set(monkeypatch):
    counter = CountingWords(cpuinfo._words)
    monkeypatch.setattr(cpuinfo, "_words", counter)
    cpu = parse_cpuinfo(real_host(2000))
    assert cpu.processors == 2000 and not cpu.flags_differ
    assert counter.calls == 1  # one line split, 1999 compared as strings
    # big.LITTLE-like: two alternating lines, each split once
    text = "".join(f"processor\t: {n}\nFeatures\t: fp asimd{' aes' if n % 2 else ''}\n\n" for n in range(1000))
    counter.calls = 0
    cpu = parse_cpuinfo(text)
    assert counter.calls == 2 and cpu.flags == {"fp", "asimd"} and cpu.flags_differ


def test_a_big_real_host_parses_in_constant_memory():
    text = real_host(2000)  # 3 MB, 2000 processors of 125 flags
    assert len(text) > 2_500_000
    peak = peak_while(lambda: parse_cpuinfo(text))
    assert peak < 300_000  # the sets of one line and the kept fields: not per processor


# -- the cpu commands read through the capped reader -----------------------------------------------


def _one_line_error(out) -> str:
    assert out.returncode == 2 and out.stdout == "", out.stdout
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hostaudit: "), out.stderr
    return lines[0]


def test_the_cpu_commands_refuse_a_hostile_16_mb_cpuinfo(tmp_path):
    hostile = tmp_path / "hostile.txt"
    hostile.write_text(spread_flags())
    good = str(cpuinfo_sample(HASWELL))
    for args in (("compare", str(hostile), good), ("compare", good, str(hostile)), ("baseline", good, str(hostile)),
                 ("models", "--host", str(hostile))):
        line = _one_line_error(hostaudit("cpu", *args))
        assert f"{hostile}:35: neither a snapshot nor a /proc/cpuinfo file (more than 4096 distinct flags" in line


def test_a_cpuinfo_larger_than_any_host_file_is_refused(tmp_path):
    big = tmp_path / "big.txt"
    with big.open("w") as f:
        f.write(cpuinfo_sample(HASWELL).read_text())
        f.write("x" * (MAX_READ + 1))
    line = _one_line_error(hostaudit("cpu", "compare", str(big), str(cpuinfo_sample(HASWELL))))
    assert f"larger than the {MAX_READ}-byte limit of a /proc/cpuinfo file" in line


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs mkfifo")
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "cpuinfo.fifo"
    os.mkfifo(fifo)
    line = _one_line_error(hostaudit("cpu", "compare", str(fifo), str(cpuinfo_sample(HASWELL))))
    assert "not a regular file" in line


def test_a_snapshot_with_a_hostile_cpuinfo(make_root, tmp_path):
    words = " ".join(f"f{i}" for i in range(MAX_FLAGS_PER_LINE + 1))
    root = make_root({"proc/cpuinfo": f"processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: {words}\n"})
    snap = tmp_path / "hostile.json"
    assert hostaudit("collect", "--root", str(root), "-o", str(snap), "--no-entry-points").returncode == 0
    line = _one_line_error(hostaudit("cpu", "compare", str(snap), str(cpuinfo_sample(HASWELL))))
    assert "/proc/cpuinfo:3" in line and "more than 4096 flags" in line
