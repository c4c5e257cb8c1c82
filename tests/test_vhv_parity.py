"""Parity with libvirt's virt-host-validate (issue #13): each line of `virt-host-validate qemu` has a
hostaudit result on the same host that agrees with it.

The mapping (which hostaudit check answers which line), the agreement rule and the tolerated
differences are data in this module; README.md's section "Compared with virt-host-validate" is the
same table for people, and a test below keeps the two together. Recorded outputs of other hosts
(tests/data/vhv/, sources in its README.md) test the parser and that the mapping knows every line.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "vhv"
README = REPO / "README.md"
SECTION = "## Compared with virt-host-validate"

VHV = "virt-host-validate"
INSTALL_HINT = (f"{VHV} not found: install Debian's with 'apt-get install libvirt-clients' (or run "
                ".ci/install-test-deps)")

# -- parsing virt-host-validate's output ------------------------------------------------------------

#: virt-host-validate's levels, best first: a check covering several lines is compared with the worst.
LEVELS = ("PASS", "NOTE", "WARN", "FAIL")
RANK = {level: i for i, level in enumerate(LEVELS)}

#: Colours it prints when stdout is a terminal (virHostMsgWantEscape: isatty); a pipe gets none.
ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: "%6s: Checking %-60s: " then "PASS" or "LEVEL (detail)" (tools/virt-host-validate-common.c in 9.0;
#: later releases print "%6s: %-69s: " with "Checking" in the message and may give PASS a detail).
LINE = re.compile(r"\s*(?P<hv>[A-Z]+): (?P<text>\S.*?)\s*: (?P<level>PASS|NOTE|WARN|FAIL)(?: \((?P<detail>.*)\))?")

#: Lines of stderr that published transcripts show among the checks (a terminal mixes both streams);
#: the live run reads stdout only, where nothing but check lines may appear.
STDERR_LINES = (
    re.compile(r"Unable to initialize cgroups: .*"),  # virHostValidateCGroupControllers, printed instead of its lines
    re.compile(r"setlocale: .*"),  # bash, before the command ran
)


class VhvLine(NamedTuple):
    hv: str  # QEMU, LXC, BHYVE, CH
    text: str  # "Checking for hardware virtualization", as printed (device names quoted in later releases)
    level: str  # PASS, NOTE, WARN or FAIL
    detail: str  # the parenthesised hint or fact, "" when there is none
    raw: str  # the line without colour codes


def parse_vhv(output: str) -> tuple[list[VhvLine], list[str]]:
    """The check lines of virt-host-validate's output, and every other non-blank line (unparsed)."""
    lines: list[VhvLine] = []
    other: list[str] = []
    for raw in output.splitlines():
        plain = ANSI.sub("", raw).rstrip()
        if not plain:
            continue
        m = LINE.fullmatch(plain)
        if m is None:
            other.append(plain)
            continue
        lines.append(VhvLine(m["hv"], m["text"], m["level"], m["detail"] or "", plain))
    return lines, other


# -- the mapping ------------------------------------------------------------------------------------


def _dev(path: str) -> str:
    """A device name as 9.0 prints it (/dev/kvm) or as later releases do ('/dev/kvm')."""
    return f"'?{re.escape(path)}'?"


class Row(NamedTuple):
    pattern: str  # matches the whole text of a QEMU line
    check: str | None  # the hostaudit check compared with it; None: hostaudit has none
    line: str  # the line as libvirt 9.0 prints it (README)
    why: str = ""  # where the two differ in what they look at


