"""Remediation script: bash for failed checks only, hostile host values never become commands.

Every script these tests make goes through ``bash -n`` and, when installed, ``shellcheck`` with no
warnings (``apt-get install shellcheck``; ``.ci/install-test-deps`` does it in CI). The generated
scripts are never run. Golden file: ``tests/golden/report.sh`` (``HOSTAUDIT_REGEN_GOLDEN=1``).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from audit.model import Outcome, Remediation, Report, Severity, Status, replace
from reports import fix_script
from tests import _report_fixtures as fx

SHELLCHECK = shutil.which("shellcheck")


def check_script(text: str, tmp_path: Path) -> None:
    path = tmp_path / "fix.sh"
    path.write_text(text, encoding="utf-8")
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    if SHELLCHECK:
        proc = subprocess.run([SHELLCHECK, "--shell=bash", "--severity=style", str(path)],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def render(report: Report, tmp_path: Path) -> str:
    text = fix_script.render(report, exit_code=1)
    check_script(text, tmp_path)
    return text


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return fx.golden_report(tmp_path_factory.mktemp("host"))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return fx.hostile_report(tmp_path_factory.mktemp("hostile"))


def test_shellcheck_is_there_or_the_skip_says_how_to_get_it():
    if not SHELLCHECK:
        pytest.skip("shellcheck not installed: scripts only got 'bash -n'; install it with "
                    "'apt-get install shellcheck' (or run .ci/install-test-deps)")


def test_golden(report, tmp_path):
    fx.assert_golden("report.sh", render(report, tmp_path))


def test_shape_header_and_root_guard(report, tmp_path):
    text = render(report, tmp_path)
    lines = text.splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    head = "\n".join(lines[:25])
    assert "# host:      kvm01.example.org (image at /srv/images/kvm01)" in head
    assert "# profile:   kvm-host" in head
    assert "# audited:   2024-05-06T07:08:09Z" in head
    assert f"# generated: hostaudit {report.tool_version}" in head
    assert "set -euo pipefail" in lines
    guard = lines.index('if [[ "${EUID}" -ne 0 ]]; then')
    assert lines[guard + 2] == "    exit 1"
    assert guard < min(i for i, line in enumerate(lines) if line.startswith("printf '==>"))


def test_failed_checks_only_in_report_order(report, tmp_path):
    text = render(report, tmp_path)
    sections = re.findall(r"^# \[(\d+)/(\d+)\] (\S+) \((\w+)\): ", text, flags=re.M)
    failed = [r for r in report.results if r.status is Status.FAIL]
    assert [s[2] for s in sections] == [r.id for r in failed]
    assert [s[3] for s in sections] == [str(r.effective_severity) for r in failed]
    for r in report.results:
        if r.status is not Status.FAIL:
            assert f"] {r.id} (" not in text  # warn, waived, skip, error, pass: no section


def test_commands_keep_the_checks_order_runtime_first(report, tmp_path):
    text = render(report, tmp_path)
    kvm = next(r for r in report.results if r.id == "kvm.device")
    positions = [text.index("\n" + cmd + "\n") for cmd in kvm.outcome.remediation.commands]
    assert positions == sorted(positions)
    assert kvm.outcome.remediation.commands[0].startswith("modprobe")  # runtime, then persistent


def test_comment_commands_stay_comments(report, tmp_path):
    text = render(report, tmp_path)
    aes = next(r for r in report.results if r.id == "cpu.aes")
    (only,) = aes.outcome.remediation.commands
    assert only.startswith("#")
    assert "\n" + only + "\n" in text


def test_reboot_note_at_the_end(report, tmp_path):
    text = render(report, tmp_path)
    tail = text.strip().splitlines()[-3:]
    assert tail[0] == "# A reboot is needed before these take effect: kernel.ksm"
    assert tail[-1] == "echo 'hostaudit: done; reboot for these to take effect: kernel.ksm' >&2"


def test_no_failure_gives_a_script_that_does_nothing(report, tmp_path):
    ok = replace(report, results=tuple(r for r in report.results if r.status is not Status.FAIL))
    text = render(ok, tmp_path)
    assert "# No failed checks: nothing to remediate." in text
    assert "printf '==>" not in text


def test_a_command_two_checks_share_runs_once(report, tmp_path):
    r0 = next(r for r in report.results if r.id == "kernel.ksm")
    twin = replace(r0, check=replace(r0.check, id="kernel.ksm2"))
    text = render(replace(report, results=(*report.results, twin)), tmp_path)
    (cmd,) = r0.outcome.remediation.commands
    assert text.count("\n" + cmd + "\n") == 1
    assert f"# already run above for kernel.ksm: {cmd}" in text


def test_a_failure_without_remediation_says_so(report, tmp_path):
    r0 = next(r for r in report.results if r.id == "kernel.ksm")
    bare = replace(r0, outcome=Outcome(status=Status.FAIL, message="no fix known"))
    text = render(replace(report, results=(bare,)), tmp_path)
    assert "# no command can fix this automatically: see 'hostaudit explain kernel.ksm'" in text


# -- hostile values ------------------------------------------------------------------------------------------

SKELETON = [
    re.compile(r"set -euo pipefail"),
    re.compile(r'if \[\[ "\$\{EUID\}" -ne 0 \]\]; then'),
    re.compile(r"    echo 'hostaudit remediation: run this script as root \(it changes system settings\)' >&2"),
    re.compile(r"    exit 1"),
    re.compile(r"fi"),
    re.compile(r"printf '==> %s\\n' '\[\d+/\d+\] [a-z0-9._-]+'"),
    re.compile(r"echo 'hostaudit: (done; reboot for these to take effect: [a-z0-9._ -]+"
               r"|done; re-run hostaudit to verify|nothing to fix)' >&2"),
]


def code_outside_commands(text: str, commands: list[str]) -> list[str]:
    """The script's code lines once the checks' own commands (whole, even multi-line) are taken out."""
    for cmd in sorted(commands, key=len, reverse=True):
        text = text.replace("\n" + cmd + "\n", "\n")
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def emitted_commands(report: Report, text: str) -> list[str]:
    out = []
    for r in report.results:
        rem = r.outcome.remediation
        for cmd in rem.commands if rem else ():
            if not cmd.lstrip().startswith("#") and fix_script.unsafe_command(cmd) is None:
                out.append(cmd)
    return [c for c in out if "\n" + c + "\n" in text]


def test_hostile_values_cannot_become_commands(hostile, tmp_path):
    text = render(hostile, tmp_path)
    commands = emitted_commands(hostile, text)
    for line in code_outside_commands(text, commands):
        assert any(p.fullmatch(line) for p in SKELETON), f"unexpected code line: {line!r}"
    for cmd in commands:  # the checks' commands are what they were, one command each
        assert "rm -rf" not in cmd or shlex.split(cmd)[0] in ("logger", "printf", "echo")
    assert "rm -rf /tmp/hostaudit-never" not in code_outside_commands(text, [])  # buggy commands: comments
    assert text.count("# NOT RUN, ") == 5  # control characters, quote, backslash, 2 newlines


def test_hostile_quoted_command_is_emitted_and_stays_one_word(tmp_path, report):
    value = "x $(rm -rf /) `reboot` ; rm -rf / && y\nrm -rf / ]]> <script> 'q' \"d\" caf\ufffd"
    cmd = f"logger -t hostaudit {shlex.quote(value)}"
    r0 = next(r for r in report.results if r.status is Status.FAIL)
    hostile_fix = replace(
        r0, outcome=Outcome(status=Status.FAIL, message="m\nrm -rf /",
                            remediation=Remediation(commands=(cmd,), notes="n\nrm -rf /")))
    text = render(replace(report, results=(hostile_fix,)), tmp_path)
    assert "\n" + cmd + "\n" in text
    assert shlex.split(cmd) == ["logger", "-t", "hostaudit", value]
    for line in code_outside_commands(text, [cmd]):
        assert any(p.fullmatch(line) for p in SKELETON), f"unexpected code line: {line!r}"
    assert "# finding: m\\nrm -rf /" in text
    assert "# why: n\\nrm -rf /" in text


def test_hostile_header_values_stay_in_comments(hostile, tmp_path):
    text = render(hostile, tmp_path)
    host_line = next(line for line in text.splitlines() if line.startswith("# host:"))
    assert "\\x1b[2J" in host_line and "$(id)\\nrm -rf /" in host_line and "\ufffd" in host_line


@pytest.mark.parametrize(
    ("cmd", "problem"),
    [
        ("modprobe kvm_intel", None),
        ("echo kvm_intel > /etc/modules-load.d/kvm_intel.conf", None),
        ("apt-get install linux-image-amd64   # Debian's stock kernel", None),  # quote inside a comment
        ("sed -i '/ swap / s/^/#/' /etc/fstab", None),  # '#' inside quotes is no comment
        ("echo a#b $# ${#x}", None),  # '#' not starting a word is no comment
        ("printf '%s\\n' 'multi\nline'", None),  # a newline inside quotes is data
        ("echo \"a \\\" b\"", None),
        ("echo $'it\\'s'", None),
        ("echo 'open", "unterminated quote"),
        ('echo "open', "unterminated quote"),
        ("echo ok \\", "ends with a backslash"),
        ("echo a\nrm -rf /", "newline outside quotes"),
        ("echo a # note\nrm -rf /", "newline after its comment"),
        ("echo '\x1b[2K'", "control characters"),
        ("echo a\rb", "control characters"),
        ("echo '\u202e'", "control characters"),
        ("   ", "empty"),
    ],
)
def test_unsafe_command(cmd, problem):
    got = fix_script.unsafe_command(cmd)
    if problem is None:
        assert got is None
    else:
        assert got is not None and problem in got


def test_unsafe_commands_become_comments(report, tmp_path):
    r0 = next(r for r in report.results if r.status is Status.FAIL)
    commands = ("echo 'open", "echo a\nrm -rf /tmp/never", "echo ok \\", "modprobe ok")
    bad = replace(r0, severity=Severity.HIGH, outcome=Outcome(
        status=Status.FAIL, message="m", remediation=Remediation(commands=commands)))
    text = render(replace(report, results=(bad,)), tmp_path)
    assert "\nmodprobe ok\n" in text
    assert "\nrm -rf /tmp/never" not in text
    assert text.count("# NOT RUN, ") == 3


# -- image scripts, regeneration, closing notes ----------------------------------------------------------


def _with_fixes(report: Report, *fixes: tuple[str, ...]) -> Report:
    """The report with its failed results' commands replaced by ``fixes``, one tuple a result."""
    failed = [r for r in report.results if r.status is Status.FAIL]
    results = [replace(r, outcome=Outcome(status=Status.FAIL, message="m", remediation=Remediation(
        commands=cmds, reboot_required=True))) for r, cmds in zip(failed, fixes, strict=False)]
    return replace(report, results=tuple(results))


