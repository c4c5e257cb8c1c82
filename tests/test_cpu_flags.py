"""Issue #10, section 3 and two bullets of section 6: CPU flag names across kernels.

- The kernel flag table (audit/cpu/data/cpu_flags.json, tools/gen_cpu_flags.py): every name the
  kernels' cpufeatures.h print, old names read as today's (RHEL 7's perfctr_l2), names only a
  distribution kernel prints (ibp_disable); a flag nobody knows is reported, not counted.
- Hosts of different vendors: "live migration across vendors is not supported", first.
- Feature names side by side where libvirt spells them differently; one quote style in the XML.
- +arch-capabilities only where KVM is known to give it; otherwise assumed, and the output says so.

Samples are real /proc/cpuinfo files (tests/data/README.md records their sources). Where a case has
no real sample (a flag no kernel table knows), the test says where the case comes from and derives
its input from a real sample.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from audit.cpu import models as cm
from audit.engine import run_check
from audit.host.core import Host
from audit.model import Status
from audit.parsers.cpuinfo import parse_cpuinfo
from checks.cpumodel import cpu_baseline
from tests.conftest import cpuinfo_sample
from tests.test_check_cpu_baseline import policy
from tests.test_snapshot import hostaudit

ROOT = Path(__file__).resolve().parents[1]
COMPARE_SCHEMA = json.loads((ROOT / "reports/schemas/cpu-compare-v1.json").read_text())
BASELINE_SCHEMA = json.loads((ROOT / "reports/schemas/cpu-baseline-v1.json").read_text())

EPYC7301_RHEL7 = "amd-epyc-7301-zen1-rhel7.txt"  # issue #10's host A (RHEL 7: perfctr_l2)
RYZEN5950X = "amd-ryzen9-5950x-zen3-ubuntu2004.txt"  # issue #10's host B
OPTERON_SL7 = "amd-opteron-6136-k10-sl7.txt"  # RHEL 7 rebuild on K10: ibp_disable
ARROWLAKE = "intel-core-ultra9-285-arrowlake-ubuntu2604.txt"  # a kernel newer than the flag table
NAPLES = "amd-epyc-7451-zen1-naples.txt"  # Zen 1 on a 5.x kernel: perfctr_llc
HASWELL = "intel-xeon-e5-2680v3-haswell-ep.txt"
BROADWELL = "intel-xeon-e5-2690v4-broadwell-ep.txt"
THIS_VM = "this-vm.txt"


def flags(sample: str) -> frozenset[str]:
    return parse_cpuinfo(cpuinfo_sample(sample).read_text()).flags


def compare(a: str | Path, b: str | Path, *, text: bool = False) -> tuple[int, dict, str]:
    """Exit code, JSON document and (with text=True) text output of cpu compare A B."""
    a, b = (str(x if isinstance(x, Path) else cpuinfo_sample(x)) for x in (a, b))
    js = hostaudit("cpu", "compare", a, b, "--format", "json")
    assert js.returncode in (0, 1), js.stderr
    doc = json.loads(js.stdout)
    jsonschema.validate(doc, COMPARE_SCHEMA)
    if not text:
        return js.returncode, doc, ""
    out = hostaudit("cpu", "compare", a, b)
    assert out.returncode == js.returncode
    return js.returncode, doc, out.stdout


def with_flags(tmp_path: Path, sample: str, *, add: tuple[str, ...] = (), drop: tuple[str, ...] = ()) -> Path:
    """A copy of a real sample whose flags lines gain or lose words."""
    lines = []
    for line in cpuinfo_sample(sample).read_text().splitlines(keepends=True):
        if re.match(r"flags\s*:", line):
            head, _, words = line.partition(":")
            kept = [w for w in words.split() if w not in drop]
            line = f"{head}: {' '.join([*kept, *add])}\n"
        lines.append(line)
    out = tmp_path / f"{sample}+{'+'.join(add)}-{'-'.join(drop)}.txt"
    out.write_text("".join(lines))
    return out


# ------------------------------------------------------------------------------------------------
# The example and its real neighbours
# ------------------------------------------------------------------------------------------------
def test_epyc_7301_on_rhel7_to_ryzen_5950x_is_a_superset():
    """Issue #10: 'an EPYC 7301 on RHEL 7 -> Ryzen 9 5950X is "incompatible" (exit 1) only because
    of the old name; the right verdict is "B is a superset" (exit 0)'."""
    assert "perfctr_l2" in flags(EPYC7301_RHEL7) and "perfctr_llc" in flags(RYZEN5950X)
    code, doc, text = compare(EPYC7301_RHEL7, RYZEN5950X, text=True)
    assert code == 0 and doc["verdict"] == "superset" and doc["migration_safe"] is True
    assert doc["missing"] == [] and doc["unknown"] == {"a": [], "b": []}
    assert "verdict: B is a superset" in text
    # Zen 3 adds instructions Zen 1 lacks; the way back is refused for them, not for a name
    assert {"clwb", "rdpid", "vaes", "vpclmulqdq"} <= set(doc["extra"])
    back, doc_back, _ = compare(RYZEN5950X, EPYC7301_RHEL7)
    assert back == 1 and doc_back["verdict"] == "incompatible"
    assert "perfctr_llc" not in doc_back["missing"] and "perfctr_l2" not in doc_back["extra"]