#: Every line of `virt-host-validate qemu`: libvirt 9.0's tools/virt-host-validate-qemu.c and -common.c,
#: and the lines older and later releases print (recorded outputs in tests/data/vhv).
CGROUPS_V1 = "(cpu|cpuacct|cpuset|memory|devices|blkio)"
QEMU_ROWS: tuple[Row, ...] = (
    Row(r"Checking for hardware virtualization", "cpu.virtualization",
        "Checking for hardware virtualization",
        "both read the vmx/svm flag in /proc/cpuinfo; virt-host-validate prints no line on arm64, hostaudit looks for"
        " EL2 there"),
    Row(rf"Checking if device {_dev('/dev/kvm')} exists", "kvm.device", "Checking if device /dev/kvm exists",
        "hostaudit also wants a character device; virt-host-validate prints this line only when the CPU flag is there"),
    Row(rf"Checking if device {_dev('/dev/kvm')} is accessible", "kvm.device_access",
        "Checking if device /dev/kvm is accessible",
        "virt-host-validate asks for the user running it, hostaudit for the user QEMU runs as"),
    Row(r"Checking for PowerPC KVM module loaded", None, "Checking for PowerPC KVM module loaded",
        "ppc64 only (kvm_hv in /proc/modules): hostaudit audits x86-64 and arm64 hosts"),
    Row(rf"Checking if device {_dev('/dev/vhost-net')} exists", "kvm.vhost_net",
        "Checking if device /dev/vhost-net exists"),
    Row(rf"Checking if device {_dev('/dev/net/tun')} exists", "kvm.tun", "Checking if device /dev/net/tun exists"),
    Row(rf"Checking for cgroup '{CGROUPS_V1}' controller support", "cgroups.controllers",
        "Checking for cgroup 'cpu' controller support",
        "six lines (cpu, cpuacct, cpuset, memory, devices, blkio), one hostaudit check"),
    Row(rf"Checking for cgroup '{CGROUPS_V1}' controller mount-point", "cgroups.controllers",
        "Checking for cgroup 'cpu' controller mount-point", "older releases (4.0 among them), after each controller"),
    Row(r"Checking for device assignment IOMMU support", "iommu.enabled",
        "Checking for device assignment IOMMU support",
        "virt-host-validate looks for the ACPI DMAR/IVRS table of the vendor it infers from vmx/svm"),
    Row(r"Checking if IOMMU is enabled by kernel", "iommu.enabled", "Checking if IOMMU is enabled by kernel",
        "printed only after the line above passed and /sys/kernel/iommu_groups exists"),
    Row(r"Checking for secure guest support", "cpu.secure_guest", "Checking for secure guest support"),
    # Later releases (libvirt's master; not in 9.0) add two lines after an SEV PASS.
    Row(r"Checking for AMD Secure Encrypted Virtualization-Encrypted State \(SEV-ES\)", "cpu.secure_guest",
        "Checking for AMD Secure Encrypted Virtualization-Encrypted State (SEV-ES)", "later releases"),
    Row(r"Checking for AMD Secure Encrypted Virtualization-Secure Nested Paging \(SEV-SNP\)", "cpu.secure_guest",
        "Checking for AMD Secure Encrypted Virtualization-Secure Nested Paging (SEV-SNP)", "later releases"),
)

#: What the other drivers of `virt-host-validate` (no argument) print: known, and outside what hostaudit
#: audits. The live run asks for `qemu` only, so none of these may appear there.
OUT_OF_SCOPE: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "LXC": ("libvirt's container driver: namespaces, cgroups (with freezer) and FUSE for containers, not KVM",
            (r"Checking for Linux >= \d+\.\d+\.\d+", r"Checking for namespace '?(ipc|mnt|pid|uts|net|user)'?",
             r"Checking for cgroup '(cpu|cpuacct|cpuset|memory|devices|freezer|blkio)' controller"
             r" (support|mount-point)",
             rf"Checking if device {_dev('/sys/fs/fuse/connections')} exists")),
    "BHYVE": ("FreeBSD's hypervisor: its kernel modules", (r"Checking for (vmm|if_tap|if_bridge|nmdm) module",)),
    "CH": ("Cloud Hypervisor's driver (later releases): the same /dev/kvm tests as the QEMU lines",
           (r"Checking for hardware virtualization", rf"Checking if device {_dev('/dev/kvm')} (exists|is accessible)")),
}


def row_for(line: VhvLine) -> Row | None:
    if line.hv != "QEMU":
        return None
    return next((r for r in QEMU_ROWS if re.fullmatch(r.pattern, line.text)), None)


def out_of_scope(line: VhvLine) -> bool:
    _, patterns = OUT_OF_SCOPE.get(line.hv, ("", ()))
    return any(re.fullmatch(p, line.text) for p in patterns)


