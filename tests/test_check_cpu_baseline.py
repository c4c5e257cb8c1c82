"""The cpu.baseline check: the policy's [cpu] required_model / required_flags gate a host."""

from __future__ import annotations

import json

import pytest

from audit.cpu import models as cm
from audit.engine import run_check
from audit.host.core import Host
from audit.model import Status, replace
from audit.parsers.cpuinfo import parse_cpuinfo
from audit.policy import DEFAULT_POLICY
from checks.cpumodel import cpu_baseline
from tests.conftest import DATA, cpuinfo_sample
from tests.test_snapshot import hostaudit

SAMPLES = sorted(p.name for p in (DATA / "cpuinfo").iterdir())


def host_with(make_root, sample: str) -> Host:
    return Host.from_root(str(make_root({"proc/cpuinfo": cpuinfo_sample(sample)})))


def policy(model: str | None = None, flags: tuple[str, ...] = ()):
    return replace(DEFAULT_POLICY, cpu_required_model=model, cpu_required_flags=flags,
                               source="test-policy.toml")


def test_skips_when_the_policy_requires_nothing(make_root):
    outcome = run_check(cpu_baseline, host_with(make_root, "this-vm.txt"), DEFAULT_POLICY)
    assert outcome.status is Status.SKIP
    assert "required_model" in outcome.message


# Reasoned: Haswell-noTSX needs AVX2/FMA/BMI (Haswell and later have them; Ivy Bridge, Westmere and
# Nehalem do not); the QEMU guest shows only a qemu64-like CPU.
REASONED = {
    "intel-xeon-e5-2680v3-haswell-ep.txt": Status.PASS,
    "intel-xeon-e5-2690v4-broadwell-ep.txt": Status.PASS,
    "intel-xeon-gold-6132-skylake-sp.txt": Status.PASS,
    "intel-xeon-e5-2650v2-ivybridge-ep.txt": Status.FAIL,
    "intel-xeon-e5640-westmere-ep.txt": Status.FAIL,
    "intel-xeon-x7550-nehalem-ex.txt": Status.FAIL,
    "qemu-virtual-cpu-2.5-kvm-guest.txt": Status.FAIL,
}


@pytest.mark.parametrize("sample", SAMPLES)
def test_required_model_on_every_sample(make_root, sample):
    outcome = run_check(cpu_baseline, host_with(make_root, sample), policy("Haswell-noTSX"))
    flags = parse_cpuinfo(cpuinfo_sample(sample).read_text()).flags
    missing = sorted(cm.missing_for("Haswell-noTSX", flags))
    want = REASONED.get(sample, Status.FAIL if missing else Status.PASS)
    assert outcome.status is want
    assert (want is Status.FAIL) == bool(missing)
    ev = outcome.evidence[0]
    assert ev.source == "/proc/cpuinfo" and ev.expected == "model Haswell-noTSX"
    if want is Status.FAIL:
        assert all(m in ev.observed for m in missing[:12])
        assert outcome.remediation is not None and outcome.remediation.commands and outcome.remediation.notes
        assert "Haswell-noTSX" in outcome.message


def test_ivybridge_lacks_the_haswell_instructions(make_root):
    outcome = run_check(cpu_baseline, host_with(make_root, "intel-xeon-e5-2650v2-ivybridge-ep.txt"),
                        policy("Haswell-noTSX"))
    assert outcome.status is Status.FAIL
    for flag in ("avx2", "fma", "bmi1", "bmi2", "movbe"):
        assert flag in outcome.evidence[0].observed
    assert "newest model it supports: IvyBridge" in outcome.evidence[0].observed