def test_old_and_new_names_of_one_counter_are_the_same_flag():
    table = cm.load_table()
    assert cm.normalise(["perfctr_l2"], table) == {"perfctr_llc"}
    # Zen 1 under RHEL 7 and under a 5.x kernel: the RHEL 7 host has nothing the other lacks
    code, doc, _ = compare(EPYC7301_RHEL7, NAPLES)
    assert code == 0 and doc["verdict"] == "superset"
    # the RHEL 7 kernel does not print xsaves on this CPU: that one is a real difference
    code, doc, _ = compare(NAPLES, EPYC7301_RHEL7)
    assert code == 1 and doc["missing"] == ["xsaves"]


def test_a_flag_only_rhel7_prints_is_known_and_not_a_guest_feature():
    table = cm.load_table()
    opteron = flags(OPTERON_SL7)
    assert {"ibp_disable", "retpoline_amd"} <= opteron
    assert cm.unknown_flags(opteron, table) == set()
    assert "ibp_disable" not in cm.guest_visible(opteron, table)
    assert table.kernel.vendor_only["ibp_disable"]["guest_visible"] is False
    # K10 -> Zen 1: only 3DNow!, which Zen dropped, is missing, not RHEL 7's own flags
    code, doc, _ = compare(OPTERON_SL7, EPYC7301_RHEL7)
    assert code == 1 and doc["missing"] == ["3dnow", "3dnowext"]
    code, doc, _ = compare(OPTERON_SL7, OPTERON_SL7)
    assert code == 0 and doc["verdict"] == "identical"


def test_names_a_newer_kernel_prints_are_known_through_the_model_table():
    """The Ubuntu 26.04 kernel prints sha512, sm3, sm4, avx_vnni_int8, ... which Linux 7.2.13 (the
    table's newest header) hides or lacks; the model table already expects those names."""
    table = cm.load_table()
    arrow = flags(ARROWLAKE)
    newer = {"sha512", "sm3", "sm4", "avx_vnni_int8", "avx_ne_convert", "avx_vnni_int16"}
    assert newer <= arrow
    assert not any(table.kernel.flags.get(f, {}).get("shown_by") for f in newer)
    assert cm.unknown_flags(arrow, table) == set()
    assert newer <= cm.guest_visible(arrow, table)


# ------------------------------------------------------------------------------------------------
# Unknown flags: reported as unknown, counted neither way
# ------------------------------------------------------------------------------------------------
# No real sample shows a flag that no kernel in the table prints (the newest sample, Arrow Lake on
# Ubuntu 26.04, only shows names the model table expects). The case is a kernel newer than the
# table printing a new name: it is made by adding an invented name to a real sample's flags.
NEW_NAME = "zz_isa_from_a_newer_kernel"


