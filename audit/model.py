"""The data model every part of hostaudit shares: statuses, checks, outcomes, results, reports."""

from __future__ import annotations

import enum
import fnmatch
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from audit.record import Record

T = TypeVar("T")


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


class Evidence(Record):
    source: str  # path as seen inside the root: "/proc/cmdline"
    observed: str  # what was read
    expected: str | None = None  # what the policy wanted


class Remediation(Record):
    commands: tuple[str, ...] = ()  # runtime first, then what makes it persistent
    reboot_required: bool = False
    notes: str = ""  # one-line explanation


class Outcome(Record):
    status: Status
    message: str
    evidence: tuple[Evidence, ...] = ()
    remediation: Remediation | None = None
    not_applicable: bool = False  # a skip because the check does not apply here (another architecture)


#: A check's body: ``evaluate(host: audit.host.Host, policy: audit.policy.Policy) -> Outcome``. The
#: model is the bottom floor and names no type above it, so the arguments are left open here.
Evaluate = Callable[[Any, Any], Outcome]


class Check(Record):
    """A declared check. Declaring reads nothing; the engine calls ``evaluate``."""

    id: str
    title: str
    severity: Severity
    category: str
    rationale: str
    evaluate: Evaluate
    reads: tuple[str, ...] = ()  # paths (inside the root) the check's facts come from
    runtime_only: bool = False  # needs a running kernel: not applicable to an unbooted image
    example_fix: tuple[str, ...] = ()  # a remediation example for `hostaudit explain`
    tags: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()  # architectures it applies to ("x86_64", "arm64"); empty: all


class Result(Record):
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


class Verdict(str, enum.Enum):
    """What the gate makes of one result. The exit code and every report take it from ``Gate.judge``
    and nowhere else, so they cannot disagree about which results count."""

    FAILED = "failed"  # counts: a failure (with --strict, a warning) at or above --fail-on, or of a required check
    REQUIRED_UNKNOWN = "required_unknown"  # counts: a required check that ended skip or error
    BELOW_THRESHOLD = "below_threshold"  # a failure (with --strict, a warning) below --fail-on: shown, not counted
    WAIVED = "waived"  # a failure or warning an active waiver covers
    ERROR = "error"  # could not be evaluated, not required: exit 3 when nothing counts
    SKIPPED = "skipped"  # cannot know here, not required
    WARNED = "warned"  # a warning without --strict
    PASSED = "passed"

    def __str__(self) -> str:
        return self.value

    @property
    def counts(self) -> bool:
        """True when this result sets exit code 1 (a JUnit ``<failure>``)."""
        return self is Verdict.FAILED or self is Verdict.REQUIRED_UNKNOWN


class Judgement(Record):
    verdict: Verdict
    required: bool  # the check id matches a required glob
    note: str = ""  # the gate's word on the result, shown before its message in every format

    @property
    def counts(self) -> bool:
        return self.verdict.counts

    def headline(self, message: str) -> str:
        """The result's message as every report shows it: the gate's note first, when there is one."""
        return f"{self.note}: {message}" if self.note else message


#: the note on a required check that ended skip or error, in every report
REQUIRED_UNKNOWN_NOTE = "required, but could not be checked"
#: the note on a required check that does not apply to the target (known, so it does not count)
NOT_APPLICABLE_NOTE = "required, but not applicable here"


