"""Auditing a fleet: many snapshots in one run, in parallel across cores, results streamed in order.

``hostaudit run --snapshot DIR`` (or ``--snapshot FILE`` given more than once) hands every snapshot
to a pool of worker processes. A worker loads the plugins once, keeps one ``ParseCache`` (hosts of
one image share their kernel config, os-release, cpuinfo: parsed once per process), audits one host
at a time exactly as ``run --snapshot FILE`` would, and hands the report to a ``handler`` (the
command line's: it renders what the chosen outputs need and writes the per-host files) before the
report is dropped. What comes back to the parent is a small row per host plus the handler's text,
yielded in input order; nothing keeps a whole fleet's reports.

A snapshot that cannot be loaded is one ``error`` row for that host, never a failed run. So is a
worker process that dies while auditing (a plugin calling ``os._exit``, a crash in C): that host is
an error row and a new worker takes over. ``--check-timeout`` works as it does for one host (the
engine's watchdog, in the worker, reports the stuck check and the ones after it as errors and then
ends the worker); a worker still silent past ``check_timeout`` x (checks + 1) (a check stuck in C code
that holds the interpreter) is stopped from here and its host is an error row.
"""

from __future__ import annotations

import contextlib
import enum
import gc
import multiprocessing
import multiprocessing.connection
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from audit.engine import (
    ExitCode,
    Watchdog,
    _check_required,
    collect_checks,
    exit_code,
    run_audit,
)
from audit.errors import HostauditError, UsageError
from audit.inputfile import files_in
from audit.model import Gate, Report, Severity
from audit.policy import DEFAULT_POLICY, Policy
from audit.record import Record

#: Results a worker may finish ahead of the oldest host still running: bounds what waits, in order.
WINDOW = 256
#: File name suffixes that say "snapshot", dropped from a host's file stem.
_SUFFIXES = (".gz", ".json", ".snap", ".txt")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


#: One letter per status, so a host's row holds its results in a short string.
STATUS_LETTERS: dict[str, str] = {"pass": "p", "warn": "w", "fail": "f", "error": "e", "skip": "s", "waived": "v"}
LETTER_STATUS: dict[str, str] = {v: k for k, v in STATUS_LETTERS.items()}


class Outcome(str, enum.Enum):
    """What one host's audit came to, for the fleet (its exit code, in words)."""

    FAILED = "failed"  # exit 1: a result counts
    ERRORED = "errored"  # exit 3: a check errored, nothing ran, or the snapshot could not be audited
    PASSED = "passed"  # exit 0

    def __str__(self) -> str:
        return self.value


class Task(Record):
    """One snapshot to audit: its place in the input, its path, a file stem unique in this run."""

    index: int
    path: str
    stem: str


class HostOutcome(Record):
    """One host's row: small, kept for the whole run (the fleet summary), and the handler's output,
    which the parent writes out and drops."""

    index: int
    source: str  # the snapshot's path
    stem: str  # unique file stem: per-host pages and scripts are named after it
    name: str  # the host name the snapshot gives, else the stem
    exit_code: int
    summary: Mapping[str, int]  # results per status; empty for a snapshot that could not be audited
    counting: int  # results that count towards exit 1
    checks: tuple[str, ...]  # the check ids, in id order (one tuple shared by the hosts that have the same)
    statuses: str  # a letter per check (STATUS_LETTERS), upper case when it counts towards exit 1
    error: str | None  # why this host could not be audited at all, else None
    hostname: str | None = None
    os: str | None = None
    kernel_release: str | None = None
    duration_ms: float = 0.0
    payload: Mapping[str, Any] = {}  # the handler's output, never changed
    exiting: bool = False  # the worker ends after this one (its watchdog fired)

    def results(self) -> Iterator[tuple[str, str, bool]]:
        """(check id, status, counts towards exit 1) of every result, in id order."""
        for check_id, letter in zip(self.checks, self.statuses, strict=True):
            yield check_id, LETTER_STATUS[letter.lower()], letter.isupper()

    @property
    def outcome(self) -> Outcome:
        if self.exit_code == ExitCode.FAILED:
            return Outcome.FAILED
        if self.exit_code == ExitCode.OK:
            return Outcome.PASSED
        return Outcome.ERRORED

    def row(self) -> HostOutcome:
        """This outcome without the handler's output: what the summary keeps."""
        return self._replace(payload={}, exiting=False)


