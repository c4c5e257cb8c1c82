"""Every kind of JUnit document hostaudit writes, validated against the Jenkins xUnit schema,
``../shared/schemas/jenkins-junit-10.xsd`` beside the clone (CI has it; it is not copied into the
project). This is the one JUnit test that may skip: without the schema the documents are still built
and parsed here, and the skip message says that only the validation against the schema was not done.
Structure, escaping, counts and ``--fail-on`` agreement are tested without any schema in
tests/test_reports_junit.py, tests/test_gate.py and tests/test_fleet.py."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from audit.model import Evidence, Outcome, Remediation, Severity, Status, replace
from reports import junit_report
from tests import _report_fixtures as fx
from tests import trees
from tests.test_fleet import fleet, run  # noqa: F401 (fleet: the fixture)
from tests.test_gate import audit

XSD = fx.REPO.parent / "shared" / "schemas" / "jenkins-junit-10.xsd"


def _render(report) -> str:
    return junit_report.render(report, exit_code=fx.code(report))


def _documents(tmp_path: Path, make_root, fleet_dir: Path) -> dict[str, str]:
    report = fx.golden_report(tmp_path / "host")
    weird = "lone \udc80 surrogate, \ufffe and \uffff non-characters, \x0c form feed"
    bad = replace(
        report.results[0],
        outcome=Outcome(status=Status.FAIL, message=weird, evidence=(Evidence(source=weird, observed=weird),),
                        remediation=Remediation(commands=(weird,))),
        severity=Severity.HIGH,
    )
    docs = {
        "golden": _render(report),
        "hostile": _render(fx.hostile_report(tmp_path / "hostile")),
        "empty": _render(replace(report, results=())),
        "characters XML cannot carry": _render(replace(report, results=(bad,))),
        "tiny durations": _render(replace(report, results=tuple(replace(r, duration_ms=0.004)
                                                                for r in report.results))),
    }
    image = make_root(trees.debian12_tree(booted="hugepagesz=1G hugepages=16"))
    for name, args in (("gate: required unknown", ("--require", "cpu.*")),
                       ("gate: below threshold", ("--fail-on", "critical")), ("gate: strict", ("--strict",))):
        out = tmp_path / name.replace(" ", "-").replace(":", "")
        out.mkdir()
        docs[name] = audit(image, out, *args).xml
    proc = run("run", "--snapshot", str(fleet_dir), "--no-entry-points", "-q", "-o", str(tmp_path / "fleet.xml"))
    assert proc.returncode == 1, proc.stderr
    docs["fleet (-o)"] = (tmp_path / "fleet.xml").read_text(encoding="utf-8")
    docs["fleet (stdout)"] = run("run", "--snapshot", str(fleet_dir), "--no-entry-points", "--format", "junit").stdout
    return docs


def test_every_junit_document_validates_against_the_jenkins_schema(tmp_path, make_root, fleet):  # noqa: F811
    docs = _documents(tmp_path, make_root, fleet)
    for name, doc in docs.items():
        assert ET.fromstring(doc.encode("utf-8")).tag in ("testsuites", "testsuite"), name
    if not XSD.exists():
        pytest.skip(f"JUnit schema not found at {XSD} (CI places shared/ beside the clone): the {len(docs)} JUnit "
                    f"documents of this test ({', '.join(docs)}) were built and parsed but not validated against "
                    "the Jenkins xUnit schema")
    import xmlschema

    schema = xmlschema.XMLSchema(str(XSD))
    for name, doc in docs.items():
        try:
            schema.validate(doc)
        except xmlschema.XMLSchemaValidationError as exc:
            raise AssertionError(f"{name}: {exc}") from None
