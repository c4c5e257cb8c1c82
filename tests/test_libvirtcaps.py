"""libvirt's capabilities as hostaudit reads them (audit.cpu.libvirtcaps, audit.host.libvirtcaps):
libvirt's own test files (tests/data/libvirtcaps, see its README), staleness of the QEMU
capabilities cache, the guest-CPU view in ``cpu compare`` and machine types in ``guest check``,
and hostile XML."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.cpu import libvirtcaps as lc
from audit.cpu.sources import load_file
from audit.errors import UsageError
from audit.host.core import Host
from audit.host.libvirtcaps import CACHE_DIR, qemu_caps_cache
from tests.conftest import DATA
from tests.test_snapshot import hostaudit

CAPS = DATA / "libvirtcaps"
CACHE = CAPS / "caps_7.2.0.x86_64.xml"  # libvirt tests/qemucapabilitiesdata (an AMD EPYC-Rome host)
DOMCAPS_Q35 = CAPS / "qemu_7.2.0-q35.x86_64.xml"  # libvirt tests/domaincapsdata
DOMCAPS_PC = CAPS / "qemu_7.2.0.x86_64.xml"
VIRSH_CAPS = CAPS / "caps-qemu-kvm.xml"  # libvirt tests/capabilityschemadata
GUEST = DATA / "guests" / "virsh-custom-haswell.xml"  # machine='pc-q35-7.2', custom Haswell
HASWELL_CPUINFO = DATA / "cpuinfo" / "intel-xeon-e5-2680v3-haswell-ep.txt"


def parse(path: Path) -> lc.GuestCpu:
    return lc.parse_caps(path.read_bytes(), str(path))


# -- the parsers on libvirt's own files ------------------------------------------------------------
def test_domcapabilities_host_model_usable_models_and_machine():
    caps = parse(DOMCAPS_Q35)
    assert caps.kind == lc.KIND_DOMCAPS and caps.arch == "x86_64" and caps.virt_type == "kvm"
    assert caps.host_model == "EPYC-Rome" and caps.vendor == "AMD"
    assert lc.Feature("require", "x2apic") in caps.features and len(caps.features) == 24
    assert "EPYC-Rome" in caps.usable and "Skylake-Server" in caps.unusable and "Westmere" in caps.usable
    assert caps.machines == ("pc-q35-7.2",) and not caps.machines_complete
    assert caps.offers_machine("pc-q35-7.2") is True and caps.offers_machine("pc-i440fx-7.2") is None
    flags = lc.guest_flags(caps)
    assert {"sse4_2", "avx2", "x2apic"} <= flags  # EPYC-Rome's own features plus the required ones


def test_the_qemu_capabilities_cache():
    caps = parse(CACHE)
    assert caps.kind == lc.KIND_CACHE and caps.arch == "x86_64" and caps.qemu_version == "7.2.0"
    assert caps.microcode_version == 43100245 and caps.kernel_version is None  # libvirt's tests omit it
    assert caps.vendor == "AMD" and "avx2" in caps.host_props and "aes" in caps.host_props
    assert "gfni" not in caps.host_props  # value='false'
    assert "EPYC-Rome" in caps.usable and "Skylake-Server" in caps.unusable
    assert {"pc-q35-7.2", "pc-i440fx-7.2", "pc", "q35"} <= set(caps.machines) and caps.machines_complete
    assert caps.offers_machine("pc-q35-99.0") is False
    flags = lc.guest_flags(caps)
    assert {"avx2", "aes", "sse4_1"} <= flags and not any(f.startswith("vmx") for f in flags)


def test_virsh_capabilities_gives_machine_types_only():
    caps = parse(VIRSH_CAPS)  # the host's own arch (<host><cpu><arch>x86_64) by default
    assert caps.kind == lc.KIND_CAPS and caps.arch == "x86_64" and not caps.has_cpu_view
    assert {"pc-0.11", "pc", "isapc"} <= set(caps.machines)
    assert parse_x86_64().machines and parse_x86_64().arch == "x86_64"
    i686 = lc.parse_caps(VIRSH_CAPS.read_bytes(), str(VIRSH_CAPS), arch="i686")
    assert i686.arch == "i686" and "pc-0.11" in i686.machines
    with pytest.raises(UsageError, match="physical CPU"):
        load_file(str(VIRSH_CAPS))


def parse_x86_64() -> lc.GuestCpu:
    return lc.parse_caps(VIRSH_CAPS.read_bytes(), str(VIRSH_CAPS), arch="x86_64")


def test_root_kind_is_told_from_the_root_element():
    assert lc.root_kind(b"<?xml version='1.0'?>\n<!-- x -->\n<domainCapabilities>") == lc.KIND_DOMCAPS
    assert lc.root_kind(b"<qemuCaps>\n") == lc.KIND_CACHE
    assert lc.root_kind(b"<capabilities>") == lc.KIND_CAPS
    assert lc.root_kind(b"<domain type='kvm'>") is None and lc.root_kind(b"processor\t: 0\n") is None


# -- staleness -----------------------------------------------------------------------------------
def with_versions(kernel: str | None, microcode: int) -> bytes:
    text = CACHE.read_text(encoding="utf-8").replace("<microcodeVersion>43100245</microcodeVersion>",
                                                     f"<microcodeVersion>{microcode}</microcodeVersion>")
    if kernel is not None:
        text = text.replace("<package>", f"<kernelVersion>{kernel}</kernelVersion>\n  <package>", 1)
    return text.encode()


def test_staleness_names_the_kernel_and_the_microcode():
    caps = lc.parse_caps(with_versions("6.1.0-13-amd64 #1 SMP Debian", 0x3C), "c.xml")
    assert caps.kernel_version == "6.1.0-13-amd64 #1 SMP Debian"
    assert lc.staleness(caps, kernel_release="6.1.0-13-amd64", kernel_version="#1 SMP Debian", microcode=0x3C) == []
    why = lc.staleness(caps, kernel_release="6.1.0-18-amd64", microcode=0x3D)
    assert why == ["probed under kernel 6.1.0-13-amd64, the host runs 6.1.0-18-amd64",
                   "probed under microcode 0x3c, the host has 0x3d"]
    assert lc.staleness(caps, kernel_release="6.1.0-13-amd64", kernel_version="#2 SMP Debian") == [
        "probed under another build of kernel 6.1.0-13-amd64"]
    assert lc.cpuinfo_microcode("processor\t: 0\nmicrocode\t: 0x3c\n") == 0x3C
    assert lc.cpuinfo_microcode("processor\t: 0\n") is None


def cache_root(make_root, blob: bytes, *, release: str, microcode: str) -> Host:
    cpuinfo = HASWELL_CPUINFO.read_text(encoding="utf-8")
    cpuinfo = "\n".join(f"microcode\t: {microcode}" if ln.startswith("microcode") else ln
                        for ln in cpuinfo.splitlines()) + "\n"
    return Host.from_root(str(make_root({
        f"{CACHE_DIR.lstrip('/')}/0123abcd.xml": blob.decode(),
        "proc/cpuinfo": cpuinfo,
        "proc/sys/kernel/osrelease": release + "\n",
        "proc/sys/kernel/version": "#1 SMP Debian\n",
    })))


def test_the_fact_reads_the_cache_and_says_when_it_is_stale(make_root):
    current = cache_root(make_root, with_versions("6.1.0-13-amd64 #1 SMP Debian", 0x3C),
                         release="6.1.0-13-amd64", microcode="0x3c")
    (entry,) = lc.cache_entries(current)
    assert entry.path == f"{CACHE_DIR}/0123abcd.xml" and entry.stale == ()
    assert lc.kvm_caps(current, "x86")[0] == entry
    stale = cache_root(make_root, with_versions("6.1.0-13-amd64 #1 SMP Debian", 0x3C),
                       release="6.1.0-18-amd64", microcode="0x3d")
    (entry,) = lc.cache_entries(stale)
    assert len(entry.stale) == 2 and "6.1.0-18-amd64" in entry.stale[0] and "0x3d" in entry.stale[1]


def test_the_fact_declares_the_cache_glob():
    assert f"{CACHE_DIR}/*" in qemu_caps_cache.__fact__.paths


# -- cpu compare and guest check -------------------------------------------------------------------
def test_cpu_compare_takes_domcapabilities_and_says_its_source():
    r = hostaudit("cpu", "compare", str(DOMCAPS_Q35), str(HASWELL_CPUINFO), "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    doc = json.loads(r.stdout)
    assert doc["a"]["input"] == "domcapabilities" and doc["a"]["vendor"] == "amd"
    assert "A: CPU source: virsh domcapabilities host-model" in doc["notes"]
    assert "B: CPU source: /proc/cpuinfo" in doc["notes"]
    assert doc["cross_vendor"] is True
    text = hostaudit("cpu", "compare", str(DOMCAPS_Q35), str(DOMCAPS_PC)).stdout
    assert "from domcapabilities" in text and "note: A: CPU source: virsh domcapabilities host-model" in text


def test_cpu_baseline_takes_a_capabilities_cache():
    r = hostaudit("cpu", "baseline", str(CACHE), str(DOMCAPS_Q35), "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["model"] and any("CPU source: libvirt QEMU capabilities cache" in n for n in doc["notes"])


def test_guest_check_flags_a_machine_type_the_destination_does_not_offer(tmp_path):
    odd = tmp_path / "odd-machine.xml"
    odd.write_text(GUEST.read_text(encoding="utf-8").replace("machine='pc-q35-7.2'", "machine='pc-q35-99.0'"))
    r = hostaudit("guest", "check", str(GUEST), str(odd), "--host", str(CACHE), "--format", "json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    bad = next(res for res in doc["results"] if "pc-q35-99.0" in json.dumps(res["reasons"]))
    assert bad["verdict"] == "not-ok"
    assert any(x["aspect"] == "machine" and x["verdict"] == "not-ok" for x in bad["reasons"])
    good = next(res for res in doc["results"] if res is not bad)
    assert any(x["aspect"] == "machine" and x["verdict"] == "ok" for x in good["reasons"]), good
    assert "CPU source: libvirt QEMU capabilities cache (KVM host CPU)" in doc["hosts"][0]["notes"]


def test_guest_check_machine_type_is_unknown_when_domcapabilities_describes_another():
    r = hostaudit("guest", "check", str(GUEST), "--host", str(DOMCAPS_PC), "--format", "json")
    doc = json.loads(r.stdout)
    (res,) = doc["results"]
    assert any(x["aspect"] == "machine" and x["verdict"] == "unknown" for x in res["reasons"])
    r = hostaudit("guest", "check", str(GUEST), "--host", str(DOMCAPS_Q35), "--format", "json")
    (res,) = json.loads(r.stdout)["results"]
    assert any(x["aspect"] == "machine" and x["verdict"] == "ok" for x in res["reasons"])


# -- hostile XML -----------------------------------------------------------------------------------
HOSTILE = {
    "doctype": (b'<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY a "aaaa">]>\n<domainCapabilities/>', "DOCTYPE"),
    "deep": (b"<domainCapabilities>" + b"<a>" * 100 + b"</a>" * 100 + b"</domainCapabilities>", "nested deeper"),
    "markup": (b"<domainCapabilities><cpu><mode name='custom' supported='yes'>"
               b"<model usable='yes'>&lt;script&gt;x</model></mode></cpu></domainCapabilities>", "not a libvirt"),
    "machine": (b"<qemuCaps><machine type='kvm' name='pc&lt;b&gt;'/></qemuCaps>", "not a libvirt"),
    "broken": (b"<domainCapabilities><cpu>", "not well-formed"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_xml_is_a_usage_error_naming_the_file(tmp_path, name):
    blob, why = HOSTILE[name]
    path = tmp_path / f"{name}.xml"
    path.write_bytes(blob)
    with pytest.raises(UsageError, match=why) as exc:
        load_file(str(path))
    assert str(path) in str(exc.value)
    r = hostaudit("cpu", "compare", str(path), str(HASWELL_CPUINFO))
    assert r.returncode == 2 and str(path) in r.stderr and "<script>" not in r.stderr + r.stdout


def test_a_huge_file_is_refused(tmp_path):
    path = tmp_path / "huge.xml"
    path.write_bytes(b"<domainCapabilities>" + b" " * (lc.MAX_BYTES + 1) + b"</domainCapabilities>")
    with pytest.raises(UsageError, match="limit"):
        lc.parse_caps(path.read_bytes(), str(path))


# -- a snapshot carries the cache ----------------------------------------------------------------
def test_a_snapshot_carries_the_cache_and_cpu_compare_uses_it_unless_stale(make_root, tmp_path):
    """collect captures /var/cache/libvirt/qemu/capabilities; cpu compare on the snapshot takes the
    guest-CPU view from it while it is current, and /proc/cpuinfo, saying why, once it is stale."""
    def snapshot(name: str, release: str, microcode: str) -> Path:
        host = cache_root(make_root, with_versions("6.1.0-13-amd64 #1 SMP Debian", 0x3C),
                          release=release, microcode=microcode)
        out = tmp_path / f"{name}.json"
        r = hostaudit("collect", "--root", host.root, "-o", str(out), "--no-entry-points")
        assert r.returncode == 0, r.stderr
        assert f"{CACHE_DIR}/0123abcd.xml" in json.loads(out.read_text())["entries"]
        return out

    current = snapshot("current", "6.1.0-13-amd64", "0x3c")
    stale = snapshot("stale", "6.1.0-18-amd64", "0x3d")
    doc = json.loads(hostaudit("cpu", "compare", str(current), str(stale), "--format", "json").stdout)
    notes = " ".join(doc["notes"])
    assert "A: CPU source: libvirt QEMU capabilities cache" in notes
    assert "B: CPU source: /proc/cpuinfo" in notes and "6.1.0-18-amd64" in notes
