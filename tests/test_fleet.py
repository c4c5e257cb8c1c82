"""``hostaudit run --snapshot DIR`` and repeated ``--snapshot FILE``: a fleet in one run. The snapshots
are captured from fake roots built from the real samples (``hostaudit collect``'s document and the
real collect.sh), plus one that is not a snapshot and one of a hostile host."""

from __future__ import annotations

import copy
import json
import os
import pty
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import referencing
from prometheus_client.parser import text_string_to_metric_families

import tests._report_fixtures as fx
from audit.capture import gather_patterns
from audit.host.collect import collect_document, render_document, render_script
from tests import trees
from tests.conftest import build_tree

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "reports" / "schemas"
DASH = shutil.which("dash") or "/bin/sh"


def run(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*fx.hostaudit_command(), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd)


def capture(root: Path, tree: dict, dest: Path) -> Path:
    build_tree(root, tree)
    dest.write_text(render_document(collect_document(str(root), gather_patterns(entry_points=False))))
    return dest


def deb_tree(name: str) -> dict:
    tree = trees.debian12_live("hugepagesz=1G hugepages=16 intel_iommu=on")
    tree["proc/sys/kernel/hostname"] = f"{name}\n"
    return tree


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Path:
    """deb-01 (hostaudit collect JSON), a copy of it under another file name, el6-01 (collect.sh's
    line format), a hostile host, and a file that is no snapshot."""
    base = tmp_path_factory.mktemp("fleet")
    snaps = base / "snaps"
    snaps.mkdir()
    capture(base / "r-deb", deb_tree("deb-01"), snaps / "deb-01.json")
    shutil.copy(snaps / "deb-01.json", snaps / "deb-01-again.json")
    capture(base / "r-evil", dict(fx.HOSTILE_TREE), snaps / "evil.json")
    el6 = trees.centos6_tree(live=True)
    el6["proc/sys/kernel/hostname"] = "el6-01\n"
    build_tree(base / "r-el6", el6)
    script = base / "collect.sh"
    script.write_text(render_script(gather_patterns(entry_points=False)))
    out = subprocess.run([DASH, str(script), str(base / "r-el6")], capture_output=True, timeout=300, check=True)
    (snaps / "el6-01.snap").write_bytes(out.stdout)
    (snaps / "broken.json").write_text('{"format": "hostaudit-snapshot", "schema_version": 1, "entries": {')
    (snaps / ".hidden").write_text("not looked at")
    (snaps / "subdir").mkdir()
    return snaps


@pytest.fixture(scope="module")
def outputs(fleet: Path, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """One run writing every fleet output."""
    out = tmp_path_factory.mktemp("out")
    proc = run("run", "--snapshot", str(fleet), "--no-entry-points", "--format", "json",
               "-o", str(out / "fleet.txt"), "-o", str(out / "fleet.json"), "-o", str(out / "fleet.xml"),
               "-o", str(out / "fleet.prom"), "-o", str(out / "fleet.html"), "--fix-script", str(out / "fix"))
    return proc, out


def _rows(text: str) -> list[list[str]]:
    """The fleet table's cells, cut at the columns its rule line shows (a host name may hold spaces)."""
    lines = text.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("---"))
    spans = [m.span() for m in re.finditer(r"-+", lines[rule])]
    body = []
    for line in lines[rule + 1:]:
        if not line.strip():
            break
        cells = [line[a:spans[i + 1][0]] if i + 1 < len(spans) else line[a:] for i, (a, _) in enumerate(spans)]
        body.append([c.strip() for c in cells])
    return body


# -- the run ---------------------------------------------------------------------------------------


def test_a_directory_is_audited_in_one_run_worst_first(fleet: Path) -> None:
    proc = run("run", "--snapshot", str(fleet), "--no-entry-points")
    assert proc.returncode == 1, proc.stderr  # hosts fail their gate
    rows = _rows(proc.stdout)
    sources = [r[1] for r in rows]
    assert sorted(os.path.basename(s) for s in sources) == sorted(
        ["deb-01.json", "deb-01-again.json", "evil.json", "el6-01.snap", "broken.json"])
    results = [r[2] for r in rows]
    assert results == sorted(results, key=["FAILED", "ERROR", "ok"].index)  # worst first
    broken = next(r for r in rows if r[1].endswith("broken.json"))
    assert broken[2] == "ERROR" and broken[3:] == ["-"] * 7
    assert "could not be audited:" in proc.stdout
    assert re.search(r"broken\.json: snapshot .*broken\.json: not valid JSON", proc.stdout)
    assert proc.stdout.rstrip().splitlines()[-1] == (
        "5 hosts: 4 failed, 1 errored, 0 passed; gate: --fail-on low; exit code 1")
    assert proc.stderr == ""  # no progress bar: stderr is not a terminal


