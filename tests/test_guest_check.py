"""``hostaudit guest check``: libvirt-produced domain XML (tests/data/guests, see its README) against
snapshots of fake roots built from the real /proc samples, through the console script; the XML
reader's bounds on hostile files; the judgement's rules on parsed domains."""

from __future__ import annotations

import html.parser
import json
from pathlib import Path

import pytest

from audit.guest import judge as gj
from audit.guest.domain import DomainError, parse_domain, parse_nodeset, scale
from tests.conftest import DATA, build_tree
from tests.test_snapshot import hostaudit
from tests.trees import live_tree

GUESTS = DATA / "guests"
HASWELL = "intel-xeon-e5-2680v3-haswell-ep.txt"
SKYLAKE = "intel-xeon-gold-6132-skylake-sp.txt"
NAPLES = "amd-epyc-7451-zen1-naples.txt"
THIS_VM = "this-vm.txt"  # Cascadelake-class, with avx512f; no vmx


@pytest.fixture(scope="module")
def hosts(tmp_path_factory) -> dict[str, str]:
    """Snapshots (hostaudit collect) of fake roots: huge page pools of 512 x 2M and 2 x 1G with
    hugetlbfs mounts of both sizes ('-hp'), or none (this-vm defaults)."""
    base = tmp_path_factory.mktemp("hosts")
    out = {}
    for name, sample, cpu in (("haswell-hp", "this-vm-hugepages", HASWELL), ("thisvm-hp", "this-vm-hugepages", THIS_VM),
                              ("naples", "this-vm", NAPLES), ("skylake-hp", "this-vm-hugepages", SKYLAKE)):
        tree = live_tree(sample, cpuinfo=cpu)
        tree["etc/hostname"] = name + "\n"
        root = base / name
        root.mkdir()
        build_tree(root, tree)
        snap = base / f"{name}.json"
        r = hostaudit("collect", "--root", str(root), "-o", str(snap), "--no-entry-points")
        assert r.returncode == 0, r.stderr
        out[name] = str(snap)
    return out


def check(guests: list[str], host_paths: list[str], *extra: str, fmt: str = "json"):
    args = ["guest", "check", *[str(GUESTS / g) if "/" not in g else g for g in guests]]
    for h in host_paths:
        args += ["--host", h]
    r = hostaudit(*args, "--format", fmt, *extra)
    return r, (json.loads(r.stdout) if fmt == "json" and r.returncode in (0, 1) else None)


def cell(doc: dict, host: str, guest: str | None = None) -> dict:
    rows = [r for r in doc["results"] if r["host"] == host and (guest is None or r["guest"] == guest)]
    assert len(rows) == 1, rows
    return rows[0]


def test_every_recorded_domain_parses():
    files = sorted(GUESTS.glob("*.xml"))
    assert len(files) >= 10
    for f in files:
        d = parse_domain(f.read_bytes(), str(f))
        assert d.name


def test_the_reader_sees_what_libvirt_wrote():
    run = parse_domain((GUESTS / "virsh-host-model-running.xml").read_bytes(), "x")
    assert run.running and run.cpu_mode == "custom" and run.check == "full" and run.model == "Skylake-Client-IBRS"
    assert run.vendor == "Intel" and ("require", "md-clear") in run.features
    stopped = parse_domain((GUESTS / "virsh-host-model-stopped.xml").read_bytes(), "x")
    assert not stopped.running and stopped.cpu_mode == "host-model" and stopped.model is None
    strict = parse_domain((GUESTS / "virsh-libvirt-cpu-strict1.xml").read_bytes(), "x")
    assert strict.cpu_mode == "custom" and strict.match == "strict" and strict.fallback == "allow"  # libvirt's defaults
    assert ("forbid", "wdt") in strict.features and ("disable", "nx") in strict.features
    hp = parse_domain((GUESTS / "libvirt-hugepages-pages.xml").read_bytes(), "x")
    assert hp.memory == 4 << 30 and [p.size for p in hp.pages] == [2 << 20, 1 << 30]
    assert gj.hugepage_needs(hp, 2 << 20) == {2 << 20: 1 << 30, 1 << 30: 3 << 30}
    two = parse_domain((GUESTS / "virsh-hugepages-2m.xml").read_bytes(), "x")
    assert two.memory == 1 << 30 and two.pages[0].size == 2 << 20 and two.arch == "x86_64"
    assert two.machine == "pc-q35-7.2"


