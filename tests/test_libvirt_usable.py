"""What KVM can run, as libvirt says it (issue #15): usable CPU models and their blockers in
``cpu baseline``, ``cpu compare`` and ``guest check``; the capabilities cache's staleness by host
CPU signature and microcode; ``virsh capabilities`` as a source of machine types and topology only.

Data: libvirt's own test files and an excerpt of one (tests/data/libvirtcaps/README.md), domains
defined and dumped by ``virsh -c test:///default`` (tests/data/guests/README.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from audit.cpu import libvirtcaps as lc
from audit.cpu import models as cm
from audit.host.core import Host
from audit.host.libvirtcaps import CACHE_DIR
from tests.conftest import DATA
from tests.test_snapshot import hostaudit

CAPS = DATA / "libvirtcaps"
CACHE = CAPS / "caps_7.2.0.x86_64.xml"  # QEMU 7.2 on an AMD EPYC-Rome host: EPYC-Rome usable
DOMCAPS_10 = CAPS / "qemu_10.0.0-q35.x86_64.excerpt.xml"  # QEMU 10.0, xsaves filtered: EPYC-Rome not usable
DOMCAPS_72 = CAPS / "qemu_7.2.0-q35.x86_64.xml"
VIRSH_CAPS = CAPS / "caps-qemu-kvm.xml"  # libvirt tests/capabilityschemadata
TEST_DRIVER_CAPS = CAPS / "virsh-test-capabilities.xml"  # virsh -c test:///default capabilities
GUESTS = DATA / "guests"
ROME = GUESTS / "virsh-custom-epyc-rome.xml"
ROME_NOXSAVES = GUESTS / "virsh-custom-epyc-rome-noxsaves.xml"
GENOA_FALLBACK = GUESTS / "virsh-custom-epyc-genoa-fallback.xml"
HASWELL = GUESTS / "virsh-custom-haswell.xml"
CPUINFO = DATA / "cpuinfo"
HASWELL_CPUINFO = CPUINFO / "intel-xeon-e5-2680v3-haswell-ep.txt"


def parse(path: Path) -> lc.GuestCpu:
    return lc.parse_caps(path.read_bytes(), str(path))


def run_json(*args: str) -> tuple[int, dict]:
    r = hostaudit(*args, "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout)


# -- parsing usable models and blockers ------------------------------------------------------------
def test_domcapabilities_blockers_as_libvirt_10_writes_them():
    caps = parse(DOMCAPS_10)
    assert caps.host_model == "EPYC-Rome" and lc.Feature("disable", "xsaves") in caps.features
    assert caps.model_usable("EPYC") is True and caps.model_usable("EPYC-Rome") is False
    assert caps.blockers_of("EPYC-Rome") == ("xsaves",)
    assert caps.blockers_of("EPYC-Milan") == ("erms", "fsrm", "ibrs", "invpcid", "pcid", "pku", "xsaves")
    assert caps.blockers_of("EPYC") == ()
    assert parse(DOMCAPS_72).blockers == ()  # libvirt 9.0 wrote none


def test_cache_blockers_and_a_model_qemu_does_not_have():
    caps = parse(CACHE)
    assert caps.model_usable("EPYC-Rome") is True
    assert caps.model_usable("Skylake-Server") is False and "avx512f" in caps.blockers_of("Skylake-Server")
    assert "EPYC-Genoa" not in caps.usable + caps.unusable and caps.model_usable("EPYC-Genoa") is False


def test_usable_unknown_is_neither_yes_nor_no():
    text = DOMCAPS_10.read_text(encoding="utf-8").replace(
        "<model usable='yes' vendor='AMD' canonical='EPYC-v1'>EPYC</model>",
        "<model usable='unknown' vendor='AMD' canonical='EPYC-v1'>EPYC</model>")
    caps = lc.parse_caps(text.encode(), "d.xml")
    assert "EPYC" in caps.usable_unknown and caps.model_usable("EPYC") is None


def test_a_tcg_domcapabilities_says_nothing_about_kvm():
    text = DOMCAPS_10.read_text(encoding="utf-8").replace("<domain>kvm</domain>", "<domain>qemu</domain>")
    caps = lc.parse_caps(text.encode(), "d.xml")
    assert not caps.lists_models and caps.model_usable("EPYC-Rome") is None


# -- cpu baseline / compare -------------------------------------------------------------------------
def test_baseline_passes_over_a_model_qemu_cannot_run_and_names_the_blockers():
    usable = cm.ModelUsability(source="d.xml", usable=frozenset(parse(DOMCAPS_10).usable),
                               blockers=dict(parse(DOMCAPS_10).blockers))
    flags = lc.guest_flags(parse(CACHE))
    assert cm.baseline({"a": flags}).model.name == "EPYC-Rome"  # the features alone allow it
    b = cm.baseline({"a": flags, "b": flags}, usability={"a": None, "b": usable})
    assert b.model.name == "EPYC-IBPB"
    assert [(x.model, x.host, x.blockers) for x in b.not_usable] == [  # newest first, each with its blockers
        ("EPYC-Rome", "b", ("xsaves",)), ("EPYC-Rome-v1", "b", ("xsaves",)), ("EPYC-v4", "b", ("xsaves",)),
        ("EPYC-v3", "b", ("xsaves",))]
    assert b.usable_checked == ("b",) and b.usable_unchecked == ("a",)
    assert {h.name: h.model.name for h in b.hosts} == {"a": "EPYC-Rome", "b": "EPYC-IBPB"}


def test_cli_baseline_with_real_libvirt_files():
    rc, doc = run_json("cpu", "baseline", str(CACHE), str(DOMCAPS_10))
    assert rc == 0 and doc["model"] == "EPYC-IBPB"
    u = doc["usable"]
    assert u["checked"] == [CACHE.name, DOMCAPS_10.name] and u["unchecked"] == []
    assert {"model": "EPYC-Rome", "host": DOMCAPS_10.name, "blockers": ["xsaves"],
            "source": f"virsh domcapabilities {DOMCAPS_10}"} in u["not_usable"]
    text = hostaudit("cpu", "baseline", str(CACHE), str(DOMCAPS_10)).stdout
    assert "passed over, though every host's features allow them: EPYC-Rome, EPYC-Rome-v1" in text
    assert f"EPYC-Rome is not usable on {DOMCAPS_10.name} (blockers: xsaves; virsh domcapabilities" in text


def test_cli_baseline_says_the_check_was_partial():
    other = CPUINFO / "amd-epyc-7451-zen1-naples.txt"
    rc, doc = run_json("cpu", "baseline", str(other), str(DOMCAPS_10))
    assert rc == 0 and doc["usable"]["checked"] == [DOMCAPS_10.name] and doc["usable"]["unchecked"] == [other.name]
    assert any(n.startswith(f"usable CPU models checked on {DOMCAPS_10.name} only; the check is partial: "
                            f"{other.name}: no libvirt capabilities") for n in doc["notes"])
    _rc, doc = run_json("cpu", "baseline", str(other))
    assert "usable" not in doc  # /proc/cpuinfo alone: the output keeps its shape (schema cpu-baseline-v1)


def test_cli_compare_flags_a_source_model_the_destination_cannot_run():
    rc, doc = run_json("cpu", "compare", str(CACHE), str(DOMCAPS_10))
    assert rc == 1 and doc["missing"] == ["xsaves"]  # B's host-model disables it
    assert doc["usable"]["a_model_on_b"] == {"model": "EPYC-Rome", "host": "B", "blockers": ["xsaves"],
                                             "source": f"virsh domcapabilities {DOMCAPS_10}"}
    assert doc["model"] == "EPYC-IBPB" and doc["qemu"].startswith("-cpu EPYC-IBPB")
    assert any(n.startswith("A's own newest model EPYC-Rome") and "blockers: xsaves" in n for n in doc["notes"])
    _rc, back = run_json("cpu", "compare", str(DOMCAPS_10), str(CACHE))
    assert back["usable"]["a_model_on_b"] is None  # B (QEMU 7.2, xsaves there) runs what A can


def test_a_stale_cache_gives_no_usable_models(make_root, tmp_path):
    blob = with_cache_fields(kernel="6.1.0-13-amd64 #1 SMP Debian")
    root = cache_root(make_root, blob, release="6.1.0-18-amd64")
    snap = tmp_path / "stale.json"
    r = hostaudit("collect", "--root", str(root), "-o", str(snap))
    assert r.returncode == 0, r.stderr
    _rc, doc = run_json("cpu", "baseline", str(snap), str(DOMCAPS_10))
    assert doc["usable"]["unchecked"] == [doc["hosts"][0]["name"]]
    assert any("not used (see the CPU source note)" in n for n in doc["notes"])


# -- staleness -----------------------------------------------------------------------------------
ROME_SIGNATURE = "AuthenticAMD, AMD EPYC 7452 32-Core Processor, family: 23, model: 49, stepping: 0"


def with_cache_fields(*, kernel: str | None = None, signature: str | None = None) -> bytes:
    """libvirt's own cache file with a <kernelVersion> and a <hostCPUSignature> added where
    virQEMUCapsFormatCache writes them (libvirt's fixtures carry neither)."""
    text = CACHE.read_text(encoding="utf-8")
    extra = ""
    if signature is not None:
        extra += f"<hostCPUSignature>{signature}</hostCPUSignature>\n  "
    text = text.replace("<package>", extra + "<package>", 1)
    if kernel is not None:
        text = text.replace("</package>\n", f"</package>\n  <kernelVersion>{kernel}</kernelVersion>\n", 1)
    return text.encode()


def amd_cpuinfo(microcode: str | None) -> str:
    text = (CPUINFO / "amd-epyc-7451-zen1-naples.txt").read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if not ln.startswith("microcode")]
    if microcode is not None:
        lines.insert(1, f"microcode\t: {microcode}")
    return "\n".join(lines) + "\n"


