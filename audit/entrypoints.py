"""The ``hostaudit`` entry points of the installed distributions, found without ``importlib.metadata``.

``importlib.metadata`` imports the ``email`` package, ``zipfile``, ``csv`` and more (about 15 ms of a
50 ms start-up) to answer what a scan of ``sys.path`` answers: every ``NAME-VERSION.dist-info`` (and
legacy ``.egg-info``) directory with an ``entry_points.txt`` holding a ``[hostaudit]`` section. The
rules are those of the packaging specifications, as importlib.metadata applies them:

* the entry points file is INI: ``[group]`` sections of ``name = module[:attr[.attr...]]`` lines,
  ``#``/``;`` comments, an optional ``[extras]`` suffix on the value (ignored, as importlib does);
* a distribution is found once: the first ``sys.path`` entry that holds a distribution of a given
  normalized name (PEP 503: runs of ``-_.`` are ``-``, case-folded) wins, as with the import system;
* the name and version come from the directory name (``hostaudit_ovs-1.0.dist-info``).

Zip files on ``sys.path`` are not searched (importlib.metadata does; no hostaudit plugin ships so).
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Iterable
from typing import Any

from audit.record import Record

_SECTION = re.compile(r"^\[\s*([^\]]+?)\s*\]\s*$")
_VALUE = re.compile(r"^(?P<module>[\w.]+)\s*(?::\s*(?P<attr>[\w.]+))?\s*(?:\[.*\])?\s*$")
_DIST_DIR = re.compile(r"^(?P<name>[^-]+)(?:-(?P<version>[^-]+))?.*\.(?:dist|egg)-info$", re.IGNORECASE)
#: an entry_points.txt is a few lines; refuse anything large rather than read it
MAX_FILE = 1 << 20


class EntryPoint(Record):
    name: str
    value: str  # "module:attr"
    dist: str  # "NAME VERSION"

    def load(self) -> Any:
        m = _VALUE.match(self.value)
        if m is None:
            raise ValueError(f"malformed entry point value {self.value!r}")
        obj: Any = importlib.import_module(m.group("module"))
        for part in (m.group("attr") or "").split("."):
            if part:
                obj = getattr(obj, part)
        return obj


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_entry_points(text: str, group: str) -> list[tuple[str, str]]:
    """(name, value) pairs of ``group`` in an entry_points.txt."""
    out: list[tuple[str, str]] = []
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        m = _SECTION.match(line)
        if m:
            current = m.group(1)
            continue
        if current == group and "=" in line:
            name, _, value = line.partition("=")
            out.append((name.strip(), value.strip()))
    return out


def _dist_dirs(paths: Iterable[str]) -> Iterable[tuple[str, str, str]]:
    """(directory, normalized name, "NAME VERSION") of each distribution, first on the path wins."""
    seen: set[str] = set()
    for entry in paths:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:  # not a directory (a zip), or gone
            continue
        for name in names:
            m = _DIST_DIR.match(name)
            if m is None:
                continue
            key = _normalize(m.group("name"))
            if key in seen:
                continue
            seen.add(key)
            yield os.path.join(entry or ".", name), key, f"{m.group('name')} {m.group('version') or '?'}"


def entry_points(group: str, paths: Iterable[str] | None = None) -> list[EntryPoint]:
    """Every entry point of ``group`` on ``paths`` (default ``sys.path``), in path order."""
    found: list[EntryPoint] = []
    for folder, _, dist in _dist_dirs(sys.path if paths is None else paths):
        path = os.path.join(folder, "entry_points.txt")
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_FILE + 1)
        except OSError:
            continue
        if len(data) > MAX_FILE:
            continue
        for name, value in parse_entry_points(data.decode("utf-8", errors="replace"), group):
            found.append(EntryPoint(name=name, value=value, dist=dist))
    return found
