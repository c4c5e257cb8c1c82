"""``--show STATUSES`` (issue #14): the text table and its fixes keep only those statuses; the summary
line still counts every result, and the text says how many rows it left out."""

from __future__ import annotations

import pytest

import tests._report_fixtures as fx
from reports import text_report
from tests.test_reports_output import run_cli


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    return fx.golden_report(tmp_path_factory.mktemp("g"))


def test_only_the_asked_statuses_and_the_full_summary(golden) -> None:
    code = fx.code(golden)
    full = text_report.render(golden, exit_code=code)
    shown = text_report.render(golden, exit_code=code, show=frozenset({"fail", "error"}))
    rows = [line.split()[0] for line in shown.splitlines() if line.split() and line.split()[0] in
            ("PASS", "WARN", "FAIL", "ERROR", "SKIP", "WAIVED")]
    assert rows and set(rows) <= {"FAIL", "ERROR"}
    hidden = sum(1 for r in golden.results if r.status.value not in ("fail", "error"))
    assert f"({hidden} results not shown: --show error,fail)" in shown
    assert shown.splitlines()[-1] == full.splitlines()[-1]  # the summary counts everything


def test_cli_refuses_unknown_statuses(tmp_path) -> None:
    root = fx.write_tree(tmp_path / "root", fx.HOST_TREE)
    proc = run_cli("--root", str(root), "--no-entry-points", "--show", "failed", cwd=tmp_path)
    assert proc.returncode == 2 and "not statuses: 'failed'" in proc.stderr
    proc = run_cli("--root", str(root), "--no-entry-points", "--show", "fail,WARN", cwd=tmp_path)
    assert proc.returncode == 1 and "results not shown: --show fail,warn" in proc.stdout


def _commands(text: str) -> list[int]:
    return [i for i, line in enumerate(text.splitlines()) if line.startswith("    $ ")]


def test_not_on_a_terminal_what_to_fix_comes_first_and_lines_wrap_at_100(golden) -> None:
    """A CI log (stdout not a terminal) or a .txt file: the fixes first, then the whole table."""
    text = text_report.render(golden, exit_code=fx.code(golden))
    lines = text.splitlines()
    assert lines[2] == "What to fix:"
    assert lines.index("All results:") > max(_commands(text))
    assert _commands(text)[0] < 10  # the first command within the first lines of a log
    # prose wraps at 100 columns; only commands (copied as they are) may be longer
    assert all(len(line) <= text_report.PLAIN_WIDTH for line in lines[1:-1]  # not the header and summary lines
               if not line.startswith("    $ "))


@pytest.mark.parametrize("width", [60, 80, 200])
def test_on_a_terminal_the_table_comes_first_and_fits_its_width(golden, width) -> None:
    text = text_report.render(golden, exit_code=fx.code(golden), width=width)
    lines = text.splitlines()
    assert lines[2].startswith("status") and "All results:" not in lines
    assert lines.index("What to fix:") < min(_commands(text))
    table = lines[2:lines.index("What to fix:") - 1]
    ids_width = max(len(r.id) for r in golden.results)
    narrowest = 8 + 10 + max(ids_width, 4) + 6 + text_report.MIN_MESSAGE
    assert all(len(line) <= max(width, narrowest) for line in table)


def test_the_width_is_the_terminals_and_none_for_a_pipe() -> None:
    import os
    import pty
    import struct
    from fcntl import ioctl
    from termios import TIOCSWINSZ

    from audit.cli.run import terminal_width

    r, w = os.pipe()
    with os.fdopen(w, "w") as pipe:
        assert terminal_width(pipe) is None
    os.close(r)
    leader, follower = pty.openpty()
    ioctl(follower, TIOCSWINSZ, struct.pack("HHHH", 40, 73, 0, 0))
    with os.fdopen(follower, "w") as tty:
        assert terminal_width(tty) == 73
    os.close(leader)
