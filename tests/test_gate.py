"""The gate, end to end through the console script on fake image roots: ``--require`` and ``[gate]
required``, ``--fail-on``, ``--strict`` and waivers decide the exit code, and the JSON, JUnit, HTML and
text reports written by the same run agree with it result for result.

Every run writes all four reports at once (``-o``); ``Run.assert_agreement`` checks that a JUnit
``<failure>`` exists exactly when the exit code is 1, and that the text summary, the HTML page and the
JSON document count the same results as counting, which are the JUnit failures.
"""

from __future__ import annotations

import dataclasses
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from audit.engine import ExitCode, exit_code, run_audit
from audit.host.core import Host
from audit.model import (
    Check,
    Gate,
    Outcome,
    Report,
    Result,
    Severity,
    Status,
    Target,
    TargetMode,
    Verdict,
    errored,
    failed,
    passed,
    replace,
    skipped,
    warned,
)
from audit.plugins import make_plugins
from audit.policy import Policy
from tests import _report_fixtures as fx
from tests import trees
from tests.conftest import kconfig_sample
from tests.test_cli import SCHEMA, hostaudit
from tests.test_reports_html import dom

# -- one run, four reports -------------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    code: int
    stderr: str
    doc: dict
    xml: str
    html: str
    text: str

    @property
    def cases(self) -> dict[str, ET.Element]:
        """testcase name -> element; a name is never repeated."""
        found = [c for c in ET.fromstring(self.xml).iter("testcase")]
        names = [c.get("name") for c in found]
        assert len(names) == len(set(names))
        return dict(zip(names, found, strict=True))

    def element(self, check_id: str) -> ET.Element | None:
        """The failure/error/skipped child of a testcase, None when it passed."""
        kids = [k for k in self.cases[check_id] if k.tag in ("failure", "error", "skipped")]
        assert len(kids) <= 1
        return kids[0] if kids else None

    def result(self, check_id: str) -> dict:
        return next(r for r in self.doc["results"] if r["id"] == check_id)

    def assert_agreement(self) -> None:
        """Exit code, JUnit, HTML, text summary and JSON say the same about which results count."""
        from junitparser import JUnitXml

        junit = JUnitXml.fromstring(self.xml)
        failures = sum(1 for c in ET.fromstring(self.xml).iter("failure"))
        assert junit.failures == failures
        assert (failures > 0) == (self.code == 1), (failures, self.code)
        counting = {r["id"] for r in self.doc["results"] if r["gate"]["counts"]}
        failed_ids = {name for name, case in self.cases.items() if case.find("failure") is not None}
        assert failed_ids == counting
        assert self.doc["gate"]["counting"] == len(counting) == failures
        assert self.doc["exit_code"] == self.code
        # the text summary line and the HTML header count the same results
        m = re.search(r"; gate: (\d+) counting \(([^)]*)\).*; exit code (\d+)$", self.text.rstrip("\n"))
        assert m, self.text[-300:]
        assert int(m.group(1)) == failures and int(m.group(3)) == self.code
        page = dom(self.html)
        gate = page.find("dd", id="fact-gate")
        assert gate.attrs["data-counting"] == str(failures)
        assert gate.text == self.text.rstrip("\n").rsplit("; gate: ", 1)[1].rsplit("; exit code", 1)[0]
        rows = page.find_all("details", cls="result")
        assert {r.attrs["data-id"] for r in rows if r.attrs["data-counts"] == "true"} == counting
        assert page.find("dd", id="fact-exit").text == str(self.code)
        # testcase names are the check ids, nothing more
        assert set(self.cases) == {r["id"] for r in self.doc["results"]}


def audit(root: Path, tmp_path: Path, *args: str) -> Run:
    """One ``hostaudit --root`` run writing JSON, JUnit, HTML and text; every document validated."""
    out = {suffix: tmp_path / f"report{suffix}" for suffix in (".json", ".xml", ".html", ".txt")}
    for path in out.values():
        path.unlink(missing_ok=True)
    files = [a for p in out.values() for a in ("-o", str(p))]
    proc = hostaudit("--root", str(root), "-q", *files, *args)
    assert proc.returncode in (0, 1, 3), proc.stderr
    doc = json.loads(out[".json"].read_text())
    jsonschema.validate(doc, SCHEMA)
    xml = out[".xml"].read_text()
    ET.fromstring(xml)  # well-formed; tests/test_junit_schema.py validates gate documents against the XSD
    run = Run(proc.returncode, proc.stderr, doc, xml, out[".html"].read_text(), out[".txt"].read_text())
    run.assert_agreement()
    return run


