"""ksm.effectiveness and ksm.ksmtuned_blind on real trees: KSM counters as published or captured,
Debian 12's and upstream's ksmtuned scripts, libvirt's own expected QEMU command line, the
libvirt QEMU driver package of Debian 12 (tests/data/memtune/README.md names every source)."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from audit.engine import run_check
from audit.host import memtune
from audit.host.core import Host
from audit.host.memtune import (
    LIBVIRT_DRIVER,
    EreError,
    ProcessView,
    compile_finder,
    ere_compile,
    ere_search,
    finder_matches,
    parse_ksmtuned_script,
)
from audit.model import Status
from audit.policy import DEFAULT_POLICY
from checks import ksmusage
from tests import trees
from tests.checkrun import auditor, fix, observed, policy
from tests.conftest import DATA, Dir, Link

MT = DATA / "memtune"
KSM = "sys/kernel/mm/ksm"
CHECKS = {c.id: c for c in ksmusage.hostaudit_checks()}
DEBIAN_SCRIPT = MT / "ksmtuned-debian12/usr-sbin-ksmtuned"
LOCAL = "/usr/local/sbin/ksmtuned"
UPSTREAM_SCRIPT = (MT / "ksmtuned-upstream/ksmtuned.sh.in").read_text().replace("@SYSCONFDIR@", "/etc")


@pytest.fixture
def audit(make_root):
    return auditor(CHECKS, make_root)


def with_ksm(tree: dict, listing: str | Path | None) -> dict:
    """The tree with /sys/kernel/mm/ksm replaced by a name=value listing (None: no KSM at all)."""
    tree = {k: v for k, v in tree.items() if not k.startswith(KSM)}
    if listing is not None:
        tree.update(trees.sysfs_from_listing(MT / listing if isinstance(listing, str) else listing, KSM))
    return tree


def libvirt_argv() -> list[str]:
    """libvirt's expected command line for a KVM guest, as the guest's /proc/PID/cmdline has it."""
    text = (MT / "libvirt/kvm-features.x86_64-latest.args").read_text().replace("\\\n", " ")
    words = shlex.split(text)
    return words[next(i for i, w in enumerate(words) if w.startswith("/")):]


def process(pid: int, argv: list[str], comm: str | None = None) -> dict:
    comm = comm if comm is not None else os.path.basename(argv[0])[:15]
    return {f"proc/{pid}/comm": comm + "\n", f"proc/{pid}/cmdline": b"\0".join(a.encode() for a in argv) + b"\0"}


def ksmtuned_enabled(script: str | Path = DEBIAN_SCRIPT, unit_dir: str = "lib/systemd/system") -> dict:
    """Debian 12's ksmtuned package installed and enabled (the real unit, its wants link)."""
    return {
        "usr/sbin/ksmtuned": script,
        "etc/ksmtuned.conf": MT / "ksmtuned-debian12/etc-ksmtuned.conf",
        f"{unit_dir}/ksmtuned.service": MT / "ksmtuned-debian12/lib-systemd-system-ksmtuned.service",
        "etc/systemd/system/multi-user.target.wants/ksmtuned.service": Link(f"/{unit_dir}/ksmtuned.service"),
    }


def libvirt_installed(domain_emulator: str | None = None) -> dict:
    control = (MT / "libvirt/libvirt-daemon-driver-qemu_9.0.0-4+deb12u2.control").read_text()
    status = control.replace("Version:", "Status: install ok installed\nVersion:", 1)
    tree = {
        f"usr/lib/x86_64-linux-gnu/{LIBVIRT_DRIVER}": b"\x7fELF\x02\x01\x01" + b"\0" * 64,
        "usr/bin/qemu-system-x86_64": b"\x7fELF\x02\x01\x01" + b"\0" * (80 * 1024),
        "var/lib/dpkg/status": "Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b7\n\n" + status,
    }
    if domain_emulator:
        tree["etc/libvirt/qemu/vm1.xml"] = (f"<domain type='kvm'>\n  <name>vm1</name>\n  <devices>\n"
                                            f"    <emulator>{domain_emulator}</emulator>\n  </devices>\n</domain>\n")
    return tree


def live(**extra) -> dict:
    return {**trees.live_tree(), **extra}


