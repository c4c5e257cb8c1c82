"""PEP 517 build backend: setuptools', run after tools/gen_manpage.py has written the man page and the
bash and zsh completions from the command-line parser into build/hostaudit-data, which
pyproject.toml's [tool.setuptools.data-files] puts in the wheel (and so under <prefix>/share).

Generated at every wheel (and editable) build, so they never disagree with the parser; the generator
runs in its own process so the backend imports nothing of hostaudit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403 (every hook not defined here is setuptools' own)

#: Relative to the project root (the backend's working directory); pyproject.toml names the same files.
DATA_DIR = os.path.join("build", "hostaudit-data")


def _generate() -> None:
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen_manpage.py")
    subprocess.run([sys.executable, script, "--data", DATA_DIR], check=True)


def build_wheel(wheel_directory: str, config_settings: dict[str, Any] | None = None,
                metadata_directory: str | None = None) -> str:
    _generate()
    return _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_editable(wheel_directory: str, config_settings: dict[str, Any] | None = None,
                   metadata_directory: str | None = None) -> str:
    _generate()
    return _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)
