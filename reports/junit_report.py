"""JUnit XML reporter for CI: one ``testsuite`` per check category, one ``testcase`` per check.

The only module that imports junit-xml (old, and it pulls in six): JSON and text runs never load it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable

from junit_xml import TestCase, TestSuite, to_xml_report_string

from audit.model import Report, Result, Status
from reports.document import evidence_text
from reports.sanitize import printable

#: Code points XML 1.0 forbids even as character references, after ``printable`` has escaped the C0/C1
#: controls: lone surrogates (from surrogateescape decoding) and the non-characters U+FFFE/U+FFFF.
_NOT_XML = re.compile("[\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: str | None, *, multiline: bool = False) -> str:
    """Host text made valid and visible in XML: controls become ``\\xNN`` instead of being dropped
    (junit-xml's own cleaning deletes them silently, which hides what the host really had)."""
    out = printable(text or "", keep_newlines=multiline)
    if multiline:
        out = out.replace("\t", " ")
    return _NOT_XML.sub(lambda m: f"\\u{ord(m.group(0)):04x}", out)


def _details(r: Result) -> str:
    """Body of a failure/error/skip/system-out: evidence, then what to run."""
    lines = [r.outcome.message]
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
    return "\n".join(_xml_text(line) for line in lines)


def _case(r: Result, *, strict: bool) -> TestCase:
    case = TestCase(
        name=_xml_text(f"{r.id}: {r.check.title}"),
        classname=f"hostaudit.{_xml_text(r.check.category)}",
        elapsed_sec=round(r.duration_ms / 1000.0, 6),
    )
    severity = str(r.effective_severity)
    message = _xml_text(r.outcome.message)
    body = _details(r)
    status = r.status
    if status is Status.FAIL:
        case.add_failure_info(message=message, output=body, failure_type=severity)
    elif status is Status.ERROR:
        case.add_error_info(message=message, output=body, error_type=severity)
    elif status is Status.SKIP:
        case.add_skipped_info(message=message, output=body)
    elif status is Status.WAIVED:
        reason = _xml_text(r.waiver or "waived by policy")
        case.add_skipped_info(message=f"waived: {reason}", output=body)
    elif status is Status.WARN and strict:
        # --strict makes warnings fail the exit code; CI dashboards should agree with it
        case.add_failure_info(message=f"warning (strict): {message}", output=body, failure_type=severity)
    elif status is Status.WARN:
        case.stdout = f"WARNING: {body}"  # passes, but the warning stays visible in CI
    else:
        case.stdout = body
    return case


def _properties(report: Report) -> dict[str, str]:
    t = report.target
    props = {
        "hostname": t.hostname,
        "kernel_release": t.kernel_release,
        "os": t.os,
        "target_mode": t.mode.value,
        "target_root": t.root,
        "profile": report.profile,
        "tool": "hostaudit",
        "tool_version": report.tool_version,
        "started_at": report.started_at,
    }
    return {k: _xml_text(v if v is not None else "unknown") for k, v in props.items()}


def _suites(report: Report, *, strict: bool) -> list[TestSuite]:
    by_category: dict[str, list[Result]] = {}
    for r in report.results:  # already sorted by id
        by_category.setdefault(r.check.category, []).append(r)
    props = _properties(report)
    hostname = _xml_text(report.target.hostname) if report.target.hostname else None
    return [
        TestSuite(
            name=f"hostaudit.{_xml_text(category)}",
            test_cases=[_case(r, strict=strict) for r in results],
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


def render(report: Report, *, exit_code: int, strict: bool = False) -> str:
    """JUnit XML (Jenkins junit-10.xsd). ``fail`` is a failure (type = severity), ``error`` an error,
    ``skip`` and ``waived`` are skipped, ``warn`` passes with the warning in ``system-out`` unless
    ``strict``, where it fails like the exit code does."""
    suites = _suites(report, strict=strict)
    root = ET.fromstring(to_xml_report_string(suites, prettyprint=False))
    _fix_tree(root, suites)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