@pytest.fixture
def debian(make_root):
    """A Debian 12 image booting what its /etc/default/grub asks for: the kernel and boot checks
    pass; ksm.state (low) fails, nothing starts KSM; runtime-only checks skip (no running kernel)."""
    return make_root(trees.debian12_tree(booted="hugepagesz=1G hugepages=16"))


# -- required -----------------------------------------------------------------------------------------


def test_a_required_check_that_skips_fails_the_gate(debian, tmp_path):
    base = ("--select", "kernel.*", "--select", "cpu.virtualization")
    plain = audit(debian, tmp_path, *base)
    assert plain.code == 0 and plain.result("cpu.virtualization")["status"] == "skip"
    assert plain.element("cpu.virtualization").tag == "skipped"

    run = audit(debian, tmp_path, *base, "--require", "cpu.virtualization")
    assert run.code == 1
    failure = run.element("cpu.virtualization")
    assert failure.tag == "failure" and failure.get("type") == "critical"
    assert failure.get("message") == ("required, but could not be checked: not applicable to an unbooted image: "
                                      "this check needs a running kernel (/proc/cpuinfo)")
    r = run.result("cpu.virtualization")
    assert r["status"] == "skip" and r["required"] is True
    assert r["gate"] == {"status": "required_unknown", "counts": True, "note": "required, but could not be checked"}
    assert run.result("kernel.kvm")["required"] is False
    assert run.doc["gate"]["required"] == ["cpu.virtualization"]
    assert run.doc["gate"]["summary"]["required_unknown"] == 1
    # every format says so, -q too
    assert "required, but could not be checked: not applicable to an unbooted image" in " ".join(run.text.split())
    assert "[SKIP] cpu.virtualization (critical): required, but could not be checked" in run.text  # what to fix
    assert "gate: 1 counting (--fail-on low, required: cpu.virtualization; 1 of them required but not checked)" \
        in run.text
    row = dom(run.html).find("details", data_id="cpu.virtualization")
    assert row.attrs["data-gate"] == "required_unknown" and row.attrs["data-required"] == "true"
    assert row.find("span", cls="gate").text == "required, but could not be checked"
    assert "hostaudit: cpu.virtualization: required, but could not be checked" in run.stderr


def test_nothing_checkable_is_exit_3_until_it_is_required(make_root, tmp_path):
    root = make_root({"etc/hostname": "blank\n"})  # no kernel, no boot configuration: every kernel.* skips
    assert audit(root, tmp_path, "--select", "kernel.*").code == 3
    run = audit(root, tmp_path, "--select", "kernel.*", "--require", "kernel.*")
    assert run.code == 1
    assert {run.element(r["id"]).tag for r in run.doc["results"]} == {"failure"}


def test_a_required_check_that_errors_is_a_failure_not_an_error(make_root, tmp_path):
    root = make_root({"boot/config-6.1.0-9-amd64": "garbage\n"})
    plain = audit(root, tmp_path, "--select", "kernel.*")
    assert plain.code == 3
    assert {plain.element(r["id"]).tag for r in plain.doc["results"]} == {"error"}
    run = audit(root, tmp_path, "--select", "kernel.*", "--require", "kernel.kvm")
    assert run.code == 1
    failure = run.element("kernel.kvm")
    assert failure.tag == "failure"
    assert failure.get("message").startswith("required, but could not be checked: /boot/config-6.1.0-9-amd64:1:")
    assert run.element("kernel.ksm").tag == "error"  # not required: still an error


