"""Command line: ``hostaudit [run] [options]``, ``hostaudit checks``, ``hostaudit explain ID``.

Exit codes: 0 nothing failed at or above --fail-on; 1 a failure at or above it, or a required check
(``--require``, ``[gate] required``) that failed or could not be checked; 2 usage or input error
(nothing audited, or a report could not be written); 3 no failure, but a check errored or no check
could run at all.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Sequence

from audit import __version__
from audit.cli import options
from audit.cli.options import Parser, started
from audit.errors import HostauditError, UsageError

#: Sub-command -> the module defining it, imported only when used (start-up time matters): each
#: module has ``register(subparsers)`` that adds its parsers, in this order, and sets ``func``.
COMMANDS: dict[str, str] = {
    "run": "audit.cli.run",
    "checks": "audit.cli.catalogue",
    "explain": "audit.cli.catalogue",
    "policy": "audit.cli.policy",
    "collect": "audit.cli.collect",
    "cpu": "audit.cli.cpu",
    "diff": "audit.cli.diff",
    "guest": "audit.cli.guest",
    "completion": "audit.cli.completion",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with only ``command``'s module imported (every one for --help, none for --version)."""
    parser = Parser(prog="hostaudit", description="Audit a KVM host (or an image root) against a policy.")
    parser.add_argument("--version", action="version", version=f"hostaudit {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)
    wanted: list[str] = list(COMMANDS.values())  # --help lists them all
    if command in COMMANDS:
        wanted = [COMMANDS[command]]
    elif command == "--version":
        wanted = []
    for modname in dict.fromkeys(wanted):
        importlib.import_module(modname).register(sub)
    return parser


def _normalize_argv(argv: list[str]) -> list[str]:
    """``hostaudit --root X`` means ``hostaudit run --root X``."""
    if not argv:
        return ["run"]
    first = argv[0]
    if first in ("-h", "--help", "--version"):
        return argv
    if first in COMMANDS:
        return argv
    return ["run", *argv]


def _shown(text: str) -> str:
    from reports.sanitize import printable

    return printable(text)


def entry() -> None:
    """The ``hostaudit`` command (and ``python -m audit``): ``main()`` with the garbage collector set
    for a short-lived process.

    Start-up imports some 200 modules whose objects (functions, classes, tables) all live until
    exit; the collector would walk them again and again as they are made, and the interpreter's
    last collections once more at exit: together some 60 ms of a 300 ms run on the development VM
    (issue #11). So the collector is off until the command's start-up is over
    (``audit.cli.options.started``: what exists then is frozen, never walked again, and collection
    resumes for what the audit makes), and everything left is frozen before the process ends.
    ``main()`` itself, as the tests call it, leaves the collector alone.
    """
    gc.disable()
    options._short_lived = True
    try:
        code = main()
    finally:
        gc.freeze()
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        argv_n = _normalize_argv(args_list)
        parser = build_parser(argv_n[0] if argv_n else None)
        args = parser.parse_args(argv_n)
        if args.command != "run":
            started()  # only a run has a long start-up (the plugins); it says when it is over
        return int(args.func(args))
    except UsageError as exc:  # messages may quote host paths and content: shown, never raw
        text = _shown(str(exc))
        print(f"hostaudit: {text}" if not text.startswith("hostaudit") else text, file=sys.stderr)
        return 2
    except HostauditError as exc:  # e.g. duplicate check ids: start-up stops, nothing audited
        print(f"hostaudit: {_shown(str(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug must still end in one line and a non-zero code, not a traceback
        print(f"hostaudit: internal error: {type(exc).__name__}: {_shown(str(exc))}", file=sys.stderr)
        if os.environ.get("HOSTAUDIT_DEBUG"):
            raise
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    entry()
