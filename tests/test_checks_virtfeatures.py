"""kvm.nested and cpu.secure_guest on real-shaped hosts: a KVM host's kvm_intel parameters as listed
on it (tests/data/vulnerabilities/xeon8160-kvm_intel-parameters.txt), kvm_amd's SEV parameters as the
kernel prints them (AMDESE/AMDSEV README.md: sev, sev_es, sev_snp = Y; libvirt's kbase
launch_security_sev.rst: sev = 1 on kernels where it was an int), an AMD EPYC 9654 /proc/cpuinfo."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from audit.capture import gather_patterns
from audit.engine import run_check
from audit.host.collect import collect_document, render_document
from audit.host.core import Host
from audit.host.registry import FACTS
from audit.host.snapshot import host_from_snapshot, parse_snapshot
from audit.model import Check, Outcome, Status, replace
from audit.policy import DEFAULT_POLICY, Policy
from checks.virtfeatures import NESTED_CONF, nested, secure_guest
from tests import trees
from tests.conftest import DATA

KVM_INTEL = DATA / "vulnerabilities" / "xeon8160-kvm_intel-parameters.txt"
INTEL = "intel-xeon-gold-6132-skylake-sp.txt"
GENOA = "amd-epyc-9654-zen4-genoa.txt"  # flags: ... sme sev sev_es (no sev_snp)
ARM64_CPU = "arm64-raspberrypi4-cortex-a72-debian.txt"


def intel_host(*, refcnt: str | None = "0", **params: str) -> dict:
    tree = trees.live_tree(cpuinfo=INTEL)
    tree.update(trees.sysfs_from_listing(KVM_INTEL, "sys/module/kvm_intel/parameters"))
    for name, value in params.items():
        tree[f"sys/module/kvm_intel/parameters/{name}"] = value
    if refcnt is not None:
        tree["sys/module/kvm_intel/refcnt"] = refcnt + "\n"
    return tree


def sev_host(sev: str = "Y", sev_es: str = "Y", sev_snp: str = "N", *, dev_sev: bool = True,
             cpuinfo: str = GENOA) -> dict:
    """An AMD EPYC 9654 host with kvm_amd loaded and SEV, SEV-ES on: the values the kernel prints for
    bool parameters; SEV-SNP off, as its CPU flags (no sev_snp) say."""
    tree = trees.live_tree(cpuinfo=cpuinfo)
    tree.update({
        "sys/module/kvm_amd/parameters/nested": "1\n",
        "sys/module/kvm_amd/parameters/sev": sev + "\n",
        "sys/module/kvm_amd/parameters/sev_es": sev_es + "\n",
        "sys/module/kvm_amd/parameters/sev_snp": sev_snp + "\n",
        "sys/module/kvm_amd/refcnt": "0\n",
    })
    if dev_sev:
        tree["dev/sev"] = "PLACEHOLDER"  # replaced by a character device in the fixture
    return tree


@pytest.fixture
def audit(make_root):
    def run(check: Check, tree: dict, policy: Policy = DEFAULT_POLICY) -> Outcome:
        dev = tree.pop("dev/sev", None)
        root = make_root(tree)
        if dev is not None:
            (root / "dev").mkdir(exist_ok=True)
            try:
                os.mknod(root / "dev/sev", 0o600 | stat.S_IFCHR, os.makedev(10, 124))
            except PermissionError:
                pytest.skip("creating a character device needs root")
        return run_check(check, Host.from_root(str(root)), policy)

    return run


def fix(outcome: Outcome) -> list[str]:
    assert outcome.remediation is not None, outcome
    return list(outcome.remediation.commands)


def observed(outcome: Outcome) -> dict[str, str]:
    return {e.source: e.observed for e in outcome.evidence}


REQUIRED = replace(DEFAULT_POLICY, nested_required=True)
FORBIDDEN = replace(DEFAULT_POLICY, nested_required=False)


# -- kvm.nested -----------------------------------------------------------------------------------


def test_nested_is_reported_when_the_policy_does_not_say(audit):
    out = audit(nested, intel_host())
    assert out.status is Status.PASS
    assert out.message == "nested virtualization is on (kvm_intel nested=Y); the policy only reports it " \
                          "(nested.required not set)"
    assert observed(out) == {"/sys/module/kvm_intel/parameters/nested": "Y"}


def test_nested_required_and_on_passes(audit):
    assert audit(nested, intel_host(), REQUIRED).status is Status.PASS


def test_nested_required_but_off_fails_and_reloads_an_idle_module(audit):
    out = audit(nested, intel_host(nested="N\n"), REQUIRED)
    assert out.status is Status.FAIL
    assert out.message == "nested virtualization is off (kvm_intel nested=N); the policy requires it"
    assert fix(out) == [f"echo 'options kvm_intel nested=1' > {NESTED_CONF}",
                        "modprobe -r kvm_intel   # no guest was running when audited; unloading fails if one runs now",
                        "modprobe kvm_intel"]
    assert not out.remediation.reboot_required


def test_nested_fix_waits_for_guests_to_stop(audit):
    out = audit(nested, intel_host(nested="N\n", refcnt="3"), REQUIRED)
    assert fix(out)[1] == ("# once no guest runs (kvm_intel: 3 reference(s) held): modprobe -r kvm_intel; modprobe "
                           "kvm_intel   (or reboot)")
    assert "fails while any guest runs" in out.remediation.notes


def test_nested_forbidden_but_on_fails(audit):
    out = audit(nested, intel_host(refcnt=None), FORBIDDEN)
    assert out.status is Status.FAIL and out.message.endswith("the policy forbids it")
    assert fix(out)[0] == f"echo 'options kvm_intel nested=0' > {NESTED_CONF}"
    assert "its use count is unknown" in fix(out)[1]


def test_kvm_amd_int_parameter_of_older_kernels(audit):
    out = audit(nested, sev_host(dev_sev=False), FORBIDDEN)
    assert out.status is Status.FAIL and out.message.startswith("nested virtualization is on (kvm_amd nested=1)")


@pytest.mark.parametrize("value", ["maybe\n", "\x00\x01", "Y" * 70000])
def test_nested_value_the_kernel_never_writes_is_an_error(audit, value):
    out = audit(nested, intel_host(nested=value))
    assert out.status is Status.ERROR and out.message.startswith("/sys/module/kvm_intel/parameters/nested")


def test_no_vendor_module_is_a_skip(audit):
    tree = trees.live_tree()  # this VM: kvm and kvm_pvm (PVM), no kvm_intel or kvm_amd
    tree.update({"sys/module/kvm/parameters/nx_huge_pages": "N\n", "sys/module/kvm_pvm/parameters/pvm_native": "Y\n"})
    out = audit(nested, tree)
    assert out.status is Status.SKIP
    assert out.message.startswith("no vendor KVM module with a nested parameter is loaded")


def test_nested_on_an_image_is_not_applicable(audit):
    out = audit(nested, trees.debian12_tree())
    assert out.status is Status.SKIP and out.message.startswith("not applicable to an unbooted image")


def _arm64_host(cmdline: str) -> dict:
    tree = trees.live_tree(cpuinfo=ARM64_CPU, cmdline=cmdline)
    tree["dev/kvm"] = "PLACEHOLDER"
    return tree


@pytest.fixture
def arm64_audit(make_root):
    def run(cmdline: str, policy: Policy = DEFAULT_POLICY) -> Outcome:
        tree = _arm64_host(cmdline)
        tree.pop("dev/kvm")
        root = make_root(tree)
        (root / "dev").mkdir(exist_ok=True)
        try:
            os.mknod(root / "dev/kvm", 0o660 | stat.S_IFCHR, os.makedev(10, 232))
        except PermissionError:
            pytest.skip("creating a character device needs root")
        return run_check(nested, Host.from_root(str(root)), policy)

    return run


def test_arm64_nested_mode_is_read_from_the_command_line(arm64_audit):
    out = arm64_audit("console=ttyAMA0 kvm-arm.mode=nested", REQUIRED)
    assert out.status is Status.PASS and out.message == "nested virtualization is on (kvm-arm.mode=nested)"


def test_arm64_nested_required_adds_the_boot_parameter(arm64_audit):
    out = arm64_audit("console=ttyAMA0", REQUIRED)
    assert out.status is Status.FAIL and out.remediation.reboot_required
    assert fix(out) == ["# add 'kvm-arm.mode=nested' to the kernel command line in your boot loader's configuration"]
    assert "FEAT_NV2" in out.remediation.notes


def test_arm64_without_kvm_is_a_skip(audit):
    out = audit(nested, trees.live_tree(cpuinfo=ARM64_CPU, cmdline="console=ttyAMA0"), REQUIRED)
    assert out.status is Status.SKIP and "no /dev/kvm" in out.message


# -- cpu.secure_guest ------------------------------------------------------------------------------


def test_a_host_with_sev_enabled_reports_it(audit):
    out = audit(secure_guest, sev_host())
    assert out.status is Status.PASS
    assert out.message == "confidential guests available: SEV, SEV-ES; not required by the policy"
    seen = observed(out)
    assert seen["/sys/module/kvm_amd/parameters/sev"] == "Y"
    assert seen["/sys/module/kvm_amd/parameters/sev_snp"] == "N"
    assert seen["/dev/sev"] == "char"
    assert seen["/proc/cpuinfo"] == "flags: sev sev_es"


def test_sev_satisfies_a_policy_that_accepts_it(audit):
    policy = replace(DEFAULT_POLICY, secure_guest_required=True, secure_guest_kinds=("sev", "tdx"))
    out = audit(secure_guest, sev_host(), policy)
    assert out.status is Status.PASS and out.message.endswith("the policy accepts sev, tdx")


def test_snp_required_but_the_cpu_flags_lack_it_points_at_the_firmware(audit):
    policy = replace(DEFAULT_POLICY, secure_guest_required=True, secure_guest_kinds=("sev-snp",))
    out = audit(secure_guest, sev_host(), policy)
    assert out.status is Status.FAIL
    assert out.message == "confidential guests available: SEV, SEV-ES; the policy requires one of sev-snp"
    assert fix(out) == ["# enable SME and SEV (SEV-SNP: SNP and the RMP table) in the firmware setup: the CPU flag "
                        "for sev-snp is missing from /proc/cpuinfo, or the CPU lacks it"]


def test_sev_off_in_kvm_but_in_the_cpu_is_turned_on_in_modprobe_d(audit):
    policy = replace(DEFAULT_POLICY, secure_guest_required=True, secure_guest_kinds=("sev-es",))
    out = audit(secure_guest, sev_host(sev="N", sev_es="N"), policy)
    assert out.status is Status.FAIL
    assert "(the CPU and firmware have SEV, SEV-ES, KVM does not use it)" in out.message
    assert fix(out)[0] == "echo 'options kvm_amd sev=1 sev_es=1' > /etc/modprobe.d/kvm-amd-sev.conf"
    assert fix(out)[1].startswith("modprobe -r kvm_amd")


def test_sev_without_dev_sev_does_not_count(audit):
    policy = replace(DEFAULT_POLICY, secure_guest_required=True, secure_guest_kinds=("sev",))
    out = audit(secure_guest, sev_host(dev_sev=False), policy)
    assert out.status is Status.FAIL and "/dev/sev is missing" in out.message
    assert fix(out)[0].startswith("modprobe ccp")


def test_intel_host_without_tdx_parameter(audit):
    out = audit(secure_guest, intel_host())
    assert out.status is Status.PASS and out.message.startswith("confidential guests none available")
    assert observed(out)["/sys/module/kvm_intel/parameters/tdx"] == "absent (this kernel has no such parameter)"


def test_tdx_on(audit):
    policy = replace(DEFAULT_POLICY, secure_guest_required=True, secure_guest_kinds=("tdx",))
    out = audit(secure_guest, intel_host(tdx="Y\n"), policy)
    assert out.status is Status.PASS and out.message.startswith("confidential guests available: TDX")


def test_secure_guest_garbage_is_an_error(audit):
    out = audit(secure_guest, sev_host(sev="perhaps", dev_sev=False))
    assert out.status is Status.ERROR and "/sys/module/kvm_amd/parameters/sev" in out.message


def test_secure_guest_on_an_image_and_without_a_module(audit):
    assert audit(secure_guest, trees.debian12_tree()).status is Status.SKIP
    out = audit(secure_guest, trees.live_tree())
    assert out.status is Status.SKIP and out.message.startswith("no vendor KVM module")


def test_secure_guest_does_not_apply_to_arm64(audit):
    out = audit(secure_guest, trees.live_tree(cpuinfo=ARM64_CPU, cmdline=None))
    assert out.status is Status.SKIP and out.not_applicable


# -- snapshots -------------------------------------------------------------------------------------


def test_facts_declare_every_path():
    paths = FACTS["audit.host.virt.kvm_modules"].paths
    assert "/sys/module/kvm_intel/parameters/nested" in paths and "/sys/module/kvm_amd/parameters/sev_snp" in paths
    assert FACTS["audit.host.virt.sev_device"].paths == ("?/dev/sev",)


def test_snapshot_round_trip(make_root):
    root: Path = make_root(intel_host(nested="N\n", tdx="Y\n"))
    doc = collect_document(str(root), gather_patterns(entry_points=False))
    snap = host_from_snapshot(parse_snapshot(render_document(doc).encode()), name="t.json")
    for check in (nested, secure_guest):
        direct = run_check(check, Host.from_root(str(root)), REQUIRED)
        again = run_check(check, snap, REQUIRED)
        assert (again.status, again.message, again.evidence) == (direct.status, direct.message, direct.evidence)


def test_snapshot_of_a_host_without_the_modules_skips_alike(make_root):
    root: Path = make_root(trees.live_tree())
    doc = collect_document(str(root), gather_patterns(entry_points=False))
    snap = host_from_snapshot(parse_snapshot(render_document(doc).encode()), name="t.json")
    assert run_check(nested, snap, REQUIRED).status is Status.SKIP


def test_this_machine_live():
    for check in (nested, secure_guest):
        out = run_check(check, Host.live(), DEFAULT_POLICY)
        assert out.status in (Status.PASS, Status.SKIP), out


def test_arm64_nested_forbidden_takes_the_parameter_off(arm64_audit):
    out = arm64_audit("console=ttyAMA0 kvm-arm.mode=nested", FORBIDDEN)
    assert out.status is Status.FAIL and out.message.endswith("the policy forbids it")
    assert fix(out) == ["# remove kvm-arm.mode from the kernel command line in your boot loader's configuration"]


def test_checks_meet_the_catalogue_contract():
    import re

    from checks import virtfeatures

    for c in virtfeatures.hostaudit_checks():
        assert re.fullmatch(r"[a-z][a-z0-9]*(\.[a-z0-9][a-z0-9_-]*)+", c.id)
        assert c.title and len(c.rationale) > 20 and c.example_fix and c.runtime_only