def unknown_lines(lines: list[VhvLine]) -> list[str]:
    """Lines the mapping does not know: a new libvirt release is noticed here."""
    return [ln.raw for ln in lines if row_for(ln) is None and not out_of_scope(ln)]


# -- agreement -------------------------------------------------------------------------------------

SEVERITIES = ("info", "low", "medium", "high", "critical")


def agrees(level: str, result: Mapping[str, Any]) -> bool:
    """The stated mapping: PASS ↔ pass or waived; WARN ↔ warn, skip, or fail at medium or below;
    FAIL ↔ fail. NOTE (virt-host-validate skipped the test: s390 without PCI) ↔ skip or pass."""
    status = result["status"]
    if level == "PASS":
        return status in ("pass", "waived")
    if level == "WARN":
        return status in ("warn", "skip") or (
            status == "fail" and SEVERITIES.index(result["severity"]) <= SEVERITIES.index("medium"))
    if level == "FAIL":
        return status == "fail"
    return status in ("skip", "pass")  # NOTE


class Run(NamedTuple):
    """Who ran virt-host-validate: what some of its answers depend on."""

    as_root: bool


When = Callable[[VhvLine, Mapping[str, Any], Run], bool]


class Tolerance(NamedTuple):
    check: str
    text: str  # searched in the line's text
    levels: tuple[str, ...]  # virt-host-validate's
    statuses: tuple[str, ...]  # hostaudit's
    when: When
    reason: str


def _always(line: VhvLine, result: Mapping[str, Any], run: Run) -> bool:
    return True


def _says(*words: str) -> When:
    return lambda line, result, run: any(w in result["message"] for w in words)


#: Differences that are not disagreements, each with its reason. A tolerated line leaves the
#: comparison; the rest of its group (the six cgroup lines) is still compared.
TOLERATED: tuple[Tolerance, ...] = (
    Tolerance("iommu.enabled", "device assignment IOMMU support", ("WARN",), ("pass", "fail"),
              lambda line, result, run: line.detail == "Unknown if this platform has IOMMU support",
              "virt-host-validate infers the IOMMU vendor from the vmx/svm CPU flag (and 9.0 knows no arm64 IOMMU),"
              " so in an x86 VM without nested virtualization, or on arm64, it says 'Unknown'; hostaudit reads the"
              " CPU vendor, /sys/kernel/iommu_groups, the ACPI DMAR/IVRS/IORT tables and the kernel config and"
              " knows: a pass (an arm64 SMMU), or a fail at whatever severity the policy gives it (at the default"
              " medium a fail agrees with WARN anyway)"),
    Tolerance("kvm.device_access", "is accessible", LEVELS, ("pass", "warn", "fail", "skip", "waived"), _always,
              "virt-host-validate calls access(2) for the user running it (root always passes); hostaudit judges"
              " the user QEMU runs as (qemu.conf user/group, else libvirt-qemu or qemu) and skips when that user"
              " does not exist: two different questions"),
    Tolerance("cpu.secure_guest", "", ("WARN",), ("pass",), _says("not required by the policy"),
              "virt-host-validate warns on every host without AMD SEV or IBM Secure Execution; hostaudit reports"
              " confidential-guest support (severity info) and fails only when the policy requires it"
              " (secure_guest.required)"),
    Tolerance("cgroups.controllers", "'devices' controller support", ("WARN",), ("pass",),
              lambda line, result, run: not run.as_root,
              "on cgroup v2 libvirt's device control is a BPF program; virt-host-validate decides it is there by"
              " querying the root cgroup's BPF programs (BPF_PROG_QUERY), which the kernel refuses without"
              " CAP_NET_ADMIN, so a run as an ordinary user warns; libvirtd runs as root, and hostaudit checks"
              " what it needs (CONFIG_CGROUP_BPF)"),
    Tolerance("cgroups.controllers", "controller", ("PASS",), ("warn", "fail"), _says("subtree_control"),
              "hostaudit is right: virt-host-validate looks at the controllers the cgroup v2 root offers, hostaudit"
              " also at cgroup.subtree_control down to machine.slice, where a controller must be enabled for the"
              " guests to get it"),
    Tolerance("iommu.enabled", "", ("PASS",), ("warn",), _says("next boot"),
              "hostaudit is right: virt-host-validate judges the running kernel only; hostaudit also the next"
              " boot's command line (active now, lost at the next boot is a warning)"),
    *(Tolerance(check, "exists", ("PASS",), ("fail",), _says("not a character device"),
                "hostaudit is right: virt-host-validate only asks whether the path exists (access F_OK); a"
                " regular file or a directory there passes it and fails QEMU")
      for check in ("kvm.device", "kvm.vhost_net", "kvm.tun")),
)