def test_a_flag_nobody_knows_on_a_makes_the_verdict_undecided(tmp_path):
    newer = with_flags(tmp_path, RYZEN5950X, add=(NEW_NAME,))
    code, doc, text = compare(newer, RYZEN5950X, text=True)
    assert code == 1 and doc["verdict"] == "undecided" and doc["migration_safe"] is False
    assert doc["unknown"] == {"a": [NEW_NAME], "b": []}
    assert NEW_NAME not in doc["missing"] and doc["missing"] == doc["extra"] == []
    assert "verdict: undecided" in text
    assert "flags hostaudit does not know (Linux 7.2.13, 6.12.117, 6.1.170, 3.10.0-1160.el7" in text
    assert NEW_NAME in text and any(NEW_NAME in n and "not printed by any kernel" in n for n in doc["notes"])
    assert doc["model"] == "EPYC-Rome-v3" and NEW_NAME not in doc["qemu"]  # a named model leaves it out
    # on B only, it does not make A -> B unsafe; it is still reported
    code, doc, _ = compare(RYZEN5950X, newer)
    assert code == 0 and doc["verdict"] == "identical" and doc["unknown"] == {"a": [], "b": [NEW_NAME]}
    # missing features still decide: Zen 3 with the new name -> Zen 1 is incompatible, not undecided
    code, doc, _ = compare(newer, EPYC7301_RHEL7)
    assert code == 1 and doc["verdict"] == "incompatible"


def test_a_name_mainline_hides_is_unknown_and_says_so(tmp_path):
    """msr_spec_ctrl is X86_FEATURE_MSR_SPEC_CTRL, hidden by every mainline header in the table: a
    kernel that prints it (as RHEL 7 prints spec_ctrl) is not in the table."""
    odd = with_flags(tmp_path, NAPLES, add=("msr_spec_ctrl",))
    assert cm.unknown_flags(flags(NAPLES) | {"msr_spec_ctrl"}) == {"msr_spec_ctrl"}
    code, doc, _ = compare(odd, NAPLES)
    assert code == 1 and doc["verdict"] == "undecided"
    assert any("X86_FEATURE_MSR_SPEC_CTRL is defined but hidden by Linux 7.2.13" in n for n in doc["notes"])


