"""Remediation script: bash that applies the fixes of the failed checks, for a person to review and
run as root. hostaudit writes it and never runs it.

A live host's script runs on that host. An image's script runs from outside the image with the
image root as its only argument (``bash fix.sh /path/to/root``): it refuses to run without one and
refuses ``/``, and every command changes files under ``"$ROOT"`` only. Commands that regenerate the
boot configuration run once, at the end, after every change to its inputs; what a fix makes a
re-audit ask for next (``audit.remedy.AFTERWARDS`` notes) is repeated in the closing note. Every
command the checks give can run twice and leave the same files (see ``audit.remedy``).

Everything in it that came from the audited host, a plugin or a policy is either inside a comment
(``reports.sanitize.shell_comment``: one printable line, so no newline can end the comment and start
a command), or a word this module quotes (``shell_word``), or inside a command that audit.remedy built
with every host value quoted (``shlex.quote``). A command that could still break out of its own line
(an unterminated quote, a newline outside quotes, a trailing backslash, control characters) is not
emitted as code: it is shown as a comment, and the reader decides.
"""

from __future__ import annotations

from audit.model import Report, Result, Status, TargetMode
from audit.remedy.cmdline import is_regeneration
from audit.remedy.system import AFTERWARDS
from reports.document import evidence_text
from reports.sanitize import printable, shell_comment, shell_hint, shell_word

RULE = "# " + "-" * 94
#: characters after which a ``#`` begins a bash comment (it must start a word)
_WORD_BREAK = " \t\n;&|()<>"


def comment(text: str) -> str:
    """One comment line, whatever ``text`` holds: newlines and control characters become visible."""
    return shell_comment(text)


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


def image_form(report: Report) -> bool:
    """Whether the script fixes an image from outside it: its commands are written for an image root
    (``"$ROOT"``: audit.remedy writes them so for an image without a running kernel, and for a
    snapshot of one), or the audit read an image and no failure has a command to run. A root with a
    /proc is fixed like the running host it shows, with that host's commands."""
    commands = [cmd for r in report.results if r.status is Status.FAIL and r.outcome.remediation
                for cmd in r.outcome.remediation.commands if not _is_comment(cmd)]
    if any(ROOT_WORD in cmd for cmd in commands):
        return True
    return report.target.mode is TargetMode.IMAGE and not commands


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
    if image_form(report):
        lines += [
            "#",
            comment(f"This audit read the {t.mode.value} at {t.root}. Run this script from outside the image,"),
            comment(f"with the image root as its only argument: bash fix.sh {shell_hint(t.root)}"),
            '# Every path it changes is under that root ("$ROOT"); it starts, loads and mounts nothing,',
            "# and running it twice leaves the same files as running it once.",
            "",
            "set -euo pipefail",
            "",
            *IMAGE_ROOT_GUARD,
        ]
    else:
        if t.mode.value != "live":
            lines += [
                "#",
                comment(f"This audit read the {t.mode.value} at {t.root}, not a running host: the commands act"),
                "# on the machine that runs them. Run them inside that system (chroot, or after booting it).",
            ]
        lines += ["", "set -euo pipefail"]
    lines += [
        "",
        'if [[ "${EUID}" -ne 0 ]]; then',
        "    echo 'hostaudit remediation: run this script as root (it changes system settings)' >&2",
        "    exit 1",
        "fi",
    ]
    return lines


#: The image root: the one argument, a directory, resolved (links, ..), never this machine's /.
IMAGE_ROOT_GUARD = [
    'if [[ $# -ne 1 || ! -d "$1" ]]; then',
    "    echo 'usage: bash fix.sh IMAGE_ROOT   (the root directory of the image this audit read)' >&2",
    "    exit 2",
    "fi",
    'ROOT="$(cd -- "$1" && pwd -P)"',
    'if [[ "$ROOT" == / ]]; then',
    "    echo 'hostaudit remediation: refusing to change / (this machine): give the image root' >&2",
    "    exit 2",
    "fi",
    'if [[ ! -d "$ROOT/etc" ]]; then',
    "    echo 'hostaudit remediation: the argument has no etc/ directory: not an image root' >&2",
    "    exit 2",
    "fi",
]
REGEN_TITLE = "boot configuration"
ROOT_WORD = '"$ROOT"'


def _section(n: int, total: int, r: Result, done: dict[str, str], regens: list[str], image: bool) -> list[str]:
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
    out.append(f"printf '==> %s\\n' {shell_word(printable(f'[{n}/{total}] {r.id}'))}")
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
        if image and ROOT_WORD not in cmd:
            # a plugin's command written for a running system would change the machine running the script
            out.append(comment(f'NOT RUN, it names no path under "$ROOT" (the image root): run it inside the image '
                               f"if right: {cmd}"))
            continue
        if is_regeneration(cmd):
            # run once after every section has changed the generator's inputs, not after the first
            out.append(comment(f"{cmd}: runs once at the end, after every change to the boot configuration's inputs"))
            if cmd not in regens:
                regens.append(cmd)
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
    regens: list[str] = []
    image = image_form(report)
    for n, r in enumerate(failed, start=1):
        lines += _section(n, len(failed), r, done, regens, image)
    if regens:
        lines += ["", RULE, "# Regenerate the boot configuration once, from every input changed above", RULE,
                  f"printf '==> %s\\n' '{REGEN_TITLE}'", *regens]
    return "\n".join([*lines, *_closing(report, failed)]) + "\n"


def _afterwards(failed: list[Result]) -> list[str]:
    notes = []
    for r in failed:
        for cmd in r.outcome.remediation.commands if r.outcome.remediation else ():
            if cmd.startswith(AFTERWARDS) and "\n" not in cmd:
                notes.append(printable(cmd.removeprefix(AFTERWARDS)))
    return list(dict.fromkeys(notes))


def _closing(report: Report, failed: list[Result]) -> list[str]:
    reboot = [r.id for r in failed if r.outcome.remediation and r.outcome.remediation.reboot_required]
    after = _afterwards(failed)
    lines = ["", RULE]
    if after:
        lines.append("# A re-audit after this script will report what these fixes bring up:")
        lines += [comment(f"  {note}") for note in after]
    if not reboot:
        lines += ["# Done: no reboot needed.", RULE]
        done = "hostaudit: done; re-run hostaudit to verify"
    elif image_form(report):
        lines += [comment(f"These take effect when the image boots: {', '.join(reboot)}"), RULE]
        done = f"hostaudit: done; they take effect when the image boots: {' '.join(reboot)}"
    else:
        lines += [comment(f"A reboot is needed before these take effect: {', '.join(reboot)}"), RULE]
        done = f"hostaudit: done; reboot for these to take effect: {' '.join(reboot)}"
    lines += [f"echo {shell_word('hostaudit: afterwards: ' + note)} >&2" for note in after]
    return [*lines, f"echo {shell_word(printable(done))} >&2"]
