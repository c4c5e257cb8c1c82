"""JUnit XML reporter for CI: one ``testsuite`` per check category, one ``testcase`` per check.

Which element a result becomes is the gate's verdict (``Report.judge``), the one the exit code is
computed from: a ``<failure>`` exactly for the results that set exit code 1. Testcase names are the
check id alone (a changed title must not reset a CI system's test history). The only module that
imports junit-xml (old, and it pulls in six): JSON and text runs never load it.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable

from junit_xml import TestCase, TestSuite, to_xml_report_string

from audit.model import Judgement, Report, Result, Verdict
from reports.document import evidence_text
from reports.sanitize import xml_text  # every host value reaches the XML through it


def _details(r: Result, j: Judgement) -> str:
    """Body of a failure/error/skip/system-out: the message as the gate judged it, the check's title
    (testcase names are the id alone), evidence, then what to run."""
    lines = [j.headline(r.outcome.message), f"check: {r.check.title}"]
    lines += [evidence_text(ev) for ev in r.outcome.evidence]
    rem = r.outcome.remediation
    if rem is not None:
        if rem.notes:
            lines.append(f"why: {rem.notes}")
        if rem.commands:
            lines.append("remediation:")
            lines.extend(f"  {cmd}" for cmd in rem.commands)
        if rem.reboot_required:
            lines.append("a reboot is needed for this to take effect")
    if r.waiver:
        lines.append(f"waiver: {r.waiver}")
    # every line is host text: make each one safe on its own, then join with real newlines
    return "\n".join(xml_text(line) for line in lines)


def _case(r: Result, j: Judgement) -> TestCase:
    case = TestCase(
        name=xml_text(r.id),
        classname=f"hostaudit.{xml_text(r.check.category)}",
        elapsed_sec=round(r.duration_ms / 1000.0, 6),
    )
    severity = str(r.effective_severity)
    message = xml_text(j.headline(r.outcome.message))
    body = _details(r, j)
    verdict = j.verdict
    if verdict.counts:  # exactly the results that set exit code 1
        case.add_failure_info(message=message, output=body, failure_type=severity)
    elif verdict is Verdict.ERROR:
        case.add_error_info(message=message, output=body, error_type=severity)
    elif verdict is Verdict.WAIVED:
        reason = xml_text(r.waiver or "waived by policy")
        case.add_skipped_info(message=f"waived: {reason}", output=body)
    elif verdict is Verdict.SKIPPED or verdict is Verdict.BELOW_THRESHOLD:
        case.add_skipped_info(message=message, output=body)
    elif verdict is Verdict.WARNED:
        case.stdout = f"WARNING: {body}"  # passes, but the warning stays visible in CI
    else:
        case.stdout = body
    return case


def target_name(report: Report) -> str:
    """What was audited, in a word: the hostname, else the root's directory name."""
    t = report.target
    return t.hostname or os.path.basename(t.root.rstrip("/")) or t.root


def _properties(report: Report) -> dict[str, str]:
    t = report.target
    props = {
        "target": target_name(report),
        "hostname": t.hostname,
        "kernel_release": t.kernel_release,
        "arch": t.arch,
        "os": t.os,
        "target_mode": t.mode.value,
        "target_root": t.root,
        "profile": report.profile,
        "tool": "hostaudit",
        "tool_version": report.tool_version,
        "started_at": report.started_at,
        "fail_on": str(report.gate.fail_on),
        "strict": "true" if report.gate.strict else "false",
        "required": " ".join(report.gate.required),
    }
    return {k: xml_text(v if v is not None else "unknown") for k, v in props.items()}


def _suites(report: Report) -> list[TestSuite]:
    by_category: dict[str, list[tuple[Result, Judgement]]] = {}
    for r, j in report.judged():  # already sorted by id
        by_category.setdefault(r.check.category, []).append((r, j))
    props = _properties(report)
    hostname = xml_text(report.target.hostname) if report.target.hostname else None
    return [
        TestSuite(
            name=f"hostaudit.{xml_text(category)}",
            test_cases=[_case(r, j) for r, j in results],
            hostname=hostname,
            timestamp=report.started_at,
            properties=dict(props),
        )
        for category, results in sorted(by_category.items())
    ]


def _time(seconds: float) -> str:
    # junit-xml writes str(float), which turns into "1e-05" for tiny sums; the Jenkins schema's
    # SUREFIRE_TIME pattern only accepts plain decimals
    return f"{seconds:.6f}"


def _fix_tree(root: ET.Element, suites: Iterable[TestSuite]) -> None:
    for elem in root.iter():
        # junit-xml 1.9 writes disabled="0" on <testsuites> and <testsuite>; the Jenkins xUnit
        # schema (junit-10.xsd) rejects the attribute, and hostaudit never disables a check (a
        # disabled one is a skip), so it carries no information: drop it rather than fail validation
        elem.attrib.pop("disabled", None)
    total = 0.0
    for elem, suite in zip(root.findall("testsuite"), suites, strict=True):
        seconds = sum(c.elapsed_sec or 0.0 for c in suite.test_cases)
        total += seconds
        elem.set("time", _time(seconds))
    root.set("time", _time(total))
    root.set("name", "hostaudit")


def render(report: Report, *, exit_code: int) -> str:
    """JUnit XML (Jenkins junit-10.xsd), by the report's gate: a result that counts towards exit 1 is
    a ``<failure>`` (type = severity; a required check that could not be checked says so), an
    ``error`` that does not count an ``<error>``, a waived result, a skip and a failure below
    ``--fail-on`` are ``<skipped>`` with a message that says which, a warning without ``--strict``
    passes with the warning in ``system-out``."""
    suites = _suites(report)
    root = ET.fromstring(to_xml_report_string(suites, prettyprint=False))
    _fix_tree(root, suites)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
