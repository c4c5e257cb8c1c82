"""The engine: collect checks from plugins, run each in isolation, build a Report, compute exit codes."""

from __future__ import annotations

import enum
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from audit import __version__
from audit.errors import FactError, FactUnavailable, HostauditError, UsageError
from audit.host.core import Host
from audit.model import (
    CHECK_ID_RE,
    Check,
    Evidence,
    Gate,
    Outcome,
    Report,
    Result,
    Severity,
    Status,
    Target,
    Verdict,
    errored,
    id_matches,
    not_applicable,
    skipped,
)
from audit.plugins import Plugins
from audit.policy import DEFAULT_POLICY, Policy
from audit.record import Record

if TYPE_CHECKING:
    import datetime as dt

_ID_RE = re.compile(CHECK_ID_RE)


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    INCOMPLETE = 3  # no failure, but a check errored or nothing could run


class DuplicateCheckId(HostauditError):
    pass


class Declared(Record):
    check: Check
    plugin: str


def _plugin_check(plugin: str, message: str) -> Check:
    """A stand-in check so a broken plugin shows up as an error result that names it."""
    safe = re.sub(r"[^a-z0-9_-]+", "-", plugin.lower()).strip("-") or "unnamed"
    return Check(
        id=f"plugin.{safe}",
        title=f"Plugin {plugin} loads and declares its checks",
        severity=Severity.HIGH,
        category="plugin",
        rationale="A plugin that cannot load would otherwise silently drop its checks.",
        evaluate=lambda host, policy: errored(message),
    )


def collect_checks(plugins: Plugins) -> tuple[list[Declared], list[Declared]]:
    """(checks, broken): each plugin's hook is called on its own so one crash loses nothing else.

    Raises DuplicateCheckId naming both plugins: ids are a stable contract, never ambiguous.
    """
    declared: list[Declared] = []
    broken: list[Declared] = []
    for problem in plugins.problems:
        broken.append(Declared(_plugin_check(problem.plugin, problem.message), problem.plugin))
    seen: dict[str, str] = {}
    for impl in plugins.pm.hook.hostaudit_checks.get_hookimpls():
        name = impl.plugin_name
        try:
            checks = list(impl.function() or ())
            bad = [c for c in checks if not isinstance(c, Check)]
            if bad:
                raise TypeError(f"hostaudit_checks returned {type(bad[0]).__name__}, not Check")
            for c in checks:
                if not _ID_RE.fullmatch(c.id):
                    raise ValueError(f"check id {c.id!r} does not match {CHECK_ID_RE}")
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too: a plugin cannot end the run
            if isinstance(exc, SystemExit):
                exc = RuntimeError(f"hostaudit_checks called sys.exit({exc.code!r})")
            broken.append(Declared(_plugin_check(name, f"{type(exc).__name__}: {exc}"), name))
            continue
        for c in checks:
            if c.id in seen:
                raise DuplicateCheckId(
                    f"check id {c.id!r} is declared by two plugins: {seen[c.id]!r} and {name!r}"
                )
            seen[c.id] = name
            declared.append(Declared(c, name))
    declared.sort(key=lambda d: d.check.id)
    return declared, broken


def select_checks(
    declared: Iterable[Declared], select: Sequence[str] = (), ignore: Sequence[str] = ()
) -> list[Declared]:
    out = []
    for d in declared:
        if select and not id_matches(d.check.id, select):
            continue
        if ignore and id_matches(d.check.id, ignore):
            continue
        out.append(d)
    return out


