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
