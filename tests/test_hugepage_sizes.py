"""Which huge page sizes a host's kernel can reserve, and the command line replayed with them
(issue #10 section 4): hugepagesz=1G on a CPU without pdpe1gb is rejected, the hugepages= after it
is ignored (Linux 4.7 and later) or given to the default size (older), the pools follow the CPU and
the kernel release, and boot.hugepages, memory.hugepages_fit, boot.params and cpu.pdpe1gb say so.

The CPUs are the real /proc/cpuinfo samples in tests/data/cpuinfo (the Nehalem-EX X7550 and the
QEMU "virtual CPU version 2.5" guest lack pdpe1gb; every other x86 sample has it, the Westmere-EP
E5640 included), the kernel configs the real ones in tests/data/kconfig."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.capture import gather_patterns
from audit.engine import collect_checks, run_check
from audit.host.collect import collect_document, render_document
from audit.host.core import Host
from audit.host.pagesizes import ARM64_SIZES, PageSizes, hugepage_sizes, replay, series
from audit.host.snapshot import host_from_snapshot, parse_snapshot
from audit.model import Outcome, Status, replace
from audit.parsers.cmdline import tokenize
from audit.plugins import make_plugins
from audit.policy import DEFAULT_POLICY, Policy
from tests import trees
from tests.conftest import DATA, cpuinfo_sample, kconfig_sample

K, M, G = 1 << 10, 1 << 20, 1 << 30
CHECKS = {d.check.id: d.check for d in collect_checks(make_plugins(entry_points=False))[0]}
NO_PDPE1GB = ("intel-xeon-x7550-nehalem-ex.txt", "qemu-virtual-cpu-2.5-kvm-guest.txt")
X86_SAMPLES = sorted(p.name for p in (DATA / "cpuinfo").glob("*.txt") if not p.name.startswith("arm64-"))
ARM64_RELEASE = "6.1.0-47-arm64"
ARM64_CONFIG = "debian12-config-6.1.0-47-arm64"
NEHALEM = "intel-xeon-x7550-nehalem-ex.txt"
BROADWELL = "intel-xeon-e5-2690v4-broadwell-ep.txt"


@pytest.fixture
def audit(make_root):
    def run(check_id: str, tree: dict, policy: Policy = DEFAULT_POLICY) -> Outcome:
        return run_check(CHECKS[check_id], Host.from_root(str(make_root(tree))), policy)

    return run


@pytest.fixture
def sizes_of(make_root):
    def get(tree: dict) -> PageSizes:
        return Host.from_root(str(make_root(tree))).fact(hugepage_sizes)

    return get


def observed(outcome: Outcome) -> str:
    return "\n".join(f"{e.source}: {e.observed}" for e in outcome.evidence)


def without_1g_pool(tree: dict) -> dict:
    """A CPU without pdpe1gb has no 1 GiB hstate: sysfs has no hugepages-1048576kB directory."""
    return {k: v for k, v in tree.items() if "hugepages-1048576kB" not in k}


def nehalem_live(params: str) -> dict:
    return without_1g_pool(trees.debian12_live(params, cpuinfo=NEHALEM))


def arm64_image(params: str = "", config: str | Path = ARM64_CONFIG) -> dict:
    """A Debian 12 arm64 image: the real arm64 kernel config, grub.cfg regenerated with ``params``."""
    tree = trees.debian12_tree(params, params)
    tree = {k: v for k, v in tree.items() if not k.startswith("boot/config-") and not k.startswith("boot/vmlinuz-")}
    grub = trees.debian12_grub_cfg(params).replace("6.1.0-13-amd64", ARM64_RELEASE)
    tree.update({"boot/grub/grub.cfg": grub, f"boot/vmlinuz-{ARM64_RELEASE}": "kernel image\n",
                 f"boot/config-{ARM64_RELEASE}": config if isinstance(config, Path) else kconfig_sample(config)})
    return tree


def arm64_granule_config(tmp_path: Path, granule: str) -> Path:
    """The real Debian arm64 config switched to another granule. No 16K/64K sample is at hand: the
    choice is arch/arm64/Kconfig's "Page size" (ARM64_4K_PAGES / ARM64_16K_PAGES / ARM64_64K_PAGES,
    ARM64_PAGE_SHIFT 12/14/16), which RHEL's kernel-64k build sets to 64K."""
    text = kconfig_sample(ARM64_CONFIG).read_text()
    shift = {"16K": 14, "64K": 16}[granule]
    assert "CONFIG_ARM64_4K_PAGES=y\n" in text and "CONFIG_ARM64_PAGE_SHIFT=12\n" in text
    text = text.replace("CONFIG_ARM64_4K_PAGES=y\n",
                        f"# CONFIG_ARM64_4K_PAGES is not set\nCONFIG_ARM64_{granule}_PAGES=y\n")
    path = tmp_path / f"config-{granule}"
    path.write_text(text.replace("CONFIG_ARM64_PAGE_SHIFT=12\n", f"CONFIG_ARM64_PAGE_SHIFT={shift}\n"))
    return path


