"""memory.thp_defrag, memory.hugepages_numa and memory.min_free_kbytes on real trees: this machine's
proc/ and sys/, PCP's captured multi-node hosts, tmpfiles.d lines as systemd reads them
(tests/data/memtune/README.md names every source)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from audit.engine import run_check
from audit.errors import FactError, ParseError
from audit.host.core import Host
from audit.host.memtune import (
    boot_writes,
    parse_node_list,
    parse_zoneinfo,
    recommended_min_free_kbytes,
    tmpfiles_writes,
)
from audit.model import Status
from audit.policy import DEFAULT_POLICY
from checks import memtune
from tests import trees
from tests.checkrun import auditor, fix, observed, policy
from tests.conftest import DATA, Link

MT = DATA / "memtune"
NODE = "sys/devices/system/node"
DEFRAG = "sys/kernel/mm/transparent_hugepage/defrag"
ALWAYS = "[always] defer defer+madvise madvise never\n"
CHECKS = {c.id: c for c in memtune.hostaudit_checks()}
OUR_LINE = ("echo 'w /sys/kernel/mm/transparent_hugepage/defrag - - - - madvise' > "
            "/etc/tmpfiles.d/hostaudit-thp-defrag.conf")


@pytest.fixture
def audit(make_root):
    return auditor(CHECKS, make_root)


def this_vm(**live) -> dict:
    """This machine's proc/ and sys/ with its /proc/zoneinfo, vm.min_free_kbytes and node tree."""
    tree = trees.live_tree(**live)
    tree["proc/zoneinfo"] = MT / "this-vm/proc-zoneinfo"
    tree["proc/sys/vm/min_free_kbytes"] = MT / "this-vm/proc-sys-vm-min_free_kbytes"
    tree.update(trees.sysfs_from_listing(MT / "this-vm/sys-devices-system-node.txt", NODE))
    tree[f"{NODE}/node0/meminfo"] = MT / "this-vm/node0-meminfo"
    return tree


def pcp_numa(tree: dict, pools: dict[int, int] | None = None, size_kb: int = 2048) -> dict:
    """PCP's captured 4-node tree under sys/devices/system/node, with ``pools`` (node -> pages)."""
    tree = {k: v for k, v in tree.items() if not k.startswith(NODE)}
    base = MT / "pcp-sysfs-numa-001"
    for path in sorted(base.rglob("*")):
        if path.is_file():
            tree[f"{NODE}/{path.relative_to(base)}"] = path
    for node, n in (pools or {}).items():
        d = f"{NODE}/node{node}/hugepages/hugepages-{size_kb}kB"
        tree[f"{d}/nr_hugepages"] = f"{n}\n"
        tree[f"{d}/free_hugepages"] = f"{n}\n"
        tree[f"{d}/surplus_hugepages"] = "0\n"
    return tree


def run_fix(root: Path, commands: list[str]) -> None:
    """The fix commands as the fix script runs them on an image: bash -e, $ROOT set."""
    script = "set -e\n" + "\n".join(commands) + "\n"
    subprocess.run(["bash", "-c", script], check=True, env={**os.environ, "ROOT": str(root)})


# -- the samples themselves ------------------------------------------------------------------------------


def test_this_vm_zoneinfo_gives_the_value_its_kernel_set():
    zones = parse_zoneinfo((MT / "this-vm/proc-zoneinfo").read_text())
    assert [(z.name, z.present > 0) for z in zones] == [("DMA", True), ("DMA32", True), ("Normal", True),
                                                      ("Movable", False), ("Device", False)]
    rec = recommended_min_free_kbytes(zones, pageblock_pages=512, page_size=4096)
    # khugepaged raised this machine's vm.min_free_kbytes to exactly this (THP madvise)
    assert rec.kbytes == int((MT / "this-vm/proc-sys-vm-min_free_kbytes").read_text()) == 67584
    assert rec.arithmetic == ("min(512 x 3 zones x (2 + 3 x 3) = 16896, 6141682 / 20 = 307084) pages x 4 KiB "
                              "= 67584 kB")


