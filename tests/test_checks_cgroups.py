"""cgroups.controllers (issue #13) and its parsers and facts, on host trees built from real samples
(tests/data/cgroups/README.md says where each came from): cgroup v1 (Fedora 21, an EL7-style host,
Gentoo/OpenRC), v2 (Debian, Fedora), hybrid (OpenRC, and the machine hostaudit is developed on),
kernel command lines, images, snapshots and hostile input."""

from __future__ import annotations

import contextlib
import random
import re
import time

import pytest

from audit.engine import collect_checks, run_audit, run_check
from audit.errors import ParseError
from audit.host.cgroups import cgroup2_tree, cgroup_mounts
from audit.host.core import Host
from audit.host.registry import FACTS
from audit.model import Outcome, Status
from audit.parsers.cgroups import (
    parse_cgroup_mountinfo,
    parse_cgroup_mounts,
    parse_controller_list,
    parse_proc_cgroups,
    parse_proc_pid_cgroup,
    v1_controllers,
)
from audit.plugins import make_plugins
from audit.policy import DEFAULT_POLICY
from tests import trees
from tests.conftest import DATA, Dir, kconfig_sample
from tests.workcount import count_work

CG = DATA / "cgroups"
PLUGINS = make_plugins(builtins=("checks.cgroups",), entry_points=False)
DECLARED, BROKEN = collect_checks(PLUGINS)
CHECK = {d.check.id: d.check for d in DECLARED}["cgroups.controllers"]

DEBIAN_REL = "6.1.0-56-amd64"
ALMA_OS = 'NAME="AlmaLinux"\nID="almalinux"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.6"\n'
CMDLINE = f"BOOT_IMAGE=/vmlinuz-{DEBIAN_REL} root=/dev/mapper/thing--vg-root ro quiet\n"
#: RHEL kdump's KDUMP_COMMANDLINE_APPEND, from insights-core's test data (README)
KDUMP_APPEND = ("irqpoll nr_cpus=1 reset_devices cgroup_disable=memory mce=off numa=off udev.children-max=2 "
                "panic=10 rootflags=nofail acpi_no_memhotplug transparent_hugepage=never")
V2_ALL = "cpuset cpu io memory hugetlb pids rdma misc\n"
DELEGATED = "cpuset cpu io memory pids\n"  # what systemd enables for machined's guest scopes
GUEST = r"machine-qemu\x2d1\x2drhel9.scope"


def sample(name: str) -> str:
    return (CG / name).read_text(encoding="utf-8")


def unreal(text: str) -> str:
    """libvirt's test data moves some mount points under /not/really: put them back."""
    return text.replace("/not/really", "")


def drop_lines(text: str, *needles: str) -> str:
    return "".join(ln for ln in text.splitlines(keepends=True) if not any(n in ln for n in needles))


def kernel(config: str = "debian12-config-6.1.0-56-amd64", release: str = DEBIAN_REL, *,
           unset: tuple[str, ...] = ()) -> dict:
    """The running kernel's release and its /boot/config; ``unset`` options turned into '# ... is not set'."""
    text = kconfig_sample(config).read_text(encoding="utf-8")
    for opt in unset:
        text, n = re.subn(rf"^CONFIG_{opt}=[ym]$", f"# CONFIG_{opt} is not set", text, flags=re.M)
        assert n == 1, opt
    return {"proc/sys/kernel/osrelease": release + "\n", f"boot/config-{release}": text}


def run(make_root, tree: dict) -> Outcome:
    return run_check(CHECK, Host.from_root(str(make_root(tree))), DEFAULT_POLICY)


def observed(outcome: Outcome) -> str:
    return "\n".join(f"{e.source}: {e.observed}" for e in outcome.evidence)


def fixes(outcome: Outcome) -> list[str]:
    assert outcome.remediation is not None, outcome
    return list(outcome.remediation.commands)


# -- trees -------------------------------------------------------------------------------------------------

def fedora21(*, mounts: str | None = None, cgroups: str | None = None, cmdline: str = CMDLINE) -> dict:
    """Fedora 21, systemd, cgroup v1 (libvirt's dump), with an AlmaLinux os-release for the fix wording."""
    return {
        "proc/mounts": sample("libvirt-fedora-21.mounts") if mounts is None else mounts,
        "proc/cgroups": sample("libvirt-fedora-21.cgroups") if cgroups is None else cgroups,
        "proc/self/cgroup": sample("libvirt-fedora-21.self.cgroup"),
        "proc/cmdline": cmdline,
        "etc/os-release": ALMA_OS,
    }


