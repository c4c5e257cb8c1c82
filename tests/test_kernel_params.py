"""The kernel parameter table (tools/gen_kernel_params.py -> audit/boot/data/kernel_params.json) and
the judgement of command lines against it, on the kernel's own files: kernel-parameters.txt and the
value parsers of the releases in tools/data/kernel_params, Debian 13's KVM modules."""

from __future__ import annotations

import importlib.util
import json
import lzma
from pathlib import Path

import pytest

from audit.boot.model import WATCHED_PARAMS, suspicious_params
from audit.boot.modinfo import builtin_modinfo, elf_modinfo, module_params
from audit.boot.params import ModuleParamsView, judge_params, load_table, parser_acts, series_of, with_accepted
from audit.host.core import Host
from audit.parsers.cmdline import tokenize
from tests.conftest import DATA, Dir

REPO = Path(__file__).resolve().parents[1]
INPUTS = REPO / "tools" / "data" / "kernel_params"
MODULES = DATA / "modules" / "debian13-6.12.117+deb13-cloud-amd64"
DEB13 = "6.12.117+deb13-cloud-amd64"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_kernel_params", REPO / "tools" / "gen_kernel_params.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def judge(cmdline: str, release: str | None, **kw: object) -> list[tuple[str, str]]:
    return [(f.level, f.message) for f in judge_params(tokenize(cmdline), release, watched=WATCHED_PARAMS, **kw)]


# -- the generator ----------------------------------------------------------------------------------


def test_the_generator_reproduces_the_committed_table():
    gen = _generator()
    assert gen.render(INPUTS) == (REPO / "audit" / "boot" / "data" / "kernel_params.json").read_text()


def test_every_release_records_where_it_came_from():
    table = json.loads((REPO / "audit" / "boot" / "data" / "kernel_params.json").read_text())
    releases = table["source"]["releases"]
    assert [r["series"] for r in releases] == ["3.10", "4.18", "5.4", "5.10", "5.15", "6.1", "6.6", "6.12", "6.18",
                                               "7.2", "7.3"]
    for r in releases:
        assert r["origin"] and r["documentation"].startswith("Documentation/")
        meta = json.loads((INPUTS / r["version"] / "release.json").read_text())
        assert meta["version"] == r["version"]
    assert "linux-doc-6.1" in releases[5]["origin"]


def test_kernel_parameters_txt_entries_and_not_the_legend():
    gen = _generator()
    names, prefixes = gen.doc_names((INPUTS / "7.2.13" / "kernel-parameters.txt").read_text())
    assert {"nospectre_v2", "spectre_v2", "transparent_hugepage_shmem", "transparent_hugepage_tmpfs",
            "amd_iommu", "intel_iommu", "iommu.passthrough", "kvm_intel.nested", "mitigations"} <= names
    # "kvm-{amd,intel}.enable_mediated_pmu=" names two parameters
    assert {"kvm_amd.enable_mediated_pmu", "kvm_intel.enable_mediated_pmu"} <= names
    assert "sysctl." in prefixes
    assert not {"ACPI", "KNL", "acpi_", "module.dyndbg"} & names
    old, _ = gen.doc_names((INPUTS / "3.10.65" / "kernel-parameters.txt").read_text())
    assert "modprobe" not in old and "Add" not in old  # the usage examples and the TODO at the end
    assert "nospectre_v2" not in old and "transparent_hugepage" in old


