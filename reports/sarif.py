"""SARIF 2.1.0 reporter (``-o report.sarif``, ``--format sarif``): findings as code scanning alerts.

One run, tool ``hostaudit``. Every check in the report is a rule (``tool.driver.rules``): id, a
PascalCase name, the title as ``shortDescription``, the rationale as ``fullDescription`` (cut at
GitHub's 1024 characters) and in ``help.text`` with the check's example fix, and
``defaultConfiguration.level`` from its severity (critical, high: ``error``; medium, low: ``warning``;
info: ``note``).

What becomes a result, and its level:

* a failure or a warning: ``error`` exactly when the gate counts it towards exit code 1 (a failure at
  or above ``--fail-on``, a warning with ``--strict``, a failure of a required check), so a code
  scanning check and hostaudit's exit code agree; otherwise the check's severity level, at most
  ``warning`` (a failure below ``--fail-on``, a warning);
* a required check that could not be checked (skip or error, ``--require``): ``error``, since it counts;
* a waived failure or warning: a result with a suppression (``kind`` ``external``: the waiver is in
  the policy, not in the audited files; ``justification``: the waiver's reason), level as above;
* a check that errored (and is not required) is not a finding about the host: it is a
  ``toolExecutionNotifications`` entry of the invocation (level ``error``, ``associatedRule`` the
  check), as are start-up problems (``report.problems``); passes and skips are not reported.

Locations. An evidence ``source`` that starts with ``/`` names a file inside the audited root: its
first word (up to a blank or a comma), with ``:LINE`` when it ends so (``/etc/default/grub:12``,
``/boot/config-6.1.0-18-amd64:7``). The primary location is the first such source with a line, else
the first outside the pseudo-filesystems (``/proc``, ``/sys``, ``/dev``, ``/run``: no repository holds
them), else the first at all; without any, the plain paths the check declares it reads
(``Check.reads``, same order); the other evidence files are ``relatedLocations``. A location without a
line gets ``startLine`` 1 (GitHub needs a line): it stands for the whole file. A finding with no file
at all (an error with no evidence, evidence such as ``next boot`` or ``policy``) is placed at the
documented pseudo-location ``.hostaudit/<check id>``, line 1, with a ``logicalLocations`` entry naming
the check: GitHub code scanning needs a physical location for every result, and this one can never be
a file of the image.

Paths are written relative to the repository the report is uploaded from, with ``uriBaseId``
``%SRCROOT%`` (CodeQL's name for it). GitHub and GitLab ignore ``originalUriBaseIds`` and read a
relative ``uri`` as relative to the repository root (github/codeql-action#2215), so ``--source-prefix
DIR`` is part of each ``uri`` (``DIR/etc/default/grub``) rather than only a base id; ``originalUriBaseIds``
says what the bases are for a viewer that resolves them: without a prefix ``%SRCROOT%`` is the audited
root itself (``file:///...``; the image root is the repository, or the live host's ``/``); with one,
``%SRCROOT%`` is the repository (left to the viewer) and ``ROOT``, the audited root, is ``DIR/`` in it.
The pseudo-location is never under the prefix.

``partialFingerprints["hostaudit/v1"]`` is the sha256 of the check id, a NUL and the location path
(the same fingerprint as the code quality report's): stable across runs, distinct per check and path.

Host text is made safe by reports.sanitize: ``sarif_message`` for message texts, ``display_text`` for
every other string, ``uri_path`` for URIs. A fleet (``--snapshot DIR``) does not write SARIF: the
locations are one host's files (see reports.output.check_fleet_outputs).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Iterable, Sequence
from typing import Any

from audit.model import Evidence, Judgement, Report, Result, Severity, Status, Verdict
from audit.record import Record
from reports.document import evidence_text
from reports.sanitize import display_text, printable, sanitize_tree, sarif_message, uri_path

SARIF_VERSION = "2.1.0"
SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
#: the base id of every location: the repository the report is uploaded from (CodeQL's name)
SRCROOT = "%SRCROOT%"
#: the base id of the audited root, defined when --source-prefix places it in the repository
ROOT = "ROOT"
#: where a finding without any file is placed, as ``.hostaudit/<check id>``
PSEUDO_DIR = ".hostaudit"
#: evidence under these is read from a running kernel: never a file of an image or a repository
PSEUDO_FILESYSTEMS = ("proc", "sys", "dev", "run")
#: GitHub code scanning's limit on a rule's short and full description
DESCRIPTION_LIMIT = 1024
#: the fingerprint's key in ``partialFingerprints`` (the scheme's version: bump it if the inputs change)
FINGERPRINT_KEY = "hostaudit/v1"
#: SARIF's startLine is an integer GitHub stores in 32 bits; a larger "line" is no line
MAX_LINE = 2**31 - 1

_SEVERITY_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "warning",
    Severity.INFO: "note",
}
_EXIT_DESCRIPTIONS = {
    0: "nothing failed at or above --fail-on",
    1: "a failure at or above --fail-on, or a required check failed or could not be checked",
    2: "usage or input error, or a report could not be written",
    3: "no failure, but a check errored or none could run",
    130: "interrupted: the results of the checks that finished",
}
#: the first word of an evidence source that names a file: "/path" or "/path:LINE"
_SOURCE_FILE = re.compile(r"/[^\s,]*")
_LINE_SUFFIX = re.compile(r"(.+?):([0-9]{1,12})")
#: a declared read that is a plain path (not a glob, a placeholder such as <release>, or prose)
_PLAIN_READ = re.compile(r"/[^\s*?\[<{]*")


class FileRef(Record):
    """A file inside the audited root an evidence (or a declared read) names."""

    path: str  # relative to the root, normalised, no leading slash: "etc/default/grub"
    line: int | None
    evidence: Evidence | None = None


class Place(Record):
    """Where a finding is shown: the path in the repository (display text), its line, and whether it
    is the pseudo-location of a finding without a file."""

    path: str
    line: int | None
    pseudo: bool
    evidence: Evidence | None = None


def source_file(source: str) -> tuple[str, int | None] | None:
    """(path inside the root, line) of an evidence source that names a file, else None.

    ``"/etc/default/grub:12"`` gives ``("etc/default/grub", 12)``, ``"/dev/kvm at boot"`` gives
    ``("dev/kvm", None)``, ``"next boot"`` and ``"/"`` give None. ``..`` stops at the root."""
    m = _SOURCE_FILE.match(source)
    if m is None:
        return None
    word, line = m.group(0), None
    lm = _LINE_SUFFIX.fullmatch(word)
    if lm is not None:
        word, number = lm.group(1), int(lm.group(2))
        line = number if 1 <= number <= MAX_LINE else None
    rel = posixpath.normpath("/" + word.lstrip("/")).lstrip("/")
    return (rel, line) if rel and rel != "." else None


def _is_pseudo_fs(path: str) -> bool:
    return path.split("/", 1)[0] in PSEUDO_FILESYSTEMS


def _preferred(refs: Sequence[FileRef]) -> FileRef | None:
    """The first with a line, else the first outside the pseudo-filesystems, else the first."""
    for ref in refs:
        if ref.line is not None:
            return ref
    for ref in refs:
        if not _is_pseudo_fs(ref.path):
            return ref
    return refs[0] if refs else None


def file_refs(result: Result) -> list[FileRef]:
    """Every distinct file (path, line) the result's evidence names, in evidence order."""
    seen: set[tuple[str, int | None]] = set()
    refs = []
    for ev in result.outcome.evidence:
        found = source_file(ev.source)
        if found is not None and found not in seen:
            seen.add(found)
            refs.append(FileRef(found[0], found[1], ev))
    return refs


