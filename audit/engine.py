"""The engine: collect checks from plugins, run each in isolation, build a Report, compute exit codes."""

from __future__ import annotations

import datetime as dt
import enum
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from audit import __version__
from audit.errors import FactError, FactUnavailable, HostauditError
from audit.host.core import Host
from audit.model import (
    CHECK_ID_RE,
    Check,
    Evidence,
    Outcome,
    Report,
    Result,
    Severity,
    Status,
    Target,
    errored,
    id_matches,
    skipped,
)
from audit.plugins import Plugins
from audit.policy import DEFAULT_POLICY, Policy

_ID_RE = re.compile(CHECK_ID_RE)


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    INCOMPLETE = 3  # no failure, but a check errored or nothing could run


class DuplicateCheckId(HostauditError):
    pass


@dataclass(frozen=True, slots=True)
class Declared:
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
                if not _ID_RE.match(c.id):
                    raise ValueError(f"check id {c.id!r} does not match {CHECK_ID_RE}")
        except Exception as exc:
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
    except Exception as exc:
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
    return Target(
        mode=host.mode,
        root=host.root,
        hostname=attempt(lambda: host.fact(facts.hostname)),
        kernel_release=rel,
        kernel_release_source=rel_src,
        os=osr,
        os_id=os_id,
        os_id_like=tuple(like.split()),
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def run_audit(
    plugins: Plugins,
    host: Host,
    policy: Policy = DEFAULT_POLICY,
    *,
    select: Sequence[str] = (),
    ignore: Sequence[str] = (),
    clock: Callable[[], dt.datetime] = _now,
    timer: Callable[[], float] = time.perf_counter,
) -> Report:
    started = clock()
    t0 = timer()
    declared, broken = collect_checks(plugins)
    chosen = select_checks(declared, select, ignore)
    today = started.date()
    results: list[Result] = []
    for d in chosen:
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
        results.append(
            Result(check=d.check, outcome=outcome, plugin=d.plugin, duration_ms=elapsed, severity=severity,
                   waiver=waiver_note)
        )
    for d in broken:  # broken plugins always show, whatever --select says
        results.append(Result(check=d.check, outcome=run_check(d.check, host, policy), plugin=d.plugin))
    results.sort(key=lambda r: r.id)
    return Report(
        target=describe_target(host),
        results=tuple(results),
        started_at=started.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        duration_ms=(timer() - t0) * 1000.0,
        tool_version=__version__,
        profile=policy.profile,
        problems=tuple(f"{p.plugin}: {p.message}" for p in plugins.problems),
    )


def exit_code(report: Report, fail_on: Severity = Severity.LOW, *, strict: bool = False) -> ExitCode:
    """1 when a failure (or, with strict, a warning) is at or above ``fail_on``; 3 when nothing
    failed but a check errored or no check ran at all; else 0."""
    bad = {Status.FAIL, Status.WARN} if strict else {Status.FAIL}
    if any(r.status in bad and r.effective_severity >= fail_on for r in report.results):
        return ExitCode.FAILED
    if any(r.status is Status.ERROR for r in report.results):
        return ExitCode.INCOMPLETE
    ran = {Status.PASS, Status.WARN, Status.FAIL, Status.WAIVED}
    if not any(r.status in ran for r in report.results):
        return ExitCode.INCOMPLETE
    return ExitCode.OK
