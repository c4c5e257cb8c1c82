"""Choosing reporters by name or file suffix, and writing report files atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

from audit.errors import UsageError
from audit.model import Report

Renderer = Callable[..., str]

#: suffix -> format name; later issues add .xml, .html, .sh
SUFFIXES: dict[str, str] = {".json": "json", ".txt": "text"}
#: formats --format may send to stdout
STDOUT_FORMATS: tuple[str, ...] = ("text", "json")


def builtin_renderer(fmt: str) -> Renderer:
    """Imported on demand: a JSON run never pays for tabulate, jinja2 or junit-xml."""
    if fmt == "json":
        from reports import json_report

        return json_report.render
    if fmt == "text":
        from reports import text_report

        return text_report.render
    raise UsageError(f"unknown format {fmt!r}")


def format_for_path(path: str, extra: dict[str, Any] | None = None) -> str:
    suffix = os.path.splitext(path)[1].lower()
    if suffix in SUFFIXES:
        return SUFFIXES[suffix]
    if extra and suffix in extra:
        return suffix
    known = ", ".join(sorted({*SUFFIXES, *(extra or {})}))
    raise UsageError(f"{path}: unknown report suffix {suffix or '(none)'!r} (known: {known})")


def write_atomic(path: str, text: str, *, fail_before_rename: Callable[[], None] | None = None) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder, fsync, then rename:
    a crash or kill mid-write leaves the previous file in place, never half a report."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if fail_before_rename is not None:
            fail_before_rename()
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def render(fmt: str, report: Report, *, exit_code: int, color: bool = False,
           extra: dict[str, Any] | None = None) -> str:
    if extra:
        for key in (fmt, f".{fmt}"):
            if key in extra:
                return str(extra[key](report))
    fn = builtin_renderer(fmt)
    if fmt == "text":
        return fn(report, exit_code=exit_code, color=color)
    return fn(report, exit_code=exit_code)


def plugin_reporters(pm: Any) -> dict[str, Any]:
    """Formats added by plugins through ``hostaudit_reporters``; a broken plugin adds none."""
    found: dict[str, Any] = {}
    for impl in pm.hook.hostaudit_reporters.get_hookimpls():
        try:
            found.update(impl.function() or {})
        except Exception:  # the run goes on; its checks still report the plugin
            continue
    return found