def test_the_signature_is_built_as_libvirt_builds_it():
    sig = lc.cpuinfo_signature(HASWELL_CPUINFO.read_text(encoding="utf-8"), "x86_64")
    assert sig == ("GenuineIntel, Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz, family: 6, model: 63, "
                   "stepping: 2")
    assert lc.cpuinfo_signature("cpu\t\t: POWER9 (architected), altivec supported\nrevision\t: 2.2 (pvr 004e 1202)\n",
                                "ppc64le") == "POWER9 (architected), altivec supported, rev 2.2 (pvr 004e 1202)"
    assert lc.cpuinfo_signature("processor\t: 0\n", "x86_64") is None
    assert lc.cpuinfo_signature("anything", "aarch64") is None


def test_staleness_by_signature_and_microcode():
    caps = lc.parse_caps(with_cache_fields(signature=ROME_SIGNATURE), "c.xml")
    assert caps.host_cpu_signature == ROME_SIGNATURE
    assert lc.staleness(caps, kernel_release=None, microcode=43100245, signature=ROME_SIGNATURE) == []
    other = ROME_SIGNATURE.replace("stepping: 0", "stepping: 1")
    assert lc.staleness(caps, kernel_release=None, signature=other) == [
        f"probed on another CPU ('{ROME_SIGNATURE}'; the host: '{other}')"]
    # libvirt reads 0 when an x86 /proc/cpuinfo has no microcode line (a VM): a real revision is then stale
    assert lc.host_microcode(amd_cpuinfo(None), "x86_64") == 0
    assert lc.host_microcode(amd_cpuinfo("0x8001250"), "x86_64") == 0x8001250
    assert lc.host_microcode(amd_cpuinfo(None), "aarch64") is None
    assert lc.staleness(caps, kernel_release=None, microcode=0) == [
        "probed under microcode 0x291a855, the host has 0x0"]
    assert lc.unchecked(caps, kernel_release=None, microcode=None, signature=None) == [
        "the host CPU signature (the host's /proc/cpuinfo is not known)",
        "the microcode revision (the host's /proc/cpuinfo is not known)",
        "the kernel (the file records none)"]


