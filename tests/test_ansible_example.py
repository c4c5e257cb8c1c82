"""examples/ansible/fleet.yml, run for real: ansible-playbook against this machine (localhost with
ansible_connection=local) collects a snapshot with the sh collector through the script module, then
audits the fleet and computes the CPU baseline on the control node; the fleet report it writes is
checked. ansible-playbook comes with ansible-core, a test dependency (pip install -e .[test] installs it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests.test_fleet import _validator

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "ansible"
PLAYBOOK_BIN = shutil.which("ansible-playbook", path=os.path.dirname(sys.executable)) or shutil.which(
    "ansible-playbook")


@pytest.fixture(scope="module")
def played(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    if PLAYBOOK_BIN is None:
        pytest.skip("ansible-playbook is not installed (it comes with ansible-core, a test dependency: "
                    "pip install ansible-core; .ci/run installs it): examples/ansible/fleet.yml was not run")
    tmp = tmp_path_factory.mktemp("ansible")
    inventory = tmp / "inventory.ini"
    inventory.write_text("[kvm_hosts]\n"
                         f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    hostaudit = shutil.which("hostaudit", path=os.path.dirname(sys.executable))
    assert hostaudit, "the venv's hostaudit console script"
    env = {**os.environ, "ANSIBLE_CONFIG": str(EXAMPLE / "ansible.cfg"), "ANSIBLE_LOCAL_TEMP": str(tmp / "local"),
           "ANSIBLE_REMOTE_TEMP": str(tmp / "remote"), "ANSIBLE_HOME": str(tmp / "home"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_FORCE_COLOR": "0"}
    proc = subprocess.run([PLAYBOOK_BIN, "-i", str(inventory), str(EXAMPLE / "fleet.yml"),
                           "-e", f"hostaudit={hostaudit}", "-e", f"fleet_dir={tmp / 'fleet'}",
                           "-e", "collect_become=false", "-e", "fleet_hosts=kvm_hosts"],
                          capture_output=True, text=True, env=env, timeout=900, cwd=tmp)
    return proc, tmp / "fleet"


def test_the_playbook_runs(played) -> None:
    proc, _ = played
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "failed=0" in proc.stdout and "unreachable=0" in proc.stdout


def test_it_keeps_the_collectors_output_as_the_hosts_snapshot(played) -> None:
    _, fleet = played
    snap = fleet / "snapshots" / "localhost.snap"
    assert snap.read_bytes().startswith(b"hostaudit-snapshot 1\n")
    assert snap.read_bytes().rstrip().endswith(b"\nend")
    assert (fleet / "collect.sh").read_text().startswith("#!/bin/sh")
    assert (fleet / "not-collected.txt").read_text().splitlines()[1:] == []  # every host gave one


def test_the_fleet_report_it_produces(played) -> None:
    _, fleet = played
    doc = json.loads((fleet / "fleet.json").read_text())
    _validator().validate(doc)
    (row,) = doc["fleet"]["hosts"]
    assert row["source"] == str(fleet / "snapshots" / "localhost.snap")
    assert row["error"] is None and row["outcome"] in ("failed", "errored", "passed")
    (report,) = doc["hosts"]
    assert report["target"]["mode"] == "snapshot"
    assert report["target"]["hostname"] == row["name"] == os.uname().nodename
    assert {r["id"] for r in report["results"]} >= {"kernel.kvm", "cpu.virtualization", "boot.drift"}
    assert (fleet / "fleet.txt").read_text().splitlines()[-1].startswith("1 hosts: ")
    assert (fleet / "fleet-hosts" / "localhost.html").is_file()
    assert (fleet / "fix" / "localhost.sh").is_file()
    assert "hostaudit_check_status{" in (fleet / "fleet.prom").read_text()


def test_the_cpu_baseline_it_produces(played) -> None:
    _, fleet = played
    doc = json.loads((fleet / "cpu-baseline.json").read_text())
    schema = json.loads((REPO / "reports" / "schemas" / "cpu-baseline-v1.json").read_text())
    jsonschema.validate(doc, schema)
    assert [h["name"] for h in doc["hosts"]] == [os.uname().nodename]
