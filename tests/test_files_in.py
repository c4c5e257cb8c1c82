"""audit.inputfile.files_in: the files of a folder given to ``run --snapshot DIR`` and the cpu commands."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from audit.inputfile import files_in


def test_regular_files_and_links_to_them_sorted_by_name(tmp_path: Path) -> None:
    for name in ("b.json", "a.snap", ".hidden", "c"):
        (tmp_path / name).write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "inner.json").write_text("x")
    os.symlink(tmp_path / "c", tmp_path / "link-to-c")
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    os.symlink(tmp_path / "sub", tmp_path / "link-to-dir")
    os.mkfifo(tmp_path / "fifo")
    assert files_in(str(tmp_path)) == [str(tmp_path / n) for n in ("a.snap", "b.json", "c", "link-to-c")]


def test_a_link_loop_is_left_out(tmp_path: Path) -> None:
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    (tmp_path / "host.json").write_text("x")
    assert files_in(str(tmp_path)) == [str(tmp_path / "host.json")]


def test_a_folder_that_is_not_there_is_an_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        files_in(str(tmp_path / "missing"))