def run_check(check: Check, host: Host, policy: Policy) -> Outcome:
    """Run one check; nothing it raises escapes, and a crash is never a pass."""
    if check.arches:  # first: an x86 check on an arm64 image is not applicable, whatever else
        from audit.host.arch import arch_name

        arch = arch_name(host)
        if arch is not None and arch not in check.arches:
            return not_applicable(f"not applicable on {arch}: {check.id} applies to {', '.join(check.arches)}")
    if check.runtime_only and not host.has_runtime:
        return skipped(
            "not applicable to an unbooted image: this check needs a running kernel "
            f"({', '.join(check.reads) or 'runtime state'})"
        )
    try:
        outcome = check.evaluate(host, policy)
    except FactUnavailable as exc:
        ev = [Evidence(source=exc.source, observed="absent")] if exc.source else []
        return skipped(f"cannot know here: {exc}", ev)
    except FactError as exc:
        return errored(str(exc), [Evidence(source=exc.source, observed=exc.problem)])
    except SystemExit as exc:  # a plugin's sys.exit() must not end the run without its reports
        return errored(f"check called sys.exit({exc.code!r})")
    except KeyboardInterrupt:
        raise  # the run stops, after writing the reports of what finished (run_audit, the CLI)
    except BaseException as exc:
        return errored(f"check crashed: {type(exc).__name__}: {exc}")
    if not isinstance(outcome, Outcome):
        return errored(f"check returned {type(outcome).__name__}, not Outcome")
    return outcome


def describe_target(host: Host) -> Target:
    from audit.host import facts

    def attempt(fn: Callable[[], str | None]) -> str | None:
        try:
            return fn()
        except HostauditError:
            return None

    rel = attempt(lambda: host.kernel_release.release)
    rel_src = attempt(lambda: f"{host.kernel_release.how}: {host.kernel_release.source}")
    osr = attempt(lambda: host.fact(facts.os_name))
    os_id = attempt(lambda: host.os_release.id)
    like = attempt(lambda: " ".join(host.os_release.id_like)) or ""
    from audit.host.arch import architecture

    arch = attempt(lambda: host.fact(architecture).name)
    arch_src = attempt(lambda: f"{host.fact(architecture).how}: {host.fact(architecture).source}")
    return Target(
        mode=host.mode,
        root=host.root,
        hostname=attempt(lambda: host.fact(facts.hostname)),
        kernel_release=rel,
        kernel_release_source=rel_src,
        os=osr,
        os_id=os_id,
        os_id_like=tuple(like.split()),
        arch=arch,
        arch_source=arch_src,
    )


