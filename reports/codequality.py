"""GitLab code quality reporter (``-o gl-code-quality.codequality.json``, ``-o codequality:PATH``,
``--format codequality``): the JSON array a job's ``artifacts:reports:codequality`` takes.

One issue per failure or warning, and per required check that could not be checked (the findings of
reports.sarif, from the same data and with the same locations); waived results are left out (the
format has no suppression: the policy accepted them) and so are errors (the job log and exit code 3
say them). Each issue:

* ``description``: the gate's note and the message, one printable line;
* ``check_name``: the check id;
* ``fingerprint``: sha256 hex of the check id, a NUL and ``location.path`` (reports.sarif.fingerprint:
  the same value as the SARIF ``partialFingerprints``), stable across runs and distinct per check and
  path, so GitLab tells a new finding from one that stayed;
* ``severity``: from the check's effective severity: info ``info``, low ``minor``, medium ``major``,
  high ``critical``, critical ``blocker``;
* ``location.path``: the evidence file relative to the audited root, under ``--source-prefix DIR``
  when given (the pseudo-location ``.hostaudit/<check id>`` when the finding names no file), and
  ``location.lines.begin`` its line (1 when the evidence gives none).

Strings are ``display_text`` (reports.sanitize): printable, one line. Array order is report order
(results sorted by check id), so the file is stable for equal input.
"""

from __future__ import annotations

import json
from typing import Any

from audit.model import Report, Result, Severity, Status
from reports.sanitize import display_text, printable, sanitize_tree
from reports.sarif import fingerprint, is_finding, places

SEVERITIES = {
    Severity.INFO: "info",
    Severity.LOW: "minor",
    Severity.MEDIUM: "major",
    Severity.HIGH: "critical",
    Severity.CRITICAL: "blocker",
}


def _issue(r: Result, headline: str, source_prefix: str | None) -> dict[str, Any]:
    primary, _ = places(r, source_prefix)
    return {
        "description": printable(headline) or display_text(r.check.title),
        "check_name": display_text(r.id),
        "fingerprint": fingerprint(r.id, primary.path),
        "severity": SEVERITIES[r.effective_severity],
        "location": {"path": primary.path, "lines": {"begin": primary.line or 1}},
    }


def issues(report: Report, *, source_prefix: str | None = None) -> list[dict[str, Any]]:
    return [_issue(r, j.headline(r.outcome.message), source_prefix)
            for r, j in report.judged() if is_finding(r, j) and r.status is not Status.WAIVED]


def render(report: Report, *, exit_code: int, source_prefix: str | None = None) -> str:
    doc = sanitize_tree(issues(report, source_prefix=source_prefix))
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