def test_policy_gate_required_and_require_add_up(debian, tmp_path):
    policy = tmp_path / "gate.toml"
    policy.write_text('extends = "kvm-host"\n[gate]\nrequired = ["kernel.*", "kvm.device"]\n')
    run = audit(debian, tmp_path, "--policy", str(policy), "--require", "cpu.aes", "--require", "kernel.kvm",
                "--select", "kernel.*", "--select", "kvm.device", "--select", "cpu.aes")
    assert run.doc["gate"]["required"] == ["kernel.*", "kvm.device", "cpu.aes", "kernel.kvm"]  # policy first
    assert run.code == 1
    assert {r["id"] for r in run.doc["results"] if r["gate"]["status"] == "required_unknown"} == {
        "kvm.device", "cpu.aes"}
    assert all(r["required"] for r in run.doc["results"])
    props = {p.get("name"): p.get("value") for p in ET.fromstring(run.xml).iter("property")}
    assert props["required"] == "kernel.* kvm.device cpu.aes kernel.kvm"


def test_a_required_check_left_out_by_select_still_counts(debian, tmp_path):
    run = audit(debian, tmp_path, "--select", "kernel.*", "--ignore", "kernel.kvm", "--require", "kernel.kvm",
                "--require", "boot.params")
    assert run.code == 1
    for check_id in ("kernel.kvm", "boot.params"):
        assert run.result(check_id)["message"] == "left out by --select/--ignore"
        assert run.element(check_id).get("message") == ("required, but could not be checked: "
                                                        "left out by --select/--ignore")
    assert "boot.drift" not in run.cases  # only required checks come back


def test_a_required_check_disabled_by_policy_counts(debian, tmp_path):
    policy = tmp_path / "p.toml"
    policy.write_text('disabled = ["boot.*"]\n[gate]\nrequired = ["boot.*"]\n')
    run = audit(debian, tmp_path, "--policy", str(policy), "--select", "boot.*")
    assert run.code == 1
    message = run.element("boot.params").get("message")
    assert message.startswith("required, but could not be checked: disabled by policy")


def test_a_required_failure_counts_below_fail_on(debian, tmp_path):
    base = ("--select", "ksm.state", "--select", "kernel.*", "--fail-on", "medium")
    assert audit(debian, tmp_path, *base).code == 0
    run = audit(debian, tmp_path, *base, "--require", "ksm.state")
    assert run.code == 1
    assert run.element("ksm.state").get("message").startswith(
        "fail (low), required: counts below --fail-on medium: nothing starts KSM at boot")


@pytest.mark.parametrize(("glob", "message"), [
    ("kernel.kvn", "required check 'kernel.kvn' matches no check id"),
    ("nosuch.*", "required check 'nosuch.*' matches no check id"),
    ("Kernel.*", "'Kernel.*' is not a check id glob"),
])
def test_a_require_that_names_no_check_is_a_usage_error(debian, glob, message):
    out = hostaudit("--root", str(debian), "--require", glob)
    assert out.returncode == 2 and out.stdout == ""
    assert len(out.stderr.splitlines()) == 1 and message in out.stderr, out.stderr


def test_the_kvm_host_profile_requires_nothing(debian, tmp_path):
    shown = hostaudit("policy", "show")
    assert '[gate]\nrequired = []\n' in shown.stdout
    run = audit(debian, tmp_path)
    assert run.doc["gate"]["required"] == [] and not any(r["required"] for r in run.doc["results"])
    assert run.doc["gate"]["summary"]["required_unknown"] == 0


def test_the_recommended_image_gate_passes_on_a_good_image(debian, tmp_path):
    """The README's image-gate list: nothing in it always skips on an unbooted image."""
    recommended = ("boot.*", "iommu.enabled", "kernel.*", "memory.thp", "mounts.hugetlbfs")
    args = [a for g in recommended for a in ("--require", g)]
    run = audit(debian, tmp_path, *args, "--ignore", "ksm.state", "--ignore", "packages.*")
    required = [r for r in run.doc["results"] if r["required"]]
    assert {r["id"] for r in required} >= {"boot.drift", "boot.params", "iommu.enabled", "kernel.kvm", "memory.thp"}
    assert not [r["id"] for r in required if r["gate"]["status"] == "required_unknown"]


