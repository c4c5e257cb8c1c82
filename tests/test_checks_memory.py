"""Huge page, hugetlbfs, THP, KSM and swap checks on host trees built from the real samples
(tests/trees.py): CentOS 6 (legacy GRUB, no os-release, RHEL 6 THP path, SysV), Debian 12 (stale
/etc/default/grub), RHEL 9 (EFI stub, BLS, grubenv), the collecting machine's own proc/ and sys/."""

from __future__ import annotations

import subprocess

import pytest

from audit.engine import collect_checks, run_check
from audit.host.core import Host
from audit.model import Outcome, Status, replace
from audit.plugins import make_plugins
from audit.policy import DEFAULT_POLICY, Policy, load_policy
from tests import trees
from tests.conftest import Dir, Link

GIB = 1 << 30
#: An image's CPU is unknown: its 1 GiB pool is counted and said to depend on pdpe1gb (issue #10 section 4).
IMAGE_1G = (" (predicted: the 1G pool needs a CPU with pdpe1gb, and the CPU it boots on is not known here; on a CPU "
            "without it: none)")
CHECKS = {d.check.id: d.check for d in collect_checks(make_plugins(entry_points=False))[0]}


@pytest.fixture
def audit(make_root):
    """audit(check_id, tree, policy) -> Outcome, on a real directory built from ``tree``."""

    def run(check_id: str, tree: dict, policy: Policy = DEFAULT_POLICY) -> Outcome:
        return run_check(CHECKS[check_id], Host.from_root(str(make_root(tree))), policy)

    return run


def policy(**changes) -> Policy:
    return replace(DEFAULT_POLICY, **changes)


def set_sysctl(line: str) -> str:
    """The idempotent sysctl.d command: the line added once, any other value of the key taken out."""
    return (f"grep -qsxF -- '{line}' /etc/sysctl.d/80-hugepages.conf || {{ touch /etc/sysctl.d/80-hugepages.conf; "
            "sed -i -E '/^[[:space:]]*-?vm[./]nr_hugepages[[:space:]]*=/d' /etc/sysctl.d/80-hugepages.conf; "
            f"echo '{line}' >> /etc/sysctl.d/80-hugepages.conf; }}")


def fstab_line(line: str) -> str:
    return f"grep -qsxF -- '{line}' /etc/fstab || echo '{line}' >> /etc/fstab"


def sources(outcome: Outcome) -> list[str]:
    return [e.source for e in outcome.evidence]


def observed(outcome: Outcome) -> str:
    return "\n".join(f"{e.source}: {e.observed}" for e in outcome.evidence)


def fix(outcome: Outcome) -> list[str]:
    assert outcome.remediation is not None, outcome
    return list(outcome.remediation.commands)


# -- the tree builders themselves ---------------------------------------------------------------------


def test_listing_becomes_real_sysfs_files(make_root):
    root = make_root(trees.live_tree("this-vm-hugepages"))
    pool = root / "sys/kernel/mm/hugepages/hugepages-1048576kB"
    assert (pool / "nr_hugepages").read_text() == "2\n"
    assert not (pool / "demote").exists()  # write-only: the collector could not read it
    assert (root / "sys/kernel/mm/ksm/run").read_text() == "0\n"
    assert (root / "sys/kernel/mm/transparent_hugepage/enabled").read_text() == "always [madvise] never\n"
    assert (root / "sys/kernel/mm/transparent_hugepage/hugepages-2048kB/enabled").is_file()
    assert (root / "proc/sys/vm/nr_hugepages").read_text().strip() == "512"
    assert (root / "proc/meminfo").read_text().startswith("MemTotal:       24684092 kB")


def test_centos6_tree_has_no_os_release_and_only_the_rhel6_thp_directory(make_root):
    root = make_root(trees.centos6_tree(live=True))
    assert not (root / "etc/os-release").exists() and (root / "etc/redhat-release").is_file()
    assert (root / "sys/kernel/mm/redhat_transparent_hugepage/enabled").is_file()
    assert not (root / "sys/kernel/mm/transparent_hugepage").exists()
    assert (root / "etc/grub.conf").is_symlink()
    assert "hugepagesz=2MB hugepages=512 default_hugepagesz=2MB intel_iommu=on" in (
        root / "boot/grub/grub.conf").read_text()


# -- boot.hugepages -----------------------------------------------------------------------------------


def test_centos6_image_pool_from_legacy_grub_conf(audit):
    out = audit("boot.hugepages", trees.centos6_tree(live=False))
    assert out.status is Status.PASS
    assert out.message == "reserved at boot: 512 x 2M"
    assert out.evidence[0].source == "/boot/grub/grub.conf"
    assert "huge pages: 512 x 2M" in out.evidence[0].observed


def test_centos6_live_pool_allocated_passes(audit):
    tree = trees.centos6_tree(live=True)
    tree["sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"] = "512\n"
    out = audit("boot.hugepages", tree)
    assert out.status is Status.PASS
    assert out.message == "reserved persistently and active: 512 x 2M"
    assert "/sys/kernel/mm/hugepages" in sources(out)


def test_asked_at_boot_but_not_allocated_is_not_called_active(audit):
    # the running kernel was given hugepages=512 and holds none: short, not "active"
    out = audit("boot.hugepages", trees.centos6_tree(live=True))
    assert out.status is Status.WARN
    assert "2M: 0 of 512" in out.message and "memory.hugepages_allocated" in out.message
    assert fix(out) == ["echo 1 > /proc/sys/vm/compact_memory",
                        "echo 512 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"]