def v2_tree(*, root_ctrl: str = V2_ALL, root_sub: str = DELEGATED, part_sub: str = DELEGATED,
            partition: str | None = "machine.slice", guests: bool = True, cmdline: str = CMDLINE,
            unset: tuple[str, ...] = (), with_kernel: bool = True) -> dict:
    """Debian, systemd, cgroup v2 only (martian's mountinfo), down to the guest partition."""
    tree = {
        "proc/self/mountinfo": sample("martian-debian-v2.mountinfo"),
        "proc/self/cgroup": sample("martian-debian-v2.self.cgroup"),
        "proc/cgroups": sample("libvirt-unified.cgroups"),
        "proc/cmdline": cmdline,
        "run/systemd/system": Dir(),
        "sys/fs/cgroup/cgroup.controllers": root_ctrl,
        "sys/fs/cgroup/cgroup.subtree_control": root_sub,
        "sys/fs/cgroup/cgroup.procs": "1\n",
        "sys/fs/cgroup/system.slice/cgroup.controllers": root_sub,
        "etc/os-release": trees.DEBIAN_OS_RELEASE,
    }
    if with_kernel:
        tree.update(kernel(unset=unset))
    if partition is not None:
        base = f"sys/fs/cgroup/{partition}"
        tree[f"{base}/cgroup.controllers"] = root_sub
        tree[f"{base}/cgroup.subtree_control"] = part_sub
        tree[f"{base}/cgroup.procs"] = ""
        tree[f"{base}/memory.current"] = "0\n"
        if guests:
            tree[f"{base}/{GUEST}/cgroup.controllers"] = part_sub
    return tree


def this_vm_hybrid() -> dict:
    """The development machine's own hybrid layout, as collected (README)."""
    return {
        "proc/self/mountinfo": sample("this-vm-proc-self-mountinfo"),
        "proc/self/cgroup": sample("this-vm-proc-self-cgroup"),
        "proc/cgroups": sample("this-vm-proc-cgroups"),
        "proc/cmdline": trees.THIS_VM_CMDLINE + "\n",
        "sys/fs/cgroup/unified/cgroup.controllers": sample("this-vm-unified-cgroup.controllers"),
        "sys/fs/cgroup/unified/cgroup.subtree_control": sample("this-vm-unified-cgroup.subtree_control"),
        **kernel("this-vm-config-6.18.44", "6.18.44"),
    }


# -- parsers -----------------------------------------------------------------------------------------------

def test_proc_cgroups_real_samples():
    rows = {r.name: r for r in parse_proc_cgroups(sample("this-vm-proc-cgroups"))}
    assert (rows["cpu"].hierarchy, rows["cpuacct"].hierarchy, rows["hugetlb"].hierarchy) == (1, 2, 0)
    assert rows["memory"].num_cgroups == 55 and rows["memory"].enabled and rows["pids"].line == 13
    fedora = {r.name: r for r in parse_proc_cgroups(sample("libvirt-fedora-21.cgroups"))}  # blank-separated
    assert fedora["cpu"].hierarchy == fedora["cpuacct"].hierarchy == 2 and "pids" not in fedora
    hybrid = {r.name: r.hierarchy for r in parse_proc_cgroups(sample("libvirt-hybrid.cgroups"))}
    assert hybrid["memory"] == hybrid["blkio"] == 0 and hybrid["devices"] == 3


@pytest.mark.parametrize(("text", "line", "words"), [
    pytest.param("", None, "empty", id="empty"),
    pytest.param("#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t1\n", 2, "4 fields", id="short"),
    pytest.param("#h\ncpu\tone\t1\t1\n", 2, "numbers", id="not-a-number"),
    pytest.param("#h\ncpu\t1\t1\t2\n", 2, "0 or 1", id="enabled-2"),
    pytest.param("#h\nCPU!\t1\t1\t1\n", 2, "controller name", id="bad-name"),
    pytest.param("#h\n" + "x" * 5000 + "\n", 2, "longer than", id="long-line"),
])
def test_proc_cgroups_malformed(text, line, words):
    with pytest.raises(ParseError, match=words) as err:
        parse_proc_cgroups(text)
    assert err.value.line == line


def test_proc_cgroups_header_only_is_valid():
    assert parse_proc_cgroups("#subsys_name\thierarchy\tnum_cgroups\tenabled\n") == ()


