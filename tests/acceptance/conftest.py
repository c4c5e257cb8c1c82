"""The image acceptance job (``.ci/image-acceptance``): a real debootstrapped Debian 12 root.

Collected only when the job hands over its root in HOSTAUDIT_IMAGE_ROOT: the default test run does
not collect these tests at all (they need debootstrap, bubblewrap and minutes), so it never shows
them as skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

IMAGE_ROOT = os.environ.get("HOSTAUDIT_IMAGE_ROOT")
if not IMAGE_ROOT:
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture
def image(tmp_path: Path) -> Callable[[], Path]:
    """A fresh copy of the cached image root (hard links would let a fix script touch the cache)."""

    def copy() -> Path:
        assert IMAGE_ROOT
        dest = tmp_path / f"root{len(list(tmp_path.glob('root*')))}"
        subprocess.run(["cp", "-a", IMAGE_ROOT, str(dest)], check=True)
        return dest

    return copy


def bwrap_available() -> bool:
    return shutil.which("bwrap") is not None