def test_configured_but_not_booted_with_it_is_reboot_pending(audit):
    tree = trees.debian12_live("hugepagesz=1G hugepages=4")
    tree["proc/cmdline"] = f"BOOT_IMAGE=/boot/vmlinuz-6.1.0-12-amd64 {trees.DEBIAN_ROOT} ro quiet\n"
    out = audit("boot.hugepages", tree)
    assert out.status is Status.WARN
    assert "reboot pending" in out.message and "next boot: 4 x 1G" in out.message
    assert fix(out) == ["echo 4 > /sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages", "# or reboot"]


def test_runtime_pool_without_persistent_setting_is_lost_at_next_boot(audit):
    tree = trees.debian12_live("")
    tree["sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"] = "256\n"
    out = audit("boot.hugepages", tree)
    assert out.status is Status.WARN
    assert out.message.startswith("active now, lost at next boot: 256 x 2M")
    assert fix(out) == ["mkdir -p /etc/sysctl.d", set_sysctl("vm.nr_hugepages = 256")]


def test_runtime_1g_pool_with_unknown_boot_command_line_may_be_lost(audit):
    tree = trees.live_tree("this-vm-hugepages")  # no boot configuration at all
    tree["etc/sysctl.d/80-hugepages.conf"] = "vm.nr_hugepages = 512\n"
    out = audit("boot.hugepages", tree)
    assert out.status is Status.WARN
    assert "may be lost at next boot: 2 x 1G" in out.message
    assert "command line is unknown" in out.message
    assert "/etc/sysctl.d/80-hugepages.conf:1" in sources(out)


def test_this_vm_hugepages_sample_passes_when_persisted(audit):
    tree = trees.debian12_live("hugepagesz=1G hugepages=2", "this-vm-hugepages")
    tree["etc/sysctl.d/80-hugepages.conf"] = "vm.nr_hugepages = 512\n"
    out = audit("boot.hugepages", tree)
    assert out.status is Status.PASS
    assert out.message == "reserved persistently and active: 512 x 2M, 2 x 1G"


def test_debian_stale_default_grub_is_judged_by_the_effective_entry(audit):
    out = audit("boot.hugepages", trees.debian12_tree())
    assert out.status is Status.FAIL
    assert out.message.startswith("no huge page pool is reserved")
    assert "/etc/default/grub:10 asks for hugepagesz=1G hugepages=16" in out.message
    assert "not regenerated (see boot.drift)" in out.message
    (note, edit) = fix(out)  # an image: its grub.cfg edited in place (update-grub needs /proc and /dev)
    assert note.startswith("# /boot/grub/grub.cfg: edited in place")
    assert edit.endswith("-e 's/$/ hugepagesz=1G hugepages=16/' -e '}' \"$ROOT\"/boot/grub/grub.cfg")
    assert out.remediation.reboot_required
    assert "huge pages: none" in out.evidence[0].observed
    assert out.evidence[0].source == "/boot/grub/grub.cfg"


def test_debian_regenerated_grub_cfg_passes(audit):
    out = audit("boot.hugepages", trees.debian12_tree(booted="hugepagesz=1G hugepages=16"))
    assert out.status is Status.PASS and out.message == "reserved at boot: 16 x 1G" + IMAGE_1G


def test_rhel9_pool_comes_from_grubenv_kernelopts(audit):
    out = audit("boot.hugepages", trees.rhel9_tree())
    assert out.status is Status.PASS and out.message == "reserved at boot: 8 x 1G" + IMAGE_1G
    assert "/boot/grub2/grubenv ($kernelopts)" in out.evidence[0].observed


def test_rhel9_policy_count_not_met_is_fixed_with_grubby(audit):
    out = audit("boot.hugepages", trees.rhel9_tree(), policy(hugepages_size=GIB, hugepages_count=16))
    assert out.status is Status.FAIL
    assert out.message == "persistent pool has 8 x 1G pages; the policy wants 16"
    commands = fix(out)
    assert commands == ["chroot \"$ROOT\" grubby --update-kernel=ALL --remove-args='hugepagesz hugepages'",
                        "chroot \"$ROOT\" grubby --update-kernel=ALL --args='hugepagesz=1G hugepages=16'"]
    assert out.remediation.reboot_required


def test_centos6_policy_count_not_met_is_fixed_with_grubby_not_sed(audit):
    # no os-release on EL6: /etc/redhat-release still says grubby manages the kernel lines
    out = audit("boot.hugepages", trees.centos6_tree(live=False), policy(hugepages_count=1024))
    assert out.status is Status.FAIL
    assert fix(out) == ['mkdir -p "$ROOT"/etc/sysctl.d',  # an image: no runtime write, paths under the root
                        set_sysctl("vm.nr_hugepages = 1024").replace("/etc/", '"$ROOT"/etc/')]
    out = audit("boot.hugepages", trees.centos6_tree(live=False), policy(hugepages_size=GIB, hugepages_count=4))
    assert fix(out) == [  # the 2M pool the command line has stays, written beside the 1G one
        "chroot \"$ROOT\" grubby --update-kernel=ALL --remove-args='hugepagesz hugepages'",
        "chroot \"$ROOT\" grubby --update-kernel=ALL --args='hugepagesz=2M hugepages=512 hugepagesz=1G hugepages=4'"]


