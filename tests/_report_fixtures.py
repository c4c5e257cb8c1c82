"""Real reports for the reporter tests: the engine run on a fixed host tree with a fixed clock and timer.

``golden_report()`` is what the golden files are made from; ``hostile_report()`` carries hostile host
values (shell substitutions, newlines, ``]]>``, ``<script>``, control characters, invalid UTF-8) into
the target description, messages, evidence and remediation of every status.
"""

from __future__ import annotations

import datetime as dt
import shlex
from pathlib import Path

from audit import hookimpl
from audit.engine import exit_code, run_audit
from audit.host.core import Host
from audit.model import Check, Evidence, Outcome, Report, Severity, check, failed, replace, warned
from audit.plugins import make_plugins
from audit.policy import Policy, Waiver

#: the built-in plugins the fixed reports use, named so a new built-in module does not change them
BUILTINS = ("checks.kernel", "checks.cpu", "checks.kvm", "checks.crypto")
#: the image root as the reports show it (the real one is a temporary folder)
SHOWN_ROOT = "/srv/images/kvm01"
RELEASE = "6.1.0-18-amd64"

CPUINFO = """\
processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 85
model name\t: Intel(R) Xeon(R) Gold 6132 CPU @ 2.60GHz
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush vmx avx xsave

processor\t: 1
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 85
model name\t: Intel(R) Xeon(R) Gold 6132 CPU @ 2.60GHz
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush vmx avx xsave
"""

KCONFIG = """\
CONFIG_HUGETLBFS=y
CONFIG_HUGETLB_PAGE=y
CONFIG_TRANSPARENT_HUGEPAGE=y
# CONFIG_KSM is not set
CONFIG_CRYPTO_AES_NI_INTEL=m
CONFIG_KVM=y
# CONFIG_KVM_INTEL is not set
# CONFIG_KVM_AMD is not set
CONFIG_KVM_PVM=y
"""

#: an image with a captured /proc: CPU without AES-NI, kernel without KSM, KVM only through PVM,
#: no /dev/kvm; gives pass, warn, fail and skip from the built-in checks
HOST_TREE: dict[str, str | bytes] = {
    "etc/hostname": "kvm01.example.org\n",
    "etc/os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nID=debian\n'
    'VERSION_ID="12"\n',
    "proc/cpuinfo": CPUINFO,
    "proc/sys/kernel/osrelease": RELEASE + "\n",
    "proc/modules": "kvm 1142784 0 - Live 0x0000000000000000\nirqbypass 16384 1 kvm, Live 0x0\n",
    f"boot/config-{RELEASE}": KCONFIG,
    f"lib/modules/{RELEASE}/modules.builtin": "kernel/arch/x86/crypto/sha256-ssse3.ko\n",
}

#: everything a hostile host or plugin can put into text, in one value
INVALID_UTF8 = b"caf\xc3 \xff\xfe".decode("utf-8", errors="replace")
HOSTILE = (
    "pwn $(rm -rf /) `reboot` ${IFS}; rm -rf / && echo x\nrm -rf /\r\n]]> <![CDATA[ x ]]> "
    "<script>document.title='pwned'</script> </pre></details><b>bold</b> &amp; "
    "'single' \"double\" \x1b[2J\x1b[31mred\x07\x00\x08\x0b\x0c\x7f\x85\u2028\u202e-rtl "
    + INVALID_UTF8
)
HOSTILE_TREE: dict[str, str | bytes] = {
    **HOST_TREE,
    "etc/hostname": b"<script>document.title='pwned-host'</script>\x1b[2J\xff$(id)\nrm -rf /\n",
    "etc/os-release": b'PRETTY_NAME="Evil\x1b[31m <img src=x onerror=alert(1)> $(reboot) ]]>"\nID=debian\n',
}


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def clock() -> dt.datetime:
    return dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)


class Timer:
    """A perf_counter stand-in: each call is 1.25 ms after the previous one."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 0.00125
        return self.now


@check("fixture.crash", title="A check that crashes", severity=Severity.HIGH, category="fixture")
def _crash(host: Host, policy: Policy) -> Outcome:
    """Shows that a crash is an error result, never a pass."""
    raise RuntimeError("the parser met something it did not expect")


@check("fixture.waived", title="A failing check the policy waives", severity=Severity.LOW, category="fixture")
def _waived(host: Host, policy: Policy) -> Outcome:
    """Shows a waived failure."""
    return failed(
        "swap is enabled",
        Evidence(source="/proc/swaps", observed="/dev/sda2 partition 8388604", expected="no swap"),
        fix=["swapoff -a", "sed -i '/ swap / s/^/#/' /etc/fstab"],
        notes="Swapped guest memory stalls guests.",
    )


class FixturePlugin:
    """Adds an error and a waived result to the built-in checks' results."""

    @hookimpl
    def hostaudit_checks(self) -> list[Check]:
        return [_crash, _waived]


def _q(value: str) -> str:
    return shlex.quote(value)


