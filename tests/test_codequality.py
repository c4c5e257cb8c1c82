"""GitLab code quality reports (issue #14), and how ``-o`` names a format: the ``.codequality.json``
double suffix and the ``FORMAT:PATH`` prefix.

GitLab publishes no JSON Schema for the ``codequality`` artifact; ``ISSUE_SCHEMA`` below writes down
the fields its documentation ("Code Quality report format", docs.gitlab.com/ci/testing/code_quality/)
lists as required, with the severities it accepts, and forbids any other, so a typo cannot pass.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import jsonschema
import pytest

from audit.errors import UsageError
from audit.model import Evidence, Severity, Status
from reports import codequality, output, sarif
from tests import _report_fixtures as fx
from tests.test_sarif import make_report, make_result

ISSUE_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["description", "check_name", "fingerprint", "severity", "location"],
        "properties": {
            "description": {"type": "string", "minLength": 1},
            "check_name": {"type": "string", "minLength": 1},
            "fingerprint": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "severity": {"enum": ["info", "minor", "major", "critical", "blocker"]},
            "location": {
                "type": "object",
                "additionalProperties": False,
                "required": ["path", "lines"],
                "properties": {
                    "path": {"type": "string", "minLength": 1, "not": {"pattern": "^(/|\\./)"}},
                    "lines": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["begin"],
                        "properties": {"begin": {"type": "integer", "minimum": 1}},
                    },
                },
            },
        },
    },
}


def render(report, **kw) -> list[dict]:
    doc = json.loads(output.render("codequality", report, exit_code=fx.code(report), **kw))
    jsonschema.validate(doc, ISSUE_SCHEMA)
    return doc


def by_check(doc: list[dict]) -> dict[str, dict]:
    names = [i["check_name"] for i in doc]
    assert len(names) == len(set(names))
    return {i["check_name"]: i for i in doc}


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    return fx.golden_report(tmp_path_factory.mktemp("golden"))


def test_golden_issues(golden):
    issues = by_check(render(golden))
    # failures and warnings; the waived failure and the errored check are not issues
    assert set(issues) == {r.id for r in golden.results if r.status in (Status.FAIL, Status.WARN)}
    ksm = issues["kernel.ksm"]
    assert ksm["description"] == next(r.outcome.message for r in golden.results if r.id == "kernel.ksm")
    assert ksm["severity"] == "major"  # medium
    assert ksm["location"] == {"path": "boot/config-6.1.0-18-amd64", "lines": {"begin": 4}}
    assert issues["cpu.aes"]["location"] == {"path": "proc/cpuinfo", "lines": {"begin": 1}}
    assert issues["kvm.device"]["severity"] == "blocker"  # critical


def test_severity_mapping_and_required_unknown():
    results = [make_result(f"x.{s.name.lower()}", Status.FAIL, severity=s) for s in Severity]
    results.append(make_result("y.error", Status.ERROR, severity=Severity.HIGH))
    results.append(make_result("z.waived", Status.WAIVED, waiver="accepted"))
    issues = by_check(render(make_report(*results, required=("y.*",))))
    assert {k: v["severity"] for k, v in issues.items() if k.startswith("x.")} == {
        "x.info": "info", "x.low": "minor", "x.medium": "major", "x.high": "critical", "x.critical": "blocker"}
    assert issues["y.error"]["description"].startswith("required, but could not be checked: ")
    assert "z.waived" not in issues
    not_required = by_check(render(make_report(*results)))
    assert "y.error" not in not_required  # an error is not an issue about the host: the job log says it


def test_gate_note_comes_first(golden):
    issues = by_check(render(fx.with_gate(golden, fail_on=Severity.CRITICAL)))
    assert issues["kernel.ksm"]["description"].startswith("fail (medium), below --fail-on critical: ")


def test_source_prefix_and_pseudo_location():
    report = make_report(make_result("a.grub", Status.FAIL, Evidence("/etc/default/grub:12", "x")),
                         make_result("b.nofile", Status.WARN, Evidence("next boot", "x")))
    plain = by_check(render(report))
    assert plain["a.grub"]["location"] == {"path": "etc/default/grub", "lines": {"begin": 12}}
    prefixed = by_check(render(report, source_prefix="image"))
    assert prefixed["a.grub"]["location"] == {"path": "image/etc/default/grub", "lines": {"begin": 12}}
    assert prefixed["b.nofile"]["location"] == {"path": ".hostaudit/b.nofile", "lines": {"begin": 1}}


def test_fingerprints_stable_distinct_and_shared_with_sarif(tmp_path):
    first = by_check(render(fx.golden_report(tmp_path / "a")))
    second = by_check(render(fx.golden_report(tmp_path / "b")))
    assert {k: v["fingerprint"] for k, v in first.items()} == {k: v["fingerprint"] for k, v in second.items()}
    assert len({v["fingerprint"] for v in first.values()}) == len(first)
    for name, issue in first.items():
        expected = hashlib.sha256(f"{name}\0{issue['location']['path']}".encode()).hexdigest()
        assert issue["fingerprint"] == expected
    report = fx.golden_report(tmp_path / "c")
    doc = json.loads(output.render("sarif", report, exit_code=1))
    for r in doc["runs"][0]["results"]:
        if r["ruleId"] in first:
            assert r["partialFingerprints"][sarif.FINGERPRINT_KEY] == first[r["ruleId"]]["fingerprint"]
    same_path = [make_result("a.one", Status.FAIL, Evidence("/etc/x:1", "x")),
                 make_result("a.two", Status.FAIL, Evidence("/etc/x:2", "x"))]
    prints = [i["fingerprint"] for i in render(make_report(*same_path))]
    assert prints[0] != prints[1]  # two checks on one file


def test_hostile_host_text(tmp_path):
    hostile = fx.hostile_report(tmp_path)
    text = output.render("codequality", hostile, exit_code=fx.code(hostile), source_prefix="image")
    text.encode("utf-8")
    issues = by_check(json.loads(text))
    jsonschema.validate(list(issues.values()), ISSUE_SCHEMA)
    for issue in issues.values():
        for value in (issue["description"], issue["check_name"], issue["location"]["path"]):
            assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]", value), value
    fail = issues["hostile.fail"]
    assert "pwn $(rm -rf /)" in fail["description"] and "\\n" in fail["description"]
    assert fail["location"]["path"] == "image/etc/pwn"
    assert "hostile.waived" not in issues


def test_empty_report_is_an_empty_array():
    assert codequality.issues(make_report(make_result("x.ok", Status.PASS))) == []
    assert output.render("codequality", make_report(), exit_code=3) == "[]\n"


# -- -o: the double suffix and the FORMAT:PATH prefix -------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("report.sarif", ("report.sarif", "sarif")),
        ("OUT/R.SARIF", ("OUT/R.SARIF", "sarif")),
        ("gl.codequality.json", ("gl.codequality.json", "codequality")),
        ("GL.CodeQuality.JSON", ("GL.CodeQuality.JSON", "codequality")),
        ("dir.codequality.json/report.json", ("dir.codequality.json/report.json", "json")),
        (".codequality.json", (".codequality.json", "json")),  # no name before the double suffix
        ("report.json", ("report.json", "json")),
        ("codequality:gl-code-quality.json", ("gl-code-quality.json", "codequality")),
        ("json:out.txt", ("out.txt", "json")),
        ("sarif:reports/x.json", ("reports/x.json", "sarif")),
        ("fix:remediate", ("remediate", "fix")),
        ("text:a:b", ("a:b", "text")),  # only the first colon
        ("./json:out.txt", ("./json:out.txt", "text")),  # a path: write ./ for a file named json:...
        ("C:\\reports\\r.json", ("C:\\reports\\r.json", "json")),  # a drive letter is no format
        ("reports:2024/r.xml", ("reports:2024/r.xml", "junit")),  # an unknown name is part of the path
    ],
)
def test_output_spec(spec, expected):
    assert output.output_spec(spec) == expected


@pytest.mark.parametrize("spec", ["sarif:", "json:"])
def test_a_prefix_needs_a_path(spec):
    with pytest.raises(UsageError, match="no file name after"):
        output.output_spec(spec)


def test_prefix_names_a_plugin_format():
    extra = {".csv": lambda report: "id\n"}
    assert output.output_spec("csv:report.txt", extra) == ("report.txt", ".csv")
    assert output.render(".csv", make_report(), exit_code=0, extra=extra) == "id\n"
    assert output.output_spec("report.csv", extra) == ("report.csv", ".csv")


def test_unknown_suffix_names_the_new_ones():
    with pytest.raises(UsageError, match=r"\.codequality\.json.*\.sarif"):
        output.format_for_path("report.pdf")


def test_fleet_outputs_refused():
    output.check_fleet_outputs(["fleet.json", "fleet.html", "./json:x.txt"])
    for spec in ("fleet.sarif", "x.codequality.json", "json:fleet.txt"):
        with pytest.raises(UsageError):
            output.check_fleet_outputs([spec])
    with pytest.raises(UsageError, match="--source-prefix"):
        output.check_fleet_outputs([], "image")


def test_cli_writes_any_format_under_any_name(tmp_path):
    from tests.test_sarif import run_cli

    root = fx.write_tree(tmp_path / "root", fx.HOST_TREE)
    out = tmp_path / "out"
    out.mkdir()
    proc = run_cli("--root", str(root), "--no-entry-points", "-q", "-o", "json:report.txt",
                   "-o", "codequality:gl-code-quality.json", "-o", "text:plain.json", "-o", "r.codequality.json",
                   cwd=out)
    assert proc.returncode == 1, proc.stderr
    assert sorted(os.listdir(out)) == ["gl-code-quality.json", "plain.json", "r.codequality.json", "report.txt"]
    assert json.loads((out / "report.txt").read_text())["schema_version"] == 1
    quality = json.loads((out / "gl-code-quality.json").read_text())
    jsonschema.validate(quality, ISSUE_SCHEMA)
    assert quality == json.loads((out / "r.codequality.json").read_text())
    assert "checks:" in (out / "plain.json").read_text()
    assert not any(Path(out, n).exists() for n in ("json:report.txt", "codequality:gl-code-quality.json"))
    proc = run_cli("--root", str(root), "--no-entry-points", "--format", "codequality", cwd=out)
    assert proc.returncode == 1 and json.loads(proc.stdout) == quality