def test_image_with_unknown_boot_config_is_a_skip(audit):
    out = audit("boot.hugepages", {"etc/os-release": trees.DEBIAN_OS_RELEASE})
    assert out.status is Status.SKIP and "cannot tell what the next boot reserves" in out.message


def test_live_without_any_pool_fails_when_required_and_passes_when_not(audit):
    tree = trees.debian12_live("")
    out = audit("boot.hugepages", tree)
    assert out.status is Status.FAIL
    assert fix(out) == ["echo 512 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
                        "mkdir -p /etc/sysctl.d", set_sysctl("vm.nr_hugepages = 512")]
    assert "512 pages is an example" in out.remediation.notes
    assert audit("boot.hugepages", tree, policy(hugepages_required=False)).status is Status.PASS


def test_sysctl_value_that_is_not_a_number_is_ignored_and_shown(audit):
    tree = trees.debian12_tree(asked="", booted="")
    tree["etc/sysctl.d/80-hugepages.conf"] = "vm.nr_hugepages = 512; reboot\n"
    out = audit("boot.hugepages", tree)
    assert out.status is Status.FAIL
    assert "(not a number: ignored)" in observed(out)


# -- memory.hugepages_fit -----------------------------------------------------------------------------


def test_pool_larger_than_memory_fails(audit):
    out = audit("memory.hugepages_fit", trees.debian12_live("hugepagesz=1G hugepages=32"))
    assert out.status is Status.FAIL
    assert out.message == "huge page pools (32G) exceed physical memory (23.5G)"
    assert out.evidence[-1].source == "/proc/meminfo"
    assert out.evidence[-1].expected == "<= 90% of memory"


def test_pool_requested_only_on_the_running_command_line_is_checked_too(audit):
    tree = trees.live_tree(cmdline="hugepagesz=1G hugepages=32")  # no boot configuration
    out = audit("memory.hugepages_fit", tree)
    assert out.status is Status.FAIL and "32G" in out.message


def test_pool_over_the_policy_fraction_warns(audit):
    out = audit("memory.hugepages_fit", trees.debian12_live("hugepagesz=1G hugepages=22"))
    assert out.status is Status.WARN
    assert out.message == "huge page pools take 93% of memory, over the policy's 90%"
    assert audit("memory.hugepages_fit", trees.debian12_live("hugepagesz=1G hugepages=22"),
                 policy(hugepages_max_memory_fraction=0.95)).status is Status.PASS


def test_this_vm_hugepages_sample_fits(audit):
    out = audit("memory.hugepages_fit", trees.live_tree("this-vm-hugepages"))
    assert out.status is Status.PASS
    assert out.message == "huge page pools take 3G of 23.5G (13%)"


def test_image_needs_host_memory_in_the_policy(audit, tmp_path):
    tree = trees.debian12_tree(booted="hugepagesz=1G hugepages=32")
    out = audit("memory.hugepages_fit", tree)
    assert out.status is Status.SKIP and "set host.memory in the policy" in out.message
    path = tmp_path / "policy.toml"
    path.write_text('extends = "kvm-host"\n[host]\nmemory = "24G"\n')
    out = audit("memory.hugepages_fit", tree, load_policy(path=str(path)))
    assert out.status is Status.FAIL
    assert out.message == "huge page pools (32G) exceed physical memory (24G)" + IMAGE_1G
    assert out.evidence[-1].source == f"policy host.memory ({path})"
    path.write_text('[host]\nmemory = "256G"\n')
    assert audit("memory.hugepages_fit", tree, load_policy(path=str(path))).status is Status.PASS


def test_fit_skips_when_there_is_no_pool(audit):
    assert audit("memory.hugepages_fit", trees.debian12_live("")).status is Status.SKIP


# -- memory.hugepages_allocated -----------------------------------------------------------------------


def test_kernel_short_allocation_fails(audit):
    tree = trees.debian12_live("hugepages=512")
    tree["sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"] = "100\n"
    out = audit("memory.hugepages_allocated", tree)
    assert out.status is Status.FAIL
    assert out.message == "the kernel allocated fewer huge pages than asked (2M: 100 of 512)"
    assert fix(out) == ["echo 1 > /proc/sys/vm/compact_memory",
                        "echo 512 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"]


def test_this_vm_hugepages_sample_allocated_what_was_asked(audit):
    # 512 x 2M through a sysctl file, 2 x 1G on the kernel command line
    tree = trees.live_tree("this-vm-hugepages", cmdline="hugepagesz=1G hugepages=2")
    tree["etc/sysctl.d/80-hugepages.conf"] = "vm.nr_hugepages = 512\n"
    out = audit("memory.hugepages_allocated", tree)
    assert out.status is Status.PASS
    assert out.message == "every requested huge page was allocated: 512 x 2M, 2 x 1G"
    tree["etc/sysctl.d/80-hugepages.conf"] = "vm.nr_hugepages = 600\n"
    assert audit("memory.hugepages_allocated", tree).status is Status.FAIL


def test_per_node_pools_are_evidence(audit):
    tree = trees.debian12_live("hugepages=512")
    tree["sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"] = "512\n"
    node = "sys/devices/system/node/node0/hugepages/hugepages-2048kB"
    tree.update({f"{node}/nr_hugepages": "512\n", f"{node}/free_hugepages": "512\n",
                 f"{node}/surplus_hugepages": "0\n"})
    out = audit("memory.hugepages_allocated", tree)
    assert out.status is Status.PASS
    assert "/sys/devices/system/node/node0/hugepages" in sources(out)


