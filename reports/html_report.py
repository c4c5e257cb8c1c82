"""HTML reporter: one self-contained page (inline CSS and JS, nothing fetched) for people.

Built from the JSON document (``report_dict``) with jinja2, autoescaped by the template's ``.html``
name; every value from the host goes through the ``show`` filter (``reports.sanitize.html_text``),
which also makes control and bidi characters visible. Imported only when an HTML report is asked for.

The page opens with "What to fix" (``to_fix``: what the text report's "What to fix:" lists, in its
order), every finding open, then every result by category. It reads the same without its style and
script, as a CI server's sandbox CSP, a mail client or a text browser shows it.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from markupsafe import Markup

from audit.model import Report, Status, Verdict
from reports.document import gate_text, report_dict
from reports.sanitize import html_text, shell_hint
from reports.text_report import IMAGE_ROOT

#: problems first, passes last: the reader looks at the top
STATUS_ORDER: tuple[str, ...] = tuple(
    s.value for s in (Status.FAIL, Status.ERROR, Status.WARN, Status.WAIVED, Status.SKIP, Status.PASS)
)
_RANK = {s: i for i, s in enumerate(STATUS_ORDER)}
_SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


def show(text: object, multiline: bool = False) -> Markup:
    """The template's ``show`` filter: host text as the reader should see it (``html_text``: control
    and bidi characters visible, so they cannot hide or reorder what the page says; escaped), marked
    safe so that autoescape does not escape it twice."""
    return Markup(html_text(text, multiline=multiline))


def _csp_hash(text: object) -> str:
    """The CSP source for an inline block: the page runs its own script and style, nothing else,
    even if some host value ever slipped past escaping."""
    digest = hashlib.sha256(str(text).encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


#: the statuses "What to fix" lists, beside required checks that could not be checked (as the text report)
TO_FIX = frozenset({Status.FAIL.value, Status.ERROR.value, Status.WARN.value})


def _order(row: dict[str, Any]) -> tuple[int, int, str]:
    """Problems first, then the most severe: the text report's order (``text_report._sorted``)."""
    return _RANK[row["status"]], _SEVERITY_RANK.get(row["severity"], 9), row["id"]


def to_fix(doc: dict[str, Any]) -> dict[str, Any]:
    """The template's ``to_fix`` filter: the results "What to fix" shows, as the text report picks them
    (failures, errors, warnings, and required checks that could not be checked: everything the gate
    may count), worst first; and ``root``, the image root as a shell word when a command works under
    ``"$ROOT"`` (else ""). A filter, not a render() argument, so every page made from report.html
    (``reports.fleet_host`` too) gets it."""
    rows = sorted((r for r in doc["results"]
                   if r["status"] in TO_FIX or r["gate"]["status"] == Verdict.REQUIRED_UNKNOWN.value), key=_order)
    image = any(IMAGE_ROOT in c for r in rows if r["remediation"] for c in r["remediation"]["commands"])
    return {"results": rows, "root": shell_hint(doc["target"]["root"]) if image else ""}


FILTERS = {"csp_hash": _csp_hash, "show": show, "to_fix": to_fix}


def _env() -> Any:
    from reports.templates_env import environment

    return environment("report.html", FILTERS)  # compiled ahead of time where it can (tools/gen_templates.py)


def _groups(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Results by category; categories with the worst status first, then by name."""
    by_category: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_category.setdefault(r["category"], []).append(r)
    groups = []
    for category, rows in by_category.items():
        rows.sort(key=_order)
        counts = {s: sum(1 for r in rows if r["status"] == s) for s in STATUS_ORDER}
        groups.append({"category": category, "results": rows, "counts": counts})
    groups.sort(key=lambda g: (_RANK[g["results"][0]["status"]], g["category"]))
    return groups


def render(report: Report, *, exit_code: int) -> str:
    doc = report_dict(report, exit_code=exit_code)
    rationale = {r.id: r.check.rationale for r in report.results}
    for row in doc["results"]:
        row["rationale"] = rationale.get(row["id"], "")
    template = _env().get_template("report.html")
    return template.render(
        doc=doc,
        groups=_groups(doc["results"]),
        statuses=STATUS_ORDER,
        summary=doc["summary"],
        total=len(doc["results"]),
        gate_text=gate_text(report),
    )