def test_proc_pid_cgroup_samples():
    rows = parse_proc_pid_cgroup(sample("this-vm-proc-self-cgroup"))
    assert rows[0].controllers == ("name=systemd",) and rows[-1] == (0, (), "/", 10)
    assert rows[5].path == "/process_api/c12f595436a98cff33b54fbec907c2b7"
    fedora = parse_proc_pid_cgroup(sample("libvirt-fedora-21.self.cgroup"))
    assert ("cpu", "cpuacct") in [r.controllers for r in fedora]
    assert parse_proc_pid_cgroup("0::/a:b:c\n")[0].path == "/a:b:c"  # the path keeps its colons
    for bad in ("", "x::/\n", "0:cpu\n", "1:cpu:relative\n", "1:CPU$:/\n"):
        with pytest.raises(ParseError):
            parse_proc_pid_cgroup(bad)


def test_controller_lists():
    assert parse_controller_list(V2_ALL) == ("cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc")
    assert parse_controller_list(sample("this-vm-unified-cgroup.controllers")) == ("hugetlb",)
    assert parse_controller_list(sample("this-vm-unified-cgroup.subtree_control")) == ()
    assert parse_controller_list("") == ()
    for bad in ("cpu\nmemory\n", "cpu +memory\n", "\x00\x01\n"):
        with pytest.raises(ParseError):
            parse_controller_list(bad)


def test_cgroup_rows_of_mount_tables():
    vm = parse_cgroup_mountinfo(sample("this-vm-proc-self-mountinfo"))
    assert [m.target for m in vm][-1] == "/sys/fs/cgroup/unified" and vm[-1].fstype == "cgroup2"
    assert vm[0].line == 11 and v1_controllers(vm[0]) == ("cpu",)
    el = {m.target: v1_controllers(m) for m in parse_cgroup_mountinfo(sample("martian-el-v1.mountinfo"))}
    assert el["/sys/fs/cgroup/cpu,cpuacct"] == ("cpu", "cpuacct")  # "seclabel" is a flag, not a controller
    assert el["/sys/fs/cgroup/systemd"] == ()  # name=systemd carries no controller
    fedora = {m.target: v1_controllers(m) for m in parse_cgroup_mounts(sample("libvirt-fedora-21.mounts"))}
    assert fedora["/sys/fs/cgroup/net_cls,net_prio"] == ("net_cls", "net_prio")
    v2 = parse_cgroup_mountinfo(sample("martian-debian-v2.mountinfo"))
    assert [(m.target, m.fstype) for m in v2] == [("/sys/fs/cgroup", "cgroup2")]
    assert parse_cgroup_mounts(sample("libvirt-unified.mounts"))[0].target == "/not/really/sys/fs/cgroup"
    assert parse_cgroup_mounts(sample("libvirt-hybrid.mounts"))[1].fstype == "cgroup2"


def test_a_broken_row_is_reported_on_its_own_line():
    text = sample("martian-el-v1.mountinfo").splitlines(keepends=True)
    text.insert(4, "this row has no separator at all\n")
    with pytest.raises(ParseError) as err:
        parse_cgroup_mountinfo("".join(text))
    assert err.value.line == 5


# -- the check on real layouts -------------------------------------------------------------------------------

def test_v1_every_controller_mounted_passes(make_root):
    out = run(make_root, fedora21())
    assert out.status is Status.PASS, out
    assert out.message.startswith("cgroup v1 (legacy): cpu, cpuacct, cpuset, memory, devices, blkio mounted (v1)")
    assert "cpu: mounted on /sys/fs/cgroup/cpu,cpuacct (v1)" in observed(out)
    assert "pids: not available (reported, not judged)" in observed(out)  # Fedora 21's kernel had no pids


@pytest.mark.parametrize("name", ["martian-el-v1.mountinfo", "cgroups3"])
def test_other_real_v1_hosts_pass(make_root, name):
    if name == "cgroups3":
        tree = {"proc/mounts": sample("libvirt-cgroups3.mounts"), "proc/cgroups": sample("libvirt-cgroups3.cgroups"),
                "proc/self": Dir()}
    else:
        tree = {"proc/self/mountinfo": sample(name)}
    out = run(make_root, tree)
    assert out.status is Status.PASS, out