class Gate(Record):
    """What makes a run fail: the ``--fail-on`` threshold, ``--strict``, and the required check ids.

    Recorded on the Report, so every reporter (plugins' too) judges results as the exit code does.
    """

    fail_on: Severity = Severity.LOW
    strict: bool = False  # warnings count like failures
    required: tuple[str, ...] = ()  # check id globs: their skip or error counts as a failure

    def requires(self, check_id: str) -> bool:
        return id_matches(check_id, self.required)

    def judge(self, result: Result) -> Judgement:
        """The one place that decides whether a result counts towards exit 1.

        A required check counts whenever it neither passes nor only warns (without ``--strict``): a
        skip or an error is "required, but could not be checked", and a failure counts even below
        ``--fail-on`` (required is asked for check by check, the threshold for all). A waiver still
        waives a required check's failure.
        """
        status, required = result.status, self.requires(result.id)
        if status is Status.WAIVED:
            return Judgement(Verdict.WAIVED, required)
        if status is Status.SKIP and result.outcome.not_applicable:
            return Judgement(Verdict.SKIPPED, required, NOT_APPLICABLE_NOTE if required else "")
        if status is Status.SKIP or status is Status.ERROR:
            if required:
                return Judgement(Verdict.REQUIRED_UNKNOWN, True, REQUIRED_UNKNOWN_NOTE)
            return Judgement(Verdict.ERROR if status is Status.ERROR else Verdict.SKIPPED, False)
        if status is Status.PASS:
            return Judgement(Verdict.PASSED, required)
        if status is Status.WARN and not self.strict:
            return Judgement(Verdict.WARNED, required)
        severity = result.effective_severity
        if severity >= self.fail_on:
            return Judgement(Verdict.FAILED, required, "warning (strict)" if status is Status.WARN else "")
        if required:
            note = f"{status} ({severity}), required: counts below --fail-on {self.fail_on}"
            return Judgement(Verdict.FAILED, True, note)
        return Judgement(Verdict.BELOW_THRESHOLD, False, f"{status} ({severity}), below --fail-on {self.fail_on}")

    def describe(self) -> str:
        """``--fail-on low, --strict, required: boot.*, kernel.*`` as the reports show the gate."""
        parts = [f"--fail-on {self.fail_on}"]
        if self.strict:
            parts.append("--strict")
        if self.required:
            parts.append("required: " + ", ".join(self.required))
        return ", ".join(parts)


class Target(Record):
    mode: TargetMode
    root: str
    hostname: str | None = None
    kernel_release: str | None = None
    kernel_release_source: str | None = None
    os: str | None = None
    os_id: str | None = None
    os_id_like: tuple[str, ...] = ()
    arch: str | None = None  # "x86_64", "arm64", ... (kernel naming)
    arch_source: str | None = None  # how it is known: "cpuinfo: /proc/cpuinfo", ...


class Report(Record):
    target: Target
    results: tuple[Result, ...]
    started_at: str  # UTC ISO 8601
    duration_ms: float
    tool_version: str
    profile: str = "kvm-host"
    problems: tuple[str, ...] = ()  # start-up problems that are not results (shown, never lost)
    gate: Gate = Gate()  # how results count towards the exit code

    def summary(self) -> dict[str, int]:
        counts = {s.value: 0 for s in Status}
        for r in self.results:
            counts[r.status.value] += 1
        return counts

    def by_status(self, *statuses: Status) -> list[Result]:
        return [r for r in self.results if r.status in statuses]

    def judge(self, result: Result) -> Judgement:
        return self.gate.judge(result)

    def judged(self) -> list[tuple[Result, Judgement]]:
        """Every result with the gate's judgement, in report order."""
        return [(r, self.gate.judge(r)) for r in self.results]

    def gate_summary(self) -> dict[str, int]:
        """Count per verdict (every verdict present, zero or not)."""
        counts = {v.value: 0 for v in Verdict}
        for _, j in self.judged():
            counts[j.verdict.value] += 1
        return counts

    def counting(self) -> list[Result]:
        """The results that set exit code 1, and only those."""
        return [r for r, j in self.judged() if j.counts]


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


def not_applicable(message: str, evidence: Evidence | Iterable[Evidence] | None = None) -> Outcome:
    """A skip that is known, not unknown: the check does not apply to this target at all."""
    return Outcome(status=Status.SKIP, message=message, evidence=_ev(evidence), not_applicable=True)


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
    arches: Sequence[str] = (),
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
            arches=tuple(arches),
        )

    return wrap


def id_matches(check_id: str, patterns: Iterable[str]) -> bool:
    if not patterns:  # asked for every check of every host, and mostly of nothing
        return False
    return any(fnmatch.fnmatchcase(check_id, p) for p in patterns)


def replace(record: T, /, **changes: Any) -> T:
    """A copy of ``record`` with ``changes``. hostaudit's records are NamedTuples (cheap to define:
    start-up) or, where they hold mutable defaults, frozen dataclasses; this works on either."""
    if hasattr(record, "_replace"):
        return record._replace(**changes)  # type: ignore[attr-defined, no-any-return]
    import dataclasses

    return dataclasses.replace(record, **changes)  # type: ignore[type-var]


def to_jsonable(value: Any) -> Any:
    """Enums to their values; used by reporters."""
    if isinstance(value, enum.Enum):
        return value.value if not isinstance(value, Severity) else str(value)
    return value
