"""Choosing reporters by name or file suffix, and writing report files atomically."""

from __future__ import annotations

import contextlib
import os
import re
import stat
import time
from collections.abc import Callable
from typing import Any, TextIO

from audit.errors import UsageError
from audit.model import Report

Renderer = Callable[..., str]

#: suffix -> format name; the longest suffix a name ends with wins (``x.codequality.json`` is code quality)
SUFFIXES: dict[str, str] = {
    ".json": "json",
    ".txt": "text",
    ".xml": "junit",
    ".html": "html",
    ".sh": "fix",
    ".prom": "prometheus",
    ".sarif": "sarif",
    ".codequality.json": "codequality",
}
#: suffixes kept for formats a later release adds; a plugin reporter may still claim one
RESERVED_SUFFIXES: dict[str, str] = {}
#: formats --format may send to stdout (the remediation script goes to a file only)
STDOUT_FORMATS: tuple[str, ...] = ("text", "json", "junit", "html", "prometheus", "sarif", "codequality")
#: every built-in format, stdout or file
BUILTIN_FORMATS: tuple[str, ...] = (*STDOUT_FORMATS, "fix")
#: formats that place findings on one host's files (--source-prefix): not written for a fleet
ONE_HOST_FORMATS: tuple[str, ...] = ("sarif", "codequality")


def builtin_renderer(fmt: str) -> Renderer:
    """Imported on demand: a JSON run never pays for tabulate, jinja2 or junit-xml."""
    if fmt == "json":
        from reports import json_report

        return json_report.render
    if fmt == "text":
        from reports import text_report

        return text_report.render
    if fmt == "junit":
        from reports import junit_report

        return junit_report.render
    if fmt == "html":
        from reports import html_report

        return html_report.render
    if fmt == "fix":
        from reports import fix_script

        return fix_script.render
    if fmt == "prometheus":
        from reports import prometheus

        return prometheus.render
    if fmt == "sarif":
        from reports import sarif

        return sarif.render
    if fmt == "codequality":
        from reports import codequality

        return codequality.render
    raise UsageError(f"unknown format {fmt!r}")


def path_suffix(path: str) -> str:
    """The suffix that names a file's format, lower case: the longest of SUFFIXES the name ends with
    after at least one other character (``r.codequality.json``: ``.codequality.json``), else the last
    one (``os.path.splitext``: ``.json``, or ``""``)."""
    name = os.path.basename(path).lower()
    for suffix in sorted((s for s in SUFFIXES if s.count(".") > 1), key=len, reverse=True):
        if name.endswith(suffix) and len(name) > len(suffix):
            return suffix
    return os.path.splitext(name)[1]


def format_for_path(path: str, extra: dict[str, Any] | None = None) -> str:
    """The format a file gets from its suffix: a built-in name, or the suffix a plugin registered.

    Built-in suffixes win over plugins, so a plugin cannot silently change what ``-o x.json`` writes.
    """
    suffix = path_suffix(path)
    if suffix in SUFFIXES:
        return SUFFIXES[suffix]
    if extra and suffix in extra:
        return suffix
    if suffix in RESERVED_SUFFIXES:
        raise UsageError(
            f"{path}: the {suffix} suffix is reserved for {RESERVED_SUFFIXES[suffix]} in a later release;"
            " no reporter writes it yet"
        )
    known = ", ".join(sorted({*SUFFIXES, *(extra or {})}))
    raise UsageError(f"{path}: unknown report suffix {suffix or '(none)'!r} (known: {known})")


def format_names(extra: dict[str, Any] | None = None) -> list[str]:
    """Every format a ``FORMAT:PATH`` output or ``--format`` may name: built-in, then plugins'."""
    return [*BUILTIN_FORMATS, *(k.lstrip(".") for k in extra or {} if k.lstrip(".") not in BUILTIN_FORMATS)]


def output_spec(spec: str, extra: dict[str, Any] | None = None) -> tuple[str, str]:
    """(path, format) of one ``-o`` value: ``FORMAT:PATH`` when what comes before the first ``:`` is a
    format name (``codequality:gl-code-quality.json``, ``json:out.txt``, a plugin's ``csv:x``), else the
    whole value is the path and its suffix gives the format. Only a known name counts, so ``C:\\r.json``,
    ``./a:b.json`` and ``reports:x/r.json`` are paths (write ``./json:x`` for a file named ``json:x``)."""
    name, colon, path = spec.partition(":")
    if colon and name in format_names(extra):
        if not path:
            raise UsageError(f"-o {spec}: no file name after '{name}:'")
        return path, (name if name in BUILTIN_FORMATS else _plugin_key(name, extra or {}))
    return spec, format_for_path(spec, extra)


def _plugin_key(name: str, extra: dict[str, Any]) -> str:
    return name if name in extra else f".{name}"