def test_the_same_host_twice_is_two_rows_and_counts_match_a_single_run(fleet: Path) -> None:
    single = json.loads(run("run", "--snapshot", str(fleet / "deb-01.json"), "--no-entry-points",
                            "--format", "json").stdout)
    proc = run("run", "--snapshot", str(fleet / "deb-01.json"), "--snapshot", str(fleet / "deb-01-again.json"),
               "--no-entry-points")
    rows = _rows(proc.stdout)
    assert [r[0] for r in rows] == ["deb-01", "deb-01"]
    s = single["summary"]
    want = [str(single["gate"]["counting"]), *(str(s[k]) for k in ("fail", "error", "warn", "waived", "skip", "pass"))]
    assert all(r[3:] == want for r in rows)
    assert proc.returncode == single["exit_code"] == 1


def test_one_snapshot_is_still_one_host_report(fleet: Path) -> None:
    proc = run("run", "--snapshot", str(fleet / "el6-01.snap"), "--no-entry-points")
    assert proc.stdout.startswith("hostaudit ") and "What to fix:" in proc.stdout
    assert "fleet of" not in proc.stdout


@pytest.mark.parametrize(("select", "extra", "code"), [
    ("kernel.hugetlbfs", False, 0),  # passes everywhere
    ("kernel.hugetlbfs", True, 3),  # ... but a snapshot could not be audited
    ("kvm.device", True, 1),  # fails somewhere: 1 wins
])
def test_exit_codes(fleet: Path, tmp_path: Path, select: str, extra: bool, code: int) -> None:
    args = ["--snapshot", str(fleet / "deb-01.json"), "--snapshot", str(fleet / "el6-01.snap")]
    if extra:
        args += ["--snapshot", str(fleet / "broken.json")]
    proc = run("run", *args, "--select", select, "--no-entry-points", "-q")
    assert proc.returncode == code, proc.stderr
    assert proc.stdout == ""


def test_a_folder_without_a_snapshot_is_unusable_input(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".only-hidden").write_text("x")
    proc = run("run", "--snapshot", str(tmp_path / "empty"))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        f"hostaudit: --snapshot {tmp_path / 'empty'}: no snapshot in this directory (no regular file in it)"]


