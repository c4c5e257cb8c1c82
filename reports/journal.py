"""Lines for the systemd journal, each with its priority (sd-daemon(3) ``<N>`` prefixes), used when
standard output is the journal (``$JOURNAL_STREAM`` names it): a timer's run then logs its findings
at priority warning, its errors at err, and the rest at info, without a table made for terminals."""

from __future__ import annotations

import os
from typing import Any

from audit.model import Report, Status
from reports.sanitize import printable

ERR, WARNING, NOTICE, INFO = 3, 4, 5, 6


def is_journal(stream: Any) -> bool:
    """True when ``stream`` is the journal stream systemd connected (``$JOURNAL_STREAM`` = dev:ino)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    dev, sep, ino = value.partition(":")
    if not sep:
        return False
    try:
        st = os.fstat(stream.fileno())
        return (st.st_dev, st.st_ino) == (int(dev), int(ino))
    except (OSError, ValueError, AttributeError):
        return False


def line(priority: int, text: str) -> str:
    """One journal line: host text made ``printable``, so it can neither start a line (and a priority
    prefix) of its own nor carry terminal escapes into ``journalctl``."""
    return f"<{priority}>{printable(text)}\n"


def render(report: Report, *, exit_code: int) -> str:
    out = []
    for r, j in report.judged():
        if r.status is Status.PASS:
            continue
        priority = ERR if r.status is Status.ERROR else WARNING if j.verdict.counts or r.status in (
            Status.FAIL, Status.WARN) else INFO
        what = f"{r.status.value.upper()} {r.effective_severity} {r.id}: {j.headline(r.outcome.message)}"
        out.append(line(priority, what))
    counts = report.summary()
    shown = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    out.append(line(WARNING if exit_code == 1 else ERR if exit_code in (2, 3) else INFO,
                    f"{len(report.results)} checks: {shown}; exit code {exit_code}"))
    return "".join(out)