def test_value_parsers_are_derived_from_the_source():
    gen = _generator()
    old = gen.parse_parsers((INPUTS / "4.18.0" / "parsers.txt").read_text())
    new = gen.parse_parsers((INPUTS / "7.2.13" / "parsers.txt").read_text())
    # 4.18 scans every position of the value; 7.2 compares each comma-separated option's start
    assert old["amd_iommu"]["match"] == "substring"
    assert old["amd_iommu"]["keywords"] == ["force_isolation", "fullflush", "off"]
    assert new["amd_iommu"]["match"] == "prefix"
    assert {"force_enable", "pgtbl_v2", "irtcachedis", "v2_pgsizes_only"} <= set(new["amd_iommu"]["keywords"])
    assert "on" not in new["amd_iommu"]["keywords"]
    assert new["transparent_hugepage"] == {"keywords": ["always", "madvise", "never"], "match": "exact",
                                           "parser": "mm/huge_memory.c setup_transparent_hugepage"}
    assert new["iommu"]["number"] is True and new["iommu"]["ignored"] == ["allowdac", "forcesac", "nodac"]
    assert {"pt", "nopt", "off", "force", "soft"} <= set(new["iommu"]["keywords"])
    assert new["iommu"]["parser"].endswith("arch/x86/kernel/amd_gart_64.c gart_parse_options")
    assert {"on", "off", "igfx_off", "sm_on"} <= set(new["intel_iommu"]["keywords"])


def test_names_carry_the_releases_that_list_them():
    table = load_table()
    assert table.listed("mitigations") == ((5, 4), (7, 3))  # not in 4.18's list: added in 5.2
    assert table.listed("nospectre_v2") == ((4, 18), (7, 3))
    assert table.listed("transparent_hugepage_tmpfs") == ((6, 18), (7, 3))
    assert table.known("sysctl.vm.nr_hugepages")  # the documented sysctl.*= wildcard
    assert table.newest == (7, 3) and table.oldest == (3, 10)


@pytest.mark.parametrize(("release", "series"), [
    ("4.18.0-513.5.1.el8_9.x86_64", (4, 18)), ("6.1.0-13-amd64", (6, 1)), ("6.18.44-fc-v657", (6, 18)),
    ("5.14.0-570.18.1.el9_6.x86_64", (5, 14)), ("vmlinuz", None), (None, None),
])
def test_series_of_a_release(release, series):
    assert series_of(release) == series


# -- names --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cmdline", [
    "nospectre_v2",  # issue 10: was "did you mean spectre_v2?"
    "nospectre_v1 spectre_v2=off spectre_v2_user=off spec_store_bypass_disable=off",
    "transparent_hugepage_shmem=within_size transparent_hugepage_tmpfs=always",  # 6.13+ (issue: 6.12+, 6.14+)
    "kvm-intel.nested=1 kvm_amd.nested=1 iommu.passthrough=1 iommu.strict=0",
    "sysctl.vm.nr_hugepages=16",
])
def test_real_parameters_are_never_misspelt(cmdline):
    assert judge(cmdline, "7.2.13-amd64") == []
    assert suspicious_params(tokenize(cmdline)) == []


def test_real_command_lines_have_nothing_to_say():
    # RHEL 8 STIG /etc/default/grub (tests/data/grub), judged for RHEL 8's kernel, and the Proxmox host's
    stig = ("resume=/dev/mapper/rhel-swap rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap rhgb quiet fips=1 "
            "boot=UUID=f3f77ba4-ad96-4c72-956d-5ca8bc454c54 audit=1 audit_backlog_limit=8192 pti=on vsyscall=none "
            "page_poison=1 slub_debug=P")
    assert judge(stig, "4.18.0-513.5.1.el8_9.x86_64") == []
    assert judge("root=ZFS=rpool/ROOT/pve-1 boot=zfs intel_iommu=on quiet", "6.8.12-4-pve") == []
    rhel7 = ("root=/dev/mapper/rhel_team--area--222-root ro crashkernel=auto rd.lvm.lv=rhel_team-area-222/root "
             "rd.lvm.lv=rhel_team-area-222/swap rhgb quiet LANG=en_US.UTF-8")
    assert judge(rhel7, "3.10.0-327.el7.x86_64") == []