def test_a_missing_file_is_that_hosts_error_row(fleet: Path, tmp_path: Path) -> None:
    proc = run("run", "--snapshot", str(fleet / "deb-01.json"), "--snapshot", str(tmp_path / "nope.json"),
               "--no-entry-points", "--select", "kernel.hugetlbfs")
    assert proc.returncode == 3
    assert "nope.json: snapshot " in proc.stdout and "cannot read" in proc.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--format", "html"], "--format html: the fleet page links to a page per host"),
    (["-o", "x.sh"], "x.sh: a fleet run writes a remediation script per host: --fix-script DIR"),
    (["-o", "x.boom"], "x.boom: a fleet run writes"),
    (["--history", "h"], "--history keeps the reports of one host"),
])
def test_what_a_fleet_run_refuses(fleet: Path, tmp_path: Path, args: list[str], message: str) -> None:
    proc = run("run", "--snapshot", str(fleet), *args, cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert proc.stdout == "" and not any(tmp_path.iterdir())


def test_fix_script_must_be_a_directory(fleet: Path, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    proc = run("run", "--snapshot", str(fleet), "--fix-script", str(tmp_path / "f"))
    assert proc.returncode == 2 and "is not one" in proc.stderr


def test_quiet_says_only_what_could_not_be_audited(fleet: Path) -> None:
    proc = run("run", "--snapshot", str(fleet), "--no-entry-points", "-q")
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert any(line.startswith("hostaudit: snapshot ") and "broken.json" in line for line in lines)
    assert all(line.startswith("hostaudit: ") for line in lines)


def _run_on_a_terminal(*args: str) -> tuple[int, str, str]:
    """The CLI with stderr on a pseudo-terminal: what a person at a terminal sees there."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([*fx.hostaudit_command(), *args], stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    err = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        err += chunk
    out = proc.stdout.read() if proc.stdout else b""
    code = proc.wait(timeout=300)
    os.close(leader)
    return code, out.decode(), err.decode(errors="replace")


def test_a_progress_bar_on_a_terminal_and_none_with_q(fleet: Path) -> None:
    code, out, err = _run_on_a_terminal("run", "--snapshot", str(fleet), "--no-entry-points")
    assert code == 1
    assert re.search(r"hostaudit: \[[#.]+\] 5/5 hosts, \d+/s, 4 failed, 1 errored", err), err
    assert err.endswith("\r\x1b[K")  # the bar is cleared at the end
    assert "fleet of 5 snapshot(s)" in out
    code, out, err = _run_on_a_terminal("run", "--snapshot", str(fleet), "--no-entry-points", "-q")
    assert "hosts," not in err and "\x1b[K" not in err


# -- the outputs -----------------------------------------------------------------------------------


def _validator() -> jsonschema.protocols.Validator:
    fleet_schema = json.loads((SCHEMAS / "fleet-v1.json").read_text())
    report_schema = json.loads((SCHEMAS / "report-v1.json").read_text())
    registry = referencing.Registry().with_resources(
        [(s["$id"], referencing.Resource.from_contents(s)) for s in (fleet_schema, report_schema)])
    cls = jsonschema.validators.validator_for(fleet_schema)
    return cls(fleet_schema, registry=registry)


def _without_times(doc: dict) -> dict:
    doc = copy.deepcopy(doc)
    doc.pop("started_at", None)
    doc.pop("duration_ms", None)
    for r in doc["results"]:
        r.pop("duration_ms", None)
    return doc


def test_json_validates_and_holds_each_hosts_own_report(outputs, fleet: Path) -> None:
    proc, out = outputs
    assert proc.returncode == 1, proc.stderr
    doc = json.loads((out / "fleet.json").read_text())
    assert json.loads(proc.stdout) == doc  # stdout and the file: the same document
    _validator().validate(doc)
    assert list(doc) == sorted(doc)
    assert doc["kind"] == "hostaudit-fleet" and doc["schema_version"] == 1
    f = doc["fleet"]
    assert f["summary"] == {"hosts": 5, "failed": 4, "errored": 1, "passed": 0}
    assert f["exit_code"] == 1 and f["gate"]["fail_on"] == "low"
    assert [h["outcome"] for h in f["hosts"]] == ["failed"] * 4 + ["errored"]
    broken = f["hosts"][-1]
    assert broken["report"] is None and broken["summary"] is None and "not valid JSON" in broken["error"]
    assert len(doc["hosts"]) == 4
    for row in f["hosts"][:4]:
        report = doc["hosts"][row["report"]]
        assert report["target"]["root"] == row["source"]
        single = json.loads(run("run", "--snapshot", row["source"], "--no-entry-points", "--format", "json").stdout)
        assert _without_times(report) == _without_times(single)
        assert row["counting"] == report["gate"]["counting"] and row["summary"] == report["summary"]
    assert f["results"]["fail"] == sum(h["summary"]["fail"] for h in doc["hosts"])


def test_junit_has_one_suite_per_host(outputs) -> None:
    _, out = outputs
    root = ET.parse(out / "fleet.xml").getroot()
    doc = json.loads((out / "fleet.json").read_text())
    suites = root.findall("testsuite")
    assert root.tag == "testsuites" and len(suites) == 5
    assert int(root.get("failures")) == sum(h["counting"] for h in doc["fleet"]["hosts"])
    assert int(root.get("tests")) == sum(len(h["results"]) for h in doc["hosts"]) + 1
    by_snapshot = {s.find("properties/property[@name='snapshot']").get("value"): s for s in suites}
    for report in doc["hosts"]:
        suite = by_snapshot[report["target"]["root"]]
        cases = suite.findall("testcase")
        assert [c.get("name") for c in cases] == [r["id"] for r in report["results"]]
        assert len(suite.findall("testcase/failure")) == report["gate"]["counting"]
        assert all(c.get("classname").startswith(suite.get("name") + ".") for c in cases)
    broken = next(s for p, s in by_snapshot.items() if p.endswith("broken.json"))
    assert broken.find("testcase").get("name") == "snapshot"
    assert "not valid JSON" in broken.find("testcase/error").get("message")


def test_prometheus_has_a_host_label_on_every_host_series(outputs) -> None:
    _, out = outputs
    text = (out / "fleet.prom").read_text()
    families = {f.name: f.samples for f in text_string_to_metric_families(text)}
    doc = json.loads((out / "fleet.json").read_text())
    per_host = ("check_status", "check_gate", "checks", "last_run_timestamp_seconds", "run_duration_seconds",
                "exit_code", "build_info")
    for name in per_host:
        samples = families[f"hostaudit_{name}"]
        assert all("host" in s.labels and "snapshot" in s.labels for s in samples)
    codes = {s.labels["snapshot"]: s.value for s in families["hostaudit_exit_code"]}
    assert codes == {r["target"]["root"]: r["exit_code"] for r in doc["hosts"]}
    status = [s for s in families["hostaudit_check_status"] if s.labels["host"] == "deb-01"]
    assert len(status) == 2 * len(doc["hosts"][0]["results"])  # deb-01 twice, told apart by snapshot
    assert {s.labels["outcome"]: s.value for s in families["hostaudit_fleet_hosts"]} == {
        "failed": 4, "errored": 1, "passed": 0}
    (err,) = families["hostaudit_fleet_snapshot_error"]
    assert err.labels["snapshot"].endswith("broken.json")
    assert families["hostaudit_fleet_exit_code"][0].value == 1
    # each family's lines together, as the exposition format asks
    names = [line.split()[2] for line in text.splitlines() if line.startswith("# HELP ")]
    assert len(names) == len(set(names))


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool is not installed (Debian: apt-get install prometheus; .ci/install-test-deps "
                           "installs it)")
def test_promtool_accepts_the_fleet_textfile(outputs) -> None:
    _, out = outputs
    proc = subprocess.run(["promtool", "check", "metrics"], input=(out / "fleet.prom").read_text(),
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_html_matrix_links_to_a_page_per_host(outputs) -> None:
    _, out = outputs
    page = (out / "fleet.html").read_text()
    doc = json.loads((out / "fleet.json").read_text())
    links = re.findall(r'<a href="([^"]+)">', page)
    assert len(links) == 4  # every host but the broken snapshot
    for link in links:
        assert link.startswith("fleet-hosts/") and (out / link).is_file()
        assert "<!DOCTYPE html>" in (out / link).read_text()
    rows = re.findall(r'<td class="result r-(\w+)">', page)
    assert rows == [h["outcome"] for h in doc["fleet"]["hosts"]]  # worst first
    ids = re.findall(r'<th class="id" scope="col">([^<]+)</th>', page)
    assert ids == sorted({r["id"] for h in doc["hosts"] for r in h["results"]})
    assert page.count('class="s-fail counts"') == sum(h["counting"] for h in doc["fleet"]["hosts"])
    assert "script-src 'none'" in page and "<script" not in page.lower().replace("&lt;script", "")


def test_a_remediation_script_per_audited_host(outputs) -> None:
    _, out = outputs
    scripts = sorted(p.name for p in (out / "fix").iterdir())
    assert scripts == ["deb-01-again.sh", "deb-01.sh", "el6-01.sh", "evil.sh"]
    for name in scripts:
        proc = subprocess.run(["bash", "-n", str(out / "fix" / name)], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr


def test_hostile_host_text_is_escaped_in_every_output(outputs) -> None:
    _, out = outputs
    for name in ("fleet.txt", "fleet.html", "fleet.xml", "fleet.prom"):
        text = (out / name).read_text()
        assert "\x1b" not in text and "\u202e" not in text, name  # shown as escapes, never raw
    assert "<script>" not in (out / "fleet.html").read_text()
    assert "\\x1b[2J" in (out / "fleet.txt").read_text()
    assert "&lt;script&gt;" in (out / "fleet.html").read_text()
    evil = next(p for p in (out / "fleet-hosts").iterdir() if p.name == "evil.html").read_text()
    assert "<script>document" not in evil
    ET.parse(out / "fleet.xml")  # still well-formed
    text_string_to_metric_families((out / "fleet.prom").read_text())  # still parses
    doc = json.loads((out / "fleet.json").read_text())
    evil_row = next(h for h in doc["fleet"]["hosts"] if h["source"].endswith("evil.json"))
    assert evil_row["name"].startswith("<script>")  # JSON carries the data exactly; json escapes it


def test_an_output_that_cannot_be_written_costs_itself_and_exits_2(fleet: Path, tmp_path: Path) -> None:
    (tmp_path / "ro").mkdir()
    proc = run("run", "--snapshot", str(fleet), "--no-entry-points", "-q", "-o", str(tmp_path / "nodir" / "f.json"),
               "-o", str(tmp_path / "f.txt"))
    assert proc.returncode == 2
    assert "cannot write" in proc.stderr and "nodir" in proc.stderr
    assert (tmp_path / "f.txt").read_text().startswith("hostaudit ")