@pytest.mark.parametrize(("value", "unit", "want"), [
    ("4194304", None, 4 << 30), ("4", "GiB", 4 << 30), ("4", "G", 4 << 30), ("1", "GB", 10**9),
    ("2048", "KiB", 2 << 20), ("2", "M", 2 << 20), ("512", "b", 512), ("1", "bytes", 1), ("1", "k", 1024),
])
def test_libvirt_units(value, unit, want):
    assert scale(value, unit, what="x") == want


def test_bad_units_and_nodesets():
    for v, u in (("1", "parsec"), ("-1", None), ("1e3", None), ("9" * 30, None), ("99999999999", "EiB")):
        with pytest.raises(ValueError):
            scale(v, u, what="x")
    assert parse_nodeset("0,2-3") == {0, 2, 3} and parse_nodeset("0-7,^5") == {0, 1, 2, 3, 4, 6, 7}
    with pytest.raises(ValueError):
        parse_nodeset("0-99999999")


def test_matrix_verdicts(hosts):
    guests = ["virsh-custom-haswell.xml", "virsh-host-model-running.xml", "virsh-host-model-stopped.xml",
              "virsh-hugepages-2m.xml", "virsh-hugepages-1g-4g.xml", "virsh-passthrough.xml"]
    r, doc = check(guests, [hosts["haswell-hp"], hosts["thisvm-hp"], hosts["naples"], hosts["skylake-hp"]])
    assert r.returncode == 1, r.stderr
    assert doc["kind"] == "guest-check" and doc["schema_version"] == 1
    assert len(doc["results"]) == 6 * 4
    v = {(x["guest"], x["host"]): x["verdict"] for x in doc["results"]}
    # custom Haswell-noTSX forbidding avx512f: fine on Haswell; this-vm has avx512f; Naples is AMD
    assert v[("custom-haswell", "haswell-hp")] == "ok"
    assert cell(doc, "thisvm-hp", "custom-haswell")["forbidden"] == ["avx512f"]
    assert v[("custom-haswell", "thisvm-hp")] == v[("custom-haswell", "naples")] == "not-ok"
    # a running host-model guest, expanded to Skylake-Client-IBRS + features: Haswell lacks the model's
    # newer features; the Skylake-SP sample's kernel does not show xsaves or md_clear
    hsw = cell(doc, "haswell-hp", "host-model-running")
    assert hsw["verdict"] == "not-ok" and {"adx", "rdseed", "smap", "clflushopt", "xsaves"} <= set(hsw["missing"])
    sky = cell(doc, "skylake-hp", "host-model-running")
    assert sky["verdict"] == "not-ok" and set(sky["missing"]) == {"md-clear", "xsaves"}
    assert "vmx" in cell(doc, "thisvm-hp", "host-model-running")["missing"]
    # a stopped host-model guest starts anywhere (of its architecture), and says why
    for h in ("haswell-hp", "thisvm-hp", "naples", "skylake-hp"):
        x = cell(doc, h, "host-model-stopped")
        assert x["verdict"] == "ok" and "starts on any host" in x["reasons"][0]["text"]
    # huge pages: 1 GiB on 2M pages fits 512 free exactly; 4 GiB on 1G pages does not fit 2 free;
    # Naples has no pool configured
    assert v[("hugepages-2m", "haswell-hp")] == "ok"
    assert v[("hugepages-2m", "naples")] == "not-ok"
    assert "pool is empty" in cell(doc, "naples", "hugepages-2m")["reasons"][-1]["text"]
    big = cell(doc, "haswell-hp", "hugepages-1g-4g")
    assert big["verdict"] == "not-ok" and "needs 4" in big["reasons"][-1]["text"] and big["hugepages"] == {
        str(1 << 30): 4 << 30}
    # host-passthrough without --from: cannot tell
    assert {v[("passthrough", h)] for h in hosts} == {"unknown"}
    assert "identical CPU" in cell(doc, "naples", "passthrough")["reasons"][0]["text"]
    assert doc["all_can_move"] is False and sum(doc["summary"].values()) == 24


