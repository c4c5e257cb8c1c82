"""CPU model table and migration compatibility, on the real /proc/cpuinfo samples."""

from __future__ import annotations

import importlib.util
import itertools
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from audit.cpu import models as cm
from audit.errors import UsageError
from audit.parsers.cpuinfo import CpuInfo, parse_cpuinfo

DATA = Path(__file__).parent / "data"
CPU_MAP = DATA / "cpu_map"
ROOT = Path(__file__).resolve().parents[1]

SAMPLES = {
    "nehalem": "intel-xeon-x7550-nehalem-ex",
    "westmere": "intel-xeon-e5640-westmere-ep",
    "ivybridge": "intel-xeon-e5-2650v2-ivybridge-ep",
    "haswell": "intel-xeon-e5-2680v3-haswell-ep",
    "broadwell": "intel-xeon-e5-2690v4-broadwell-ep",
    "skylake": "intel-xeon-gold-6132-skylake-sp",
    "sapphirerapids": "intel-xeon-platinum-8480plus-sapphirerapids",
    "this-vm": "this-vm",
    "naples": "amd-epyc-7451-zen1-naples",
    "genoa": "amd-epyc-9654-zen4-genoa",
    "qemu-guest": "qemu-virtual-cpu-2.5-kvm-guest",
    # issue #10: RHEL 7 and Ubuntu kernels of other years, and a kernel newer than the flag table
    "epyc7301-rhel7": "amd-epyc-7301-zen1-rhel7",
    "ryzen5950x": "amd-ryzen9-5950x-zen3-ubuntu2004",
    "opteron6136-sl7": "amd-opteron-6136-k10-sl7",
    "arrowlake": "intel-core-ultra9-285-arrowlake-ubuntu2604",
}
AMD = {"naples", "genoa", "epyc7301-rhel7", "ryzen5950x", "opteron6136-sl7"}


def cpu(key: str) -> CpuInfo:
    return parse_cpuinfo((DATA / "cpuinfo" / f"{SAMPLES[key]}.txt").read_text(encoding="utf-8"))


# "a < b": every guest-visible feature of a is on b. Reasoned from the CPUs, not from the code:
# each Intel generation adds to the one before (Westmere: aes, pclmulqdq, 1G pages; Ivy Bridge:
# AVX, RDRAND, SMEP...; Haswell: AVX2, BMI, FMA; Broadwell: ADX, RDSEED, SMAP, and this host has
# TSX on; Skylake-SP: AVX-512, CLWB...). Sapphire Rapids and the Emerald Rapids guest have TSX
# off (Linux tsx=off default), so Broadwell/Skylake (TSX on) cannot move there, and they differ
# from each other (la57/waitpkg on the host, CET ibt in the newer guest kernel). Zen 4 has all of
# Zen 1. Intel hosts have self-snoop (ss) and AMD ones sse4a/clzero: never a subset either way.
# The QEMU 'qemu64' guest has only baseline features, which every host has; its vendor_id says
# GenuineIntel, so it is never compared with the AMD hosts (live migration across vendors is not
# supported: incompatible whatever the features).
# Issue #10: each AMD generation adds to the one before (Zen 3 adds clwb, vaes, rdpid...; Zen 4
# adds AVX-512); the RHEL 7 kernel of the EPYC 7301 prints perfctr_l2 for perfctr_llc and hides
# xsaves, so the Zen 1 host with a 5.x kernel (naples) has one feature it lacks. The K10 Opteron has
# 3DNow!, which Zen dropped, and lacks SSE4.1. Arrow Lake (no TSX, no AVX-512) has everything
# Haswell-EP (TSX off) has.
SUBSET_OF = [
    ("qemu-guest", "nehalem"), ("nehalem", "westmere"), ("westmere", "ivybridge"),
    ("ivybridge", "haswell"), ("haswell", "broadwell"), ("broadwell", "skylake"),
    ("haswell", "sapphirerapids"), ("haswell", "this-vm"), ("haswell", "arrowlake"),
    ("epyc7301-rhel7", "naples"), ("naples", "ryzen5950x"), ("ryzen5950x", "genoa"),
]


