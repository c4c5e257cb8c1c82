"""JSON reporter: the schema_version 1 document, keys sorted for stable diffs."""

from __future__ import annotations

from audit.model import Report
from reports import jsontext
from reports.document import report_dict
from reports.sanitize import sanitize_tree


def render(report: Report, *, exit_code: int) -> str:
    doc = sanitize_tree(report_dict(report, exit_code=exit_code))  # host bytes that are not UTF-8: shown as \xNN
    return jsontext.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
