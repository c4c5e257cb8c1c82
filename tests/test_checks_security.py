"""security.vm_vulnerabilities on real /sys/devices/system/cpu/vulnerabilities listings (tests/data/
vulnerabilities/, sources in its README): every outcome, the fixes, images, snapshots and hostile files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from audit.capture import gather_patterns
from audit.engine import run_check
from audit.host.collect import Patterns, collect_document, render_document
from audit.host.core import Host
from audit.host.registry import FACTS
from audit.host.snapshot import host_from_snapshot, parse_snapshot
from audit.host.virt import VULN_DIR, cpu_vulnerabilities
from audit.model import Outcome, Status
from audit.policy import DEFAULT_POLICY
from checks.security import FAIL, OK, WARN, assess, vm_vulnerabilities
from tests import trees
from tests.conftest import DATA, Dir

SAMPLES = DATA / "vulnerabilities"
BASE = VULN_DIR.lstrip("/")
INTEL = "intel-xeon-gold-6132-skylake-sp.txt"  # Skylake-SP, the Xeon Platinum 8160's generation
ARM64_CPU = "arm64-raspberrypi4-cortex-a72-debian.txt"


def listing(name: str, **replace: str | None) -> dict:
    """The sample as files under /sys/devices/system/cpu/vulnerabilities; ``replace`` changes or (None)
    drops single files."""
    tree = trees.sysfs_from_listing(SAMPLES / name, BASE)
    for key, value in replace.items():
        if value is None:
            tree.pop(f"{BASE}/{key}", None)
        else:
            tree[f"{BASE}/{key}"] = value + "\n"
    return tree


def live(name: str, *, cpuinfo: str = "this-vm.txt", cmdline: str | None = trees.THIS_VM_CMDLINE, **replace) -> dict:
    tree = trees.live_tree(cpuinfo=cpuinfo, cmdline=cmdline)
    tree.update(listing(name, **replace))
    return tree


def debian(name: str, params: str, *, cpuinfo: str = INTEL, **replace) -> dict:
    """A Debian 12 host booted with ``params`` (its GRUB inputs and grub.cfg say the same)."""
    tree = trees.debian12_live(params, cpuinfo=cpuinfo)
    tree.update(listing(name, **replace))
    return tree


@pytest.fixture
def audit(make_root):
    def run(tree: dict) -> Outcome:
        return run_check(vm_vulnerabilities, Host.from_root(str(make_root(tree))), DEFAULT_POLICY)

    return run


def observed(outcome: Outcome) -> dict[str, str]:
    return {e.source.removeprefix(VULN_DIR + "/"): e.observed for e in outcome.evidence}


def fix(outcome: Outcome) -> list[str]:
    assert outcome.remediation is not None, outcome
    return list(outcome.remediation.commands)


def bash_clean(commands: list[str]) -> None:
    script = "set -e\n" + "\n".join(commands) + "\n"
    done = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert done.returncode == 0, done.stderr


# -- the kernel's strings, one at a time -----------------------------------------------------------


@pytest.mark.parametrize(("name", "value", "level", "tags"), [
    pytest.param("mds", "Not affected", OK, set(), id="not-affected"),
    pytest.param("mds", "Mitigation: Clear CPU buffers; SMT disabled", OK, set(), id="mds-mitigated"),
    pytest.param("mds", "Mitigation: Clear CPU buffers; SMT vulnerable", WARN, {"smt"}, id="mds-smt"),
    pytest.param("mds", "Mitigation: Clear CPU buffers; SMT Host state unknown", OK, set(), id="mds-in-a-guest"),
    pytest.param("mds", "Vulnerable; SMT vulnerable", FAIL, {"off", "smt"}, id="mds-off"),
    pytest.param("mds", "Vulnerable: Clear CPU buffers attempted, no microcode; SMT vulnerable", FAIL,
                 {"microcode", "smt"}, id="mds-no-microcode"),
    pytest.param("itlb_multihit", "KVM: Vulnerable", FAIL, {"off"}, id="itlb-kvm"),
    pytest.param("itlb_multihit", "KVM: Mitigation: Split huge pages", OK, set(), id="itlb-split"),
    pytest.param("itlb_multihit", "KVM: Mitigation: VMX disabled", OK, set(), id="itlb-vmx-off"),
    pytest.param("l1tf", "Mitigation: PTE Inversion; VMX: vulnerable", FAIL, {"vmx"}, id="l1tf-vmx"),
    pytest.param("l1tf", "Mitigation: PTE Inversion; VMX: conditional cache flushes, SMT vulnerable", WARN,
                 {"smt"}, id="l1tf-smt"),
    pytest.param("l1tf", "Mitigation: PTE Inversion; VMX: cache flushes, SMT disabled", OK, set(), id="l1tf-ok"),
    pytest.param("spectre_v2", "Mitigation: Enhanced / Automatic IBRS; IBPB: conditional; PBRSB-eIBRS: SW sequence;"
                 " BHI: Vulnerable", FAIL, {"bhi"}, id="bhi"),
    pytest.param("spectre_v2", "Mitigation: Enhanced / Automatic IBRS; BHI: Vulnerable, KVM: SW loop", OK, set(),
                 id="bhi-kvm-sw-loop"),
    pytest.param("spectre_v2", "Mitigation: Enhanced IBRS; PBRSB-eIBRS: Vulnerable", FAIL, {"pbrsb"}, id="pbrsb"),
    pytest.param("spectre_v2", "Vulnerable: LFENCE", FAIL, {"lfence"}, id="lfence"),
    pytest.param("spectre_v2", "Vulnerable: eIBRS with unprivileged eBPF", FAIL, {"ebpf"}, id="ebpf"),
    pytest.param("retbleed", "Vulnerable: untrained return thunk / IBPB on non-AMD based uarch", FAIL, {"nonamd"},
                 id="retbleed-non-amd"),
    pytest.param("spec_rstack_overflow", "Mitigation: safe RET, no microcode", WARN, {"microcode"}, id="srso-ucode"),
    pytest.param("gather_data_sampling", "Vulnerable: No microcode", FAIL, {"microcode"}, id="gds-ucode"),
    pytest.param("gather_data_sampling", "Unknown: Dependent on hypervisor status", WARN, {"unknown"}, id="gds-guest"),
    pytest.param("mmio_stale_data", "Unknown: No mitigations", WARN, {"unknown"}, id="mmio-unknown"),
    pytest.param("vmscape", "Mitigation: IBPB before exit to userspace", OK, set(), id="vmscape"),
])
def test_assess_the_kernels_strings(name, value, level, tags):
    found = assess(name, value)
    assert (found.level, set(found.tags)) == (level, tags)


@pytest.mark.parametrize(("value", "level"), [
    ("Not affected", OK), ("Mitigation: CSV2, BHB", OK), ("Mitigation: Branch predictor hardening, BHB", OK),
    ("Mitigation: Branch predictor hardening, but not BHB", FAIL), ("Vulnerable", FAIL),
    ("Vulnerable: Unprivileged eBPF enabled", FAIL),
])
def test_assess_arm64_spectre_v2(value, level):
    assert assess("spectre_v2", value, arm64=True).level == level


# -- live hosts -------------------------------------------------------------------------------------


def test_this_vm_today_passes_and_names_the_guest_host_opt_out(audit):
    out = audit(live("this-vm-6.18-amd-2026-11-30.txt"))
    assert out.status is Status.PASS
    assert out.message.startswith("all 12 mitigated or not affected (the command line has "
                                  "mitigations=auto,no_guest_host,no_guest_guest; this host is itself a VM")
    seen = observed(out)
    assert seen["spec_rstack_overflow"] == "Mitigation: Safe RET" and seen["vmscape"] == "Not affected"
    assert seen["/proc/cmdline"] == "mitigations=auto,no_guest_host,no_guest_guest"
    assert "meltdown" not in seen and "tsa" not in seen  # read, not judged: not guest-to-host issues here


def test_this_vm_on_its_intel_host_fails_on_bhi_and_the_fix_drops_the_opt_out(audit):
    out = audit(live("this-vm-6.18-intel-2026-11-26.txt"))
    assert out.status is Status.FAIL
    assert out.message.startswith("1 of 12 not mitigated: spectre_v2: BHI not mitigated for guests")
    assert fix(out) == ["# remove mitigations from the kernel command line in your boot loader's configuration"]
    assert out.remediation.reboot_required
    assert "no_guest_host" in out.remediation.notes


def test_kvm_host_with_mitigations_off_fails_and_the_fix_removes_it(audit):
    out = audit(debian("xeon8160-ubuntu-6.8-mitigations-off.txt", "mitigations=off"))
    assert out.status is Status.FAIL
    assert out.message == ("9 of 12 not mitigated: l1tf: no L1D flush on VM entry; itlb_multihit: vulnerable; mds: "
                           "vulnerable; tsx_async_abort: vulnerable; mmio_stale_data: vulnerable; retbleed: vulnerable;"
                           " gather_data_sampling: vulnerable; spectre_v2: vulnerable; vmscape: vulnerable (the command"
                           " line has mitigations=off)")
    commands = fix(out)
    # KVM's own parameters take a write now; at boot, taking mitigations=off off is all it takes
    assert commands[:2] == [
        "echo always > /sys/module/kvm_intel/parameters/vmentry_l1d_flush   # l1tf: applies to VMs started from now on",
        "echo force > /sys/module/kvm/parameters/nx_huge_pages   # itlb_multihit: applies to VMs started from now on"]
    assert commands[2].startswith("sed -i -E") and "mitigations" in commands[2] and commands[-1] == "update-grub"
    assert not any("90-hostaudit-cpu-vulnerabilities.cfg" in c for c in commands)  # nothing to add
    seen = observed(out)
    assert seen["itlb_multihit"] == "KVM: Vulnerable"
    assert seen["l1tf"] == "Mitigation: PTE Inversion; VMX: vulnerable, SMT disabled"
    assert seen["/proc/cmdline"] == "mitigations=off"
    bash_clean(commands)


def test_the_same_host_with_mitigations_on_passes(audit):
    out = audit(debian("xeon8160-ubuntu-6.8-mitigations-on.txt", ""))
    assert out.status is Status.PASS and out.message == "all 12 mitigated or not affected"
    assert observed(out)["vmscape"] == "Mitigation: IBPB before exit to userspace"


def test_per_issue_switches_are_taken_off_and_the_rest_turned_on(audit):
    out = audit(debian("xeon8160-ubuntu-6.8-mitigations-off.txt", "mds=off kvm.nx_huge_pages=off"))
    assert out.status is Status.FAIL
    commands = fix(out)
    # what no parameter explains is turned on, now where KVM allows it and at every boot
    assert "echo always > /sys/module/kvm_intel/parameters/vmentry_l1d_flush   # l1tf: applies to VMs started " \
           "from now on" in commands
    snippet = next(c for c in commands if "90-hostaudit-cpu-vulnerabilities.cfg" in c and c.startswith("echo"))
    for token in ("spectre_v2=on", "vmscape=ibpb", "mmio_stale_data=full", "kvm-intel.vmentry_l1d_flush=always",
                  "tsx_async_abort=full", "retbleed=auto"):
        assert token in snippet
    assert "mds=" not in snippet and "nx_huge_pages" not in snippet  # their switches are removed instead
    strip = next(c for c in commands if c.startswith("sed -i -E"))
    assert "[m]ds" in strip or "mds" in strip
    assert any(c.startswith("# gather_data_sampling: nothing on the command line turned it off") for c in commands)
    bash_clean(commands)


def test_itlb_multihit_alone_is_fixed_now_and_at_boot(audit):
    out = audit(debian("xeon8160-ubuntu-6.8-mitigations-on.txt", "", itlb_multihit="KVM: Vulnerable"))
    assert out.status is Status.FAIL and out.message.startswith("1 of 12 not mitigated: itlb_multihit: vulnerable")
    commands = fix(out)
    assert commands[0] == ("echo force > /sys/module/kvm/parameters/nx_huge_pages   # itlb_multihit: applies to VMs"
                           " started from now on")
    assert "kvm.nx_huge_pages=force" in " ".join(commands)


def test_linuxki_host_with_everything_off(audit):
    out = audit(live("linuxki-58-mitigations-off.txt", cpuinfo=INTEL, cmdline=None))
    assert out.status is Status.FAIL
    seen = observed(out)
    assert seen["vmscape"] == "absent: not known to this kernel (added in Linux 6.17)"
    assert seen["reg_file_data_sampling"] == "absent: not known to this kernel (added in Linux 6.9)"
    assert seen["itlb_multihit"] == "KVM: Mitigation: VMX disabled"
    assert "not known to this kernel: reg_file_data_sampling, vmscape" in out.message
    commands = fix(out)
    assert "echo off > /sys/devices/system/cpu/smt/control   # SMT vulnerable: siblings can read each other's " \
           "buffers" in commands  # mds says "SMT vulnerable"
    assert "mitigations=auto,nosmt" in " ".join(commands)


def test_talos_skylake_needs_microcode_and_smt_off(audit):
    out = audit(debian("talos-6.18-skylake-i3-6100t.txt", ""))
    assert out.status is Status.FAIL
    assert out.message.startswith("1 of 12 not mitigated, 3 of 12 only partly: gather_data_sampling: vulnerable, "
                                  "no microcode; l1tf: SMT vulnerable; mds: SMT vulnerable; mmio_stale_data: SMT "
                                  "vulnerable")
    commands = fix(out)
    assert any("apt-get install -y --no-install-recommends intel-microcode" in c for c in commands)
    assert not any("amd64-microcode" in c for c in commands)  # the CPU is Intel
    assert "gather_data_sampling=force" in out.remediation.notes
    bash_clean(commands)


def test_only_smt_left_is_a_warning(audit):
    out = audit(debian("talos-6.18-skylake-i3-6100t.txt", "", gather_data_sampling="Mitigation: Microcode"))
    assert out.status is Status.WARN
    assert out.message.startswith("3 of 12 only partly: l1tf: SMT vulnerable;")


def test_an_amd_host_without_srso_microcode_gets_amd_microcode(audit, make_root):
    tree = debian("this-vm-6.18-amd-2026-11-30.txt", "", cpuinfo="amd-epyc-7451-zen1-naples.txt",
                  spec_rstack_overflow="Mitigation: safe RET, no microcode")
    out = audit(tree)
    assert out.status is Status.WARN and "spec_rstack_overflow: no microcode" in out.message
    assert any("amd64-microcode" in c for c in fix(out)) and not any("intel-microcode" in c for c in fix(out))


def test_old_kvm_guest_without_microcode(audit):
    out = audit(live("devsec-linux-baseline-114-kvm-guest.txt", cpuinfo="qemu-virtual-cpu-2.5-kvm-guest.txt",
                     cmdline=None))
    assert out.status is Status.FAIL
    assert out.message.startswith("1 of 3 not mitigated: mds: vulnerable, no microcode")
    assert "this host is itself a VM" in out.message
    assert "not known to this kernel: itlb_multihit, tsx_async_abort, mmio_stale_data" in out.message


def test_unknown_is_a_warning_with_advice(audit):
    out = audit(live("this-vm-6.18-amd-2026-11-30.txt", srbds="Unknown: Dependent on hypervisor status"))
    assert out.status is Status.WARN
    assert fix(out) == ["# srbds: the kernel cannot tell: inside a VM the outer hypervisor decides; on bare metal a "
                        "newer kernel or microcode knows this CPU"]
    assert observed(out)["srbds"] == "Unknown: Dependent on hypervisor status"


# -- arm64: only spectre_v2 applies ---------------------------------------------------------------


def test_arm64_odroid_passes_on_spectre_v2_alone(audit):
    out = audit(live("arm64-odroid-c4-cortex-a55-5.7.txt", cpuinfo=ARM64_CPU, cmdline=None))
    assert out.status is Status.PASS and out.message == "1 mitigated or not affected"
    assert [e.source for e in out.evidence] == [f"{VULN_DIR}/spectre_v2"]  # l1tf, mds... say Not affected there


def test_arm64_pi4_without_firmware_workaround_fails_with_firmware_advice(audit):
    # raspberrypi/firmware#1451: the Pi 4's firmware lacks SMCCC_ARCH_WORKAROUND_1, so proton-pack.c
    # prints "Vulnerable"
    out = audit(live("arm64-odroid-c4-cortex-a55-5.7.txt", cpuinfo=ARM64_CPU, cmdline=None, spectre_v2="Vulnerable"))
    assert out.status is Status.FAIL
    assert fix(out)[0].startswith("# spectre_v2: the firmware must provide the Spectre workarounds")


def test_arm64_nospectre_v2_is_taken_off(audit):
    out = audit(live("arm64-odroid-c4-cortex-a55-5.7.txt", cpuinfo=ARM64_CPU, cmdline="quiet nospectre_v2",
                     spectre_v2="Vulnerable"))
    assert out.status is Status.FAIL
    assert fix(out) == ["# remove nospectre_v2 from the kernel command line in your boot loader's configuration"]


# -- images, snapshots, missing and hostile files ----------------------------------------------------


def test_image_is_not_applicable(audit):
    out = audit(trees.debian12_tree())
    assert out.status is Status.SKIP and out.message.startswith("not applicable to an unbooted image")


def test_kernel_without_the_directory_is_a_skip(audit):
    out = audit(trees.live_tree())
    assert out.status is Status.SKIP
    assert "/sys/devices/system/cpu/vulnerabilities does not exist" in out.message


def test_fact_is_declared_for_snapshots():
    assert FACTS["audit.host.virt.cpu_vulnerabilities"].paths == (f"{VULN_DIR}/*",)


def _snapshot_host(root: Path, patterns: Patterns | None = None) -> Host:
    doc = collect_document(str(root), patterns or gather_patterns(entry_points=False))
    return host_from_snapshot(parse_snapshot(render_document(doc).encode()), name="test.json")


@pytest.mark.parametrize("sample", ["xeon8160-ubuntu-6.8-mitigations-off.txt", "this-vm-6.18-amd-2026-11-30.txt"])
def test_snapshot_round_trip_gives_the_same_result(make_root, sample):
    root = make_root(debian(sample, "mitigations=off" if "off" in sample else ""))
    direct = run_check(vm_vulnerabilities, Host.from_root(str(root)), DEFAULT_POLICY)
    snap = run_check(vm_vulnerabilities, _snapshot_host(root), DEFAULT_POLICY)
    assert (snap.status, snap.message, snap.evidence) == (direct.status, direct.message, direct.evidence)


@pytest.mark.parametrize(("content", "problem"), [
    pytest.param(b"Vulnerable" + b"x" * (70 * 1024) + b"\n", "larger than the 65536 byte cap", id="huge"),
    pytest.param(b"\x7fELF\x02\x01\x01\x00\x00\x00", "not text", id="binary"),
    pytest.param(b"Mitigation: Clear CPU buffers\nVulnerable\n", "more than one line", id="two-lines"),
    pytest.param(b"", "empty", id="empty"),
])
def test_hostile_file_is_an_error_naming_it(audit, content, problem):
    tree = live("this-vm-6.18-amd-2026-11-30.txt")
    tree[f"{BASE}/mds"] = content
    out = audit(tree)
    assert out.status is Status.ERROR and out.message.startswith("mds: the kernel's file could not be read")
    assert problem in observed(out)["mds"]


def test_hostile_file_the_check_does_not_read_changes_nothing(audit):
    tree = live("this-vm-6.18-amd-2026-11-30.txt")
    tree[f"{BASE}/meltdown"] = b"\x00\xff" * 50000
    tree[f"{BASE}/spectre_v1"] = Dir()
    assert audit(tree).status is Status.PASS


def test_fact_keeps_a_broken_file_with_its_problem(make_root):
    tree = live("this-vm-6.18-amd-2026-11-30.txt")
    tree[f"{BASE}/mds"] = b"\x01\x02"
    files = Host.from_root(str(make_root(tree))).fact(cpu_vulnerabilities)
    assert files["mds"].value is None and "not text" in (files["mds"].problem or "")
    assert files["l1tf"].value == "Not affected"


def test_this_machine_live():
    if not Path(VULN_DIR).is_dir():
        pytest.skip("no vulnerabilities directory on this machine")
    out = run_check(vm_vulnerabilities, Host.live(), DEFAULT_POLICY)
    assert out.status in (Status.PASS, Status.WARN, Status.FAIL, Status.SKIP), out
    if out.status is not Status.SKIP:
        assert all(e.source.startswith((VULN_DIR, "/proc/cmdline")) for e in out.evidence)


def test_check_meets_the_catalogue_contract():
    import re

    from checks import security

    (c,) = security.hostaudit_checks()
    assert re.fullmatch(r"[a-z][a-z0-9]*(\.[a-z0-9][a-z0-9_-]*)+", c.id) and c.id == "security.vm_vulnerabilities"
    assert c.title and len(c.rationale) > 20 and c.example_fix and c.runtime_only
    assert c.severity.name == "HIGH"
