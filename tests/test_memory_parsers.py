"""meminfo, swaps, THP, KSM and sysfs huge page pools: parsers tested on strings and real samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.errors import ParseError
from audit.parsers.memory import (
    HugepagePool,
    KsmState,
    ThpSetting,
    parse_hugepage_dir_name,
    parse_int_file,
    parse_ksm_run,
    parse_ksm_state,
    parse_meminfo,
    parse_swaps,
    parse_thp_mode,
    parse_thp_setting,
    pools_from_values,
)

PROC = Path(__file__).parent / "data" / "proc"
KIB, MIB, GIB = 1024, 1024**2, 1024**3


def read(rel: str) -> str:
    return (PROC / rel).read_text(encoding="utf-8")


def sysfs_listing(rel: str) -> dict[str, str]:
    """The fixtures' ``name=value`` dumps of a sysfs directory; ``dir/`` lines are listings only."""
    values: dict[str, str] = {}
    for line in read(rel).splitlines():
        if line.endswith("/") and "=" not in line:
            continue
        name, _, value = line.partition("=")
        values[name] = value + "\n"  # sysfs files end in a newline
    return values


def by_dir(values: dict[str, str]) -> dict[str, dict[str, str]]:
    grouped: dict[str, dict[str, str]] = {}
    for name, text in values.items():
        directory, _, fname = name.rpartition("/")
        grouped.setdefault(directory, {})[fname] = text
    return grouped


# --- /proc/meminfo ----------------------------------------------------------------------------


def test_meminfo_this_vm_default_state():
    m = parse_meminfo(read("this-vm/meminfo"))
    assert m.mem_total == 24684092 * KIB
    assert m.swap_total == 0
    assert m.swap_free == 0
    assert m.anon_huge_pages == 0
    assert (m.hugepages_total, m.hugepages_free, m.hugepages_rsvd, m.hugepages_surp) == (0, 0, 0, 0)
    assert m.hugepagesize == 2 * MIB
    assert m.hugetlb == 0
    assert m.raw["Active(anon)"] == 1596 * KIB
    assert m.raw["VmallocTotal"] == 34359738367 * KIB


def test_meminfo_this_vm_with_2m_and_1g_pools():
    """HugePages_* count only the default 2M pool; the two 1G pages show up only in Hugetlb (#23)."""
    m = parse_meminfo(read("this-vm-hugepages/meminfo"))
    assert m.hugepages_total == 512
    assert m.hugepages_free == 512
    assert m.hugepagesize == 2 * MIB
    assert m.hugetlb == 3145728 * KIB
    assert m.hugetlb_other_sizes == 2 * GIB


def test_meminfo_hugepage_counts_are_never_scaled():
    """insights #1151 scaled HugePages_Rsvd by 1024 (field bug #22)."""
    m = parse_meminfo(
        "MemTotal: 1000 kB\nHugePages_Total: 64\nHugePages_Free: 60\n"
        "HugePages_Rsvd: 7\nHugePages_Surp: 3\nHugepagesize: 1048576 kB\n"
    )
    assert (m.hugepages_total, m.hugepages_free, m.hugepages_rsvd, m.hugepages_surp) == (64, 60, 7, 3)
    assert m.hugepagesize == GIB
    assert m.raw["HugePages_Rsvd"] == 7


def test_meminfo_before_4_16_has_no_hugetlb_line():
    m = parse_meminfo("MemTotal: 1000 kB\nHugePages_Total: 0\nHugepagesize: 2048 kB\n")
    assert m.hugetlb is None
    assert m.hugetlb_other_sizes is None
    assert m.swap_total is None  # absent is not zero


def test_meminfo_command_header_is_skipped():
    m = parse_meminfo("COMMAND> cat /proc/meminfo\nMemTotal:  2048 kB\n")
    assert m.mem_total == 2 * MIB
    assert "COMMAND> cat /proc/meminfo" not in m.raw


def test_meminfo_command_header_only_at_the_start():
    with pytest.raises(ParseError) as e:
        parse_meminfo("MemTotal:  2048 kB\nCOMMAND> cat /proc/meminfo\n")
    assert e.value.line == 2


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param("MemTotal: 1 kB\nthis is not meminfo\n", 2, id="no-colon"),
        pytest.param("MemTotal: 1 kB\nMemFree: lots kB\n", 2, id="not-a-number"),
        pytest.param("MemTotal: 1 kB\n\nMemFree: 1 MB\n", 3, id="unknown-unit"),
        pytest.param("MemTotal: 1 kB\nMemTotal: 2 kB\n", 2, id="duplicate"),
        pytest.param("MemTotal: 1 kB extra\n", 1, id="trailing-words"),
    ],
)
def test_meminfo_malformed_line_names_the_line(text, line):
    with pytest.raises(ParseError) as e:
        parse_meminfo(text)
    assert e.value.line == line