@pytest.mark.parametrize(("cmdline", "near"), [
    ("transparent_hugepages=never", "transparent_hugepage"),  # field note 18
    ("hugepagsz=1G", "hugepagesz"),
    ("default_hugepagez=1G", "default_hugepagesz"),
    ("iommu.passthru=1", "iommu.passthrough"),
    ("mitigation=off", "mitigations"),
])
def test_near_misses_are_misspelt_on_a_kernel_the_table_covers(cmdline, near):
    name = cmdline.split("=")[0]
    want = ("warn", f"'{name}' is not a kernel parameter (did you mean '{near}'?); the kernel ignores it")
    assert judge(cmdline, "6.1.0-13-amd64") == [want]
    assert judge(cmdline, None) == [want]


def test_a_short_name_is_not_matched_against_every_parameter():
    # "noht" (a 2.4-era option) is one letter from MIPS' "nohtw": no advice beats wrong advice
    assert judge("noht", "6.1.0-13-amd64") == []


def test_a_near_miss_on_a_kernel_newer_than_the_table_is_only_unknown():
    assert judge("transparent_hugepages=never", "7.5.0-1-amd64") == [
        ("info", "'transparent_hugepages' is unknown to hostaudit's table (kernel 7.5 is newer than the table's 7.3)")]
    assert suspicious_params(tokenize("transparent_hugepages=never"), "7.5.0-1-amd64") == []


def test_a_parameter_newer_than_the_kernel_is_possibly_ignored_never_a_failure():
    # RHEL 8's 4.18 accepts mitigations= (backported); mainline added it in 5.2
    assert judge("mitigations=off", "4.18.0-513.5.1.el8_9.x86_64") == [
        ("info", "'mitigations' is possibly ignored: added between 4.18 and 5.4 (kernel 4.18; distribution "
                 "kernels backport parameters)")]
    assert judge("transparent_hugepage_tmpfs=always", "6.12.117+deb13-cloud-amd64") == [
        ("info", "'transparent_hugepage_tmpfs' is possibly ignored: added between 6.12 and 6.18 (kernel 6.12; "
                 "distribution kernels backport parameters)")]
    assert judge("mitigations=off", "5.14.0-570.18.1.el9_6.x86_64") == []


def test_a_parameter_the_newest_kernels_no_longer_list_is_possibly_ignored():
    table = load_table()
    gone = [n for n, (_, last) in table.names.items() if last == (3, 10) and "." not in n]
    assert "acpi_serialize" in gone
    assert judge("acpi_serialize", "6.1.0-13-amd64") == [
        ("info", "'acpi_serialize' is possibly ignored: removed between 3.10 and 4.18 (kernel 6.1)")]


# -- values -------------------------------------------------------------------------------------------


def test_values_the_kernel_does_not_act_on():
    found = judge("amd_iommu=on iommu=1", "6.1.0-13-amd64")
    assert [lvl for lvl, _ in found] == ["warn", "warn"]
    assert found[0][1].startswith("amd_iommu=on: 'on' is not a value the kernel acts on (amd_iommu= accepts "
                                  "force_enable, force_isolation, fullflush, irtcachedis, off, pgtbl_v1, pgtbl_v2; "
                                  "drivers/iommu/amd/init.c parse_amd_iommu_options in 6.1)")
    assert found[0][1].endswith("the AMD IOMMU is on by default; only amd_iommu=off changes that")
    assert found[1][1].startswith("iommu=1: '1' does not enable an IOMMU: a number only sizes the legacy AMD GART "
                                  "remapping area")
    assert "pt" in found[1][1] and "nopt" in found[1][1]


@pytest.mark.parametrize("cmdline", [
    "intel_iommu=on iommu=pt", "intel_iommu=on,igfx_off", "intel_iommu=sm_on", "amd_iommu=off",
    "amd_iommu=fullflush,force_isolation", "iommu=off", "iommu=soft", "iommu=nopt", "iommu=pt,nomerge",
    "transparent_hugepage=madvise", "transparent_hugepage=never",
])
def test_values_the_kernel_acts_on(cmdline):
    assert judge(cmdline, "6.1.0-13-amd64") == []