def tolerance_for(line: VhvLine, check: str, result: Mapping[str, Any], run: Run) -> Tolerance | None:
    for t in TOLERATED:
        if (t.check == check and t.text in line.text and line.level in t.levels and result["status"] in t.statuses
                and t.when(line, result, run)):
            return t
    return None


class Verdict(NamedTuple):
    line: VhvLine
    check: str | None
    result: Mapping[str, Any] | None
    compared: str  # the level compared: the worst untolerated line of the check
    outcome: str  # "agrees", "tolerated", or what is wrong
    reason: str = ""


def compare(lines: list[VhvLine], results: Mapping[str, Mapping[str, Any]], run: Run) -> list[Verdict]:
    """One verdict per line. A line that disagrees with its check's result on its own and matches a
    tolerated difference leaves the comparison ("tolerated"); a check covering several lines (the six
    cgroup controllers, the two IOMMU lines) is compared with the worst of the lines left."""
    rows = [row_for(ln) for ln in lines]
    tolerated: dict[int, Tolerance] = {}
    worst: dict[str, str] = {}
    for i, (ln, row) in enumerate(zip(lines, rows, strict=True)):
        if row is None or row.check is None or row.check not in results:
            continue
        result = results[row.check]
        t = None if agrees(ln.level, result) else tolerance_for(ln, row.check, result, run)
        if t is not None:
            tolerated[i] = t
        elif RANK[ln.level] >= RANK[worst.get(row.check, "PASS")]:
            worst[row.check] = ln.level
    verdicts = []
    for i, (ln, row) in enumerate(zip(lines, rows, strict=True)):
        if row is None:
            verdicts.append(Verdict(ln, None, None, ln.level, "out of scope" if out_of_scope(ln) else "unknown line"))
            continue
        if row.check is None:
            verdicts.append(Verdict(ln, None, None, ln.level, "no hostaudit check", row.why))
            continue
        result = results.get(row.check)
        if result is None:
            verdicts.append(Verdict(ln, row.check, None, ln.level, "no hostaudit result"))
        elif i in tolerated:
            verdicts.append(Verdict(ln, row.check, result, ln.level, "tolerated", tolerated[i].reason))
        else:
            level = worst[row.check]
            verdicts.append(Verdict(ln, row.check, result, level, "agrees" if agrees(level, result) else "differs"))
    return verdicts


def show(v: Verdict) -> str:
    what = "-" if v.result is None else f"{v.result['status']} ({v.result['severity']}): {v.result['message']}"
    return f"{v.line.raw.strip()}\n    compared as {v.compared} with {v.check}: {what}\n    -> {v.outcome} {v.reason}"


# -- the live run: virt-host-validate and hostaudit on this machine -----------------------------------


def vhv_binary() -> str:
    found = shutil.which(VHV)
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail(f"{INSTALL_HINT}; CI=true, where the parity with virt-host-validate must be tested")
    pytest.skip(INSTALL_HINT)


@pytest.fixture(scope="module")
def vhv_run() -> subprocess.CompletedProcess[str]:
    # A pipe, so no colours; LC_ALL=C, so no translation ("正在检查 ..."). Check lines go to stdout,
    # diagnostics such as "Unable to initialize cgroups" to stderr.
    proc = subprocess.run([vhv_binary(), "qemu"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "LC_ALL": "C", "LANG": "C"}, check=False)
    assert proc.stdout.strip(), f"{VHV} qemu printed nothing (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return proc


@pytest.fixture(scope="module")
def vhv_output(vhv_run: subprocess.CompletedProcess[str]) -> str:
    return vhv_run.stdout


