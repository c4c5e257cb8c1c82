"""The fleet runner (audit/fleet.py): hosts come back in input order whatever order the workers
finish in; a host whose audit ends its worker process, or hangs, is that host's error row while the
others are audited; Ctrl-C writes what finished. A throw-away plugin (a real dist-info on the
path) does the harm, keyed on the host name."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from audit.fleet import FleetJob, HostOutcome, Task, find_snapshots, fleet_exit_code, run_fleet, tasks_for, unique_stems
from audit.host.collect import render_document
from audit.model import Status
from audit.policy import DEFAULT_POLICY
from tests.test_fleet import capture, deb_tree
from tests.test_isolation import interruptible

REPO = Path(__file__).resolve().parents[1]

PLUGIN = '''
import os, re, time
from audit import hookimpl
from audit.host import facts
from audit.model import Severity, check, passed


@check("demo.first", title="First", severity=Severity.LOW)
def first(host, policy):
    """Passes."""
    return passed("fine")


@check("demo.trap", title="Trap", severity=Severity.LOW)
def trap(host, policy):
    """What the host's name asks for."""
    name = host.fact(facts.hostname)
    if name.startswith("crash"):
        os._exit(7)
    if name.startswith("hang"):
        while True:
            try:
                time.sleep(0.05)
            except BaseException:
                pass
    if name.startswith("stuck"):  # a C call that holds the interpreter: only the parent can stop it
        re.match(r"(a+)+$", "a" * 64 + "b")
    if name.startswith("slow"):
        time.sleep(1.5)
    return passed("fine")


@hookimpl
def hostaudit_checks():
    return [first, trap]
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    (site / "ha_fleet.py").write_text(textwrap.dedent(PLUGIN))
    info = site / "ha_fleet-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ha-fleet\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[hostaudit]\nha_fleet = ha_fleet\n")
    return site