def cache_root(make_root, blob: bytes, *, release: str, cpuinfo: str | None = None) -> Path:
    return make_root({
        f"{CACHE_DIR.lstrip('/')}/0123abcd.xml": blob.decode(),
        "proc/cpuinfo": cpuinfo or amd_cpuinfo(hex(43100245)),
        "proc/sys/kernel/osrelease": release + "\n",
        "proc/sys/kernel/version": "#1 SMP Debian\n",
    })


def test_the_fact_compares_the_signature_with_the_hosts_cpuinfo(make_root):
    host_sig = lc.cpuinfo_signature(amd_cpuinfo(None), "x86_64")
    current = Host.from_root(str(cache_root(make_root, with_cache_fields(signature=host_sig), release="6.1.0")))
    (entry,) = lc.cache_entries(current)
    assert entry.stale == () and "the kernel (the file records none)" in entry.unchecked
    moved = Host.from_root(str(cache_root(make_root, with_cache_fields(signature=ROME_SIGNATURE), release="6.1.0")))
    (entry,) = lc.cache_entries(moved)
    assert entry.stale == (f"probed on another CPU ('{ROME_SIGNATURE}'; the host: '{host_sig}')",)


# -- virsh capabilities: machine types and topology, never the CPU ---------------------------------------
def test_capabilities_machine_types_per_arch_and_topology():
    caps = parse(VIRSH_CAPS)
    assert [g.arch for g in caps.guests] == ["i686", "x86_64"]  # armv6l and the rest: TCG only
    assert caps.offers_machine("pc-0.11", "x86_64") is True
    assert caps.offers_machine("pc-q35-7.2", "x86_64") is False
    assert caps.offers_machine("virt", "aarch64") is False  # no aarch64 guests under KVM here
    assert [c.memory for c in caps.topology] == [16175540 << 10, 16510060 << 10]
    assert caps.topology[0].pages == ((4096, 4043885), (2 << 20, 0), (1 << 30, 0)) and caps.topology[0].cpus == 8
    test = parse(TEST_DRIVER_CAPS)
    assert test.guests == () and test.machines == ()  # the test driver's guests are type 'test', not KVM
    assert [c.memory for c in test.topology] == [2 << 30, 4 << 30]