def run_fix(root: Path, commands: list[str]) -> None:
    script = "set -e\n" + "\n".join(commands) + "\n"
    subprocess.run(["bash", "-c", script], check=True, env={**os.environ, "ROOT": str(root)})


# -- the pattern matcher ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "text", "hit"), [
    ("^qemu-system.*-enable-kvm", "qemu-system-x86_64 -enable-kvm -m 1G", True),
    ("^qemu-system.*-enable-kvm", "/usr/bin/qemu-system-x86_64 -name guest=a -accel kvm", False),
    ("^qemu(-(kvm|system-.+)|:.{1,11})$", "qemu-system-x86", True),
    ("^qemu(-(kvm|system-.+)|:.{1,11})$", "qemu-kvm", True),
    ("^qemu(-(kvm|system-.+)|:.{1,11})$", "qemu:guest01", True),
    ("^qemu(-(kvm|system-.+)|:.{1,11})$", "qemu:guest0123456", False),
    ("^qemu(-(kvm|system-.+)|:.{1,11})$", "qemu", False),
    ("[[:digit:]]{2,3}$", "abc12", True),
    ("[^a-z]", "abc", False),
    ("a|", "zzz", True),  # an empty branch matches the empty string
    ("x{0}y", "y", True),
    ("\\.", "a.b", True),
    ("[]]", "]", True),
    ("\\w+", "__", True),
])
def test_ere(pattern, text, hit):
    assert ere_search(ere_compile(pattern), text) is hit


def test_ere_case_folding():
    assert ere_search(ere_compile("QEMU", icase=True), "qemu-kvm") is True


@pytest.mark.parametrize("pattern", ["(a", "a)", "*a", "a{2,1}", "[z-a]", "\\1", "a\\b", "[[:nope:]]", "a{99999}",
                                     "\\"])
def test_ere_refuses(pattern):
    with pytest.raises(EreError):
        ere_compile(pattern)


def test_catastrophic_patterns_stay_linear():
    started = time.perf_counter()
    for pattern in ["(a+)+b", "(a|a)*b", "(.*)*(.*)*(.*)*x", "((a*)*)*c"]:
        assert ere_search(ere_compile(pattern), "a" * 20000) in (False, None)
    assert time.perf_counter() - started < 5.0
    big = ere_compile("a{1000}")
    assert ere_search(big, "b" * 100_000, budget=1000) is None  # over the budget: unknown, not a guess


# -- the ksmtuned scripts --------------------------------------------------------------------------------


def test_debian_script_matches_whole_command_lines():
    f = parse_ksmtuned_script(DEBIAN_SCRIPT.read_text())
    assert (f.tool, f.line, f.pattern, f.full, f.exact) == ("pgrep", 73, "^qemu-system.*-enable-kvm", True, False)
    assert f.replaceable and parse_ksmtuned_script(UPSTREAM_SCRIPT).replaceable
    assert f.command == "pgrep -f -d ' ' '^qemu-system.*-enable-kvm')"


def test_upstream_script_matches_process_names():
    f = parse_ksmtuned_script(UPSTREAM_SCRIPT)
    assert (f.tool, f.line, f.pattern, f.full) == ("pgrep", 75, "^qemu(-(kvm|system-.+)|:.{1,11})$", False)


@pytest.mark.parametrize(("line", "want"), [
    ("pidlist=$(pgrep -fxi -- 'qemu.*')", dict(full=True, exact=True, icase=True, pattern="qemu.*")),
    ("pidlist=`pgrep --full -u qemu '^/usr/bin/qemu'`", dict(full=True, filters=("-u",), pattern="^/usr/bin/qemu")),
    ("pidlist=$(pgrep \"$PATTERN\")", dict(problem="the pattern is a shell expansion, known only when it runs")),
    ("pidlist=$(pgrep -f a b)", dict(problem="pgrep is given 2 patterns (one is needed)")),
    ("pidlist=$(pgrep 'unterminated)", dict(problem="an unterminated ' quote")),
    ("ps -C qemu-kvm,qemu-system-x86 -o rsz | awk '{ sum += $1 }'",
     dict(tool="ps -C", pattern="qemu-kvm,qemu-system-x86")),
])
def test_guest_search_forms(line, want):
    f = parse_ksmtuned_script(f"committed_memory () {{\n    {line}\n}}\n")
    for k, v in want.items():
        assert getattr(f, k) == v, (k, f)