@pytest.mark.parametrize("text", ["", "\n\n", "COMMAND> cat /proc/meminfo\n"])
def test_meminfo_without_fields_is_an_error(text):
    with pytest.raises(ParseError):
        parse_meminfo(text)


# --- /proc/swaps ------------------------------------------------------------------------------


def test_swaps_header_only_is_no_swap():
    assert parse_swaps(read("this-vm/swaps")) == []


def test_swaps_devices_in_bytes_with_escaped_names():
    text = (
        "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
        "/dev/dm-1                               partition\t8388604\t\t1024\t\t-2\n"
        "/var/swap\\040file                       file\t\t1048572\t\t0\t\t10\n"
    )
    first, second = parse_swaps(text)
    assert first.filename == "/dev/dm-1"
    assert first.type == "partition"
    assert first.size == 8388604 * KIB
    assert first.used == MIB
    assert first.priority == -2
    assert first.line == 2
    assert second.filename == "/var/swap file"
    assert second.type == "file"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Filename Type Size Used Priority\n/swap file 10 0\n", id="missing-column"),
        pytest.param("Filename Type Size Used Priority\n/swap file 10k 0 -2\n", id="size-not-int"),
    ],
)
def test_swaps_malformed(text):
    with pytest.raises(ParseError) as e:
        parse_swaps(text)
    assert e.value.line == 2


def test_swaps_empty_text_is_a_broken_capture():
    with pytest.raises(ParseError):
        parse_swaps("")


# --- transparent huge pages ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "active", "choices"),
    [
        pytest.param("always [madvise] never\n", "madvise", ("always", "madvise", "never"), id="madvise"),
        pytest.param("[always] madvise never\n", "always", ("always", "madvise", "never"), id="always"),
        pytest.param("always madvise [never]", "never", ("always", "madvise", "never"), id="no-newline"),
        pytest.param(
            "always defer defer+madvise [madvise] never\n",
            "madvise",
            ("always", "defer", "defer+madvise", "madvise", "never"),
            id="defrag",
        ),
        pytest.param(
            "always within_size advise [never] deny force\n",
            "never",
            ("always", "within_size", "advise", "never", "deny", "force"),
            id="shmem_enabled",
        ),
        pytest.param(
            "always [inherit] madvise never\n",
            "inherit",
            ("always", "inherit", "madvise", "never"),
            id="mthp",
        ),
        pytest.param("always madvise never []\n", None, ("always", "madvise", "never"), id="empty-brackets"),
        pytest.param("always madvise never [ ]\n", None, ("always", "madvise", "never"), id="blank-brackets"),
        pytest.param("always madvise never\n", None, ("always", "madvise", "never"), id="no-brackets"),
    ],
)
def test_thp_setting(text, active, choices):
    assert parse_thp_setting(text) == ThpSetting(active=active, choices=choices)
    assert parse_thp_mode(text) == active


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("\n", id="newline-only"),
        pytest.param("[always] [never]\n", id="two-active"),
        pytest.param("always [madvise never\n", id="unbalanced"),
        pytest.param("always madvise] never\n", id="stray-close"),
        pytest.param("[always madvise] never\n", id="two-words-in-brackets"),
        pytest.param("always [madvise] never\nalways\n", id="two-lines"),
    ],
)
def test_thp_setting_malformed(text):
    with pytest.raises(ParseError):
        parse_thp_setting(text)


def test_thp_real_directory_every_selector_parses():
    values = sysfs_listing("this-vm/sys-kernel-mm-transparent_hugepage.txt")
    assert parse_thp_mode(values["enabled"]) == "madvise"
    assert parse_thp_mode(values["defrag"]) == "madvise"
    assert parse_thp_mode(values["shmem_enabled"]) == "never"
    assert parse_thp_mode(values["hugepages-2048kB/enabled"]) == "inherit"
    assert parse_int_file(values["hpage_pmd_size"]) == 2 * MIB
    mthp = {k: v for k, v in values.items() if k.startswith("hugepages-") and k.endswith("/enabled")}
    assert len(mthp) > 1
    for name, text in mthp.items():
        assert "inherit" in parse_thp_setting(text).choices, name
        parse_hugepage_dir_name(name.split("/")[0])


@pytest.mark.parametrize(
    ("text", "active"),
    [
        pytest.param("[always] madvise never\n", "always", id="enabled"),
        pytest.param("always madvise [never]\n", "never", id="defrag"),
        pytest.param("[yes] no\n", "yes", id="khugepaged-defrag"),
    ],
)
def test_thp_rhel6_redhat_transparent_hugepage_format(text, active):
    """Field bug #26: RHEL 6 uses /sys/kernel/mm/redhat_transparent_hugepage, same format."""
    assert parse_thp_mode(text) == active


def test_thp_shmem_can_be_always_while_enabled_is_never():
    """sos 5328a45b (field bug #25): each selector is its own fact."""
    assert parse_thp_mode("always madvise [never]\n") == "never"
    assert parse_thp_mode("[always] within_size advise never deny force\n") == "always"