def test_required_flags(make_root):
    westmere = host_with(make_root, "intel-xeon-e5640-westmere-ep.txt")
    outcome = run_check(cpu_baseline, westmere, policy(flags=("aes", "avx2", "sse4.2")))
    assert outcome.status is Status.FAIL
    assert "avx2" in outcome.message and "aes" not in outcome.message.split("flag(s)")[1]
    assert outcome.evidence[0].expected == "flags aes avx2 sse4.2"
    ok = run_check(cpu_baseline, westmere, policy(flags=("aes", "sse4.2", "pclmuldq")))  # libvirt spellings
    assert ok.status is Status.PASS, ok.message
    both = run_check(cpu_baseline, host_with(make_root, "intel-xeon-gold-6132-skylake-sp.txt"),
                     policy("Skylake-Server-noTSX-IBRS", ("avx512f", "vmx")))
    assert both.status is Status.PASS, both.evidence


def test_unknown_model_is_an_error_naming_it(make_root):
    outcome = run_check(cpu_baseline, host_with(make_root, "this-vm.txt"), policy("Haswel-noTSX"))
    assert outcome.status is Status.ERROR
    assert "'Haswel-noTSX'" in outcome.message and "test-policy.toml" in outcome.message


def test_a_guest_is_told_to_fix_its_outer_hypervisor(make_root):
    outcome = run_check(cpu_baseline, host_with(make_root, "qemu-virtual-cpu-2.5-kvm-guest.txt"),
                        policy("Haswell-noTSX"))
    assert outcome.status is Status.FAIL
    assert "virtual machine" in outcome.remediation.notes
    assert any("outer hypervisor" in c for c in outcome.remediation.commands)


def test_an_image_is_not_applicable(make_root):
    host = Host.from_root(str(make_root({"etc/os-release": "ID=debian\n"})))
    outcome = run_check(cpu_baseline, host, policy("Haswell-noTSX"))
    assert outcome.status is Status.SKIP and "unbooted image" in outcome.message


# -- end to end: a TOML policy, the console script, a snapshot ----------------------------------------


def _policy_file(tmp_path, model: str, flags: list[str] | None = None):
    path = tmp_path / "fleet.toml"
    body = f'extends = "kvm-host"\n\n[cpu]\nrequired_model = "{model}"\n'
    if flags:
        body += "required_flags = [" + ", ".join(f'"{f}"' for f in flags) + "]\n"
    path.write_text(body)
    return str(path)


@pytest.mark.parametrize(("sample", "model", "code", "status"), [
    ("intel-xeon-e5-2690v4-broadwell-ep.txt", "Haswell-noTSX", 0, "pass"),
    ("intel-xeon-e5-2650v2-ivybridge-ep.txt", "Haswell-noTSX", 1, "fail"),
    ("intel-xeon-e5-2690v4-broadwell-ep.txt", "NoSuchModel", 3, "error"),
])
def test_policy_file_end_to_end(make_root, tmp_path, sample, model, code, status):
    root = make_root({"proc/cpuinfo": cpuinfo_sample(sample)})
    pol = _policy_file(tmp_path, model, ["aes"])
    out = hostaudit("--root", str(root), "--policy", pol, "--select", "cpu.baseline", "--format", "json",
                    "--no-entry-points")
    assert out.returncode == code, out.stderr
    result = json.loads(out.stdout)["results"][0]
    assert result["id"] == "cpu.baseline" and result["status"] == status
    snap = tmp_path / "host.json"
    assert hostaudit("collect", "--root", str(root), "-o", str(snap), "--no-entry-points").returncode == 0
    via = hostaudit("run", "--snapshot", str(snap), "--policy", pol, "--select", "cpu.baseline", "--format", "json",
                    "--no-entry-points")
    assert via.returncode == code

    def same(doc: dict) -> list[tuple]:
        return [(r["id"], r["status"], r["message"], r["evidence"], r["remediation"]) for r in doc["results"]]

    assert same(json.loads(via.stdout)) == same(json.loads(out.stdout))


def test_policy_show_round_trips_the_cpu_table(tmp_path):
    pol = _policy_file(tmp_path, "Haswell-noTSX", ["avx2"])
    out = hostaudit("policy", "show", "--policy", pol)
    assert out.returncode == 0
    assert 'required_model = "Haswell-noTSX"' in out.stdout and 'required_flags = ["avx2"]' in out.stdout
