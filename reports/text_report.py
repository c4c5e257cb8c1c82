"""Terminal reporter: a table of results (problems first), what to run to fix them, a summary line.

On a terminal the table comes first and wraps at the terminal's width. Anywhere else (a CI log, a
pipe, a ``.txt`` file) what to fix comes first, so the first lines of a log say what matters, then
the whole table; lines wrap at 100 columns. Commands are never wrapped: they are copied as they are.

Every value from the host, a plugin or a policy reaches the terminal through ``printable``: one line,
control and bidi characters shown as escapes."""

from __future__ import annotations

from audit.model import Judgement, Report, Result, Status, Verdict
from reports.document import evidence_text, gate_text
from reports.sanitize import printable, shell_hint

ORDER = {Status.FAIL: 0, Status.ERROR: 1, Status.WARN: 2, Status.WAIVED: 3, Status.SKIP: 4, Status.PASS: 5}
COLORS = {
    Status.FAIL: "31;1",
    Status.ERROR: "35;1",
    Status.WARN: "33;1",
    Status.WAIVED: "36",
    Status.SKIP: "2",
    Status.PASS: "32",
}
HEADERS = ("status", "severity", "id", "message")
IMAGE_ROOT = '"$ROOT"'  # how audit.remedy writes paths inside an image root
#: where lines wrap when the output is not a terminal (a CI log, a file)
PLAIN_WIDTH = 100
#: the narrowest message column a table gets, however narrow the terminal
MIN_MESSAGE = 24


def _paint(text: str, status: Status, color: bool) -> str:
    return f"\x1b[{COLORS[status]}m{text}\x1b[0m" if color else text


def header(report: Report) -> str:
    t = report.target
    where = {"live": f"live host {t.hostname or '?'}", "image": f"image {t.root}"}.get(
        t.mode.value, f"{t.mode.value} {t.hostname or t.root}"
    )
    parts = [f"hostaudit {report.tool_version}: {where}"]
    if t.os:
        parts.append(t.os)
    if t.kernel_release:
        parts.append(f"kernel {t.kernel_release}")
    if t.arch:
        parts.append(t.arch)
    parts.append(f"profile {report.profile}")
    return printable(", ".join(parts))


def summary_line(report: Report, exit_code: int) -> str:
    counts = report.summary()
    shown = ", ".join(f"{n} {s}" for s, n in counts.items() if n or s in ("pass", "fail"))
    return printable(f"{len(report.results)} checks: {shown}; gate: {gate_text(report)}; exit code {exit_code}")


def _sorted(results: tuple[Result, ...]) -> list[Result]:
    return sorted(results, key=lambda r: (ORDER[r.status], -int(r.effective_severity), r.id))


def _wrapped(text: str, width: int, indent: str) -> list[str]:
    """``text`` (already printable: one line) as lines of at most ``width`` columns, each after
    ``indent``; a word longer than a line stays whole (a path is not cut)."""
    import textwrap

    return textwrap.wrap(text, width=max(width, len(indent) + MIN_MESSAGE), initial_indent=indent,
                         subsequent_indent=indent + "  ", break_long_words=False, break_on_hyphens=False) or [indent]


def wrap_cell(text: str, width: int) -> str:
    """``text`` wrapped as tabulate's ``maxcolwidths`` wraps a cell (``textwrap`` at ``width``, the
    lines joined by newlines), for text without colour codes (printable text has none). Done here,
    tabulate's own wrapping (it measures every piece through a regular expression, for colour codes)
    was half the time of rendering the table."""
    import textwrap

    return "\n".join(textwrap.TextWrapper(width=width).wrap(text))


def remediation_block(r: Result, j: Judgement | None = None, *, width: int | None = None) -> list[str]:
    """One result's fix: its headline, evidence, why, the commands (never wrapped) and whether a
    reboot is needed. ``width``: wrap the prose at this many columns."""
    def prose(text: str, indent: str) -> list[str]:
        return _wrapped(text, width, indent) if width else [indent + text]

    message = j.headline(r.outcome.message) if j is not None else r.outcome.message
    out = prose(printable(f"[{r.status.value.upper()}] {r.id} ({r.effective_severity}): {message}"), "")
    for ev in r.outcome.evidence:
        out += prose(printable(evidence_text(ev)), "    ")
    rem = r.outcome.remediation
    if rem is not None:
        if rem.notes:
            out += prose(f"why: {printable(rem.notes)}", "    ")
        out.extend(f"    $ {printable(cmd)}" for cmd in rem.commands)
        if rem.reboot_required:
            out.append("    (a reboot is needed for this to take effect)")
    if r.waiver:
        out += prose(f"waiver: {printable(r.waiver)}", "    ")
    return out


def render(report: Report, *, exit_code: int, color: bool = False, show: frozenset[str] | None = None,
           width: int | None = None) -> str:
    """The table, the fixes and the summary line. ``show`` (``--show fail,warn``): only results of
    these statuses in the table and the fixes; the summary line still counts every result.
    ``width``: the terminal's width (table first); None when the output is not a terminal (what to
    fix first, then the table, at PLAIN_WIDTH columns)."""
    from tabulate import tabulate

    on_terminal = width is not None
    columns = width if width is not None else PLAIN_WIDTH
    ordered = [(r, report.judge(r)) for r in _sorted(report.results)]
    hidden = 0
    if show is not None:
        kept = [(r, j) for r, j in ordered if r.status.value in show]
        hidden = len(ordered) - len(kept)
        ordered = kept
    rows = [
        (
            _paint(r.status.value.upper(), r.status, color),
            str(r.effective_severity),
            printable(r.id),
            printable(j.headline(r.outcome.message)),
        )
        for r, j in ordered
    ]
    # the message column gets what the other columns leave of the width: tabulate makes a column as
    # wide as its widest value or its header and two more, and puts two spaces between columns
    plain = [(r.status.value.upper(), str(r.effective_severity), printable(r.id)) for r, _ in ordered]
    fixed = sum(max([len(h) + 2, *(len(row[i]) for row in plain)]) + 2 for i, h in enumerate(HEADERS[:3]))
    message_width = max(MIN_MESSAGE, columns - fixed)
    table = tabulate([(*row[:3], wrap_cell(row[3], message_width)) for row in rows], headers=HEADERS,
                     disable_numparse=True)
    todo = [(r, j) for r, j in ordered
            if r.status in (Status.FAIL, Status.ERROR, Status.WARN) or j.verdict is Verdict.REQUIRED_UNKNOWN]
    fixes: list[str] = []
    if todo:
        fixes.append("What to fix:")
        if any(IMAGE_ROOT in cmd for r, _ in todo if r.outcome.remediation for cmd in r.outcome.remediation.commands):
            root = shell_hint(report.target.root)  # as it is typed
            fixes.append(printable(f'(image commands: "$ROOT" is the image root, here ROOT={root}; --fix-script '
                                   "writes them as a script that takes the root as its only argument)"))
        for r, j in todo:
            fixes += remediation_block(r, j, width=columns)
    lines = [header(report), ""]
    if on_terminal or not fixes:
        lines.append(table)
        if fixes:
            lines += ["", *fixes]
    else:
        lines += [*fixes, "", "All results:", table]
    for problem in report.problems:
        lines.append(f"problem: {printable(problem)}")
    if hidden:
        lines += ["", f"({hidden} results not shown: --show {','.join(sorted(show or ()))})"]
    lines += ["", summary_line(report, exit_code)]
    return "\n".join(lines) + "\n"