# -- the sizes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sample", X86_SAMPLES)
def test_x86_sizes_follow_pdpe1gb_in_each_real_cpuinfo(sizes_of, sample):
    sizes = sizes_of(trees.live_tree(cpuinfo=sample))
    assert sizes.arch == "x86_64" and sizes.default_size == 2 * M and sizes.source == "/proc/cpuinfo"
    if sample in NO_PDPE1GB:
        assert sizes.accepted == {2 * M} and sizes.why_not(G) == "this CPU has no pdpe1gb"
    else:
        assert sizes.accepted == {2 * M, G} and not sizes.conditional


def test_the_westmere_sample_has_pdpe1gb(sizes_of):
    # the issue named the Westmere-EP E5640 as lacking it: its cpuinfo lists pdpe1gb on every CPU
    text = cpuinfo_sample("intel-xeon-e5640-westmere-ep.txt").read_text()
    assert all("pdpe1gb" in line.split() for line in text.splitlines() if line.startswith("flags"))
    assert G in sizes_of(trees.live_tree(cpuinfo="intel-xeon-e5640-westmere-ep.txt")).accepted


def test_an_image_cpu_is_unknown_so_1g_depends_on_it(sizes_of):
    sizes = sizes_of(trees.debian12_tree())
    assert sizes.accepted == {2 * M} and sizes.conditional == {G: "a CPU with pdpe1gb"}
    assert "predicted" in sizes.observed


def test_a_snapshot_knows_its_cpu(make_root):
    root = make_root(nehalem_live("hugepagesz=1G hugepages=16"))
    doc = collect_document(str(root), gather_patterns(entry_points=False))
    host = host_from_snapshot(parse_snapshot(render_document(doc).encode()), name="test.json")
    sizes = host.fact(hugepage_sizes)
    assert sizes.accepted == {2 * M} and not sizes.conditional
    out = run_check(CHECKS["boot.params"], host, DEFAULT_POLICY)
    assert ("next boot: hugepagesz=1G: rejected, this CPU has no pdpe1gb; the following hugepages=16 is ignored "
            "(Linux >= 4.7)") in out.message


def test_arm64_4k_granule_from_the_real_debian_config(sizes_of):
    sizes = sizes_of(arm64_image())
    assert sizes.arch == "arm64"
    assert sizes.accepted == {64 * K, 2 * M, 32 * M, G} and sizes.default_size == 2 * M
    assert sizes.source == f"/boot/config-{ARM64_RELEASE}"


@pytest.mark.parametrize(("granule", "accepted", "default"), [
    ("16K", {2 * M, 32 * M, G}, 32 * M),
    ("64K", {2 * M, 512 * M, 16 * G}, 512 * M),
])
def test_arm64_other_granules(sizes_of, tmp_path, granule, accepted, default):
    sizes = sizes_of(arm64_image(config=arm64_granule_config(tmp_path, granule)))
    assert sizes.accepted == accepted and sizes.default_size == default
    assert ARM64_SIZES[{"16K": 16 * K, "64K": 64 * K}[granule]] == (accepted, default)


def test_arm64_live_without_a_config_reads_the_granule_from_meminfo(sizes_of):
    tree = trees.live_tree(cpuinfo="arm64-raspberrypi4-cortex-a72-debian.txt", release=ARM64_RELEASE)
    sizes = sizes_of(tree)  # this-vm's meminfo: Hugepagesize 2048 kB, the 4K granule's PMD
    assert sizes.arch == "arm64" and sizes.accepted == ARM64_SIZES[4 * K][0] and sizes.source == "/proc/meminfo"


def test_an_unknown_architecture_accepts_what_the_parser_does(sizes_of):
    sizes = sizes_of({"boot/grub/grub.cfg": trees.debian12_grub_cfg("hugepagesz=1G hugepages=4")})
    assert sizes.arch is None and sizes.accepted is None and sizes.valid() is None


# -- the command line replayed ------------------------------------------------------------------------

