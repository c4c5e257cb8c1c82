"""``hostaudit [run]``: audit this host, an image root or a snapshot, and write the reports."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from audit.cli.options import RawDescriptionHelpFormatter, _plugins, add_run_options, load_policy, started, use_color
from audit.errors import UsageError

RUN_DESCRIPTION = """\
Audit this host (default), an unbooted image root (--root), a disk image
(--image) or snapshots made by 'hostaudit collect' (--snapshot) against a
policy, and say check by check whether it is tuned for running KVM guests, with
the evidence and the commands that fix what is wrong. Reads only: nothing on the audited host is changed or executed.
Writes: the report to stdout (--format), and the files named by -o, --fix-script
and --history.

statuses:   pass, warn, fail, error (the check could not run), skip (could not
            know: not a pass), waived (a failure the policy accepts)
severities: info < low < medium < high < critical (--fail-on, [severity] in a policy)
"""

RUN_EPILOG = """\
exit codes:
  0  nothing failed at or above --fail-on (warnings too with --strict)
  1  a failure at or above --fail-on, or a required check (--require, [gate]
     required) that failed or could not be checked
  2  usage or input error: nothing audited, or a report could not be written
  3  no failure, but a check errored or none could run (an honest "unknown")

examples:
  audit this host, a table on the terminal:
    hostaudit
  gate an image in CI: JUnit and HTML reports, a fix script for the image, and
  the kernel and boot checks must be known, not skipped:
    hostaudit --root /mnt/image --require 'kernel.*' --require 'boot.*' \\
        -o report.xml -o report.html --fix-script fix.sh
  a qcow2 or raw disk image, without mounting or booting it:
    hostaudit --image host.qcow2 -o report.html
  a fleet of snapshots collected from each host, problems only:
    hostaudit --snapshot snapshots/ --show fail,warn,error -o fleet.html