def test_qemu_driver_outputs(hosts):
    """libvirt's own test data (tests/qemuxml2xmloutdata): host-model and host-passthrough with
    require/force/disable features, and per-NUMA-cell huge page sizes."""
    r, doc = check(["libvirt-cpu-host-model-features.xml", "libvirt-cpu-host-passthrough-features.xml",
                    "libvirt-hugepages-pages.xml"], [hosts["haswell-hp"], hosts["thisvm-hp"]])
    assert r.returncode == 1
    # host-model plus 'force ds': the real Haswell shows ds (the debug store), the VM sample does not
    hm = [x for x in doc["results"] if x["guest"].endswith("host-model-features.xml)")]
    assert [x["verdict"] for x in hm] == ["ok", "not-ok"] and hm[1]["missing"] == ["ds"]
    pages = [x for x in doc["results"] if x["guest"].endswith("hugepages-pages.xml)")]
    for x in pages:  # cell 1 on 2M pages (512 free: fits); cells 0, 2, 3 on 1G pages (3 needed, 2 free)
        texts = [r["text"] for r in x["reasons"] if r["aspect"] == "memory"]
        assert any("2 MiB" in t and "needs 512" in t for t in texts)
        assert any("1 GiB" in t and "needs 3" in t and "2 are free" in t for t in texts)
        assert x["verdict"] == "not-ok"


def test_from_decides_host_passthrough(hosts):
    r, doc = check(["virsh-passthrough.xml"], [hosts["haswell-hp"], hosts["naples"]], "--from", hosts["haswell-hp"])
    assert r.returncode == 1
    assert cell(doc, "haswell-hp")["verdict"] == "ok"
    naples = cell(doc, "naples")
    assert naples["verdict"] == "not-ok" and "AMD" in naples["reasons"][0]["text"]
    r, doc = check(["virsh-passthrough.xml"], [hosts["haswell-hp"]], "--from", hosts["haswell-hp"])
    assert r.returncode == 0 and doc["all_can_move"]


def test_all_ok_exits_0_and_text_is_a_table(hosts):
    r, doc = check(["virsh-host-model-stopped.xml", "virsh-hugepages-default.xml"],
                   [hosts["haswell-hp"], hosts["thisvm-hp"]])
    assert r.returncode == 0 and doc["all_can_move"]
    r, _ = check(["virsh-host-model-stopped.xml", "virsh-hugepages-default.xml"],
                 [hosts["haswell-hp"], hosts["thisvm-hp"]], fmt="text")
    assert r.returncode == 0
    head = r.stdout.splitlines()[0].split()
    assert head == ["guest", "cpu", "haswell-hp", "thisvm-hp"]
    assert "hugepages-default -> thisvm-hp: ok" in r.stdout and "needs 256" in r.stdout


def test_guests_that_fit_alone_but_not_together(hosts):
    two = GUESTS / "virsh-hugepages-2m.xml"
    r, doc = check([str(two), str(two)], [hosts["haswell-hp"]])
    assert r.returncode == 0  # each alone fits
    assert any("need 1024 huge pages of 2 MiB together; 512 are free" in n for n in doc["hosts"][0]["notes"])
    assert [g["name"] for g in doc["guests"]] == [f"hugepages-2m ({two})", f"hugepages-2m ({two}) #2"]


def test_a_cpuinfo_file_is_cpu_only(hosts):
    r, doc = check(["virsh-hugepages-2m.xml", "virsh-custom-haswell.xml"], [str(DATA / "cpuinfo" / HASWELL)])
    assert r.returncode == 1
    assert cell(doc, HASWELL, "hugepages-2m")["verdict"] == "unknown"
    assert cell(doc, HASWELL, "custom-haswell")["verdict"] == "ok"
    assert doc["hosts"][0]["input"] == "cpuinfo" and not doc["hosts"][0]["memory_facts"]


def test_architecture_mismatch(hosts, tmp_path):
    arm = (GUESTS / "virsh-host-model-stopped.xml").read_text().replace("arch='x86_64'", "arch='aarch64'")
    (tmp_path / "arm.xml").write_text(arm)
    r, doc = check([str(tmp_path / "arm.xml")], [hosts["haswell-hp"]])
    assert r.returncode == 1
    assert "aarch64 guest cannot run under KVM on this x86 host" in cell(doc, "haswell-hp")["reasons"][0]["text"]


