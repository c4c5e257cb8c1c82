"""Files named on the command line: a FIFO, a device, a directory, a huge or non-UTF-8 file, deep
nesting and impossible sizes end in one line naming the input (exit 2), never a hang or an
"internal error" (issue #11, items 6, 8, 9, 10)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from audit.errors import UsageError
from audit.inputfile import read_user_file, read_user_text
from audit.policy import parse_bytes

REPO = Path(__file__).resolve().parents[1]


def hostaudit(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "audit", *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("args", [
    pytest.param(("run", "--policy", "@"), id="policy"),
    pytest.param(("run", "--snapshot", "@"), id="snapshot"),
    pytest.param(("cpu", "compare", "@", "@"), id="cpu-compare"),
    pytest.param(("diff", "@", "@"), id="diff"),
])
def test_a_fifo_as_an_input_is_refused_at_once(fifo, tmp_path, args):
    out = hostaudit(*(str(fifo) if a == "@" else a for a in args), cwd=tmp_path)  # timeout=60: a hang fails
    assert out.returncode == 2, out.stderr
    assert "not a regular file (a FIFO)" in out.stderr and "internal error" not in out.stderr


@pytest.mark.parametrize(("path", "kind"), [("/dev/zero", "a character device"), ("/", "a directory")])
def test_devices_and_directories_are_not_read(path, kind):
    with pytest.raises(UsageError, match=rf"--policy {path}: not a regular file \({kind}\)"):
        read_user_file(path, what="--policy", cap=1 << 20)


def test_the_cap_is_checked_before_reading(tmp_path):
    big = tmp_path / "big.toml"
    with open(big, "wb") as fh:
        fh.truncate(5 << 20)  # sparse: nothing is written, the size is what is checked
    out = hostaudit("--policy", str(big), cwd=tmp_path)
    assert out.returncode == 2 and f"--policy {big}: 5242880 bytes, larger than the 1048576-byte limit" in out.stderr


def test_a_non_utf8_policy_names_the_file(tmp_path):
    pol = tmp_path / "p.toml"
    pol.write_bytes(b'extends = "kvm-host"\n# caf\xe9\n')
    with pytest.raises(UsageError, match=r"p.toml: not UTF-8 text \(byte 26"):
        read_user_text(str(pol), what="--policy", cap=1 << 20)
    out = hostaudit("--policy", str(pol), cwd=tmp_path)
    assert out.returncode == 2 and "not UTF-8 text" in out.stderr and "internal error" not in out.stderr


def test_a_deeply_nested_policy_is_a_policy_error(tmp_path):
    pol = tmp_path / "deep.toml"
    pol.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    out = hostaudit("--policy", str(pol), cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert f"{pol}: not a policy: arrays or tables nested too deeply" in out.stderr


@pytest.mark.parametrize(("value", "problem"), [
    ("infG", "not a size"), ("nan", "not a size"), ("-infM", "not a size"), ("1e400", "not a size"),
    ("0.0001K", "less than one byte"), ("2048T", "larger than any machine"), ("0", "must be positive"),
])
def test_impossible_sizes_name_the_key(value, problem):
    with pytest.raises(UsageError, match=rf"^host.memory: .*{problem}"):
        parse_bytes(value, "host.memory")


def test_impossible_size_in_a_policy_file_end_to_end(tmp_path):
    pol = tmp_path / "p.toml"
    pol.write_text('[hugepages]\nsize = "infG"\n')
    out = hostaudit("--policy", str(pol), cwd=tmp_path)
    assert out.returncode == 2 and "hugepages.size: not a size: 'infG'" in out.stderr, out.stderr