def test_two_node_zoneinfo_counts_populated_zones_of_both_nodes():
    zones = parse_zoneinfo((MT / "pcp-meminfo-root-007/proc-zoneinfo").read_text())
    rec = recommended_min_free_kbytes(zones, pageblock_pages=512, page_size=4096)
    assert rec.zones == ("node0/DMA", "node0/DMA32", "node0/Normal", "node1/Normal")
    assert rec.kbytes == 512 * 4 * 11 * 4 == 90112
    old = parse_zoneinfo((MT / "pcp-meminfo-root-002/proc-zoneinfo").read_text())  # 2016 format
    assert [f"{z.node}/{z.name}" for z in old] == ["0/DMA", "0/DMA32", "0/Normal", "1/Normal"]


def test_small_memory_is_capped_at_five_percent_of_lowmem():
    text = (MT / "this-vm/proc-zoneinfo").read_text()
    zones = [z._replace(managed=z.managed // 100) if z.managed else z for z in parse_zoneinfo(text)]
    rec = recommended_min_free_kbytes(zones, pageblock_pages=512, page_size=4096)
    assert rec.cap_pages < rec.wanted_pages and rec.kbytes == rec.cap_pages * 4
    assert "(capped)" in rec.arithmetic


@pytest.mark.parametrize("text", ["", "\0\0\xff garbage", "Node 0, zone Normal\n  pages free 3\n",
                                  "Node 99999, zone DMA\n present 1\n"])
def test_zoneinfo_that_is_not_one_is_an_error(text):
    with pytest.raises(ParseError):
        parse_zoneinfo(text)


def test_node_lists():
    assert parse_node_list("0-3\n") == (0, 1, 2, 3)
    assert parse_node_list("0,2-3") == (0, 2, 3)
    assert parse_node_list("\n") == ()
    for bad in ("0-4294967295", "x", "3-1"):
        with pytest.raises(ParseError):
            parse_node_list(bad)


# -- memory.thp_defrag ----------------------------------------------------------------------------------


def test_live_madvise_without_boot_write_passes(audit):
    out = audit("memory.thp_defrag", this_vm())
    assert out.status is Status.PASS
    assert out.message.startswith("THP defrag is 'madvise' (no boot-time write")
    assert out.evidence[0].observed == "always defer defer+madvise [madvise] never"
    assert "khugepaged/defrag" in out.evidence[1].source
    assert out.evidence[1].observed.startswith("1 (reported, not judged")
    text = observed(out)
    assert "QEMU_MADV_HUGEPAGE" in text and "no kernel parameter sets THP defrag" in text


def test_live_always_fails_with_runtime_write_and_tmpfiles_line(audit):
    out = audit("memory.thp_defrag", {**this_vm(), DEFRAG: ALWAYS})
    assert out.status is Status.FAIL and out.message == "THP defrag is 'always'"
    assert fix(out) == [
        "echo madvise > /sys/kernel/mm/transparent_hugepage/defrag",
        "mkdir -p /etc/tmpfiles.d",
        OUR_LINE,
    ]


def test_policy_that_allows_always_passes_it(audit):
    out = audit("memory.thp_defrag", {**this_vm(), DEFRAG: ALWAYS}, policy(thp_defrag_allowed=("always",)))
    assert out.status is Status.PASS


def test_configured_not_active(audit):
    tree = {**this_vm(), DEFRAG: ALWAYS,
            "etc/tmpfiles.d/thp.conf": "w /sys/kernel/mm/transparent_hugepage/defrag - - - - defer\n"}
    out = audit("memory.thp_defrag", tree)
    assert out.status is Status.WARN
    assert "boot-time write sets 'defer': configured, not active" in out.message
    assert fix(out) == ["echo defer > /sys/kernel/mm/transparent_hugepage/defrag"]


def test_vendor_tmpfiles_line_that_sets_always_is_lost_at_next_boot(audit, make_root):
    tree = {**this_vm(), "usr/lib/tmpfiles.d/10-tuned.conf":
            "d /run/tuned 0755 root root -\nw /sys/kernel/mm/transparent_hugepage/defrag - - - - always\n"}
    out = audit("memory.thp_defrag", tree)
    assert out.status is Status.WARN and "lost at next boot" in out.message
    assert fix(out) == [
        "mkdir -p /etc/tmpfiles.d",
        "sed -e 2d /usr/lib/tmpfiles.d/10-tuned.conf > /etc/tmpfiles.d/10-tuned.conf",
        "mkdir -p /etc/tmpfiles.d",
        OUR_LINE,
    ]


def test_image_fix_applied_then_reaudited_passes(audit, make_root):
    """The image's fix, run as the fix script runs it, leaves the vendor file's other lines and a
    boot-time write the re-audit passes."""
    tree = {"usr/lib/tmpfiles.d/10-tuned.conf":
            "d /run/tuned 0755 root root -\nw /sys/kernel/mm/transparent_hugepage/defrag - - - - always\n",
            "etc/os-release": trees.DEBIAN_OS_RELEASE}
    root = make_root(tree)
    out = run_check(CHECKS["memory.thp_defrag"], Host.from_root(str(root)), DEFAULT_POLICY)
    assert out.status is Status.FAIL and out.message == "THP defrag will be 'always' at boot"
    assert all('"$ROOT"' in c for c in fix(out) if not c.startswith("#"))
    run_fix(root, fix(out))
    assert (root / "etc/tmpfiles.d/10-tuned.conf").read_text() == "d /run/tuned 0755 root root -\n"
    again = run_check(CHECKS["memory.thp_defrag"], Host.from_root(str(root)), DEFAULT_POLICY)
    assert again.status is Status.PASS, again
    assert again.message == ("THP defrag will be 'madvise' at boot "
                             "(/etc/tmpfiles.d/hostaudit-thp-defrag.conf:1)")


def test_image_without_any_boot_write_is_skipped_with_the_reason(audit):
    out = audit("memory.thp_defrag", {"etc/os-release": trees.DEBIAN_OS_RELEASE})
    assert out.status is Status.SKIP
    assert "no tmpfiles.d or sysfs.d line writes THP defrag" in out.message
    assert "built-in default (madvise since Linux 4.6, commit e4a49efe4e7e; always before)" in out.message


def test_tmpfiles_precedence_earliest_name_wins_and_masks(make_root):
    line = "w /sys/kernel/mm/transparent_hugepage/defrag - - - - {}\n"
    root = make_root({
        "etc/tmpfiles.d/20-admin.conf": line.format("never"),
        "usr/lib/tmpfiles.d/10-vendor.conf": line.format("always"),
        "usr/lib/tmpfiles.d/30-masked.conf": line.format("always"),
        "etc/tmpfiles.d/30-masked.conf": Link("/dev/null"),
        "run/tmpfiles.d/20-admin.conf": line.format("defer"),  # hidden by the /etc file of the same name
    })
    writes = boot_writes(Host.from_root(str(root)), ["/sys/kernel/mm/transparent_hugepage/defrag"])
    assert [(w.source, w.value, w.applied) for w in writes] == [
        ("/usr/lib/tmpfiles.d/10-vendor.conf:1", "always", True),
        ("/etc/tmpfiles.d/20-admin.conf:1", "never", False),
    ]


def test_tmpfiles_line_forms():
    target = ["/sys/kernel/mm/transparent_hugepage/defrag"]
    text = ("# comment\n"
            "w- /sys/kernel/mm/transparent_hugepage*/defrag - - - - defer+madvise\n"
            "w~ /sys/kernel/mm/transparent_hugepage/defrag - - - - bWFkdmlzZQ==\n"
            "w^ /sys/kernel/mm/transparent_hugepage/defrag - - - - thp.defrag\n"
            "f /sys/kernel/mm/transparent_hugepage/defrag - - - - always\n"
            "w /sys/kernel/mm/transparent_hugepage/enabled - - - - never\n")
    got = tmpfiles_writes("/etc/tmpfiles.d/x.conf", text, target)
    assert [(w.lineno, w.value) for w in got] == [(2, "defer+madvise"), (3, "madvise"), (4, None)]


def test_sysfs_d_line_is_read_on_an_image(audit):
    tree = {"etc/sysfs.d/thp.conf": "mode kernel/mm/transparent_hugepage/defrag = 0644\n"
                                    "kernel/mm/transparent_hugepage/defrag = never\n"}
    out = audit("memory.thp_defrag", tree)
    assert out.status is Status.PASS and out.message == "THP defrag will be 'never' at boot (/etc/sysfs.d/thp.conf:2)"


def test_two_boot_writers_that_disagree_are_said(audit):
    tree = {"etc/sysfs.d/thp.conf": "kernel/mm/transparent_hugepage/defrag = never\n",
            "etc/tmpfiles.d/thp.conf": "w /sys/kernel/mm/transparent_hugepage/defrag - - - - always\n"}
    out = audit("memory.thp_defrag", tree)
    assert out.status is Status.FAIL and "two boot-time writers disagree" in out.message


def test_invalid_boot_value_is_rejected_by_the_kernel(audit):
    tree = {"etc/tmpfiles.d/thp.conf": "w /sys/kernel/mm/transparent_hugepage/defrag - - - - sometimes\n"}
    out = audit("memory.thp_defrag", tree)
    assert out.status is Status.FAIL and "the kernel rejects the write" in observed(out)


def test_rhel6_directory_is_judged(audit):
    tree = trees.centos6_tree(live=True)
    out = audit("memory.thp_defrag", tree)  # redhat_transparent_hugepage/defrag: [always] madvise never
    assert out.status is Status.FAIL
    assert fix(out) == [  # SysV init: no systemd-tmpfiles; rc.local runs last at boot
        "echo madvise > /sys/kernel/mm/redhat_transparent_hugepage/defrag",
        "grep -qsxF -- 'echo madvise > /sys/kernel/mm/redhat_transparent_hugepage/defrag' /etc/rc.d/rc.local || "
        "echo 'echo madvise > /sys/kernel/mm/redhat_transparent_hugepage/defrag' >> /etc/rc.d/rc.local",
    ]


def test_hostile_tmpfiles_files_do_not_break_the_check(audit):
    tree = {**this_vm(),
            "etc/tmpfiles.d/big.conf": b"w " + b"x" * (2 * 1024 * 1024),  # over the read cap: not read
            "etc/tmpfiles.d/bin.conf": bytes(range(256)) * 64,
            "etc/tmpfiles.d/fifo.conf": Link("/dev/zero")}
    out = audit("memory.thp_defrag", tree)
    assert out.status is Status.PASS


def test_no_brackets_is_an_error(audit):
    out = audit("memory.thp_defrag", {**this_vm(), DEFRAG: "always defer madvise never\n"})
    assert out.status is Status.ERROR


# -- memory.hugepages_numa ----------------------------------------------------------------------------


def test_single_node_passes_saying_so(audit):
    tree = this_vm()
    tree[f"{NODE}/node0/hugepages/hugepages-2048kB/nr_hugepages"] = "512\n"
    out = audit("memory.hugepages_numa", tree)
    assert out.status is Status.PASS
    assert out.message == "a single NUMA node with memory (node0) holds every huge page (512 x 2M): nothing to spread"


def test_kernel_without_numa_is_one_node(audit):
    tree = {k: v for k, v in this_vm().items() if not k.startswith(NODE)}
    tree["sys/devices/system/cpu/online"] = "0-1\n"
    out = audit("memory.hugepages_numa", tree)
    assert out.status is Status.PASS and out.message.startswith("no NUMA node directories")


def test_no_pool_is_skipped(audit):
    out = audit("memory.hugepages_numa", this_vm())
    assert out.status is Status.SKIP and "nothing to spread" in out.message


def test_four_nodes_evenly_pass(audit):
    out = audit("memory.hugepages_numa", pcp_numa(this_vm(), {0: 256, 1: 256, 2: 255, 3: 256}))
    assert out.status is Status.PASS
    assert out.message == "huge pages are spread over the 4 nodes with memory (1023 x 2M)"
    assert out.evidence[0].source == "/sys/devices/system/node/has_memory"


def test_a_node_without_pages_fails_with_per_node_writes_and_a_boot_pool(audit):
    out = audit("memory.hugepages_numa", pcp_numa(this_vm(), {0: 512, 1: 512, 2: 0, 3: 512}))
    assert out.status is Status.FAIL
    assert out.message.startswith("huge pages are not spread over the NUMA nodes (2M: node0 512, node1 512, node2 0, "
                                  "node3 512;")
    ev = next(e for e in out.evidence if e.source.endswith("hugepages-2048kB/nr_hugepages"))
    assert ev.observed == "2M: node0 512, node1 512, node2 0, node3 512 (total 1536, equal share 1536 / 4 = 384)"
    assert ev.expected == ">= 0.5 x 384 = 192 on every node with memory"
    commands = fix(out)
    assert commands[:5] == [
        "echo 384 > /sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages",
        "echo 384 > /sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages",
        "echo 384 > /sys/devices/system/node/node3/hugepages/hugepages-2048kB/nr_hugepages",
        "echo 1 > /proc/sys/vm/compact_memory",
        "echo 384 > /sys/devices/system/node/node2/hugepages/hugepages-2048kB/nr_hugepages",
    ]
    assert any("hugepagesz=2M hugepages=1536" in c for c in commands[5:])
    assert "all node balanced alloc" in out.remediation.notes


def test_node_format_on_the_command_line_is_replaced(audit):
    tree = pcp_numa(trees.debian12_live("hugepagesz=2M hugepages=0:1024,1:0,2:0,3:0"),
                    {0: 1024, 1: 0, 2: 0, 3: 0})
    tree.update({k: v for k, v in this_vm().items() if k.startswith(("proc/zoneinfo",))})
    out = audit("memory.hugepages_numa", tree)
    assert out.status is Status.FAIL
    assert "pins 2M pages per node (0:1024, 1:0, 2:0, 3:0)" in out.remediation.notes
    assert any("hugepages=1024" in c and "0:1024" not in c for c in fix(out))


def test_plain_count_on_the_command_line_is_not_rewritten(audit):
    tree = pcp_numa(trees.debian12_live("hugepagesz=2M hugepages=1024"), {0: 1024, 1: 0, 2: 0, 3: 0})
    out = audit("memory.hugepages_numa", tree)
    assert out.status is Status.FAIL
    assert "which the kernel spreads at boot" in out.remediation.notes
    assert all("hugepagesz" not in c for c in fix(out))


def test_policy_share_zero_accepts_any_spread(audit):
    out = audit("memory.hugepages_numa", pcp_numa(this_vm(), {0: 512, 2: 0}), policy(hugepages_numa_min_share=0.0))
    assert out.status is Status.PASS


def test_two_sizes_are_judged_each(audit):
    tree = pcp_numa(this_vm(), {0: 100, 1: 100, 2: 100, 3: 100})
    tree = pcp_numa(tree, {0: 4, 1: 0, 2: 0, 3: 0}, size_kb=1048576)
    tree.update({f"{NODE}/node{n}/hugepages/hugepages-2048kB/nr_hugepages": "100\n" for n in range(4)})
    out = audit("memory.hugepages_numa", tree)
    assert out.status is Status.FAIL and "1G: node0 4, node1 0, node2 0, node3 0" in out.message
    assert "2M:" not in out.message


def test_memoryless_node_is_not_counted(audit):
    tree = pcp_numa(this_vm(), {0: 512, 1: 512, 2: 512})
    tree[f"{NODE}/has_memory"] = "0-2\n"
    assert audit("memory.hugepages_numa", tree).status is Status.PASS


def test_image_is_not_judged(audit):
    out = audit("memory.hugepages_numa", {"etc/os-release": trees.DEBIAN_OS_RELEASE})
    assert out.status is Status.SKIP and "unbooted image" in out.message


def test_ten_thousand_node_directories_stay_bounded(audit, make_root):
    tree = this_vm()
    for i in range(10_000):
        tree[f"{NODE}/node{i}/hugepages/hugepages-2048kB/nr_hugepages"] = "1\n"
    root = make_root(tree)
    started = time.perf_counter()
    out = run_check(CHECKS["memory.hugepages_numa"], Host.from_root(str(root)), DEFAULT_POLICY)
    assert time.perf_counter() - started < 2.0
    assert out.status is Status.ERROR and "more than the kernel's MAX_NUMNODES (1024)" in out.message


def test_hostile_node_files(audit):
    tree = pcp_numa(this_vm(), {0: 512, 1: 512, 2: 512, 3: 512})
    tree[f"{NODE}/node1/meminfo"] = bytes(range(256)) * 100  # unreadable MemTotal: not needed
    assert audit("memory.hugepages_numa", tree).status is Status.PASS
    tree[f"{NODE}/has_memory"] = "0-4294967295\n"
    out = audit("memory.hugepages_numa", tree)
    assert out.status is Status.ERROR and "has_memory" in out.message
    tree[f"{NODE}/has_memory"] = "0-3\n"
    tree[f"{NODE}/node2/hugepages/hugepages-2048kB/nr_hugepages"] = "many\n"
    out = audit("memory.hugepages_numa", tree)
    assert out.status is Status.ERROR and "node2/hugepages/hugepages-2048kB/nr_hugepages" in out.message


def test_without_has_memory_nodes_with_memtotal_count(audit):
    tree = pcp_numa(this_vm(), {0: 512, 1: 512, 2: 512, 3: 0})
    del tree[f"{NODE}/has_memory"]
    out = audit("memory.hugepages_numa", tree)
    assert out.status is Status.FAIL
    assert out.evidence[0].source == "/sys/devices/system/node/node*/meminfo (MemTotal > 0)"


# -- memory.min_free_kbytes ---------------------------------------------------------------------------


def test_thp_on_is_not_applicable_with_the_reason(audit):
    out = audit("memory.min_free_kbytes", this_vm())
    assert out.status is Status.SKIP and out.not_applicable
    assert out.message == ("with THP on, khugepaged already raises vm.min_free_kbytes to its recommended value; "
                           "pools reserved at boot do not depend on it")
    assert out.evidence[0].observed == "THP enabled [madvise], hugepages-2048kB [inherit]: khugepaged runs"


def test_pmd_size_mthp_on_keeps_khugepaged_running(audit):
    tree = {**this_vm(thp="always madvise [never]\n"),
            "sys/kernel/mm/transparent_hugepage/hugepages-2048kB/enabled": "always inherit [madvise] never\n"}
    assert audit("memory.min_free_kbytes", tree).not_applicable


def test_runtime_growth_with_thp_on_passes_at_the_kernel_value(audit):
    out = audit("memory.min_free_kbytes", this_vm(), policy(hugepages_runtime_growth=True))
    assert out.status is Status.PASS
    assert out.message.startswith("vm.min_free_kbytes is 67584 kB, at least the 67584 kB khugepaged recommends")
    text = observed(out)
    assert "Linux 6.12.117: pageblock_nr_pages = 2^min(9, MAX_PAGE_ORDER 10) = 512" in text
    assert "recommended = min(512 x 3 zones x (2 + 3 x 3) = 16896, 6141682 / 20 = 307084) pages x 4 KiB" in text


def test_thp_never_below_recommended_fails(audit):
    tree = {**this_vm(thp="always madvise [never]\n"), "proc/sys/vm/min_free_kbytes": "11264\n"}
    out = audit("memory.min_free_kbytes", tree)
    assert out.status is Status.FAIL
    assert out.message == ("vm.min_free_kbytes is 11264 kB, below the 67584 kB the kernel's khugepaged formula "
                           "recommends (THP is off, so khugepaged does not raise vm.min_free_kbytes)")
    assert fix(out)[0] == "echo 67584 > /proc/sys/vm/min_free_kbytes"
    assert "vm.min_free_kbytes = 67584" in fix(out)[-1] and "/etc/sysctl.d/80-hugepages.conf" in fix(out)[-1]


def test_thp_never_at_the_value_but_not_persistent_warns(audit):
    out = audit("memory.min_free_kbytes", this_vm(thp="always madvise [never]\n"))
    assert out.status is Status.WARN and "lost at next boot" in out.message


def test_persistent_setting_below_recommended_warns(audit):
    tree = {**this_vm(), "etc/sysctl.d/90-vm.conf": "vm.min_free_kbytes = 4096\n"}
    out = audit("memory.min_free_kbytes", tree, policy(hugepages_runtime_growth=True))
    assert out.status is Status.WARN and "/etc/sysctl.d/90-vm.conf sets 4096: lost at next boot" in out.message
    assert "/etc/sysctl.d/90-vm.conf" in fix(out)[-1]


def test_configured_but_not_active(audit):
    tree = {**this_vm(thp="always madvise [never]\n"), "proc/sys/vm/min_free_kbytes": "11264\n",
            "etc/sysctl.d/90-vm.conf": "vm.min_free_kbytes = 90000\n"}
    out = audit("memory.min_free_kbytes", tree)
    assert out.status is Status.WARN and "configured, not active" in out.message
    assert fix(out) == ["echo 90000 > /proc/sys/vm/min_free_kbytes"]


def test_two_node_host_from_pcp(audit):
    tree = {**this_vm(thp="always madvise [never]\n"), "proc/sys/vm/min_free_kbytes": "45056\n",
            "proc/zoneinfo": MT / "pcp-meminfo-root-007/proc-zoneinfo"}
    out = audit("memory.min_free_kbytes", tree)
    assert out.status is Status.FAIL and "below the 90112 kB" in out.message
    assert "node0/DMA, node0/DMA32, node0/Normal, node1/Normal" in observed(out)


def test_min_free_image_is_not_judged(audit):
    assert audit("memory.min_free_kbytes", {"etc/os-release": trees.DEBIAN_OS_RELEASE}).status is Status.SKIP


@pytest.mark.parametrize("zoneinfo", [b"\x00\x01binary\xff" * 1000, b"Node 0, zone Normal\n present lots\n"])
def test_broken_zoneinfo_is_an_error_naming_it(audit, zoneinfo):
    tree = {**this_vm(thp="always madvise [never]\n"), "proc/zoneinfo": zoneinfo}
    out = audit("memory.min_free_kbytes", tree)
    assert out.status is Status.ERROR and "/proc/zoneinfo" in out.message


def test_huge_zoneinfo_is_refused_not_read(make_root):
    root = make_root({"proc/zoneinfo": b"x" * (33 * 1024 * 1024), "proc/self": b""})
    from audit.host.memtune import zoneinfo

    with pytest.raises(FactError, match="byte cap"):
        Host.from_root(str(root)).fact(zoneinfo)


# -- snapshots ------------------------------------------------------------------------------------------


def snapshot_host(root: Path) -> Host:
    from audit.capture import gather_patterns
    from audit.host.collect import collect_document, render_document
    from audit.host.snapshot import host_from_snapshot, parse_snapshot

    doc = collect_document(str(root), gather_patterns(entry_points=False))
    return host_from_snapshot(parse_snapshot(render_document(doc).encode()), name="host.json")


@pytest.mark.parametrize(("check_id", "tree", "pol"), [
    pytest.param("memory.thp_defrag", lambda: {**this_vm(), "usr/lib/tmpfiles.d/10-tuned.conf":
                                               "w /sys/kernel/mm/transparent_hugepage/defrag - - - - always\n"},
                 DEFAULT_POLICY, id="defrag-live"),
    pytest.param("memory.thp_defrag", lambda: {"etc/tmpfiles.d/thp.conf":
                                               "w /sys/kernel/mm/transparent_hugepage/defrag - - - - always\n"},
                 DEFAULT_POLICY, id="defrag-image"),
    pytest.param("memory.hugepages_numa", lambda: pcp_numa(this_vm(), {0: 512, 1: 512, 2: 0, 3: 512}),
                 DEFAULT_POLICY, id="numa"),
    pytest.param("memory.min_free_kbytes", lambda: {**this_vm(thp="always madvise [never]\n"),
                                                    "proc/sys/vm/min_free_kbytes": "11264\n"},
                 DEFAULT_POLICY, id="min-free"),
    pytest.param("memory.min_free_kbytes", this_vm, policy(hugepages_runtime_growth=True), id="min-free-growth"),
])
def test_a_snapshot_is_judged_like_the_host(make_root, check_id, tree, pol):
    root = make_root(tree())
    direct = run_check(CHECKS[check_id], Host.from_root(str(root)), pol)
    captured = run_check(CHECKS[check_id], snapshot_host(root), pol)
    assert (captured.status, captured.message, captured.evidence) == (direct.status, direct.message, direct.evidence)
    assert captured.status is not Status.ERROR


def test_registered_beside_the_builtins_without_clashes():
    from audit.engine import collect_checks
    from audit.plugins import DEFAULT_PLUGINS, make_plugins

    plugins = make_plugins(builtins=DEFAULT_PLUGINS, entry_points=False)
    declared, broken = collect_checks(plugins)
    assert not broken and not plugins.problems
    ours = {d.check.id: d.plugin for d in declared if d.plugin in ("checks.memtune", "checks.ksmusage")}
    assert ours == {"memory.thp_defrag": "checks.memtune", "memory.hugepages_numa": "checks.memtune",
                    "memory.min_free_kbytes": "checks.memtune", "ksm.effectiveness": "checks.ksmusage",
                    "ksm.ksmtuned_blind": "checks.ksmusage"}
