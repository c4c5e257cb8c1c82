"""``run --history DIR``, ``diff --history DIR`` and ``diff`` without a previous report: the periodic
audit's file handling (atomic, pruned, locked) and its day-one behaviour."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import tests._report_fixtures as fx
from audit.errors import UsageError
from reports import history
from tests.test_reports_output import run_cli


def test_record_prunes_and_points_latest(tmp_path: Path) -> None:
    folder = str(tmp_path / "h")
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "notes.txt").write_text("not ours: never removed")
    for second in range(5):
        history.record(folder, f'{{"n": {second}}}\n', started_at=f"2026-11-30T02:00:0{second}Z", keep=3)
    history.record(folder, '{"n": 5}\n', started_at="2026-11-30T02:00:04Z", keep=3)  # same second again
    assert history.reports_in(folder) == ["20261130T020003Z.json", "20261130T020004Z.json",
                                          "20261130T020004Z-2.json"]
    assert os.readlink(tmp_path / "h" / "latest.json") == "20261130T020004Z-2.json"
    assert json.loads((tmp_path / "h" / "latest.json").read_text()) == {"n": 5}
    assert (tmp_path / "h" / "notes.txt").exists()
    assert oct(os.stat(tmp_path / "h" / "20261130T020003Z.json").st_mode & 0o777) == "0o640"
    assert history.last_two(folder) == (str(tmp_path / "h" / "20261130T020004Z.json"),
                                        str(tmp_path / "h" / "20261130T020004Z-2.json"))


def test_a_held_lock_makes_the_second_run_give_up_with_one_line(tmp_path: Path) -> None:
    folder = str(tmp_path)
    with history.locked(folder), pytest.raises(UsageError, match="another hostaudit run has held"):
        history.record(folder, "{}\n", started_at="2026-11-30T02:00:00Z", wait=0.3)
    history.record(folder, "{}\n", started_at="2026-11-30T02:00:00Z", wait=0.3)  # released: it works


def test_history_is_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(UsageError, match=r"not a directory|cannot create"):
        history.record(str(tmp_path / "f"), "{}\n", started_at="2026-11-30T02:00:00Z")


def test_run_history_then_diff_history_from_day_one(tmp_path: Path) -> None:
    root = fx.write_tree(tmp_path / "root", fx.HOST_TREE)
    hist = tmp_path / "hist"
    proc = run_cli("--root", str(root), "--no-entry-points", "-q", "--history", str(hist), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    diff = run_cli("diff", "--history", str(hist), cwd=tmp_path)
    assert diff.returncode == 0 and diff.stdout.startswith("no previous report"), diff.stdout + diff.stderr
    assert run_cli("diff", "--strict", "--history", str(hist), cwd=tmp_path).returncode == 2
    run_cli("--root", str(root), "--no-entry-points", "-q", "--history", str(hist), "--keep", "1", cwd=tmp_path)
    assert len(history.reports_in(str(hist))) == 1
    run_cli("--root", str(root), "--no-entry-points", "-q", "--history", str(hist), cwd=tmp_path)
    diff = run_cli("diff", "--history", str(hist), cwd=tmp_path)
    assert diff.returncode == 0 and "no changes" in diff.stdout, diff.stdout + diff.stderr


def test_diff_without_old_report_is_not_an_error(tmp_path: Path) -> None:
    root = fx.write_tree(tmp_path / "root", fx.HOST_TREE)
    run_cli("--root", str(root), "--no-entry-points", "-q", "-o", "new.json", cwd=tmp_path)
    proc = run_cli("diff", "previous.json", "new.json", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("no previous report (")
    proc = run_cli("diff", "--format", "json", "previous.json", "new.json", cwd=tmp_path)
    assert json.loads(proc.stdout)["old"] is None
    assert run_cli("diff", "--strict", "previous.json", "new.json", cwd=tmp_path).returncode == 2
    assert run_cli("diff", "new.json", "missing.json", cwd=tmp_path).returncode == 2  # NEW must exist


def test_diff_of_different_targets_says_so_first(tmp_path: Path) -> None:
    root = fx.write_tree(tmp_path / "root", fx.HOST_TREE)
    run_cli("--root", str(root), "--no-entry-points", "-q", "-o", "a.json", cwd=tmp_path)
    doc = json.loads((tmp_path / "a.json").read_text())
    doc["target"]["hostname"] = "other-host"
    doc["target"]["root"] = "/elsewhere"
    (tmp_path / "b.json").write_text(json.dumps(doc))
    proc = run_cli("diff", "a.json", "b.json", cwd=tmp_path)
    first = proc.stdout.splitlines()[0]
    assert first.startswith("these reports are of different targets (hostname ") and "root " in first


def test_journal_priorities_when_stdout_is_the_journal(tmp_path: Path) -> None:
    root = fx.write_tree(tmp_path / "root", fx.HOST_TREE)
    out = tmp_path / "journal.txt"
    with open(out, "w") as fh:
        st = os.fstat(fh.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}", "NO_COLOR": "1"}
        proc = subprocess.run([*fx.hostaudit_command(), "--root", str(root), "--no-entry-points"], stdout=fh,
                              env=env, cwd=tmp_path, timeout=120, check=False)
    assert proc.returncode == 1
    lines = out.read_text().splitlines()
    assert lines and all(line[:3] in ("<3>", "<4>", "<6>") for line in lines)
    assert any(line.startswith("<4>FAIL ") for line in lines)
    assert lines[-1].startswith("<4>") and lines[-1].endswith("exit code 1")