@pytest.fixture(scope="module")
def snapshot_doc(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("one")
    return json.loads(capture(base / "root", deb_tree("x"), base / "x.json").read_text())


def make_fleet(folder: Path, doc: dict, names: list[str]) -> Path:
    folder.mkdir()
    for i, name in enumerate(names):
        entries = dict(doc["entries"])
        entries["/proc/sys/kernel/hostname"] = {"type": "file", "encoding": "utf-8", "data": f"{name}\n",
                                                "size": len(name) + 1}
        (folder / f"{i:02d}-{name}.json").write_text(render_document(dict(doc, hostname=name, entries=entries)))
    return folder


def cli(site: Path, *args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    return subprocess.Popen([sys.executable, "-m", "audit", "run", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=cwd, preexec_fn=interruptible)


def rows(doc: dict) -> dict[str, dict]:
    return {Path(h["source"]).name: h for h in doc["fleet"]["hosts"]}


def statuses(doc: dict, index: int) -> dict[str, tuple[str, str]]:
    return {r["id"]: (r["status"], r["message"]) for r in doc["hosts"][index]["results"]}


def test_a_host_that_ends_its_process_is_its_own_error_row(site, snapshot_doc, tmp_path) -> None:
    make_fleet(tmp_path / "f", snapshot_doc, ["ok-a", "crash-b", "ok-c", "crash-d", "ok-e"])
    proc = cli(site, "--snapshot", str(tmp_path / "f"), "--select", "demo.*", "--format", "json", cwd=tmp_path)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, err
    got = rows(json.loads(out))
    for name in ("01-crash-b.json", "03-crash-d.json"):
        assert got[name]["outcome"] == "errored" and got[name]["report"] is None
        assert got[name]["error"].endswith("the process auditing it exited with status 7 (a check or plugin ended it)")
    for name in ("00-ok-a.json", "02-ok-c.json", "04-ok-e.json"):
        assert got[name]["outcome"] == "passed", got[name]


def test_a_check_that_never_returns_costs_its_host_only(site, snapshot_doc, tmp_path) -> None:
    make_fleet(tmp_path / "f", snapshot_doc, ["ok-a", "hang-b", "ok-c"])
    t0 = time.monotonic()
    proc = cli(site, "--snapshot", str(tmp_path / "f"), "--select", "demo.*", "--check-timeout", "1",
               "--format", "json", cwd=tmp_path)
    out, err = proc.communicate(timeout=300)
    assert time.monotonic() - t0 < 60
    assert proc.returncode == 3, err
    doc = json.loads(out)
    got = rows(doc)
    hung = got["01-hang-b.json"]
    assert hung["outcome"] == "errored" and hung["error"] is None  # audited: its report says what ran
    assert statuses(doc, hung["report"]) == {
        "demo.first": ("pass", "fine"),
        "demo.trap": ("error", "demo.trap did not finish within 1 s (--check-timeout); the run was ended"),
    }
    assert got["00-ok-a.json"]["outcome"] == got["02-ok-c.json"]["outcome"] == "passed"


def test_a_worker_silent_past_the_host_limit_is_stopped(site, snapshot_doc, tmp_path, monkeypatch) -> None:
    """A check stuck in C code (the watchdog thread cannot run): the parent stops the worker."""
    monkeypatch.syspath_prepend(str(site))
    folder = make_fleet(tmp_path / "f", snapshot_doc, ["ok-a", "stuck-b", "ok-c"])
    tasks = tasks_for(find_snapshots([str(folder)]))
    job = FleetJob(select=("demo.*",), check_timeout=None, entry_points=True)
    got = list(run_fleet(tasks, job, workers=2, host_limit=3.0))
    assert [o.index for o in got] == [0, 1, 2]
    assert got[1].error is not None and "did not finish within 3 s; its process was stopped" in got[1].error
    assert got[0].exit_code == got[2].exit_code == 0
    assert fleet_exit_code(got) == 3


def test_results_come_back_in_input_order(site, snapshot_doc, tmp_path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(site))
    names = ["slow-a", "ok-b", "ok-c", "slow-d", "ok-e", "ok-f", "ok-g"]
    folder = make_fleet(tmp_path / "f", snapshot_doc, names)
    tasks = tasks_for(find_snapshots([str(folder)]))
    got = list(run_fleet(tasks, FleetJob(select=("demo.*",), entry_points=True), workers=3, window=4))
    assert [o.index for o in got] == list(range(len(names)))
    assert [o.name for o in got] == names
    assert all(dict(o.summary)[Status.PASS.value] == 2 for o in got)
    assert all(o.payload == {} for o in got)  # no handler: nothing rendered


def test_ctrl_c_writes_what_finished(site, snapshot_doc, tmp_path) -> None:
    make_fleet(tmp_path / "f", snapshot_doc, ["ok-a", "hang-b", "ok-c"])
    proc = cli(site, "--snapshot", str(tmp_path / "f"), "--select", "demo.*", "--check-timeout", "0", "-q",
               "-o", "fleet.json", cwd=tmp_path)
    time.sleep(5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    doc = json.loads((tmp_path / "fleet.json").read_text())
    assert doc["fleet"]["interrupted"] is True
    assert [h["source"].rsplit("/", 1)[1] for h in doc["fleet"]["hosts"]] == ["00-ok-a.json"]


def test_stems_are_unique_and_safe() -> None:
    paths = ["a/web01.json", "b/web01.json", "c/WEB01.snap", "d/../x y$(id).json.gz", "e/.json", "f/a.b.c.txt",
             "g/..."]
    assert unique_stems(paths) == ["web01", "web01-2", "WEB01-3", "x_y_id_", "json", "a.b.c", "host"]


def test_fleet_exit_code() -> None:
    def row(code: int) -> HostOutcome:
        return HostOutcome(index=0, source="s", stem="s", name="s", exit_code=code, summary={}, counting=0,
                           checks=(), statuses="", error=None)

    assert fleet_exit_code([row(0), row(0)]) == 0
    assert fleet_exit_code([row(0), row(3)]) == 3
    assert fleet_exit_code([row(3), row(1), row(0)]) == 1


def test_find_snapshots_expands_folders_once_each(tmp_path) -> None:
    (tmp_path / "d").mkdir()
    for n in ("b.json", "a.snap", ".hidden"):
        (tmp_path / "d" / n).write_text("x")
    (tmp_path / "d" / "sub").mkdir()
    got = find_snapshots([str(tmp_path / "d"), str(tmp_path / "d" / "a.snap"), str(tmp_path / "other.json")])
    assert got == [str(tmp_path / "d" / "a.snap"), str(tmp_path / "d" / "b.json"), str(tmp_path / "other.json")]
    assert Task(0, "p", "s").stem == "s" and DEFAULT_POLICY.profile