def test_script_without_a_search():
    assert parse_ksmtuned_script("#!/bin/sh\necho hi\n").problem.startswith("no pgrep or ps -C command")


def test_libvirt_guest_is_missed_by_debian_and_seen_by_upstream():
    guest = ProcessView(pid=1, comm="qemu-system-x86", argv=tuple(libvirt_argv()))
    deb = parse_ksmtuned_script(DEBIAN_SCRIPT.read_text())
    up = parse_ksmtuned_script(UPSTREAM_SCRIPT)
    assert finder_matches(deb, guest, compile_finder(deb)[0]) is False
    assert finder_matches(up, guest, compile_finder(up)[0]) is True


# -- ksm.ksmtuned_blind ----------------------------------------------------------------------------------


def test_not_enabled_is_skipped(audit):
    out = audit("ksm.ksmtuned_blind", live())
    assert out.status is Status.SKIP and "does not start at boot" in out.message


def test_running_libvirt_guest_missed_by_debian_script_fails(audit):
    out = audit("ksm.ksmtuned_blind", live(**ksmtuned_enabled(), **process(4242, libvirt_argv())))
    assert out.status is Status.FAIL
    assert out.message == ("ksmtuned's guest search misses every QEMU process running (1): it counts no committed "
                           "guest memory, so KSM starts only once free memory (MemFree+Buffers+Cached) falls below "
                           "thres = max(24684092 kB x 20%, 2048 kB) = 4936818 kB")
    text = observed(out)
    assert ("/usr/sbin/ksmtuned:73: pgrep -f -d ' ' '^qemu-system.*-enable-kvm') -> matches the whole command "
            "line") in text
    assert "/proc/4242: pid 4242: name 'qemu-system-x86', command line '/usr/bin/qemu-system-x86_64 -name " in text
    assert "starts at boot; runs /usr/sbin/ksmtuned (ExecStart= in /lib/systemd/system/ksmtuned.service)" in text
    assert out.remediation.notes.startswith("The upstream pattern (Fedora/RHEL ksmtuned) matches these guests")
    assert fix(out)[1] == ("sed -e '73c\\    pidlist=$(pgrep -d '\"'\"' '\"'\"' -- '\"'\"'^qemu(-(kvm|system-.+)|"
                           ":.{1,11})$'\"'\"')' /usr/sbin/ksmtuned > /usr/local/sbin/ksmtuned.new")
    assert "mv -f /usr/local/sbin/ksmtuned.new /usr/local/sbin/ksmtuned" in fix(out)
    assert fix(out)[-2:] == ["systemctl daemon-reload", "systemctl restart ksmtuned.service"]


def test_upstream_script_sees_the_running_guest(audit):
    out = audit("ksm.ksmtuned_blind", live(**ksmtuned_enabled(UPSTREAM_SCRIPT), **process(4242, libvirt_argv())))
    assert out.status is Status.PASS and out.message == "ksmtuned's guest search counts the QEMU processes running (1)"


def test_guest_started_by_hand_with_enable_kvm_is_seen_by_debian_script(audit):
    out = audit("ksm.ksmtuned_blind", live(**ksmtuned_enabled(),
                                           **process(77, ["qemu-system-x86_64", "-enable-kvm", "-m", "1G"])))
    assert out.status is Status.PASS


def test_mixed_guests_warn(audit):
    tree = live(**ksmtuned_enabled(), **process(77, ["qemu-system-x86_64", "-enable-kvm", "-m", "1G"]),
                **process(4242, libvirt_argv()))
    out = audit("ksm.ksmtuned_blind", tree)
    assert out.status is Status.WARN and "counts 1 of the 2 QEMU processes running" in out.message


def test_renamed_qemu_process_is_found_by_argv0(audit):
    argv = libvirt_argv()
    out = audit("ksm.ksmtuned_blind", live(**ksmtuned_enabled(UPSTREAM_SCRIPT), **process(9, argv, comm="vm-web01")))
    assert out.status is Status.FAIL  # process name no longer qemu*: the upstream pattern misses it too
    assert "Even the upstream pattern misses some" in out.remediation.notes


