"""``hostaudit collect``: capture what the facts read into a snapshot, or print the agentless sh collector.

The paths come from the registry, never from a list kept here: every ``@fact(paths=...)`` (all fact
modules imported first), every check's ``reads`` and the ``hostaudit_collect_paths`` hook.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from audit.capture import gather_patterns
from audit.errors import UsageError
from audit.host.collect import collect_document, render_document, render_script
from audit.host.snapshot import TOTAL_CAP


# ------------------------------------------------------------------------------------------------
# The command
# ------------------------------------------------------------------------------------------------
def _write(text: str, output: str | None) -> None:
    if output in (None, "-"):
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from reports.output import write_atomic

    try:
        write_atomic(output, text)  # type: ignore[arg-type]
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None


def _size(text: str) -> int:
    from audit.policy import parse_bytes

    return parse_bytes(text, "--max-size")


def cmd_collect(args: argparse.Namespace) -> int:
    patterns = gather_patterns(entry_points=not args.no_entry_points)
    for problem in patterns.problems:
        print(f"hostaudit: warning: {problem}", file=sys.stderr)
    if args.script:
        if args.root or args.image:
            raise UsageError("--script takes no --root or --image: give the root to the script (sh collect.sh ROOT)")
        _write(render_script(patterns, total_cap=args.max_size), args.output)
        return 0
    if args.image:
        from audit.host.images import collect_image_document

        doc = collect_image_document(args.image, patterns, total_cap=args.max_size, backend=args.image_backend)
    else:
        doc = collect_document(args.root or "/", patterns, total_cap=args.max_size)

    _write(render_document(doc), args.output)
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "collect",
        help="capture the files hostaudit reads into a snapshot (audit it later with run --snapshot)",
        description="Capture every file, directory listing and link the facts read into one JSON snapshot; "
        "--script prints a POSIX sh collector for hosts without Python.",
    )
    target = p.add_mutually_exclusive_group()
    target.add_argument("--root", metavar="DIR",
                        help="capture the tree at DIR (an unbooted image) instead of this host")
    target.add_argument("--image", metavar="FILE",
                        help="capture from the disk image FILE (raw or qcow2) without mounting it: read only, "
                             "through debugfs (e2fsprogs; qcow2 also needs qemu-img) or, for a root on LVM, XFS "
                             "or btrfs, libguestfs (libguestfs-tools)")
    p.add_argument("--image-backend", choices=("auto", "debugfs", "libguestfs"), default="auto",
                   help="how --image reads the image: auto (default), debugfs or libguestfs")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the snapshot to FILE (atomically); '-' or none: stdout")
    p.add_argument("--script", action="store_true",
                   help="print the sh collector instead: ssh HOST sh -s < collect.sh > HOST.snap")
    p.add_argument("--max-size", type=_size_arg, default=TOTAL_CAP, metavar="SIZE",
                   help=f"refuse to store more than SIZE of content (default {TOTAL_CAP // (1 << 20)}M)")
    p.add_argument("--no-entry-points", action="store_true", help="built-in facts and checks only")
    p.set_defaults(func=cmd_collect)


def _size_arg(text: str) -> int:
    try:
        return _size(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