def test_v1_kernel_without_devices_and_blkio_fails(make_root):
    # an EL7 kernel built without CONFIG_CGROUP_DEVICE and CONFIG_BLK_CGROUP: no rows, no mounts
    tree = fedora21(mounts=drop_lines(sample("libvirt-fedora-21.mounts"), "/devices ", "/blkio "),
                    cgroups=drop_lines(sample("libvirt-fedora-21.cgroups"), "devices", "blkio"))
    tree.update(kernel("oraclelinux7-rhck-config-3.10.0-1160.119.1.0.5.el7.x86_64",
                       "3.10.0-1160.119.1.0.5.el7.x86_64", unset=("CGROUP_DEVICE", "BLK_CGROUP")))
    out = run(make_root, tree)
    assert out.status is Status.FAIL
    assert out.message == ("cgroup v1 (legacy): 'devices': the kernel is built without CONFIG_CGROUP_DEVICE; "
                           "'blkio': the kernel is built without CONFIG_BLK_CGROUP")
    cmds = fixes(out)
    assert cmds[0] == "# boot a kernel built with CONFIG_BLK_CGROUP=y, CONFIG_CGROUP_DEVICE=y"
    assert out.remediation.reboot_required


def test_v1_devices_and_blkio_compiled_in_but_not_mounted(make_root):
    cgroups = sample("libvirt-fedora-21.cgroups").replace("devices     4", "devices     0").replace(
        "blkio       7", "blkio       0")
    tree = fedora21(mounts=drop_lines(sample("libvirt-fedora-21.mounts"), "/devices ", "/blkio "), cgroups=cgroups)
    out = run(make_root, tree)
    assert out.status is Status.FAIL
    assert "'devices' is compiled in and enabled but not mounted" in out.message
    assert fixes(out)[:5] == [
        "mount -o remount,rw /sys/fs/cgroup   # a read-only tmpfs (systemd mounts it so)",
        "mkdir -p /sys/fs/cgroup/devices", "mount -t cgroup -o devices cgroup /sys/fs/cgroup/devices",
        "mkdir -p /sys/fs/cgroup/blkio", "mount -t cgroup -o blkio cgroup /sys/fs/cgroup/blkio"]
    assert not out.remediation.reboot_required


def test_v1_memory_disabled_on_the_command_line(make_root):
    cgroups = sample("libvirt-fedora-21.cgroups").replace("memory      3       1       1",
                                                          "memory      0       1       0")
    tree = fedora21(mounts=drop_lines(sample("libvirt-fedora-21.mounts"), "/memory "), cgroups=cgroups,
                    cmdline=f"BOOT_IMAGE=/vmlinuz-5.14.0 root=/dev/vda2 ro {KDUMP_APPEND}\n")
    out = run(make_root, tree)
    assert out.status is Status.FAIL
    assert out.message == ("cgroup v1 (legacy): 'memory' is disabled on the kernel command line "
                           "(cgroup_disable=memory)")
    assert "/proc/cmdline: cgroup_disable=memory" in observed(out)
    assert "grubby --update-kernel=ALL --remove-args=cgroup_disable" in fixes(out)
    assert out.remediation.reboot_required


def test_memory_disabled_by_the_kernel_itself(make_root):
    cgroups = sample("libvirt-fedora-21.cgroups").replace("memory      3       1       1",
                                                          "memory      0       1       0")
    tree = fedora21(mounts=drop_lines(sample("libvirt-fedora-21.mounts"), "/memory "), cgroups=cgroups)
    out = run(make_root, tree)
    assert out.status is Status.FAIL and "enabled 0; not by /proc/cmdline" in out.message


def test_cgroup_no_v1_keeps_controllers_off_a_v1_host(make_root):
    tree = fedora21(mounts=drop_lines(sample("libvirt-fedora-21.mounts"), "/memory ", "/cpuset "),
                    cmdline="ro root=/dev/vda2 cgroup_no_v1=memory,cpuset\n")
    out = run(make_root, tree)
    assert out.status is Status.FAIL
    assert "'cpuset' is kept off cgroup v1 by the kernel command line (cgroup_no_v1=memory,cpuset)" in out.message
    assert "grubby --update-kernel=ALL --remove-args=cgroup_no_v1" in fixes(out)


def test_v2_enabled_down_to_machine_slice_passes(make_root):
    out = run(make_root, v2_tree())
    assert out.status is Status.PASS, out
    assert out.message == ("cgroup v2 (unified) on /sys/fs/cgroup: cpu, cpuset, memory, io enabled down to "
                           "/sys/fs/cgroup/machine.slice; devices through BPF device programs (CONFIG_CGROUP_BPF=y); "
                           "cpuacct is part of cpu on v2")
    text = observed(out)
    assert "cpuacct: cgroup v2 has no cpuacct controller" in text
    assert f"1 guest cgroup(s): {GUEST}" in text
    assert "pids: offered by cgroup v2" in text


