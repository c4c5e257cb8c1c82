"""Command line: ``hostaudit [run] [options]``, ``hostaudit checks``, ``hostaudit explain ID``.

Exit codes: 0 nothing failed at or above --fail-on; 1 a failure at or above it; 2 usage or input
error (nothing audited, or a report could not be written); 3 no failure, but a check errored or no
check could run at all.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from audit import __version__
from audit.errors import HostauditError, UsageError
from audit.model import Severity

#: Sub-commands defined in other modules, imported only when used (start-up time matters):
#: each module has ``register(subparsers)`` that adds its parser and sets ``func``.
EXTRA_COMMANDS: dict[str, str] = {"collect": "audit.cli_snapshot", "cpu": "audit.cli_cpu", "diff": "audit.cli_diff"}

SUBCOMMANDS = {"run", "checks", "explain", "policy"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one clear line, exit 2
        raise UsageError(f"{self.prog}: {message}")


def _severity(text: str) -> Severity:
    try:
        return Severity.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_run_options(p: argparse.ArgumentParser) -> None:
    target = p.add_mutually_exclusive_group()
    target.add_argument("--root", metavar="DIR", help="audit the tree at DIR (an unbooted image) instead of this host")
    target.add_argument("--snapshot", metavar="FILE", help="audit a snapshot made by 'hostaudit collect'")
    p.add_argument("--format", default="text", metavar="FMT",
                   help="what goes to stdout: text (default), json, junit, html")
    p.add_argument("-o", "--output", action="append", default=[], metavar="PATH",
                   help="also write a report to PATH; format from the suffix (.json, .txt, .xml JUnit, .html, "
                        ".sh remediation script; .prom is reserved); repeatable")
    p.add_argument("--fix-script", metavar="PATH",
                   help="write a bash script with the remediation of the failed checks (never run by hostaudit)")
    p.add_argument("--select", action="append", default=[], metavar="GLOB", help="run only these check ids")
    p.add_argument("--ignore", action="append", default=[], metavar="GLOB", help="skip these check ids")
    p.add_argument("--fail-on", type=_severity, default=Severity.LOW, metavar="SEVERITY",
                   help="lowest severity whose failure sets exit code 1 (default: low)")
    p.add_argument("--strict", action="store_true", help="warnings count as failures for the exit code")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors; use the exit code")
    p.add_argument("--no-entry-points", action="store_true", help="run built-in checks only")
    add_policy_options(p)


def add_policy_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", metavar="NAME",
                   help="built-in policy profile: kvm-host (default), kvm-host-multitenant")
    p.add_argument("--policy", metavar="FILE", help="TOML policy file (extends a profile; overrides, waivers)")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="hostaudit", description="Audit a KVM host (or an image root) against a policy.")
    parser.add_argument("--version", action="version", version=f"hostaudit {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    run = sub.add_parser("run", help="audit this host or an image root (the default command)")
    add_run_options(run)
    run.set_defaults(func=cmd_run)
    checks = sub.add_parser("checks", help="list the check catalogue (reads nothing from the host)")
    checks.add_argument("--format", choices=("text", "json"), default="text")
    checks.add_argument("--no-entry-points", action="store_true")
    checks.set_defaults(func=cmd_checks)
    explain = sub.add_parser("explain", help="what a check verifies, why, what it reads and how to fix it")
    explain.add_argument("check_id", metavar="ID")
    explain.add_argument("--no-entry-points", action="store_true")
    explain.set_defaults(func=cmd_explain)
    policy = sub.add_parser("policy", help="show the effective policy")
    policy_sub = policy.add_subparsers(dest="policy_command", parser_class=_Parser, required=True)
    show = policy_sub.add_parser("show", help="print the effective policy as TOML")
    add_policy_options(show)
    show.set_defaults(func=cmd_policy_show)
    for name, modname in EXTRA_COMMANDS.items():
        if command is None or command == name or command in ("-h", "--help"):
            importlib.import_module(modname).register(sub)
    return parser


def _normalize_argv(argv: list[str]) -> list[str]:
    """``hostaudit --root X`` means ``hostaudit run --root X``."""
    if not argv:
        return ["run"]
    first = argv[0]
    if first in ("-h", "--help", "--version"):
        return argv
    if first in SUBCOMMANDS or first in EXTRA_COMMANDS:
        return argv
    return ["run", *argv]


def _plugins(args: argparse.Namespace) -> Any:
    from audit.plugins import make_plugins

    return make_plugins(entry_points=not getattr(args, "no_entry_points", False))


def use_color(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ


def load_policy(args: argparse.Namespace) -> Any:
    from audit.policy import load_policy as load

    return load(profile=getattr(args, "profile", None), path=getattr(args, "policy", None))


def cmd_policy_show(args: argparse.Namespace) -> int:
    from audit.policy import to_toml

    sys.stdout.write(to_toml(load_policy(args)))
    return 0


def make_host(args: argparse.Namespace) -> Any:
    from audit.host import Host

    if getattr(args, "snapshot", None):
        from audit.snapshot import load_snapshot_host

        return load_snapshot_host(args.snapshot)  # raises UsageError on a bad snapshot
    if args.root:
        if not os.path.isdir(args.root):
            raise UsageError(f"--root {args.root}: not a directory")
        return Host.from_root(args.root)
    return Host.live()


def cmd_run(args: argparse.Namespace) -> int:
    from audit.engine import ExitCode, exit_code, run_audit
    from reports import output

    plugins = _plugins(args)
    extra = output.plugin_reporters(plugins.pm)
    formats = [(path, output.format_for_path(path, extra)) for path in args.output]  # before auditing
    if args.fix_script:
        formats.append((args.fix_script, "fix"))
    stdout_formats = [*output.STDOUT_FORMATS, *(k.lstrip(".") for k in extra)]
    if args.format not in stdout_formats:
        raise UsageError(f"--format {args.format}: unknown format (one of: {', '.join(stdout_formats)})")
    policy = load_policy(args)
    host = make_host(args)
    report = run_audit(plugins, host, policy, select=args.select, ignore=args.ignore)
    code = int(exit_code(report, args.fail_on, strict=args.strict))
    write_failed = False
    for path, fmt in formats:
        try:
            output.write_atomic(path, output.render(fmt, report, exit_code=code, extra=extra, strict=args.strict))
        except OSError as exc:
            print(f"hostaudit: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
            write_failed = True
    if args.quiet:
        from reports.sanitize import printable

        for r in report.results:
            if r.status.value == "error":
                print(f"hostaudit: {r.id}: {printable(r.outcome.message)}", file=sys.stderr)
    else:
        sys.stdout.write(
            output.render(args.format, report, exit_code=code, color=use_color(sys.stdout), extra=extra,
                          strict=args.strict)
        )
    return int(ExitCode.USAGE) if write_failed else code


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
    rows = catalogue(args)
    if args.format == "json":
        sys.stdout.write(json.dumps(rows, indent=2, sort_keys=True) + "\n")
        return 0
    from tabulate import tabulate

    table = [(r["id"], r["severity"], r["title"], r["plugin"]) for r in rows]
    print(tabulate(table, headers=("id", "severity", "title", "plugin"), disable_numparse=True))
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from audit.engine import collect_checks

    declared, _ = collect_checks(_plugins(args))
    for d in declared:
        if d.check.id == args.check_id:
            c = d.check
            print(f"{c.id}: {c.title}")
            print(f"severity: {c.severity}   category: {c.category}   plugin: {d.plugin}")
            print(f"applies to: {'a running host only' if c.runtime_only else 'a running host and an image'}")
            print(f"\nwhy: {c.rationale}")
            if c.reads:
                print("\nreads:\n" + "\n".join(f"  {p}" for p in c.reads))
            if c.example_fix:
                print("\nremediation example:\n" + "\n".join(f"  $ {cmd}" for cmd in c.example_fix))
            return 0
    raise UsageError(f"no check with id {args.check_id!r} (see 'hostaudit checks')")


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        argv_n = _normalize_argv(args_list)
        parser = build_parser(argv_n[0] if argv_n else None)
        args = parser.parse_args(argv_n)
        return int(args.func(args))
    except UsageError as exc:
        print(f"hostaudit: {exc}" if not str(exc).startswith("hostaudit") else str(exc), file=sys.stderr)
        return 2
    except HostauditError as exc:  # e.g. duplicate check ids: start-up stops, nothing audited
        print(f"hostaudit: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug must still end in one line and a non-zero code, not a traceback
        print(f"hostaudit: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        if os.environ.get("HOSTAUDIT_DEBUG"):
            raise
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
