"""JUnit documents validated against the Jenkins xUnit schema, ``../shared/schemas/jenkins-junit-10.xsd``
beside the clone (CI has it; it is not copied into the project). Without it these tests skip and say
so; every other JUnit test (tests/test_reports_junit.py, tests/test_gate.py) parses and counts the
XML without it."""

from __future__ import annotations

import pytest

from audit.model import Evidence, Outcome, Remediation, Severity, Status, replace
from reports import junit_report
from tests import _report_fixtures as fx
from tests import trees
from tests.test_gate import audit

XSD = fx.REPO.parent / "shared" / "schemas" / "jenkins-junit-10.xsd"


@pytest.fixture(scope="module")
def xsd():
    if not XSD.exists():
        pytest.skip(f"JUnit schema not found at {XSD} (CI places shared/ beside the clone); the JUnit tests "
                    "in test_reports_junit.py and test_gate.py ran without validating against it")
    import xmlschema

    return xmlschema.XMLSchema(str(XSD))


@pytest.fixture
def image(make_root):
    return make_root(trees.debian12_tree(booted="hugepagesz=1G hugepages=16"))


def _render(report) -> str:
    return junit_report.render(report, exit_code=fx.code(report))


def test_golden_hostile_and_empty_reports_validate(xsd, tmp_path):
    report = fx.golden_report(tmp_path / "host")
    for r in (report, fx.hostile_report(tmp_path / "hostile"), replace(report, results=())):
        xsd.validate(_render(r))


def test_characters_xml_cannot_carry_still_validate(xsd, tmp_path):
    report = fx.golden_report(tmp_path / "host")
    weird = "lone \udc80 surrogate, \ufffe and \uffff non-characters, \x0c form feed"
    bad = replace(
        report.results[0],
        outcome=Outcome(status=Status.FAIL, message=weird, evidence=(Evidence(source=weird, observed=weird),),
                        remediation=Remediation(commands=(weird,))),
        severity=Severity.HIGH,
    )
    xsd.validate(_render(replace(report, results=(bad,))))


def test_tiny_durations_validate(xsd, tmp_path):
    report = fx.golden_report(tmp_path / "host")
    tiny = replace(report, results=tuple(replace(r, duration_ms=0.004) for r in report.results))
    xsd.validate(_render(tiny))


@pytest.mark.parametrize("args", [
    pytest.param(("--require", "cpu.*"), id="required-unknown"),
    pytest.param(("--fail-on", "critical"), id="below-threshold"),
    pytest.param(("--strict",), id="strict"),
])
def test_gate_documents_validate(xsd, image, tmp_path, args):
    xsd.validate(audit(image, tmp_path, *args).xml)
