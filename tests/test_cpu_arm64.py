"""arm64 hosts in ``cpu compare`` / ``cpu baseline`` / ``cpu models``: architectures first, then CPU
implementations (MIDR_EL1), then Features.

Samples are real /proc/cpuinfo files (tests/data/README.md records their sources). Expectations are
read off the files' own lines (implementer, part, variant, revision, Features), not from the code:
Graviton2 is 0x41/0xd0c r3p1, AmpereOne 0xc0/0xac3 r0p1, the Raspberry Pi 4 and Graviton1 are both
0x41/0xd08 r0p3 (Cortex-A72), the Pi without the Crypto Extension (no aes, pmull, sha1, sha2); the
Pixel 5 has six 0x51/0x805 r13p14 and two 0x51/0x804 r15p14 processors (big.LITTLE).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from audit.cpu import arm64
from audit.parsers.cpuinfo import Midr, parse_cpuinfo
from tests.conftest import cpuinfo_sample
from tests.test_snapshot import hostaudit

REPO = Path(__file__).resolve().parents[1]
COMPARE_SCHEMA = json.loads((REPO / "reports/schemas/cpu-compare-v1.json").read_text())
BASELINE_SCHEMA = json.loads((REPO / "reports/schemas/cpu-baseline-v1.json").read_text())

GRAVITON2 = "arm64-aws-graviton2-neoverse-n1.txt"
AMPEREONE = "arm64-ampereone-ubuntu2204.txt"
GRAVITON1 = "arm64-aws-graviton1-cortex-a72.txt"
RPI4 = "arm64-raspberrypi4-cortex-a72-debian.txt"
PIXEL5 = "arm64-pixel5-kryo4xx-biglittle-android.txt"
HASWELL = "intel-xeon-e5-2680v3-haswell-ep.txt"

# (implementations with processor counts, processors, Features every processor shows)
EXPECTED = {
    GRAVITON2: ([(Midr(0x41, 0xD0C, 3, 1), 1)], 1,
                "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp "
                "ssbs"),
    AMPEREONE: ([(Midr(0xC0, 0xAC3, 0, 1), 1)], 1, None),
    GRAVITON1: ([(Midr(0x41, 0xD08, 0, 3), 1)], 1, "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid"),
    RPI4: ([(Midr(0x41, 0xD08, 0, 3), 1)], 1, "fp asimd evtstrm crc32 cpuid"),
    PIXEL5: ([(Midr(0x51, 0x805, 13, 14), 6), (Midr(0x51, 0x804, 15, 14), 2)], 8,
             "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"),
}


def cpu(sample: str):
    return parse_cpuinfo(cpuinfo_sample(sample).read_text(encoding="utf-8"))


def compare(a: str, b: str, fmt: str = "json"):
    out = hostaudit("cpu", "compare", str(cpuinfo_sample(a)), str(cpuinfo_sample(b)), "--format", fmt)
    assert out.returncode in (0, 1), out.stderr
    if fmt == "json":
        doc = json.loads(out.stdout)
        jsonschema.validate(doc, COMPARE_SCHEMA)
        return out.returncode, doc
    return out.returncode, out.stdout


def baseline(*samples: str, fmt: str = "json"):
    out = hostaudit("cpu", "baseline", *(str(cpuinfo_sample(s)) for s in samples), "--format", fmt)
    assert out.returncode in (0, 1), out.stderr
    if fmt == "json":
        doc = json.loads(out.stdout)
        jsonschema.validate(doc, BASELINE_SCHEMA)
        return out.returncode, doc
    return out.returncode, out


# -- the parser -----------------------------------------------------------------------------------


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_arm64_samples_parse_into_implementations(sample):
    impls, procs, features = EXPECTED[sample]
    c = cpu(sample)
    assert c.arch == "arm64"
    assert c.vendor is None and c.vendor_kind is None  # no vendor_id on ARM
    assert list(c.implementations) == impls
    assert c.processors == procs and len(c.midrs) == procs
    if features:
        assert c.flags == set(features.split())
    assert not c.flags_differ


def test_the_android_header_and_trailer_are_not_processors():
    # "Processor : AArch64 Processor rev 14 (aarch64)" opens the file and "Hardware : ..." ends it
    text = cpuinfo_sample(PIXEL5).read_text()
    assert text.startswith("Processor\t: AArch64") and "Hardware\t:" in text
    c = cpu(PIXEL5)
    assert c.processors == 8 and len(c.midrs) == 8
    assert c.midrs[0] is c.midrs[5]  # one object per implementation, however many processors share it


def test_arch_of_the_x86_samples_and_of_a_32_bit_arm_kernel():
    assert cpu(HASWELL).arch == "x86" and cpu(HASWELL).midrs == ()
    # a 32-bit kernel on a Cortex-A72 prints "CPU architecture: 7" and the v7 Features
    arm32 = parse_cpuinfo("processor\t: 0\nmodel name\t: ARMv7 Processor rev 3 (v7l)\nFeatures\t: half thumb "
                          "vfp neon\nCPU implementer\t: 0x41\nCPU architecture: 7\nCPU variant\t: 0x0\n"
                          "CPU part\t: 0xd08\nCPU revision\t: 3\n")
    assert arm32.arch == "arm" and arm32.midrs == (Midr(0x41, 0xD08, 0, 3),)


# -- names from the kernel's cputype.h --------------------------------------------------------------


def test_implementations_are_named_from_the_kernel_table():
    assert arm64.describe(Midr(0x41, 0xD0C, 3, 1)) == "Arm Neoverse N1 r3p1 (0x41/0xd0c)"
    assert arm64.describe(Midr(0xC0, 0xAC3, 0, 1)) == "Ampere Ampere1 r0p1 (0xc0/0xac3)"
    assert arm64.describe(Midr(0x41, 0xD08, 0, 3)) == "Arm Cortex-A72 r0p3 (0x41/0xd08)"
    assert arm64.describe(Midr(0x51, 0x804, 15, 14)) == "Qualcomm Kryo 4XX Gold r15p14 (0x51/0x804)"
    # one value, two names in the header
    assert arm64.part_name(0x51, 0x800) == "Falkor v1 / Kryo 2XX Gold"
    # what the header does not name stays numbers, never a guess
    assert arm64.describe(Midr(0x99, 0x123, 1, 2)) == "implementer 0x99 part 0x123 r1p2 (0x99/0x123)"
    assert arm64.describe(Midr(0x41, 0xFFF, None, None)) == "Arm part 0xfff r?p? (0x41/0xfff)"


def test_the_table_records_its_source():
    source = arm64.load_parts()["source"]
    assert source["file"] == "arch/arm64/include/asm/cputype.h"
    assert source["kernel"] == "6.12.117" and "linux-headers-6.12.117+deb12-common" in source["origin"]
    assert len(source["sha256"]) == 64
    parts = arm64.load_parts()["parts"]
    assert parts["0x41"]["0xd0c"]["macros"] == ["ARM_CPU_PART_NEOVERSE_N1"]
    assert parts["0xc0"]["0xac3"]["macros"] == ["AMPERE_CPU_PART_AMPERE1"]


# -- compare ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b"), [(GRAVITON2, AMPEREONE), (AMPEREONE, GRAVITON2)])
def test_different_implementations_are_incompatible_before_any_feature(a, b):
    code, doc = compare(a, b)
    assert code == 1
    assert doc["verdict"] == "incompatible" and not doc["migration_safe"]
    assert doc["cross_implementation"] and not doc["cross_arch"]
    assert doc["verdict_text"].startswith("incompatible: different CPU implementations")
    assert "Arm Neoverse N1 r3p1 (0x41/0xd0c)" in doc["verdict_text"]
    assert "Ampere Ampere1 r0p1 (0xc0/0xac3)" in doc["verdict_text"]
    assert doc["model"] is doc["qemu"] is doc["libvirt"] is None
    assert [i["label"] for i in doc["a"]["implementations"]] == [EXPECTED[a][0][0][0].label]
    # the writable registers of Linux 6.15 are a note with its source, not a pass
    assert any("6.15" in n and "KVM_CAP_ARM_WRITABLE_IMP_ID_REGS" in n and "3adaee78306148da" in n
               for n in doc["notes"])
    assert any("treated as invariant" in n for n in doc["notes"])
    # Graviton2 -> AmpereOne: AmpereOne has every Feature Graviton2 has; that does not decide
    if a == GRAVITON2:
        assert doc["missing"] == [] and {"sha3", "sha512", "bf16"} <= set(doc["extra"])


def test_the_text_says_the_implementations_first():
    code, text = compare(GRAVITON2, AMPEREONE, fmt="text")
    assert code == 1
    lines = text.splitlines()
    assert lines[3].startswith("verdict: incompatible: different CPU implementations")
    assert "B is a superset" not in text
    assert text.index("different CPU implementations") < text.index("B has, A lacks")
    assert "CPU to use: none: do not live-migrate" in text


@pytest.mark.parametrize(("a", "b"), [(HASWELL, GRAVITON2), (GRAVITON2, HASWELL)])
def test_x86_and_arm64_say_first_that_migration_across_architectures_is_impossible(a, b):
    code, doc = compare(a, b)
    assert code == 1 and doc["verdict"] == "incompatible" and doc["cross_arch"]
    first, second = ("x86", "arm64") if a == HASWELL else ("arm64", "x86")
    assert doc["verdict_text"] == (f"incompatible: live migration between {first} (A) and {second} (B) hosts "
                                   "is impossible")
    assert doc["missing"] == doc["extra"] == []  # x86 flags and ARM Features are not compared
    assert doc["model"] is doc["qemu"] is None
    code, text = compare(a, b, fmt="text")
    assert text.splitlines()[3] == f"verdict: {doc['verdict_text']}"
    assert "features: not compared (different architectures)" in text


def test_the_same_implementation_and_features_is_identical_with_host_passthrough():
    code, doc = compare(GRAVITON2, GRAVITON2)
    assert code == 0 and doc["verdict"] == "identical" and doc["migration_safe"]
    assert doc["qemu"] == "-cpu host" and doc["model"] is None
    assert any("revidr_el1" in n for n in doc["notes"])  # not in /proc/cpuinfo: said, not assumed


def test_one_implementation_with_different_features():
    # Both Cortex-A72 r0p3; the Pi lacks the Crypto Extension. Pi -> Graviton1: B has every Feature,
    # but the guest would see B's feature ID registers: undecided, not safe.
    code, doc = compare(RPI4, GRAVITON1)
    assert code == 1 and doc["verdict"] == "undecided" and not doc["cross_implementation"]
    assert doc["extra"] == ["aes", "pmull", "sha1", "sha2"] and doc["missing"] == []
    assert any("6.7" in n and "KVM_ARM_GET_REG_WRITABLE_MASKS" in n for n in doc["notes"])
    code, doc = compare(GRAVITON1, RPI4)
    assert code == 1 and doc["verdict"] == "incompatible" and not doc["cross_implementation"]
    assert doc["missing"] == ["aes", "pmull", "sha1", "sha2"]


def test_kernel_only_hwcaps_are_not_compared():
    without = cpuinfo_sample(RPI4).read_text().replace(" evtstrm", "")
    a = parse_cpuinfo(without)
    assert "evtstrm" not in a.flags
    c = arm64.compare(a, cpu(RPI4))
    assert c.verdict.value == "identical" and c.extra == ()


def test_big_little_hosts_compare_as_a_set_of_implementations():
    code, doc = compare(PIXEL5, PIXEL5)
    assert code == 0 and doc["verdict"] == "identical"
    assert [(i["label"], i["processors"]) for i in doc["a"]["implementations"]] == [
        ("0x51/0x805 r13p14", 6), ("0x51/0x804 r15p14", 2)]
    assert any("big.LITTLE" in n and "physical CPU it runs on" in n for n in doc["notes"])
    code, doc = compare(PIXEL5, GRAVITON2)
    assert code == 1 and doc["cross_implementation"]
    assert "Qualcomm Kryo 4XX Silver r13p14 (0x51/0x805) + Qualcomm Kryo 4XX Gold r15p14 (0x51/0x804)" \
        in doc["verdict_text"]


def test_an_arm64_snapshot_carries_its_kernel(make_root, tmp_path):
    root = make_root({"proc/cpuinfo": cpuinfo_sample(AMPEREONE), "proc/sys/kernel/osrelease": "6.8.0-45-generic\n",
                      "etc/hostname": "ampere-1\n"})
    snap = tmp_path / "ampere.json"
    assert hostaudit("collect", "--root", str(root), "-o", str(snap), "--no-entry-points").returncode == 0
    out = hostaudit("cpu", "compare", str(cpuinfo_sample(GRAVITON2)), str(snap), "--format", "json")
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    jsonschema.validate(doc, COMPARE_SCHEMA)
    assert doc["b"]["name"] == "ampere-1" and doc["b"]["input"] == "snapshot" and doc["b"]["arch"] == "arm64"
    assert "B runs Linux 6.8.0-45-generic" in doc["notes"]


# -- baseline ---------------------------------------------------------------------------------------


def test_a_pool_of_one_implementation_gets_host_passthrough():
    code, doc = baseline(GRAVITON2, GRAVITON2)
    assert code == 0 and doc["host_passthrough"] and doc["model"] is None
    assert doc["qemu"] == "-cpu host" and doc["arch"] == "arm64"
    assert doc["headline"].startswith("host-passthrough: every host is Arm Neoverse N1 r3p1 (0x41/0xd0c)")
    cpu_el = ET.fromstring(doc["libvirt"])
    assert cpu_el.tag == "cpu" and cpu_el.get("mode") == "host-passthrough" and len(cpu_el) == 0
    assert set(doc["features"]) == set(EXPECTED[GRAVITON2][2].split()) - {"evtstrm", "cpuid"}
    code, out = baseline(GRAVITON2, GRAVITON2, fmt="libvirt")
    assert code == 0 and ET.fromstring(out.stdout).get("mode") == "host-passthrough"
    code, out = baseline(GRAVITON2, GRAVITON2, fmt="qemu")
    assert code == 0 and out.stdout == "-cpu host\n"


def test_a_pool_of_different_implementations_has_no_common_cpu():
    code, doc = baseline(GRAVITON2, AMPEREONE)
    assert code == 1 and not doc["host_passthrough"] and doc["qemu"] is doc["libvirt"] is None
    assert doc["headline"].startswith("no common CPU: the hosts are different CPU implementations")
    assert "Arm Neoverse N1 r3p1 (0x41/0xd0c)" in doc["headline"] and "Ampere Ampere1 r0p1" in doc["headline"]
    assert doc["notes"][0] == doc["headline"]
    code, out = baseline(GRAVITON2, AMPEREONE, fmt="libvirt")
    assert code == 1 and out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1 and "different CPU implementations" in out.stderr
    code, out = baseline(GRAVITON2, AMPEREONE, fmt="text")
    assert code == 1 and "qemu: none" in out.stdout


def test_a_pool_of_one_implementation_with_different_features():
    code, doc = baseline(RPI4, GRAVITON1)
    assert code == 1 and not doc["host_passthrough"]
    assert "Features differ" in doc["headline"]
    lost = {h["name"]: h["lost"] for h in doc["hosts"]}
    assert lost == {RPI4: [], GRAVITON1: ["aes", "pmull", "sha1", "sha2"]}


def test_a_pool_of_two_architectures():
    code, doc = baseline(HASWELL, GRAVITON2)
    assert code == 1 and doc["model"] is None and doc["arch"] is None
    assert doc["notes"][0].startswith("no common CPU: hosts of different architectures (arm64: "
                                      f"{GRAVITON2}; x86: {HASWELL})")
    code, out = baseline(HASWELL, GRAVITON2, fmt="text")
    assert "hosts of different architectures" in out.stdout.splitlines()[4]


def test_every_sample_together_is_a_pool_of_two_architectures():
    out = hostaudit("cpu", "baseline", str(cpuinfo_sample(HASWELL).parent), "--format", "json")
    assert out.returncode == 1
    doc = json.loads(out.stdout)
    jsonschema.validate(doc, BASELINE_SCHEMA)
    assert doc["headline"].startswith("no common CPU: hosts of different architectures")
    assert {h["arch"] for h in doc["hosts"]} == {"x86", "arm64"}


# -- models -----------------------------------------------------------------------------------------


def test_models_says_what_it_can_for_an_arm64_host():
    out = hostaudit("cpu", "models", "--host", str(cpuinfo_sample(GRAVITON2)), "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    host = doc["host"]
    assert host["arch"] == "arm64" and host["newest_model"] is None and host["level"] is None
    assert "no named CPU models" in host["note"] and "Arm Neoverse N1 r3p1 (0x41/0xd0c)" in host["note"]
    assert all("supported" not in r for r in doc["models"])  # x86 models are not judged on an arm64 host
    text = hostaudit("cpu", "models", "--host", str(cpuinfo_sample(GRAVITON2))).stdout
    assert text.splitlines()[1].startswith("note: KVM on arm64 has no named CPU models")
    assert "supported" not in text.splitlines()[3]