def test_v2_io_missing_at_machine_slice_fails_naming_the_level(make_root):
    out = run(make_root, v2_tree(part_sub="cpuset cpu memory pids\n"))
    assert out.status is Status.FAIL
    assert out.message == ("cgroup v2 (unified) on /sys/fs/cgroup: 'io' is not enabled in "
                           "/sys/fs/cgroup/machine.slice/cgroup.subtree_control, so the guests below "
                           "/sys/fs/cgroup/machine.slice do not get it")
    cmds = fixes(out)
    assert cmds[0] == "echo +io > /sys/fs/cgroup/machine.slice/cgroup.subtree_control"
    assert any("DisableControllers" in c for c in cmds)
    assert not any("machine.slice.d" in c for c in cmds)  # the slice's own settings would not help here


def test_v2_missing_at_the_root_level_gets_a_systemd_drop_in(make_root):
    out = run(make_root, v2_tree(root_sub="memory pids\n", part_sub="memory pids\n"))
    assert out.status is Status.FAIL and "/sys/fs/cgroup/cgroup.subtree_control" in out.message
    cmds = fixes(out)
    assert cmds[:2] == ["echo '+cpu +cpuset +io' > /sys/fs/cgroup/cgroup.subtree_control",
                        "echo '+cpu +cpuset +io' > /sys/fs/cgroup/machine.slice/cgroup.subtree_control"]
    assert "mkdir -p /etc/systemd/system/machine.slice.d" in cmds
    assert ("printf '%s\\n' '[Slice]' CPUWeight=100 IOAccounting=yes > "
            "/etc/systemd/system/machine.slice.d/50-hostaudit-cgroup.conf") in cmds
    assert "systemctl daemon-reload" in cmds


def test_v2_without_systemd_libvirt_partition_machine(make_root):
    # libvirt without systemd keeps its guests under /machine and enables controllers itself
    tree = v2_tree(partition="machine", part_sub="cpuset cpu memory pids\n", guests=False)
    del tree["run/systemd/system"]
    tree["sys/fs/cgroup/machine/qemu-1-rhel9.libvirt-qemu/cgroup.controllers"] = "cpuset cpu memory pids\n"
    tree["etc/os-release"] = 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.3\n'
    tree["etc/init.d"] = Dir()
    out = run(make_root, tree)
    assert out.status is Status.FAIL
    assert "'io' is not enabled in /sys/fs/cgroup/machine/cgroup.subtree_control" in out.message
    cmds = fixes(out)
    assert cmds[0] == "echo +io > /sys/fs/cgroup/machine/cgroup.subtree_control"
    assert "rc_cgroup_mode" in cmds[-1] and not any("systemctl" in c for c in cmds)


def test_v2_without_machine_slice_is_judged_at_the_root(make_root):
    out = run(make_root, v2_tree(partition=None, root_sub="memory pids\n"))
    assert out.status is Status.PASS, out
    assert "judged at the root: no machine.slice yet (no guest started)" in out.message
    assert "/sys/fs/cgroup/cgroup.subtree_control: memory pids" in observed(out)


def test_v2_idle_machine_slice_is_not_failed_for_what_systemd_enables_on_demand(make_root):
    out = run(make_root, v2_tree(part_sub="memory pids\n", guests=False))
    assert out.status is Status.PASS, out
    assert "has no guest cgroup" in out.message


def test_v2_root_without_cpuset_fails_even_without_guests(make_root):
    out = run(make_root, v2_tree(partition=None, root_ctrl="cpu io memory hugetlb pids rdma misc\n",
                                 unset=("CPUSETS",)))
    assert out.status is Status.FAIL
    assert "'cpuset': the kernel is built without CONFIG_CPUSETS" in out.message
    assert "/sys/fs/cgroup/cgroup.controllers does not list 'cpuset'" in out.message


def test_v2_memory_disabled_on_the_command_line(make_root):
    tree = v2_tree(root_ctrl="cpuset cpu io hugetlb pids rdma misc\n", root_sub="cpuset cpu io pids\n",
                   part_sub="cpuset cpu io pids\n", cmdline=CMDLINE.strip() + " cgroup_disable=memory\n")
    tree["etc/default/grub"] = trees.debian_default_grub("cgroup_disable=memory")
    out = run(make_root, tree)
    assert out.status is Status.FAIL
    assert "'memory' is disabled on the kernel command line (cgroup_disable=memory)" in out.message
    cmds = fixes(out)
    assert "cgroup[-_]disable" in cmds[0] and cmds[0].endswith(" /etc/default/grub") and cmds[-1] == "update-grub"
    assert out.remediation.reboot_required


