"""``hostaudit diff OLD.json NEW.json`` / ``diff --history DIR``: what changed between two audits of a
host (drift).

For periodic audits (cron, systemd timers): which checks got worse, which were fixed, which
appeared or disappeared. Exit 0 when nothing got worse, 1 when something did, 2 on bad input. On the
first run there is no previous report: that says so and exits 0 (``--strict``: 2). Reports of
different targets (hostname, root, mode) are compared only after saying so.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from audit.errors import UsageError
from audit.inputfile import read_user_text
from audit.record import Record
from reports import jsontext

#: How bad a status is, for "got worse": a skip or waiver is not a problem, an error is (the host
#: can no longer be judged), a failure is the worst.
BADNESS = {"pass": 0, "skip": 0, "waived": 0, "warn": 1, "error": 2, "fail": 3}


class Change(Record):
    id: str
    old: str | None  # None: the check is new
    new: str | None  # None: the check is gone
    message: str

    @property
    def kind(self) -> str:
        if self.old is None:
            return "new"
        if self.new is None:
            return "gone"
        diff = BADNESS[self.new] - BADNESS[self.old]
        return "worse" if diff > 0 else "better" if diff < 0 else "changed"


#: A JSON report of thousands of checks is a few MB.
MAX_REPORT = 256 << 20


def load_report(path: str) -> dict[str, Any]:
    text = read_user_text(path, what="report", cap=MAX_REPORT)
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise UsageError(f"{path}: not a JSON report: {exc}") from None
    if not isinstance(doc, dict) or doc.get("schema_version") != 1 or not isinstance(doc.get("results"), list):
        raise UsageError(f"{path}: not a hostaudit JSON report (schema_version 1)")
    for r in doc["results"]:
        if not (isinstance(r, dict) and isinstance(r.get("id"), str) and r.get("status") in BADNESS
                and isinstance(r.get("message", ""), str)):
            raise UsageError(f"{path}: malformed result entry")
    return doc


def diff_reports(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    before = {r["id"]: r for r in old["results"]}
    after = {r["id"]: r for r in new["results"]}
    changes = []
    for check_id in sorted(before.keys() | after.keys()):
        a, b = before.get(check_id), after.get(check_id)
        if a is not None and b is not None and a["status"] == b["status"] and a.get("message") == b.get("message"):
            continue
        changes.append(Change(
            id=check_id,
            old=a["status"] if a else None,
            new=b["status"] if b else None,
            message=(b or a or {}).get("message", ""),
        ))
    return changes


def register(sub: Any) -> None:
    p = sub.add_parser("diff", help="what changed between two JSON reports of the same host (drift)")
    p.add_argument("old", metavar="OLD.json", nargs="?")
    p.add_argument("new", metavar="NEW.json", nargs="?")
    p.add_argument("--history", metavar="DIR", help="compare the last two reports of 'run --history DIR'")
    p.add_argument("--strict", action="store_true", help="no previous report is an error (exit 2), not exit 0")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_diff)


TARGET_KEYS = ("hostname", "root", "mode")


def target_differences(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    a, b = old.get("target") or {}, new.get("target") or {}
    return [(k, a.get(k), b.get(k)) for k in TARGET_KEYS if a.get(k) != b.get(k)]


def _paths(args: argparse.Namespace) -> tuple[str | None, str]:
    if args.history:
        if args.old or args.new:
            raise UsageError("diff: give either --history DIR or OLD.json NEW.json, not both")
        from reports.history import last_two

        previous, latest = last_two(args.history)
        if latest is None:
            raise UsageError(f"diff --history {args.history}: no report recorded there yet")
        return previous, latest
    if not (args.old and args.new):
        raise UsageError("diff: give OLD.json and NEW.json, or --history DIR")
    return args.old, args.new


def _say(priority: int, text: str, journal: bool) -> None:
    print(f"<{priority}>{text}" if journal else text)


def cmd_diff(args: argparse.Namespace) -> int:
    from reports.journal import INFO, NOTICE, WARNING, is_journal
    from reports.sanitize import printable, sanitize_tree

    journal = args.format == "text" and is_journal(sys.stdout)
    old_path, new_path = _paths(args)
    new = load_report(new_path)
    try:
        if old_path is None:
            raise UsageError("the history holds one report")
        old = load_report(old_path)
    except UsageError as exc:
        if args.strict:
            raise UsageError(f"no previous report ({exc})") from None
        if args.format == "json":
            doc = {"old": None, "new": {"started_at": new.get("started_at"), "target": new.get("target")},
                   "changes": [], "worse": 0, "note": f"no previous report ({exc})"}
            sys.stdout.write(jsontext.dumps(sanitize_tree(doc), indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        else:
            _say(NOTICE, f"no previous report ({printable(str(exc))}): nothing to compare yet", journal)
        return 0
    changes = diff_reports(old, new)
    worse = [c for c in changes if c.kind == "worse"]
    differ = target_differences(old, new)
    if args.format == "json":
        doc = {
            "old": {"started_at": old.get("started_at"), "target": old.get("target")},
            "new": {"started_at": new.get("started_at"), "target": new.get("target")},
            "targets_differ": [k for k, _, _ in differ],
            "changes": [{"id": c.id, "old": c.old, "new": c.new, "kind": c.kind, "message": c.message}
                        for c in changes],
            "worse": len(worse),
        }
        # the reports' text as they hold it (a "\udcff" escape in a report is a lone surrogate: shown)
        sys.stdout.write(jsontext.dumps(sanitize_tree(doc), indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        return 1 if worse else 0
    if differ:
        shown = "; ".join(f"{k} {printable(str(a))} -> {printable(str(b))}" for k, a, b in differ)
        _say(WARNING, f"these reports are of different targets ({shown}): the changes below may not be drift",
             journal)
    _say(INFO, f"{printable(str(old.get('started_at')))} -> {printable(str(new.get('started_at')))}", journal)
    if not changes:
        _say(INFO, "no changes", journal)
        return 0
    order = {"worse": 0, "new": 1, "gone": 2, "changed": 3, "better": 4}
    for c in sorted(changes, key=lambda c: (order[c.kind], c.id)):
        _say(WARNING if c.kind == "worse" else INFO,
             f"{c.kind:8} {printable(c.id):28} {c.old or '-':>6} -> {c.new or '-':6} {printable(c.message)}", journal)
    counts = {k: sum(1 for c in changes if c.kind == k) for k in order}
    _say(WARNING if worse else INFO, ", ".join(f"{n} {k}" for k, n in counts.items() if n), journal)
    return 1 if worse else 0