def test_no_guest_running_uses_the_installed_libvirt(audit):
    out = audit("ksm.ksmtuned_blind", live(**ksmtuned_enabled(), **libvirt_installed()))
    assert out.status is Status.FAIL and "misses every QEMU process as libvirt starts them (2)" in out.message
    text = observed(out)
    assert ("libvirt's QEMU driver is installed (9.0.0-4+deb12u2, /var/lib/dpkg/status (libvirt-daemon-driver-qemu))"
            in text)
    assert "installed QEMU emulators: /usr/bin/qemu-system-x86_64" in text
    assert "-accel kvm" in text and "accel=kvm" in text


def test_qemu_tools_are_not_guests(audit):
    tree = live(**ksmtuned_enabled(), **process(31, ["/usr/bin/qemu-pr-helper", "-f", "/run/pr.pid"]),
                **process(32, ["qemu-img", "convert", "a.raw", "b.qcow2"]))
    out = audit("ksm.ksmtuned_blind", tree)
    assert out.status is Status.SKIP and "0 QEMU process(es) among" in observed(out)


def test_only_the_native_emulator_is_predicted(audit):
    tree = live(**ksmtuned_enabled(), **libvirt_installed())
    for arch in ("aarch64", "arm", "riscv64", "s390x", "ppc64"):
        tree[f"usr/bin/qemu-system-{arch}"] = b"\x7fELF\x02\x01\x01" + b"\0" * 64
    out = audit("ksm.ksmtuned_blind", tree)
    assert "installed QEMU emulators (the one for this architecture): /usr/bin/qemu-system-x86_64" in observed(out)
    assert "misses every QEMU process as libvirt starts them (2)" in out.message


def test_no_libvirt_and_no_guest_is_skipped(audit):
    out = audit("ksm.ksmtuned_blind", live(**ksmtuned_enabled()))
    assert out.status is Status.SKIP and "how guests are started here is not known" in out.message


def test_image_fix_applied_then_reaudited_passes(make_root):
    tree = {**ksmtuned_enabled(), **libvirt_installed("/usr/bin/qemu-system-x86_64"),
            "etc/os-release": trees.DEBIAN_OS_RELEASE}
    root = make_root(tree)
    out = run_check(CHECKS["ksm.ksmtuned_blind"], Host.from_root(str(root)), DEFAULT_POLICY)
    assert out.status is Status.FAIL, out
    assert "<emulator> of the domains in /etc/libvirt/qemu: /usr/bin/qemu-system-x86_64" in observed(out)
    assert all('"$ROOT"' in c for c in fix(out) if not c.startswith("#"))
    assert not any(c.startswith("systemctl") for c in fix(out))  # nothing runs on an image
    run_fix(root, fix(out))
    local = (root / "usr/local/sbin/ksmtuned").read_text()
    assert local.splitlines()[72] == "    pidlist=$(pgrep -d ' ' -- '^qemu(-(kvm|system-.+)|:.{1,11})$')"
    assert local.replace(local.splitlines()[72], "") == DEBIAN_SCRIPT.read_text().replace(
        DEBIAN_SCRIPT.read_text().splitlines()[72], "")  # every other line as packaged
    assert (root / "usr/sbin/ksmtuned").read_bytes() == DEBIAN_SCRIPT.read_bytes()
    again = run_check(CHECKS["ksm.ksmtuned_blind"], Host.from_root(str(root)), DEFAULT_POLICY)
    assert again.status is Status.PASS, again
    assert "runs /usr/local/sbin/ksmtuned (ExecStart= in /etc/systemd/system/ksmtuned.service.d/" in observed(again)
    # a later fix of the local copy itself (say, the pattern was changed back) reads and writes it safely
    (root / "usr/local/sbin/ksmtuned").write_text(DEBIAN_SCRIPT.read_text())
    third = run_check(CHECKS["ksm.ksmtuned_blind"], Host.from_root(str(root)), DEFAULT_POLICY)
    assert third.status is Status.FAIL
    assert 'sed -e \'73c\\' in fix(third)[1] and fix(third)[1].endswith(f'"$ROOT"{LOCAL}.new')
    assert not any(c.endswith(f'> "$ROOT"{LOCAL}') for c in fix(third))  # never sed X > X
    run_fix(root, fix(third))
    assert run_check(CHECKS["ksm.ksmtuned_blind"], Host.from_root(str(root)), DEFAULT_POLICY).status is Status.PASS
    assert len((root / "usr/local/sbin/ksmtuned").read_text()) > 3000