Handler = Callable[[Report, int, Task], Mapping[str, Any]]


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetJob:
    """How every host is audited: the same policy, selection and gate for all."""

    policy: Policy = DEFAULT_POLICY
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    fail_on: Severity = Severity.LOW
    strict: bool = False
    require: tuple[str, ...] = ()
    check_timeout: float | None = None
    entry_points: bool = True
    handler: Handler | None = field(default=None, compare=False)


# ------------------------------------------------------------------------------------------------
# The input
# ------------------------------------------------------------------------------------------------
def find_snapshots(specs: Sequence[str]) -> list[str]:
    """The snapshot files ``--snapshot`` names, in order: a directory gives its regular files
    (names starting with "." left out; sorted; not recursive), a file itself; each file once.

    A directory that cannot be read or holds no file is unusable input (UsageError, exit 2); a
    file that cannot be read or is not a snapshot is that host's error row, found by the worker.
    """
    out: list[str] = []
    seen: set[str] = set()
    for spec in specs:
        if os.path.isdir(spec):
            try:
                files = files_in(spec)
            except OSError as exc:
                raise UsageError(f"--snapshot {spec}: cannot read the directory: {exc.strerror or exc}") from None
            if not files:
                raise UsageError(f"--snapshot {spec}: no snapshot in this directory (no regular file in it)")
        else:
            files = [spec]
        for f in files:
            real = os.path.realpath(f)
            if real not in seen:
                seen.add(real)
                out.append(f)
    return out


def unique_stems(paths: Sequence[str]) -> list[str]:
    """A file stem per path, unique in the run (case-insensitively): the file's name without a
    snapshot suffix, every character but ``[A-Za-z0-9._-]`` replaced by "_", then ``-2``, ``-3``..."""
    taken: set[str] = set()
    out = []
    for path in paths:
        name = os.path.basename(path.rstrip("/"))
        for suffix in _SUFFIXES:
            if name.lower().endswith(suffix) and len(name) > len(suffix):
                name = name[: -len(suffix)]
        stem = _UNSAFE.sub("_", name).strip(".")[:100] or "host"
        candidate, n = stem, 1
        while candidate.lower() in taken:
            n += 1
            candidate = f"{stem}-{n}"
        taken.add(candidate.lower())
        out.append(candidate)
    return out


def tasks_for(paths: Sequence[str]) -> list[Task]:
    return [Task(i, p, s) for i, (p, s) in enumerate(zip(paths, unique_stems(paths), strict=True))]


def check_job(job: FleetJob) -> int:
    """What the run would refuse on every host, refused once before any work (UsageError, or a
    HostauditError such as a duplicate check id): the plugins load, the required globs match.
    Returns how many checks a host gets."""
    from audit.plugins import make_plugins

    plugins = make_plugins(entry_points=job.entry_points)
    declared, broken = collect_checks(plugins)
    gate = Gate(fail_on=job.fail_on, strict=job.strict,
                required=tuple(dict.fromkeys((*job.policy.gate_required, *job.require))))
    _check_required(gate, [d.check.id for d in (*declared, *broken)], plugins)
    return len(declared) + len(broken)


def fleet_exit_code(rows: Sequence[HostOutcome]) -> int:
    """1 when a host failed its gate; else 3 when a host errored (a snapshot that could not be
    audited counts here); else 0. An empty fleet never gets here (unusable input, exit 2)."""
    codes = {r.exit_code for r in rows}
    if ExitCode.FAILED in codes:
        return int(ExitCode.FAILED)
    if codes - {ExitCode.OK}:
        return int(ExitCode.INCOMPLETE)
    return int(ExitCode.OK)