def test_allocated_needs_a_running_kernel_and_a_request(audit):
    out = audit("memory.hugepages_allocated", trees.centos6_tree(live=False))
    assert out.status is Status.SKIP and "not applicable to an unbooted image" in out.message
    out = audit("memory.hugepages_allocated", trees.debian12_live(""))
    assert out.status is Status.SKIP and "no huge pages were asked for" in out.message


# -- cpu.pdpe1gb --------------------------------------------------------------------------------------


def _without_1g_pool(tree: dict) -> dict:
    """A CPU without pdpe1gb has no 1 GiB hstate: sysfs has no hugepages-1048576kB directory."""
    return {k: v for k, v in tree.items() if "hugepages-1048576kB" not in k}


def test_1g_pages_on_a_cpu_without_pdpe1gb_fail(audit):
    tree = _without_1g_pool(trees.debian12_live("default_hugepagesz=1G hugepagesz=1G hugepages=16",
                                                cpuinfo="intel-xeon-x7550-nehalem-ex.txt"))
    out = audit("cpu.pdpe1gb", tree)
    assert out.status is Status.FAIL
    assert out.message == "1 GiB huge pages are configured but the CPU lacks pdpe1gb"
    assert out.evidence[-1].observed == "lacks pdpe1gb" and out.evidence[-1].source == "/proc/cpuinfo"
    commands = fix(out)
    assert commands[0].startswith("sed -i -E ") and commands[0].endswith(" /etc/default/grub")
    assert "update-grub" in commands and out.remediation.reboot_required


def test_1g_only_on_the_running_command_line_still_counts(audit):
    tree = _without_1g_pool(trees.live_tree(cpuinfo="intel-xeon-x7550-nehalem-ex.txt",
                                            cmdline="hugepagesz=1G hugepages=4"))
    assert audit("cpu.pdpe1gb", tree).status is Status.FAIL


def test_westmere_has_pdpe1gb(audit):
    out = audit("cpu.pdpe1gb", trees.debian12_live("hugepagesz=1G hugepages=4",
                                                   cpuinfo="intel-xeon-e5640-westmere-ep.txt"))
    assert out.status is Status.PASS and out.message == "1 GiB pages supported (pdpe1gb) and in use"


def test_no_1g_pages_and_no_pdpe1gb_is_a_skip(audit):
    out = audit("cpu.pdpe1gb", trees.debian12_live("hugepages=512", cpuinfo="intel-xeon-x7550-nehalem-ex.txt"))
    assert out.status is Status.SKIP


# -- mounts.hugetlbfs ---------------------------------------------------------------------------------

FSTAB_BOTH = ("hugetlbfs /dev/hugepages hugetlbfs pagesize=2M 0 0\n"
              "hugetlbfs /dev/hugepages1G hugetlbfs pagesize=1G 0 0\n")


def _hugepages_host(**files) -> dict:
    tree = trees.debian12_live("hugepagesz=1G hugepages=2", "this-vm-hugepages")
    tree["etc/sysctl.d/80-hugepages.conf"] = "vm.nr_hugepages = 512\n"
    tree.update(files)
    return tree


def test_hugetlbfs_sample_mounts_with_fstab_pass(audit):
    out = audit("mounts.hugetlbfs", _hugepages_host(**{"etc/fstab": FSTAB_BOTH}))
    assert out.status is Status.PASS
    assert out.message == "hugetlbfs mounted now and at boot for 2M, 1G pages"
    assert "/proc/mounts:20" in sources(out) and "/proc/mounts:21" in sources(out)
    assert "/etc/fstab:2" in sources(out)


def test_mounted_now_but_not_in_fstab_warns(audit):
    tree = _hugepages_host()  # dev-hugepages.mount covers 2M; nothing covers 1G
    out = audit("mounts.hugetlbfs", tree)
    assert out.status is Status.WARN
    assert out.message == "hugetlbfs for 1G pages: mounted now, not after a reboot"
    assert fix(out) == [fstab_line("hugetlbfs /dev/hugepages1G hugetlbfs pagesize=1G 0 0")]
    assert any(e.source == "systemd: dev-hugepages.mount" and e.observed == "vendor" for e in out.evidence)


@pytest.mark.parametrize("target", ["/dev/null", "../../../dev/null"], ids=["absolute", "relative"])
def test_masked_dev_hugepages_mount_is_not_persistent(audit, target):
    tree = _hugepages_host(**{"etc/fstab": FSTAB_BOTH.splitlines(keepends=True)[1],
                              "etc/systemd/system/dev-hugepages.mount": Link(target)})
    out = audit("mounts.hugetlbfs", tree)
    assert out.status is Status.WARN
    assert out.message == "hugetlbfs for 2M pages: mounted now, not after a reboot (dev-hugepages.mount is masked)"
    assert fix(out) == ["systemctl unmask dev-hugepages.mount",
                        fstab_line("hugetlbfs /dev/hugepages hugetlbfs pagesize=2M 0 0")]


def test_custom_mount_unit_makes_1g_persistent(audit):
    unit = "[Mount]\nWhat=hugetlbfs\nWhere=/dev/hugepages1G\nType=hugetlbfs\nOptions=pagesize=1G\n"
    tree = _hugepages_host(**{
        "etc/systemd/system/dev-hugepages1G.mount": unit,
        "etc/systemd/system/local-fs.target.wants/dev-hugepages1G.mount": Link("../dev-hugepages1G.mount"),
    })
    out = audit("mounts.hugetlbfs", tree)
    assert out.status is Status.PASS
    assert "/etc/systemd/system/dev-hugepages1G.mount" in sources(out)