def test_v2_without_cgroup_bpf_fails(make_root):
    out = run(make_root, v2_tree(unset=("CGROUP_BPF",)))
    assert out.status is Status.FAIL
    assert "'devices': cgroup v2 has no devices controller and the kernel is built without CONFIG_CGROUP_BPF" in \
        out.message
    assert fixes(out)[0] == "# boot a kernel built with CONFIG_CGROUP_BPF=y"


def test_v2_without_a_kernel_config_warns(make_root):
    out = run(make_root, v2_tree(with_kernel=False))
    assert out.status is Status.WARN
    assert "CONFIG_CGROUP_BPF cannot be confirmed" in out.message


def test_hybrid_of_this_machine_passes_on_v1(make_root):
    out = run(make_root, this_vm_hybrid())
    assert out.status is Status.PASS, out
    assert out.message == ("hybrid: cgroup v1 controllers, and cgroup v2 on /sys/fs/cgroup/unified: cpu, cpuacct, "
                           "cpuset, memory, devices, blkio mounted (v1)")
    assert ("/sys/fs/cgroup/unified/cgroup.controllers: hugetlb (none of libvirt's: they are on v1)"
            in observed(out))


def test_hybrid_openrc_is_judged_where_each_controller_is(make_root):
    # OpenRC's hybrid: cpuset and devices on v1; cpu, cpuacct, memory, blkio bound to no v1 hierarchy
    # (libvirt's /proc/cgroups), so the unified root offers them (cpu, io, memory; cpuacct is cpu.stat)
    tree = {"proc/mounts": unreal(sample("libvirt-hybrid.mounts")), "proc/cgroups": sample("libvirt-hybrid.cgroups"),
            "proc/self/cgroup": sample("libvirt-hybrid.self.cgroup"),
            "sys/fs/cgroup/unified/cgroup.controllers": "cpu io memory\n",
            "sys/fs/cgroup/unified/cgroup.subtree_control": "\n", **kernel()}
    out = run(make_root, tree)
    assert out.status is Status.PASS, out
    assert out.message.startswith("hybrid: cgroup v1 controllers, and cgroup v2 on /sys/fs/cgroup/unified: "
                                  "cpuset, devices mounted (v1); cpu, memory, io offered at the root")
    text = observed(out)
    assert "cpuset: mounted on /sys/fs/cgroup/cpuset (v1)" in text and "memory: 'memory' offered" in text


def test_hybrid_whose_unified_offers_nothing_is_judged_as_v1(make_root):
    tree = this_vm_hybrid()
    tree["sys/fs/cgroup/unified/cgroup.controllers"] = "\n"
    tree["proc/self/mountinfo"] = drop_lines(tree["proc/self/mountinfo"], "/sys/fs/cgroup/memory ")
    out = run(make_root, tree)
    assert out.status is Status.FAIL  # libvirt ignores a cgroup2 mount that offers no controller
    assert "'memory' is bound to cgroup v1 hierarchy 4, which is not mounted in this mount namespace" in out.message


def test_nothing_mounted(make_root):
    out = run(make_root, {"proc/mounts": sample("libvirt-unified.mounts").replace("cgroup2", "tmpfs"),
                          "proc/cgroups": sample("libvirt-unified.cgroups"), "proc/self": Dir()})
    assert out.status is Status.FAIL and out.message.startswith("no cgroup hierarchy is mounted: ")


def test_live_tree_of_the_shared_fixtures_passes(make_root):
    # the acceptance fixtures' /proc/mounts (the same hybrid as this machine), no /proc/cgroups
    out = run(make_root, trees.live_tree())
    assert out.status is Status.PASS, out


# -- images --------------------------------------------------------------------------------------------------

def test_image_judges_both_layouts_from_the_kernel_config(make_root):
    out = run(make_root, trees.debian12_tree(""))
    assert out.status is Status.PASS, out
    assert "cgroup v2 and cgroup v1 would have every controller libvirt uses" in out.message
    assert "no systemd.unified_cgroup_hierarchy= on the boot command line" in observed(out)


def test_old_image_kernel_is_judged_as_v1(make_root):
    out = run(make_root, trees.centos6_tree(live=False))
    assert out.status is Status.PASS, out  # CONFIG_CGROUP_MEM_RES_CTLR is 2.6.32's memory controller
    assert "predates cgroup v2 (4.5): v1" in observed(out)


