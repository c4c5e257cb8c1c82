"""The text report wraps its message column itself (``reports.text_report.wrap_cell``): the same
table as tabulate's ``maxcolwidths`` gives, for messages as the report shows them (printable)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from tabulate import tabulate

from reports.sanitize import printable
from reports.text_report import HEADERS, wrap_cell

WORDS = st.sampled_from(["vmx", "hugepages=1024", "/sys/kernel/mm/transparent_hugepage/enabled", "is", "not",
                         "set;", "a-b-c", "default_hugepagesz=1G", "x" * 90, "", " ", "  ", "\t", "\n", "é", "—",
                         "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"", "(predicted)", "--", "0.5"])


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.lists(WORDS, max_size=30).map(" ".join), min_size=1, max_size=6),
       st.integers(min_value=10, max_value=140))
def test_the_table_is_tabulates_own_wrapping(messages: list[str], width: int) -> None:
    rows = [("FAIL", "high", "boot.params", printable(m) if i % 2 else m) for i, m in enumerate(messages)]
    ours = tabulate([(*r[:3], wrap_cell(r[3], width)) for r in rows], headers=HEADERS, disable_numparse=True)
    theirs = tabulate(rows, headers=HEADERS, disable_numparse=True, maxcolwidths=[None, None, None, width])
    assert ours == theirs