def run_audit(
    plugins: Plugins,
    host: Host,
    policy: Policy = DEFAULT_POLICY,
    *,
    select: Sequence[str] = (),
    ignore: Sequence[str] = (),
    fail_on: Severity = Severity.LOW,
    strict: bool = False,
    require: Sequence[str] = (),
    clock: Callable[[], dt.datetime] | None = None,
    timer: Callable[[], float] = time.perf_counter,
    check_timeout: float | None = None,
    on_timeout: Callable[[Report], None] | None = None,
    watchdog: Watchdog | None = None,
) -> Report:
    """Run the selected checks on ``host`` and return the Report, with the gate it is judged by.

    The gate's required globs are the policy's ``[gate] required`` plus ``require`` (``--require``).
    A required check that ``select``/``ignore`` leave out still gets a result (skip, so it counts);
    a required glob that matches no declared check is a UsageError: a gate cannot be passed by a typo.

    ``check_timeout`` (seconds) with ``on_timeout``: a check still running past it cannot be stopped
    (Python threads cannot be killed, and a plugin may swallow any signal), so a watchdog hands
    ``on_timeout`` the report of what finished, with that check and the ones not run as errors;
    ``on_timeout`` writes it and ends the process. A KeyboardInterrupt raises ``AuditInterrupted``
    carrying the same kind of report. ``watchdog``: one kept for many runs (a fleet worker's), used
    when its limit is ``check_timeout``.
    """
    if clock is None:  # the system clock, without importing datetime (a few ms of start-up)
        now = time.gmtime()
        started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", now)
        day: tuple[int, int, int] = (now.tm_year, now.tm_mon, now.tm_mday)
    else:
        from datetime import UTC

        started = clock().astimezone(UTC)
        started_at = started.strftime("%Y-%m-%dT%H:%M:%SZ")
        day = (started.year, started.month, started.day)
    t0 = timer()
    declared, broken = collect_checks(plugins)
    gate = Gate(fail_on=fail_on, strict=strict, required=tuple(dict.fromkeys((*policy.gate_required, *require))))
    _check_required(gate, [d.check.id for d in (*declared, *broken)], plugins)
    chosen = select_checks(declared, select, ignore)
    chosen_ids = {d.check.id for d in chosen}
    left_out = [d for d in declared if d.check.id not in chosen_ids and gate.requires(d.check.id)]
    today = None
    if policy.waivers:  # waivers expire on a date: the day of the run, in UTC
        import datetime

        today = datetime.date(*day)
    results: list[Result] = []

    def finish(done: list[Result], unfinished: Sequence[tuple[Declared, Outcome]] = ()) -> Report:
        out = [*done, *(Result(check=d.check, outcome=o, plugin=d.plugin) for d, o in unfinished)]
        for d in left_out:  # a required check is never dropped silently: it shows, and counts, as unknown
            out.append(Result(check=d.check, outcome=skipped("left out by --select/--ignore"), plugin=d.plugin))
        for d in broken:  # broken plugins always show, whatever --select says
            out.append(Result(check=d.check, outcome=run_check(d.check, host, policy), plugin=d.plugin))
        out.sort(key=lambda r: r.id)
        return Report(
            target=describe_target(host),
            results=tuple(out),
            started_at=started_at,
            duration_ms=(timer() - t0) * 1000.0,
            tool_version=__version__,
            profile=policy.profile,
            problems=(*(f"{p.plugin}: {p.message}" for p in plugins.problems),
                      *policy_problems(policy, [d.check.id for d in (*declared, *broken)])),
            gate=gate,
        )

    def unfinished(stuck: Declared | None, why: str) -> list[tuple[Declared, Outcome]]:
        done = {r.id for r in results}
        rest = [d for d in chosen if d.check.id not in done]
        return [(d, errored(why if d is stuck else f"not run: {why}")) for d in rest]

    if check_timeout is not None and on_timeout is not None:
        limit = check_timeout

        def expire(stuck: Declared) -> None:
            why = f"{stuck.check.id} did not finish within {limit:g} s (--check-timeout); the run was ended"
            on_timeout(finish(list(results), unfinished(stuck, why)))

        own = watchdog is None or watchdog.limit != limit
        if own:
            watchdog = Watchdog(limit)
    else:
        watchdog = None
    current: Declared | None = None
    try:
        for current in chosen:
            if watchdog is not None:
                watchdog.running(current, expire)
            results.append(_result(current, host, policy, today, timer))
    except KeyboardInterrupt:
        raise AuditInterrupted(finish(list(results), unfinished(current, "the run was interrupted"))) from None
    finally:
        if watchdog is not None:
            if own:
                watchdog.stop()
            else:
                watchdog.idle()
    return finish(results)


def _result(d: Declared, host: Host, policy: Policy, today: dt.date | None, timer: Callable[[], float]) -> Result:
    """One check's Result: run (or disabled by the policy), its severity override and waiver applied."""
    c0 = timer()
    if id_matches(d.check.id, policy.disabled):
        outcome = skipped(f"disabled by policy ({policy.source})")
    else:
        outcome = run_check(d.check, host, policy)
    elapsed = (timer() - c0) * 1000.0
    severity = policy.severity_overrides.get(d.check.id)
    waiver_note = None
    waiver = policy.waivers.get(d.check.id)
    if waiver is not None and outcome.status in (Status.FAIL, Status.WARN):
        if waiver.active(today):
            waiver_note = waiver.reason + (f" (expires {waiver.expires})" if waiver.expires else "")
            outcome = Outcome(
                status=Status.WAIVED,
                message=f"{outcome.message} [waived: {waiver.reason}]",
                evidence=outcome.evidence,
                remediation=outcome.remediation,
            )
        else:
            waiver_note = f"waiver expired on {waiver.expires}: {waiver.reason}"
            outcome = Outcome(
                status=outcome.status,
                message=f"{outcome.message} [waiver expired on {waiver.expires}]",
                evidence=outcome.evidence,
                remediation=outcome.remediation,
            )
    return Result(check=d.check, outcome=outcome, plugin=d.plugin, duration_ms=elapsed, severity=severity,
                  waiver=waiver_note)


