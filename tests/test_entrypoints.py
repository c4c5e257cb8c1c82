"""hostaudit's own entry-point scan agrees with importlib.metadata on real installed distributions: the
test venv's site-packages (every group of every installed package), and crafted ones."""

from __future__ import annotations

import sys
import sysconfig
from importlib import metadata
from pathlib import Path

from audit.entrypoints import entry_points, parse_entry_points


def _ours(group: str, paths: list[str]) -> list[tuple[str, str]]:
    return sorted((ep.name, ep.value) for ep in entry_points(group, paths))


def _theirs(group: str, paths: list[str]) -> list[tuple[str, str]]:
    dists = metadata.distributions(path=paths)
    seen, out = set(), []
    for d in dists:
        key = d.metadata["Name"].replace("_", "-").replace(".", "-").lower() if d.metadata["Name"] else None
        if key in seen:
            continue
        seen.add(key)
        out += [(ep.name, ep.value) for ep in d.entry_points if ep.group == group]
    return sorted(out)


def test_every_group_of_the_test_venv_agrees() -> None:
    site = [sysconfig.get_paths()["purelib"]]
    groups = {ep.group for d in metadata.distributions(path=site) for ep in d.entry_points}
    assert "console_scripts" in groups
    for group in groups:
        assert _ours(group, site) == _theirs(group, site), group


def test_first_on_the_path_wins_and_values_keep_attributes(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for site, value in ((a, "first_mod:obj.attr [extra]"), (b, "second_mod")):
        info = site / "ha_demo-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ha-demo\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"# comment\n[other]\nx = y\n[hostaudit]\ndemo = {value}\n")
    eps = entry_points("hostaudit", [str(a), str(b)])
    assert [(e.name, e.value, e.dist) for e in eps] == [("demo", "first_mod:obj.attr [extra]", "ha_demo 1.0")]
    assert _ours("hostaudit", [str(a), str(b)]) == _theirs("hostaudit", [str(a), str(b)])


def test_load_resolves_module_and_attributes() -> None:
    (ep,) = entry_points("hostaudit", [str(_plugin_site())])
    assert ep.load() is sys.modules["audit.entrypoints"].parse_entry_points


def _plugin_site() -> Path:
    import tempfile

    site = Path(tempfile.mkdtemp())
    info = site / "x-1.dist-info"
    info.mkdir()
    (info / "entry_points.txt").write_text("[hostaudit]\np = audit.entrypoints:parse_entry_points\n")
    return site


def test_parse_ignores_other_groups_and_junk() -> None:
    text = "[hostaudit]\na = m:f\nnot a pair\n; c\n[x]\nb = n\n[hostaudit]\nc=o\n"
    assert parse_entry_points(text, "hostaudit") == [("a", "m:f"), ("c", "o")]


def test_no_report_of_a_run_imports_importlib_metadata(tmp_path):
    """importlib.metadata (and the email, zipfile, csv it brings) is about 50 ms of start-up here: a
    run finds entry points without it, and tabulate 0.10, which imports it, is kept out (pyproject)."""
    import subprocess
    import sys

    code = ("import sys, audit.cli.main as m\n"
            f"m.main(['--root', {str(tmp_path)!r}, '-q', '-o', {str(tmp_path / 'r.txt')!r},"
            f" '-o', {str(tmp_path / 'r.json')!r}, '-o', {str(tmp_path / 'r.html')!r}])\n")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text("ID=debian\n")
    probe = code.replace("m.main(", "code = m.main(") + "print('importlib.metadata' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stdout + out.stderr
