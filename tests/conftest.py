"""Shared fixtures: real data files and fake host roots built as real directories."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class Link:
    """A symlink to create in a fake root (target written verbatim, absolute or relative)."""

    target: str


@dataclass(frozen=True)
class Dir:
    """An empty directory."""


TreeSpec = Mapping[str, "str | bytes | Link | Dir | Path"]


def build_tree(root: Path, spec: TreeSpec) -> Path:
    for rel, content in spec.items():
        path = root / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Link):
            os.symlink(content.target, path)
        elif isinstance(content, Dir):
            path.mkdir(parents=True, exist_ok=True)
        elif isinstance(content, Path):
            path.write_bytes(content.read_bytes())
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


@pytest.fixture
def make_root(tmp_path: Path) -> Callable[[TreeSpec], Path]:
    """Build a directory tree from {path: content}; returns the root directory."""
    counter = iter(range(1_000_000))

    def make(spec: TreeSpec) -> Path:
        root = tmp_path / f"root{next(counter)}"
        root.mkdir()
        return build_tree(root, spec)

    return make


def data(*parts: str) -> Path:
    return DATA.joinpath(*parts)


def cpuinfo_sample(name: str) -> Path:
    return data("cpuinfo", name)


def kconfig_sample(name: str) -> Path:
    return data("kconfig", name)