# -- threshold, strict, waivers, errors ---------------------------------------------------------------


def test_a_failure_below_fail_on_is_skipped_and_says_why(debian, tmp_path):
    run = audit(debian, tmp_path, "--select", "ksm.state", "--select", "kernel.*", "--fail-on", "medium")
    assert run.code == 0
    skipped_ = run.element("ksm.state")
    assert skipped_.tag == "skipped"
    assert skipped_.get("message").startswith("fail (low), below --fail-on medium: nothing starts KSM at boot")
    assert run.result("ksm.state")["gate"]["status"] == "below_threshold"
    assert "; gate: 0 counting (--fail-on medium; 1 below the threshold, not counting); exit code 0" in run.text
    low = audit(debian, tmp_path, "--select", "ksm.state", "--select", "kernel.*")
    assert low.code == 1 and low.element("ksm.state").tag == "failure"


def test_a_waived_failure_is_skipped_with_the_reason(debian, tmp_path):
    policy = tmp_path / "waive.toml"
    policy.write_text('[waivers."ksm.state"]\nreason = "KSM stays off on this pool (CHG-7)"\n')
    run = audit(debian, tmp_path, "--policy", str(policy), "--select", "ksm.state", "--select", "kernel.*",
                "--require", "ksm.state")  # a waiver covers a required check's failure too
    assert run.code == 0
    waived = run.element("ksm.state")
    assert waived.tag == "skipped" and waived.get("message") == "waived: KSM stays off on this pool (CHG-7)"
    assert run.result("ksm.state")["gate"] == {"status": "waived", "counts": False, "note": ""}


def test_strict_warning_is_a_failure_and_fail_on_still_applies(make_root, tmp_path):
    # kernel.aesni (medium) fails, kernel.kvm (critical) only warns: PVM backend only
    root = make_root({"boot/config-6.18.44": kconfig_sample("this-vm-config-6.18.44")})
    lenient = audit(root, tmp_path, "--select", "kernel.*", "--fail-on", "high")
    assert lenient.code == 0
    assert lenient.element("kernel.kvm") is None and "WARNING: " in lenient.cases["kernel.kvm"].findtext("system-out")
    run = audit(root, tmp_path, "--select", "kernel.*", "--fail-on", "high", "--strict")
    assert run.code == 1
    failure = run.element("kernel.kvm")
    assert failure.tag == "failure" and failure.get("message").startswith("warning (strict): KVM is built with the PVM")
    assert run.element("kernel.aesni").get("message").startswith("fail (medium), below --fail-on high: ")
    assert "--fail-on high, --strict" in run.text


def test_testcase_names_are_ids_and_the_target_is_a_suite_property(make_root, debian, tmp_path):
    run = audit(debian, tmp_path, "--select", "kernel.*")
    assert set(run.cases) == {"kernel.aesni", "kernel.hugetlbfs", "kernel.ksm", "kernel.kvm", "kernel.thp"}
    suites = list(ET.fromstring(run.xml).iter("testsuite"))
    assert suites
    for suite in suites:
        props = {p.get("name"): p.get("value") for p in suite.iter("property")}
        assert props["target"] == debian.name  # no hostname in the image: the root's directory name
        assert props["fail_on"] == "low" and props["strict"] == "false"
    named = make_root({**trees.debian12_tree(booted="hugepagesz=1G hugepages=16"), "etc/hostname": "gold-7\n"})
    run = audit(named, tmp_path, "--select", "kernel.*")
    assert {p.get("value") for p in ET.fromstring(run.xml).iter("property") if p.get("name") == "target"} == {
        "gold-7"}


# -- the classification itself, on hand-made results --------------------------------------------------


def _result(check_id: str, outcome, severity: Severity = Severity.MEDIUM) -> Result:
    check = Check(id=check_id, title="t", severity=severity, category="x", rationale="r",
                  evaluate=lambda h, p: outcome)
    return Result(check=check, outcome=outcome, plugin="p")