"""


def register(sub: Any) -> None:
    run = sub.add_parser("run", help="audit this host or an image root (the default command)",
                         description=RUN_DESCRIPTION, epilog=RUN_EPILOG,
                         formatter_class=RawDescriptionHelpFormatter)
    add_run_options(run)
    run.set_defaults(func=cmd_run)


#: What any Linux root holds; a directory with none of them is not an image (an empty folder, /proc).
SYSTEM_DIRS = ("/etc", "/usr", "/boot", "/lib", "/proc")


def _is_dir(host: Any, path: str) -> bool:
    try:
        return bool(host.kind(path) == "dir")
    except Exception:  # a loop or an unreadable entry: not a usable directory
        return False


def make_host(args: argparse.Namespace) -> Any:
    from audit.host.core import Host

    if getattr(args, "snapshot", None):
        from audit.host.snapshot import load_snapshot_host

        (path,) = args.snapshot  # several, or a directory: a fleet (is_fleet)
        return load_snapshot_host(path)  # raises UsageError on a bad snapshot
    if getattr(args, "image", None):
        from audit.host.images import image_host

        return image_host(args.image, backend=getattr(args, "image_backend", "auto"))  # ImageError: exit 2
    if args.root:
        if not os.path.isdir(args.root):
            raise UsageError(f"--root {args.root}: not a directory")
        host = Host.from_root(args.root)
        if host.mode.value == "image" and not any(_is_dir(host, d) for d in SYSTEM_DIRS):
            raise UsageError(f"--root {args.root}: nothing to audit here (none of {', '.join(SYSTEM_DIRS)}): "
                             "give the root directory of an image")
        return host
    return Host.live()


def terminal_width(stream: Any) -> int | None:
    """The width of the terminal ``stream`` writes to; None when it is not one (a CI log, a pipe)."""
    try:
        if not stream.isatty():
            return None
        return os.get_terminal_size(stream.fileno()).columns or None
    except (AttributeError, OSError, ValueError):
        return None


def is_fleet(args: argparse.Namespace) -> bool:
    """``--snapshot`` given more than once, or naming a directory: every snapshot in one run."""
    snapshots = getattr(args, "snapshot", None) or []
    return len(snapshots) > 1 or any(os.path.isdir(s) for s in snapshots)


def cmd_run(args: argparse.Namespace) -> int:
    if is_fleet(args):
        started()  # before the workers fork: frozen objects are not copied on write by collections
        from audit.cli.fleet import cmd_fleet
        from reports.output import check_fleet_outputs

        check_fleet_outputs(args.output, args.source_prefix)
        return cmd_fleet(args)
    from audit.engine import AuditInterrupted, ExitCode, exit_code, run_audit
    from reports import journal, output

    plugins = _plugins(args)
    extra = output.plugin_reporters(plugins.pm)
    formats = [output.output_spec(spec, extra) for spec in args.output]  # before auditing
    if args.fix_script:
        formats.append((args.fix_script, "fix"))
    stdout_formats = [*output.STDOUT_FORMATS, *(k.lstrip(".") for k in extra)]
    if args.format not in stdout_formats:
        raise UsageError(f"--format {args.format}: unknown format (one of: {', '.join(stdout_formats)})")
    if args.source_prefix is not None and not any(
            f in output.ONE_HOST_FORMATS for f in (*(fmt for _, fmt in formats), args.format)):
        raise UsageError("--source-prefix: only SARIF and code quality reports use it (-o report.sarif, "
                         "-o codequality:PATH, --format sarif)")
    policy = load_policy(args)
    host = make_host(args)
    started()

    def emit(report: Any) -> int:
        """Every report of ``report`` written (each on its own: one that fails costs only itself); the exit code."""
        code = int(exit_code(report))  # judged by report.gate, as every report is
        failed = False
        for path, fmt in formats:
            try:
                output.write_atomic(path, output.render(fmt, report, exit_code=code, extra=extra,
                                                        source_prefix=args.source_prefix), mode=args.mode)
            except OSError as exc:
                print(f"hostaudit: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
                failed = True
            except Exception as exc:  # a plugin reporter (or a bug) must not cost the other reports
                print(f"hostaudit: the {fmt} report {path} could not be made: {type(exc).__name__}: {exc}",
                      file=sys.stderr)
                failed = True
        if args.history:
            from reports import history

            try:
                history.record(args.history, output.render("json", report, exit_code=code), mode=args.mode,
                               started_at=report.started_at, keep=args.keep)
            except (UsageError, OSError) as exc:
                print(f"hostaudit: {exc}", file=sys.stderr)
                failed = True
        if args.quiet:
            from reports.sanitize import printable

            for r, j in report.judged():
                # what -q leaves unsaid would otherwise be a mystery: errors, and required checks not checked
                if r.status.value == "error" or j.verdict.value == "required_unknown":
                    print(f"hostaudit: {r.id}: {printable(j.headline(r.outcome.message))}", file=sys.stderr)
        else:
            try:
                if args.format == "text" and journal.is_journal(sys.stdout):
                    text = journal.render(report, exit_code=code)
                else:
                    text = output.render(args.format, report, exit_code=code, color=use_color(sys.stdout),
                                         extra=extra, show=args.show, width=terminal_width(sys.stdout),
                                         source_prefix=args.source_prefix)
            except Exception as exc:
                print(f"hostaudit: the {args.format} report could not be made: {type(exc).__name__}: {exc}",
                      file=sys.stderr)
                failed = True
            else:
                sys.stdout.write(text)
        return int(ExitCode.USAGE) if failed else code

    def timed_out(report: Any) -> None:
        """The watchdog's end: the reports of what finished, then the process ends (the stuck check
        cannot be stopped otherwise)."""
        code = emit(report)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    try:
        report = run_audit(plugins, host, policy, select=args.select, ignore=args.ignore, fail_on=args.fail_on,
                           strict=args.strict, require=args.require, check_timeout=args.check_timeout or None,
                           on_timeout=timed_out)
    except AuditInterrupted as stop:
        emit(stop.report)
        return 130
    return emit(report)