def test_octal_escaped_mount_point(audit):
    tree = _hugepages_host(**{
        "proc/mounts": "hugetlbfs /dev/huge\\040pages hugetlbfs rw,relatime,pagesize=2M 0 0\n"
                       "hugetlbfs /dev/hugepages1G hugetlbfs rw,relatime,pagesize=1024M 0 0\n",
        "etc/fstab": "hugetlbfs /dev/huge\\040pages hugetlbfs pagesize=2M 0 0\n"
                     "hugetlbfs /dev/hugepages1G hugetlbfs pagesize=1024M 0 0\n",
    })
    out = audit("mounts.hugetlbfs", tree)
    assert out.status is Status.PASS
    assert "/proc/mounts:1: hugetlbfs on /dev/huge pages pagesize 2M" in observed(out)
    assert "/etc/fstab:1: hugetlbfs on /dev/huge pages pagesize 2M" in observed(out)


def test_no_mount_for_a_size_in_use_fails(audit):
    tree = _hugepages_host(**{"proc/mounts": trees.PROC.joinpath("this-vm", "mounts")})
    out = audit("mounts.hugetlbfs", tree)
    assert out.status is Status.FAIL
    assert out.message == "no hugetlbfs mount for 2M, 1G pages"
    assert fix(out) == [
        "mkdir -p /dev/hugepages",
        "mountpoint -q /dev/hugepages || mount -t hugetlbfs -o pagesize=2M hugetlbfs /dev/hugepages",
        "mkdir -p /dev/hugepages1G",
        "mountpoint -q /dev/hugepages1G || mount -t hugetlbfs -o pagesize=1G hugetlbfs /dev/hugepages1G",
        fstab_line("hugetlbfs /dev/hugepages1G hugetlbfs pagesize=1G 0 0"),
    ]


def test_image_judged_by_boot_time_mounts_only(audit):
    tree = trees.rhel9_tree()  # 8 x 1G, default_hugepagesz=1G, no dev-hugepages.mount in this image
    out = audit("mounts.hugetlbfs", tree)
    assert out.status is Status.FAIL and out.message == "hugetlbfs for 1G pages: not mounted at boot"
    tree.update(trees.systemd_hugepages_unit())  # /dev/hugepages then has the default size, 1G
    out = audit("mounts.hugetlbfs", tree)
    assert out.status is Status.PASS and out.message == "hugetlbfs mounted at boot for 1G pages"


def test_hugetlbfs_skipped_when_huge_pages_are_not_in_use(audit):
    out = audit("mounts.hugetlbfs", trees.debian12_live(""), policy(hugepages_required=False))
    assert out.status is Status.SKIP


# -- packages.libhugetlbfs ----------------------------------------------------------------------------


@pytest.mark.parametrize(("tree", "command"), [
    pytest.param(lambda: trees.centos6_tree(live=False), 'yum --installroot "$ROOT" -y install libhugetlbfs-utils',
                 id="centos6-no-os-release"),
    pytest.param(lambda: trees.debian12_tree(booted="hugepages=512"), 'DEBIAN_FRONTEND=noninteractive chroot "$ROOT" '
                 "apt-get install -y --no-install-recommends libhugetlbfs-bin", id="debian12"),
    pytest.param(trees.rhel9_tree, 'dnf --installroot "$ROOT" -y --setopt=install_weak_deps=False install '
                 "libhugetlbfs-utils", id="rhel9"),
])
def test_libhugetlbfs_missing_names_the_distro_package(audit, tree, command):
    out = audit("packages.libhugetlbfs", tree())
    assert out.status is Status.FAIL
    # into the image, unless already installed (a second run installs nothing)
    assert fix(out)[-1].endswith(" || " + command)


def test_libhugetlbfs_installed_or_not_needed(audit):
    tree = trees.rhel9_tree()
    tree["usr/bin/hugeadm"] = "#!/bin/sh\n"
    out = audit("packages.libhugetlbfs", tree)
    assert out.status is Status.PASS and out.message == "hugeadm is installed (/usr/bin/hugeadm)"
    out = audit("packages.libhugetlbfs", trees.debian12_live(""), policy(hugepages_required=False))
    assert out.status is Status.SKIP


# -- memory.thp ---------------------------------------------------------------------------------------


def test_thp_madvise_live_passes(audit):
    out = audit("memory.thp", trees.debian12_live(""))
    assert out.status is Status.PASS and out.message == "THP is 'madvise'"
    assert out.evidence[0].source == "/sys/kernel/mm/transparent_hugepage/enabled"
    assert out.evidence[0].observed == "always [madvise] never"


def test_thp_never_fails_with_echo_and_persistent_fix(audit):
    out = audit("memory.thp", trees.debian12_live("", thp="always madvise [never]\n"))
    assert out.status is Status.FAIL and out.message == "THP is 'never'"
    assert fix(out) == [
        "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled",
        "mkdir -p /etc/default/grub.d",
        "echo 'GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX transparent_hugepage=madvise\"' > "
        "/etc/default/grub.d/90-hostaudit-thp.cfg",
        "update-grub",
    ]
    assert not out.remediation.reboot_required


