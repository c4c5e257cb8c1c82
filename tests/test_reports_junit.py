"""JUnit XML reporter: counts as CI tools read them, status mapping, hostile text, well-formed XML.

Every document these tests make is parsed and counted; validation against the Jenkins xUnit schema
is in ``tests/test_junit_schema.py``. The golden file is ``tests/golden/report.xml``; regenerate it
with ``HOSTAUDIT_REGEN_GOLDEN=1``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from audit.model import Evidence, Outcome, Remediation, Report, Result, Severity, Status, replace
from reports import junit_report
from tests import _report_fixtures as fx


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return fx.golden_report(tmp_path_factory.mktemp("host"))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return fx.hostile_report(tmp_path_factory.mktemp("hostile"))


def render(report: Report) -> str:
    """Render, and check the XML is well-formed whatever happens."""
    text = junit_report.render(report, exit_code=fx.code(report))
    ET.fromstring(text.encode("utf-8"))
    return text


def parsed(text: str):
    from junitparser import JUnitXml

    return JUnitXml.fromstring(text)


def cases(text: str) -> dict[str, object]:
    from junitparser import TestSuite

    xml = parsed(text)
    suites = [xml] if isinstance(xml, TestSuite) else list(xml)
    return {case.name: case for suite in suites for case in suite}


def test_golden(report):
    fx.assert_golden("report.xml", render(report))


def test_one_suite_per_category_with_the_right_counts(report):
    xml = parsed(render(report))
    by_category: dict[str, list[Result]] = {}
    for r in report.results:
        by_category.setdefault(r.check.category, []).append(r)
    suites = {s.name: s for s in xml}
    assert set(suites) == {f"hostaudit.{c}" for c in by_category}
    for category, results in by_category.items():
        suite = suites[f"hostaudit.{category}"]
        n = {s: sum(1 for r in results if r.status is s) for s in Status}
        assert suite.tests == len(results)
        assert suite.failures == n[Status.FAIL] == sum(1 for r in results if report.judge(r).counts)
        assert suite.errors == n[Status.ERROR]
        assert suite.skipped == n[Status.SKIP] + n[Status.WAIVED]
        for case in suite:
            assert case.classname == f"hostaudit.{category}"
    total = report.summary()
    assert xml.tests == len(report.results)
    assert xml.failures == total["fail"]
    assert xml.errors == total["error"]


def test_testcase_names_and_status_mapping(report):
    from junitparser import Error, Failure, Skipped

    got = cases(render(report))
    assert set(got) == {r.id for r in report.results}
    for r in report.results:
        case = got[r.id]
        assert case.name == r.id  # the id alone: a changed title keeps the CI history
        kinds = [type(x) for x in case.result]
        if r.status is Status.FAIL:
            assert kinds == [Failure]
            assert case.result[0].type == str(r.effective_severity)
            assert case.result[0].message == r.outcome.message
            body = case.result[0].text
            assert all(ev.observed in body for ev in r.outcome.evidence)
            assert all(cmd in body for cmd in r.outcome.remediation.commands)
        elif r.status is Status.ERROR:
            assert kinds == [Error]
            assert case.result[0].message == r.outcome.message
        elif r.status is Status.SKIP:
            assert kinds == [Skipped]
            assert case.result[0].message == r.outcome.message
        elif r.status is Status.WAIVED:
            assert kinds == [Skipped]
            assert case.result[0].message == f"waived: {r.waiver}"
        else:
            assert kinds == [], f"{r.id} ({r.status}) must pass in JUnit"
            assert r.outcome.message in case.system_out
    warn = next(r for r in report.results if r.status is Status.WARN)
    assert got[warn.id].system_out.startswith("WARNING: ")


def test_strict_turns_warnings_into_failures(report):
    from junitparser import Failure

    strict = fx.with_gate(report, strict=True)
    got = cases(render(strict))
    warn = next(r for r in report.results if r.status is Status.WARN)
    (failure,) = got[warn.id].result
    assert isinstance(failure, Failure)
    assert failure.message.startswith("warning (strict): ")
    assert parsed(render(strict)).failures == report.summary()["fail"] + report.summary()["warn"]


def test_suite_properties_and_no_disabled_attribute(report):
    text = render(report)
    root = ET.fromstring(text)
    assert "disabled" not in text
    for suite in root.iter("testsuite"):
        props = {p.get("name"): p.get("value") for p in suite.iter("property")}
        assert props["target"] == props["hostname"] == "kvm01.example.org"
        assert props["kernel_release"] == fx.RELEASE
        assert props["target_mode"] == "image"
        assert props["profile"] == "kvm-host"
        assert props["tool_version"] == report.tool_version
        assert suite.get("timestamp") == "2024-05-06T07:08:09Z"


def test_tiny_durations_stay_plain_decimals(report):
    # 4 µs per check: junit-xml alone would write suite times like "4.8e-05", which the schema rejects
    tiny = replace(report, results=tuple(replace(r, duration_ms=0.004)
                                                     for r in report.results))
    root = ET.fromstring(render(tiny))
    times = [e.get("time") for e in root.iter() if e.get("time") is not None]
    assert len(times) == 1 + len(list(root.iter("testsuite"))) + len(tiny.results)
    assert all("e" not in t for t in times), times


def test_an_empty_report_is_valid(report):
    text = render(replace(report, results=()))
    assert parsed(text).tests == 0


def test_hostile_values_give_valid_xml_with_visible_escapes(hostile):
    from junitparser import Failure

    text = render(hostile)
    got = cases(text)
    fail = got["hostile.fail"]
    (failure,) = fail.result
    assert isinstance(failure, Failure)
    message = failure.message
    assert "]]>" in message and "<script>" in message  # text, escaped by the XML writer
    assert "\\x1b[2J" in message and "\\x00" in message and "\\u202e" in message  # visible, not dropped
    assert "\\n" in message  # one line in an attribute
    assert "$(rm -rf /)" in failure.text
    assert "<script>" not in text  # only ever as &lt;script&gt;
    props = {p.get("name"): p.get("value") for p in ET.fromstring(text).iter("property")}
    assert props["hostname"].startswith("<script>document.title='pwned-host'</script>\\x1b[2J")
    assert "\ufffd" in props["hostname"]  # invalid UTF-8 from the host, decoded with replacement
    assert len(got) == len(hostile.results)


def test_characters_xml_cannot_carry_are_escaped(report):
    weird = "lone \udc80 surrogate, \ufffe and \uffff non-characters, \x0c form feed"
    r0 = report.results[0]
    bad = replace(
        r0,
        outcome=Outcome(status=Status.FAIL, message=weird, evidence=(Evidence(source=weird, observed=weird),),
                        remediation=Remediation(commands=(weird,))),
        severity=Severity.HIGH,
    )
    text = render(replace(report, results=(bad,)))
    assert "\\x80" in text and "\\ufffe" in text and "\\uffff" in text and "\\x0c" in text
    text.encode("utf-8")