def test_baseline_and_models_report_unknown_flags(tmp_path):
    newer = with_flags(tmp_path, RYZEN5950X, add=(NEW_NAME,))
    out = hostaudit("cpu", "baseline", str(newer), str(cpuinfo_sample(NAPLES)), "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    jsonschema.validate(doc, BASELINE_SCHEMA)
    assert [h["unknown"] for h in doc["hosts"]] == [[NEW_NAME], []]
    assert NEW_NAME not in doc["features"]
    text = hostaudit("cpu", "baseline", str(newer), str(cpuinfo_sample(NAPLES))).stdout
    assert "flags hostaudit does not know" in text and NEW_NAME in text
    models = json.loads(hostaudit("cpu", "models", "--host", str(newer), "--format", "json").stdout)
    assert models["host"]["unknown"] == [NEW_NAME]
    assert models["flag_source"]["current"] == "7.2.13"


def test_the_check_reports_unknown_flags(make_root, tmp_path):
    root = make_root({"proc/cpuinfo": with_flags(tmp_path, HASWELL, add=(NEW_NAME,))})
    outcome = run_check(cpu_baseline, Host.from_root(str(root)), policy("Haswell-noTSX"))
    assert outcome.status is Status.PASS
    assert f"flags hostaudit does not know (not counted): {NEW_NAME}" in outcome.evidence[0].observed


# ------------------------------------------------------------------------------------------------
# Different vendors
# ------------------------------------------------------------------------------------------------
def test_different_vendors_say_first_that_live_migration_is_not_supported():
    code, doc, text = compare(EPYC7301_RHEL7, HASWELL, text=True)
    assert code == 1 and doc["verdict"] == "incompatible" and doc["cross_vendor"] is True
    assert doc["model"] is doc["qemu"] is doc["libvirt"] is None  # no 67-feature generic model
    assert doc["notes"][0] == "live migration between AMD (A) and Intel (B) hosts is not supported"
    lines = text.splitlines()
    assert lines[3] == "verdict: incompatible: live migration between AMD (A) and Intel (B) hosts is not supported"
    assert "qemu64" not in text and "<cpu" not in text
    assert doc["recommendation"].startswith("Live migration between AMD (A) and Intel (B) hosts is not supported")
    assert doc["a"]["vendor"] == "amd" and doc["b"]["vendor"] == "intel"


def test_a_mixed_pool_still_gets_a_generic_model_with_the_warning_first():
    out = hostaudit("cpu", "baseline", str(cpuinfo_sample(BROADWELL)), str(cpuinfo_sample(RYZEN5950X)))
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert lines[3].startswith("note: hosts of different vendors (AMD, Intel): live migration between them is "
                               "not supported")
    assert "newest named model every host supports: qemu64" in out.stdout


# ------------------------------------------------------------------------------------------------
# Names side by side; one quote style
# ------------------------------------------------------------------------------------------------
def test_feature_names_show_the_libvirt_spelling_beside_the_cpuinfo_one():
    _, doc, text = compare(OPTERON_SL7, EPYC7301_RHEL7, text=True)
    assert {"pclmulqdq", "sse4_1", "sse4_2"} <= set(doc["extra"])
    assert doc["libvirt_names"]["pclmulqdq"] == "pclmuldq" and doc["libvirt_names"]["sse4_1"] == "sse4.1"
    assert all(k != v for k, v in doc["libvirt_names"].items())
    assert "pclmulqdq / pclmuldq" in text and "sse4_1 / sse4.1" in text and "sse4_2 / sse4.2" in text
    assert "xsave," in text or "xsave\n" in text  # the same in both: shown once
    out = hostaudit("cpu", "baseline", str(cpuinfo_sample(HASWELL)), str(cpuinfo_sample(BROADWELL)),
                    "--format", "json")
    doc = json.loads(out.stdout)
    assert doc["libvirt_names"]["sse4_1"] == "sse4.1" and doc["libvirt_names"]["tsc_deadline_timer"] == "tsc-deadline"
    text = hostaudit("cpu", "baseline", str(cpuinfo_sample(HASWELL)), str(cpuinfo_sample(BROADWELL))).stdout
    assert "tsc_deadline_timer / tsc-deadline" in text


@pytest.mark.parametrize("pool", [(HASWELL, BROADWELL), (EPYC7301_RHEL7, RYZEN5950X), (BROADWELL, NAPLES),
                                  (THIS_VM,), (ARROWLAKE, HASWELL)])
def test_libvirt_xml_uses_one_quote_style(pool):
    out = hostaudit("cpu", "baseline", *(str(cpuinfo_sample(s)) for s in pool), "--format", "libvirt")
    assert out.returncode == 0
    assert '"' not in out.stdout  # every attribute in single quotes, as the <cpu> element itself
    root = ET.fromstring(out.stdout)
    assert all(f.get("name") for f in root.findall("feature"))


# ------------------------------------------------------------------------------------------------
# +arch-capabilities only where KVM gives it
# ------------------------------------------------------------------------------------------------
def _snapshot(make_root, tmp_path: Path, sample: str | Path, release: str) -> Path:
    src = sample if isinstance(sample, Path) else cpuinfo_sample(sample)
    root = make_root({"proc/cpuinfo": src, "proc/sys/kernel/osrelease": release + "\n",
                      "etc/hostname": f"{Path(src).stem[:20]}\n"})
    out = tmp_path / f"{Path(src).stem}-{release}.json"
    assert hostaudit("collect", "--root", str(root), "-o", str(out), "--no-entry-points").returncode == 0
    return out


def test_arch_capabilities_is_assumed_when_the_kernels_are_unknown():
    code, doc, text = compare(HASWELL, BROADWELL, text=True)
    assert code == 0 and doc["assumed"] == ["arch_capabilities"]
    assert "arch-capabilities" not in doc["qemu"] and "arch-capabilities" not in doc["libvirt"]
    assert any(n.startswith("arch-capabilities (arch_capabilities) is assumed, not known: KVM gives it to every "
                            "guest from Linux 5.1 on (A: running kernel unknown; B: running kernel unknown)")
               for n in doc["notes"])
    assert "assumed, not added: arch_capabilities / arch-capabilities" in text


def test_arch_capabilities_is_suggested_where_every_kernel_gives_it(make_root, tmp_path):
    a = _snapshot(make_root, tmp_path, HASWELL, "6.1.0-56-amd64")
    b = _snapshot(make_root, tmp_path, BROADWELL, "5.14.0-570.18.1.el9_6.x86_64")
    code, doc, text = compare(a, b, text=True)
    assert code == 0 and doc["assumed"] == []
    assert doc["a"]["kernel_release"] == "6.1.0-56-amd64"
    assert ",+arch-capabilities," in doc["qemu"] and "name='arch-capabilities'" in doc["libvirt"]
    assert "kernel 6.1.0-56-amd64" in text


def test_arch_capabilities_is_not_given_by_rhel7_kvm_to_a_cpu_without_it(make_root, tmp_path):
    """RHEL 7.9's KVM (3.10.0-1160.el7 arch/x86/kvm/cpuid.c) masks CPUID 7 EDX with the host's own:
    an AMD host, which has no IA32_ARCH_CAPABILITIES, gives guests none."""
    a = _snapshot(make_root, tmp_path, EPYC7301_RHEL7, "3.10.0-1160.el7.x86_64")
    b = _snapshot(make_root, tmp_path, RYZEN5950X, "5.14.14-arch1-1")
    code, doc, _ = compare(a, b)
    assert code == 0 and doc["verdict"] == "superset" and doc["assumed"] == ["arch_capabilities"]
    assert "arch-capabilities" not in doc["qemu"]
    note = next(n for n in doc["notes"] if n.startswith("arch-capabilities"))
    assert "not given to guests on every host" in note
    assert "A: not given by KVM on 3.10.0-1160.el7.x86_64" in note


@pytest.mark.parametrize(("sample", "kernel", "given"), [
    (EPYC7301_RHEL7, None, None),  # a saved /proc/cpuinfo: the kernel is unknown
    (EPYC7301_RHEL7, "3.10.0-1160.el7.x86_64", False),  # RHEL 7: only the host's own bit
    (THIS_VM, "3.10.0-1160.el7.x86_64", True),  # ... which this CPU has
    (EPYC7301_RHEL7, "4.18.0-305.el8.x86_64", None),  # older than 5.1, may carry a backport
    (EPYC7301_RHEL7, "5.14.0-570.18.1.el9_6.x86_64", True),  # emulated for every guest from 5.1
    (HASWELL, "6.1.0-56-amd64", True),
])
def test_kvm_provides_arch_capabilities(sample, kernel, given):
    cpu = parse_cpuinfo(cpuinfo_sample(sample).read_text())
    vendor = cm.vendor_of(cpu.vendor, cpu.flags)
    assert cm.kvm_provides("arch_capabilities", vendor=vendor, kernel=kernel, flags=cpu.flags) is given
    assert cm.kvm_provides("arch_capabilities", vendor=None, kernel=kernel, flags=cpu.flags) is None
    assert cm.kvm_provides("x2apic", vendor=vendor, kernel=kernel, flags=cpu.flags) is True


# The check on a host whose CPU lacks the MSR and whose model needs it: no real sample has both
# (every CPU that runs Cascadelake-Server-v5 has IA32_ARCH_CAPABILITIES). The Emerald Rapids guest
# sample without the arch_capabilities flag stands for a guest whose outer hypervisor hides it.
@pytest.mark.parametrize(("release", "status", "evidence"), [
    ("3.10.0-1160.el7.x86_64", Status.FAIL, "lacks for Cascadelake-Server-v5: arch_capabilities"),
    ("4.18.0-305.el8.x86_64", Status.PASS, "assumed: arch_capabilities (KVM gives it to every guest from Linux 5.1; "
                                           "running kernel 4.18.0-305.el8.x86_64)"),
    ("6.12.117+deb12-amd64", Status.PASS, "newest model it supports"),
])
def test_the_check_knows_which_kernels_give_arch_capabilities(make_root, tmp_path, release, status, evidence):
    src = with_flags(tmp_path, THIS_VM, drop=("arch_capabilities",))
    root = make_root({"proc/cpuinfo": src, "proc/sys/kernel/osrelease": release + "\n"})
    outcome = run_check(cpu_baseline, Host.from_root(str(root)), policy("Cascadelake-Server-v5"))
    assert outcome.status is status, outcome.evidence
    assert evidence in outcome.evidence[0].observed


# ------------------------------------------------------------------------------------------------
# The committed flag table and its generator
# ------------------------------------------------------------------------------------------------
def _generator():
    spec = importlib.util.spec_from_file_location("gen_cpu_flags", ROOT / "tools" / "gen_cpu_flags.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_the_table_records_its_sources():
    kernel = cm.load_table().kernel
    assert kernel.current == "7.2.13"
    headers = {h["kernel"]: h for h in kernel.source["headers"]}
    assert list(headers) == ["7.2.13", "6.12.117", "6.1.170", "3.10.0-1160.el7"]
    assert headers["7.2.13"]["origin"] == "Debian package linux-headers-7.2.13+deb14-common 7.2.13-1 (sid)"
    assert headers["7.2.13"]["convention"] == "new" and headers["6.1.170"]["convention"] == "old"
    assert "@de8b6b6f944c8466ab1beadb1df497a0bd9f6f3c" in headers["3.10.0-1160.el7"]["origin"]
    assert headers["3.10.0-1160.el7"]["mainline"] is False
    assert kernel.source["generator"] == "tools/gen_cpu_flags.py" and kernel.source["generated"]
    for table in (kernel.renamed, kernel.vendor_only, kernel.classified, kernel.kvm_provides):
        assert all(entry["source"] for entry in table.values())


def test_the_table_holds_what_the_headers_say():
    kernel = cm.load_table().kernel
    fl = kernel.flags
    assert fl["perfctr_l2"]["shown_by"] == ["3.10.0-1160.el7"] and fl["perfctr_l2"]["bit"] == "6*32+28"
    assert fl["perfctr_llc"]["shown_by"] == ["7.2.13", "6.12.117", "6.1.170"] and fl["perfctr_llc"]["bit"] == "6*32+28"
    assert fl["spec_ctrl"]["shown_by"] == ["3.10.0-1160.el7"] and "7.2.13" in fl["spec_ctrl"]["hidden_by"]
    assert fl["invpcid_single"]["shown_by"] == ["6.1.170", "3.10.0-1160.el7"]  # gone from 6.12 on
    assert fl["lass"]["shown_by"] == ["7.2.13"]
    assert kernel.renamed["perfctr_l2"]["now"] == "perfctr_llc"
    assert kernel.kvm_provides["arch_capabilities"]["since"] == "5.1"


def test_every_name_a_kernel_in_the_table_prints_is_classified():
    table = cm.load_table()
    shown = {n for n, e in table.kernel.flags.items() if e["shown_by"]}
    assert cm.unknown_flags(shown, table) == set()
    gv = cm.guest_visible(shown, table)
    assert "lass" in gv and "lass" in table.guest_visible_unnamed  # libvirt has no name for it
    assert not {"ibpb_exit_to_user", "ibp_disable", "eagerfpu", "perfctr_llc"} & gv


OLD_RULE = """\
/*
 * Note: If the comment begins with a quoted string, that string is used
 * in /proc/cpuinfo instead of the macro name.  If the string is "",
 * this feature bit is not displayed in /proc/cpuinfo at all.
 */
#define X86_FEATURE_FPU\t\t( 0*32+ 0) /* Onboard FPU */
#define X86_FEATURE_XMM4_1\t\t( 4*32+19) /* "sse4_1" SSE-4.1 */
#define X86_FEATURE_OSXSAVE\t\t( 4*32+27) /* "" XSAVE instruction enabled in the OS */
/* FREE, was #define X86_FEATURE_K7\t\t\t( 3*32+ 5) "" Athlon */
#define X86_FEATURE_PERFCTR_L2\t(6*32+28) /* L2 performance counter extensions */
#define X86_FEATURE_AMD_FAST_CPPC\t(21*32 + 5) /* "" Fast CPPC */
"""
NEW_RULE = """\
/*
 * Note: If the comment begins with a quoted string, that string is used
 * in /proc/cpuinfo instead of the macro name.  Otherwise, this feature
 * bit is not displayed in /proc/cpuinfo at all.
 */
#define X86_FEATURE_FPU\t\t\t( 0*32+ 0) /* "fpu" Onboard FPU */
#define X86_FEATURE_OSXSAVE\t\t( 4*32+27) /* XSAVE instruction enabled in the OS */
#define X86_FEATURE_PERFCTR_LLC\t\t( 6*32+28) /* "perfctr_llc" Last Level Cache performance counter extensions */
"""


def test_the_generator_reads_both_naming_rules():
    """Excerpts in the form of the two rules' headers (written here, following mkcapflags.sh)."""
    gen = _generator()
    old = {d.name: d for d in gen.parse_cpufeatures(OLD_RULE)}
    assert gen.convention(OLD_RULE) == "old" and gen.convention(NEW_RULE) == "new"
    assert old["FPU"].shown == "fpu" and old["XMM4_1"].shown == "sse4_1"
    assert old["OSXSAVE"].shown is None and "K7" not in old  # hidden; commented out
    assert (old["PERFCTR_L2"].word, old["PERFCTR_L2"].bit, old["PERFCTR_L2"].shown) == (6, 28, "perfctr_l2")
    assert (old["AMD_FAST_CPPC"].word, old["AMD_FAST_CPPC"].bit, old["AMD_FAST_CPPC"].shown) == (21, 5, None)
    new = {d.name: d for d in gen.parse_cpufeatures(NEW_RULE)}
    assert new["FPU"].shown == "fpu" and new["OSXSAVE"].shown is None and new["PERFCTR_LLC"].shown == "perfctr_llc"
    with pytest.raises(ValueError):
        gen.convention("#define X86_FEATURE_FPU (0*32+0)\n")


def test_the_generator_checks_its_curated_tables(monkeypatch):
    gen = _generator()
    models = json.loads((ROOT / "audit/cpu/data/cpu_models.json").read_text())
    for table in ("VENDOR_ONLY", "CLASSIFIED", "KVM_PROVIDES"):
        monkeypatch.setattr(gen, table, {})
    monkeypatch.setattr(gen, "RENAMED", {"perfctr_l2": {"now": "perfctr_llc", "why": "-", "source": "-"}})
    doc = gen.build_table({"9.9": NEW_RULE, "3.10.0-1160.el7": OLD_RULE}, models_doc=models, source={})
    assert doc["flags"]["perfctr_l2"]["shown_by"] == ["3.10.0-1160.el7"]
    assert doc["flags"]["osxsave"]["hidden_by"] == ["9.9", "3.10.0-1160.el7"]
    # a rename whose names sit at different bits is refused
    monkeypatch.setattr(gen, "RENAMED", {"perfctr_l2": {"now": "fpu", "why": "-", "source": "-"}})
    with pytest.raises(SystemExit, match="not the same bit"):
        gen.build_table({"9.9": NEW_RULE, "3.10.0-1160.el7": OLD_RULE}, models_doc=models, source={})
    # a printed name nobody classifies stops the generator
    monkeypatch.setattr(gen, "RENAMED", {})
    with pytest.raises(SystemExit, match="perfctr_l2"):
        gen.build_table({"9.9": NEW_RULE, "3.10.0-1160.el7": OLD_RULE}, models_doc=models, source={})


def test_the_committed_table_carries_the_generators_curated_tables():
    gen = _generator()
    doc = json.loads((ROOT / "audit/cpu/data/cpu_flags.json").read_text())
    assert doc["renamed"] == gen.RENAMED and doc["vendor_only"] == gen.VENDOR_ONLY
    assert doc["classified"] == gen.CLASSIFIED and doc["kvm_provides"] == gen.KVM_PROVIDES
    assert {h["kernel"]: h["origin"] for h in doc["source"]["headers"]} == {
        k: v["origin"] for k, v in gen.SOURCES.items()}