def test_thp_never_on_centos6_uses_the_rhel6_path_and_grubby(audit):
    out = audit("memory.thp", trees.centos6_tree(live=True, thp="always madvise [never]"))
    assert out.status is Status.FAIL
    assert out.evidence[0].source == "/sys/kernel/mm/redhat_transparent_hugepage/enabled"
    assert fix(out) == ["echo madvise > /sys/kernel/mm/redhat_transparent_hugepage/enabled",
                        "grubby --update-kernel=ALL --remove-args=transparent_hugepage",
                        "grubby --update-kernel=ALL --args=transparent_hugepage=madvise"]


def test_thp_centos6_always_passes(audit):
    out = audit("memory.thp", trees.centos6_tree(live=True))
    assert out.status is Status.PASS and out.message == "THP is 'always'"


@pytest.mark.parametrize("enabled", ["always madvise never []\n", "always madvise never [ ]\n",
                                     "always madvise never\n"], ids=["empty-brackets", "blank-brackets", "none"])
def test_thp_without_an_active_mode_is_an_error(audit, enabled):
    out = audit("memory.thp", trees.live_tree(thp=enabled))
    assert out.status is Status.ERROR
    assert out.message.startswith("/sys/kernel/mm/transparent_hugepage/enabled: no active mode is marked")


def test_thp_malformed_file_is_an_error_naming_it(audit):
    out = audit("memory.thp", trees.live_tree(thp="[always] [madvise] never\n"))
    assert out.status is Status.ERROR
    assert out.message.startswith("/sys/kernel/mm/transparent_hugepage/enabled:1: more than one active choice")


def test_thp_active_now_but_boot_parameter_says_never(audit):
    tree = trees.debian12_live("transparent_hugepage=never")
    out = audit("memory.thp", tree)  # sysfs still says madvise (someone echoed it)
    assert out.status is Status.WARN
    assert out.message == "THP is 'madvise' now, but the boot command line sets 'never': lost at next boot"
    commands = fix(out)  # the 'never' goes, or GRUB_CMDLINE_LINUX_DEFAULT or a later token would still win
    assert commands[0].startswith("sed -i -E ") and "transparent[-_]hugepage" in commands[0]
    assert commands[-1] == "update-grub"
    assert "transparent_hugepage=madvise" in commands[-2]


def test_thp_image_never_on_rhel9_is_replaced_with_grubby(audit):
    out = audit("memory.thp", trees.rhel9_tree(kernelopts=trees.EL9_KERNELOPTS + " transparent_hugepage=never"))
    assert out.status is Status.FAIL
    assert fix(out) == ['chroot "$ROOT" grubby --update-kernel=ALL --remove-args=transparent_hugepage',
                        'chroot "$ROOT" grubby --update-kernel=ALL --args=transparent_hugepage=madvise']


@pytest.mark.parametrize(("kconfig", "mode"), [
    ("ubuntu2204-config-5.15.0-25-generic", "madvise"),
    ("debian12-config-6.1.0-56-amd64", "always"),
    ("almalinux9-config-5.14.0-570.18.1.el9_6.x86_64", "always"),
])
def test_thp_image_judged_by_kconfig_default(audit, kconfig, mode):
    out = audit("memory.thp", trees.debian12_tree(booted="", kconfig=kconfig))
    assert out.status is Status.PASS and out.message == f"THP will be '{mode}' at boot"
    assert any(e.source == f"/boot/config-{trees.DEBIAN_RELEASE}" for e in out.evidence)
    out = audit("memory.thp", trees.debian12_tree(booted="", kconfig=kconfig), policy(thp_allowed=("never",)))
    assert out.status is Status.FAIL and fix(out)[-1].endswith('"$ROOT"/boot/grub/grub.cfg')  # edited in place


def test_thp_rhel6_kernel_without_default_choice_is_always(audit):
    out = audit("memory.thp", trees.centos6_tree(live=False))
    assert out.status is Status.PASS and out.message == "THP will be 'always' at boot"
    assert "no default choice: always" in observed(out)


def test_thp_image_boot_parameter_wins_over_kconfig(audit):
    tree = trees.debian12_tree(booted="transparent_hugepage=never", kconfig="ubuntu2204-config-5.15.0-25-generic")
    out = audit("memory.thp", tree)
    assert out.status is Status.FAIL and out.message == "THP will be 'never' at boot"
    assert "/boot/grub/grub.cfg: transparent_hugepage=never" in observed(out)
    assert out.remediation.reboot_required


def test_thp_image_misspelt_parameter_does_not_count(audit):
    tree = trees.debian12_tree(booted="transparent_hugepages=never")
    out = audit("memory.thp", tree)
    assert out.status is Status.PASS and out.message == "THP will be 'always' at boot"  # the kernel ignores it


def test_thp_image_without_parameter_or_kconfig_is_a_skip(audit):
    tree = trees.debian12_tree(booted="")
    del tree["boot/config-" + trees.DEBIAN_RELEASE]
    out = audit("memory.thp", tree)
    assert out.status is Status.SKIP and "unknown" in out.message


# -- ksm.state and swap.ksm ---------------------------------------------------------------------------


def test_ksm_merging_without_swap_fails(audit):
    tree = trees.ksm_running(trees.live_tree())
    out = audit("swap.ksm", tree)
    assert out.status is Status.FAIL
    assert out.message == "KSM runs (saving 390.6M) and the host has no swap at all"
    assert "/proc/swaps: 0 device(s), 0B" in observed(out)
    assert fix(out)[0].startswith("[[ -e /swapfile-ksm ]] || { fallocate -l 1G /swapfile-ksm;")
    state = audit("ksm.state", tree)
    assert state.status is Status.WARN and state.message == "KSM is running now but nothing starts it at the next boot"


