"""The example units in examples/systemd/: verified by ``systemd-analyze verify`` (systemd is installed on
Debian 12 even where it is not PID 1; .ci/install-test-deps installs it where missing), run the way
systemd runs them (the commands, their ``-`` prefixes and ``SuccessExitStatus=`` read from the unit
file with hostaudit's own systemd parser) on the first and the second day, and shown in the README
as they are."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from audit.parsers.systemd import parse_unit_file

REPO = Path(__file__).resolve().parent.parent
UNITS = REPO / "examples" / "systemd"
HOSTAUDIT = str(Path(sys.executable).with_name("hostaudit"))


def _copies(tmp_path: Path, state: Path) -> Path:
    out = tmp_path / "units"
    out.mkdir()
    for unit in UNITS.iterdir():
        text = unit.read_text().replace("/usr/local/bin/hostaudit", HOSTAUDIT)
        text = text.replace("/var/lib/hostaudit", str(state)).replace("/var/lib/prometheus/node-exporter",
                                                                       str(state / "textfile"))
        (out / unit.name).write_text(text)
    return out


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (Debian: apt-get install systemd; .ci/install-test-deps "
                           "installs it)")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    units = _copies(tmp_path, tmp_path / "state")
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", *(str(p) for p in sorted(units.iterdir()))],
                          capture_output=True, text=True, timeout=120, check=False, cwd=units)
    problems = [line for line in proc.stderr.splitlines() if "hostaudit" in line]
    assert proc.returncode == 0 and not problems, proc.stderr


def _service(units: Path) -> dict[str, list[str]]:
    return parse_unit_file((units / "hostaudit.service").read_text())["Service"]


def _run_like_systemd(service: dict[str, list[str]], env: dict[str, str]) -> tuple[bool, list[int]]:
    """The unit's result (True: success) and each command's exit code, as systemd judges them."""
    success = {0, *(int(c) for c in " ".join(service.get("SuccessExitStatus", [])).split())}
    codes = []
    for key in ("ExecStart", "ExecStartPost"):
        for line in service.get(key, []):
            ignore = line.startswith("-")
            argv = shlex.split(line.lstrip("-"))
            code = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env, check=False).returncode
            codes.append(code)
            ok = code in success if key == "ExecStart" else code == 0
            if not ok and not ignore:
                return False, codes
    return True, codes


def test_the_unit_succeeds_on_day_one_and_day_two(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "textfile").mkdir(parents=True)
    service = _service(_copies(tmp_path, state))
    env = {**os.environ, "NO_COLOR": "1"}
    for day in (1, 2):
        ok, codes = _run_like_systemd(service, env)
        assert ok, f"day {day}: exit codes {codes}"
        assert codes[0] in (0, 1, 3), codes  # the audit ran
    history = state / "history"
    assert len([p for p in history.iterdir() if p.name.endswith("Z.json") or "Z-" in p.name]) == 2
    assert (history / "latest.json").is_symlink()
    assert (state / "textfile" / "hostaudit.prom").read_text().startswith("# HELP hostaudit_")
    assert (state / "report.html").exists()


def test_the_unit_fails_only_when_the_audit_cannot_run(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "textfile").write_text("a file where the textfile directory should be")
    service = _service(_copies(tmp_path, state))
    ok, codes = _run_like_systemd(service, {**os.environ, "NO_COLOR": "1"})
    assert not ok and codes == [2]


def test_readme_shows_the_units_as_they_are() -> None:
    readme = (REPO / "README.md").read_text()
    for unit in sorted(UNITS.iterdir()):
        assert f"```ini\n{unit.read_text()}```" in readme, f"README's copy of {unit.name} differs from the file"
