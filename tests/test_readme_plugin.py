"""The README's plugin example, as written there, installed through a real entry point and run.

The two Python blocks of "Writing a plugin" are taken from README.md verbatim, so the example a
plugin author copies keeps working whatever moves inside the package.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def readme_plugin_blocks() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Writing a plugin", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    blocks = readme_plugin_blocks()
    assert len(blocks) == 2, "the README's plugin section has a check block and a fact block"
    site = tmp_path / "site"
    site.mkdir()
    (site / "hostaudit_ovs.py").write_text(blocks[0] + "\n\n" + blocks[1], encoding="utf-8")
    info = site / "hostaudit_ovs-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hostaudit-ovs\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[hostaudit]\novs = hostaudit_ovs\n")
    return site


def _run(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    return subprocess.run([sys.executable, "-m", "audit", *args], capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.mark.parametrize(("db", "status"), [("bridge br0\n", "pass"), ("bridge br1\n", "fail"), (None, "skip")])
def test_readme_plugin_check_runs_from_its_entry_point(site, tmp_path, db, status):
    root = tmp_path / "root"
    (root / "etc" / "openvswitch").mkdir(parents=True)
    if db is not None:
        (root / "etc" / "openvswitch" / "conf.db").write_text(db)
    out = _run(site, "--root", str(root), "--select", "ovs.*", "--format", "json")
    assert out.returncode in (0, 1, 3), out.stderr  # 3: nothing could be judged (the skip)
    (result,) = json.loads(out.stdout)["results"]
    assert (result["id"], result["status"], result["plugin"]) == ("ovs.bridge", status, "ovs")
    if status == "fail":
        assert result["remediation"]["commands"] == ["ovs-vsctl add-br br0"]


def test_readme_plugin_fact_is_captured_by_collect(site, tmp_path):
    root = tmp_path / "root"
    (root / "etc" / "openvswitch").mkdir(parents=True)
    (root / "etc" / "openvswitch" / "conf.db").write_text("bridge br0\n")
    out = _run(site, "collect", "--root", str(root))
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["entries"]["/etc/openvswitch/conf.db"]["data"] == "bridge br0\n"
    assert "?/usr/bin/ovs-vsctl" in doc["patterns"]  # "?": where it is and what kind, no content