def _code(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_an_image_script_takes_the_image_root_as_its_only_argument(tmp_path, make_root):
    from audit.engine import run_audit
    from audit.host.core import Host
    from audit.plugins import make_plugins
    from tests import trees

    root = make_root(trees.debian12_tree(asked="transparent_hugepage=never intel_iommu=off",
                                         booted="transparent_hugepage=never intel_iommu=off"))
    image = run_audit(make_plugins(entry_points=False), Host.from_root(str(root)))
    text = render(image, tmp_path)  # bash -n and shellcheck
    assert fix_script.image_form(image)
    assert f"# with the image root as its only argument: bash fix.sh {root}" in text
    code = _code(text)
    guard = code.index(fix_script.IMAGE_ROOT_GUARD[0])
    assert code[guard:guard + len(fix_script.IMAGE_ROOT_GUARD)] == fix_script.IMAGE_ROOT_GUARD
    first = next(i for i, line in enumerate(code) if line.startswith("printf '==>"))
    assert guard < code.index('if [[ "${EUID}" -ne 0 ]]; then') < first
    for line in code[first:]:  # every command names its paths under the image root
        assert '"$ROOT"' in line or any(p.fullmatch(line) for p in SKELETON) or line.startswith(
            "echo 'hostaudit: "), line
    assert "# These take effect when the image boots: " in text


def test_an_image_script_never_runs_a_command_written_for_this_machine(report, tmp_path):
    image = _with_fixes(report, ('echo x > "$ROOT"/etc/x',), ("echo y > /etc/y",))
    text = render(image, tmp_path)
    assert fix_script.image_form(image)
    assert '\necho x > "$ROOT"/etc/x\n' in text
    assert "\necho y > /etc/y\n" not in text
    assert '# NOT RUN, it names no path under "$ROOT" (the image root): run it inside the image if right: ' \
           "echo y > /etc/y" in text


def test_the_boot_configuration_is_regenerated_once_after_every_change_to_its_inputs(report, tmp_path):
    live = _with_fixes(report, ("echo a > /etc/default/grub.d/90-hostaudit-a.cfg", "update-grub"),
                       ("echo b > /etc/default/grub.d/90-hostaudit-b.cfg", "update-grub"))
    text = render(live, tmp_path)
    code = _code(text)
    assert code.count("update-grub") == 1
    assert code.index("update-grub") > code.index("echo b > /etc/default/grub.d/90-hostaudit-b.cfg")
    assert text.count("# update-grub: runs once at the end, after every change to the boot configuration's "
                      "inputs") == 2
    assert "\nprintf '==> %s\\n' 'boot configuration'\nupdate-grub\n" in text


def test_findings_a_fix_brings_up_are_named_in_the_closing_note(report, tmp_path):
    from audit.remedy.system import afterwards

    text = render(_with_fixes(report, ("modprobe ok", afterwards("swap.ksm: give the host swap"))), tmp_path)
    tail = text.split("[1/1]")[-1]
    assert "# A re-audit after this script will report what these fixes bring up:\n" \
           "#   swap.ksm: give the host swap\n" in tail
    assert "\necho 'hostaudit: afterwards: swap.ksm: give the host swap' >&2\n" in tail