def test_capabilities_is_never_a_cpu_view():
    r = hostaudit("cpu", "compare", str(HASWELL_CPUINFO), str(VIRSH_CAPS))
    assert r.returncode == 2 and "physical CPU" in r.stderr


def check(*args: str) -> tuple[int, dict]:
    r = hostaudit("guest", "check", *args, "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout)


def reasons(doc: dict, guest: str, host: str | None = None) -> list[dict]:
    (cell,) = [r for r in doc["results"] if r["guest"] == guest and (host is None or r["host"] == host)]
    return cell["reasons"]


def test_guest_check_takes_virsh_capabilities_as_the_host_for_machine_types_only():
    _rc, doc = check(str(HASWELL), "--host", str(VIRSH_CAPS))
    (host,) = doc["hosts"]
    assert host["input"] == "capabilities" and host["cpu_view"].startswith("none: 'virsh capabilities'")
    got = {(r["aspect"], r["verdict"]) for r in reasons(doc, "custom-haswell")}
    assert got == {("cpu", "unknown"), ("machine", "not-ok")}  # pc-q35-7.2 is not among its x86_64 machines
    assert any("memory from virsh capabilities" in n for n in host["notes"])


def test_caps_adds_to_the_host_before_it(tmp_path):
    _rc, doc = check(str(ROME), "--host", str(VIRSH_CAPS), "--caps", str(DOMCAPS_10))
    (host,) = doc["hosts"]
    assert host["cpu_view"] == "virsh domcapabilities host-model"
    assert host["usable_models_from"] == f"domcapabilities {DOMCAPS_10}"
    assert [(r["verdict"], r["text"].split(":")[0]) for r in reasons(doc, "custom-epyc-rome") if r["aspect"] == "cpu"] \
        == [("ok", "custom model EPYC-Rome"), ("not-ok", "CPU model EPYC-Rome")]
    # one document offering the machine type is enough (domcapabilities of pc-q35-10.0 here)
    machine = [r for r in reasons(doc, "custom-epyc-rome") if r["aspect"] == "machine"]
    assert [r["verdict"] for r in machine] == ["ok"] and "domcapabilities" in machine[0]["text"]
    r = hostaudit("guest", "check", str(ROME), "--caps", str(DOMCAPS_10), "--host", str(VIRSH_CAPS))
    assert r.returncode == 2 and "--caps belongs to the --host before it" in r.stderr
    r = hostaudit("guest", "check", str(ROME), "--host", str(DOMCAPS_10), "--caps", str(HASWELL_CPUINFO))
    assert r.returncode == 2 and "--caps" in r.stderr and "capabilities" in r.stderr


def test_guest_check_usable_models_with_blockers():
    _rc, doc = check(str(ROME), str(ROME_NOXSAVES), str(GENOA_FALLBACK), "--host", str(DOMCAPS_10),
                    "--host", str(CACHE))
    d10, c72 = (h["name"] for h in doc["hosts"])
    cpu = {(r["guest"], r["host"]): [x for x in r["reasons"] if x["aspect"] == "cpu"] for r in doc["results"]}
    rome = cpu[("custom-epyc-rome", d10)]
    assert rome[0]["verdict"] == "ok"  # libvirt's cpu_map: every feature of EPYC-Rome is there ...
    assert rome[1]["verdict"] == "not-ok" and "blockers: xsaves" in rome[1]["text"]  # ... QEMU says no
    assert str(DOMCAPS_10) in rome[1]["text"]
    assert "disables every blocker" in cpu[("custom-epyc-rome-noxsaves", d10)][1]["text"]
    assert cpu[("custom-epyc-rome-noxsaves", d10)][1]["verdict"] == "ok"
    assert "reports it usable" in cpu[("custom-epyc-rome", c72)][1]["text"]
    genoa = cpu[("custom-epyc-genoa-fallback", c72)][-1]
    assert genoa["verdict"] == "unknown" and "does not offer it" in genoa["text"]
    assert "fallback='allow'" in genoa["text"]  # QEMU 7.2 has no EPYC-Genoa: libvirt picks another model


def test_a_host_without_usable_models_says_so():
    _rc, doc = check(str(ROME), "--host", str(CPUINFO / "amd-epyc-7451-zen1-naples.txt"))
    assert any(n.startswith("usable CPU models not checked") for n in doc["hosts"][0]["notes"])


def test_memory_from_capabilities_topology_is_pools_not_free_pages(tmp_path):
    hp = GUESTS / "virsh-hugepages-2m.xml"  # 1 GiB on 2 MiB pages
    rc, doc = check(str(hp), "--host", str(HASWELL_CPUINFO), "--caps", str(VIRSH_CAPS))
    assert rc == 1
    mem = [r for r in reasons(doc, doc["guests"][0]["name"]) if r["aspect"] == "memory"]
    assert [m["verdict"] for m in mem] == ["not-ok"] and "the pool is empty" in mem[0]["text"]
    text = VIRSH_CAPS.read_text(encoding="utf-8").replace("<pages unit='KiB' size='2048'>0</pages>",
                                                          "<pages unit='KiB' size='2048'>512</pages>", 1)
    caps = tmp_path / "caps-2m.xml"
    caps.write_text(text, encoding="utf-8")
    _rc, doc = check(str(hp), "--host", str(HASWELL_CPUINFO), "--caps", str(caps))
    mem = [r for r in reasons(doc, doc["guests"][0]["name"]) if r["aspect"] == "memory"]
    assert [m["verdict"] for m in mem] == ["unknown"] and "512" in mem[0]["text"]
    assert os.path.basename(str(caps)) in mem[0]["text"]


@pytest.mark.parametrize("bad", [
    "<blockers model='EPYC&lt;x&gt;'><feature name='xsaves'/></blockers>",
    "<blockers model='EPYC'><feature name='x y'/></blockers>",
])
def test_hostile_blockers_are_refused_naming_the_file(tmp_path, bad):
    text = DOMCAPS_10.read_text(encoding="utf-8").replace("</mode>\n  </cpu>", bad + "</mode>\n  </cpu>", 1)
    with pytest.raises(lc.CapsError, match=r"domcapabilities XML d\.xml: .*blockers"):
        lc.parse_caps(text.encode(), "d.xml")
    bad_cells = VIRSH_CAPS.read_text(encoding="utf-8").replace("<memory unit='KiB'>16175540</memory>",
                                                               "<memory unit='parsec'>1</memory>", 1)
    with pytest.raises(lc.CapsError, match=r"capabilities XML c\.xml: <topology> cell #1 <memory>"):
        lc.parse_caps(bad_cells.encode(), "c.xml")


# -- guest check --host SNAPSHOT: the snapshot's cache end to end, and --caps over a stale one ---------
ROME_72 = GUESTS / "virsh-custom-epyc-rome-q35-7.2.xml"  # EPYC-Rome on pc-q35-7.2: QEMU 7.2 offers both
MILAN_72 = GUESTS / "virsh-custom-epyc-milan-q35-7.2.xml"  # QEMU 7.2 there: not usable, six blockers
CORE2DUO_72 = GUESTS / "virsh-custom-core2duo-q35-7.2.xml"  # every cpu_map feature there; QEMU: not usable (ss)
CACHE_PATH = f"{CACHE_DIR}/0123abcd.xml"
RUNNING = "6.1.0-18-amd64"


def cache_snapshot(make_root, tmp_path: Path, *, probed_under: str) -> Path:
    """``hostaudit collect --root`` of a tree running RUNNING whose cache is libvirt's caps_7.2.0
    with the <kernelVersion> ``probed_under`` and the tree's own CPU signature and microcode (the
    file's 0x291a855) added: current when ``probed_under`` is RUNNING, else stale by kernel only.
    The tree's /proc/cpuinfo is an EPYC 7451 (Zen 1): it lacks EPYC-Rome's clwb, rdpid, umip,
    wbnoinvd, which the cache's KVM host CPU (an EPYC-Rome) has, so the verdicts show which was used."""
    cpuinfo = amd_cpuinfo(hex(43100245))
    blob = with_cache_fields(kernel=f"{probed_under} #1 SMP Debian",
                             signature=lc.cpuinfo_signature(cpuinfo, "x86_64"))
    root = cache_root(make_root, blob, release=RUNNING, cpuinfo=cpuinfo)
    snap = tmp_path / f"probed-{probed_under}.json"
    r = hostaudit("collect", "--root", str(root), "-o", str(snap))
    assert r.returncode == 0, r.stderr
    return snap


def by_guest(doc: dict) -> dict[str, dict]:
    return {r["guest"]: r for r in doc["results"]}


def aspects(cell: dict) -> list[tuple[str, str]]:
    return [(r["aspect"], r["verdict"]) for r in cell["reasons"]]


def test_guest_check_takes_a_current_cache_in_the_snapshot_as_the_cpu_view(make_root, tmp_path):
    snap = cache_snapshot(make_root, tmp_path, probed_under=RUNNING)
    rc, doc = check(str(ROME_72), str(CORE2DUO_72), str(MILAN_72), "--host", str(snap))
    (host,) = doc["hosts"]
    assert host["input"] == "snapshot" and host["cpu_view"] == "libvirt QEMU capabilities cache (KVM host CPU)"
    assert host["libvirt"] == [{"kind": "qemu-caps-cache", "source": CACHE_PATH}] and host["stale_cache"] is None
    assert host["usable_models_from"] == f"qemu-caps-cache {CACHE_PATH}" and "pc-q35-7.2" in host["machines"]
    assert f"CPU from libvirt's QEMU capabilities cache {CACHE_PATH}, in preference to /proc/cpuinfo" in host["notes"]
    assert not any("not checked" in n or "stale" in n for n in host["notes"])
    cells = by_guest(doc)
    rome = cells["custom-epyc-rome-q35-7.2"]  # the cache's EPYC-Rome host CPU has what /proc/cpuinfo lacks
    assert rome["verdict"] == "ok" and aspects(rome) == [("cpu", "ok"), ("cpu", "ok"), ("machine", "ok")]
    assert rome["reasons"][1]["text"] == (f"CPU model EPYC-Rome: QEMU/KVM here reports it usable "
                                          f"(qemu-caps-cache {CACHE_PATH})")
    assert rome["reasons"][2]["text"].startswith("machine type pc-q35-7.2: this host's QEMU offers it")
    core2duo = cells["custom-core2duo-q35-7.2"]  # libvirt's CPU map finds every feature; QEMU says no
    assert core2duo["verdict"] == "not-ok" and ("cpu", "not-ok") in aspects(core2duo)
    assert [r["text"] for r in core2duo["reasons"] if r["verdict"] == "not-ok"] == [
        f"CPU model core2duo: QEMU/KVM here reports it not usable; blockers: ss (qemu-caps-cache {CACHE_PATH})"]
    assert [r["text"] for r in core2duo["reasons"][:2]] == [
        "custom model core2duo: this host has every feature of the model",
        "note: core2duo is a model of Intel on an AMD host"]
    milan = cells["custom-epyc-milan-q35-7.2"]  # QEMU 7.2 names pku twice: shown once
    assert milan["verdict"] == "not-ok"
    assert (f"CPU model EPYC-Milan: QEMU/KVM here reports it not usable; blockers: pcid, erms, invpcid, pku, "
            f"fsrm, ibrs (qemu-caps-cache {CACHE_PATH})") in [r["text"] for r in milan["reasons"]]
    assert doc["summary"] == {"ok": 1, "not-ok": 2, "unknown": 0} and rc == 1
    text = hostaudit("guest", "check", str(ROME_72), "--host", str(snap)).stdout
    assert f"note ({host['name']}): CPU source: libvirt QEMU capabilities cache (KVM host CPU)" in text
    # the same tree's /proc/cpuinfo alone: EPYC-Rome's features are not all there
    cpuinfo = tmp_path / "cpuinfo.txt"
    cpuinfo.write_text(amd_cpuinfo(hex(43100245)), encoding="utf-8")
    _rc, alone = check(str(ROME_72), "--host", str(cpuinfo))
    assert alone["results"][0]["reasons"][0]["text"].startswith("custom model EPYC-Rome: this host lacks clwb")


def test_caps_is_the_cpu_view_over_a_stale_cache_which_is_not_used(make_root, tmp_path):
    snap = cache_snapshot(make_root, tmp_path, probed_under="6.1.0-13-amd64")
    why = f"probed under kernel 6.1.0-13-amd64, the host runs {RUNNING}"
    rc, doc = check(str(ROME), str(ROME_NOXSAVES), str(ROME_72), "--host", str(snap), "--caps", str(DOMCAPS_10))
    (host,) = doc["hosts"]
    assert host["cpu_view"] == "virsh domcapabilities host-model"
    assert host["model_name"] == "guest CPU: host-model EPYC-Rome"
    assert host["usable_models_from"] == f"domcapabilities {DOMCAPS_10}"
    assert host["libvirt"] == [{"kind": "domcapabilities", "source": str(DOMCAPS_10)}]  # the stale cache: not used
    assert host["machines"] == ["pc-q35-10.0"]  # only what domcapabilities says, none of the stale cache's
    assert host["stale_cache"] == {"source": CACHE_PATH, "why": [why]}
    assert f"CPU from domcapabilities {DOMCAPS_10} (--caps), in preference to /proc/cpuinfo of {snap}" in host["notes"]
    assert (f"libvirt's QEMU capabilities cache {CACHE_PATH} in {snap} is stale ({why}): not used, for the CPU, "
            "usable CPU models or machine types") in host["notes"]
    cells = by_guest(doc)
    assert not any(CACHE_PATH in r["text"] for c in cells.values() for r in c["reasons"])
    # the stale cache says EPYC-Rome is usable; domcapabilities (QEMU 10.0, xsaves filtered) says not
    rome = cells["custom-epyc-rome"]
    assert rome["verdict"] == "not-ok" and aspects(rome) == [("cpu", "ok"), ("cpu", "not-ok"), ("machine", "ok")]
    assert rome["reasons"][1]["text"] == ("CPU model EPYC-Rome: QEMU/KVM here reports it not usable; blockers: "
                                          f"xsaves (domcapabilities {DOMCAPS_10})")
    assert f"(domcapabilities {DOMCAPS_10})" in rome["reasons"][2]["text"]  # the stale cache lacks pc-q35-10.0
    assert cells["custom-epyc-rome-noxsaves"]["verdict"] == "ok"
    # pc-q35-7.2 is in the stale cache only: not known, rather than taken from it
    machine = [r for r in cells["custom-epyc-rome-q35-7.2"]["reasons"] if r["aspect"] == "machine"]
    assert [r["verdict"] for r in machine] == ["unknown"] and "describes machine pc-q35-10.0 only" in machine[0]["text"]
    assert rc == 1
    text = hostaudit("guest", "check", str(ROME), "--host", str(snap), "--caps", str(DOMCAPS_10)).stdout
    assert f"{CACHE_PATH} in {snap} is stale ({why}): not used" in text


def test_a_stale_cache_alone_gives_neither_cpu_models_nor_machine_types(make_root, tmp_path):
    snap = cache_snapshot(make_root, tmp_path, probed_under="6.1.0-13-amd64")
    rc, doc = check(str(ROME_72), str(CORE2DUO_72), "--host", str(snap))
    (host,) = doc["hosts"]
    assert host["cpu_view"] == "/proc/cpuinfo" and host["libvirt"] == [] and host["machines"] is None
    assert host["usable_models_from"] is None and host["stale_cache"]["source"] == CACHE_PATH
    assert any(n.startswith(f"libvirt's QEMU capabilities cache {CACHE_PATH} is stale (probed under kernel "
                            "6.1.0-13-amd64") for n in host["notes"])
    assert any(n.startswith("machine types not checked") and "cache is stale" in n for n in host["notes"])
    assert any(n.startswith("usable CPU models not checked") for n in host["notes"])
    cells = by_guest(doc)
    # the CPU is the tree's /proc/cpuinfo (an EPYC 7451), not the stale cache's EPYC-Rome
    rome = cells["custom-epyc-rome-q35-7.2"]
    assert aspects(rome) == [("cpu", "not-ok")] and rome["reasons"][0]["text"].startswith(
        "custom model EPYC-Rome: this host lacks clwb")
    # features only (and the note on an Intel model): no word from QEMU on it, no machine type
    assert aspects(cells["custom-core2duo-q35-7.2"]) == [("cpu", "ok"), ("cpu", "ok")]
    assert rc == 1


def test_cpu_compare_of_a_stale_cache_snapshot_uses_its_cpuinfo_flags(make_root, tmp_path):
    """A stale cache is named but never compared: the snapshot is its own /proc/cpuinfo, flags and all
    (it once lent the stale cache's flags to a comparison that said /proc/cpuinfo was used)."""
    snap = cache_snapshot(make_root, tmp_path, probed_under="6.1.0-13-amd64")
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(amd_cpuinfo(hex(43100245)))
    rc, doc = run_json("cpu", "compare", str(snap), str(cpuinfo))
    assert rc == 0 and doc["verdict"] == "identical", doc
    assert any("is stale" in n for n in doc["notes"])
