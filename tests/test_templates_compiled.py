"""The HTML templates compiled ahead of time (tools/gen_templates.py, reports/templates/compiled/) are
those of the current sources, and render exactly what compiling from source renders."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jinja2
import pytest

import tests._report_fixtures as fx
from reports import html_report, templates_env

MANIFEST = json.loads((templates_env.COMPILED / "manifest.json").read_text())


def test_manifest_matches_the_sources() -> None:
    for name, digest in MANIFEST["sources"].items():
        assert hashlib.sha256((templates_env.TEMPLATES / name).read_bytes()).hexdigest() == digest, (
            f"{name} changed since it was compiled: run python tools/gen_templates.py")


def test_regenerating_gives_the_committed_modules(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_templates", templates_env.TEMPLATES.parents[1] / "tools"
                                                  / "gen_templates.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    gen.main(tmp_path)
    made = {p.name: p.read_text() for p in tmp_path.iterdir()}
    committed = {p.name: p.read_text() for p in templates_env.COMPILED.iterdir() if p.is_file()}
    if MANIFEST["jinja2"] != jinja2.__version__:
        # another jinja2 compiles differently: the committed modules are then not used (see below)
        assert set(made) == set(committed)
        return
    assert made == committed, "run python tools/gen_templates.py"


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    return fx.golden_report(tmp_path_factory.mktemp("g"))


def test_compiled_and_source_render_the_same(golden, monkeypatch) -> None:
    compiled = html_report.render(golden, exit_code=1)
    monkeypatch.setattr(templates_env, "_compiled_usable", lambda name: False)
    assert html_report.render(golden, exit_code=1) == compiled


def test_a_stale_compilation_is_never_used(monkeypatch, tmp_path: Path) -> None:
    folder = tmp_path / "compiled"
    folder.mkdir()
    manifest = dict(MANIFEST, sources={"report.html": "0" * 64})
    (folder / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(templates_env, "COMPILED", folder)
    env = templates_env.environment("report.html", html_report.FILTERS)
    assert isinstance(env.loader, jinja2.FileSystemLoader)