NO_1G = PageSizes(arch="x86_64", accepted=frozenset({2 * M}), rejected={G: "this CPU has no pdpe1gb"},
                  default_size=2 * M, source="/proc/cpuinfo")


def pools(line: str, release: str | None, sizes: PageSizes = NO_1G) -> dict[int, int]:
    return {s: n for s, n in replay(tokenize(line), sizes, release).request.pools.items() if n}


@pytest.mark.parametrize(("release", "expected", "note"), [
    ("6.1.0-13-amd64", {}, "hugepagesz=1G: rejected, this CPU has no pdpe1gb; the following hugepages=16 is "
                           "ignored (Linux >= 4.7)"),
    ("4.7.4", {}, "hugepagesz=1G: rejected, this CPU has no pdpe1gb; the following hugepages=16 is ignored "
                  "(Linux >= 4.7)"),
    ("4.4.0-210-generic", {2 * M: 16}, "hugepagesz=1G: rejected, this CPU has no pdpe1gb; the following "
                                       "hugepages=16 is given to the 2M default (Linux < 4.7)"),
    (None, {}, "hugepagesz=1G: rejected, this CPU has no pdpe1gb; the following hugepages=16 is ignored (Linux >= "
               "4.7; before 4.7 it was given to the 2M default)"),
])
def test_a_rejected_hugepagesz_by_kernel_release(release, expected, note):
    r = replay(tokenize("quiet hugepagesz=1G hugepages=16"), NO_1G, release)
    assert pools("quiet hugepagesz=1G hugepages=16", release) == expected
    assert r.notes == (note,) and r.problems == (note,) and r.rejected == {G}


@pytest.mark.parametrize(("release", "expected", "tail"), [
    ("5.15.0-25-generic", {}, "is ignored (Linux >= 5.8)"),
    ("5.4.0-42-generic", {2 * M: 16}, "is given to the 2M default (Linux < 5.8)"),
    ("4.18.0-513.el8.x86_64", {2 * M: 16}, "is given to the 2M default (Linux < 5.8)"),
])
def test_a_rejected_default_hugepagesz_changed_in_5_8(release, expected, tail):
    # 5.7 kept default_hugepagesz= in a variable and reverted it in hugetlb_init; 5.8 rejects it at parse time
    r = replay(tokenize("default_hugepagesz=1G hugepages=16"), NO_1G, release)
    assert pools("default_hugepagesz=1G hugepages=16", release) == expected
    assert r.notes == (f"default_hugepagesz=1G: rejected, this CPU has no pdpe1gb; the following hugepages=16 {tail}",)
    assert r.request.default_size == 2 * M


def test_the_rhel9_line_keeps_the_default_size_on_a_cpu_without_pdpe1gb():
    r = replay(tokenize(trees.EL9_KERNELOPTS), NO_1G, trees.EL9_RELEASE)
    assert pools(trees.EL9_KERNELOPTS, trees.EL9_RELEASE) == {}
    assert r.notes == ("default_hugepagesz=1G: rejected, this CPU has no pdpe1gb; the default size stays 2M",
                       "hugepagesz=1G: rejected, this CPU has no pdpe1gb; the following hugepages=8 is ignored "
                       "(Linux >= 4.7)")


def test_before_4_7_the_count_goes_to_the_pool_named_before_it():
    line = "hugepagesz=2M hugepages=512 hugepagesz=1G hugepages=16"
    assert pools(line, "6.1.0") == {2 * M: 512}
    r = replay(tokenize(line), NO_1G, "4.4.0")
    assert pools(line, "4.4.0") == {2 * M: 512}  # a second hugepages= for the 2M hstate: ignored
    assert "hugepages=16: hugepages= given twice without a hugepagesz= between; ignored" in r.problems


def test_before_5_8_an_explicit_default_count_beats_one_before_any_size():
    # hugetlb_init before 5.8: "if (!default_hstate.max_huge_pages) default_hstate.max_huge_pages = ..."
    line = "hugepages=16 hugepagesz=2M hugepages=512"
    assert pools(line, "6.1.0") == {2 * M: 16}
    assert pools(line, "5.4.0") == {2 * M: 512}
    r = replay(tokenize(line), NO_1G, "5.4.0")
    assert r.problems[-1] == ("hugepages=16 before any hugepagesz= loses to hugepages=512 for the 2M default (Linux "
                              "< 5.8: an explicit count for the default size wins)")


def test_a_size_x86_never_has_names_the_sizes_it_has():
    r = replay(tokenize("hugepagesz=256M hugepages=4"), NO_1G, "6.1.0")
    assert r.notes == ("hugepagesz=256M: rejected, x86-64 has no 256M pages (2M); the following hugepages=4 is "
                       "ignored (Linux >= 4.7)",)


