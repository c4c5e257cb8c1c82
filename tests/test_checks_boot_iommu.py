"""boot.drift, boot.params and iommu.enabled on host trees built from the real samples, and every
remediation command of every check on those trees: bash-clean, one command a line, host values quoted."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from audit.engine import collect_checks, run_check
from audit.host.core import Host
from audit.model import Outcome, Status, replace
from audit.plugins import make_plugins
from audit.policy import DEFAULT_POLICY, Policy, load_policy
from tests import trees
from tests.conftest import Dir, Link
from tests.sandbox import run_image_script, script_of, twice

CHECKS = {d.check.id: d.check for d in collect_checks(make_plugins(entry_points=False))[0]}
ISSUE_3_CHECKS = ("boot.hugepages", "memory.hugepages_fit", "memory.hugepages_allocated", "cpu.pdpe1gb",
                  "mounts.hugetlbfs", "packages.libhugetlbfs", "memory.thp", "ksm.state", "swap.ksm",
                  "iommu.enabled", "boot.drift", "boot.params")


@pytest.fixture
def audit(make_root):
    def run(check_id: str, tree: dict, policy: Policy = DEFAULT_POLICY) -> Outcome:
        return run_check(CHECKS[check_id], Host.from_root(str(make_root(tree))), policy)

    return run


def observed(outcome: Outcome) -> str:
    return "\n".join(f"{e.source}: {e.observed}" for e in outcome.evidence)


def fix(outcome: Outcome) -> list[str]:
    assert outcome.remediation is not None, outcome
    return list(outcome.remediation.commands)


def test_every_issue_3_check_is_declared():
    assert set(ISSUE_3_CHECKS) <= set(CHECKS)


# -- boot.drift ---------------------------------------------------------------------------------------


def test_debian_default_grub_edited_but_grub_cfg_not_regenerated(audit):
    out = audit("boot.drift", trees.debian12_tree())
    assert out.status is Status.WARN
    assert out.message.startswith("boot configuration is stale: regenerate it")
    assert "hugepagesz: /etc/default/grub:10 wants '1G', the next boot has absent" in out.message
    assert "hugepages: /etc/default/grub:10 wants '16', the next boot has absent" in out.message
    # an image: update-grub needs /proc and /dev, so its grub.cfg is edited as the generator would write it
    note, edit = fix(out)
    assert note.startswith("# /boot/grub/grub.cfg: edited in place") and out.remediation.reboot_required
    assert edit.startswith("sed -i -E -e '/^[[:space:]]*linux(16|efi)?[[:space:]]/{'")
    assert edit.endswith("-e 's/$/ hugepagesz=1G hugepages=16/' -e '}' \"$ROOT\"/boot/grub/grub.cfg")
    assert "/etc/default/grub:10: GRUB_CMDLINE_LINUX='hugepagesz=1G hugepages=16'" in observed(out)
    assert "/boot/grub/grub.cfg: line 185: linux /boot/vmlinuz-6.1.0-12-amd64" in observed(out)


def test_debian_regenerated_grub_cfg_has_no_drift(audit):
    out = audit("boot.drift", trees.debian12_tree(booted="hugepagesz=1G hugepages=16"))
    assert out.status is Status.PASS
    assert out.message == "the default entry has every parameter its inputs ask for (grub2)"


def test_rhel9_default_grub_drift_is_fixed_with_grubby_and_exact_tokens(audit):
    tree = trees.rhel9_tree()
    tree["etc/default/grub"] = trees.grub_sample("rhel8-stig-etc-default-grub").replace(
        'slub_debug=P"', 'slub_debug=P default_hugepagesz=1G hugepagesz=1G hugepages=16"')
    out = audit("boot.drift", tree)
    assert out.status is Status.WARN
    assert "hugepages: /etc/default/grub:6 wants '16', the next boot has '8'" in out.message
    commands = fix(out)
    assert len(commands) == 1 and commands[0].startswith('chroot "$ROOT" grubby --update-kernel=ALL --args=')
    args = shlex.split(commands[0])[-1].removeprefix("--args=").split()
    assert "hugepages=16" in args and "fips=1" in args and "slub_debug=P" in args
    assert "hugepagesz=1G" not in args  # already there: grubby changes hugepages=8 in place
    assert "grub2-mkconfig does not rewrite BLS options" in observed(out)


def test_rhel9_kernel_cmdline_drift_uses_its_own_tokens(audit):
    tree = trees.rhel9_tree()
    tree["etc/kernel/cmdline"] = "root=/dev/mapper/rhel-root ro hugepagesz=1G hugepages=8 intel_iommu=on\n"
    out = audit("boot.drift", tree)
    assert out.status is Status.WARN
    assert out.message == ("boot configuration is stale: regenerate it (intel_iommu: /etc/kernel/cmdline:1 wants "
                           "'on', the next boot has absent)")
    assert fix(out) == ['chroot "$ROOT" grubby --update-kernel=ALL --args=intel_iommu=on']


def test_legacy_grub_has_no_regeneration_inputs(audit):
    out = audit("boot.drift", trees.centos6_tree(live=False))
    assert out.status is Status.PASS
    assert out.message == "grub-legacy: no regeneration inputs (/etc/default/grub, /etc/kernel/cmdline) to compare"
    assert "/boot/grub/grub.conf: default=0 (line 10)" in observed(out)


def test_no_boot_configuration_is_a_skip_never_a_pass(audit):
    out = audit("boot.drift", {"proc/cpuinfo": "processor : 0\n"})  # a live tree: nothing is predicted
    assert out.status is Status.SKIP and "nothing to compare: no boot configuration found" in out.message


def test_an_image_whose_prediction_is_unknown_is_a_skip(audit):
    out = audit("boot.drift", {"etc/default/grub": trees.debian_default_grub()})  # no kernel in /boot
    assert out.status is Status.SKIP and "nothing to compare" in out.message
    assert "no kernel image in /boot: grub-mkconfig would write no Linux entry" in out.message


def test_an_image_not_generated_yet_cannot_drift(audit):
    out = audit("boot.drift", {"etc/default/grub": trees.debian_default_grub(), "boot/vmlinuz-6.1.0-28-amd64": ""})
    assert out.status is Status.PASS
    assert out.message == ("not generated yet, so it cannot lag behind its inputs (predicted: /boot/grub/grub.cfg "
                           "not generated yet)")


# -- boot.params --------------------------------------------------------------------------------------


def test_near_miss_thp_parameter_is_flagged(audit):
    out = audit("boot.params", trees.debian12_tree(booted="transparent_hugepages=never"))
    assert out.status is Status.WARN
    assert ("next boot: 'transparent_hugepages' is not a kernel parameter (did you mean "
            "'transparent_hugepage'?); the kernel ignores it") in out.message


def test_near_miss_on_the_running_kernel_is_labelled_so(audit):
    tree = trees.live_tree(cmdline="console=ttyS0 transparent_hugepages=never")
    out = audit("boot.params", tree)
    assert out.status is Status.WARN and out.message.startswith("running kernel: 'transparent_hugepages'")


def test_glued_parameters_are_flagged(audit):
    out = audit("boot.params", trees.debian12_tree(booted="console=ttyS0,115200n8transparent_hugepage=never"))
    assert out.status is Status.WARN and "looks like two parameters glued together" in out.message


def test_hugepagesz_without_a_count_is_flagged(audit):
    out = audit("boot.params", trees.debian12_tree(booted="hugepages=16 hugepagesz=1G"))
    assert out.status is Status.WARN
    assert out.message == "next boot: hugepagesz=1G: no hugepages= follows it; no pages of that size"


def test_undefined_kernelopts_is_flagged_not_skipped(audit):
    tree = trees.rhel9_tree()
    cfg = tree["boot/grub2/grub.cfg"]
    fallback = [line for line in cfg.splitlines(keepends=True) if line.lstrip().startswith("set kernelopts=")]
    assert len(fallback) == 1
    tree["boot/grub2/grub.cfg"] = cfg.replace(fallback[0], "")
    tree["boot/grub2/grubenv"] = trees.grubenv(saved_entry=trees.EL9_ENTRY)
    out = audit("boot.params", tree)
    assert out.status is Status.WARN
    assert out.message == ("next boot: $kernelopts is not defined where the default entry boots, so it expands to "
                           "nothing")
    assert audit("boot.hugepages", tree).status is Status.SKIP  # never "no pool": the parameters are unknown


def test_undefined_tuned_params_is_harmless(audit):
    out = audit("boot.params", trees.rhel9_tree())
    assert out.status is Status.PASS
    assert "$tuned_params is not defined: expands to nothing (harmless" in observed(out)


def test_clean_command_lines_pass(audit):
    out = audit("boot.params", trees.live_tree())
    assert out.status is Status.PASS
    assert out.message == "no ignored or misspelt parameters on running kernel"
    out = audit("boot.params", trees.centos6_tree(live=True))
    assert out.status is Status.PASS
    assert out.message == "no ignored or misspelt parameters on next boot and running kernel"


def test_no_command_line_at_all_is_a_skip(audit):
    assert audit("boot.params", {"etc/os-release": trees.DEBIAN_OS_RELEASE}).status is Status.SKIP


# -- iommu.enabled ------------------------------------------------------------------------------------

INTEL = "intel-xeon-e5-2690v4-broadwell-ep.txt"
AMD = "amd-epyc-7451-zen1-naples.txt"
GROUPS = {"sys/kernel/iommu_groups/0/devices": Dir(), "sys/kernel/iommu_groups/1/devices": Dir()}


def test_ubuntu_sample_really_enables_the_intel_iommu_by_default():
    text = trees.kconfig_sample("ubuntu2204-config-5.15.0-25-generic").read_text()
    assert "\nCONFIG_INTEL_IOMMU_DEFAULT_ON=y\n" in text
    for other in ("debian12-config-6.1.0-56-amd64", "almalinux9-config-5.14.0-570.18.1.el9_6.x86_64",
                  "oraclelinux7-rhck-config-3.10.0-1160.119.1.0.5.el7.x86_64"):
        assert "\nCONFIG_INTEL_IOMMU_DEFAULT_ON=y\n" not in trees.kconfig_sample(other).read_text()
    # Debian patches the option into a choice: on except the integrated GPU
    assert "\nCONFIG_INTEL_IOMMU_DEFAULT_ON_INTGPU_OFF=y\n" in trees.kconfig_sample(
        "debian12-config-6.1.0-56-amd64").read_text()


@pytest.mark.parametrize(("kconfig", "booted", "status", "intel_why"), [
    ("almalinux9-config-5.14.0-570.18.1.el9_6.x86_64", "intel_iommu=on", Status.PASS, "intel_iommu=on"),
    ("almalinux9-config-5.14.0-570.18.1.el9_6.x86_64", "", Status.FAIL,
     "no intel_iommu=on (and the kernel does not enable it by default)"),
    ("ubuntu2204-config-5.15.0-25-generic", "", Status.PASS, "CONFIG_INTEL_IOMMU_DEFAULT_ON=y"),
    ("ubuntu2204-config-5.15.0-25-generic", "intel_iommu=off", Status.FAIL, "intel_iommu=off"),
    ("debian12-config-6.1.0-56-amd64", "", Status.PASS, "CONFIG_INTEL_IOMMU_DEFAULT_ON_INTGPU_OFF=y"),
    ("ubuntu2204-config-5.15.0-25-generic", "iommu=off", Status.FAIL, "iommu=off"),
    ("ubuntu2204-config-5.15.0-25-generic", "iommu=off iommu=pt", Status.FAIL, "iommu=off"),
])
def test_image_is_judged_for_both_vendors(audit, kconfig, booted, status, intel_why):
    out = audit("iommu.enabled", trees.debian12_tree(asked=booted, booted=booted, kconfig=kconfig))
    assert out.status is status
    assert out.message.endswith("(CPU vendor unknown here: judged for Intel and AMD)")
    assert f"next boot (intel): {intel_why}" in observed(out)
    assert "next boot (amd): " in observed(out)
    if status is Status.FAIL:
        assert f"intel: {intel_why}" in out.message
        assert fix(out)[-1].endswith('"$ROOT"/boot/grub/grub.cfg') and out.remediation.reboot_required


def test_image_fix_removes_what_turns_the_iommu_off(audit):
    tree = trees.rhel9_tree(kernelopts=trees.EL9_KERNELOPTS + " iommu=off")
    out = audit("iommu.enabled", tree)
    assert out.status is Status.FAIL and "amd: iommu=off" in out.message
    # every parameter the fix sets is taken off first: set again, never repeated
    assert fix(out) == ["chroot \"$ROOT\" grubby --update-kernel=ALL --remove-args='iommu intel_iommu'",
                        "chroot \"$ROOT\" grubby --update-kernel=ALL --args='intel_iommu=on iommu=pt'"]


def test_centos6_image_with_intel_iommu_on_legacy_grub(audit):
    out = audit("iommu.enabled", trees.centos6_tree(live=False))
    assert out.status is Status.PASS
    assert "intel: intel_iommu=on" in out.message and "amd: AMD IOMMU is on by default" in out.message
    out = audit("iommu.enabled", trees.centos6_tree(live=False, params=""))
    assert out.status is Status.FAIL
    assert fix(out) == ["chroot \"$ROOT\" grubby --update-kernel=ALL --remove-args='intel_iommu iommu'",
                        "chroot \"$ROOT\" grubby --update-kernel=ALL --args='intel_iommu=on iommu=pt'"]


def test_live_intel_with_iommu_groups_passes(audit):
    tree = trees.debian12_live("intel_iommu=on iommu=pt", cpuinfo=INTEL, kconfig="almalinux9-config-5.14.0-570.18.1"
                               ".el9_6.x86_64")
    tree.update(GROUPS)
    tree.update({"sys/firmware/acpi/tables/DMAR": b"DMAR", "sys/class/iommu/dmar0": Dir()})
    out = audit("iommu.enabled", tree)
    assert out.status is Status.PASS and out.message == "IOMMU active (2 groups)"
    assert "/sys/kernel/iommu_groups: 2 group(s); units: dmar0; ACPI tables: DMAR" in observed(out)
    assert "next boot (amd)" not in observed(out)  # the vendor is known on a live host


def test_live_intel_without_intel_iommu_on_fails(audit):
    tree = trees.debian12_live("", cpuinfo=INTEL, kconfig="almalinux9-config-5.14.0-570.18.1.el9_6.x86_64")
    tree["sys/firmware/acpi/tables/DMAR"] = b"DMAR"
    out = audit("iommu.enabled", tree)
    assert out.status is Status.FAIL
    assert out.message == "IOMMU not active (no intel_iommu=on (and the kernel does not enable it by default))"
    assert fix(out)[-2:] == [
        "echo 'GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX intel_iommu=on iommu=pt\"' > "
        "/etc/default/grub.d/90-hostaudit-iommu.cfg", "update-grub"]


def test_live_told_to_enable_but_no_firmware_table(audit):
    out = audit("iommu.enabled", trees.centos6_tree(live=True))
    assert out.status is Status.FAIL
    assert out.message == "the kernel was told to enable the IOMMU but firmware provides no DMAR/IVRS table"
    assert fix(out) == ["# enable Intel VT-d / AMD-Vi (IOMMU) in the firmware setup, then reboot"]


def test_live_amd_on_by_default(audit):
    tree = trees.debian12_live("", cpuinfo=AMD)
    tree.update(GROUPS)
    tree["sys/firmware/acpi/tables/IVRS"] = b"IVRS"
    out = audit("iommu.enabled", tree)
    assert out.status is Status.PASS
    assert "next boot (amd): AMD IOMMU is on by default (no amd_iommu=off)" in observed(out)


def test_live_amd_with_iommu_off_fails_and_the_fix_removes_it(audit):
    tree = trees.debian12_live("iommu=off", cpuinfo=AMD)
    tree["sys/firmware/acpi/tables/IVRS"] = b"IVRS"
    out = audit("iommu.enabled", tree)
    assert out.status is Status.FAIL and out.message == "IOMMU not active (iommu=off)"
    commands = fix(out)
    assert commands[0].startswith("sed -i -E ") and "iommu" in commands[0] and commands[0].endswith("/etc/default/grub")
    assert commands[-1] == "update-grub"


def test_live_active_but_next_boot_disables_it(audit):
    tree = trees.debian12_live("intel_iommu=on", cpuinfo=INTEL, kconfig="almalinux9-config-5.14.0-570.18.1.el9_6"
                               ".x86_64")
    tree.update(GROUPS)
    tree["boot/grub/grub.cfg"] = trees.debian12_grub_cfg("intel_iommu=off")
    out = audit("iommu.enabled", tree)
    assert out.status is Status.WARN and "lost at next boot" in out.message


def test_live_configured_but_not_booted_is_reboot_pending(audit):
    tree = trees.debian12_live("", cpuinfo=INTEL, kconfig="almalinux9-config-5.14.0-570.18.1.el9_6.x86_64")
    tree["boot/grub/grub.cfg"] = trees.debian12_grub_cfg("intel_iommu=on")
    tree["sys/firmware/acpi/tables/DMAR"] = b"DMAR"
    out = audit("iommu.enabled", tree)
    assert out.status is Status.WARN and out.message.endswith("reboot pending")


def test_iommu_not_required_is_a_skip(audit, tmp_path):
    path = tmp_path / "p.toml"
    path.write_text("[iommu]\nrequired = false\n")
    out = audit("iommu.enabled", trees.debian12_tree(), load_policy(path=str(path)))
    assert out.status is Status.SKIP and str(path) in out.message


# -- every remediation command of every check ---------------------------------------------------------


def _el6_sysv_multitenant() -> dict:
    tree = trees.centos6_tree(live=True, thp="always madvise [never]")
    tree["etc/rc.d/rc3.d/S85ksmtuned"] = Link("../init.d/ksmtuned")
    return tree


def _ksmtuned_without_ksm() -> dict:
    tree = trees.live_tree(ksm=False)
    tree.update(trees.ksmtuned_unit())
    tree["etc/systemd/system/multi-user.target.wants/ksmtuned.service"] = Link(
        "/usr/lib/systemd/system/ksmtuned.service")
    return tree


def _masked_hugepages() -> dict:
    tree = trees.debian12_live("hugepagesz=1G hugepages=2", "this-vm-hugepages")
    tree["etc/systemd/system/dev-hugepages.mount"] = Link("/dev/null")
    return tree


def _nehalem_1g() -> dict:
    tree = trees.debian12_live("hugepagesz=1G hugepages=32 iommu=off", cpuinfo="intel-xeon-x7550-nehalem-ex.txt")
    return {k: v for k, v in tree.items() if "hugepages-1048576kB" not in k}


def _broadwell_1g() -> dict:
    """32 x 1G on a CPU that has pdpe1gb, on the 24G machine: the pool is reserved and does not fit
    (on the Nehalem, without pdpe1gb, the kernel rejects it: nothing to fit, issue #10 section 4)."""
    tree = trees.debian12_live("hugepagesz=1G hugepages=32", cpuinfo="intel-xeon-e5-2690v4-broadwell-ep.txt")
    return tree


MULTITENANT = load_policy(profile="kvm-host-multitenant")
STRICT = replace(DEFAULT_POLICY, hugepages_size=1 << 30, hugepages_count=64, thp_allowed=("madvise",),
                             host_memory=16 << 30)

SCENARIOS = {
    "centos6-image": (lambda: trees.centos6_tree(live=False), STRICT),
    "centos6-live": (lambda: trees.centos6_tree(live=True, thp="always madvise [never]"), DEFAULT_POLICY),
    "centos6-sysv-multitenant": (_el6_sysv_multitenant, MULTITENANT),
    "debian12-stale": (trees.debian12_tree, DEFAULT_POLICY),
    "debian12-stale-strict": (trees.debian12_tree, STRICT),
    "debian12-live-thp-never": (lambda: trees.debian12_live("transparent_hugepages=never iommu=off",
                                                            thp="always madvise [never]"), DEFAULT_POLICY),
    "rhel9-image": (trees.rhel9_tree, STRICT),
    "rhel9-iommu-off": (lambda: trees.rhel9_tree(kernelopts=trees.EL9_KERNELOPTS + " iommu=off"), DEFAULT_POLICY),
    "ksm-no-swap": (lambda: trees.ksm_running(trees.live_tree()), DEFAULT_POLICY),
    "ksm-multitenant": (lambda: trees.ksm_running(trees.live_tree()), MULTITENANT),
    "ksmtuned-without-ksm": (_ksmtuned_without_ksm, DEFAULT_POLICY),
    "masked-dev-hugepages": (_masked_hugepages, DEFAULT_POLICY),
    "nehalem-1g-too-big": (_nehalem_1g, DEFAULT_POLICY),
    "broadwell-1g-too-big": (_broadwell_1g, DEFAULT_POLICY),
    "no-boot-config": (lambda: trees.live_tree(thp="always madvise [never]\n"), STRICT),
}


def _remediations(make_root, name: str) -> list[tuple[str, Outcome]]:
    build, policy = SCENARIOS[name]
    host = Host.from_root(str(make_root(build())))
    out = []
    for check_id in ISSUE_3_CHECKS:
        outcome = run_check(CHECKS[check_id], host, policy)
        assert outcome.status is not Status.ERROR, (check_id, outcome.message)
        if outcome.status in (Status.FAIL, Status.WARN):
            out.append((check_id, outcome))
    return out


def bash_n(script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_remediation_is_bash_clean(make_root, name):
    found = _remediations(make_root, name)
    assert found, f"{name}: no failing check to remediate"
    lines = ["#!/bin/bash", "set -euo pipefail"]
    for check_id, outcome in found:
        if outcome.status is Status.FAIL:  # a failure always says how to fix it
            assert outcome.remediation is not None and outcome.remediation.commands, (check_id, outcome.message)
        for cmd in outcome.remediation.commands if outcome.remediation else ():
            assert cmd.strip() and "\n" not in cmd and "\r" not in cmd, (check_id, cmd)
            assert bash_n(cmd + "\n").returncode == 0, (check_id, cmd)
            lines.append(cmd)
    result = bash_n("\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr


def test_scenarios_cover_every_check_failing_somewhere(make_root):
    seen = {check_id for name in SCENARIOS for check_id, _ in _remediations(make_root, name)}
    assert seen == set(ISSUE_3_CHECKS)


# -- host values in commands are quoted ---------------------------------------------------------------

HOSTILE = "x';touch pwned;'"
OL7 = "3.10.0-1160.119.1.0.5.el7.x86_64"


def _assert_quoted(cmd: str, value: str) -> None:
    """``value`` survives as part of one shell word and no word of it runs as a command."""
    words = shlex.split(cmd, comments=True)
    assert any(value in w for w in words), (cmd, words)
    assert "touch" not in words and "pwned" not in words and ";" not in words, (cmd, words)
    assert bash_n(cmd + "\n").returncode == 0


def test_hostile_grub_cfg_path_is_quoted_in_regeneration_commands(audit):
    path = f"/boot/grub2/{HOSTILE}.cfg"
    tree = {
        "boot/efi/EFI/centos/grub.cfg": f'set prefix=($dev)/grub2\nconfigfile "($dev)/grub2/{HOSTILE}.cfg"\n',
        "boot/efi/EFI/centos/grubx64.efi": b"MZ",
        path.lstrip("/"): trees.grub_sample("rhel72-grub.cfg"),
        "etc/default/grub": 'GRUB_CMDLINE_LINUX="crashkernel=auto rhgb quiet hugepagesz=1G hugepages=4"\n',
        # a kernel config, so that iommu.enabled can judge (without one the Intel default is unknown)
        f"boot/config-{OL7}": trees.kconfig_sample(f"oraclelinux7-rhck-config-{OL7}").read_text(),
    }
    seen = 0
    for check_id in ("boot.drift", "boot.hugepages", "iommu.enabled"):
        out = audit(check_id, tree)
        assert out.status in (Status.FAIL, Status.WARN), (check_id, out.message)
        for cmd in fix(out):
            if "pwned" in cmd and not cmd.startswith("#"):  # the note naming the file is a comment
                seen += 1
                _assert_quoted(cmd, path)
                assert shlex.split(cmd)[0] == "sed" and shlex.split(cmd)[-1] == "$ROOT" + path  # edited in place
    assert seen == 3
    tree["proc/cpuinfo"] = "processor\t: 0\n"  # a running host: its generator, the path quoted
    for cmd in fix(audit("boot.drift", tree)):
        _assert_quoted(cmd, path)
        assert shlex.split(cmd)[:2] == ["grub2-mkconfig", "-o"]


def test_hostile_legacy_grub_conf_path_is_quoted(audit):
    tree = trees.centos6_tree(live=False, params="")
    tree[f"boot/grub/{HOSTILE}.conf"] = tree.pop("boot/grub/grub.conf")
    tree["boot/grub/grub.conf"] = Link(f"{HOSTILE}.conf")
    del tree["etc/redhat-release"]  # no distribution known: the legacy file itself is edited with sed
    out = audit("iommu.enabled", tree)
    assert out.status is Status.FAIL
    (cmd,) = fix(out)
    _assert_quoted(cmd, f"/boot/grub/{HOSTILE}.conf")
    assert shlex.split(cmd)[:2] == ["sed", "-i"]


def test_hostile_default_grub_value_is_quoted_in_grubby_args(audit):
    tree = trees.rhel9_tree()
    tree["etc/default/grub"] = 'GRUB_CMDLINE_LINUX="hugepages=16\';touch pwned;\'"\n'
    out = audit("boot.drift", tree)
    assert out.status is Status.WARN
    (cmd,) = fix(out)
    _assert_quoted(cmd, "--args=hugepages=16';touch pwned;'")


# -- a malformed source is an error naming the file, for every check ----------------------------------


def _broken(**files) -> dict:
    tree = trees.debian12_live("hugepagesz=1G hugepages=2", "this-vm-hugepages")
    tree.update(files)
    return tree


ERRORS = {
    "boot.hugepages": ({"sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages": "lots\n"},
                       "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages:1: "),
    "memory.hugepages_fit": ({"proc/meminfo": "MemTotal: lots\n"}, "/proc/meminfo:1: "),
    "memory.hugepages_allocated": ({"sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages": "2\n3\n"},
                                   "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages:2: "),
    "cpu.pdpe1gb": ({"proc/cpuinfo": ""}, "/proc/cpuinfo: "),
    "mounts.hugetlbfs": ({"proc/mounts": "hugetlbfs /dev/hugepages\n"}, "/proc/mounts:1: "),
    "packages.libhugetlbfs": ({"sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages": "lots\n"},
                              "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages:1: "),
    "memory.thp": ({"sys/kernel/mm/transparent_hugepage/enabled": "\n"},
                   "/sys/kernel/mm/transparent_hugepage/enabled: "),
    "ksm.state": ({"sys/kernel/mm/ksm/run": "3\n"}, "/sys/kernel/mm/ksm/run:1: "),
    "swap.ksm": ({"sys/kernel/mm/ksm/run": "1\n", "sys/kernel/mm/ksm/pages_sharing": "10\n",
                  "proc/swaps": "Filename Type Size Used Priority\n/swap file big 0 -2\n"}, "/proc/swaps:2: "),
    "iommu.enabled": ({f"boot/config-{trees.DEBIAN_RELEASE}": "garbage\n"}, f"/boot/config-{trees.DEBIAN_RELEASE}:1: "),
    "boot.drift": ({"etc/default/grub": 'GRUB_CMDLINE_LINUX="unterminated\n'},
                   "cannot compare the boot configuration with its inputs: /etc/default/grub:1: "),
    "boot.params": ({"proc/cmdline": Dir()}, "/proc/cmdline: "),
}


@pytest.mark.parametrize("check_id", ISSUE_3_CHECKS)
def test_malformed_source_is_an_error_naming_the_file(audit, check_id):
    files, prefix = ERRORS[check_id]
    out = audit(check_id, _broken(**files))
    assert out.status is Status.ERROR, out.message
    assert out.message.startswith(prefix), out.message


def test_centos6_with_or_without_os_release_gets_the_same_rhel_remediation(audit):
    for with_os_release in (False, True):
        tree = trees.centos6_tree(live=False, params="", os_release=with_os_release)
        out = audit("iommu.enabled", tree)
        assert fix(out)[-1] == "chroot \"$ROOT\" grubby --update-kernel=ALL --args='intel_iommu=on iommu=pt'", \
            with_os_release
        assert fix(audit("packages.libhugetlbfs", trees.centos6_tree(live=False, os_release=with_os_release)))[0] \
            .endswith('|| yum --installroot "$ROOT" -y install libhugetlbfs-utils')  # EL6 and EL7 have no dnf


# -- remediation applied to the tree fixes what the check found ---------------------------------------


def _on(root, check_id: str) -> Outcome:
    return run_check(CHECKS[check_id], Host.from_root(str(root)), DEFAULT_POLICY)


def test_debian_iommu_fix_round_trip(make_root, tmp_path):
    alma = "almalinux9-config-5.14.0-570.18.1.el9_6.x86_64"
    root = make_root(trees.debian12_tree(asked="iommu=off iommu=off", booted="iommu=off iommu=off", kconfig=alma))
    out = _on(root, "iommu.enabled")
    assert out.status is Status.FAIL
    strip, mkdir, echo, note, edit = fix(out)
    assert strip.startswith("sed -i -E -e '/GRUB_CMDLINE_LINUX/{'") and strip.endswith('"$ROOT"/etc/default/grub')
    assert (mkdir, echo) == ('mkdir -p "$ROOT"/etc/default/grub.d',
                             "echo 'GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX intel_iommu=on iommu=pt\"' > "
                             '"$ROOT"/etc/default/grub.d/90-hostaudit-iommu.cfg')
    assert note.startswith("# /boot/grub/grub.cfg: edited in place") and edit.endswith('"$ROOT"/boot/grub/grub.cfg')
    # the script on the image, twice (confined): the same files after one run and after two
    once, again, _ = twice(lambda: run_image_script(root, script_of(fix(out), image=True), tmp_path), root)
    assert once == again
    assert 'GRUB_CMDLINE_LINUX=""\n' in (root / "etc/default/grub").read_text()  # both occurrences gone
    assert _on(root, "boot.drift").status is Status.PASS  # grub.cfg has what its inputs now ask for
    assert _on(root, "iommu.enabled").status is Status.PASS


def test_legacy_grub_fix_round_trip(make_root, tmp_path):
    tree = trees.centos6_tree(live=False, params="iommu=off iommu=off")
    del tree["etc/redhat-release"]  # unknown distribution: the file itself is edited
    root = make_root(tree)
    out = _on(root, "iommu.enabled")
    assert out.status is Status.FAIL
    for cmd in fix(out):
        words = shlex.split(cmd)
        assert words[0] == "sed" and words[-1] == "$ROOT/boot/grub/grub.conf"
    once, again, _ = twice(lambda: run_image_script(root, script_of(fix(out), image=True), tmp_path), root)
    assert once == again
    assert "iommu=off" not in (root / "boot/grub/grub.conf").read_text()
    out = _on(root, "iommu.enabled")
    assert out.status is Status.PASS and "intel: intel_iommu=on" in out.message


def test_a_repeated_parameter_the_kernel_overrides_is_flagged(audit):
    out = audit("boot.params", trees.debian12_tree(booted="transparent_hugepage=never console=tty0 console=ttyS0 "
                                                          "transparent_hugepage=madvise"))
    assert out.status is Status.WARN
    assert ("next boot: transparent_hugepage is given 2 times ('never', 'madvise'): the kernel acts on one of them "
            "and overrides or ignores the others") in out.message
    assert "console" not in out.message


def test_image_without_a_kernel_config_is_unknown_not_off(audit):
    """No kernel config read: whether the kernel turns the Intel IOMMU on by default is unknown, so an
    image without intel_iommu=on cannot be judged for an Intel CPU (and its vendor is unknown)."""
    tree = trees.debian12_tree(booted="quiet")
    tree = {k: v for k, v in tree.items() if not k.startswith(("boot/config-", "lib/modules/"))}
    out = audit("iommu.enabled", tree)
    assert out.status is Status.SKIP, out.message
    assert any("no kernel config was read: whether the kernel enables it by default is unknown" in e.observed
               for e in out.evidence)


@pytest.mark.parametrize("grub_cfg", [
    pytest.param("set timeout=5\n", id="no-menu-entries"),
    pytest.param("configfile /boot/grub/grub.cfg\n", id="configfile-loop"),
    pytest.param(Link("/etc/os-release"), id="links-to-a-non-grub-file"),
])
def test_drift_is_unknown_when_the_boot_parameters_are(audit, grub_cfg):
    tree = {**trees.debian12_tree(booted="quiet"), "boot/grub/grub.cfg": grub_cfg,
            "etc/os-release": 'ID=debian\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'}
    out = audit("boot.drift", tree)
    assert out.status is Status.SKIP and out.message.startswith("nothing to compare: "), out.message
    assert "boot parameters unknown" in out.message


# -- boot.params against the kernel's own parameter list (issue 10, section 1) -------------------------

DEB13 = "6.12.117+deb13-cloud-amd64"
KVM_MODULES = trees.DATA / "modules" / "debian13-6.12.117+deb13-cloud-amd64"


def test_real_parameters_the_watched_list_was_near_are_not_misspelt(audit):
    # issue 10: nospectre_v2 was "did you mean spectre_v2?"; the THP shmem/tmpfs parameters of 6.13+
    cmdline = "console=ttyS0 nospectre_v2 transparent_hugepage_shmem=within_size transparent_hugepage_tmpfs=always"
    out = audit("boot.params", trees.live_tree(release="7.2.13-amd64", cmdline=cmdline))
    assert out.status is Status.PASS
    assert out.message == "no ignored or misspelt parameters on running kernel"
    assert ("judged for kernel 7.2.13-amd64 against Linux 3.10, 4.18, 5.4, 5.10, 5.15, 6.1, 6.6, 6.12, 6.18, 7.2, "
            "7.3" in observed(out))


def test_parameters_newer_than_the_image_kernel_are_info_not_a_warning(audit):
    out = audit("boot.params", trees.debian12_tree(booted="nospectre_v2 transparent_hugepage_tmpfs=always"))
    assert out.status is Status.PASS
    assert out.message == ("no ignored or misspelt parameters on next boot (info: next boot: "
                           "'transparent_hugepage_tmpfs' is possibly ignored: added between 6.12 and 6.18 (kernel "
                           "6.1; distribution kernels backport parameters))")


def test_rhel8_mitigations_is_possibly_ignored_never_a_failure(audit):
    # RHEL 8's 4.18 accepts mitigations= (backported); its grubenv kernelopts (tests/data/grub/el8-grubenv)
    cmdline = ("BOOT_IMAGE=(hd0,msdos1)/vmlinuz-4.18.0-513.5.1.el8_9.x86_64 root=/dev/mapper/rl-root ro "
               "crashkernel=auto resume=/dev/mapper/rl-swap rd.lvm.lv=rl/root rd.lvm.lv=rl/swap rhgb quiet "
               "mitigations=off")
    out = audit("boot.params", trees.live_tree(release="4.18.0-513.5.1.el8_9.x86_64", cmdline=cmdline))
    assert out.status is Status.PASS
    assert "'mitigations' is possibly ignored: added between 4.18 and 5.4 (kernel 4.18" in out.message


def test_a_near_miss_on_a_kernel_newer_than_the_table_is_info(audit):
    out = audit("boot.params", trees.live_tree(release="7.5.1", cmdline="console=ttyS0 transparent_hugepages=never"))
    assert out.status is Status.PASS
    assert ("running kernel: 'transparent_hugepages' is unknown to hostaudit's table (kernel 7.5 is newer than the "
            "table's 7.3)") in out.message
    assert "a table release as new as 7.5" in "\n".join(str(e.expected) for e in out.evidence)


def test_iommu_values_the_kernel_does_not_act_on_are_flagged(audit):
    out = audit("boot.params", trees.debian12_tree(booted="amd_iommu=on iommu=1"))
    assert out.status is Status.WARN
    assert ("next boot: amd_iommu=on: 'on' is not a value the kernel acts on (amd_iommu= accepts force_enable, "
            "force_isolation, fullflush, irtcachedis, off, pgtbl_v1, pgtbl_v2; drivers/iommu/amd/init.c "
            "parse_amd_iommu_options in 6.1); the AMD IOMMU is on by default") in out.message
    assert "next boot: iommu=1: '1' does not enable an IOMMU" in out.message
    # the values of the Proxmox host's /etc/default/grub (tests/data/grub)
    proxmox = audit("boot.params", trees.debian12_tree(booted="boot=zfs intel_iommu=on iommu=pt"))
    assert proxmox.status is Status.PASS, proxmox.message


def test_the_resolver_near_miss_is_not_repeated(audit):
    out = audit("boot.params", trees.debian12_tree(booted="transparent_hugepages=never"))
    assert out.message.count("'transparent_hugepages' is not a kernel parameter") == 1


def _kvm_live(cmdline: str, amd_suffix: str = ".ko.xz") -> dict:
    base = f"usr/lib/modules/{DEB13}"
    tree = trees.live_tree(release=DEB13, cmdline=cmdline)
    tree[f"{base}/modules.builtin.modinfo"] = KVM_MODULES / "modules.builtin.modinfo"
    tree[f"{base}/kernel/arch/x86/kvm/kvm-intel.ko.xz"] = KVM_MODULES / "kvm-intel.ko.xz"
    tree[f"{base}/kernel/arch/x86/kvm/kvm-amd{amd_suffix}"] = KVM_MODULES / "kvm-amd.ko.xz"
    return tree


def test_module_parameters_are_checked_against_the_module(audit):
    out = audit("boot.params", _kvm_live("console=ttyS0 kvm-intel.nested=1 kvm_amd.sev=1 kvm_amd.avic=1"))
    assert out.status is Status.WARN
    assert out.message == ("running kernel: 'kvm_amd.sev': module kvm_amd declares no parameter 'sev' (it declares "
                           "17); the kernel ignores it")
    amd = f"/usr/lib/modules/{DEB13}/kernel/arch/x86/kvm/kvm-amd.ko.xz"
    assert f"{amd}: module kvm_amd declares: avic," in observed(out)


def test_a_zstd_module_is_not_judged(audit):
    out = audit("boot.params", _kvm_live("console=ttyS0 kvm_amd.sev=1", amd_suffix=".ko.zst"))
    assert out.status is Status.PASS
    assert "kvm_amd.* parameters not judged" in observed(out) and "zstd" in observed(out)


def test_a_rejected_huge_page_value_says_what_the_kernel_accepts(audit):
    out = audit("boot.params", trees.debian12_tree(booted="transparent_hugepage=yes hugepagesz=1GiB hugepagesz=huge"))
    assert out.status is Status.WARN
    assert ("next boot: transparent_hugepage=yes: 'yes' is not a value the kernel acts on (transparent_hugepage= "
            "accepts always, madvise, never; mm/huge_memory.c setup_transparent_hugepage in 6.1)") in out.message
    assert ("next boot: hugepagesz=huge: not a size; ignored by the kernel (hugepagesz= accepts a page size the CPU "
            "has: 2M, or 1G with pdpe1gb, on x86-64)") in out.message