def _closure(pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
    le = set(pairs)
    while True:
        new = {(a, d) for (a, b) in le for (c, d) in le if b == c} - le
        if not new:
            return le
        le |= new


LE = _closure(SUBSET_OF)


def expected_verdict(a: str, b: str) -> cm.Verdict:
    if a == b:
        return cm.Verdict.IDENTICAL
    if (a in AMD) != (b in AMD):
        return cm.Verdict.INCOMPATIBLE
    return cm.Verdict.SUPERSET if (a, b) in LE else cm.Verdict.INCOMPATIBLE


@pytest.mark.parametrize(("a", "b"), list(itertools.product(SAMPLES, SAMPLES)))
def test_compare_every_pair_of_samples(a, b):
    ca, cb = cpu(a), cpu(b)
    result = cm.compare(ca.flags, cb.flags, a_vendor=cm.vendor_of(ca.vendor), b_vendor=cm.vendor_of(cb.vendor))
    assert result.verdict == expected_verdict(a, b)
    assert result.cross_vendor == ((a in AMD) != (b in AMD))
    assert result.unknown_a == result.unknown_b == ()  # every real sample's flags are known
    assert list(result.missing) == sorted(result.missing)
    if result.cross_vendor:
        assert result.model is None and "not supported" in result.recommendation
        assert "not supported" in result.notes[0]
    else:
        assert (result.verdict is cm.Verdict.INCOMPATIBLE) == bool(result.missing)
        assert result.model is not None and result.model.name in result.recommendation


def test_haswell_to_broadwell_and_back():
    h, b = cpu("haswell"), cpu("broadwell")
    forward = cm.compare(h.flags, b.flags, a_vendor="intel", b_vendor="intel")
    back = cm.compare(b.flags, h.flags, a_vendor="intel", b_vendor="intel")
    assert forward.verdict == "superset" and forward.missing == ()
    assert back.verdict == "incompatible"
    assert set(back.missing) == {"3dnowprefetch", "adx", "hle", "rdseed", "rtm", "smap"}
    assert back.model.name == "Haswell-noTSX-IBRS"  # the Haswell host has TSX disabled
    assert back.level == "x86-64-v3"
    assert "-cpu Haswell-noTSX-IBRS" in back.recommendation
    assert "do not use" in back.recommendation


def test_intel_and_amd_say_first_that_live_migration_across_vendors_is_not_supported():
    h, n = cpu("haswell"), cpu("naples")
    result = cm.compare(h.flags, n.flags, a_vendor="intel", b_vendor="amd")
    assert result.verdict == "incompatible" and result.cross_vendor
    assert result.notes[0] == "live migration between Intel (A) and AMD (B) hosts is not supported"
    assert result.model is None  # not a generic model with dozens of features on top
    assert result.recommendation.startswith("Live migration between Intel (A) and AMD (B) hosts is not supported")
    assert result.level == "x86-64-v3"
    # vendors come from vendor_id (Hygon is its own vendor), else from vendor-only flags
    assert cm.vendor_of("HygonGenuine") == "hygon" and cm.vendor_of(None, n.flags) == "amd"


@pytest.mark.parametrize(("key", "model"), [
    ("nehalem", "Nehalem"),
    ("westmere", "Westmere"),
    ("ivybridge", "IvyBridge-IBRS"),
    ("haswell", "Haswell-noTSX-IBRS"),
    ("broadwell", "Broadwell-IBRS"),
    ("skylake", "Skylake-Server-IBRS"),
    ("sapphirerapids", "Icelake-Server-v6"),
    ("this-vm", "Cascadelake-Server-v5"),
    ("naples", "EPYC-v4"),
    ("genoa", "EPYC-Genoa"),
    ("qemu-guest", "qemu64"),
    ("epyc7301-rhel7", "EPYC-IBPB"),  # EPYC-v4 needs xsaves, which the RHEL 7 kernel hides
    ("opteron6136-sl7", "Opteron_G3"),  # K10
    ("arrowlake", "Skylake-Client-v4"),  # no TSX, no AVX-512; Icelake-Client needs AVX-512
])
def test_newest_model_per_sample(key, model):
    c = cpu(key)
    assert cm.newest_model(c.flags, c.vendor_kind).name == model


@pytest.mark.parametrize(("key", "model"), [
    ("nehalem", "Nehalem"),
    ("westmere", "Westmere"),
    ("naples", "EPYC"),
    ("naples", "EPYC-IBPB"),
    ("genoa", "EPYC-Genoa"),
    ("genoa", "EPYC-Milan-v2"),
    ("skylake", "Skylake-Server"),
    ("skylake", "Skylake-Server-IBRS"),
    ("haswell", "Haswell-noTSX-IBRS"),
])
def test_sample_supports_its_own_generation(key, model):
    c = cpu(key)
    assert cm.missing_for(model, c.flags) == frozenset()
    assert model in {m.name for m in cm.supported_models(c.flags, c.vendor_kind)}


def test_why_some_samples_miss_their_own_generation():
    # Linux turns TSX off by default on Sapphire Rapids, and every SapphireRapids model has it.
    spr = cpu("sapphirerapids")
    assert cm.missing_for("SapphireRapids", spr.flags) == {"hle", "rtm"}
    assert cm.missing_for("SapphireRapids-v3", spr.flags) == {"hle", "rtm"}
    # GraniteRapids/SierraForest differ from it only in bits Linux never prints.
    assert {"amx_fp16", "prefetchiti"} <= cm.missing_for("GraniteRapids", spr.flags)
    assert {"cmpccxadd", "avx_ifma"} <= cm.missing_for("SierraForest", spr.flags)
    # The RHEL 7 kernel of the Skylake-SP sample shows neither pku nor xsaves.
    sky = cpu("skylake")
    assert cm.missing_for("Skylake-Server-v4", sky.flags) == {"pku"}
    assert cm.missing_for("Skylake-Server-v5", sky.flags) == {"pku", "xsaves"}
    # mpx is on this host but no model requires it any more.
    assert "mpx" in sky.flags and "mpx" not in cm.load_table().model("Skylake-Server-IBRS").features


def test_old_kernels_hide_sep_and_kvm_provides_x2apic():
    westmere = cpu("westmere")
    assert "sep" not in westmere.flags and "x2apic" not in westmere.flags
    gv = cm.guest_visible(westmere.flags)
    assert {"sep", "x2apic", "tsc_deadline_timer"} <= gv


def test_guest_visible_normalises_and_drops_host_only_flags():
    flags = ["LM", "spec_ctrl", "intel_stibp", "sse4.1", "pclmuldq", "hypervisor", "vmx", "constant_tsc",
             "mpx", "perfctr_l2", "ibp_disable", "some_future_isa"]
    gv = cm.guest_visible(flags)
    assert {"ibrs", "ibpb", "stibp", "sse4_1", "pclmulqdq", "sep", "pat"} <= gv
    assert not {"hypervisor", "vmx", "constant_tsc", "mpx", "spec_ctrl", "perfctr_llc", "ibp_disable"} & gv
    # a flag no table knows is neither a feature nor dropped: it is reported
    assert "some_future_isa" not in gv
    assert cm.unknown_flags(flags) == {"some_future_isa"}


def test_every_sample_flag_is_classified():
    table = cm.load_table()
    for key in SAMPLES:
        assert cm.unknown_flags(cpu(key).flags, table) == set(), key
        assert cm.normalise(cpu(key).flags, table) <= table.known, key


@pytest.mark.parametrize(("key", "level"), [
    ("qemu-guest", "x86-64-v1"), ("nehalem", "x86-64-v2"), ("ivybridge", "x86-64-v2"),
    ("haswell", "x86-64-v3"), ("naples", "x86-64-v3"), ("skylake", "x86-64-v4"),
    ("genoa", "x86-64-v4"), ("this-vm", "x86-64-v4"),
])
def test_x86_level(key, level):
    assert cm.x86_level(cpu(key).flags) == level


def test_x86_level_of_nothing():
    assert cm.x86_level([]) is None


def test_baseline_of_mixed_intel_generations_is_the_oldest():
    keys = ["nehalem", "westmere", "ivybridge", "haswell", "broadwell", "skylake"]
    pool = cm.baseline({k: cpu(k).flags for k in keys}, vendors={k: "intel" for k in keys})
    assert pool.model.name == "Nehalem"
    assert pool.level == "x86-64-v2"
    assert pool.vendor == "intel"
    assert pool.features == cm.guest_visible(cpu("nehalem").flags)
    # arch_capabilities is shared (KVM emulates it), but with no kernel release known it is assumed,
    # not added to the CPU definition
    assert set(pool.extra_features) == pool.features - pool.model.features - {"arch_capabilities"}
    assert pool.assumed == ("arch_capabilities",)
    by_name = {h.name: h for h in pool.hosts}
    assert by_name["nehalem"].lost == ()
    assert by_name["skylake"].model.name == "Skylake-Server-IBRS"
    assert {"avx512f", "aes", "avx2"} <= set(by_name["skylake"].lost)


def test_baseline_of_intel_and_amd_is_generic():
    keys = ["broadwell", "genoa"]
    pool = cm.baseline({k: cpu(k).flags for k in keys}, vendors={"broadwell": "intel", "genoa": "amd"})
    assert pool.vendor is None
    assert pool.model.name == "qemu64"
    assert pool.level == "x86-64-v3"
    assert {"avx2", "fma", "bmi2"} <= set(pool.extra_features)


def test_baseline_with_the_qemu_guest_has_no_vmx_and_only_qemu64():
    keys = ["haswell", "qemu-guest"]
    pool = cm.baseline({k: cpu(k).flags for k in keys}, vendors={k: "intel" for k in keys})
    assert pool.model.name == "qemu64"
    assert pool.level == "x86-64-v1"
    assert "vmx" not in pool.features
    assert "lahf_lm" in pool.extra_features
    assert dict((h.name, h.lost) for h in pool.hosts)["qemu-guest"] == ()


def test_baseline_guesses_vendors_from_flags():
    pool = cm.baseline({"h": cpu("haswell").flags, "b": cpu("broadwell").flags})
    assert pool.vendor == "intel" and pool.model.name == "Haswell-noTSX-IBRS"


def test_baseline_needs_hosts():
    with pytest.raises(ValueError):
        cm.baseline({})


def test_libvirt_xml_is_well_formed_and_complete():
    keys = ["skylake", "broadwell"]
    pool = cm.baseline({k: cpu(k).flags for k in keys}, vendors={k: "intel" for k in keys})
    root = ET.fromstring(cm.libvirt_xml(pool))
    assert root.tag == "cpu" and root.get("mode") == "custom" and root.get("match") == "exact"
    model = root.find("model")
    assert model.text == "Broadwell-IBRS" and model.get("fallback") == "forbid"
    required = {f.get("name") for f in root.findall("feature") if f.get("policy") == "require"}
    assert {"ss", "vme", "xsaveopt", "stibp"} <= required
    assert "spec-ctrl" not in required  # Broadwell-IBRS already has it


def test_libvirt_xml_disables_removed_and_nested_features():
    pool = cm.baseline({"s": cpu("skylake").flags}, vendors={"s": "intel"})
    assert pool.model.name == "Skylake-Server-IBRS"
    root = ET.fromstring(cm.libvirt_xml(pool))
    disabled = {f.get("name") for f in root.findall("feature") if f.get("policy") == "disable"}
    assert disabled == {"mpx"}
    genoa = cm.baseline({"g": cpu("genoa").flags}, vendors={"g": "amd"})
    root = ET.fromstring(cm.libvirt_xml(genoa))
    disabled = {f.get("name") for f in root.findall("feature") if f.get("policy") == "disable"}
    assert {"svm", "npt"} <= disabled
    assert root.findtext("vendor") == "AMD"


def test_libvirt_xml_comments_unnamed_features():
    pool = cm.baseline({"vm": cpu("this-vm").flags}, vendors={"vm": "intel"})
    text = cm.libvirt_xml(pool)
    ET.fromstring(text)
    assert "ibt" in pool.extra_features and "libvirt has no name for: ibt" in text


def test_qemu_cpu_arg():
    keys = ["haswell", "naples"]
    pool = cm.baseline({k: cpu(k).flags for k in keys}, vendors={"haswell": "intel", "naples": "amd"})
    arg = cm.qemu_cpu_arg(pool)
    parts = arg.split(",")
    assert parts[0] == "qemu64"
    assert {"+sse4.1", "+pclmulqdq", "+lahf-lm", "+avx2", "+ibpb"} <= set(parts)
    assert parts[-1] == "-svm"
    assert "+spec-ctrl" not in parts  # the AMD host has ibpb but no ibrs


def test_renderers_need_a_model():
    empty = cm.Baseline(features=frozenset(), model=None, level=None, vendor=None, hosts=(),
                        extra_features=())
    with pytest.raises(ValueError):
        cm.libvirt_xml(empty)
    with pytest.raises(ValueError):
        cm.qemu_cpu_arg(empty)


def test_unknown_model_is_a_usage_error():
    with pytest.raises(UsageError):
        cm.missing_for("Pentium-MMX-Turbo", [])


# ------------------------------------------------------------------------------------------
# The table itself
# ------------------------------------------------------------------------------------------
def test_table_names_every_generation_with_its_variants():
    models = cm.load_table().models
    for name in ("Nehalem", "Nehalem-IBRS", "Westmere", "SandyBridge", "IvyBridge", "Haswell",
                 "Haswell-noTSX", "Haswell-IBRS", "Haswell-noTSX-IBRS", "Broadwell-noTSX-IBRS",
                 "Skylake-Client-noTSX-IBRS", "Skylake-Server-noTSX-IBRS", "Cascadelake-Server",
                 "Icelake-Server-noTSX", "Cooperlake", "SapphireRapids", "GraniteRapids",
                 "Opteron_G1", "Opteron_G5", "EPYC", "EPYC-IBPB", "EPYC-Rome", "EPYC-Milan",
                 "EPYC-Genoa", "qemu64", "kvm64"):
        assert name in models
    assert models["EPYC-Genoa"].vendor == "amd" and models["GraniteRapids"].vendor == "intel"
    assert models["qemu64"].generic


def test_table_records_its_source():
    source = cm.load_table().source
    assert source["package"] == "libvirt-common"
    assert source["version"] and source["generated"]


def test_ranks_are_newest_first_per_vendor():
    table = cm.load_table()
    for line in ("intel", "amd"):
        ranked = table.ranked(line)
        assert [m.rank for m in ranked] == list(range(len(ranked)))
        generations = [m.generation for m in ranked if m.bits == 64 and m.family[0].isupper()]
        assert generations[0] == max(generations)
    intel = [m.family for m in table.ranked("intel")]
    assert intel.index("SapphireRapids") < intel.index("Skylake-Server") < intel.index("Haswell")
    assert intel.index("Haswell") < intel.index("Nehalem")
    amd = [m.family for m in table.ranked("amd")]
    assert amd.index("EPYC-Genoa") < amd.index("EPYC-Milan") < amd.index("EPYC") < amd.index("Opteron_G5")


def test_inheritance_resolves_aliases():
    table = cm.load_table()
    assert table.model("Haswell-v4").alias_of == "Haswell-noTSX-IBRS"
    assert table.model("Haswell-v4").features == table.model("Haswell-noTSX-IBRS").features
    assert table.model("Haswell-v4").vendor == "intel"


def test_levels_follow_the_psabi():
    levels = {lv.name: lv.features for lv in cm.load_table().levels}
    assert list(levels) == ["x86-64-v1", "x86-64-v2", "x86-64-v3", "x86-64-v4"]
    assert levels["x86-64-v1"] < levels["x86-64-v2"] < levels["x86-64-v3"] < levels["x86-64-v4"]
    assert levels["x86-64-v2"] - levels["x86-64-v1"] == {
        "cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"}
    assert {"avx2", "abm", "movbe", "fma", "bmi1", "bmi2", "f16c"} <= levels["x86-64-v3"]
    assert levels["x86-64-v4"] - levels["x86-64-v3"] == {
        "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}


def test_model_table_rows():
    rows = cm.model_table_rows("amd")
    assert rows[0][0] == "EPYC-Genoa"
    assert all(len(r) == len(cm.MODEL_TABLE_HEADERS) for r in rows)
    assert any(r[0] == "qemu64" for r in cm.model_table_rows())


def _generator():
    spec = importlib.util.spec_from_file_location("gen_cpu_models", ROOT / "tools" / "gen_cpu_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_table_matches_the_libvirt_xml_it_came_from():
    gen = _generator()
    doc = gen.build_table(CPU_MAP, source={})
    committed = cm.load_table()
    assert len(doc["models"]) == len(list(CPU_MAP.glob("x86_*.xml"))) - 2  # not features, vendors
    for name, fresh in doc["models"].items():
        model = committed.model(name)
        assert model.features == frozenset(fresh["features"]), name
        assert model.libvirt_features == frozenset(fresh["libvirt_features"]), name
        assert model.removed == frozenset(fresh["removed"]), name
        assert model.vendor == fresh["vendor"], name


def _xml_features(name: str) -> dict[str, dict]:
    """A model's features read straight from its XML file, following <model name=.../>."""
    root = ET.parse(CPU_MAP / f"x86_{name}.xml").getroot()
    model = root.find("model")
    feats: dict[str, dict] = {}
    for parent in model.findall("model"):
        feats.update(_xml_features(parent.get("name")))
    feats.update({f.get("name"): f.attrib for f in model.findall("feature")})
    return feats


@pytest.mark.parametrize("name", ["Nehalem", "Westmere", "Haswell", "Haswell-v4",
                                  "Skylake-Server-IBRS", "SapphireRapids", "EPYC", "EPYC-Genoa-v1",
                                  "qemu64", "Snowridge"])
def test_model_features_agree_with_libvirt_xml(name):
    table = cm.load_table()
    model = table.model(name)
    xml = _xml_features(name)
    assert model.libvirt_features == {f for f in xml if not f.startswith("vmx-")}
    assert model.removed == {f for f, a in xml.items() if a.get("removed") == "yes"}
    # every libvirt feature ends up required, disabled or documented as assumed
    mapped = cm.guest_visible(
        [f for f in xml if f not in model.removed and f not in model.not_compared
         and f not in model.assumed and not f.startswith("vmx-")])
    assert model.features <= mapped | set(table.kvm_provided)


def test_skylake_server_xml_marks_mpx_removed():
    assert _xml_features("Skylake-Server-IBRS")["mpx"].get("removed") == "yes"
    assert "mpx" in cm.load_table().model("Skylake-Server-IBRS").disable