def test_an_image_pool_depends_on_the_cpu(sizes_of):
    sizes = sizes_of(trees.debian12_tree())
    line = "hugepagesz=2M hugepages=512 hugepagesz=1G hugepages=16"
    r = replay(tokenize(line), sizes, "6.1.0-13-amd64")
    assert r.request.pools == {2 * M: 512, G: 16} and r.without is not None and r.without.pools == {2 * M: 512}
    assert r.notes == () and r.depends == {G}
    assert r.conditional == ("hugepagesz=1G: only on a CPU with pdpe1gb (the CPU this system boots on is not known "
                             "here); without it, the following hugepages=16 is ignored (Linux >= 4.7)",)


def test_arm64_sizes_replayed(sizes_of, tmp_path):
    four_k = sizes_of(arm64_image())
    assert pools("hugepagesz=32M hugepages=8 hugepagesz=1G hugepages=2", ARM64_RELEASE, four_k) == {32 * M: 8, G: 2}
    r = replay(tokenize("hugepagesz=512M hugepages=2"), four_k, ARM64_RELEASE)
    assert r.notes == ("hugepagesz=512M: rejected, arm64 with this granule has no 512M pages (64K, 2M, 32M, 1G); "
                       "the following hugepages=2 is ignored (Linux >= 4.7)",)
    sixty_four = sizes_of(arm64_image(config=arm64_granule_config(tmp_path, "64K")))
    assert pools("hugepages=4", ARM64_RELEASE, sixty_four) == {512 * M: 4}  # the default is the 512M PMD
    assert pools("hugepagesz=1G hugepages=2", ARM64_RELEASE, sixty_four) == {}


def test_series():
    assert series("4.18.0-513.el8.x86_64") == (4, 18) and series("6.1.0-13-amd64") == (6, 1) and series("x") is None


# -- the checks ---------------------------------------------------------------------------------------


def test_boot_hugepages_does_not_count_a_pool_the_cpu_cannot_have(audit):
    out = audit("boot.hugepages", nehalem_live("hugepagesz=1G hugepages=16"))
    assert out.status is Status.FAIL
    assert out.message.startswith("no huge page pool is reserved (neither on the boot command line nor in sysctl "
                                  "files)")
    assert out.message.endswith("; hugepagesz=1G: rejected, this CPU has no pdpe1gb; the following hugepages=16 is "
                                "ignored (Linux >= 4.7)")
    assert "/proc/cpuinfo: no pdpe1gb: 2M huge pages only (the kernel rejects hugepagesz=1G)" in observed(out)


def test_boot_hugepages_keeps_the_2m_pool_next_to_a_rejected_1g_one(audit):
    # the collecting machine's 512 x 2M reserved (this-vm-hugepages), on the Nehalem-EX: no 1G hstate
    tree = without_1g_pool(trees.debian12_live("hugepagesz=2M hugepages=512 hugepagesz=1G hugepages=16",
                                               "this-vm-hugepages", cpuinfo=NEHALEM))
    out = audit("boot.hugepages", tree)
    assert out.status is Status.PASS
    assert out.message == ("reserved persistently and active: 512 x 2M; hugepagesz=1G: rejected, this CPU has no "
                           "pdpe1gb; the following hugepages=16 is ignored (Linux >= 4.7)")


def test_boot_hugepages_on_an_old_kernel_gives_the_count_to_the_default(audit):
    # CentOS 6 (2.6.32) on the Nehalem-EX: mainline before 4.7 gave the hugepages= to the 2M default.
    # (Red Hat may have backported 4.7's change to its 2.6.32: hostaudit reads a release as its series.)
    tree = trees.centos6_tree(live=True, params="hugepagesz=1G hugepages=4")
    tree["proc/cpuinfo"] = cpuinfo_sample(NEHALEM)
    out = audit("boot.params", without_1g_pool(tree))
    assert ("next boot: hugepagesz=1G: rejected, this CPU has no pdpe1gb; the following hugepages=4 is given to the "
            "2M default (Linux < 4.7)") in out.message
    assert ("running kernel: hugepagesz=1G: rejected, this CPU has no pdpe1gb; the following hugepages=4 is given to "
            "the 2M default (Linux < 4.7)") in out.message