def test_wrapper_script_emulator_is_not_guessed(audit):
    tree = live(**ksmtuned_enabled(), **libvirt_installed("/usr/bin/kvm"),
                **{"usr/bin/kvm": "#!/bin/sh\nexec qemu-system-x86_64 -enable-kvm \"$@\"\n"})
    out = audit("ksm.ksmtuned_blind", tree)
    assert out.status is Status.SKIP and "no QEMU emulator was found" in out.message
    assert "a script, not QEMU" in observed(out)


def test_ps_c_search_is_an_exact_name(audit):
    script = ("#!/bin/bash\ncommitted_memory () {\n    ps -C qemu-kvm -o rsz | awk '{ sum += $1 }; END { print sum }'"
              "\n}\n")
    tree = live(**ksmtuned_enabled(script), **process(5, ["/usr/libexec/qemu-kvm", "-name", "guest=a"]))
    assert audit("ksm.ksmtuned_blind", tree).status is Status.PASS
    tree = live(**ksmtuned_enabled(script), **process(5, libvirt_argv()))
    out = audit("ksm.ksmtuned_blind", tree)
    assert out.status is Status.FAIL
    assert fix(out) == ["# /usr/sbin/ksmtuned:3: make the guest search match QEMU by process name, as upstream "
                        "ksmtuned does (pgrep -d ' ' -- '^qemu(-(kvm|system-.+)|:.{1,11})$'), in a copy of the "
                        "script that a ksmtuned.service drop-in runs"]


def test_many_guests_are_counted_and_a_few_shown(audit):
    tree = live(**ksmtuned_enabled())
    for pid in range(100, 130):
        tree.update(process(pid, libvirt_argv()))
    out = audit("ksm.ksmtuned_blind", tree)
    assert out.status is Status.FAIL and "misses every QEMU process running (30)" in out.message
    assert "18 more QEMU processes not shown" in observed(out)


def test_kernel_without_ksm_is_left_to_ksm_state(audit):
    out = audit("ksm.ksmtuned_blind", with_ksm(live(**ksmtuned_enabled(), **process(1, libvirt_argv())), None))
    assert out.status is Status.SKIP and "ksm.state reports it" in out.message


@pytest.mark.parametrize(("script", "status", "text"), [
    (b"\x7fELF\x02\x01\x01\0\0\0" + b"\0" * 5000, Status.ERROR, "is a binary"),
    (b"#!/bin/bash\n" + b"# pad\n" * 60000, Status.ERROR, "byte cap"),
    ("committed_memory () {\n pidlist=$(pgrep -f '(a)\\1')\n}\n", Status.SKIP, "back-reference"),
    ("committed_memory () {\n pidlist=$(pgrep -f \"$PAT\")\n}\n", Status.SKIP, "shell expansion"),
    ("#!/bin/sh\n", Status.SKIP, "no pgrep or ps -C command"),
])
def test_hostile_scripts(audit, script, status, text):
    out = audit("ksm.ksmtuned_blind", live(**ksmtuned_enabled(script), **process(4242, libvirt_argv())))
    assert out.status is status and text in out.message, out


def test_hostile_pattern_and_command_line_stay_bounded(audit):
    script = "committed_memory () {\n pidlist=$(pgrep -f '(.*)*(.*)*(.*)*(.*)*z$')\n}\n"
    tree = live(**ksmtuned_enabled(script), **process(4242, ["/usr/bin/qemu-system-x86_64", "a" * 100_000]))
    started = time.perf_counter()
    out = audit("ksm.ksmtuned_blind", tree)
    assert time.perf_counter() - started < 10.0
    assert out.status in (Status.FAIL, Status.SKIP)