class AuditInterrupted(HostauditError):
    """Ctrl-C during the checks: ``report`` holds what finished, the rest as errors."""

    def __init__(self, report: Report) -> None:
        super().__init__("interrupted")
        self.report = report


class Watchdog:
    """One thread for a whole run, or for every run of a process (a fleet worker audits host after
    host with one: starting a thread per host cost some 0.2 ms of each): when the check that is
    running passes its deadline, that run's ``expire`` gets it (and is expected to end the process;
    the check itself cannot be stopped).

    Starting a check only stores ``(check, deadline, expire)`` (one attribute, so the thread never
    reads a check with another's deadline); the thread is not woken for it. It sleeps until the
    deadline it last saw (or ``limit`` while idle), then looks again: a check is caught at its own
    deadline, and a run of many quick checks costs no thread switches (waking the thread at each
    check cost some milliseconds a run, issue #11)."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self._cond = threading.Condition()
        self._slot: tuple[Declared | None, float, Callable[[Declared], None] | None] = (None, 0.0, None)
        self._stopped = False
        threading.Thread(target=self._watch, name="hostaudit-watchdog", daemon=True).start()

    def running(self, d: Declared, expire: Callable[[Declared], None]) -> None:
        self._slot = (d, time.monotonic() + self.limit, expire)

    def idle(self) -> None:
        """Between runs: nothing is watched until the next ``running``."""
        self._slot = (None, 0.0, None)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _watch(self) -> None:
        with self._cond:
            while not self._stopped:
                current, deadline, expire = self._slot
                left = deadline - time.monotonic()
                if current is None or expire is None or left > 0:
                    self._cond.wait(self.limit if current is None else left)
                    continue
                break
            else:
                return
        expire(current)


def policy_problems(policy: Policy, ids: Sequence[str]) -> list[str]:
    """Policy entries that name no declared check (a typo, or a plugin not installed): said, with the
    nearest id, never ignored silently."""
    import difflib

    out = []
    entries = [("waiver for", k) for k in policy.waivers] + [("severity override for", k)
                                                              for k in policy.severity_overrides]
    entries += [("disabled pattern", k) for k in policy.disabled]
    for what, key in entries:
        if not any(id_matches(i, (key,)) for i in ids):
            close = difflib.get_close_matches(key, sorted(ids), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            out.append(f"policy {policy.source}: {what} {key!r} matches no check{hint}")
    return out


def _check_required(gate: Gate, ids: Sequence[str], plugins: Plugins) -> None:
    unmatched = [g for g in gate.required if not any(id_matches(i, (g,)) for i in ids)]
    if not unmatched:
        return
    hint = "a typo, or the plugin that declares it is not installed"
    if plugins.problems:
        hint += f" or failed to load ({'; '.join(f'{p.plugin}: {p.message}' for p in plugins.problems)})"
    names = ", ".join(repr(g) for g in unmatched)
    raise UsageError(f"required check {names} matches no check id ({hint}); see 'hostaudit checks'")


def exit_code(report: Report, judged: Sequence[tuple[Result, Any]] | None = None) -> ExitCode:
    """Exit code of a finished audit, judged by the report's own gate (``Report.gate``), exactly as
    every reporter judges it: 1 when a result counts (``Verdict.counts``: a failure at or above
    ``--fail-on``, a warning too with ``--strict``, a required check's failure at any severity, its
    skip or its error);
    3 when nothing counts but a check errored or no check ran at all; else 0. ``judged``: what
    ``report.judged()`` gave, where the caller has it already."""
    verdicts = [j.verdict for _, j in (report.judged() if judged is None else judged)]
    if any(v.counts for v in verdicts):
        return ExitCode.FAILED
    if Verdict.ERROR in verdicts:
        return ExitCode.INCOMPLETE
    ran = {Status.PASS, Status.WARN, Status.FAIL, Status.WAIVED}
    if not any(r.status in ran for r in report.results):
        return ExitCode.INCOMPLETE
    return ExitCode.OK
