"""``-o x.prom``: the Prometheus text exposition node_exporter's textfile collector reads, checked with a
real parser (prometheus_client's, a test dependency) and with ``promtool check metrics`` (Debian's
``prometheus`` package, installed by .ci/install-test-deps), on the golden and the hostile reports."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import tests._report_fixtures as fx
from reports import output, prometheus
from tests.test_reports_output import run_cli


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    return fx.golden_report(tmp_path_factory.mktemp("golden"))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return fx.hostile_report(tmp_path_factory.mktemp("hostile"))


def parse(text: str) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_golden_parses_and_says_what_the_report_says(golden) -> None:
    code = fx.code(golden)
    families = parse(prometheus.render(golden, exit_code=code))
    status = {s.labels["id"]: s.labels["status"] for s in families["hostaudit_check_status"]}
    assert status == {r.id: r.status.value for r in golden.results}
    assert all(s.value == 1 for s in families["hostaudit_check_status"])
    assert {s.labels["status"]: s.value for s in families["hostaudit_checks"]} == golden.summary()
    gate = {s.labels["id"]: s.value for s in families["hostaudit_check_gate"]}
    assert gate == {r.id: float(j.verdict.counts) for r, j in golden.judged()}
    assert families["hostaudit_exit_code"][0].value == code
    assert families["hostaudit_run_duration_seconds"][0].value == pytest.approx(golden.duration_ms / 1000)
    assert families["hostaudit_last_run_timestamp_seconds"][0].value > 1.7e9
    info = families["hostaudit_build_info"][0].labels
    assert info["version"] == golden.tool_version and info["kernel_release"] == golden.target.kernel_release


def test_golden_file(golden) -> None:
    fx.assert_golden("report.prom", prometheus.render(golden, exit_code=fx.code(golden)))


def test_hostile_text_stays_in_its_label(hostile) -> None:
    text = prometheus.render(hostile, exit_code=fx.code(hostile))
    text.encode("utf-8")  # bytes that were not UTF-8 are shown, never written raw
    families = parse(text)
    # every series is one of ours: nothing a host wrote became a metric name or a line of its own
    assert set(families) == {f"hostaudit_{n}" for n in ("check_status", "check_gate", "checks",
                                                        "last_run_timestamp_seconds", "run_duration_seconds",
                                                        "exit_code", "build_info")}
    assert len(families["hostaudit_check_status"]) == len(hostile.results)
    for line in text.splitlines():
        assert line.startswith(("# HELP hostaudit_", "# TYPE hostaudit_", "hostaudit_"))


@pytest.mark.parametrize("value", ['a"b', "a\\b", "a\nb", "a\x1b[31mb", "a\udcffb", "}\nevil 1\n{", "\\n"])
def test_label_values_round_trip_through_a_real_parser(value: str) -> None:
    line = f'hostaudit_x{{v="{prometheus.label_value(value)}"}} 1\n'
    (sample,) = next(iter(text_string_to_metric_families(line))).samples
    assert "\n" not in sample.labels["v"] and "\x1b" not in sample.labels["v"]
    if value in ('a"b', "a\\b", "\\n"):
        assert sample.labels["v"] == value  # what needs no escaping for display comes back as it was


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool is not installed (Debian: apt-get install prometheus; .ci/install-test-deps "
                           "installs it)")
@pytest.mark.parametrize("which", ["golden", "hostile"])
def test_promtool_check_metrics(which, request, tmp_path) -> None:
    report = request.getfixturevalue(which)
    text = prometheus.render(report, exit_code=fx.code(report))
    proc = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cli_writes_prom_0644_and_other_reports_0640(tmp_path) -> None:
    root = fx.write_tree(tmp_path / "root", fx.HOST_TREE)
    proc = run_cli("--root", str(root), "--no-entry-points", "-q", "-o", "m.prom", "-o", "r.json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert stat.S_IMODE(os.stat(tmp_path / "m.prom").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(tmp_path / "r.json").st_mode) == 0o640
    parse((tmp_path / "m.prom").read_text())
    # a replaced file keeps its mode; --mode overrides
    os.chmod(tmp_path / "r.json", 0o600)
    run_cli("--root", str(root), "--no-entry-points", "-q", "-o", "r.json", cwd=tmp_path)
    assert stat.S_IMODE(os.stat(tmp_path / "r.json").st_mode) == 0o600
    run_cli("--root", str(root), "--no-entry-points", "-q", "--mode", "0604", "-o", "r.json", cwd=tmp_path)
    assert stat.S_IMODE(os.stat(tmp_path / "r.json").st_mode) == 0o604
    proc = run_cli("--root", str(root), "--no-entry-points", "--format", "prometheus", cwd=tmp_path)
    assert "hostaudit_exit_code 1" in proc.stdout.splitlines()


def test_file_mode_rules(tmp_path: Path) -> None:
    assert output.file_mode(str(tmp_path / "new.json")) == 0o640
    assert output.file_mode(str(tmp_path / "new.PROM")) == 0o644
    assert output.file_mode(str(tmp_path / "x.json"), 0o600) == 0o600
