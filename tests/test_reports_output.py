"""Choosing formats, plugin reporters, atomic writes, and several reports from one run of the real CLI.

Golden files: ``tests/golden/report.{json,txt,xml,html,sh}`` are made from a fixed host tree with a
fixed clock and timer (``tests/_report_fixtures.py``). After an intended output change, regenerate
them with ``HOSTAUDIT_REGEN_GOLDEN=1 .venv/bin/pytest tests/test_reports_*.py`` and review
``git diff tests/golden``.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from audit import hookimpl
from audit.errors import UsageError
from audit.plugins import make_plugins
from reports import output
from tests import _report_fixtures as fx

# -- formats and suffixes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        ("r.json", "json"),
        ("r.txt", "text"),
        ("out/r.xml", "junit"),
        ("R.HTML", "html"),
        ("fix.sh", "fix"),
    ],
)
def test_suffix_gives_format(path, fmt):
    assert output.format_for_path(path) == fmt


def test_prom_is_the_prometheus_textfile():
    assert output.format_for_path("metrics.prom") == "prometheus"


@pytest.mark.parametrize("path", ["report.pdf", "report", "report.xml.gz"])
def test_unknown_suffix_is_a_usage_error_naming_the_known_ones(path):
    with pytest.raises(UsageError, match=r"unknown report suffix.*\.html.*\.json.*\.sh.*\.txt.*\.xml"):
        output.format_for_path(path)


def test_stdout_formats():
    assert set(output.STDOUT_FORMATS) == {"text", "json", "junit", "html", "prometheus", "sarif", "codequality"}


# -- reporters from plugins ------------------------------------------------------------------------------


def csv_reporter(report):
    return "".join(f"{r.id},{r.status}\n" for r in report.results)


class CsvReporter:
    @hookimpl
    def hostaudit_reporters(self):
        return {".csv": csv_reporter}


class PromReporter:
    @hookimpl
    def hostaudit_reporters(self):
        return {".prom": lambda report: f"hostaudit_checks_total {len(report.results)}\n"}


class Hijacker:
    @hookimpl
    def hostaudit_reporters(self):
        return {".json": lambda report: "not json", "html": lambda report: "nope", ".bad": "not callable"}


class Broken:
    @hookimpl
    def hostaudit_reporters(self):
        raise RuntimeError("boom")


def fresh(*plugins):
    pm = make_plugins(builtins=(), entry_points=False).pm
    for i, p in enumerate(plugins):
        pm.register(p, name=f"throwaway{i}")
    return pm


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return fx.golden_report(tmp_path_factory.mktemp("host"))


def test_a_plugin_adds_a_format(report):
    extra = output.plugin_reporters(fresh(CsvReporter()))
    assert set(extra) == {".csv"}
    fmt = output.format_for_path("out/checks.csv", extra)
    text = output.render(fmt, report, exit_code=1, extra=extra)
    assert text.splitlines()[0] == "cpu.aes,fail"
    assert output.render("csv", report, exit_code=1, extra=extra) == text  # --format csv


def test_a_plugin_cannot_take_the_prometheus_suffix(report):
    extra = output.plugin_reporters(fresh(PromReporter()))
    assert extra == {}
    assert output.format_for_path("m.prom", extra) == "prometheus"


def test_a_plugin_cannot_replace_a_builtin_format(report):
    extra = output.plugin_reporters(fresh(Hijacker()))
    assert extra == {}
    assert output.format_for_path("r.json", extra) == "json"
    json.loads(output.render("json", report, exit_code=1, extra=extra))


def test_a_broken_reporter_plugin_adds_nothing_and_breaks_nothing():
    extra = output.plugin_reporters(fresh(Broken(), CsvReporter()))
    assert set(extra) == {".csv"}


# -- atomic writes --------------------------------------------------------------------------------------------


def test_write_atomic_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("old")
    output.write_atomic(str(target), "new\n")
    assert target.read_text() == "new\n"
    assert os.listdir(tmp_path) == ["r.json"]
    assert target.stat().st_mode & 0o777 == 0o644


def test_injected_failure_before_rename_keeps_the_previous_report(tmp_path):
    target = tmp_path / "r.html"
    target.write_text("previous report")

    def boom():
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        output.write_atomic(str(target), "x" * 100_000, fail_before_rename=boom)
    assert target.read_text() == "previous report"
    assert os.listdir(tmp_path) == ["r.html"]


def test_interrupt_mid_write_keeps_the_previous_report(tmp_path):
    target = tmp_path / "r.xml"
    target.write_text("previous")

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        output.write_atomic(str(target), "new", fail_before_rename=interrupted)
    assert target.read_text() == "previous"
    assert os.listdir(tmp_path) == ["r.xml"]


# -- golden files for the formats hostaudit had before this one -----------------------------------------------


def test_golden_json(report):
    fx.assert_golden("report.json", output.render("json", report, exit_code=fx.code(report)))


def test_golden_text(report):
    fx.assert_golden("report.txt", output.render("text", report, exit_code=fx.code(report)))


# -- hostile values through every format ------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return fx.hostile_report(tmp_path_factory.mktemp("hostile"))


@pytest.mark.parametrize("fmt", [*output.BUILTIN_FORMATS])
def test_hostile_values_leave_no_raw_control_characters(hostile, fmt):
    text = output.render(fmt, hostile, exit_code=1)
    text.encode("utf-8")  # writable: no lone surrogates
    c0 = {c for c in text if ord(c) < 0x20 and c != "\n"}
    assert not c0, f"{fmt}: raw control characters {sorted(hex(ord(c)) for c in c0)}"
    if fmt != "json":  # JSON keeps data exactly (C1 and bidi characters are valid JSON strings)
        shown = {c for c in text if 0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029\u202e"}
        assert not shown, f"{fmt}: raw C1/bidi characters {sorted(hex(ord(c)) for c in shown)}"


def test_hostile_json_round_trips(hostile):
    doc = json.loads(output.render("json", hostile, exit_code=1))
    fail = next(r for r in doc["results"] if r["id"] == "hostile.fail")
    assert fail["message"] == "message " + fx.HOSTILE  # data is kept exactly; reporters only escape


# -- the real CLI: several outputs, usage errors, unwritable and failing outputs ---------------------------------


def run_cli(*args: str, cwd: Path, preexec=None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "NO_COLOR": "1"}
    return subprocess.run(
        [*fx.hostaudit_command(), *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120,
        preexec_fn=preexec, check=False,
    )


@pytest.fixture()
def host_root(tmp_path):
    return fx.write_tree(tmp_path / "root", fx.HOST_TREE)


def test_several_outputs_in_one_run(tmp_path, host_root):
    out = tmp_path / "out"
    out.mkdir()
    proc = run_cli(
        "--root", str(host_root), "--no-entry-points", "--format", "junit",
        "-o", "r.json", "-o", "r.xml", "-o", "r.html", "-o", "r.txt", "-o", "fix.sh",
        "--fix-script", "again.sh", cwd=out,
    )
    assert proc.returncode == 1, proc.stderr  # the tree has failures
    assert sorted(os.listdir(out)) == ["again.sh", "fix.sh", "r.html", "r.json", "r.txt", "r.xml"]
    doc = json.loads((out / "r.json").read_text())
    assert doc["exit_code"] == 1
    assert doc["summary"]["fail"] >= 3
    assert proc.stdout.startswith('<?xml version="1.0" encoding="utf-8"?>\n<testsuites')
    assert (out / "r.xml").read_text() == proc.stdout
    assert (out / "r.html").read_text().startswith("<!DOCTYPE html>")
    assert (out / "fix.sh").read_text() == (out / "again.sh").read_text()
    assert (out / "fix.sh").read_text().startswith("#!/usr/bin/env bash\n")
    assert "checks:" in (out / "r.txt").read_text()


@pytest.mark.parametrize("fmt", ["json", "junit", "html", "text"])
def test_every_stdout_format(tmp_path, host_root, fmt):
    proc = run_cli("--root", str(host_root), "--no-entry-points", "--format", fmt, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.strip()


@pytest.mark.parametrize(
    ("bad", "message"),
    [("r.pdf", "unknown report suffix '.pdf'"), ("r.xml.gz", "unknown report suffix '.gz'")],
)
def test_bad_suffix_stops_before_anything_is_audited_or_written(tmp_path, bad, message):
    # the root does not exist: had the audit started, the error would be about it
    proc = run_cli("--root", str(tmp_path / "missing"), "-o", "first.json", "-o", bad, cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "first.json").exists()
    assert proc.stdout == ""


@pytest.mark.parametrize("where", ["no/such/folder/r.json", "a-file/r.json"])
def test_an_unwritable_report_is_exit_2_and_the_others_are_written(tmp_path, host_root, where):
    (tmp_path / "a-file").write_text("a file, not a folder")
    proc = run_cli("--root", str(host_root), "--no-entry-points", "-q",
                   "-o", "before.html", "-o", where, "-o", "after.xml", cwd=tmp_path)
    assert proc.returncode == 2
    assert f"hostaudit: cannot write {where}:" in proc.stderr
    assert (tmp_path / "before.html").read_text().startswith("<!DOCTYPE html>")
    assert (tmp_path / "after.xml").read_text().startswith("<?xml")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder; run as a user to test")
def test_a_folder_without_permission_is_exit_2(tmp_path, host_root):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        proc = run_cli("--root", str(host_root), "--no-entry-points", "-q",
                       "-o", "locked/r.json", "-o", "ok.json", cwd=tmp_path)
    finally:
        locked.chmod(0o755)
    assert proc.returncode == 2
    assert "cannot write locked/r.json: Permission denied" in proc.stderr
    assert (tmp_path / "ok.json").exists()


def test_a_write_failing_mid_file_keeps_the_previous_report(tmp_path, host_root):
    """A disk that fills up while the HTML report is written, injected into the real CLI with a file
    size limit (RLIMIT_FSIZE; SIGXFSZ ignored, so write() fails with EFBIG instead of killing it)."""
    probe = tmp_path / "probe"
    probe.mkdir()
    run_cli("--root", str(host_root), "--no-entry-points", "-q", "-o", "r.html", "-o", "r.json", cwd=probe)
    html_size, json_size = (probe / "r.html").stat().st_size, (probe / "r.json").stat().st_size
    assert json_size * 2 < html_size
    limit = (json_size + html_size) // 2  # the JSON report fits, the HTML report does not

    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    work = tmp_path / "work"
    work.mkdir()
    (work / "r.html").write_text("the previous report")
    proc = run_cli("--root", str(host_root), "--no-entry-points", "-q",
                   "-o", "r.html", "-o", "r.json", cwd=work, preexec=limited)
    assert proc.returncode == 2, proc.stderr
    assert "hostaudit: cannot write r.html: File too large" in proc.stderr
    assert (work / "r.html").read_text() == "the previous report"
    json.loads((work / "r.json").read_text())
    assert sorted(p.name for p in work.iterdir()) == ["r.html", "r.json"]  # no temp file left


def test_a_json_run_imports_neither_jinja2_nor_junit_xml(tmp_path, host_root):
    code = (
        "import sys\n"
        "from audit.cli.main import main\n"
        f"rc = main(['--root', {str(host_root)!r}, '--no-entry-points', '--format', 'json', '-q',"
        f" '-o', {str(tmp_path / 'r.json')!r}])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('jinja2', 'junit_xml', 'six'))\n"
        "print(rc, heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=fx.REPO, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.stdout.strip() == "1 []", proc.stderr


def test_a_stale_temporary_of_ours_is_removed_on_the_next_write(tmp_path):
    from reports.output import STALE_TEMPORARY, write_atomic

    target = tmp_path / "report.json"
    stale = tmp_path / ".report.json.ab3_x9kq.tmp"  # what a kill at the rename leaves behind
    young = tmp_path / ".report.json.zzzzzzzz.tmp"  # another run's, still being written
    other = tmp_path / ".other.json.ab3_x9kq.tmp"  # not ours for this name
    for p in (stale, young, other):
        p.write_text("partial")
    old = time.time() - STALE_TEMPORARY - 60
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    write_atomic(str(target), "{}\n")
    assert target.read_text() == "{}\n"
    assert not stale.exists() and young.exists() and other.exists()