def check_fleet_outputs(specs: list[str], source_prefix: str | None = None) -> None:
    """Refuse, before anything is audited, what a fleet run (``--snapshot DIR``) does not write: SARIF
    and code quality place findings on one host's files, and a fleet takes formats from suffixes."""
    for spec in specs:
        name = spec.partition(":")[0]
        if ":" in spec and name in BUILTIN_FORMATS:
            raise UsageError(f"-o {spec}: a fleet run takes each output's format from its suffix "
                             f"(FORMAT:PATH is for one host's run)")
        if path_suffix(spec) in SUFFIXES and SUFFIXES[path_suffix(spec)] in ONE_HOST_FORMATS:
            raise UsageError(f"-o {spec}: SARIF and code quality reports place findings on one host's files; a "
                             "fleet run does not write them (audit each host in its own run: --snapshot FILE "
                             "or --root DIR)")
    if source_prefix is not None:
        raise UsageError("--source-prefix: only SARIF and code quality reports use it, and a fleet run does not "
                         "write them")


#: A temporary file of ours older than this was left by a run killed between write and rename.
STALE_TEMPORARY = 600.0


def _remove_stale_temporaries(folder: str, name: str) -> None:
    """Remove ``.NAME.XXXXXXXX.tmp`` files (mkstemp's names for ``name``) older than
    STALE_TEMPORARY: a kill at the instant of the rename leaves one. Younger ones may be another
    run's, still being written, and stay."""
    pattern = re.compile(r"\." + re.escape(name) + r"\.[A-Za-z0-9_]{8}\.tmp")
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    now = time.time()
    for entry in entries:
        if not pattern.fullmatch(entry):
            continue
        full = os.path.join(folder, entry)
        with contextlib.suppress(OSError):
            st = os.lstat(full)
            if stat.S_ISREG(st.st_mode) and now - st.st_mtime > STALE_TEMPORARY:
                os.unlink(full)


#: New report files hold kernel configuration, boot parameters and paths: owner and group only.
#: Prometheus textfiles hold only statuses and must be readable by node_exporter's own user.
NEW_FILE_MODE = 0o640
PUBLIC_SUFFIXES = (".prom",)


def file_mode(path: str, mode: int | None = None) -> int:
    """The mode a report written to ``path`` gets: ``mode`` when given (``--mode``); else the mode of
    the file it replaces; else 0640, or 0644 for a ``.prom`` file."""
    if mode is not None:
        return mode
    try:
        st = os.stat(path)
    except OSError:
        return 0o644 if path.lower().endswith(PUBLIC_SUFFIXES) else NEW_FILE_MODE
    return stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else NEW_FILE_MODE


def write_atomic(path: str, text: str, *, mode: int | None = None,
                 fail_before_rename: Callable[[], None] | None = None) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder, fsync, then rename:
    a crash or kill mid-write leaves the previous file in place, never half a report. The file gets
    ``file_mode(path, mode)``."""
    write_atomic_with(path, lambda fh: fh.write(text), mode=mode, fail_before_rename=fail_before_rename)


def write_atomic_with(path: str, write: Callable[[TextIO], object], *, mode: int | None = None,
                      clean_stale: bool = True, sync_folder: bool = True,
                      fail_before_rename: Callable[[], None] | None = None) -> None:
    """``write_atomic`` for content written piece by piece: ``write(fh)`` fills the temporary file.
    ``clean_stale=False`` skips looking through the folder for stale temporaries of ours, and
    ``sync_folder=False`` the fsync of the folder after the rename (a fleet's folder holds a file per
    host: its caller cleans it once, and syncs it once)."""
    final_mode = file_mode(path, mode)
    folder = os.path.dirname(os.path.abspath(path))
    if clean_stale:
        _remove_stale_temporaries(folder, os.path.basename(path))
    import tempfile  # only when a report is written to a file

    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if fail_before_rename is not None:
            fail_before_rename()
        os.chmod(tmp, final_mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if not sync_folder:
        return
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def render(fmt: str, report: Report, *, exit_code: int, color: bool = False,
           extra: dict[str, Any] | None = None, show: frozenset[str] | None = None,
           width: int | None = None, source_prefix: str | None = None) -> str:
    """Text of ``report`` in ``fmt``. What counts as a failure (``--fail-on``, ``--strict``, required
    checks) travels on the report (``report.gate``): every reporter judges results as the exit code does.
    ``width``: text only, the terminal's width when it goes to one (None: a log or a file).
    ``source_prefix``: SARIF and code quality only, where the root's files are in the repository."""
    if fmt not in BUILTIN_FORMATS and extra:
        for key in (fmt, f".{fmt}"):
            if key in extra:
                return str(extra[key](report))
    fn = builtin_renderer(fmt)
    if fmt == "text":
        return fn(report, exit_code=exit_code, color=color, show=show, width=width)
    if fmt in ONE_HOST_FORMATS:
        return fn(report, exit_code=exit_code, source_prefix=source_prefix)
    return fn(report, exit_code=exit_code)


def plugin_reporters(pm: Any) -> dict[str, Any]:
    """Formats added by plugins through ``hostaudit_reporters``; a broken plugin adds none."""
    found: dict[str, Any] = {}
    taken = {*BUILTIN_FORMATS, *SUFFIXES}
    for impl in pm.hook.hostaudit_reporters.get_hookimpls():
        try:
            offered = dict(impl.function() or {})
        except Exception:  # the run goes on; its checks still report the plugin
            continue
        for key, reporter in offered.items():
            # built-in names and suffixes are not replaceable; a non-callable would crash later
            name = key.lower() if isinstance(key, str) else ""
            if name.strip(".") and name not in taken and name.lstrip(".") not in taken and callable(reporter):
                found[name] = reporter
    return found