def test_image_without_cgroup_bpf_warns_unless_v2_is_forced(make_root):
    tree = trees.debian12_tree("")
    tree[f"boot/config-{trees.DEBIAN_RELEASE}"] = kernel(unset=("CGROUP_BPF",))[f"boot/config-{DEBIAN_REL}"]
    out = run(make_root, tree)
    assert out.status is Status.WARN
    assert "cgroup v2: 'devices': built without CONFIG_CGROUP_BPF (the cgroup v1 layout has them all)" in out.message
    forced = trees.debian12_tree("systemd.unified_cgroup_hierarchy=1", "systemd.unified_cgroup_hierarchy=1")
    forced[f"boot/config-{trees.DEBIAN_RELEASE}"] = tree[f"boot/config-{trees.DEBIAN_RELEASE}"]
    out = run(make_root, forced)
    assert out.status is Status.FAIL and out.message.endswith("cgroup v2: 'devices': built without CONFIG_CGROUP_BPF")


def test_image_with_cgroup_disable_gets_only_persistent_fixes(make_root):
    out = run(make_root, trees.debian12_tree("cgroup_disable=memory", "cgroup_disable=memory"))
    assert out.status is Status.FAIL
    assert out.message.endswith(": 'memory': disabled by cgroup_disable=memory (either layout)")
    cmds = fixes(out)
    assert cmds[0].endswith('"$ROOT"/etc/default/grub') and "cgroup[-_]disable" in cmds[0]
    assert not any("/sys/fs/cgroup" in c or c == "systemctl daemon-reload" for c in cmds)


def test_image_without_a_kernel_config_is_skipped(make_root):
    tree = trees.debian12_tree("")
    del tree[f"boot/config-{trees.DEBIAN_RELEASE}"]
    out = run(make_root, tree)
    assert out.status is Status.SKIP and "no kernel config" in out.message


# -- hostile input -------------------------------------------------------------------------------------------

def test_a_10mb_row_of_another_file_system_is_skipped_cheaply(make_root):
    huge = "99 27 0:99 / /var/lib/containers/x rw - overlay overlay rw,lowerdir=" + "/l" * 5_000_000 + "\n"
    tree = v2_tree()
    tree["proc/self/mountinfo"] = huge + tree["proc/self/mountinfo"]
    started = time.process_time()
    out = run(make_root, tree)
    assert out.status is Status.PASS, out
    assert time.process_time() - started < 5  # one scan of the row, never split into options


def test_a_10mb_cgroup_row_is_an_error_naming_the_line(make_root):
    tree = v2_tree()
    rows = tree["proc/self/mountinfo"].splitlines(keepends=True)
    rows.insert(2, "98 22 0:98 / /sys/fs/cgroup/x rw - cgroup cgroup rw," + "memory," * 1_500_000 + "cpu\n")
    tree["proc/self/mountinfo"] = "".join(rows)
    out = run(make_root, tree)
    assert out.status is Status.ERROR
    assert out.message.startswith("/proc/self/mountinfo:3: a cgroup mount line of 10500055 characters")


@pytest.mark.parametrize("path", ["proc/self/mountinfo", "proc/cgroups", "sys/fs/cgroup/cgroup.controllers",
                                  "sys/fs/cgroup/machine.slice/cgroup.subtree_control"])
def test_binary_garbage_is_an_error_naming_the_file(make_root, path):
    tree = v2_tree()
    tree[path] = bytes(random.Random(path).randrange(256) for _ in range(4096))
    out = run(make_root, tree)
    assert out.status is Status.ERROR, out
    assert out.message.startswith("/" + path)


@pytest.mark.parametrize("seed", range(40))
def test_parsers_raise_only_parse_errors(seed):
    rnd = random.Random(seed)
    alphabet = "0123456789:- ,/\t\ncgroup2memorycpu=#\\x\x00é"
    text = "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(400)))
    for parser in (parse_proc_cgroups, parse_proc_pid_cgroup, parse_controller_list, parse_cgroup_mountinfo,
                   parse_cgroup_mounts):
        with contextlib.suppress(ParseError):
            parser(text)


def _mountinfo_rows(n: int) -> str:
    row = "35 24 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev shared:9 - cgroup cgroup rw,memory\n"
    other = "36 24 0:31 / /srv/data rw,relatime shared:10 - ext4 /dev/sdb1 rw," + "x" * 200 + "\n"
    return (row + other) * n


