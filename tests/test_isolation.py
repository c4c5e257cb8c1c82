"""One bad check, plugin or reporter costs its own result, never the run or the other reports
(issue #11, items 12, 13, 14): a check that never returns, sys.exit() in a check or in a plugin's
hook, Ctrl-C during the checks, and a plugin reporter that raises."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PLUGIN = '''
import sys, time
from audit import hookimpl
from audit.model import Severity, check, passed

@check("demo.first", title="first", severity=Severity.LOW)
def first(host, policy):
    """runs first"""
    return passed("fine")

@check("demo.stuck", title="stuck", severity=Severity.LOW)
def stuck(host, policy):
    """never returns, and swallows what it can"""
    MODE
    return passed("done")

@check("demo.third", title="third", severity=Severity.LOW)
def third(host, policy):
    """never reached when stuck hangs"""
    return passed("fine")

@hookimpl
def hostaudit_checks():
    return [first, stuck, third]

@hookimpl
def hostaudit_reporters():
    def boom(report):
        raise RuntimeError("reporter bug")
    return {".boom": boom}
'''

HANG = """while True:
        try:
            time.sleep(0.05)
        except BaseException:
            pass"""


def _site(tmp_path: Path, mode: str) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    (site / "ha_iso.py").write_text(textwrap.dedent(PLUGIN).replace("MODE", mode))
    info = site / "ha_iso-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ha-iso\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[hostaudit]\nha_iso = ha_iso\n")
    return site


def _popen(tmp_path: Path, mode: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_site(tmp_path, mode)), str(REPO)])}
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)  # an image root (an empty folder is nothing to audit)
    return subprocess.Popen([sys.executable, "-m", "audit", "--root", str(root), "--select", "demo.*", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
                            preexec_fn=interruptible)


def interruptible() -> None:
    """In the child before it starts: Ctrl-C as a terminal gives it. A test suite run as a background
    job (``pytest &`` from a script) has SIGINT ignored, which its children would inherit, and Python
    then installs no KeyboardInterrupt handler: the Ctrl-C tests would test nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _statuses(path: Path) -> dict[str, tuple[str, str]]:
    return {r["id"]: (r["status"], r["message"]) for r in json.loads(path.read_text())["results"]}


def test_a_check_that_never_returns_ends_the_run_with_the_reports_of_what_finished(tmp_path):
    report = tmp_path / "r.json"
    proc = _popen(tmp_path, HANG, "--check-timeout", "1", "-o", str(report), "--format", "json")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    got = _statuses(report)
    assert got["demo.first"] == ("pass", "fine")
    assert got["demo.stuck"] == ("error", "demo.stuck did not finish within 1 s (--check-timeout); the run was ended")
    assert got["demo.third"] == ("error", "not run: demo.stuck did not finish within 1 s (--check-timeout); the "
                                          "run was ended")
    assert json.loads(out)["results"] == json.loads(report.read_text())["results"]  # stdout too


def test_sys_exit_in_a_check_is_an_error_result(tmp_path):
    proc = _popen(tmp_path, "sys.exit(0)", "--format", "json")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    got = {r["id"]: (r["status"], r["message"]) for r in json.loads(out)["results"]}
    assert got["demo.stuck"] == ("error", "check called sys.exit(0)")
    assert got["demo.third"][0] == "pass"


def test_ctrl_c_writes_the_reports_of_what_finished(tmp_path):
    report = tmp_path / "r.json"
    proc = _popen(tmp_path, "time.sleep(30)", "--check-timeout", "0", "-o", str(report), "-q")
    time.sleep(3)  # well inside demo.stuck: start-up takes well under a second here
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    got = _statuses(report)
    assert got["demo.first"][0] == "pass"
    assert got["demo.stuck"] == ("error", "the run was interrupted")
    assert got["demo.third"] == ("error", "not run: the run was interrupted")


def test_a_reporter_that_raises_costs_only_its_own_report(tmp_path):
    boom, js = tmp_path / "a.boom", tmp_path / "b.json"
    proc = _popen(tmp_path, "pass", "-o", str(boom), "-o", str(js), "-q")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert f"the .boom report {boom} could not be made: RuntimeError: reporter bug" in err
    assert not boom.exists() and _statuses(js)["demo.third"][0] == "pass"


@pytest.mark.parametrize("where", ["import", "hook"])
def test_sys_exit_in_a_plugin_is_a_plugin_error(tmp_path, where):
    site = tmp_path / "site"
    site.mkdir()
    body = ("import sys\nsys.exit(3)\n" if where == "import" else
            "import sys\nfrom audit import hookimpl\n@hookimpl\ndef hostaudit_checks():\n    sys.exit(0)\n")
    (site / "ha_exit.py").write_text(body)
    info = site / "ha_exit-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ha-exit\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[hostaudit]\nha_exit = ha_exit\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    out = subprocess.run([sys.executable, "-m", "audit", "--root", str(root), "--format", "json"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode in (1, 3), out.stderr
    results = {r["id"]: r for r in json.loads(out.stdout)["results"]}
    assert results["plugin.ha_exit"]["status"] == "error"
    assert "sys.exit(" in results["plugin.ha_exit"]["message"]
    assert "kernel.hugetlbfs" in results  # the built-in checks still ran


@pytest.mark.parametrize("link", ["/proc", "../../../../proc", "proc"])
def test_a_proc_that_loops_is_no_running_kernel_never_a_stopped_audit(tmp_path, link):
    root = tmp_path / "img"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text("ID=debian\n")
    (root / "proc").symlink_to(link)
    out = subprocess.run([sys.executable, "-m", "audit", "--root", str(root), "--format", "json"],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode in (1, 3), out.stderr
    results = {r["id"]: r for r in json.loads(out.stdout)["results"]}
    assert results["cpu.virtualization"]["status"] == "skip"
    assert not [r["id"] for r in results.values() if r["status"] == "error"]


@pytest.mark.parametrize("root", ["empty", "/proc"])
def test_a_directory_that_is_no_system_is_a_usage_error(tmp_path, root):
    path = tmp_path / "empty" if root == "empty" else Path(root)
    path.mkdir(exist_ok=True)
    out = subprocess.run([sys.executable, "-m", "audit", "--root", str(path)], capture_output=True, text=True,
                         timeout=120, cwd=REPO)
    assert out.returncode == 2 and "nothing to audit here" in out.stderr
