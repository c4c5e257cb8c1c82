"""What a fleet run makes of each host's report, in the worker process that audited it.

The worker renders only what the chosen outputs need: the host's schema-v1 JSON document (an item of
the fleet document's ``hosts``), its JUnit ``testsuite``, its Prometheus samples (with a ``host`` and a
``snapshot`` label), and writes its own HTML page and remediation script into their directories.
The text goes back to the parent, which appends it to the fleet's files in input order; the report
itself is dropped here. Every value from the host goes through the reporters' own escaping
(``reports.sanitize``: ``xml_text``, ``prom_label_value`` through ``prometheus.families``, ``html_text``
through the templates' ``show`` filter, under jinja autoescape).
"""

from __future__ import annotations

import functools
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Protocol

from audit.model import Report
from reports.sanitize import xml_text

#: How a host's JSON document is indented inside the fleet document's ``hosts`` array.
JSON_INDENT = "    "
class TaskLike(Protocol):
    """The fleet runner's task: which snapshot, and the file stem its pages are named after."""

    @property
    def path(self) -> str: ...
    @property
    def stem(self) -> str: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class HostOutputs:
    """The per-host work a fleet run asks for."""

    json: bool = False
    junit: bool = False
    prometheus: bool = False
    html_dir: str | None = None  # a page per host, DIR/<stem>.html
    fix_dir: str | None = None  # a remediation script per host, DIR/<stem>.sh
    mode: int | None = None  # --mode for the files written
    notes: bool = False  # -q: the errors and required checks not checked, one line each, for stderr


def host_name(report: Report, task: TaskLike) -> str:
    """What a host is called in the fleet's outputs: its host name, else its snapshot's stem."""
    return report.target.hostname or task.stem


def render_host(report: Report, exit_code: int, task: TaskLike, *, outputs: HostOutputs) -> dict[str, Any]:
    """The parts of the fleet outputs this host contributes; ``write_errors`` lists files that
    could not be written (one line each)."""
    out: dict[str, Any] = {"write_errors": []}
    if outputs.json:
        from reports import json_report

        text = json_report.render(report, exit_code=exit_code).rstrip("\n")
        out["json"] = JSON_INDENT + text.replace("\n", "\n" + JSON_INDENT)
    if outputs.junit:
        out["junit"] = junit_suite(report, task)
    if outputs.prometheus:
        out["prometheus"] = prometheus_samples(report, exit_code, task)
    if outputs.html_dir is not None:
        _write(out, os.path.join(outputs.html_dir, f"{task.stem}.html"), lambda: host_page(report, exit_code),
               outputs.mode)
    if outputs.notes:
        from reports.sanitize import printable

        name = host_name(report, task)
        out["notes"] = [printable(f"{name}: {r.id}: {j.headline(r.outcome.message)}") for r, j in report.judged()
                        if r.status.value == "error" or j.verdict.value == "required_unknown"]
    if outputs.fix_dir is not None:
        from reports import fix_script

        _write(out, os.path.join(outputs.fix_dir, f"{task.stem}.sh"),
               lambda: fix_script.render(report, exit_code=exit_code), outputs.mode)
    return out


def _write(out: dict[str, Any], path: str, make: Any, mode: int | None) -> None:
    try:
        write_file(path, make(), mode=mode)
    except OSError as exc:
        out["write_errors"].append(f"cannot write {path}: {exc.strerror or exc}")


def write_file(path: str, text: str, *, mode: int | None = None) -> None:
    """``path`` written atomically, as ``reports.output.write_atomic`` does, without looking through
    the folder for stale temporary files or syncing it on every write: a fleet's folder holds a file
    per host (the caller cleans it once)."""
    from reports.output import write_atomic_with

    write_atomic_with(path, lambda fh: fh.write(text), mode=mode, clean_stale=False, sync_folder=False)


# -- HTML --------------------------------------------------------------------------------------------
@functools.cache
def _template() -> Any:
    """report.html, compiled once per process (compiling it costs tens of milliseconds a host)."""
    from reports import html_report

    return html_report._env().get_template("report.html")


def host_page(report: Report, exit_code: int) -> str:
    """The host's page: what ``reports.html_report.render`` makes, from a template compiled once."""
    from reports import html_report
    from reports.document import gate_text, report_dict

    doc = report_dict(report, exit_code=exit_code)
    rationale = {r.id: r.check.rationale for r in report.results}
    for row in doc["results"]:
        row["rationale"] = rationale.get(row["id"], "")
    return str(_template().render(
        doc=doc,
        groups=html_report._groups(doc["results"]),
        statuses=html_report.STATUS_ORDER,
        summary=doc["summary"],
        total=len(doc["results"]),
        gate_text=gate_text(report),
    ))


# -- JUnit -------------------------------------------------------------------------------------------
def junit_suite(report: Report, task: TaskLike) -> dict[str, Any]:
    """The host's ``<testsuite>`` (one per host: ``hostaudit.<host>``, a testcase per check named by
    its id, classname ``hostaudit.<host>.<category>``), judged as ``reports.junit_report`` judges,
    and its counts for the ``<testsuites>`` totals."""
    from junit_xml import TestSuite, to_xml_report_string

    from reports import junit_report

    name = xml_text(host_name(report, task))
    cases = []
    for r, j in report.judged():
        case = junit_report._case(r, j)
        case.classname = f"hostaudit.{name}.{xml_text(r.check.category)}"
        cases.append(case)
    props = junit_report._properties(report)
    props["snapshot"] = xml_text(task.path)
    suite = TestSuite(name=f"hostaudit.{name}", test_cases=cases,
                      hostname=xml_text(report.target.hostname) if report.target.hostname else None,
                      timestamp=report.started_at, properties=props)
    root = ET.fromstring(to_xml_report_string([suite], prettyprint=False))
    junit_report._fix_tree(root, [suite])
    elem = root.find("testsuite")
    assert elem is not None
    ET.indent(elem, space="  ", level=1)
    counts = {k: int(elem.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")}
    return {"xml": "  " + ET.tostring(elem, encoding="unicode").rstrip(), "time": float(elem.get("time", "0")),
            **counts}


# -- Prometheus --------------------------------------------------------------------------------------
def prometheus_samples(report: Report, exit_code: int, task: TaskLike) -> list[tuple[str, str, str]]:
    """(``# HELP`` line, ``# TYPE`` line, sample lines) of each family, this host's samples labelled
    ``host`` and ``snapshot``: the parent writes each family's samples from every host together."""
    from reports import prometheus

    lines = prometheus.families(report, exit_code=exit_code,
                                extra={"host": host_name(report, task), "snapshot": task.path})
    out: list[tuple[str, str, str]] = []
    help_line = type_line = ""
    samples: list[str] = []
    for line in lines:
        if line.startswith("# HELP "):
            if help_line:
                out.append((help_line, type_line, "\n".join(samples)))
            help_line, type_line, samples = line, "", []
        elif line.startswith("# TYPE "):
            type_line = line
        else:
            samples.append(line)
    if help_line:
        out.append((help_line, type_line, "\n".join(samples)))
    return out