# ------------------------------------------------------------------------------------------------
# One host, in a worker
# ------------------------------------------------------------------------------------------------
def _broken(task: Task, why: str, started: float) -> HostOutcome:
    return HostOutcome(index=task.index, source=task.path, stem=task.stem, name=task.stem,
                       exit_code=int(ExitCode.INCOMPLETE), summary={}, counting=0, checks=(), statuses="",
                       error=why,
                       duration_ms=(time.perf_counter() - started) * 1000.0)


def _outcome(task: Task, report: Report, job: FleetJob, started: float, *, exiting: bool = False) -> HostOutcome:
    judged = report.judged()
    code = int(exit_code(report, judged))
    payload: Mapping[str, Any] = {}
    if job.handler is not None:
        try:
            payload = job.handler(report, code, task)
        except Exception as exc:  # a bug in a reporter costs this host's outputs, not the run
            payload = {"write_errors": [f"the reports of {task.path} could not be made: {type(exc).__name__}: {exc}"]}
    t = report.target
    return HostOutcome(
        index=task.index, source=task.path, stem=task.stem, name=t.hostname or task.stem, exit_code=code,
        summary=report.summary(), counting=sum(1 for _, j in judged if j.verdict.counts),
        checks=tuple(r.id for r, _ in judged),
        statuses="".join(STATUS_LETTERS[r.status.value].upper() if j.verdict.counts else STATUS_LETTERS[r.status.value]
                         for r, j in judged),
        error=None, hostname=t.hostname, os=t.os, kernel_release=t.kernel_release,
        duration_ms=(time.perf_counter() - started) * 1000.0, payload=payload, exiting=exiting,
    )


class _Auditor:
    """What a worker keeps between hosts: the plugins, the parse cache."""

    def __init__(self, job: FleetJob) -> None:
        from audit.host.core import ParseCache
        from audit.plugins import make_plugins

        self.job = job
        self.plugins = make_plugins(entry_points=job.entry_points)
        self.cache = ParseCache()
        self.watchdog = Watchdog(job.check_timeout) if job.check_timeout else None

    def audit(self, task: Task, on_timeout: Callable[[HostOutcome], None] | None = None) -> HostOutcome:
        from audit.host.snapshot import load_snapshot_host

        job = self.job
        started = time.perf_counter()
        try:
            host = load_snapshot_host(task.path, parse_cache=self.cache)
        except HostauditError as exc:
            return _broken(task, str(exc), started)
        except Exception as exc:  # a bug must not end the worker: this host is an error row
            return _broken(task, f"snapshot {task.path}: internal error: {type(exc).__name__}: {exc}", started)

        timed_out = None
        if on_timeout is not None:
            def timed_out(report: Report) -> None:
                on_timeout(_outcome(task, report, job, started, exiting=True))

        try:
            report = run_audit(self.plugins, host, job.policy, select=job.select, ignore=job.ignore,
                               fail_on=job.fail_on, strict=job.strict, require=job.require,
                               check_timeout=job.check_timeout, on_timeout=timed_out, watchdog=self.watchdog)
        except HostauditError as exc:
            return _broken(task, f"snapshot {task.path}: {exc}", started)
        except Exception as exc:
            return _broken(task, f"snapshot {task.path}: internal error: {type(exc).__name__}: {exc}", started)
        return _outcome(task, report, job, started)