def _declared_reads(result: Result) -> list[FileRef]:
    refs = []
    for read in result.check.reads:
        if _PLAIN_READ.fullmatch(read):
            found = source_file(read)
            if found is not None:
                refs.append(FileRef(found[0], None))
    return refs


def repo_path(rel: str, prefix: str | None) -> str:
    """A root-relative path as a path in the repository (``--source-prefix``), display text."""
    return display_text(posixpath.join(prefix, rel) if prefix else rel)


def places(result: Result, prefix: str | None) -> tuple[Place, list[Place]]:
    """The primary place of a finding and the places of its other evidence files."""
    refs = file_refs(result)
    primary = _preferred(refs) or _preferred(_declared_reads(result))
    if primary is None:  # no evidence names a file, and the check declares no plain path
        return Place(display_text(f"{PSEUDO_DIR}/{result.id}"), None, True), []
    related = [Place(repo_path(r.path, prefix), r.line, False, r.evidence) for r in refs if r != primary]
    return Place(repo_path(primary.path, prefix), primary.line, False, primary.evidence), related


def fingerprint(check_id: str, path: str) -> str:
    """sha256 hex of the check id, a NUL and the path as the report writes it: stable across runs
    (no line, no message, no time), distinct per check and path."""
    data = f"{check_id}\0{path}".encode("utf-8", "surrogateescape")
    return hashlib.sha256(data).hexdigest()


