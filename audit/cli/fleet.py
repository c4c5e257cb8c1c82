"""``hostaudit run --snapshot DIR`` (or ``--snapshot FILE`` repeated): a fleet of snapshots in one run.

The hosts are audited by ``audit.fleet`` in worker processes, one per core; this module chooses
the outputs, writes them as rows arrive and draws the progress bar (stderr, on a terminal, not with
``-q``). Outputs: stdout gets the fleet table (``--format text``), the fleet JSON document
(``json``), JUnit (``junit``) or the Prometheus textfile (``prometheus``); ``-o`` the same by suffix
(``.txt``, ``.json``, ``.xml``, ``.prom``) and ``.html``: the fleet page, with a page per host in the
folder beside it (``fleet.html`` -> ``fleet-hosts/``); ``--fix-script DIR`` a script per host.

Exit codes: 2 when the fleet input itself is unusable (a directory without a snapshot, one that
cannot be read), as for any usage error, or when an output could not be written; else 1 when a host
failed its gate; else 3 when a host errored (a snapshot that could not be audited counts here); else
0. Ctrl-C writes the outputs of the hosts that finished, then exits 130.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from audit.cli.options import load_policy
from audit.errors import UsageError

#: --format values a fleet run can send to stdout
STDOUT = ("text", "json", "junit", "prometheus")


class Progress:
    """One line on a terminal, redrawn at most ten times a second: done/total, rate, outcomes, ETA."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.stream = stream
        self.started = time.monotonic()
        self.shown = 0.0
        self.done = self.failed = self.errored = 0

    def update(self, outcome: str) -> None:
        self.done += 1
        self.failed += outcome == "failed"
        self.errored += outcome == "errored"
        now = time.monotonic()
        if now - self.shown >= 0.1 or self.done == self.total:
            self.shown = now
            self.draw(now)

    def draw(self, now: float) -> None:
        elapsed = max(now - self.started, 1e-6)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        width = 24
        filled = int(width * self.done / self.total) if self.total else width
        bar = "#" * filled + "." * (width - filled)
        line = (f"hostaudit: [{bar}] {self.done}/{self.total} hosts, {rate:.0f}/s, {self.failed} failed, "
                f"{self.errored} errored, {left:.0f}s left")
        self.stream.write("\r" + line + "\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\r\x1b[K")
        self.stream.flush()


def _outputs(args: argparse.Namespace) -> tuple[list[tuple[str | None, str]], str | None]:
    """(destination, format) of every output (None: stdout), and the --fix-script folder; every
    refusal before anything is audited."""
    from reports.output import ONE_HOST_FORMATS, SUFFIXES, format_for_path

    fleet_suffixes = [s for s, f in SUFFIXES.items() if f != "fix" and f not in ONE_HOST_FORMATS]

    if args.history:
        raise UsageError("--history keeps the reports of one host: it does not take a fleet (audit each host "
                         "with its own --history, or keep the fleet's JSON with -o)")
    if not args.quiet and args.format not in STDOUT:
        if args.format == "html":
            raise UsageError("--format html: the fleet page links to a page per host, written beside it: "
                             "give it a file, -o fleet.html")
        raise UsageError(f"--format {args.format}: a fleet run writes one of: {', '.join(STDOUT)}")
    out: list[tuple[str | None, str]] = [] if args.quiet else [(None, args.format)]
    for path in args.output:
        suffix = os.path.splitext(path)[1].lower()
        if suffix not in SUFFIXES:  # a plugin's reporter takes one host's report: not a fleet's
            raise UsageError(f"{path}: a fleet run writes {', '.join(fleet_suffixes)} "
                             "(plugin report formats take one host)")
        fmt = format_for_path(path)
        if fmt == "fix":
            raise UsageError(f"{path}: a fleet run writes a remediation script per host: --fix-script DIR")
        out.append((path, fmt))
    fix_dir = args.fix_script
    if fix_dir is not None and os.path.exists(fix_dir) and not os.path.isdir(fix_dir):
        raise UsageError(f"--fix-script {fix_dir}: a fleet run writes a script per host into a directory, and "
                         "this is not one")
    return out, fix_dir


