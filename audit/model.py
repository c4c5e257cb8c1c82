"""The data model every part of hostaudit shares: statuses, checks, outcomes, results, reports."""

from __future__ import annotations

import enum
import fnmatch
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


class Status(str, enum.Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"
    WAIVED = "waived"

    def __str__(self) -> str:
        return self.value


class Severity(enum.IntEnum):
    """Ordered, so ``--fail-on`` is a comparison."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {text!r} (one of: {names})") from None


class TargetMode(str, enum.Enum):
    LIVE = "live"
    IMAGE = "image"
    SNAPSHOT = "snapshot"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    source: str  # path as seen inside the root: "/proc/cmdline"
    observed: str  # what was read
    expected: str | None = None  # what the policy wanted


@dataclass(frozen=True, slots=True, kw_only=True)
class Remediation:
    commands: tuple[str, ...] = ()  # runtime first, then what makes it persistent
    reboot_required: bool = False
    notes: str = ""  # one-line explanation


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    status: Status
    message: str
    evidence: tuple[Evidence, ...] = ()
    remediation: Remediation | None = None


#: A check's body: ``evaluate(host: audit.host.Host, policy: audit.policy.Policy) -> Outcome``. The
#: model is the bottom floor and names no type above it, so the arguments are left open here.
Evaluate = Callable[[Any, Any], Outcome]


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """A declared check. Declaring reads nothing; the engine calls ``evaluate``."""

    id: str
    title: str
    severity: Severity
    category: str
    rationale: str
    evaluate: Evaluate = field(repr=False, compare=False)
    reads: tuple[str, ...] = ()  # paths (inside the root) the check's facts come from
    runtime_only: bool = False  # needs a running kernel: not applicable to an unbooted image
    example_fix: tuple[str, ...] = ()  # a remediation example for `hostaudit explain`
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    check: Check
    outcome: Outcome
    plugin: str
    duration_ms: float = 0.0
    severity: Severity | None = None  # effective severity (policy override), else the check's
    waiver: str | None = None  # reason when waived; or a note that a waiver expired

    @property
    def id(self) -> str:
        return self.check.id

    @property
    def status(self) -> Status:
        return self.outcome.status

    @property
    def effective_severity(self) -> Severity:
        return self.severity if self.severity is not None else self.check.severity


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    mode: TargetMode
    root: str
    hostname: str | None = None
    kernel_release: str | None = None
    kernel_release_source: str | None = None
    os: str | None = None
    os_id: str | None = None
    os_id_like: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    target: Target
    results: tuple[Result, ...]
    started_at: str  # UTC ISO 8601
    duration_ms: float
    tool_version: str
    profile: str = "kvm-host"
    problems: tuple[str, ...] = ()  # start-up problems that are not results (shown, never lost)

    def summary(self) -> dict[str, int]:
        counts = {s.value: 0 for s in Status}
        for r in self.results:
            counts[r.status.value] += 1
        return counts

    def by_status(self, *statuses: Status) -> list[Result]:
        return [r for r in self.results if r.status in statuses]


# -- helpers that keep check bodies short -------------------------------------------------------


def _ev(evidence: Evidence | Iterable[Evidence] | None) -> tuple[Evidence, ...]:
    if evidence is None:
        return ()
    if isinstance(evidence, Evidence):
        return (evidence,)
    return tuple(evidence)


def _fix(fix: Sequence[str] | None, reboot: bool, notes: str) -> Remediation | None:
    if fix is None and not notes:
        return None
    return Remediation(commands=tuple(fix or ()), reboot_required=reboot, notes=notes)


def passed(message: str, evidence: Evidence | Iterable[Evidence] | None = None) -> Outcome:
    return Outcome(status=Status.PASS, message=message, evidence=_ev(evidence))


def failed(
    message: str,
    evidence: Evidence | Iterable[Evidence] | None = None,
    *,
    fix: Sequence[str] | None = None,
    reboot: bool = False,
    notes: str = "",
) -> Outcome:
    return Outcome(
        status=Status.FAIL, message=message, evidence=_ev(evidence), remediation=_fix(fix, reboot, notes)
    )


def warned(
    message: str,
    evidence: Evidence | Iterable[Evidence] | None = None,
    *,
    fix: Sequence[str] | None = None,
    reboot: bool = False,
    notes: str = "",
) -> Outcome:
    return Outcome(
        status=Status.WARN, message=message, evidence=_ev(evidence), remediation=_fix(fix, reboot, notes)
    )


def skipped(message: str, evidence: Evidence | Iterable[Evidence] | None = None) -> Outcome:
    return Outcome(status=Status.SKIP, message=message, evidence=_ev(evidence))


def errored(message: str, evidence: Evidence | Iterable[Evidence] | None = None) -> Outcome:
    return Outcome(status=Status.ERROR, message=message, evidence=_ev(evidence))


CHECK_ID_RE = r"^[a-z][a-z0-9]*(\.[a-z0-9][a-z0-9_-]*)+$"


def check(
    check_id: str,
    *,
    title: str,
    severity: Severity,
    reads: Sequence[str] = (),
    runtime_only: bool = False,
    example_fix: Sequence[str] = (),
    category: str | None = None,
    tags: Sequence[str] = (),
) -> Callable[[Evaluate], Check]:
    """Decorate ``f(host, policy) -> Outcome``; its docstring is the rationale."""

    def wrap(fn: Evaluate) -> Check:
        doc = (fn.__doc__ or "").strip()
        return Check(
            id=check_id,
            title=title,
            severity=severity,
            category=category or check_id.split(".", 1)[0],
            rationale=" ".join(doc.split()),
            evaluate=fn,
            reads=tuple(reads),
            runtime_only=runtime_only,
            example_fix=tuple(example_fix),
            tags=tuple(tags),
        )

    return wrap


def id_matches(check_id: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(check_id, p) for p in patterns)


def to_jsonable(value: Any) -> Any:
    """Enums to their values; used by reporters."""
    if isinstance(value, enum.Enum):
        return value.value if not isinstance(value, Severity) else str(value)
    return value