def source_prefix(text: str) -> str | None:
    """``--source-prefix DIR`` normalised: a relative path inside the repository without ``..``
    (``./image/`` gives ``image``; ``.`` and ``""`` give None). ValueError otherwise."""
    text = text.strip()
    if text.startswith("/") or re.match(r"[A-Za-z]:[\\/]", text):
        raise ValueError(f"{text!r} is absolute: give the folder relative to the repository root, e.g. image")
    norm = posixpath.normpath(text.replace("\\", "/")) if text else "."
    if norm == ".." or norm.startswith("../"):
        raise ValueError(f"{text!r} leaves the repository: give a folder inside it, e.g. image")
    return None if norm == "." else norm


# -- what each result becomes --------------------------------------------------------------------------


def severity_level(severity: Severity) -> str:
    return _SEVERITY_LEVEL[severity]


def result_level(r: Result, j: Judgement) -> str:
    """``error`` when the result counts towards exit 1; else the severity's level, at most ``warning``."""
    if j.counts:
        return "error"
    level = severity_level(r.effective_severity)
    return "warning" if level == "error" else level


def is_finding(r: Result, j: Judgement) -> bool:
    """Failures, warnings, waived results, and required checks that could not be checked."""
    return r.status in (Status.FAIL, Status.WARN, Status.WAIVED) or j.verdict is Verdict.REQUIRED_UNKNOWN


def _pascal(check_id: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in re.split(r"[^A-Za-z0-9]+", check_id) if w) or "Check"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _rule(r: Result) -> dict[str, Any]:
    c = r.check
    title = display_text(c.title) or display_text(c.id)
    rationale = display_text(c.rationale) or title
    help_lines = [rationale]
    if c.example_fix:
        help_lines += ["", "Example fix:", *(f"  {printable(cmd)}" for cmd in c.example_fix)]
    rule: dict[str, Any] = {
        "id": display_text(c.id),
        "name": _pascal(c.id),
        "shortDescription": {"text": _cut(title, DESCRIPTION_LIMIT)},
        "fullDescription": {"text": _cut(rationale, DESCRIPTION_LIMIT)},
        "help": {"text": "\n".join(help_lines)},
        "defaultConfiguration": {"level": severity_level(r.effective_severity)},
        "properties": {
            "category": display_text(c.category),
            "severity": str(r.effective_severity),
            "tags": [display_text(t) for t in dict.fromkeys((c.category, *c.tags)) if t],
            "plugin": display_text(r.plugin),
        },
    }
    if r.effective_severity != c.severity:
        rule["properties"]["declaredSeverity"] = str(c.severity)
    return rule


