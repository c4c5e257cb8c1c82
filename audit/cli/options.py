"""Options and helpers shared by sub-commands: the target and report options of ``run``, the policy
options, loading plugins and the policy."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from typing import Any

from audit.errors import UsageError
from audit.model import Severity

#: Checks take milliseconds; a check past this is stuck (a plugin, or a pathological input file).
DEFAULT_CHECK_TIMEOUT = 10.0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value >= 0 and value < 1e6):
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
    return value


def _severity(text: str) -> Severity:
    try:
        return Severity.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _id_glob(text: str) -> str:
    from audit.policy import check_id_glob

    try:
        return check_id_glob(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _statuses(text: str) -> frozenset[str]:
    from audit.model import Status

    known = [s.value for s in Status]
    wanted = frozenset(w.strip().lower() for w in text.split(",") if w.strip())
    unknown = sorted(wanted - set(known))
    if not wanted or unknown:
        raise argparse.ArgumentTypeError(f"not statuses: {text!r} (any of {', '.join(known)}, comma-separated)")
    return wanted


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a whole number >= 1: {text!r}")
    return value


def _file_mode(text: str) -> int:
    try:
        value = int(text, 8)
    except ValueError:
        value = -1
    if not 0 <= value <= 0o777:
        raise argparse.ArgumentTypeError(f"not a file mode such as 0640: {text!r}")
    return value


def _source_prefix(text: str) -> str | None:
    from reports.sarif import source_prefix

    try:
        return source_prefix(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size()`` finds it ($COLUMNS, else the
    terminal of stdout, else 80), without importing shutil: argparse imports it to make each of the
    ~60 formatters building a parser takes, some milliseconds of every run (issue #11)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, its width found without shutil (see ``_columns``)."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position, _columns() - 2 if width is None else width)


class RawDescriptionHelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """``argparse.RawDescriptionHelpFormatter`` with the width of ``HelpFormatter``."""


class Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> Any:  # one clear line, exit 2
        raise UsageError(f"{self.prog}: {message}")


def add_run_options(p: argparse.ArgumentParser) -> None:
    target = p.add_mutually_exclusive_group()
    target.add_argument("--root", metavar="DIR", help="audit the tree at DIR (an unbooted image) instead of this host")
    target.add_argument("--image", metavar="FILE",
                        help="audit the disk image FILE (raw or qcow2) without mounting or booting it: read only, "
                             "its ext2/3/4 root through debugfs (e2fsprogs; qcow2 also needs qemu-img, from "
                             "qemu-utils), a root on LVM, XFS or btrfs through libguestfs (libguestfs-tools)")
    p.add_argument("--image-backend", choices=("auto", "debugfs", "libguestfs"), default="auto",
                   help="how --image reads the image: auto (default: debugfs when it finds an ext2/3/4 root, "
                        "else libguestfs), debugfs or libguestfs")
    target.add_argument("--snapshot", metavar="FILE|DIR", action="append",
                        help="audit a snapshot made by 'hostaudit collect' or collect.sh; a directory of them, or "
                             "this option repeated, audits them all in one run (a fleet: a table of hosts, worst "
                             "first; -o fleet.json, .xml, .html, .prom, --fix-script DIR)")
    p.add_argument("--format", default="text", metavar="FMT",
                   help="what goes to stdout: text (default), json, junit, html, prometheus, sarif, codequality")
    p.add_argument("-o", "--output", action="append", default=[], metavar="[FORMAT:]PATH",
                   help="also write a report to PATH; format from the suffix (.json, .txt, .xml JUnit, .html, "
                        ".sh remediation script, .prom Prometheus textfile, .sarif SARIF 2.1.0, .codequality.json "
                        "GitLab code quality) or named before a colon (codequality:gl-code-quality.json); "
                        "repeatable")
    p.add_argument("--source-prefix", type=_source_prefix, metavar="DIR",
                   help="SARIF and code quality reports: the folder of the repository that holds the audited "
                        "root's files, so /etc/default/grub is reported at DIR/etc/default/grub (default: the "
                        "root's files are at the repository root)")
    p.add_argument("--mode", type=_file_mode, metavar="OCTAL",
                   help="permissions of the report files written (default: those of the file replaced; new "
                        "files 0640, .prom 0644)")
    p.add_argument("--history", metavar="DIR",
                   help="also keep this run's JSON report in DIR (DIR/<UTC time>.json, DIR/latest.json); "
                        "'hostaudit diff --history DIR' says what changed since the run before")
    p.add_argument("--keep", type=_positive, default=30, metavar="N",
                   help="with --history: keep the newest N reports (default 30)")
    p.add_argument("--fix-script", metavar="PATH",
                   help="write a bash script with the remediation of the failed checks (never run by hostaudit)")
    p.add_argument("--select", action="append", default=[], metavar="GLOB", help="run only these check ids")
    p.add_argument("--ignore", action="append", default=[], metavar="GLOB", help="skip these check ids")
    p.add_argument("--fail-on", type=_severity, default=Severity.LOW, metavar="SEVERITY",
                   help="lowest severity whose failure sets exit code 1: info, low, medium, high or critical"
                        " (default: low)")
    p.add_argument("--strict", action="store_true", help="warnings count as failures for the exit code")
    p.add_argument("--require", action="append", default=[], type=_id_glob, metavar="GLOB",
                   help="these check ids must be checked: a skip or error counts as a failure (adds to the "
                        "policy's [gate] required); repeatable")
    p.add_argument("--show", type=_statuses, metavar="STATUSES",
                   help="text output: only results of these statuses, e.g. fail,warn,error (the summary line "
                        "still counts every result)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print nothing but errors and required checks that could not be checked; use the exit code")
    p.add_argument("--check-timeout", type=_seconds, default=DEFAULT_CHECK_TIMEOUT, metavar="SECONDS",
                   help="end the run when one check takes longer, with the reports of what finished and that check "
                        f"as an error (default {DEFAULT_CHECK_TIMEOUT:g}; 0: no limit)")
    p.add_argument("--no-entry-points", action="store_true", help="run built-in checks only")
    add_policy_options(p)


def add_policy_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", metavar="NAME",
                   help="built-in policy profile: kvm-host (default), kvm-host-multitenant")
    p.add_argument("--policy", metavar="FILE", help="TOML policy file (extends a profile; overrides, waivers)")


def started() -> None:
    """Start-up is over (see ``audit.cli.main.entry``): what exists now lives until exit, so it is
    frozen out of the collector's sight, and collection resumes for what comes next. Nothing to do
    where the collector was never turned off (``main()`` called in-process, as the tests do)."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def finishing() -> None:
    """What a command has read now lives until exit, and all it does is make its output from it and
    end (``cpu baseline`` over thousands of hosts): the collector is turned off again, since it
    would walk that output again and again as it is built (a third of the time building
    ``cpu baseline``'s document for 10,000 hosts). Nothing to do in-process (the tests' ``main()``)."""
    if _short_lived:
        gc.freeze()
        gc.disable()


#: set by ``audit.cli.main.entry``: this process ends when its command does
_short_lived = False


def _plugins(args: argparse.Namespace) -> Any:
    from audit.plugins import make_plugins

    return make_plugins(entry_points=not getattr(args, "no_entry_points", False))


def use_color(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ


def load_policy(args: argparse.Namespace) -> Any:
    from audit.policy import load_policy as load

    return load(profile=getattr(args, "profile", None), path=getattr(args, "policy", None))


