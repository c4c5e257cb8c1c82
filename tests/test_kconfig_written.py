"""A kernel config as ``make`` writes it is read by regular expressions over the whole text
(``audit.parsers.kconfig._read_written``), anything else line by line. Held here to the line-by-line
reading: the same options in the same order, the same values, lines, version and architecture, or
the same error, on the real configs in tests/data and on config-shaped text with what could set
the two apart (blanks around lines and values, quotes, options given twice or both set and unset,
comments that look like options, carriage returns, no newline at the end)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.errors import ParseError
from audit.parsers import kconfig
from audit.parsers.kconfig import parse_kconfig
from tests.conftest import DATA
from tests.test_fuzz import EXAMPLES

CONFIGS = sorted((DATA / "kconfig").iterdir())


def _line_by_line(text: str, monkeypatch: pytest.MonkeyPatch) -> object:
    with monkeypatch.context() as m:
        m.setattr(kconfig, "_read_written", lambda text: None)
        return _outcome(text)


def _outcome(text: str) -> object:
    try:
        c = parse_kconfig(text)
    except ParseError as exc:
        return ("ParseError", str(exc), exc.line)
    return list(c.options.items()), dict(c.lines), list(c.lines), c.version, c.arch


def _same(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _outcome(text) == _line_by_line(text, monkeypatch)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_real_configs_read_as_line_by_line(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    assert kconfig._read_written(text) is not None  # what distributions ship takes the quick way
    _same(text, monkeypatch)
    with monkeypatch.context() as m:
        m.setattr(kconfig, "_PIECE", 1000)  # many pieces
        _same(text, m)
    _same(text.rstrip("\n"), monkeypatch)
    _same(text.replace("\n", "\r\n"), monkeypatch)  # left to the loop


_NAMES = st.sampled_from(["CONFIG_KVM", "CONFIG_KVM_INTEL", "CONFIG_HUGETLBFS", "CONFIG_K", "CONFIG_KV"])
_VALUES = st.sampled_from(["y", "m", "n", "", '""', '"', '"a b"', '"x"y"', "0x10", " y", "y ", "a=b", "\t",
                           "\u00a0y", "y\u2003", "é", "is not set", '"is not set"'])
_LINES = st.one_of(
    st.tuples(_NAMES, _VALUES).map(lambda t: f"{t[0]}={t[1]}"),
    st.tuples(st.sampled_from(["# ", "#", "#  ", "#\t", " # "]), _NAMES,
              st.sampled_from(["", " ", " x"])).map(lambda t: f"{t[0]}{t[1]} is not set{t[2]}"),
    st.sampled_from(["", " ", "#", "# comment", "# Linux/x86 6.1.0 Kernel Configuration",
                     "# Linux kernel version: 2.6.32", "#Linux/arm64 6.12.5 Kernel Configuration ",
                     "# CONFIG_KVM=y", "#CONFIG_KVM is not set", "CONFIG_KVM", "KVM=y", "CONFIG_KVM =y",
                     " CONFIG_KVM=m", "CONFIG_k\u212avm=y", "garbage", "# XCONFIG_KVM is not set",
                     "# CONFIG_K is not set # CONFIG_K is not set", "# see: CONFIG_KV is not set",
                     "CONFIG_KV=\"CONFIG_K is not set\""]),
)


@settings(max_examples=max(EXAMPLES, 300), deadline=None, derandomize=True)
@given(st.lists(_LINES, max_size=25), st.booleans(), st.sampled_from([kconfig._PIECE, 1, 7, 40]))
def test_config_shaped_text_reads_as_line_by_line(lines: list[str], last_newline: bool, piece: int) -> None:
    """(``piece``: the text is searched a piece at a time; small pieces put their ends everywhere)"""
    text = "\n".join(lines) + ("\n" if last_newline else "")
    with pytest.MonkeyPatch.context() as m:
        m.setattr(kconfig, "_PIECE", piece)
        _same(text, m)


def test_an_options_line_is_found_when_asked() -> None:
    text = "# Linux/x86 6.1.0 Kernel Configuration\nCONFIG_A=y\n\n# CONFIG_B is not set\nCONFIG_A=m\n"
    c = parse_kconfig(text)
    assert isinstance(c.lines, kconfig._Lines)
    assert c.lines["CONFIG_B"] == 4 and c.lines["CONFIG_A"] == 5 and c.lines.get("CONFIG_C") is None
    assert (c.version, c.arch) == ("6.1.0", "x86")


def test_a_huge_written_config_is_read_in_bounded_memory() -> None:
    """What a piece's search lists is some ten times its text: a config of 800,000 lines (8 MiB) is
    read with its pieces' lists, not one list for the whole text (which took 107 MiB)."""
    from tests.test_cpu_bounds import peak_while

    text = "CONFIG_A=y\n" * 800_000
    peak = peak_while(lambda: parse_kconfig(text))
    assert peak < 3 * len(text)  # the text copied once (each line after a newline), and a piece's list