def _message(r: Result, j: Judgement) -> str:
    """The headline (the gate's note, then the message), the evidence, then the fix: one line each."""
    lines = [printable(j.headline(r.outcome.message)) or printable(r.check.title)]
    if r.outcome.evidence:
        lines += ["", "Evidence:", *(f"- {printable(evidence_text(e))}" for e in r.outcome.evidence)]
    rem = r.outcome.remediation
    if rem is not None and (rem.commands or rem.notes):
        lines += ["", "Fix" + (" (reboot required)" if rem.reboot_required else "") + ":"]
        lines += [f"  {printable(cmd)}" for cmd in rem.commands]
        if rem.notes:
            lines.append(printable(rem.notes))
    if r.status is Status.WAIVED and r.waiver:
        lines += ["", f"Waived: {printable(r.waiver)}"]
    return sarif_message("\n".join(lines), multiline=True)


def _physical(place: Place) -> dict[str, Any]:
    return {
        "artifactLocation": {"uri": uri_path(place.path), "uriBaseId": SRCROOT},
        "region": {"startLine": place.line or 1},
    }


def _location(place: Place, check_id: str, index: int | None = None) -> dict[str, Any]:
    loc: dict[str, Any] = {}
    if index is not None:
        loc["id"] = index
    loc["physicalLocation"] = _physical(place)
    if place.pseudo:
        loc["logicalLocations"] = [{"name": display_text(check_id), "kind": "object"}]
        loc["message"] = {"text": sarif_message("no file: the finding is about the host itself (see the evidence)")}
    elif place.evidence is not None:
        loc["message"] = {"text": sarif_message(evidence_text(place.evidence))}
    return loc


def _result(r: Result, j: Judgement, rule_index: int, prefix: str | None) -> dict[str, Any]:
    primary, related = places(r, prefix)
    out: dict[str, Any] = {
        "ruleId": display_text(r.id),
        "ruleIndex": rule_index,
        "level": result_level(r, j),
        "message": {"text": _message(r, j)},
        "locations": [_location(primary, r.id)],
    }
    if related:
        out["relatedLocations"] = [_location(p, r.id, i) for i, p in enumerate(related, start=1)]
    out["partialFingerprints"] = {FINGERPRINT_KEY: fingerprint(r.id, primary.path)}
    if r.status is Status.WAIVED:
        out["suppressions"] = [{"kind": "external", "status": "accepted",
                                "justification": display_text(r.waiver or "waived by the policy")}]
    rem = r.outcome.remediation
    props: dict[str, Any] = {
        "status": r.status.value,
        "severity": str(r.effective_severity),
        "gate": {"status": j.verdict.value, "counts": j.counts, "note": display_text(j.note)},
        "required": j.required,
        "evidence": [{"source": display_text(e.source), "observed": display_text(e.observed),
                      "expected": None if e.expected is None else display_text(e.expected)}
                     for e in r.outcome.evidence],
    }
    if rem is not None:
        props["remediation"] = {"commands": [display_text(c) for c in rem.commands],
                                "rebootRequired": rem.reboot_required, "notes": display_text(rem.notes)}
    if r.waiver and r.status is not Status.WAIVED:
        props["waiver"] = display_text(r.waiver)  # a note that a waiver expired
    out["properties"] = props
    return out


def _notifications(report: Report, judged: Iterable[tuple[Result, Judgement]],
                   rule_index: dict[str, int]) -> list[dict[str, Any]]:
    notes: list[dict[str, Any]] = [
        {"level": "error", "message": {"text": sarif_message(p)}} for p in report.problems
    ]
    for r, j in judged:
        if r.status is Status.ERROR and j.verdict is not Verdict.REQUIRED_UNKNOWN:
            notes.append({
                "level": "error",
                "message": {"text": sarif_message(f"{r.id}: could not be checked: {r.outcome.message}")},
                "associatedRule": {"id": display_text(r.id), "index": rule_index[r.id]},
            })
    return notes