@pytest.mark.parametrize("parser", [parse_cgroup_mountinfo, parse_proc_pid_cgroup])
def test_parsing_stays_linear(parser):
    def make(n: int) -> str:
        if parser is parse_proc_pid_cgroup:
            return "".join(f"{i}:cpu,cpuacct:/machine.slice/x{i}\n" for i in range(1, n + 1))
        return _mountinfo_rows(n)

    _, calls1, mem1 = count_work(lambda: parser(make(500)))
    _, calls4, mem4 = count_work(lambda: parser(make(2000)))
    assert calls4 <= 5 * calls1 and mem4 <= 5 * mem1


def test_one_huge_non_cgroup_row_costs_no_calls_per_character():
    small = "36 24 0:31 / /srv rw - ext4 /dev/sdb1 rw," + "x" * 1000 + "\n"
    big = "36 24 0:31 / /srv rw - ext4 /dev/sdb1 rw," + "x" * 4_000_000 + "\n"
    _, calls_small, _ = count_work(lambda: parse_cgroup_mountinfo(small))
    _, calls_big, _ = count_work(lambda: parse_cgroup_mountinfo(big))
    assert calls_big <= calls_small + 5


# -- facts, snapshots, the engine ----------------------------------------------------------------------------

def test_every_path_read_is_declared():
    declared = {p for spec in FACTS.values() if spec.name.startswith("audit.host.cgroups.") for p in spec.paths}
    for path in ("/proc/self/mountinfo", "/proc/mounts", "/proc/cgroups", "/proc/self/cgroup",
                 "/sys/fs/cgroup/cgroup.controllers", "/sys/fs/cgroup/cgroup.subtree_control",
                 "/sys/fs/cgroup/machine.slice", "/sys/fs/cgroup/machine.slice/cgroup.subtree_control",
                 "/sys/fs/cgroup/machine.slice/cgroup.controllers", "/sys/fs/cgroup/unified/cgroup.controllers",
                 "/sys/fs/cgroup/machine/cgroup.subtree_control", "?/run/systemd/system"):
        assert path in declared, path


def test_facts_on_the_v2_tree(make_root):
    host = Host.from_root(str(make_root(v2_tree())))
    tree = host.fact(cgroup2_tree)
    assert tree.root.path == "/sys/fs/cgroup" and tree.partition.children == (GUEST,)
    assert host.fact(cgroup_mounts).source == "/proc/self/mountinfo"


def test_a_snapshot_is_judged_like_the_host(make_root):
    from audit.capture import gather_patterns
    from audit.host.collect import collect_document, render_document
    from audit.host.snapshot import host_from_snapshot, parse_snapshot

    root = make_root(v2_tree(part_sub="cpuset cpu memory pids\n"))
    doc = collect_document(str(root), gather_patterns(entry_points=False))
    snap = host_from_snapshot(parse_snapshot(render_document(doc).encode()), name="host.json")
    direct = run_check(CHECK, Host.from_root(str(root)), DEFAULT_POLICY)
    captured = run_check(CHECK, snap, DEFAULT_POLICY)
    assert captured.status is direct.status is Status.FAIL
    assert captured.message == direct.message
    assert fixes(captured)[0] == "echo +io > /sys/fs/cgroup/machine.slice/cgroup.subtree_control"


def test_through_the_engine(make_root):
    assert not BROKEN and not PLUGINS.problems
    report = run_audit(PLUGINS, Host.from_root(str(make_root(v2_tree(part_sub="cpuset cpu memory pids\n")))))
    (result,) = report.results
    assert (result.id, result.plugin, result.status) == ("cgroups.controllers", "checks.cgroups", Status.FAIL)
    assert result.check.severity.name == "MEDIUM" and not result.check.runtime_only


def test_hybrid_controller_on_neither_side_is_explained_as_v1(make_root):
    # this machine's hybrid (v2 offers hugetlb), with the memory mount gone and memory left unbound
    tree = this_vm_hybrid()
    tree["proc/self/mountinfo"] = drop_lines(tree["proc/self/mountinfo"], "/sys/fs/cgroup/memory ")
    tree["proc/cgroups"] = tree["proc/cgroups"].replace("memory\t4\t55\t1", "memory\t0\t1\t1")
    out = run(make_root, tree)
    assert out.status is Status.FAIL
    assert out.message.endswith("'memory' is compiled in and enabled but not mounted")
    assert "mount -t cgroup -o memory cgroup /sys/fs/cgroup/memory" in fixes(out)
    assert not any("remount" in c for c in fixes(out))  # this machine's /sys/fs/cgroup tmpfs is read-write
