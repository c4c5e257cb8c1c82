"""Remediation script: bash that applies the fixes of the failed checks, for a person to review and
run as root. hostaudit writes it and never runs it.

Everything in it that came from the audited host is either inside a comment, made one line by
``printable`` (no newline can end the comment and start a command), or inside a command that the
check built with ``shlex.quote``. A command that could still break out of its own line (an
unterminated quote, a newline outside quotes, a trailing backslash, control characters) is not
emitted as code: it is shown as a comment, and the reader decides.
"""

from __future__ import annotations

import shlex

from audit.model import Report, Result, Status
from reports.document import evidence_text
from reports.sanitize import printable

RULE = "# " + "-" * 94
#: characters after which a ``#`` begins a bash comment (it must start a word)
_WORD_BREAK = " \t\n;&|()<>"


def comment(text: str) -> str:
    """One comment line, whatever ``text`` holds: newlines and control characters become visible."""
    return f"# {printable(text)}".rstrip()


def unsafe_command(cmd: str) -> str | None:
    """Why ``cmd`` cannot go into the script as one command, or None when it can.

    A conservative scan of bash quoting: it may refuse an exotic but valid line (then the reader
    sees it as a comment), never the other way round.
    """
    if not cmd.strip():
        return "empty command"
    if printable(cmd, keep_newlines=True) != cmd:
        return "it contains control characters"
    quote = ""  # "", "'", '"' or "$'" (ANSI-C quoting, where backslash escapes)
    i = 0
    word_start = True
    while i < len(cmd):
        c = cmd[i]
        if quote == "'":
            if c == "'":
                quote = ""
        elif quote in ('"', "$'"):
            if c == "\\":
                i += 1
            elif c == quote[-1]:
                quote = ""
        elif c == "\\":
            if i + 1 >= len(cmd):
                return "it ends with a backslash, which would join it to the next line"
            i += 1
        elif c == "'":
            quote = "$'" if i > 0 and cmd[i - 1] == "$" else "'"
        elif c == '"':
            quote = '"'
        elif c == "#" and word_start:
            if "\n" in cmd[i:]:
                return "a newline after its comment would start a new command"
            return None
        elif c == "\n":
            return "a newline outside quotes would start a new command"
        word_start = quote == "" and c in _WORD_BREAK
        i += 1
    if quote:
        return "it has an unterminated quote"
    return None


def _is_comment(cmd: str) -> bool:
    return cmd.lstrip().startswith("#")


def _header(report: Report, failed: list[Result]) -> list[str]:
    t = report.target
    where = "live host" if t.mode.value == "live" else f"{t.mode.value} at {t.root}"
    lines = [
        "#!/usr/bin/env bash",
        # host values are single-quoted on purpose (shlex.quote): a "$(...)" in them is data, which
        # shellcheck's SC2016 would report as a likely mistake
        "# shellcheck disable=SC2016",
        "# hostaudit remediation script: the fixes for the failed checks of this audit.",
        "#",
        comment(f"host:      {t.hostname or 'unknown'} ({where})"),
        comment(f"os:        {t.os or 'unknown'}"),
        comment(f"kernel:    {t.kernel_release or 'unknown'}"),
        comment(f"profile:   {report.profile}"),
        comment(f"audited:   {report.started_at}"),
        comment(f"generated: hostaudit {report.tool_version}"),
        comment(f"findings:  {len(failed)} failed of {len(report.results)} checks"),
        "#",
        "# hostaudit never runs this script. Read every command before running it as root on the",
        "# audited host. Each section changes the running system first, then makes the change",
        "# persistent, in the order its check gave. Warnings, waived and skipped checks are not here.",
    ]
    if t.mode.value != "live":
        lines += [
            "#",
            comment(f"This audit read the {t.mode.value} at {t.root}, not a running host: the commands act"),
            "# on the machine that runs them. Run them inside that system (chroot, or after booting it).",
        ]
    lines += [
        "",
        "set -euo pipefail",
        "",
        'if [[ "${EUID}" -ne 0 ]]; then',
        "    echo 'hostaudit remediation: run this script as root (it changes system settings)' >&2",
        "    exit 1",
        "fi",
    ]
    return lines


def _section(n: int, total: int, r: Result, done: dict[str, str]) -> list[str]:
    out = [
        "",
        RULE,
        comment(f"[{n}/{total}] {r.id} ({r.effective_severity}): {r.check.title}"),
        comment(f"finding: {r.outcome.message}"),
    ]
    out += [comment(evidence_text(ev)) for ev in r.outcome.evidence]
    rem = r.outcome.remediation
    if rem is not None and rem.notes:
        out.append(comment(f"why: {rem.notes}"))
    if rem is not None and rem.reboot_required:
        out.append("# needs a reboot to take effect")
    out.append(RULE)
    out.append(f"printf '==> %s\\n' {shlex.quote(printable(f'[{n}/{total}] {r.id}'))}")
    commands = rem.commands if rem is not None else ()
    if not commands:
        out.append(comment(f"no command can fix this automatically: see 'hostaudit explain {r.id}'"))
    for cmd in commands:
        if _is_comment(cmd):
            out.append(comment(cmd.strip()[1:].lstrip()))
            continue
        problem = unsafe_command(cmd)
        if problem is not None:
            out.append(comment(f"NOT RUN, {problem}; review it and run it by hand if right: {cmd}"))
            continue
        if cmd in done:
            out.append(comment(f"already run above for {done[cmd]}: {cmd}"))
            continue
        done[cmd] = r.id
        out.append(cmd)
    return out


def render(report: Report, *, exit_code: int) -> str:
    """Bash for the ``fail`` results only, sections in report order (by id)."""
    failed = [r for r in report.results if r.status is Status.FAIL]
    lines = _header(report, failed)
    if not failed:
        lines += ["", "# No failed checks: nothing to remediate.", "echo 'hostaudit: nothing to fix'"]
        return "\n".join(lines) + "\n"
    done: dict[str, str] = {}
    for n, r in enumerate(failed, start=1):
        lines += _section(n, len(failed), r, done)
    reboot = [r.id for r in failed if r.outcome.remediation and r.outcome.remediation.reboot_required]
    lines += ["", RULE]
    if reboot:
        lines += [
            comment(f"A reboot is needed before these take effect: {', '.join(reboot)}"),
            RULE,
            "echo " + shlex.quote(printable(f"hostaudit: done; reboot for these to take effect: {' '.join(reboot)}"))
            + " >&2",
        ]
    else:
        lines += ["# Done: no reboot needed.", RULE, "echo 'hostaudit: done; re-run hostaudit to verify' >&2"]
    return "\n".join(lines) + "\n"
