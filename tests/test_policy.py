"""Policies: built-in profiles, TOML policy files (checked keys, one-line errors, exit 2), waivers
live and expired end to end through the console script, and ``hostaudit policy show`` round trips."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from audit.engine import ExitCode, exit_code, run_audit
from audit.errors import UsageError
from audit.host.core import Host
from audit.model import Severity, Status, replace
from audit.plugins import make_plugins
from audit.policy import DEFAULT_POLICY, Policy, Waiver, load_policy, parse_bytes, to_toml
from tests import trees
from tests.conftest import build_tree

GIB = 1 << 30


def hostaudit(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("hostaudit", path=os.path.dirname(sys.executable)) or shutil.which("hostaudit")
    cmd = [exe] if exe else [sys.executable, "-m", "audit"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def write(tmp_path):
    counter = iter(range(1000))

    def make(text: str) -> str:
        path = tmp_path / f"policy{next(counter)}.toml"
        path.write_text(text, encoding="utf-8")
        return str(path)

    return make


def same_policy(a: Policy, b: Policy) -> bool:
    """Equal in everything but where it was read from."""
    return replace(a, source="") == replace(b, source="")


# -- profiles -----------------------------------------------------------------------------------------


def test_kvm_host_profile_is_the_default():
    policy = load_policy()
    assert policy.profile == "kvm-host" and policy.source == "built-in profile kvm-host"
    assert same_policy(policy, DEFAULT_POLICY)
    assert policy.hugepages_required and policy.iommu_required and policy.ksm_mode == "on"
    assert policy.thp_allowed == ("always", "madvise") and policy.hugepages_max_memory_fraction == 0.9


def test_multitenant_profile_turns_ksm_off_and_keeps_the_rest():
    policy = load_policy(profile="kvm-host-multitenant")
    assert policy.profile == "kvm-host-multitenant" and policy.ksm_mode == "off"
    assert same_policy(replace(policy, ksm_mode="on", profile="kvm-host"), DEFAULT_POLICY)


def test_unknown_profile():
    with pytest.raises(UsageError, match="unknown profile 'kvm'"):
        load_policy(profile="kvm")


# -- policy files -------------------------------------------------------------------------------------


def test_policy_file_overrides(write):
    path = write('extends = "kvm-host-multitenant"\ndescription = "lab"\ndisabled = ["packages.*"]\n'
                 '[hugepages]\nsize = "1G"\ncount = 16\nmax_memory_fraction = 0.75\n'
                 '[host]\nmemory = "256GiB"\n[thp]\nallowed = ["madvise"]\n[swap]\nksm_factor = 1.5\n'
                 '[severity]\n"swap.ksm" = "critical"\n'
                 '[waivers."iommu.enabled"]\nreason = "no VT-d on this rack"\nexpires = 2027-01-31\n')
    policy = load_policy(path=path)
    assert policy.source == path and policy.profile == "kvm-host-multitenant" and policy.ksm_mode == "off"
    assert (policy.hugepages_size, policy.hugepages_count) == (GIB, 16)
    assert policy.hugepages_max_memory_fraction == 0.75 and policy.host_memory == 256 * GIB
    assert policy.thp_allowed == ("madvise",) and policy.swap_ksm_factor == 1.5
    assert policy.disabled == ("packages.*",)
    assert policy.severity_overrides == {"swap.ksm": Severity.CRITICAL}
    assert policy.waivers == {"iommu.enabled": Waiver(reason="no VT-d on this rack", expires=dt.date(2027, 1, 31))}


def test_profile_option_and_extends_must_agree(write):
    path = write('extends = "kvm-host"\n')
    with pytest.raises(UsageError, match="conflicts"):
        load_policy(profile="kvm-host-multitenant", path=path)
    assert load_policy(profile="kvm-host-multitenant", path=write("[iommu]\nrequired = false\n")).ksm_mode == "off"


@pytest.mark.parametrize(("text", "size"), [
    ("2M", 2 << 20), ("2MB", 2 << 20), ("1G", GIB), ("1GiB", GIB), ("2048K", 2 << 20), ("512m", 512 << 20),
    (4096, 4096), (" 1g ", GIB),
])
def test_sizes(text, size):
    assert parse_bytes(text, "k") == size


@pytest.mark.parametrize(("body", "message"), [
    ("[hugepages]\nrequird = true\n", "unknown key 'hugepages.requird'"),
    ("bogus = 1\n", "unknown key 'bogus'"),
    ("[hugepage]\nrequired = true\n", "unknown key 'hugepage.required'"),
    ("[hugepages]\nrequired = \"yes\"\n", "hugepages.required: expected true or false, got 'yes'"),
    ("[hugepages]\ncount = -1\n", "hugepages.count: expected a whole number >= 0, got -1"),
    ("[hugepages]\ncount = 1.5\n", "hugepages.count: expected a whole number >= 0, got 1.5"),
    ("[hugepages]\nsize = \"huge\"\n", "hugepages.size: not a size: 'huge'"),
    ("[hugepages]\nsize = true\n", "hugepages.size: expected a size such as 2M or 1G, got True"),
    ("[hugepages]\nmax_memory_fraction = 1.5\n", "hugepages.max_memory_fraction: expected a number in (0, 1]"),
    ("[host]\nmemory = 0\n", "host.memory: must be positive, got 0"),
    ("[thp]\nallowed = [\"sometimes\"]\n", "thp.allowed: unknown THP mode 'sometimes'"),
    ("[thp]\nallowed = \"madvise\"\n", "thp.allowed: expected a list of strings"),
    ("[ksm]\nmode = \"maybe\"\n", "ksm.mode: expected 'on', 'off' or 'any', got 'maybe'"),
    ("[swap]\nksm_factor = nan\n", "swap.ksm_factor: expected a finite number >= 0, got nan"),
    ("[swap]\nksm_factor = -1\n", "swap.ksm_factor: expected a finite number >= 0, got -1"),
    ("disabled = \"ksm.*\"\n", "disabled: expected a list of strings"),
    ("extends = \"nope\"\n", "extends: unknown profile 'nope'"),
    ("extends = 3\n", "extends: expected a string, got int"),
    ("description = 5\n", "description: expected a string, got int"),
    ("[severity]\n\"ksm.state\" = \"urgent\"\n", "severity.ksm.state: unknown severity 'urgent'"),
    ("severity = \"high\"\n", "severity: expected a table of check id = severity"),
    ("[waivers.\"ksm.state\"]\nreason = \"x\"\nexpire = 2027-01-01\n", "waivers.ksm.state: unknown key 'expire'"),
    ("[waivers.\"ksm.state\"]\nexpires = 2027-01-01\n", "waivers.ksm.state: a waiver needs a reason"),
    ("[waivers.\"ksm.state\"]\nreason = \"x\"\nexpires = \"next year\"\n",
     "waivers.ksm.state.expires: expected a date like 2027-01-31"),
    ("[gate]\nrequired = \"boot.*\"\n", "gate.required: expected a list of strings"),
    ("[gate]\nrequired = [\"Boot.*\"]\n", "gate.required: 'Boot.*' is not a check id glob"),
    ("[gate]\nrequired = [\"\"]\n", "gate.required: '' is not a check id glob"),
    ("[gate]\nrequire = [\"boot.*\"]\n", "unknown key 'gate.require'"),
    ("[hugepages\nrequired = true\n", "not valid TOML"),
    ("[hugepages]\nrequired = true\nrequired = false\n", "not valid TOML"),
])
def test_bad_policy_file_exits_2_with_one_line_naming_the_key(write, body, message):
    path = write(body)
    for args in (("policy", "show", "--policy", path), ("--root", "/", "--select", "ksm.state", "--policy", path)):
        out = hostaudit(*args)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert out.stdout == ""  # nothing audited, nothing printed
        lines = out.stderr.splitlines()
        assert len(lines) == 1, out.stderr
        assert lines[0].startswith(f"hostaudit: {path}: ") and message in lines[0], lines[0]


def test_unreadable_policy_file_exits_2(tmp_path):
    out = hostaudit("policy", "show", "--policy", str(tmp_path / "missing.toml"))
    assert out.returncode == 2 and "cannot read" in out.stderr and len(out.stderr.splitlines()) == 1


# -- policy show round trip ---------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["kvm-host", "kvm-host-multitenant"])
def test_policy_show_round_trips_a_profile(tmp_path, profile):
    out = hostaudit("policy", "show", "--profile", profile)
    assert out.returncode == 0, out.stderr
    path = tmp_path / "shown.toml"
    path.write_text(out.stdout)
    assert same_policy(load_policy(path=str(path)), load_policy(profile=profile))


def test_policy_show_round_trips_every_key_and_awkward_strings(write, tmp_path):
    path = write(
        'extends = "kvm-host-multitenant"\ndisabled = ["packages.*", "cpu.pdpe1gb"]\n'
        '[hugepages]\nrequired = false\nsize = "1G"\ncount = 0\nmax_memory_fraction = 0.5\n'
        '[host]\nmemory = "1.5T"\n[thp]\nallowed = ["never"]\n[ksm]\nmode = "any"\n[swap]\nksm_factor = 0\n'
        '[iommu]\nrequired = false\n'
        '[cpu]\nrequired_model = "Skylake-Server-IBRS"\nrequired_flags = ["vmx", "pdpe1gb"]\n'
        '[gate]\nrequired = ["boot.*", "kernel.kvm"]\n'
        '[severity]\n"swap.ksm" = "info"\n"weird \\"id\\"" = "high"\n'
        '[waivers."ksm.state"]\nreason = "ticket \\"OPS-42\\"\\nsecond line\\ttab \\\\ backslash ü"\n'
        'expires = 2027-01-31\n'
        '[waivers."boot.drift"]\nreason = "\\u007f and \\u0001"\n'
    )
    original = load_policy(path=path)
    out = hostaudit("policy", "show", "--policy", path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"# effective policy: {path}\n")
    shown = tmp_path / "shown.toml"
    shown.write_text(out.stdout, encoding="utf-8")
    again = load_policy(path=str(shown))
    assert same_policy(again, original)
    assert again.waivers["ksm.state"].reason == 'ticket "OPS-42"\nsecond line\ttab \\ backslash ü'
    assert again.severity_overrides == {"swap.ksm": Severity.INFO, 'weird "id"': Severity.HIGH}
    assert again.gate_required == ("boot.*", "kernel.kvm")
    assert '[gate]\nrequired = ["boot.*", "kernel.kvm"]' in out.stdout
    assert to_toml(again).splitlines()[1:] == out.stdout.splitlines()[1:]  # stable from then on


def test_policy_show_source_comment_cannot_break_the_toml(tmp_path):
    odd = tmp_path / "a\nb = 1.toml"
    odd.write_text("[ksm]\nmode = \"off\"\n")
    text = to_toml(load_policy(path=str(odd)))
    back = tmp_path / "back.toml"
    back.write_text(text)
    assert load_policy(path=str(back)).ksm_mode == "off"


# -- waivers and the multi-tenant profile, end to end -------------------------------------------------


@pytest.fixture
def image(make_root):
    """A Debian 12 image: ksm.state fails (nothing starts KSM at boot) under kvm-host."""
    return str(make_root(trees.debian12_tree()))


def run_json(*args: str) -> tuple[int, dict]:
    out = hostaudit(*args, "--format", "json")
    assert out.returncode in (0, 1), out.stderr
    return out.returncode, json.loads(out.stdout)


def test_unwaived_failure_exits_1(image):
    code, doc = run_json("--root", image, "--select", "ksm.state")
    assert code == 1 and doc["results"][0]["status"] == "fail"


def test_live_waiver_turns_the_failure_into_waived_and_exit_0(image, write):
    path = write('[waivers."ksm.state"]\nreason = "ticket OPS-42"\nexpires = 2999-01-31\n')
    code, doc = run_json("--root", image, "--select", "ksm.state", "--policy", path)
    assert code == 0 and doc["exit_code"] == 0
    (result,) = doc["results"]
    assert result["status"] == "waived"
    assert result["message"].endswith("[waived: ticket OPS-42]")
    assert result["waiver"] == "ticket OPS-42 (expires 2999-01-31)"
    assert result["remediation"]["commands"]  # the fix is still there for when the waiver ends
    assert doc["summary"]["waived"] == 1 and doc["summary"]["fail"] == 0


def test_waiver_without_expiry_never_expires(image, write):
    path = write('[waivers."ksm.state"]\nreason = "lab host"\n')
    code, doc = run_json("--root", image, "--select", "ksm.state", "--policy", path)
    assert code == 0 and doc["results"][0]["waiver"] == "lab host"


def test_expired_waiver_says_so_and_exits_1(image, write):
    path = write('[waivers."ksm.state"]\nreason = "ticket OPS-42"\nexpires = 2020-01-31\n')
    code, doc = run_json("--root", image, "--select", "ksm.state", "--policy", path)
    assert code == 1
    (result,) = doc["results"]
    assert result["status"] == "fail"
    assert result["message"].endswith("[waiver expired on 2020-01-31]")
    assert result["waiver"] == "waiver expired on 2020-01-31: ticket OPS-42"
    text = hostaudit("--root", image, "--select", "ksm.state", "--policy", path)
    assert text.returncode == 1 and "waiver expired on 2020-01-31" in text.stdout


def test_waiver_is_active_through_its_expiry_day(make_root):
    host = Host.from_root(str(make_root(trees.debian12_tree())))
    waiver = Waiver(reason="r", expires=dt.date(2027, 1, 31))
    policy = replace(DEFAULT_POLICY, waivers={"ksm.state": waiver})

    def status_on(day: dt.date) -> Status:
        clock = lambda: dt.datetime.combine(day, dt.time(23, 59), tzinfo=dt.UTC)  # noqa: E731
        report = run_audit(make_plugins(entry_points=False), host, policy, select=["ksm.state"], clock=clock)
        return report.results[0].status

    assert status_on(dt.date(2027, 1, 31)) is Status.WAIVED
    assert status_on(dt.date(2027, 2, 1)) is Status.FAIL


def test_waiver_does_not_hide_a_pass_or_an_error(make_root):
    tree = trees.ksm_running(trees.live_tree())
    tree.update(trees.ksmtuned_unit())
    tree["etc/systemd/system/multi-user.target.wants/ksmtuned.service"] = "not a link\n"
    policy = replace(DEFAULT_POLICY, waivers={"ksm.state": Waiver(reason="r"),
                                                          "memory.thp": Waiver(reason="r")})
    tree["sys/kernel/mm/transparent_hugepage/enabled"] = "[always] [never]\n"
    host = Host.from_root(str(make_root(tree)))
    report = run_audit(make_plugins(entry_points=False), host, policy, select=["ksm.state", "memory.thp"])
    assert {r.id: r.status for r in report.results} == {"ksm.state": Status.PASS, "memory.thp": Status.ERROR}


def test_severity_override_and_disabled_checks(image, write):
    path = write('[severity]\n"ksm.state" = "info"\n')
    code, doc = run_json("--root", image, "--select", "ksm.state", "--policy", path)
    assert code == 0 and doc["results"][0]["status"] == "fail" and doc["results"][0]["severity"] == "info"
    path = write('disabled = ["ksm.*"]\n')
    out = hostaudit("--root", image, "--select", "ksm.state", "--policy", path, "--format", "json")
    doc = json.loads(out.stdout)
    assert doc["results"][0]["status"] == "skip" and f"disabled by policy ({path})" in doc["results"][0]["message"]
    assert out.returncode == int(ExitCode.INCOMPLETE)  # nothing could run


@pytest.mark.parametrize(("ksm_on", "code"), [(True, 1), (False, 0)])
def test_multitenant_profile_end_to_end(make_root, ksm_on, code):
    tree = trees.live_tree()
    root = str(make_root(trees.ksm_running(tree) if ksm_on else tree))
    out = hostaudit("--root", root, "--select", "ksm.state", "--profile", "kvm-host-multitenant", "--format", "json")
    assert out.returncode == code, out.stderr
    doc = json.loads(out.stdout)
    assert doc["profile"] == "kvm-host-multitenant"
    result = doc["results"][0]
    assert result["status"] == ("fail" if ksm_on else "pass")
    if ksm_on:
        assert "the policy wants it off (multi-tenant host)" in result["message"]
        assert result["remediation"]["commands"][0].startswith("echo 2 > /sys/kernel/mm/ksm/run")
    # the default profile wants the opposite
    out = hostaudit("--root", root, "--select", "ksm.state", "--format", "json")
    # running but started by nothing at boot: a warning under kvm-host; off: a failure
    assert json.loads(out.stdout)["results"][0]["status"] == ("warn" if ksm_on else "fail")


def test_exit_code_follows_waived_results(tmp_path):
    host_root = tmp_path / "host"
    build_tree(host_root, trees.debian12_tree())
    host = Host.from_root(str(host_root))
    plugins = make_plugins(entry_points=False)
    failing = run_audit(plugins, host, DEFAULT_POLICY, select=["ksm.state", "boot.drift"])
    assert exit_code(failing) is ExitCode.FAILED
    waived = replace(DEFAULT_POLICY, waivers={"ksm.state": Waiver(reason="r")})
    report = run_audit(plugins, host, waived, select=["ksm.state", "boot.drift"])
    assert exit_code(report) is ExitCode.OK  # boot.drift only warns
    assert exit_code(run_audit(plugins, host, waived, select=["ksm.state", "boot.drift"], strict=True)) \
        is ExitCode.FAILED
    waived = replace(waived, waivers={**waived.waivers, "boot.drift": Waiver(reason="r")})
    assert exit_code(run_audit(plugins, host, waived, select=["ksm.state", "boot.drift"], strict=True)) is ExitCode.OK


def test_policy_values_reach_the_checks(make_root, write):
    root = str(make_root(trees.debian12_tree(booted="hugepagesz=1G hugepages=32")))
    path = write('[host]\nmemory = "24G"\n[iommu]\nrequired = false\n')
    code, doc = run_json("--root", root, "--select", "memory.hugepages_fit", "--select", "iommu.enabled",
                         "--policy", path)
    statuses = {r["id"]: r["status"] for r in doc["results"]}
    assert statuses == {"memory.hugepages_fit": "fail", "iommu.enabled": "skip"} and code == 1
    fit = next(r for r in doc["results"] if r["id"] == "memory.hugepages_fit")
    assert any(e["source"] == f"policy host.memory ({path})" for e in fit["evidence"])


def test_toml_dump_of_the_default_policy_is_valid_toml():
    import tomllib

    data = tomllib.loads(to_toml(DEFAULT_POLICY))
    assert data["extends"] == "kvm-host" and data["ksm"]["mode"] == "on"
    assert "size" not in data["hugepages"]  # unset values are comments


@pytest.mark.parametrize(("toml", "message"), [
    ("[hugepage]\ncount = 4\n", "unknown key 'hugepage.count' (did you mean 'hugepages.count'?)"),
    ("[hugepages]\ncuont = 4\n", "unknown key 'hugepages.cuont' (did you mean 'hugepages.count'?)"),
    ("disabeld = []\n", "unknown key 'disabeld' (did you mean 'disabled'?)"),
    ("[zzz]\nq = 1\n", "unknown key 'zzz.q'"),
])
def test_a_policy_typo_suggests_the_nearest_key(tmp_path, toml, message):
    path = tmp_path / "p.toml"
    path.write_text(toml)
    with pytest.raises(UsageError) as exc:
        load_policy(path=str(path))
    assert str(exc.value).endswith(message)


def test_policy_entries_for_unknown_check_ids_are_said_with_the_nearest_id(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('disabled = ["ksm.*", "nosuch.*"]\n[waivers."memory.thpp"]\nreason = "ticket 1"\n'
                    '[severity]\n"kernel.kvmm" = "low"\n')
    root = tmp_path / "img"
    (root / "etc").mkdir(parents=True)
    out = subprocess.run([sys.executable, "-m", "audit", "--root", str(root), "--policy", str(path), "--format",
                          "json", "--no-entry-points"], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    problems = json.loads(out.stdout)["problems"]
    assert problems == [
        f"policy {path}: waiver for 'memory.thpp' matches no check (did you mean 'memory.thp'?)",
        f"policy {path}: severity override for 'kernel.kvmm' matches no check (did you mean 'kernel.kvm'?)",
        f"policy {path}: disabled pattern 'nosuch.*' matches no check",
    ]


def test_the_default_profile_file_and_the_policy_defaults_are_the_same_policy() -> None:
    """A run on the default profile takes Policy's defaults without parsing kvm-host.toml (start-up);
    the file is what users read and extend, so the two must never drift apart."""
    from audit.policy import DEFAULT_POLICY, _profile_from_file, load_profile

    assert _profile_from_file("kvm-host") == DEFAULT_POLICY
    assert load_profile("kvm-host") is DEFAULT_POLICY


@pytest.mark.parametrize(("toml", "suggestion"), [
    ('[thp]\nallowed = ["madvice"]\n', "did you mean 'madvise'?"),
    ('[thp]\ndefrag_allowed = ["defer+madvice"]\n', "did you mean 'defer+madvise'?"),
    ('[ksm]\nmode = "of"\n', "did you mean 'off'?"),
    ('[secure_guest]\nkinds = ["sev_snp"]\n', "did you mean 'sev-snp'?"),
    ('[severity]\n"kvm.device" = "hihg"\n', "did you mean 'high'?"),
    ('[hugepage]\ncount = 4\n', "did you mean 'hugepages.count'?"),
    ('[hugepages]\ncuont = 4\n', "did you mean 'hugepages.count'?"),
])
def test_a_policy_typo_names_the_nearest_valid_key_or_value(tmp_path, toml, suggestion):
    path = tmp_path / "policy.toml"
    path.write_text(toml)
    with pytest.raises(UsageError) as err:
        load_policy(path=str(path))
    assert suggestion in str(err.value) and str(path) in str(err.value)
