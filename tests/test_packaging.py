"""The wheel ships everything a run needs: templates, schemas, profiles, the CPU model table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.skip(f"cannot build a wheel here (needs setuptools from PyPI): {proc.stderr.strip()[-300:]}")
    (whl,) = out.glob("hostaudit-*.whl")
    return whl


def test_wheel_contents(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("reports/templates/report.html", "reports/schemas/report-v1.json",
                     "audit/profiles/kvm-host.toml", "audit/profiles/kvm-host-multitenant.toml",
                     "audit/cpu/data/cpu_models.json", "audit/cpu/data/cpu_flags.json",
                     "audit/boot/data/kernel_params.json"):
        assert required in names, required
    # every module of every package, sub-packages included: a package left out of the packaging
    # configuration is invisible to an editable install but breaks the installed tool
    sources = {p.relative_to(REPO).as_posix() for top in ("audit", "checks", "reports")
               for p in (REPO / top).rglob("*.py")}
    assert sources and sources <= names, sorted(sources - names)
    assert not any(n.startswith("tests/") for n in names)


def test_installed_wheel_reads_its_data_through_importlib_resources(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    code = (
        "import importlib.resources as r, audit, reports\n"
        f"assert audit.__file__.startswith({str(target)!r}), audit.__file__\n"
        "print(len(r.files('reports').joinpath('templates', 'report.html').read_text()))\n"
        "print(len(r.files('audit.cpu').joinpath('data', 'cpu_models.json').read_text()))\n"
        "from audit.policy import load_policy; print(load_policy(profile='kvm-host-multitenant').ksm_mode)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert int(lines[0]) > 1000 and int(lines[1]) > 1000 and lines[2] == "off"
    html = tmp_path / "r.html"
    (tmp_path / "img" / "etc").mkdir(parents=True)
    run = subprocess.run([sys.executable, "-m", "audit", "--root", str(tmp_path / "img"), "-q", "-o", str(html)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert run.returncode in (0, 1, 3), run.stderr
    assert "<html" in html.read_text()


def test_wheel_in_a_fresh_venv_runs_the_console_script(wheel, tmp_path):
    """pip install of the wheel into a new venv (its dependencies from the index), then the
    ``hostaudit`` console script: --version and one audit of a small image root."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
    proc = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    exe = str(venv / "bin" / "hostaudit")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("hostaudit "), version.stderr
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text('ID=debian\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    (root / "boot").mkdir()
    (root / "boot" / "config-6.1.0-18-amd64").write_text("CONFIG_HUGETLBFS=y\nCONFIG_KSM=y\n")
    out = subprocess.run([exe, "--root", str(root), "--format", "json", "--no-entry-points"], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=120)
    assert out.returncode in (0, 1, 3), out.stderr
    doc = json.loads(out.stdout)
    assert doc["target"]["kernel_release"] == "6.1.0-18-amd64"
    assert {r["id"] for r in doc["results"]} >= {"kernel.hugetlbfs", "boot.hugepages", "cpu.baseline"}
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import audit; print(audit.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path).stdout
    assert where.startswith(venv.as_posix()), where
