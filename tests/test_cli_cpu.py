"""``hostaudit cpu compare|baseline|models`` end to end through the console script, on the real
cpuinfo samples, snapshots of both formats and ``local``."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from audit.cpu import models as cm
from audit.parsers.cpuinfo import parse_cpuinfo
from tests.conftest import DATA, cpuinfo_sample
from tests.test_snapshot import hostaudit

REPO = Path(__file__).resolve().parents[1]
COMPARE_SCHEMA = json.loads((REPO / "reports/schemas/cpu-compare-v1.json").read_text())
BASELINE_SCHEMA = json.loads((REPO / "reports/schemas/cpu-baseline-v1.json").read_text())
# The x86 samples; the arm64 ones (arm64-*.txt) are compared in tests/test_cpu_arm64.py.
SAMPLES = sorted(p.name for p in (DATA / "cpuinfo").glob("*.txt") if not p.name.startswith("arm64-"))
assert len(SAMPLES) == 15
# The samples added for issue #10 (old and new kernels' flag names) are compared pair by pair in
# tests/test_cpumodels.py and through the console script in tests/test_cpu_flags.py; running every
# pair of all 15 through a subprocess here would double this file's time for no new code path.
ISSUE_10 = {"amd-epyc-7301-zen1-rhel7.txt", "amd-ryzen9-5950x-zen3-ubuntu2004.txt", "amd-opteron-6136-k10-sl7.txt",
            "intel-core-ultra9-285-arrowlake-ubuntu2604.txt"}
PAIR_SAMPLES = [s for s in SAMPLES if s not in ISSUE_10]

HASWELL = "intel-xeon-e5-2680v3-haswell-ep.txt"
BROADWELL = "intel-xeon-e5-2690v4-broadwell-ep.txt"
SKYLAKE = "intel-xeon-gold-6132-skylake-sp.txt"
IVYBRIDGE = "intel-xeon-e5-2650v2-ivybridge-ep.txt"
WESTMERE = "intel-xeon-e5640-westmere-ep.txt"
NEHALEM = "intel-xeon-x7550-nehalem-ex.txt"
NAPLES = "amd-epyc-7451-zen1-naples.txt"
GENOA = "amd-epyc-9654-zen4-genoa.txt"
QEMU_GUEST = "qemu-virtual-cpu-2.5-kvm-guest.txt"
THIS_VM = "this-vm.txt"


def flags(sample: str) -> frozenset[str]:
    return parse_cpuinfo(cpuinfo_sample(sample).read_text()).flags


def vendor(sample: str) -> str | None:
    cpu = parse_cpuinfo(cpuinfo_sample(sample).read_text())
    return cm.vendor_of(cpu.vendor, cpu.flags)


def expected(a: str, b: str) -> tuple[str, int]:
    """From the documented semantics: hosts of different vendors are incompatible; otherwise compare
    guest-visible feature sets; A -> B is safe unless B lacks something A has."""
    if vendor(a) != vendor(b):
        return "incompatible", 1
    ga, gb = cm.guest_visible(flags(a)), cm.guest_visible(flags(b))
    if ga == gb:
        return "identical", 0
    if ga <= gb:
        return "superset", 0
    return "incompatible", 1


# Checked by reasoning, independently of the library: a newer generation of the same vendor adds
# instructions (Broadwell: adx, rdseed, smap; Westmere: aes, pclmulqdq), never removes them; Zen 4
# has AVX-512, which Zen 1 lacks; the other vendor's flags (svm vs vmx aside) differ both ways.
REASONED = {
    (HASWELL, BROADWELL): ("superset", 0),
    (BROADWELL, HASWELL): ("incompatible", 1),
    (HASWELL, HASWELL): ("identical", 0),
    (NEHALEM, WESTMERE): ("superset", 0),
    (WESTMERE, NEHALEM): ("incompatible", 1),
    (IVYBRIDGE, HASWELL): ("superset", 0),
    (SKYLAKE, BROADWELL): ("incompatible", 1),
    (GENOA, NAPLES): ("incompatible", 1),
    (BROADWELL, NAPLES): ("incompatible", 1),
    (QEMU_GUEST, SKYLAKE): ("superset", 0),
}


def test_reasoned_expectations_agree_with_the_semantics():
    for (a, b), want in REASONED.items():
        assert expected(a, b) == want, (a, b)


@pytest.mark.parametrize("b", PAIR_SAMPLES)
@pytest.mark.parametrize("a", PAIR_SAMPLES)
def test_compare_every_pair(a, b):
    out = hostaudit("cpu", "compare", str(cpuinfo_sample(a)), str(cpuinfo_sample(b)), "--format", "json")
    verdict, code = REASONED.get((a, b)) or expected(a, b)
    assert out.returncode == code, out.stderr
    doc = json.loads(out.stdout)
    jsonschema.validate(doc, COMPARE_SCHEMA)
    assert doc["verdict"] == verdict
    ga, gb = cm.guest_visible(flags(a)), cm.guest_visible(flags(b))
    assert doc["missing"] == sorted(ga - gb)
    assert doc["extra"] == sorted(gb - ga)
    if doc["model"]:
        assert not cm.missing_for(doc["model"], flags(a)) and not cm.missing_for(doc["model"], flags(b))
        assert doc["qemu"].startswith(f"-cpu {doc['model']}")
    assert doc["cross_vendor"] == (vendor(a) != vendor(b))
    if doc["cross_vendor"]:
        assert doc["model"] is doc["qemu"] is doc["libvirt"] is None
    assert doc["unknown"] == {"a": [], "b": []}
    if a == b:
        assert verdict == "identical" and doc["missing"] == doc["extra"] == []


def test_compare_text_says_verdict_features_model_and_what_to_use():
    out = hostaudit("cpu", "compare", str(cpuinfo_sample(BROADWELL)), str(cpuinfo_sample(HASWELL)))
    assert out.returncode == 1
    text = out.stdout
    assert "verdict: incompatible" in text
    assert "A has, B lacks (6)" in text and "adx" in text and "rdseed" in text
    assert "newest named model both support: Haswell-noTSX-IBRS" in text
    assert "instead of -cpu host: -cpu Haswell-noTSX-IBRS" in text
    assert "<cpu mode='custom' match='exact'" in text
    ok = hostaudit("cpu", "compare", str(cpuinfo_sample(HASWELL)), str(cpuinfo_sample(BROADWELL)))
    assert ok.returncode == 0 and "verdict: B is a superset" in ok.stdout


def _snapshots(make_root, tmp_path: Path, sample: str) -> tuple[Path, Path]:
    """The same host as a JSON snapshot (hostaudit collect) and as collect.sh text output."""
    root = make_root({"proc/cpuinfo": cpuinfo_sample(sample), "etc/hostname": f"host-{sample[:12]}\n"})
    js = tmp_path / f"{sample}.json"
    assert hostaudit("collect", "--root", str(root), "-o", str(js), "--no-entry-points").returncode == 0
    sh = tmp_path / f"{sample}.snap"
    if shutil.which("dash"):
        script = tmp_path / "collect.sh"
        if not script.exists():
            assert hostaudit("collect", "--script", "-o", str(script), "--no-entry-points").returncode == 0
        run = subprocess.run(["dash", str(script), str(root)], capture_output=True, timeout=120)
        assert run.returncode == 0, run.stderr
        sh.write_bytes(run.stdout)
    else:
        sh = js
    return js, sh


def test_compare_takes_snapshots_of_both_formats(make_root, tmp_path):
    hjs, hsh = _snapshots(make_root, tmp_path, HASWELL)
    bjs, bsh = _snapshots(make_root, tmp_path, BROADWELL)
    for a, b in ((hjs, bsh), (hsh, bjs), (hjs, str(cpuinfo_sample(BROADWELL)))):
        out = hostaudit("cpu", "compare", str(a), str(b), "--format", "json")
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        assert doc["verdict"] == "superset"
    doc = json.loads(hostaudit("cpu", "compare", str(hjs), str(bsh), "--format", "json").stdout)
    assert doc["a"]["input"] == doc["b"]["input"] == "snapshot"
    assert doc["a"]["name"] == "host-intel-xeon-e"
    back = hostaudit("cpu", "compare", str(bsh), str(hjs))
    assert back.returncode == 1


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="needs a Linux /proc")
def test_compare_local_with_itself_is_identical():
    out = hostaudit("cpu", "compare", "local", "local", "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    jsonschema.validate(doc, COMPARE_SCHEMA)
    assert doc["verdict"] == "identical" and doc["a"]["input"] == "local"
    saved = hostaudit("cpu", "compare", "local", "/proc/cpuinfo", "--format", "json")
    assert json.loads(saved.stdout)["verdict"] == "identical"


def _bad_inputs(tmp_path: Path, make_root) -> dict[str, str]:
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "binary").write_bytes(b"\x7fELF\x00\x01\x02")
    (tmp_path / "words.txt").write_text("hello world\nno cpu here\n")
    (tmp_path / "noflags.txt").write_text("processor\t: 0\nvendor_id\t: GenuineIntel\n")
    (tmp_path / "hostile.json").write_text('{"format": "hostaudit-snapshot", "schema_version": 1, '
                                           '"source": {"mode": "live"}, "entries": {"../etc": {"type": "absent"}}}')
    (tmp_path / "cut.snap").write_text("hostaudit-snapshot 1\nmeta mode live\nfile /proc/cpuinfo b64\ncHJv\n")
    image = make_root({"etc/hostname": "img\n"})
    assert hostaudit("collect", "--root", str(image), "-o", str(tmp_path / "image.json"),
                     "--no-entry-points").returncode == 0
    (tmp_path / "dir").mkdir()
    return {n: str(tmp_path / n) for n in ("empty", "binary", "words.txt", "noflags.txt", "hostile.json", "cut.snap",
                                            "image.json", "dir", "missing-file")}


def test_bad_inputs_exit_2_with_one_line(tmp_path, make_root):
    good = str(cpuinfo_sample(HASWELL))
    for name, path in _bad_inputs(tmp_path, make_root).items():
        for args in (("compare", path, good), ("compare", good, path), ("baseline", good, path),
                     ("models", "--host", path)):
            if name == "dir" and args[0] == "baseline":
                continue  # an empty directory is its own case below
            out = hostaudit("cpu", *args)
            assert out.returncode == 2, (name, args, out.stdout)
            assert out.stdout == ""
            assert len(out.stderr.strip().splitlines()) == 1, (name, out.stderr)
            assert out.stderr.startswith("hostaudit: ")
    out = hostaudit("cpu", "baseline", str(tmp_path / "dir"))
    assert out.returncode == 2 and "no snapshot or /proc/cpuinfo file" in out.stderr
    out = hostaudit("cpu", "compare", good)
    assert out.returncode == 2
    out = hostaudit("cpu", "compare", good, good, "--format", "xml")
    assert out.returncode == 2


def test_image_snapshot_says_it_has_no_cpu(tmp_path, make_root):
    paths = _bad_inputs(tmp_path, make_root)
    out = hostaudit("cpu", "compare", paths["image.json"], str(cpuinfo_sample(HASWELL)))
    assert "no /proc/cpuinfo" in out.stderr and "image" in out.stderr


# -- baseline -----------------------------------------------------------------------------------------


def baseline(*inputs: str, fmt: str = "json") -> tuple[int, dict | str]:
    out = hostaudit("cpu", "baseline", *inputs, "--format", fmt)
    assert out.returncode in (0, 1), out.stderr
    if fmt == "json":
        doc = json.loads(out.stdout)
        jsonschema.validate(doc, BASELINE_SCHEMA)
        return out.returncode, doc
    return out.returncode, out.stdout


def test_baseline_of_mixed_intel_generations():
    code, doc = baseline(*(str(cpuinfo_sample(s)) for s in (HASWELL, BROADWELL, SKYLAKE)))
    assert code == 0
    # the oldest host bounds the pool; the Haswell-EP sample has TSX (hle, rtm) off: a -noTSX model
    assert doc["model"] == "Haswell-noTSX-IBRS"
    assert doc["level"] == "x86-64-v3"
    assert doc["vendor"] == "intel"
    assert {"avx2", "fma", "bmi2", "movbe"} <= set(doc["features"])
    assert not {"adx", "rdseed", "smap", "avx512f", "hle", "rtm"} & set(doc["features"])
    lost = {h["name"]: set(h["lost"]) for h in doc["hosts"]}
    assert lost[HASWELL] == set()
    assert {"adx", "rdseed", "smap"} <= lost[BROADWELL]
    assert {"avx512f", "avx512bw", "clwb"} <= lost[SKYLAKE]
    assert {h["name"]: h["own_model"] for h in doc["hosts"]}[SKYLAKE].startswith("Skylake-Server")
    shared = set(doc["features"])
    for s in (HASWELL, BROADWELL, SKYLAKE):
        assert shared <= cm.guest_visible(flags(s))
    assert doc["qemu"].startswith("-cpu Haswell-noTSX-IBRS,")


def test_baseline_of_intel_with_amd_uses_generic_models():
    code, doc = baseline(str(cpuinfo_sample(BROADWELL)), str(cpuinfo_sample(NAPLES)))
    assert code == 0
    assert doc["vendor"] is None
    assert cm.load_table().models[doc["model"]].vendor is None  # QEMU's vendor-neutral models only
    assert "<vendor>" not in doc["libvirt"]
    assert "vmx" not in doc["features"] and "svm" not in doc["features"]
    assert {"sse4_2", "avx2"} <= set(doc["features"])  # both have them: kept as extra features
    assert {"sse4_2", "avx2"} <= set(doc["extra_features"])


def test_baseline_with_a_guest_without_vmx():
    code, doc = baseline(str(cpuinfo_sample(SKYLAKE)), str(cpuinfo_sample(QEMU_GUEST)))
    assert code == 0
    assert "vmx" not in doc["features"]
    assert "hypervisor" not in doc["features"]
    guest = next(h for h in doc["hosts"] if h["name"] == QEMU_GUEST)
    assert guest["lost"] == []  # the guest CPU is the floor of this pool
    assert set(doc["features"]) == set(cm.guest_visible(flags(QEMU_GUEST)))
    host = next(h for h in doc["hosts"] if h["name"] == SKYLAKE)
    assert "avx512f" in host["lost"] and "vmx" not in host["lost"]


def test_baseline_libvirt_and_qemu_formats():
    inputs = [str(cpuinfo_sample(s)) for s in (HASWELL, BROADWELL)]
    _, doc = baseline(*inputs)
    code, xml = baseline(*inputs, fmt="libvirt")
    assert code == 0
    cpu = ET.fromstring(xml)
    assert cpu.tag == "cpu" and cpu.get("mode") == "custom" and cpu.get("match") == "exact"
    model = cpu.find("model")
    assert model.text == doc["model"] and model.get("fallback") == "forbid"
    required = [f.get("name") for f in cpu.findall("feature") if f.get("policy") == "require"]
    assert len(required) >= len(doc["extra_features"]) - 2  # a few Linux flags have no libvirt name
    code, qemu = baseline(*inputs, fmt="qemu")
    assert code == 0 and qemu == doc["qemu"] + "\n"
    assert qemu.startswith(f"-cpu {doc['model']},+")
    code, text = baseline(*inputs, fmt="text")
    for part in (doc["model"], doc["level"], doc["qemu"], "<cpu mode='custom'", "per host"):
        assert part in text


def test_baseline_of_a_directory_of_snapshots_and_cpuinfo_files(make_root, tmp_path):
    pool = tmp_path / "pool"
    pool.mkdir()
    hjs, _ = _snapshots(make_root, tmp_path, HASWELL)
    _, bsh = _snapshots(make_root, tmp_path, BROADWELL)
    shutil.copy(hjs, pool / "a.json")
    shutil.copy(bsh, pool / "b.snap")
    shutil.copy(cpuinfo_sample(SKYLAKE), pool / "c-cpuinfo")
    (pool / ".hidden").write_text("ignored")
    code, doc = baseline(str(pool))
    assert code == 0
    assert doc["model"] == "Haswell-noTSX-IBRS"
    assert [h["input"] for h in doc["hosts"]] == ["snapshot", "snapshot", "cpuinfo"]
    same, _ = baseline(str(cpuinfo_sample(HASWELL)), str(cpuinfo_sample(HASWELL)))
    assert same == 0


def test_baseline_names_stay_distinct_for_the_same_file():
    _, doc = baseline(str(cpuinfo_sample(HASWELL)), str(cpuinfo_sample(HASWELL)))
    names = [h["name"] for h in doc["hosts"]]
    assert len(set(names)) == 2


def test_baseline_of_every_sample():
    code, doc = baseline(*(str(cpuinfo_sample(s)) for s in SAMPLES))
    assert code == 0
    assert len(doc["hosts"]) == 15
    assert doc["vendor"] is None  # Intel and AMD together
    assert doc["notes"][0].startswith("hosts of different vendors (AMD, Intel): live migration between them "
                                      "is not supported")


# -- models -------------------------------------------------------------------------------------------


def test_models_listing_and_a_hosts_support():
    out = hostaudit("cpu", "models")
    assert out.returncode == 0
    assert "Haswell-noTSX" in out.stdout and "EPYC-Genoa" in out.stdout and "qemu64" in out.stdout
    out = hostaudit("cpu", "models", "--host", str(cpuinfo_sample(HASWELL)), "--format", "json")
    assert out.returncode == 0
    doc = json.loads(out.stdout)
    rows = {r["name"]: r for r in doc["models"]}
    assert rows["Haswell-noTSX"]["supported"] is True
    assert rows["Broadwell-noTSX"]["supported"] is False and "adx" in rows["Broadwell-noTSX"]["missing"]
    assert doc["host"]["newest_model"] == "Haswell-noTSX-IBRS"
    assert doc["host"]["level"] == "x86-64-v3"
    text = hostaudit("cpu", "models", "--host", str(cpuinfo_sample(HASWELL)), "--vendor", "intel").stdout
    assert "newest model: Haswell-noTSX-IBRS" in text and "EPYC" not in text


# -- host text never becomes markup ---------------------------------------------------------------

HOSTILE = "--><model>host-passthrough</model><!--"


def _with_flags(tmp_path: Path, sample: str, *extra: str) -> Path:
    """The sample with words appended to its flags line (a flag is any run of non-blanks)."""
    text = cpuinfo_sample(sample).read_text()
    out = tmp_path / f"hostile-{sample}"
    out.write_text(re.sub(r"(?m)^(flags\t\t: .*)$", lambda m: m.group(1) + " " + " ".join(extra), text))
    return out


def _comments(xml: str) -> list[str]:
    root = ET.fromstring(xml, parser=ET.XMLParser(target=ET.TreeBuilder(insert_comments=True)))
    return [c.text for c in root.iter(ET.Comment)]


def test_a_hostile_flag_stays_text_in_the_libvirt_xml(tmp_path):
    hostile = _with_flags(tmp_path, HASWELL, HOSTILE, "\x1b[2Jwiped")
    code, xml = baseline(str(hostile), str(cpuinfo_sample(BROADWELL)), fmt="libvirt")
    assert code == 0
    root = ET.fromstring(xml)
    assert len(root.findall(".//model")) == 1 and root.findtext("model") == "Haswell-noTSX-IBRS"
    assert "\x1b" not in xml
    left = [c for c in _comments(xml) if c.strip().startswith("left out, flags hostaudit does not know")]
    assert len(left) == 1
    # visible, inert: the words are there (lower-cased, as every flag), the dashes that would close the
    # comment and the escape character are escaped
    assert "\\x2d-><model>host-passthrough</model><!\\x2d\\x2d" in left[0] and "\\x1b[2jwiped" in left[0]
    # the same through compare (text and JSON) and the JSON baseline
    code, doc = baseline(str(hostile), str(cpuinfo_sample(BROADWELL)))
    assert len(ET.fromstring(doc["libvirt"]).findall(".//model")) == 1
    assert HOSTILE in doc["left_out"]["unknown"]  # reported separately, as it is
    out = hostaudit("cpu", "compare", str(hostile), str(cpuinfo_sample(BROADWELL)), "--format", "json")
    cdoc = json.loads(out.stdout)
    assert len(ET.fromstring(cdoc["libvirt"]).findall(".//model")) == 1
    text = hostaudit("cpu", "compare", str(hostile), str(cpuinfo_sample(BROADWELL))).stdout
    shown = text.split("libvirt domain XML:\n")[1].split("</cpu>")[0] + "</cpu>"
    assert len(ET.fromstring(shown).findall(".//model")) == 1 and HOSTILE not in shown and "\x1b" not in text


def test_the_qemu_argument_carries_only_names_from_the_tables(tmp_path):
    hostile = _with_flags(tmp_path, HASWELL, HOSTILE, "avx2,+x=1")
    out = hostaudit("cpu", "baseline", str(hostile), str(cpuinfo_sample(BROADWELL)), "--format", "qemu")
    assert out.returncode == 0
    arg = out.stdout.strip()
    assert re.fullmatch(r"-cpu [A-Za-z0-9_.-]+(,[+-][A-Za-z0-9_.-]+)*", arg), arg
    assert "model" not in arg and "x=1" not in arg
    # what was left out is said on stderr, printable
    assert "left out (flags hostaudit does not know)" in out.stderr and HOSTILE in out.stderr


def test_the_renderer_refuses_host_text_it_cannot_make_safe_alone():
    pool = cm.baseline({"a": flags(HASWELL) | {HOSTILE}, "b": flags(BROADWELL)})
    with pytest.raises(ValueError, match="not safe in an XML comment"):
        cm.libvirt_xml(pool)
    from reports.sanitize import xml_comment_text

    assert len(ET.fromstring(cm.libvirt_xml(pool, comment=xml_comment_text)).findall("model")) == 1


@pytest.mark.parametrize("text", [
    HOSTILE, "-", "--", "a-", "a--b", "---x---", "<!-- -->", "]]>", "\x00\x01\x7f", "tab\there\nnew\rline",
    "\u202eevil", "\udcff\ud800", "\ufffe\uffff", "plain ASCII, single-dash ok",
])
def test_xml_comment_text_is_always_a_well_formed_comment(text):
    from reports.sanitize import xml_comment_text

    safe = xml_comment_text(text)
    assert "--" not in safe and not safe.endswith("-")
    assert _comments(f"<r><!--{safe}--></r>") == [safe]
    safe.encode("utf-8")  # nothing unencodable left
    if text == "plain ASCII, single-dash ok":
        assert safe == text