def test_ksm_merging_with_enough_swap_passes(audit):
    tree = trees.ksm_running(trees.live_tree())
    tree["proc/swaps"] = trees.swaps_text(("/swapfile", 8 * 1024 * 1024))
    out = audit("swap.ksm", tree)
    assert out.status is Status.PASS and out.message == "swap 8G covers KSM savings of 390.6M"


def test_ksm_swap_below_the_policy_factor_fails(audit):
    tree = trees.ksm_running(trees.live_tree(), pages_sharing=1_000_000)  # 3.8G saved
    tree["proc/swaps"] = trees.swaps_text(("/swapfile", 1024 * 1024))
    out = audit("swap.ksm", tree)
    assert out.status is Status.FAIL and out.message.startswith("swap 1G < 3.8G needed")
    assert fix(out)[0] == ("[[ -e /swapfile-ksm ]] || { fallocate -l 3G /swapfile-ksm; chmod 600 /swapfile-ksm; "
                           "mkswap /swapfile-ksm; }")


def test_ksmtuned_enabled_without_ksm_in_the_kernel_fails(audit):
    # field note #39: ksmtuned on a kernel without CONFIG_KSM only logs errors
    tree = trees.live_tree(ksm=False)
    tree.update(trees.ksmtuned_unit())
    tree["etc/systemd/system/multi-user.target.wants/ksmtuned.service"] = Link(
        "/usr/lib/systemd/system/ksmtuned.service")
    out = audit("ksm.state", tree)
    assert out.status is Status.FAIL
    assert out.message.startswith("ksmtuned.service starts at boot but the kernel has no KSM")
    assert fix(out) == ["systemctl disable --now ksmtuned.service", "# or boot a kernel with CONFIG_KSM=y"]
    assert any(e.source == "systemd/SysV: ksmtuned.service" and e.observed == "enabled" for e in out.evidence)
    swap = audit("swap.ksm", tree)
    assert swap.status is Status.SKIP and "no KSM" in swap.message


def test_centos6_sysv_start_links_enable_ksm(audit):
    tree = trees.centos6_tree(live=True)
    tree["etc/rc.d/rc3.d/S84ksm"] = Link("../init.d/ksm")
    tree["etc/rc.d/rc3.d/S85ksmtuned"] = Link("../init.d/ksmtuned")
    out = audit("ksm.state", tree)
    assert out.status is Status.PASS
    assert out.message == "KSM started at boot by ksm.service, ksmtuned.service"
    assert "(SysV start link)" in observed(out)
    # a K (kill) link is not a start link
    tree = trees.centos6_tree(live=True)
    tree["etc/rc.d/rc3.d/K16ksmtuned"] = Link("../init.d/ksmtuned")
    out = audit("ksm.state", tree)
    assert out.status is Status.FAIL
    ksm_on = ["chkconfig ksm on", "chkconfig ksmtuned on", "service ksm start", "service ksmtuned start"]
    start = fix(out).index(ksm_on[0])
    assert fix(out)[start:start + 4] == ksm_on
    # turning KSM on makes swap.ksm want swap behind it: this host has none, so the same fix makes some
    assert fix(out)[start + 4] == "# KSM needs swap behind it (swap.ksm) and this host has none: a swap file"


def test_multitenant_profile_wants_ksm_off(audit):
    multitenant = load_policy(profile="kvm-host-multitenant")
    out = audit("ksm.state", trees.ksm_running(trees.live_tree()), multitenant)
    assert out.status is Status.FAIL
    assert out.message == "KSM is running now but the policy wants it off (multi-tenant host)"
    assert fix(out)[0] == "echo 2 > /sys/kernel/mm/ksm/run   # stop KSM and unmerge every shared page"
    assert "systemctl mask --now ksm.service ksmtuned.service" in fix(out)
    out = audit("ksm.state", trees.live_tree(), multitenant)
    assert out.status is Status.PASS and out.message == "KSM is off: not running and not started at boot"


def test_multitenant_centos6_is_told_chkconfig(audit):
    tree = trees.centos6_tree(live=True)
    tree["etc/rc.d/rc3.d/S85ksmtuned"] = Link("../init.d/ksmtuned")
    out = audit("ksm.state", tree, load_policy(profile="kvm-host-multitenant"))
    assert out.status is Status.FAIL
    assert "chkconfig ksmtuned off" in fix(out)  # the one that starts at boot (turning off the others fails)
    assert not any("systemctl" in c for c in fix(out))


def test_ksm_enabled_by_sysfs_d_and_policy_any(audit):
    tree = trees.live_tree()
    tree["etc/sysfs.d/ksm.conf"] = "# merge guest pages\nkernel/mm/ksm/run = 1\n"
    out = audit("ksm.state", tree)
    assert out.status is Status.PASS and "enabled at boot by a sysfs/tmpfiles setting" in out.message
    assert "/etc/sysfs.d/ksm.conf:2" in sources(out)
    assert audit("ksm.state", trees.live_tree(), policy(ksm_mode="any")).status is Status.PASS


