"""Prometheus text exposition (format 0.0.4) for node_exporter's textfile collector: ``-o x.prom``.

One series per check, its current status in a label, so a query or an alert needs no join::

    hostaudit_check_status{id="boot.hugepages",category="boot",severity="high",status="fail"} 1

plus the count of checks per status and gate verdict, when the run ended and how long it took, its
exit code and a build-info series. Everything a host supplied reaches a label value only through
``label_value`` (backslash, double quote and line feed escaped, as the format requires; control
characters and bytes that were not UTF-8 shown visibly): host text never becomes exposition syntax.
The metric names are fixed here; nothing read from a host becomes a name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from audit.model import Report, Status
from reports.sanitize import prom_label_value

PREFIX = "hostaudit_"


def label_value(text: str) -> str:
    """A label value for the text format: ``\\``, ``"`` and newline escaped; the rest made printable
    (``reports.sanitize.prom_label_value``, where every format's rule lives)."""
    return prom_label_value(text)


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{label_value(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _family(name: str, kind: str, help_text: str, samples: Iterable[tuple[Mapping[str, str], float]]) -> list[str]:
    out = [f"# HELP {PREFIX}{name} {help_text}", f"# TYPE {PREFIX}{name} {kind}"]
    out.extend(f"{PREFIX}{name}{_labels(labels)} {_number(value)}" for labels, value in samples)
    return out


def _finished_at(report: Report) -> float:
    try:
        started = dt.datetime.strptime(report.started_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return 0.0
    return started.timestamp() + report.duration_ms / 1000.0


def families(report: Report, *, exit_code: int, extra: Mapping[str, str] | None = None) -> list[str]:
    """The exposition lines of one report; ``extra`` labels (a fleet's ``host``) go on every series."""
    base = dict(extra or {})
    judged = report.judged()
    lines: list[str] = []
    lines += _family(
        "check_status", "gauge",
        "Result of each check in the last run: 1 for the series whose status label is the current one.",
        ((base | {"id": r.id, "category": r.check.category, "severity": str(r.effective_severity),
                  "status": r.status.value}, 1) for r, _ in judged),
    )
    lines += _family(
        "check_gate", "gauge",
        "1 when the check counts towards a failing exit code in the last run (the gate's verdict).",
        ((base | {"id": r.id, "verdict": j.verdict.value}, 1 if j.verdict.counts else 0) for r, j in judged),
    )
    counts = report.summary()
    lines += _family("checks", "gauge", "Number of checks per status in the last run.",
                     ((base | {"status": s.value}, counts.get(s.value, 0)) for s in Status))
    lines += _family("last_run_timestamp_seconds", "gauge", "When the last run ended (Unix time).",
                     [(base, _finished_at(report))])
    lines += _family("run_duration_seconds", "gauge", "How long the last run took.",
                     [(base, round(report.duration_ms / 1000.0, 6))])
    lines += _family("exit_code", "gauge",
                     "Exit code of the last run: 0 passed, 1 failed the gate, 2 unusable input, 3 checks errored.",
                     [(base, exit_code)])
    t = report.target
    info = base | {"version": report.tool_version, "profile": report.profile, "mode": t.mode.value,
                   "kernel_release": t.kernel_release or "", "os": t.os or "", "arch": t.arch or ""}
    lines += _family("build_info", "gauge", "hostaudit's version and what it audited; always 1.", [(info, 1)])
    return lines


def render(report: Report, *, exit_code: int) -> str:
    return "\n".join(families(report, exit_code=exit_code)) + "\n"