def test_boot_params_names_the_ignored_tokens(audit):
    out = audit("boot.params", nehalem_live("default_hugepagesz=1G hugepagesz=1G hugepages=16"))
    assert out.status is Status.WARN
    for label in ("next boot", "running kernel"):
        assert (f"{label}: default_hugepagesz=1G: rejected, this CPU has no pdpe1gb; the default size stays 2M"
                in out.message)
        assert (f"{label}: hugepagesz=1G: rejected, this CPU has no pdpe1gb; the following hugepages=16 is ignored "
                "(Linux >= 4.7)") in out.message
    assert "does not follow a valid hugepagesz" not in out.message  # said once, by the note


def test_boot_params_on_an_image_says_the_1g_pool_depends_on_the_cpu_as_info(audit):
    out = audit("boot.params", trees.debian12_tree(booted="hugepagesz=1G hugepages=16"))
    assert out.status is Status.PASS
    assert ("(info: next boot: hugepagesz=1G: only on a CPU with pdpe1gb (the CPU this system boots on is not known "
            "here); without it, the following hugepages=16 is ignored (Linux >= 4.7))") in out.message


def test_an_image_pool_is_counted_and_said_to_depend_on_the_cpu(audit):
    out = audit("boot.hugepages", trees.debian12_tree(booted="hugepagesz=2M hugepages=512 hugepagesz=1G hugepages=16"))
    assert out.status is Status.PASS
    assert out.message == ("reserved at boot: 512 x 2M, 16 x 1G (predicted: the 1G pool needs a CPU with pdpe1gb, "
                           "and the CPU it boots on is not known here; on a CPU without it: 512 x 2M)")
    assert "x86-64 (the CPU is not known here): 2M pages; 1G pages only on a CPU with pdpe1gb" in observed(out)


def test_fit_does_not_count_memory_that_will_never_be_reserved(audit):
    # 32 x 1G on the 24G machine: a failure where the CPU has pdpe1gb, nothing to fit where it has not
    assert audit("memory.hugepages_fit", trees.debian12_live("hugepagesz=1G hugepages=32", cpuinfo=BROADWELL)
                 ).status is Status.FAIL
    out = audit("memory.hugepages_fit", nehalem_live("hugepagesz=1G hugepages=32"))
    assert out.status is Status.SKIP
    assert out.message == ("no huge page pool is configured or reserved: nothing to fit; next boot: hugepagesz=1G: "
                           "rejected, this CPU has no pdpe1gb; the following hugepages=32 is ignored (Linux >= 4.7)")


def test_a_policy_size_the_cpu_cannot_have_is_said_so(audit):
    policy = replace(DEFAULT_POLICY, hugepages_size=G, hugepages_count=4)
    out = audit("boot.hugepages", nehalem_live("hugepagesz=1G hugepages=4"), policy)
    assert out.status is Status.FAIL
    assert out.message.startswith("the policy wants 1G pages, which this kernel cannot reserve here: this CPU has no "
                                  "pdpe1gb")
    assert out.remediation is not None and out.remediation.commands[0].startswith("# choose a huge page size")


def test_pdpe1gb_configured_for_the_next_boot_is_not_in_use(audit):
    tree = trees.debian12_live("", cpuinfo=BROADWELL)
    tree["boot/grub/grub.cfg"] = trees.debian12_grub_cfg("hugepagesz=1G hugepages=4")
    out = audit("cpu.pdpe1gb", tree)
    assert out.status is Status.PASS
    assert out.message == "1 GiB pages supported (pdpe1gb) and configured for the next boot"
    booted = audit("cpu.pdpe1gb", trees.debian12_live("hugepagesz=1G hugepages=4", cpuinfo=BROADWELL))
    assert booted.message == "1 GiB pages supported (pdpe1gb) and in use"


def test_pdpe1gb_is_not_applicable_on_arm64(audit):
    tree = trees.live_tree(cpuinfo="arm64-aws-graviton2-neoverse-n1.txt", release=ARM64_RELEASE)
    tree[f"boot/config-{ARM64_RELEASE}"] = kconfig_sample(ARM64_CONFIG)
    out = audit("cpu.pdpe1gb", tree)
    assert out.status is Status.SKIP and out.not_applicable
    assert out.message == "not applicable on arm64: cpu.pdpe1gb applies to x86_64"


def test_arm64_image_pool_of_a_size_the_granule_lacks(audit):
    out = audit("boot.hugepages", arm64_image("hugepagesz=32M hugepages=64 hugepagesz=512M hugepages=2"))
    assert out.status is Status.PASS
    assert out.message.startswith("reserved at boot: 64 x 32M; hugepagesz=512M: rejected, arm64 with this granule "
                                  "has no 512M pages (64K, 2M, 32M, 1G)")