# --- one-value files and KSM ------------------------------------------------------------------


def test_int_file_real_nr_hugepages():
    assert parse_int_file(read("this-vm-hugepages/proc-sys-vm-nr_hugepages")) == 512


@pytest.mark.parametrize(("text", "value"), [("0\n", 0), ("  42 \n", 42), ("-17\n", -17)])
def test_int_file(text, value):
    assert parse_int_file(text) == value


@pytest.mark.parametrize("text", ["", "\n", "abc\n", "1 2\n", "1\n2\n", "1.5\n"])
def test_int_file_malformed(text):
    with pytest.raises(ParseError):
        parse_int_file(text)


@pytest.mark.parametrize(("text", "value"), [("0\n", 0), ("1\n", 1), ("2", 2)])
def test_ksm_run(text, value):
    assert parse_ksm_run(text) == value


@pytest.mark.parametrize("text", ["", "\n", "3\n", "-1\n", "on\n", "1\n1\n", "01\n"])
def test_ksm_run_malformed(text):
    with pytest.raises(ParseError):
        parse_ksm_run(text)


def test_ksm_state_real_directory():
    state = parse_ksm_state(sysfs_listing("this-vm/sys-kernel-mm-ksm.txt"))
    assert state.run == 0
    assert not state.is_running
    assert state.pages_to_scan == 100
    assert state.sleep_millisecs == 20
    assert state.merge_across_nodes == 1
    assert state.pages_shared == 0
    assert state.pages_sharing == 0
    assert state.advisor_mode == "none"
    assert state.other["advisor_max_cpu"] == "70"


def test_ksm_state_absent_files_stay_none():
    """Files come and go with kernel versions: absent is not zero."""
    state = parse_ksm_state({"run": "1\n", "pages_sharing": "1200\n", "merge_across_nodes": None})
    assert state.is_running
    assert state.pages_sharing == 1200
    assert state.pages_shared is None
    assert state.merge_across_nodes is None
    assert parse_ksm_state({}) == KsmState()


def test_ksm_state_run_2_is_not_running():
    assert not parse_ksm_state({"run": "2\n"}).is_running


def test_ksm_state_bad_value_names_the_file():
    with pytest.raises(ParseError, match="pages_sharing"):
        parse_ksm_state({"run": "1\n", "pages_sharing": "many\n"})
    with pytest.raises(ParseError, match="run"):
        parse_ksm_state({"run": "5\n"})


# --- sysfs huge page pools ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("hugepages-2048kB", 2 * MIB),
        ("hugepages-1048576kB", GIB),
        ("hugepages-64kB", 64 * KIB),
        ("hugepages-2048kB/", 2 * MIB),
    ],
)
def test_hugepage_dir_name(name, size):
    assert parse_hugepage_dir_name(name) == size


@pytest.mark.parametrize("name", ["hugepages-2MB", "hugepages-kB", "hugepages-0kB", "node0", "hugepages-2048"])
def test_hugepage_dir_name_malformed(name):
    with pytest.raises(ParseError):
        parse_hugepage_dir_name(name)


def test_pools_real_2m_and_1g():
    pools = pools_from_values(by_dir(sysfs_listing("this-vm-hugepages/sys-kernel-mm-hugepages.txt")))
    assert pools == [
        HugepagePool(size=2 * MIB, nr=512, free=512, resv=0, surplus=0, overcommit=0),
        HugepagePool(size=GIB, nr=2, free=2, resv=0, surplus=0, overcommit=0),
    ]
    assert sum(p.total_bytes or 0 for p in pools) == 3145728 * KIB  # equals meminfo's Hugetlb


def test_pools_real_default_state_all_zero():
    pools = pools_from_values(by_dir(sysfs_listing("this-vm/sys-kernel-mm-hugepages.txt")))
    assert [(p.size, p.nr) for p in pools] == [(2 * MIB, 0), (GIB, 0)]


def test_pools_per_numa_node_uneven_and_without_resv():
    """Per-node dirs have nr/free/surplus only (field bug #23: uneven split)."""
    node0 = pools_from_values({"hugepages-1048576kB": {"nr_hugepages": "4\n", "free_hugepages": "4\n"}}, node=0)
    node1 = pools_from_values(
        {"hugepages-1048576kB": {"nr_hugepages": "0\n", "free_hugepages": "0\n", "surplus_hugepages": "0\n"}},
        node=1,
    )
    assert node0[0].node == 0 and node0[0].nr == 4 and node0[0].resv is None and node0[0].surplus is None
    assert node1[0].node == 1 and node1[0].nr == 0


def test_pools_bad_count_names_the_file():
    with pytest.raises(ParseError, match="hugepages-2048kB/nr_hugepages"):
        pools_from_values({"hugepages-2048kB": {"nr_hugepages": "x\n"}})


def test_pools_bad_directory_name():
    with pytest.raises(ParseError):
        pools_from_values({"demote": {}})