def _make_dir(path: str, what: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot make the directory: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {path}: cannot write into this directory")


def _sink(fmt: str, path: str | None, mode: int | None) -> Any:
    from reports import fleet_html, fleet_report

    cls = {"text": fleet_report.TextSink, "json": fleet_report.JsonSink, "junit": fleet_report.JunitSink,
           "prometheus": fleet_report.PrometheusSink, "html": fleet_html.HtmlSink}[fmt]
    return cls(path, mode=mode)


def cmd_fleet(args: argparse.Namespace) -> int:
    from audit import __version__
    from audit.fleet import FleetJob, check_job, find_snapshots, fleet_exit_code, run_fleet, tasks_for
    from reports.fleet_host import HostOutputs, render_host
    from reports.fleet_html import pages_dir
    from reports.fleet_report import FleetRun

    outputs, fix_dir = _outputs(args)
    policy = load_policy(args)
    paths = find_snapshots(args.snapshot)
    html_dirs = [pages_dir(p) for p, fmt in outputs if fmt == "html" and p is not None]
    for d in html_dirs:
        _make_dir(d, "the host pages of -o")
    if fix_dir is not None:
        _make_dir(fix_dir, "--fix-script")
    sinks = [_sink(fmt, path, args.mode) for path, fmt in outputs]
    needs = {n for s in sinks for n in s.needs}
    host_outputs = HostOutputs(json="json" in needs, junit="junit" in needs, prometheus="prometheus" in needs,
                               html_dir=html_dirs[0] if html_dirs else None, fix_dir=fix_dir, mode=args.mode,
                               notes=args.quiet)
    job = FleetJob(policy=policy, select=tuple(args.select), ignore=tuple(args.ignore), fail_on=args.fail_on,
                   strict=args.strict, require=tuple(args.require), check_timeout=args.check_timeout or None,
                   entry_points=not args.no_entry_points,
                   handler=functools.partial(render_host, outputs=host_outputs))
    checks = check_job(job)  # a duplicate check id, a required glob matching nothing: refused once, here
    host_limit = job.check_timeout * (checks + 1) if job.check_timeout else None
    tasks = tasks_for(paths)
    progress = Progress(len(tasks), sys.stderr) if not args.quiet and sys.stderr.isatty() else None
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    rows: list[Any] = []
    failed = interrupted = False
    try:
        try:
            for outcome in run_fleet(tasks, job, host_limit=host_limit):
                payload = outcome.payload
                for sink in sinks:
                    sink.add(outcome, payload)
                for problem in payload.get("write_errors", ()):
                    _say(f"hostaudit: {problem}", progress)
                    failed = True
                if args.quiet:
                    if outcome.error is not None:
                        _say(f"hostaudit: {outcome.error}", progress)
                    for note in payload.get("notes", ()):
                        _say(f"hostaudit: {note}", progress)
                rows.append(outcome.row())
                if progress is not None:
                    progress.update(str(outcome.outcome))
        except KeyboardInterrupt:
            interrupted = True
        finally:
            if progress is not None:
                progress.close()
        code = fleet_exit_code(rows) if rows else 3
        run = FleetRun(started_at=started.strftime("%Y-%m-%dT%H:%M:%SZ"), duration_ms=(time.perf_counter() - t0) * 1000,
                       exit_code=code, tool_version=__version__, profile=policy.profile, fail_on=str(args.fail_on),
                       strict=args.strict, required=tuple(dict.fromkeys((*policy.gate_required, *args.require))),
                       interrupted=interrupted)
        for sink in sinks:
            failed |= not _finish(sink, rows, run)
    finally:
        for sink in sinks:
            sink.close()
    if interrupted:
        return 130
    return 2 if failed else code


def _say(line: str, progress: Progress | None) -> None:
    if progress is not None:
        sys.stderr.write("\r\x1b[K")
    print(line, file=sys.stderr)


def _finish(sink: Any, rows: Sequence[Any], run: Any) -> bool:
    """Write one output; a failure is one line on stderr and costs only this output."""
    try:
        sink.finish(rows, run)
    except BrokenPipeError:
        raise
    except OSError as exc:
        print(f"hostaudit: cannot write {sink.path or 'stdout'}: {exc.strerror or exc}", file=sys.stderr)
        return False
    except Exception as exc:
        print(f"hostaudit: the fleet report {sink.path or 'on stdout'} could not be made: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return False
    return True
