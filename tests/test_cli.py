"""End to end through the installed console script: exit codes, formats, files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import cpuinfo_sample, kconfig_sample

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "reports/schemas/report-v1.json").read_text())


def hostaudit(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("hostaudit", path=os.path.dirname(sys.executable)) or shutil.which("hostaudit")
    cmd = [exe] if exe else [sys.executable, "-m", "audit"]
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env=full_env, timeout=120)


def validate(doc: dict) -> None:
    jsonschema.validate(doc, SCHEMA)


@pytest.fixture
def good_image(make_root):
    return make_root({
        "boot/config-6.1.0-56-amd64": kconfig_sample("debian12-config-6.1.0-56-amd64"),
        "boot/vmlinuz-6.1.0-56-amd64": "kernel",
        "etc/os-release": 'ID=debian\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n',
        "etc/hostname": "golden-image\n",
    })


def test_version():
    out = hostaudit("--version")
    assert out.returncode == 0 and out.stdout.startswith("hostaudit ")


def test_image_that_meets_the_kernel_requirements_exits_0(good_image):
    out = hostaudit("--root", str(good_image), "--format", "json", "--select", "kernel.*")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    validate(doc)
    assert doc["target"]["mode"] == "image"
    assert doc["target"]["kernel_release"] == "6.1.0-56-amd64"
    assert doc["exit_code"] == 0
    assert doc["summary"]["pass"] == 5


def test_image_runtime_checks_say_not_applicable(good_image):
    out = hostaudit("--root", str(good_image), "--format", "json", "--select", "kernel.*", "--select", "cpu.*")
    doc = json.loads(out.stdout)
    cpu = [r for r in doc["results"] if r["id"].startswith("cpu.")]
    assert cpu and all(r["status"] == "skip" and "unbooted image" in r["message"] for r in cpu)


def test_failure_exits_1_and_fail_on_raises_the_bar(make_root):
    root = make_root({"boot/config-6.18.44": kconfig_sample("this-vm-config-6.18.44")})
    assert hostaudit("--root", str(root), "-q", "--select", "kernel.*").returncode == 1
    # kernel.aesni (medium) fails, kernel.kvm only warns: with --fail-on high nothing fails
    assert hostaudit("--root", str(root), "-q", "--select", "kernel.*", "--fail-on", "high").returncode == 0
    assert hostaudit("--root", str(root), "-q", "--select", "kernel.*", "--fail-on", "high",
                     "--strict").returncode == 1


def test_quiet_prints_nothing_on_success(good_image):
    out = hostaudit("--root", str(good_image), "-q", "--select", "kernel.*")
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")


def test_error_exits_3(make_root):
    root = make_root({"boot/config-6.1.0-9-amd64": "garbage\n"})
    out = hostaudit("--root", str(root), "-q", "--select", "kernel.*")
    assert out.returncode == 3
    assert "/boot/config-6.1.0-9-amd64:1:" in out.stderr


def test_nothing_could_run_exits_3(make_root):
    out = hostaudit("--root", str(make_root({"etc/hostname": "img\n"})), "-q", "--select", "kernel.*",
                    "--select", "cpu.*")
    assert out.returncode == 3


@pytest.mark.parametrize("args", [
    ["--root", "/nonexistent/dir"],
    ["--fail-on", "bogus"],
    ["--format", "yaml"],
    ["-o", "report.unknown"],
    ["--no-such-option"],
    ["explain", "no.such"],
])
def test_usage_errors_exit_2_with_one_line(args, tmp_path):
    out = hostaudit(*args)
    assert out.returncode == 2
    assert out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr


def test_output_files_and_stdout_together(good_image, tmp_path):
    j, t = tmp_path / "r.json", tmp_path / "r.txt"
    out = hostaudit("--root", str(good_image), "-o", str(j), "-o", str(t), "--select", "kernel.*")
    assert out.returncode == 0
    validate(json.loads(j.read_text()))
    assert "kernel.hugetlbfs" in t.read_text() and "kernel.hugetlbfs" in out.stdout
    assert not list(tmp_path.glob(".*.tmp"))


def test_unwritable_output_is_exit_2_and_other_reports_still_written(good_image, tmp_path):
    ok = tmp_path / "ok.json"
    out = hostaudit("--root", str(good_image), "-q", "-o", str(tmp_path / "missing/dir/r.json"), "-o", str(ok),
                    "--select", "kernel.*")
    assert out.returncode == 2
    assert "cannot write" in out.stderr and "missing/dir/r.json" in out.stderr
    validate(json.loads(ok.read_text()))


def test_text_has_no_colour_when_piped_and_no_raw_control_chars(make_root):
    root = make_root({
        "boot/config-6.1.0-9-amd64": kconfig_sample("debian12-config-6.1.0-56-amd64"),
        "etc/os-release": 'PRETTY_NAME="evil\x1b[31m\x07 OS"\n',
    })
    out = hostaudit("--root", str(root), "--select", "kernel.*")
    assert "\x1b" not in out.stdout and "\x07" not in out.stdout
    assert "evil\\x1b[31m\\x07 OS" in out.stdout


def test_checks_catalogue_reads_nothing(tmp_path):
    out = hostaudit("checks", "--format", "json")
    rows = json.loads(out.stdout)
    ids = [r["id"] for r in rows]
    assert "kernel.kvm" in ids and "cpu.virtualization" in ids
    assert all(r["title"] and r["rationale"] for r in rows)


def test_explain():
    out = hostaudit("explain", "cpu.virtualization")
    assert out.returncode == 0
    assert "VT-x" in out.stdout and "/proc/cpuinfo" in out.stdout and "remediation example" in out.stdout


def test_python_dash_m_audit_works(good_image):
    out = subprocess.run([sys.executable, "-m", "audit", "--root", str(good_image), "-q", "--select", "kernel.*"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_cpu_sample_tree_end_to_end(make_root):
    root = make_root({"proc/cpuinfo": cpuinfo_sample("qemu-virtual-cpu-2.5-kvm-guest.txt")})
    out = hostaudit("--root", str(root), "--format", "json", "--select", "cpu.*")
    doc = json.loads(out.stdout)
    validate(doc)
    assert {r["id"]: r["status"] for r in doc["results"]} == {
        "cpu.aes": "fail", "cpu.avx": "fail", "cpu.virtualization": "fail", "cpu.pdpe1gb": "skip",
        "cpu.baseline": "skip", "cpu.secure_guest": "skip"}
    assert out.returncode == 1


def test_run_help_gives_statuses_severities_exit_codes_and_examples():
    out = hostaudit("run", "--help")
    assert out.returncode == 0
    text = out.stdout
    for word in ("pass", "warn", "fail", "error", "skip", "waived", "info < low < medium < high < critical",
                 "exit codes:", "  0  ", "  1  ", "  2  ", "  3  ", "examples:", "--fix-script fix.sh"):
        assert word in text, word
    assert "info, low, medium, high or critical" in " ".join(text.split())  # --fail-on lists them
