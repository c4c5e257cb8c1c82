"""``hostaudit checks`` and ``hostaudit explain ID``: the check catalogue; they read nothing from the host.

What plugins declare (ids, titles, rationales, example commands) is shown through reports.sanitize:
printable on a terminal, surrogates shown in JSON."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from audit.cli.options import _plugins
from audit.errors import UsageError
from reports import jsontext


def register(sub: Any) -> None:
    checks = sub.add_parser("checks", help="list the check catalogue (reads nothing from the host)")
    checks.add_argument("--format", choices=("text", "json"), default="text")
    checks.add_argument("--no-entry-points", action="store_true")
    checks.set_defaults(func=cmd_checks)
    explain = sub.add_parser("explain", help="what a check verifies, why, what it reads and how to fix it")
    explain.add_argument("check_id", metavar="ID")
    explain.add_argument("--no-entry-points", action="store_true")
    explain.set_defaults(func=cmd_explain)


def catalogue(args: argparse.Namespace) -> list[dict[str, Any]]:
    from audit.engine import collect_checks

    declared, broken = collect_checks(_plugins(args))
    return [
        {
            "id": d.check.id,
            "severity": str(d.check.severity),
            "category": d.check.category,
            "title": d.check.title,
            "rationale": d.check.rationale,
            "plugin": d.plugin,
            "runtime_only": d.check.runtime_only,
            "reads": list(d.check.reads),
        }
        for d in [*declared, *broken]
    ]


def cmd_checks(args: argparse.Namespace) -> int:
    from reports.sanitize import printable, sanitize_tree

    rows = catalogue(args)
    if args.format == "json":
        sys.stdout.write(jsontext.dumps(sanitize_tree(rows), indent=2, sort_keys=True) + "\n")
        return 0
    from tabulate import tabulate

    table = [tuple(printable(str(r[k])) for k in ("id", "severity", "title", "plugin")) for r in rows]
    print(tabulate(table, headers=("id", "severity", "title", "plugin"), disable_numparse=True))
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from audit.engine import collect_checks
    from reports.sanitize import printable

    declared, _ = collect_checks(_plugins(args))
    for d in declared:
        if d.check.id == args.check_id:
            c = d.check
            print(printable(f"{c.id}: {c.title}"))
            print(printable(f"severity: {c.severity}   category: {c.category}   plugin: {d.plugin}"))
            print(f"applies to: {'a running host only' if c.runtime_only else 'a running host and an image'}")
            print("\nwhy: " + printable(c.rationale, keep_newlines=True))  # a docstring: its lines kept
            if c.reads:
                print("\nreads:\n" + "\n".join(f"  {printable(p)}" for p in c.reads))
            if c.example_fix:
                print("\nremediation example:\n" + "\n".join(f"  $ {printable(cmd)}" for cmd in c.example_fix))
            return 0
    raise UsageError(f"no check with id {args.check_id!r} (see 'hostaudit checks')")