@pytest.mark.parametrize(("outcome", "severity", "gate", "verdict", "note"), [
    (passed("ok"), Severity.LOW, Gate(), Verdict.PASSED, ""),
    (passed("ok"), Severity.LOW, Gate(required=("a.*",)), Verdict.PASSED, ""),
    (warned("w"), Severity.LOW, Gate(), Verdict.WARNED, ""),
    (warned("w"), Severity.LOW, Gate(required=("a.*",)), Verdict.WARNED, ""),
    (warned("w"), Severity.LOW, Gate(strict=True), Verdict.FAILED, "warning (strict)"),
    (warned("w"), Severity.LOW, Gate(strict=True, fail_on=Severity.HIGH), Verdict.BELOW_THRESHOLD,
     "warn (low), below --fail-on high"),
    (failed("f"), Severity.LOW, Gate(), Verdict.FAILED, ""),
    (failed("f"), Severity.LOW, Gate(fail_on=Severity.MEDIUM), Verdict.BELOW_THRESHOLD,
     "fail (low), below --fail-on medium"),
    (failed("f"), Severity.LOW, Gate(fail_on=Severity.MEDIUM, required=("a.b",)), Verdict.FAILED,
     "fail (low), required: counts below --fail-on medium"),
    (skipped("s"), Severity.LOW, Gate(), Verdict.SKIPPED, ""),
    (skipped("s"), Severity.INFO, Gate(fail_on=Severity.CRITICAL, required=("a.?",)), Verdict.REQUIRED_UNKNOWN,
     "required, but could not be checked"),
    (errored("e"), Severity.LOW, Gate(), Verdict.ERROR, ""),
    (errored("e"), Severity.LOW, Gate(required=("a.b",)), Verdict.REQUIRED_UNKNOWN,
     "required, but could not be checked"),
    (skipped("s"), Severity.LOW, Gate(required=("z.*",)), Verdict.SKIPPED, ""),
])
def test_judge(outcome, severity, gate, verdict, note):
    j = gate.judge(_result("a.b", outcome, severity))
    assert (j.verdict, j.note) == (verdict, note)
    assert j.counts is (verdict in (Verdict.FAILED, Verdict.REQUIRED_UNKNOWN))


def test_exit_code_comes_from_the_reports_gate(tmp_path):
    plugins = make_plugins(builtins=fx.BUILTINS, entry_points=False)
    host = Host.from_root(str(fx.write_tree(tmp_path, fx.HOST_TREE)))
    report = run_audit(plugins, host, Policy(), select=["kernel.*"], fail_on=Severity.HIGH, clock=fx.clock)
    assert report.gate == Gate(fail_on=Severity.HIGH)
    assert exit_code(report) is ExitCode.OK  # kernel.ksm (medium) fails below high; kernel.kvm only warns
    assert exit_code(replace(report, gate=Gate())) is ExitCode.FAILED
    assert exit_code(replace(report, gate=Gate(fail_on=Severity.CRITICAL, strict=True))) \
        is ExitCode.FAILED


def test_a_report_made_without_a_gate_is_judged_by_the_default_one():
    report = Report(target=Target(mode=TargetMode.IMAGE, root="/srv/img"), results=(_result("a.b", skipped("s")),),
                    started_at="x", duration_ms=0, tool_version="0")
    assert report.gate == Gate() and report.counting() == []
    assert exit_code(report) is ExitCode.INCOMPLETE
    required = replace(report, gate=Gate(required=("a.b",)))
    assert [r.id for r in required.counting()] == ["a.b"] and exit_code(required) is ExitCode.FAILED
    assert required.gate_summary()["required_unknown"] == 1 and sum(required.gate_summary().values()) == 1


def test_every_status_has_a_verdict_under_every_gate():
    for status in Status:
        outcome = {Status.PASS: passed("x"), Status.WARN: warned("x"), Status.FAIL: failed("x"),
                   Status.ERROR: errored("x"), Status.SKIP: skipped("x")}.get(status)
        if outcome is None:  # waived results are made by the engine
            outcome = Outcome(status=Status.WAIVED, message="x")
        for gate in (Gate(), Gate(strict=True), Gate(required=("a.b",)), Gate(fail_on=Severity.CRITICAL)):
            assert isinstance(gate.judge(_result("a.b", outcome)).verdict, Verdict)