def test_process_scan_is_bounded(audit, monkeypatch):
    monkeypatch.setattr(memtune, "MAX_PIDS", 5)
    tree = live(**ksmtuned_enabled())
    for pid in range(1, 12):
        tree.update(process(pid, ["/usr/bin/sleep", "1000"]))
    tree.update(process(40000, libvirt_argv()))  # beyond the first five processes: not seen
    out = audit("ksm.ksmtuned_blind", tree)
    assert "12 processes: the first 5 were looked at" in observed(out)
    assert out.status is Status.SKIP


def test_unreadable_and_vanishing_processes_are_passed_over(audit):
    tree = live(**ksmtuned_enabled(), **process(4242, libvirt_argv()))
    tree["proc/17/comm"] = "bash\n"  # its cmdline went away between the two reads
    tree["proc/18"] = Dir()
    tree["proc/19/comm"] = Dir()
    out = audit("ksm.ksmtuned_blind", tree)
    assert out.status is Status.FAIL and "1 QEMU process(es) among 4" in observed(out)


# -- ksm.effectiveness -----------------------------------------------------------------------------------


def test_ksm_off_is_skipped(audit):
    out = audit("ksm.effectiveness", live())
    assert out.status is Status.SKIP and out.message == "KSM is not running (run=0); ksm.state judges whether it should"


def test_published_kvm_host_passes_with_the_arithmetic(audit):
    out = audit("ksm.effectiveness", with_ksm(live(), "ksm-kvm-host-2013.txt"))
    assert out.status is Status.PASS and out.message == "KSM runs and saves 1.0G"
    text = observed(out)
    assert "saved: pages_sharing 264281 = 264281 pages x 4096 B = 1.0G" in text
    assert "sharing ratio pages_sharing / pages_shared = 264281 / 162221 = 1.63" in text
    assert "wasted scanning pages_unshared / pages_sharing = 241483 / 264281 = 0.91" in text
    assert "/sys/kernel/mm/ksm/full_scans: absent" in text


def test_constructed_6_12_values(audit):
    out = audit("ksm.effectiveness", with_ksm(live(), "ksm-constructed-6.12.txt"))
    assert out.status is Status.PASS
    text = observed(out)
    assert "pages_sharing 400000 + ksm_zero_pages 0 = 400000 pages x 4096 B = 1.5G" in text
    assert "general_profit: 1589120000 B = 1.5G" in text
    assert "12: at least one full scan" in text
    assert "tuning: pages_to_scan 100 every sleep_millisecs 20 ms = up to 5000 pages/s (19.5M/s); smart_scan 1" in text


def test_negative_profit_warns(audit):
    tree = with_ksm(live(), "ksm-constructed-6.12.txt")
    tree[f"{KSM}/general_profit"] = "-8192\n"
    out = audit("ksm.effectiveness", tree)
    assert out.status is Status.WARN and "general_profit is -8192 B" in out.message


def test_wasted_scanning_warns_and_turns_on_smart_scan(audit):
    tree = with_ksm(live(), "ksm-constructed-6.12.txt")
    tree[f"{KSM}/pages_unshared"] = "9000000\n"
    tree[f"{KSM}/smart_scan"] = "0\n"
    out = audit("ksm.effectiveness", tree)
    assert out.status is Status.WARN
    assert "pages_unshared / pages_sharing = 22.50 (policy ksm.max_unshared_ratio 10)" in out.message
    assert fix(out)[0].startswith("echo 1 > /sys/kernel/mm/ksm/smart_scan")


def test_no_full_scan_yet_is_not_judged(audit):
    tree = with_ksm(live(), "ksm-constructed-6.12.txt")
    tree[f"{KSM}/pages_unshared"] = "9000000\n"
    tree[f"{KSM}/full_scans"] = "0\n"
    out = audit("ksm.effectiveness", tree)
    assert out.status is Status.PASS and "no full scan completed yet: ratios not judged" in observed(out)


def test_pcp_qa_values_with_fewer_sites_than_pages_warn(audit):
    tree = with_ksm(live(), None)
    for f in sorted((MT / "pcp-sysfs-ksm-002").iterdir()):
        tree[f"{KSM}/{f.name}"] = f
    out = audit("ksm.effectiveness", tree)
    assert out.status is Status.WARN
    assert "pages_sharing / pages_shared = 0.54 (policy ksm.min_sharing_ratio 1)" in out.message