def test_values_follow_the_kernel_release():
    # 4.18's parser looks for its keywords anywhere in the value: 'off' inside is acted on, 'on' is not
    assert judge("amd_iommu=fullflush,on", "4.18.0-513.5.1.el8_9.x86_64") == [
        ("warn", "amd_iommu=fullflush,on: 'on' is not a value the kernel acts on (amd_iommu= accepts force_isolation, "
                 "fullflush, off; drivers/iommu/amd_iommu_init.c parse_amd_iommu_options in 4.18); the AMD IOMMU "
                 "is on by default; only amd_iommu=off changes that")]
    # an option a later release acts on: possibly backported
    assert judge("amd_iommu=pgtbl_v2", "5.14.0-570.18.1.el9_6.x86_64") == [
        ("info", "amd_iommu=pgtbl_v2: possibly ignored: 'pgtbl_v2' was added between 5.15 and 6.1 (kernel 5.14; "
                 "distribution kernels backport options)")]
    assert judge("amd_iommu=pgtbl_v2", "6.6.0") == []


def test_a_value_parsed_only_to_be_ignored_and_an_exact_value():
    assert judge("iommu=nodac", "6.1.0-13-amd64") == [
        ("warn", "iommu=nodac: the kernel parses 'nodac' but ignores it (arch/x86/kernel/pci-dma.c iommu_setup, "
                 "arch/x86/kernel/amd_gart_64.c gart_parse_options in 6.1)")]
    assert judge("iommu=forcesac", "6.1.0-13-amd64") == []  # logged as ignored, but read as "force" (strncmp)
    found = judge("transparent_hugepage=enabled", "6.1.0-13-amd64")
    assert found[0][1].startswith("transparent_hugepage=enabled: 'enabled' is not a value the kernel acts on "
                                  "(transparent_hugepage= accepts always, madvise, never;")


def test_a_value_unknown_on_a_kernel_newer_than_the_table_is_info():
    assert judge("amd_iommu=newmode", "7.5.0") == [
        ("info", "amd_iommu=newmode: 'newmode' is unknown to hostaudit's table (kernel 7.5 is newer than the "
                 "table's 7.3)")]


def test_parser_acts_semantics():
    table = load_table()
    _, new = table.accepted("intel_iommu", (7, 2))
    assert parser_acts("on", new) and parser_acts("one", new)  # strncmp: the kernel reads "one" as "on"
    assert not parser_acts("1", new)
    _, old = table.accepted("amd_iommu", (4, 18))
    assert parser_acts("turnoff", old)  # 4.18 finds "off" anywhere
    assert table.accepted("intel_iommu", (2, 6))[0] == (3, 10)  # older than the table: its oldest


# -- module parameters ----------------------------------------------------------------------------------


def test_modinfo_of_real_modules():
    intel = elf_modinfo(lzma.decompress((MODULES / "kvm-intel.ko.xz").read_bytes()))
    assert b"name=kvm_intel" in intel
    assert any(e.startswith(b"parmtype=nested:") for e in intel)
    builtin = builtin_modinfo((MODULES / "modules.builtin.modinfo").read_bytes())
    assert len(builtin) > 100
    with pytest.raises(ValueError, match="not an ELF file"):
        elf_modinfo(b"\x28\xb5\x2f\xfd" + bytes(100))  # zstd magic


def kvm_tree(suffix: str = ".ko.xz", cmdline: str = "") -> dict:
    base = f"usr/lib/modules/{DEB13}"
    tree: dict = {"proc/sys/kernel/osrelease": DEB13 + "\n", "proc/cmdline": cmdline + "\n", "proc/self": Dir(),
                  f"{base}/modules.builtin.modinfo": MODULES / "modules.builtin.modinfo"}
    for m in ("kvm-intel", "kvm-amd"):
        data = (MODULES / f"{m}.ko.xz").read_bytes()
        if suffix == ".ko":
            data = lzma.decompress(data)
        tree[f"{base}/kernel/arch/x86/kvm/{m}{suffix}"] = data
    return tree


