"""The report as plain data (schema_version 1): what JSON is, and what other reporters start from.

Strings here are as the host, the plugins and the policy gave them; each reporter makes them safe
for its format with reports.sanitize (JSON: ``sanitize_tree``)."""

from __future__ import annotations

from typing import Any

from audit.model import Evidence, Judgement, Report, Result, Verdict

SCHEMA_VERSION = 1


def evidence_text(ev: Evidence) -> str:
    """One evidence line as every text-like format shows it: what was read where, and what was wanted."""
    return f"read {ev.source}: {ev.observed}" + (f" (expected {ev.expected})" if ev.expected else "")


def gate_text(report: Report) -> str:
    """How many results count towards exit 1 and by which gate, as the text summary line and the
    HTML header both say it: ``8 counting (--fail-on low)``, ``3 counting (--fail-on medium, required:
    boot.*; 2 of them required but not checked, 1 below the threshold, not counting)``."""
    g = report.gate_summary()
    counting = g[Verdict.FAILED.value] + g[Verdict.REQUIRED_UNKNOWN.value]
    extras = []
    if g[Verdict.REQUIRED_UNKNOWN.value]:
        extras.append(f"{g[Verdict.REQUIRED_UNKNOWN.value]} of them required but not checked")
    if g[Verdict.BELOW_THRESHOLD.value]:
        extras.append(f"{g[Verdict.BELOW_THRESHOLD.value]} below the threshold, not counting")
    detail = report.gate.describe() + ("; " + ", ".join(extras) if extras else "")
    return f"{counting} counting ({detail})"


def result_dict(r: Result, j: Judgement) -> dict[str, Any]:
    rem = r.outcome.remediation
    return {
        "id": r.id,
        "title": r.check.title,
        "category": r.check.category,
        "severity": str(r.effective_severity),
        "status": r.status.value,
        "message": r.outcome.message,
        "not_applicable": r.outcome.not_applicable,
        "evidence": [
            {"source": e.source, "observed": e.observed, "expected": e.expected} for e in r.outcome.evidence
        ],
        "remediation": None
        if rem is None
        else {"commands": list(rem.commands), "reboot_required": rem.reboot_required, "notes": rem.notes},
        "plugin": r.plugin,
        "waiver": r.waiver,
        "duration_ms": round(r.duration_ms, 3),
        "required": j.required,
        "gate": {"status": j.verdict.value, "counts": j.counts, "note": j.note},
    }


def report_dict(report: Report, *, exit_code: int) -> dict[str, Any]:
    t = report.target
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "hostaudit", "version": report.tool_version},
        "target": {
            "mode": t.mode.value,
            "root": t.root,
            "hostname": t.hostname,
            "kernel_release": t.kernel_release,
            "kernel_release_source": t.kernel_release_source,
            "os": t.os,
            "os_id": t.os_id,
            "arch": t.arch,
            "arch_source": t.arch_source,
        },
        "profile": report.profile,
        "started_at": report.started_at,
        "duration_ms": round(report.duration_ms, 3),
        "summary": report.summary(),
        "exit_code": int(exit_code),
        "problems": list(report.problems),
        "gate": {
            "fail_on": str(report.gate.fail_on),
            "strict": report.gate.strict,
            "required": list(report.gate.required),
            "counting": len(report.counting()),
            "summary": report.gate_summary(),
        },
        "results": [result_dict(r, j) for r, j in report.judged()],
    }