def test_policy_thresholds_apply(audit):
    tree = with_ksm(live(), "ksm-kvm-host-2013.txt")
    out = audit("ksm.effectiveness", tree, policy(ksm_min_sharing_ratio=2.0, ksm_max_unshared_ratio=0.5))
    assert out.status is Status.WARN
    assert "1.63" in out.message and "0.91" in out.message


def test_nul_padded_capture_is_an_error_naming_the_file(audit):
    tree = with_ksm(live(), None)
    for f in sorted((MT / "pcp-sysfs-ksm-001").iterdir()):
        tree[f"{KSM}/{f.name}"] = f
    out = audit("ksm.effectiveness", tree)
    assert out.status is Status.ERROR and "/sys/kernel/mm/ksm/" in out.message


def test_merge_across_nodes_is_reported_on_a_numa_host(audit):
    tree = with_ksm(live(), "ksm-constructed-6.12.txt")
    base = MT / "pcp-sysfs-numa-001"
    for path in sorted(base.rglob("*")):
        if path.is_file():
            tree[f"sys/devices/system/node/{path.relative_to(base)}"] = path
    out = audit("ksm.effectiveness", tree)
    assert "1 on a host with 4 memory nodes: pages of different nodes are merged" in observed(out)


def test_effectiveness_on_an_image_is_not_judged(audit):
    assert audit("ksm.effectiveness", {"etc/os-release": trees.DEBIAN_OS_RELEASE}).status is Status.SKIP


# -- snapshots ------------------------------------------------------------------------------------------


def snapshot_host(root: Path) -> Host:
    from audit.capture import gather_patterns
    from audit.host.collect import collect_document, render_document
    from audit.host.snapshot import host_from_snapshot, parse_snapshot

    doc = collect_document(str(root), gather_patterns(entry_points=False))
    return host_from_snapshot(parse_snapshot(render_document(doc).encode()), name="host.json")


@pytest.mark.parametrize(("check_id", "tree"), [
    pytest.param("ksm.effectiveness", lambda: with_ksm(live(), "ksm-constructed-6.12.txt"), id="effectiveness"),
    pytest.param("ksm.ksmtuned_blind", lambda: live(**ksmtuned_enabled(), **libvirt_installed()), id="blind-libvirt"),
    pytest.param("ksm.ksmtuned_blind",
                 lambda: {**ksmtuned_enabled(), **libvirt_installed("/usr/bin/qemu-system-x86_64")}, id="blind-image"),
])
def test_a_snapshot_is_judged_like_the_host(make_root, check_id, tree):
    root = make_root(tree())
    direct = run_check(CHECKS[check_id], Host.from_root(str(root)), DEFAULT_POLICY)
    captured = run_check(CHECKS[check_id], snapshot_host(root), DEFAULT_POLICY)
    assert (captured.status, captured.message) == (direct.status, direct.message)
    if check_id != "ksm.ksmtuned_blind" or "proc/" not in str(tree()):
        assert captured.evidence == direct.evidence
    # else a snapshot carries no process list (test_a_snapshot_carries_no_process_command_line): its
    # evidence says so, where a live host's lists the processes it read
    assert captured.status is not Status.ERROR


def test_a_snapshot_carries_no_process_command_line(make_root):
    """Command lines may hold secrets and a snapshot leaves the host: it carries none, and a snapshot
    of a host running QEMU is judged as a host without the process view (here: libvirt installed)."""
    root = make_root(live(**ksmtuned_enabled(), **libvirt_installed(), **process(4242, libvirt_argv())))
    from audit.capture import gather_patterns
    from audit.host.collect import collect_document

    doc = collect_document(str(root), gather_patterns(entry_points=False))
    assert not [p for p, e in doc["entries"].items() if p.startswith("/proc/4242") and "content" in e]
    captured = run_check(CHECKS["ksm.ksmtuned_blind"], snapshot_host(root), DEFAULT_POLICY)
    assert captured.status is not Status.ERROR
    assert "4242" not in str(captured.evidence)


def test_a_small_file_with_nul_bytes_survives_a_snapshot(make_root):
    """encode_content keeps small text readable, but never text with NUL (the loader refuses it)."""
    from audit.host.collect import encode_content

    assert encode_content(b"a\0b\0")["encoding"] == "base64"
    assert encode_content(b"plain\n")["encoding"] == "utf-8"