@pytest.mark.parametrize("suffix", [".ko.xz", ".ko"])
def test_module_params_fact_reads_the_kvm_modules(make_root, suffix):
    host = Host.from_root(str(make_root(kvm_tree(suffix))))
    mods = host.fact(module_params)
    assert {"nested", "ept", "enable_apicv"} <= mods.declared["kvm_intel"]
    assert "sev" not in mods.declared["kvm_amd"] and "avic" in mods.declared["kvm_amd"]
    assert mods.sources["kvm_intel"].endswith(f"kvm-intel{suffix}")
    assert "ignore_msrs" not in mods.declared.get("kvm", frozenset())  # kvm.ko is not in this tree


def test_module_parameters_are_judged_by_what_the_module_declares(make_root):
    mods = Host.from_root(str(make_root(kvm_tree()))).fact(module_params)
    found = judge("kvm-intel.nested=1 kvm_amd.sev=1 kvm_intel.nestd=1 kvm_amd.avic=1 rd.lvm.lv=vg/root",
                  DEB13, modules=mods)
    assert found == [
        ("warn", "'kvm_amd.sev': module kvm_amd declares no parameter 'sev' (it declares 17); the kernel ignores it"),
        ("warn", "'kvm_intel.nestd': module kvm_intel declares no parameter 'nestd' (did you mean "
                 "'kvm_intel.nested'? it declares 25); the kernel ignores it"),
    ]
    # without the modules a module parameter is not judged
    assert judge("kvm_amd.sev=1 kvm_intel.nestd=1", DEB13) == []


def test_a_zstd_module_is_not_judged(make_root):
    tree = kvm_tree()
    base = f"usr/lib/modules/{DEB13}/kernel/arch/x86/kvm"
    tree[f"{base}/kvm-amd.ko.zst"] = tree.pop(f"{base}/kvm-amd.ko.xz")
    mods = Host.from_root(str(make_root(tree))).fact(module_params)
    assert "kvm_amd" not in mods.declared
    assert "zstd" in mods.unjudged["kvm_amd"]
    assert judge("kvm_amd.sev=1", DEB13, modules=mods) == []


def test_module_view_defaults():
    view = ModuleParamsView(declared={}, unjudged={})
    assert judge("kvm_amd.sev=1", DEB13, modules=view) == []


def test_the_table_ships_in_the_wheel():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["tool"]["setuptools"]["package-data"]["audit.boot"] == ["data/*.json"]


def test_rejected_huge_page_values_say_what_is_accepted():
    assert with_accepted("hugepagesz=huge: not a size; ignored by the kernel") == (
        "hugepagesz=huge: not a size; ignored by the kernel (hugepagesz= accepts a page size the CPU has: 2M, or 1G "
        "with pdpe1gb, on x86-64)")
    assert with_accepted("hugepages=many: invalid (not a number); ignored, and the pool is cleared").endswith(
        "(hugepages= accepts a number of pages, or <node>:<pages>,... per NUMA node)")
    same = "hugepagesz=2M: no hugepages= follows it; no pages of that size"
    assert with_accepted(same) == same


def test_a_snapshot_carries_the_module_files(make_root):
    from audit.capture import gather_patterns
    from audit.host.collect import collect_document, render_document
    from audit.host.snapshot import host_from_snapshot, parse_snapshot

    root = make_root(kvm_tree(cmdline="kvm_amd.sev=1"))
    doc = collect_document(str(root), gather_patterns(entry_points=False))
    snap = host_from_snapshot(parse_snapshot(render_document(doc).encode()), name="test.json")
    assert snap.fact(module_params) == Host.from_root(str(root)).fact(module_params)