@pytest.fixture(scope="module")
def hostaudit_results(vhv_output: str) -> dict[str, dict[str, Any]]:
    exe = shutil.which("hostaudit", path=os.path.dirname(sys.executable)) or shutil.which("hostaudit")
    cmd = [exe] if exe else [sys.executable, "-m", "audit"]
    proc = subprocess.run([*cmd, "--format", "json", "--no-entry-points"], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode in (0, 1, 3), proc.stderr[-2000:]  # 1 and 3: what this host lacks, not a broken run
    return {r["id"]: r for r in json.loads(proc.stdout)["results"]}


def test_every_line_virt_host_validate_prints_here_is_known(vhv_output):
    lines, other = parse_vhv(vhv_output)
    assert lines, vhv_output
    assert not other, f"lines of {VHV}'s stdout that are not check lines: {other}"
    assert [ln.raw for ln in lines if ln.hv != "QEMU"] == [], "asked for qemu, got other drivers' lines"
    assert unknown_lines(lines) == [], f"{VHV} printed lines the mapping in {__file__} does not know"


def test_each_line_has_a_hostaudit_result_that_agrees(vhv_output, hostaudit_results):
    lines, _ = parse_vhv(vhv_output)
    verdicts = compare(lines, hostaudit_results, Run(as_root=os.geteuid() == 0))
    wrong = [v for v in verdicts if v.outcome not in ("agrees", "tolerated")]
    assert not wrong, "virt-host-validate and hostaudit disagree on this host:\n" + "\n".join(map(show, wrong))


def test_virt_host_validate_prints_the_lines_its_source_says(vhv_run):
    """libvirt 9.0 on x86-64: the /dev/kvm lines only after the CPU flag passed, the kernel IOMMU line
    only after the platform line passed and when /sys/kernel/iommu_groups exists, the rest always."""
    if platform.machine() not in ("x86_64", "i686"):
        pytest.skip(f"the line list below is x86's (this machine: {platform.machine()})")
    lines, _ = parse_vhv(vhv_run.stdout)
    rows = [row_for(ln) for ln in lines]
    texts = [r.line if r else ln.text for ln, r in zip(lines, rows, strict=True)]
    by_text = {t: ln for t, ln in zip(texts, lines, strict=True)}
    hw = by_text["Checking for hardware virtualization"]
    kvm_lines = [t for t in texts if "/dev/kvm" in t]
    if hw.level == "PASS":
        assert kvm_lines[:1] == ["Checking if device /dev/kvm exists"], texts
    else:
        assert kvm_lines == [], "without VT-x/AMD-V virt-host-validate skips its /dev/kvm lines"
    for always in ("Checking if device /dev/vhost-net exists", "Checking if device /dev/net/tun exists",
                   "Checking for device assignment IOMMU support", "Checking for secure guest support"):
        assert always in texts, always
    cgroup_lines = [ln for ln in lines if "controller support" in ln.text]
    no_cgroups = "Unable to initialize cgroups" in vhv_run.stderr  # then it prints none of the six
    assert len(cgroup_lines) == (0 if no_cgroups else 6), texts
    iommu = by_text["Checking for device assignment IOMMU support"]
    kernel_line = "Checking if IOMMU is enabled by kernel" in texts
    assert kernel_line == (iommu.level == "PASS" and os.path.isdir("/sys/kernel/iommu_groups")), texts


# -- recorded outputs of other hosts: the parser and the mapping's completeness ---------------------------

RECORDED = sorted(DATA.glob("*.txt"))


def test_recorded_outputs_are_there_and_documented():
    documented = (DATA / "README.md").read_text(encoding="utf-8")
    assert len(RECORDED) >= 5
    for path in RECORDED:
        assert f"`{path.name}`" in documented, f"{path.name} has no source in tests/data/vhv/README.md"


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
def test_recorded_output_parses_and_every_line_is_known(path):
    lines, other = parse_vhv(path.read_text(encoding="utf-8"))
    assert lines
    assert [o for o in other if not any(p.fullmatch(o) for p in STDERR_LINES)] == []
    assert unknown_lines(lines) == []
    for ln in lines:
        assert ln.raw.endswith(ln.level if not ln.detail else f"({ln.detail})"), ln.raw


def test_a_terminal_run_parses_like_a_piped_one():
    piped, _ = parse_vhv((DATA / "this-host-debian12-libvirt9.0.txt").read_text(encoding="utf-8"))
    tty_text = (DATA / "this-host-debian12-libvirt9.0-tty.txt").read_bytes().decode()  # keeps the \r
    assert "\x1b[31mFAIL\x1b[0m" in tty_text and "\r\n" in tty_text  # colours, and a pty's line ends
    tty, other = parse_vhv(tty_text)
    assert other == [] and tty == piped


def test_the_recorded_output_of_this_machine():
    lines, _ = parse_vhv((DATA / "this-host-debian12-libvirt9.0.txt").read_text(encoding="utf-8"))
    assert [(ln.text, ln.level) for ln in lines] == [
        ("Checking for hardware virtualization", "FAIL"),
        ("Checking if device /dev/vhost-net exists", "WARN"),
        ("Checking if device /dev/net/tun exists", "PASS"),
        *((f"Checking for cgroup '{c}' controller support", "PASS")
          for c in ("cpu", "cpuacct", "cpuset", "memory", "devices", "blkio")),
        ("Checking for device assignment IOMMU support", "WARN"),
        ("Checking for secure guest support", "WARN"),
    ]
    assert lines[0].detail.startswith("Host not compatible with KVM; HW virtualization CPU features not found.")
    assert lines[-2].detail == "Unknown if this platform has IOMMU support"


def test_later_releases_quote_device_names_and_give_pass_a_detail():
    lines, _ = parse_vhv((DATA / "arcos-deployer-amd-newer-libvirt.txt").read_text(encoding="utf-8"))
    first, kvm = lines[0], lines[1]
    assert (first.level, first.detail) == ("PASS", "SVM")
    assert kvm.text == "Checking if device '/dev/kvm' exists" and row_for(kvm).check == "kvm.device"
    assert lines[-1].detail == "None of SEV, SEV-ES, SEV-SNP, TDX available"


def test_all_drivers_output_keeps_lxc_apart():
    lines, _ = parse_vhv((DATA / "maxltrm-2018-amd-ivrs-lxc.txt").read_text(encoding="utf-8"))
    assert [ln.hv for ln in lines].count("QEMU") == 18 and [ln.hv for ln in lines].count("LXC") == 20
    assert all(row_for(ln) is None and out_of_scope(ln) for ln in lines if ln.hv == "LXC")
    assert lines[-1] == VhvLine("LXC", "Checking if device /sys/fs/fuse/connections exists", "FAIL",
                                "Load the 'fuse' module to enable /proc/ overrides", lines[-1].raw)


@pytest.mark.parametrize("text", [
    "  QEMU: Checking for something new in libvirt 12                           : PASS",
    "  QEMU: Checking if device /dev/vfio/vfio exists                           : WARN (Load vfio)",
    "   LXC: Checking for namespace cgroup                                      : PASS",
    "    XX: Checking for hardware virtualization                               : PASS",
])
def test_a_line_the_mapping_does_not_know_is_reported(text):
    lines, other = parse_vhv(text)
    assert other == [] and unknown_lines(lines) == [text]


# -- the comparison, on results written here ------------------------------------------------------------


def _line(text: str, level: str, detail: str = "") -> VhvLine:
    return VhvLine("QEMU", text, level, detail, f"  QEMU: {text} : {level}")


def _result(status: str, severity: str = "medium", message: str = "") -> dict[str, str]:
    return {"status": status, "severity": severity, "message": message}


@pytest.mark.parametrize(("level", "status", "severity", "ok"), [
    ("PASS", "pass", "high", True), ("PASS", "waived", "high", True), ("PASS", "warn", "low", False),
    ("PASS", "skip", "low", False), ("WARN", "warn", "high", True), ("WARN", "skip", "high", True),
    ("WARN", "fail", "medium", True), ("WARN", "fail", "info", True), ("WARN", "fail", "high", False),
    ("WARN", "pass", "low", False), ("FAIL", "fail", "critical", True), ("FAIL", "warn", "critical", False),
    ("FAIL", "error", "critical", False), ("NOTE", "skip", "medium", True),
])
def test_the_stated_mapping(level, status, severity, ok):
    assert agrees(level, _result(status, severity)) is ok


def test_a_check_covering_several_lines_is_compared_with_the_worst():
    lines = [_line(f"Checking for cgroup '{c}' controller support", "WARN" if c == "cpuset" else "PASS")
             for c in ("cpu", "cpuacct", "cpuset")]
    verdicts = compare(lines, {"cgroups.controllers": _result("fail")}, Run(as_root=True))
    assert [(v.compared, v.outcome) for v in verdicts] == [("WARN", "agrees")] * 3
    verdicts = compare(lines, {"cgroups.controllers": _result("pass")}, Run(as_root=True))
    assert [v.outcome for v in verdicts] == ["differs"] * 3


def test_cgroup_v2_devices_warning_of_an_ordinary_user_is_tolerated_and_the_rest_compared():
    lines = [_line("Checking for cgroup 'memory' controller support", "PASS"),
             _line("Checking for cgroup 'devices' controller support", "WARN", "Enable 'devices' in kernel ...")]
    ok = {"cgroups.controllers": _result("pass")}
    assert [v.outcome for v in compare(lines, ok, Run(as_root=False))] == ["agrees", "tolerated"]
    assert [v.outcome for v in compare(lines, ok, Run(as_root=True))] == ["differs", "differs"]


def test_unknown_iommu_platform_is_tolerated_whatever_hostaudit_knows():
    line = _line("Checking for device assignment IOMMU support", "WARN", "Unknown if this platform has IOMMU support")
    (v,) = compare([line], {"iommu.enabled": _result("fail", "medium")}, Run(as_root=True))
    assert v.outcome == "agrees"  # at the default severity no tolerance is needed
    for result in (_result("fail", "high"), _result("pass")):
        (v,) = compare([line], {"iommu.enabled": result}, Run(as_root=True))
        assert v.outcome == "tolerated" and "vendor" in v.reason
    firmware = _line("Checking for device assignment IOMMU support", "WARN", "No ACPI DMAR table found, ...")
    (v,) = compare([firmware], {"iommu.enabled": _result("fail", "high")}, Run(as_root=True))
    assert v.outcome == "differs"


def test_missing_results_gaps_and_unknown_lines_are_reported():
    lines = [_line("Checking if device /dev/net/tun exists", "PASS"), _line("Checking for PowerPC KVM module loaded",
                                                                             "WARN"), _line("Checking for x", "PASS")]
    assert [v.outcome for v in compare(lines, {}, Run(as_root=True))] == [
        "no hostaudit result", "no hostaudit check", "unknown line"]


# -- the mapping against the catalogue and the README ------------------------------------------------------


def builtin_check_ids() -> list[str]:
    from audit.engine import collect_checks
    from audit.plugins import make_plugins

    declared, _ = collect_checks(make_plugins(entry_points=False))
    return [d.check.id for d in declared]


def test_mapped_and_tolerated_checks_exist():
    ids = set(builtin_check_ids())
    assert {r.check for r in QEMU_ROWS if r.check} <= ids
    assert {t.check for t in TOLERATED} <= ids
    assert all(len(t.reason) > 40 for t in TOLERATED)
    assert all(r.why for r in QEMU_ROWS if r.check is None)


def readme_section() -> str:
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no section {SECTION!r}"
    return text.split(SECTION, 1)[1].split("\n## ", 1)[0]


def test_readme_compares_every_line_and_names_every_other_check():
    section = readme_section()
    for row in QEMU_ROWS:
        assert f"`{row.line}`" in section, f"README.md's comparison lacks the line {row.line!r}"
        if row.check:
            assert f"`{row.check}`" in section
    for hv in OUT_OF_SCOPE:
        assert hv in section
    mapped = {r.check for r in QEMU_ROWS}
    missing = [i for i in builtin_check_ids() if i not in mapped and f"`{i}`" not in section]
    assert not missing, f"README.md's comparison lacks these checks virt-host-validate has no line for: {missing}"