@check("hostile.fail", title="Fails with " + HOSTILE, severity=Severity.CRITICAL, category="hostile")
def _hostile_fail(host: Host, policy: Policy) -> Outcome:
    """Hostile values in a failure: message, evidence, notes and commands."""
    return failed(
        "message " + HOSTILE,
        [Evidence(source="/etc/" + HOSTILE, observed=HOSTILE, expected=HOSTILE)],
        fix=[
            f"logger -t hostaudit {_q(HOSTILE)}",  # a host value, quoted as checks must
            "# a comment naming a host value: " + HOSTILE,  # a pure comment stays a comment
            "echo 'unterminated",  # a buggy check: must not swallow the lines after it
            "echo ok \\",  # a trailing backslash would join the next line
            "echo first\nrm -rf /tmp/hostaudit-never",  # a newline outside quotes
            "echo fine   # trailing comment\nrm -rf /tmp/hostaudit-never",
        ],
        reboot=True,
        notes="notes " + HOSTILE,
    )


@check("hostile.warn", title="Warns", severity=Severity.MEDIUM, category="hostile")
def _hostile_warn(host: Host, policy: Policy) -> Outcome:
    """Hostile values in a warning."""
    return warned("warning " + HOSTILE, Evidence(source="/proc/x", observed=HOSTILE), fix=[f"echo {_q(HOSTILE)}"])


@check("hostile.crash", title="Crashes", severity=Severity.HIGH, category="hostile")
def _hostile_crash(host: Host, policy: Policy) -> Outcome:
    """Hostile values in an exception message."""
    raise ValueError(HOSTILE)


@check("hostile.skip", title="Skips", severity=Severity.LOW, category="hostile")
def _hostile_skip(host: Host, policy: Policy) -> Outcome:
    """Hostile values in a skip reason."""
    from audit.errors import FactUnavailable

    raise FactUnavailable("cannot know " + HOSTILE, source="/sys/" + HOSTILE)


@check("hostile.waived", title="Waived", severity=Severity.LOW, category="hostile")
def _hostile_waived(host: Host, policy: Policy) -> Outcome:
    """Hostile values in a waived failure and its waiver reason."""
    return failed("waived " + HOSTILE, fix=[f"printf '%s\\n' {_q(HOSTILE)}"])


class HostilePlugin:
    @hookimpl
    def hostaudit_checks(self) -> list[Check]:
        return [_hostile_fail, _hostile_warn, _hostile_crash, _hostile_skip, _hostile_waived]


GOLDEN_POLICY = Policy(waivers={"fixture.waived": Waiver(reason="swap needed until the RAM upgrade (CHG-1234)",
                                                         expires=dt.date(2024, 12, 31))})
HOSTILE_POLICY = Policy(waivers={"hostile.waived": Waiver(reason="reason " + HOSTILE)})


def build_report(tmp: Path, files: dict[str, str | bytes], plugin: object, name: str, policy: Policy) -> Report:
    root = write_tree(tmp, files)
    plugins = make_plugins(builtins=BUILTINS, entry_points=False)
    plugins.pm.register(plugin, name=name)
    report = run_audit(plugins, Host.from_root(str(root)), policy, clock=clock, timer=Timer())
    return replace(report, target=replace(report.target, root=SHOWN_ROOT))


def golden_report(tmp: Path) -> Report:
    """Every status: pass, warn, fail and skip from the built-ins, error and waived from the fixture."""
    return build_report(tmp, HOST_TREE, FixturePlugin(), "fixture", GOLDEN_POLICY)


def hostile_report(tmp: Path) -> Report:
    return build_report(tmp, HOSTILE_TREE, HostilePlugin(), "hostile", HOSTILE_POLICY)


def code(report: Report) -> int:
    """The exit code, judged by the report's own gate (``report.gate``) as every reporter judges it."""
    return int(exit_code(report))


def with_gate(report: Report, **gate: object) -> Report:
    """The same results judged by another gate (``fail_on``, ``strict``, ``required``)."""
    from audit.model import Gate

    return replace(report, gate=Gate(**gate))  # type: ignore[arg-type]


# -- golden files ------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
#: set to 1 to rewrite the golden files from the current output instead of comparing with them
REGEN_ENV = "HOSTAUDIT_REGEN_GOLDEN"


def assert_golden(name: str, text: str) -> None:
    """Compare ``text`` with ``tests/golden/<name>``; ``HOSTAUDIT_REGEN_GOLDEN=1`` rewrites it.

    Review a regenerated file with ``git diff tests/golden`` before committing it.
    """
    import os

    path = GOLDEN / name
    if os.environ.get(REGEN_ENV) == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        return
    assert path.exists(), f"no golden file {path}: run the tests with {REGEN_ENV}=1 to create it"
    with open(path, encoding="utf-8", newline="") as fh:
        expected = fh.read()
    assert text == expected, (
        f"{name} differs from its golden file; if the change is intended, rerun with {REGEN_ENV}=1 "
        "and review `git diff tests/golden`"
    )


def hostaudit_command() -> list[str]:
    """The installed console script beside this interpreter (the venv's hostaudit)."""
    import sys

    script = Path(sys.executable).parent / "hostaudit"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "audit"]
