"""/proc/cpuinfo is split into lines a run at a time (``audit.parsers.cpuinfo._line_runs``), a line
longer than a run on its own and cut to what can matter (``_long_line``), and each distinct key
spelling is looked at once (``_HEADS``). Held here: where the runs end changes nothing, a long line
reads as the whole line would (blank or not, its key, a value too long for it), a full key cache
changes nothing, and memory stays bounded whatever the lines."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.errors import ParseError
from audit.parsers import cpuinfo
from audit.parsers.cpuinfo import MAX_FLAGS_LINE_CHARS, parse_cpuinfo
from tests.conftest import cpuinfo_sample
from tests.test_cpu_bounds import SKYLAKE, peak_while, real_host
from tests.test_fuzz import EXAMPLES


def _outcome(text: str) -> object:
    try:
        return parse_cpuinfo(text)
    except ParseError as exc:
        return ("ParseError", exc.problem, exc.line)


def _with_runs(text: str, chars: int) -> object:
    with pytest.MonkeyPatch.context() as m:
        m.setattr(cpuinfo, "_RUN_CHARS", chars)
        return _outcome(text)


_KEYS = ("processor", "Processor", "vendor_id", "model name", "MODEL", "cpu", "cpu family", "flags", "Features",
         "CPU implementer", "CPU part", "cpu architecture", "bogomips", "cpu MHz", "x" * 70)
_PAD = st.sampled_from(["", " ", "\t", "\t\t", "\u00a0", "\x1c", "\r", " " * 60])
_VALUE = st.one_of(st.sampled_from(["0", "1", "12", "GenuineIntel", "fpu vme de", "", " ", "0x41", "a:b", "x" * 1100]),
                   st.text(alphabet="ab01 \t:\r\u00a0", max_size=20))
_LINE = st.one_of(st.builds(lambda a, k, b, v: f"{a}{k}{b}:{v}", _PAD, st.sampled_from(_KEYS), _PAD, _VALUE),
                  st.sampled_from(["", " ", "\t", "junk", "\u2028", "\x0b", "\r"]),
                  st.text(alphabet="abc: \t\r\n\x0b", max_size=30))


@settings(max_examples=EXAMPLES * 3, deadline=None)
@given(lines=st.lists(_LINE, max_size=40), newline=st.booleans(), chars=st.integers(1, 50))
def test_where_the_runs_end_changes_nothing(lines: list[str], newline: bool, chars: int) -> None:
    text = "\n".join(lines) + ("\n" if newline else "")
    assert _with_runs(text, chars) == _outcome(text)


def test_the_runs_are_the_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "a:1\n\nb\n:\n" + "c" * 30 + "\n\n"
    for chars in (1, 2, 3, 5, 8, 13, 1 << 15):
        monkeypatch.setattr(cpuinfo, "_RUN_CHARS", chars)
        joined = [line for run in cpuinfo._line_runs(text) for line in run]
        # a line as long as a run, without a ":" and not blank, reads as one without a key
        assert joined == ["a:1", "", "b" if chars > 1 else "-", ":", "c" * 30 if chars > 30 else "-", ""]
    assert [line for run in cpuinfo._line_runs("x") for line in run] == ["x"]
    assert list(cpuinfo._line_runs("")) == []


# -- a line longer than a run ----------------------------------------------------------------------

LONG = MAX_FLAGS_LINE_CHARS + 1000


def test_a_long_blank_line_ends_a_processor() -> None:
    two = parse_cpuinfo("flags : a b\n" + " \t" * LONG + "\nflags : b c\n")
    assert two.flags == {"b"} and two.flags_differ
    one = parse_cpuinfo("flags : a b\n" + " " * LONG + "x\nflags : b c\n")  # not blank: one processor
    assert one.flags == {"a", "b"} and not one.flags_differ


def test_a_long_line_keeps_its_key_and_is_still_too_long() -> None:
    with pytest.raises(ParseError) as err:
        parse_cpuinfo("processor : 0\nflags : " + "ab " * (LONG // 3) + "\n")
    assert err.value.line == 2 and "flags line longer than" in err.value.problem
    with pytest.raises(ParseError) as err:
        parse_cpuinfo("processor : 0\n\tmodel name : " + "z" * LONG + "\n")
    assert err.value.line == 2 and "'model name' value longer than" in err.value.problem
    # its ":" past any key's length, or none at all: not a key of ours
    cpu = parse_cpuinfo("processor : 0\n" + "m" * 70 + "odel name : x" + "y" * LONG + "\nflags : fpu\n")
    assert cpu.model_name is None and cpu.flags == {"fpu"}
    assert parse_cpuinfo("y" * LONG + "\nprocessor : 0\nflags : fpu\n").processors == 1


def test_a_long_flags_line_within_the_limit_is_read_whole() -> None:
    words = [f"f{i:05x}" for i in range(30_000)]  # 210,000 characters: over a run, within the limit
    line = " ".join(words)
    assert cpuinfo._RUN_CHARS < len(line) < MAX_FLAGS_LINE_CHARS
    with pytest.raises(ParseError, match="more than 4096 flags"):
        parse_cpuinfo(f"processor : 0\nflags : {line}\n")
    fine = " ".join(words[:4000]) + " " * (len(line) - len(" ".join(words[:4000])))
    assert len(parse_cpuinfo(f"processor : 0\nflags : {fine}\n").flags) == 4000


# -- the key cache -----------------------------------------------------------------------------------


def test_a_full_key_cache_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    text = cpuinfo_sample(SKYLAKE).read_text()
    fresh = parse_cpuinfo(text)
    monkeypatch.setattr(cpuinfo, "_HEADS", {})
    monkeypatch.setattr(cpuinfo, "_MAX_HEADS", 3)
    parse_cpuinfo("".join(f"junk{i}\t: {i}\n" for i in range(10)) + "processor : 0\n")
    assert len(cpuinfo._HEADS) == 3
    assert parse_cpuinfo(text) == fresh


# -- memory -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("line", ["", "a", " ", "k:v"])
def test_short_lines_in_memory_that_does_not_grow_with_them(line: str) -> None:
    def peak(mib: int) -> int:
        text = (line + "\n") * (mib * 1024 * 1024 // (len(line) + 1))

        def parse() -> None:
            with pytest.raises(ParseError, match="no processor information found"):
                parse_cpuinfo(text)

        return peak_while(parse)

    one, two = peak(1), peak(2)
    assert one < 1_500_000 and two < one * 1.1  # a run's lines (32 Ki characters), not the text's


def test_a_big_real_host_is_read_a_run_at_a_time() -> None:
    text = real_host(500)
    assert peak_while(lambda: parse_cpuinfo(text)) < 300_000
    assert parse_cpuinfo(text).processors == 500