def test_ksm_image_checks_what_starts_at_boot(audit):
    tree = trees.rhel9_tree()
    out = audit("ksm.state", tree)
    assert out.status is Status.FAIL and "(no running kernel here" in out.message
    assert fix(out) == ['rpm --root "$ROOT" -q ksmtuned >/dev/null 2>&1 || dnf --installroot "$ROOT" -y '
                        "--setopt=install_weak_deps=False install ksmtuned   # ksm.service: qemu-kvm-common",
                        'systemctl --root="$ROOT" enable ksmtuned.service ksm.service',
                        "# afterwards: swap.ksm: KSM starts at boot, and no swap is configured in /etc/fstab: give "
                        "the host swap of at least what KSM will save (policy swap.ksm_factor)"]
    tree.update(trees.ksmtuned_unit())
    tree["etc/systemd/system/multi-user.target.wants/ksmtuned.service"] = Link(
        "/usr/lib/systemd/system/ksmtuned.service")
    assert audit("ksm.state", tree).status is Status.PASS
    out = audit("swap.ksm", tree)
    assert out.status is Status.WARN and out.message == (
        "KSM starts at boot but the image configures no swap in /etc/fstab")
    tree["etc/fstab"] = "/dev/mapper/rhel-swap none swap defaults 0 0\n"
    out = audit("swap.ksm", tree)
    assert out.status is Status.PASS and "configures 1 swap area(s)" in out.message


def test_swap_ksm_skipped_when_ksm_is_off(audit):
    assert audit("swap.ksm", trees.live_tree()).status is Status.SKIP


def test_ksm_dir_present_but_run_malformed_is_an_error(audit):
    tree = trees.live_tree()
    tree["sys/kernel/mm/ksm/run"] = "yes\n"
    out = audit("ksm.state", tree)
    assert out.status is Status.ERROR and "/sys/kernel/mm/ksm" in out.message


def test_missing_proc_file_on_a_live_tree_is_a_skip_not_a_pass(audit):
    tree = trees.ksm_running(trees.live_tree())
    del tree["proc/swaps"]
    out = audit("swap.ksm", tree)
    assert out.status is Status.SKIP and "/proc/swaps" in out.message
    tree = trees.live_tree()
    tree["sys/kernel/mm/transparent_hugepage"] = Dir()
    tree = {k: v for k, v in tree.items() if not k.startswith("sys/kernel/mm/transparent_hugepage/")}
    out = audit("memory.thp", tree)
    assert out.status is Status.SKIP and "kernel without THP" in out.message


@pytest.mark.parametrize(("version", "tool"), [("7.9", "yum"), ("8.10", "dnf"), ("9.6", "dnf")])
def test_rhel_package_tool_follows_the_release(audit, version, tool):
    tree = trees.rhel9_tree()
    tree["etc/os-release"] = trees.RHEL9_OS_RELEASE.replace('VERSION_ID="9.6"', f'VERSION_ID="{version}"')
    assert f'|| {tool} --installroot "$ROOT" -y' in fix(audit("packages.libhugetlbfs", tree))[0]
    assert fix(audit("ksm.state", tree))[0].endswith(" install ksmtuned   # ksm.service: qemu-kvm-common")
    assert f'|| {tool} --installroot "$ROOT" -y' in fix(audit("ksm.state", tree))[0]


@pytest.mark.parametrize("target", ["/dev/null", "../../dev/null"])
def test_sysctl_file_masked_by_a_dev_null_link_hides_the_vendor_file(make_root, target):
    from audit.host.core import Host
    from audit.host.memory import sysctl_config
    from tests.conftest import Link

    root = make_root({
        "usr/lib/sysctl.d/80-hugepages.conf": "vm.nr_hugepages = 512\n",
        "etc/sysctl.d/80-hugepages.conf": Link(target),
        "etc/sysctl.d/90-other.conf": "vm.swappiness = 10\n",
    })
    cfg = Host.from_root(str(root)).fact(sysctl_config)
    assert "vm.nr_hugepages" not in cfg.effective
    assert cfg.effective["vm.swappiness"].value == "10"


def test_duplicate_hugetlbfs_fstab_entries_are_reported_and_deduplicated(audit, tmp_path):
    line = "hugetlbfs /dev/hugepages1G hugetlbfs pagesize=1G 0 0\n"
    fstab = "# /etc/fstab\n\n" + FSTAB_BOTH + line + "\n# again\n" + line
    out = audit("mounts.hugetlbfs", _hugepages_host(**{"etc/fstab": fstab}))
    assert out.status is Status.WARN
    assert out.message == ("hugetlbfs mounted now and at boot for 2M, 1G pages, but /etc/fstab mounts "
                           "/dev/hugepages1G 3 times (lines 4, 5, 8): systemd-fstab-generator refuses the duplicate "
                           "and mount -a stacks a second mount")
    cmd = "\n".join(fix(out))
    target = tmp_path / "fstab"
    target.write_text(fstab)
    for _ in range(2):  # the fix on a copy, twice: the same file after one run and after two
        subprocess.run(["bash", "-ec", cmd.replace("/etc/fstab", str(target))], check=True)
        assert target.read_text() == "# /etc/fstab\n\n" + FSTAB_BOTH + "\n# again\n"


def test_differing_duplicate_fstab_entries_are_left_to_a_person(audit):
    fstab = FSTAB_BOTH + "nodev /dev/hugepages1G hugetlbfs pagesize=1G,mode=1770 0 0\n"
    out = audit("mounts.hugetlbfs", _hugepages_host(**{"etc/fstab": fstab}))
    assert out.status is Status.WARN
    assert fix(out) == ["# keep one of the /etc/fstab entries for /dev/hugepages1G (their options differ)"]