def _worker_main(conn: Any, job: FleetJob) -> None:
    """A worker: audit the tasks the parent sends, one at a time, until told to stop or orphaned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    with contextlib.suppress(OSError):
        os.dup2(2, 1)  # a plugin that prints must not write into the fleet's stdout
    parent = os.getppid()
    auditor = _Auditor(job)
    # What the worker keeps for its life (the plugins it loaded) is never walked by the collector
    # again: only what each host's audit makes is.
    gc.freeze()
    lock = threading.Lock()

    def send_and_end(outcome: HostOutcome) -> None:  # the watchdog's end: the stuck check cannot be stopped
        with lock, contextlib.suppress(OSError):
            conn.send(outcome)
        os._exit(0)

    while True:
        while not conn.poll(1.0):
            if os.getppid() != parent:
                return  # the parent is gone
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        outcome = auditor.audit(task, send_and_end if job.check_timeout else None)
        with lock:
            try:
                conn.send(outcome)
            except (OSError, ValueError):
                return


# ------------------------------------------------------------------------------------------------
# The pool, in the parent
# ------------------------------------------------------------------------------------------------
def _context() -> Any:
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")  # workers start with every module already imported
    return multiprocessing.get_context()


class _Worker:
    def __init__(self, ctx: Any, job: FleetJob) -> None:
        for stream in (sys.stdout, sys.stderr):  # a forked child must not write what the parent buffered
            with contextlib.suppress(Exception):
                stream.flush()
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_worker_main, args=(child, job), daemon=True, name="hostaudit-fleet")
        self.proc.start()
        child.close()
        self.task: Task | None = None
        self.since = 0.0

    def give(self, task: Task) -> None:
        self.task, self.since = task, time.monotonic()
        self.conn.send(task)

    def stop(self, *, now: bool = False) -> None:
        if not now and self.task is None and self.proc.is_alive():
            with contextlib.suppress(OSError, ValueError):
                self.conn.send(None)
            self.proc.join(2.0)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5.0)
        with contextlib.suppress(OSError):
            self.conn.close()


def _died(task: Task, proc: Any) -> HostOutcome:
    code = proc.exitcode
    if code is not None and code < 0:
        try:
            how = f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
    else:
        how = f"exited with status {code}"
    return _broken(task, f"snapshot {task.path}: the process auditing it {how} (a check or plugin ended it)",
                   time.perf_counter())


def default_workers() -> int:
    """One worker per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def run_fleet(tasks: Sequence[Task], job: FleetJob, *, workers: int | None = None,
              host_limit: float | None = None, window: int = WINDOW) -> Iterator[HostOutcome]:
    """Audit every task; yield each host's outcome in input order, as soon as it and every host
    before it are done. ``host_limit`` (seconds): a worker silent that long on one host is stopped
    and the host is an error row. Closing the iterator (or an exception in the caller, Ctrl-C) stops
    the workers."""
    if not tasks:
        return
    ctx = _context()
    count = max(1, min(workers or default_workers(), len(tasks)))
    pool = [_Worker(ctx, job) for _ in range(count)]
    done: dict[int, HostOutcome] = {}
    ids: dict[tuple[str, ...], tuple[str, ...]] = {}
    handed = emitted = 0
    try:
        while emitted < len(tasks):
            for i, w in enumerate(pool):
                if w.task is None and handed < len(tasks) and handed < emitted + window:
                    try:
                        w.give(tasks[handed])
                    except (OSError, ValueError):  # it died while idle: a new one takes the task
                        w.task = None
                        w.stop(now=True)
                        pool[i] = w = _Worker(ctx, job)
                        w.give(tasks[handed])
                    handed += 1
            busy = [w for w in pool if w.task is not None]
            timeout = None
            if host_limit is not None and busy:
                timeout = max(0.0, min(w.since for w in busy) + host_limit - time.monotonic())
            ready = set(multiprocessing.connection.wait(
                [*(w.conn for w in busy), *(w.proc.sentinel for w in busy)], timeout))
            for i, w in enumerate(pool):
                task = w.task
                if task is None:
                    continue
                outcome: HostOutcome | None = None
                replace = False
                if w.conn in ready or w.proc.sentinel in ready:
                    try:
                        if not w.conn.poll():
                            raise EOFError
                        outcome = w.conn.recv()
                        replace = outcome.exiting
                    except Exception:  # EOF, a broken pipe, half a message: the process is gone
                        w.proc.join(5.0)
                        outcome, replace = _died(task, w.proc), True
                elif host_limit is not None and time.monotonic() - w.since > host_limit:
                    outcome = _broken(task, f"snapshot {task.path}: the audit did not finish within "
                                            f"{host_limit:g} s; its process was stopped", time.perf_counter())
                    replace = True
                if outcome is None:
                    continue
                done[task.index] = outcome._replace(checks=ids.setdefault(outcome.checks, outcome.checks))
                w.task = None
                if replace:
                    w.stop(now=True)
                    pool[i] = _Worker(ctx, job)
            while emitted in done:
                yield done.pop(emitted)
                emitted += 1
    finally:
        for w in pool:
            w.stop(now=w.task is not None)