class _Collect(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def test_html_escapes_what_came_from_the_guest(hosts, tmp_path):
    hostile = (GUESTS / "virsh-host-model-stopped.xml").read_text().replace(
        "<name>host-model-stopped</name>", "<name>&lt;script&gt;alert(1)&lt;/script&gt;&amp;x</name>")
    (tmp_path / "h.xml").write_text(hostile)
    r = hostaudit("guest", "check", str(tmp_path / "h.xml"), "--host", hosts["haswell-hp"], "--format", "html")
    assert r.returncode == 0, r.stderr
    assert "<script" not in r.stdout and "&lt;script&gt;alert(1)" in r.stdout
    p = _Collect()
    p.feed(r.stdout)
    assert "script" not in p.tags and "<script>alert(1)</script>&x" in "".join(p.text)
    r = hostaudit("guest", "check", str(tmp_path / "h.xml"), "--host", hosts["haswell-hp"], "--format", "json")
    assert json.loads(r.stdout)["guests"][0]["name"] == "<script>alert(1)</script>&x"  # data, as it was


def _hostile(tmp_path: Path) -> dict[str, Path]:
    base = (GUESTS / "virsh-custom-haswell.xml").read_text()
    files = {
        "entities": ('<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>\n'
                     + base.replace("<name>custom-haswell</name>", "<name>&b;</name>")),
        "external": '<!DOCTYPE d SYSTEM "file:///etc/passwd">\n' + base,
        "undeclared": base.replace("<name>custom-haswell</name>", "<name>&xxe;</name>"),
        "deep": "<domain>" + "<a>" * 5000 + "</a>" * 5000 + "</domain>",
        "wide": "<domain><name>x</name>" + "<a/>" * 100_001 + "</domain>",
        "markup-feature": base.replace("name='sse4.2'", "name='&lt;img src=x onerror=alert(1)&gt;'"),
        "markup-model": base.replace(">Haswell-noTSX<", ">&lt;b&gt;Haswell&lt;/b&gt;<"),
        "not-domain": "<capabilities/>",
        "cut": base[:200],
        "empty": "",
        "no-name": base.replace("<name>custom-haswell</name>", ""),
        "bad-unit": base.replace("unit='KiB'>4194304", "unit='lightyears'>4194304"),
        "bad-policy": base.replace("policy='forbid'", "policy='maybe'"),
    }
    out = {k: tmp_path / f"{k}.xml" for k in files}
    for k, text in files.items():
        out[k].write_text(text)
    out["latin1"] = tmp_path / "latin1.xml"
    out["latin1"].write_bytes(base.replace("custom-haswell", "caf\xe9").encode("latin-1"))
    out["huge"] = tmp_path / "huge.xml"
    out["huge"].write_bytes(b"<domain>" + b" " * (5 << 20) + b"</domain>")
    return out


def test_hostile_xml_is_a_usage_error_naming_the_file(hosts, tmp_path):
    for kind, path in _hostile(tmp_path).items():
        r = hostaudit("guest", "check", str(path), "--host", hosts["haswell-hp"])
        assert r.returncode == 2, (kind, r.stdout, r.stderr)
        assert r.stdout == "", kind
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and str(path) in lines[0], (kind, r.stderr)
        assert "internal error" not in r.stderr and "Traceback" not in r.stderr, kind
        assert "<img" not in r.stderr and "<b>" not in r.stderr, kind


def test_hostile_bounds_in_process(tmp_path):
    with pytest.raises(DomainError, match="DOCTYPE"):
        parse_domain(b'<!DOCTYPE d [<!ENTITY a "x">]><domain><name>&a;</name></domain>', "f.xml")
    with pytest.raises(DomainError, match="deeper"):
        parse_domain(b"<domain>" + b"<a>" * 100 + b"</a>" * 100 + b"</domain>", "f.xml")


def test_bad_hosts_and_usage(hosts, tmp_path):
    dom = str(GUESTS / "virsh-custom-haswell.xml")
    r = hostaudit("guest", "check", dom, "--host", str(tmp_path / "nope.json"))
    assert r.returncode == 2 and "nope.json" in r.stderr
    (tmp_path / "garbage").write_text("not a cpuinfo\n")
    r = hostaudit("guest", "check", dom, "--host", str(tmp_path / "garbage"))
    assert r.returncode == 2 and "garbage" in r.stderr
    r = hostaudit("guest", "check", dom)
    assert r.returncode == 2 and "--host" in r.stderr