def _end_time(started_at: str, duration_ms: float) -> str | None:
    import datetime as dt

    try:
        start = dt.datetime.fromisoformat(started_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    end = start + dt.timedelta(milliseconds=duration_ms)
    return end.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def information_uri() -> str | None:
    """The project's home page from the installed package's metadata (``[project.urls]``), if any."""
    try:
        from importlib.metadata import PackageNotFoundError, metadata
    except ImportError:  # pragma: no cover
        return None
    try:
        meta = metadata("hostaudit")
    except PackageNotFoundError:
        return None
    candidates = [meta.get("Home-page") or ""]
    for entry in meta.get_all("Project-URL") or ():
        label, _, url = entry.partition(",")
        if label.strip().lower() in ("homepage", "home", "source", "repository", "documentation"):
            candidates.append(url.strip())
    for url in candidates:
        if re.fullmatch(r"https?://[^\s\"<>\\^`{|}]+", url):
            return url
    return None


def _root_uri(root: str) -> str | None:
    """The audited root as an absolute ``file:`` URI ending in ``/``; None for a snapshot (a file)."""
    if not root.startswith("/"):
        return None
    path = uri_path(root.rstrip("/") + "/")
    return "file://" + path


def _base_ids(report: Report, prefix: str | None) -> dict[str, Any]:
    root_uri = _root_uri(report.target.root) if report.target.mode.value != "snapshot" else None
    where = f"the audited root ({display_text(report.target.root)})"
    if prefix is None:
        base: dict[str, Any] = {"description": {"text": f"{where}: locations are relative to it, and to the "
                                                         "repository root when the report is uploaded"}}
        if root_uri:
            base = {"uri": root_uri, **base}
        return {SRCROOT: base}
    root: dict[str, Any] = {"uri": uri_path(prefix) + "/", "uriBaseId": SRCROOT,
                            "description": {"text": f"{where}, as --source-prefix places it in the repository"}}
    return {
        SRCROOT: {"description": {"text": "the repository the report is uploaded from: locations are relative "
                                          "to its root"}},
        ROOT: root,
    }


def sarif_log(report: Report, *, exit_code: int, source_prefix: str | None = None) -> dict[str, Any]:
    """The SARIF log as plain data."""
    judged = report.judged()
    rules: list[dict[str, Any]] = []
    rule_index: dict[str, int] = {}
    for r, _ in judged:
        if r.id not in rule_index:
            rule_index[r.id] = len(rules)
            rules.append(_rule(r))
    results = [_result(r, j, rule_index[r.id], source_prefix) for r, j in judged if is_finding(r, j)]
    version = report.tool_version
    driver: dict[str, Any] = {"name": "hostaudit", "version": display_text(version)}
    if re.fullmatch(r"\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?", version):
        driver["semanticVersion"] = version
    uri = information_uri()
    if uri:
        driver["informationUri"] = uri
    driver["rules"] = rules
    invocation: dict[str, Any] = {
        "executionSuccessful": exit_code in (0, 1),
        "exitCode": int(exit_code),
    }
    if exit_code in _EXIT_DESCRIPTIONS:
        invocation["exitCodeDescription"] = _EXIT_DESCRIPTIONS[exit_code]
    invocation["startTimeUtc"] = report.started_at
    end = _end_time(report.started_at, report.duration_ms)
    if end:
        invocation["endTimeUtc"] = end
    notes = _notifications(report, judged, rule_index)
    if notes:
        invocation["toolExecutionNotifications"] = notes
    t = report.target
    run: dict[str, Any] = {
        "tool": {"driver": driver},
        "invocations": [invocation],
        "originalUriBaseIds": _base_ids(report, source_prefix),
        "results": results,
        "properties": {
            "target": {"mode": t.mode.value, "root": display_text(t.root),
                       **{k: display_text(v) for k, v in (("hostname", t.hostname), ("kernelRelease", t.kernel_release),
                                                         ("os", t.os), ("arch", t.arch)) if v}},
            "profile": display_text(report.profile),
            "gate": {"failOn": str(report.gate.fail_on), "strict": report.gate.strict,
                     "required": [display_text(g) for g in report.gate.required],
                     "counting": len(report.counting())},
            "summary": report.summary(),
            "sourcePrefix": None if source_prefix is None else display_text(source_prefix),
        },
    }
    return {"$schema": SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}


def render(report: Report, *, exit_code: int, source_prefix: str | None = None) -> str:
    doc = sanitize_tree(sarif_log(report, exit_code=exit_code, source_prefix=source_prefix))
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
