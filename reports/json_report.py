"""JSON reporter: the schema_version 1 document, keys sorted for stable diffs."""

from __future__ import annotations

import json

from audit.model import Report
from reports.document import report_dict


def render(report: Report, *, exit_code: int) -> str:
    return json.dumps(report_dict(report, exit_code=exit_code), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
