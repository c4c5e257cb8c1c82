"""``hostaudit collect``: capture what the facts read into a snapshot, or print the agentless sh collector.

The paths come from the registry, never from a list kept here: every ``@fact(paths=...)`` (all fact
modules imported first), every check's ``reads`` and the ``hostaudit_collect_paths`` hook.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import pkgutil
import re
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from audit import __version__
from audit.errors import FactError, FactUnavailable, UsageError
from audit.fs import MAX_READ
from audit.snapshot import GLOB_FILE_CAP, TOTAL_CAP, has_magic

#: Paths the Host itself looks at (``has_runtime``): only what is there, never their content.
KIND_ONLY = ("/proc/self",)


@dataclass(frozen=True, slots=True)
class Patterns:
    paths: tuple[str, ...]  # may hold "{release}" and globs
    kind_only: tuple[str, ...] = KIND_ONLY
    problems: tuple[str, ...] = ()  # plugins whose hook failed (said on stderr, never silent)


def import_fact_modules() -> None:
    """Import audit.facts and every audit/facts_*.py so FACTS holds every built-in fact."""
    import audit

    importlib.import_module("audit.facts")
    for info in pkgutil.iter_modules(audit.__path__):
        if info.name.startswith("facts_"):
            importlib.import_module(f"audit.{info.name}")


def pattern_cap(pattern: str) -> tuple[str, int]:
    """A declared path and the most of a file's content to capture: a leading "?" asks only where
    it is and what kind (a kernel image, a boot binary, a tool), a glob gets the glob cap, a path
    named literally the reader's cap."""
    if pattern.startswith("?"):
        return pattern[1:], 0
    comps = [c for c in pattern.split("/") if c]
    literal = not comps or not has_magic(comps[-1])
    return pattern, MAX_READ if literal else GLOB_FILE_CAP


def _from_reads(read: str) -> str | None:
    """A check's ``reads`` entry as a pattern: "/boot/config-<release>" -> "/boot/config-{release}"."""
    if not read.startswith("/"):
        return None  # "boot configuration", "kernel config": descriptions, covered by facts
    return re.sub(r"<[^<>/]*>", lambda m: "{release}" if m.group(0) == "<release>" else "*", read)


def gather_patterns(*, entry_points: bool = True) -> Patterns:
    from audit.engine import collect_checks
    from audit.host import FACTS
    from audit.plugins import make_plugins

    plugins = make_plugins(entry_points=entry_points)  # imports plugins, whose facts register too
    import_fact_modules()
    found: list[str] = [p for spec in FACTS.values() for p in spec.paths]
    problems = [f"{p.plugin}: {p.message}" for p in plugins.problems]
    try:
        declared, _ = collect_checks(plugins)
    except Exception as exc:  # duplicate ids etc.: collect what the facts say anyway
        declared = []
        problems.append(f"checks: {exc}")
    for d in declared:
        found += [p for r in d.check.reads if (p := _from_reads(r))]
    for impl in plugins.pm.hook.hostaudit_collect_paths.get_hookimpls():
        try:
            extra = list(impl.function() or ())
            bad = [p for p in extra if not isinstance(p, str) or not p.startswith("/")]
            if bad:
                raise TypeError(f"returned {bad[0]!r}, not an absolute path")
            found += extra
        except Exception as exc:
            problems.append(f"{impl.plugin_name}: hostaudit_collect_paths failed: {type(exc).__name__}: {exc}")
    return Patterns(paths=tuple(dict.fromkeys(found)), problems=tuple(problems))


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def collect_document(root: str, patterns: Patterns, *, total_cap: int = TOTAL_CAP,
                     clock: Callable[[], str] = _utc_now) -> dict[str, Any]:
    """The JSON snapshot document of the tree at ``root`` ("/" is this host)."""
    from audit import facts
    from audit.fs import RootFS
    from audit.host import Host
    from audit.model import TargetMode
    from audit.snapshot import Recorder, expand_release

    try:
        fs = RootFS(root)
    except (NotADirectoryError, FileNotFoundError):
        raise UsageError(f"--root {root}: not a directory") from None
    live = fs.root == "/"
    host = Host(fs, mode=TargetMode.LIVE if live else TargetMode.IMAGE, root=fs.root)

    def attempt(get: Callable[[], str]) -> str | None:
        try:
            return get()
        except (FactUnavailable, FactError):
            return None

    release = attempt(lambda: host.kernel_release.release)
    rec = Recorder(fs, total_cap=total_cap)
    for pattern, cap in sorted(map(pattern_cap, patterns.paths), key=lambda pc: -pc[1]):  # content first
        rec.add(expand_release(pattern, release), cap=cap)
    for path in patterns.kind_only:
        rec.add(path, kind_only=True)
    return rec.document(
        mode="live" if live else "image",
        root=fs.root,
        hostname=attempt(lambda: host.fact(facts.hostname)),
        collected_at=clock(),
        tool_version=__version__,
        patterns=patterns.paths,
    )


# ------------------------------------------------------------------------------------------------
# The agentless collector: a POSIX sh script generated from the same patterns
# ------------------------------------------------------------------------------------------------
_SH_HEAD = r"""#!/bin/sh
# collect.sh: generated by hostaudit @VERSION@ from its fact registry; do not edit, regenerate with
#   hostaudit collect --script > collect.sh
#
# Captures, read-only, the files hostaudit's facts read, under ROOT (default /), for hosts without
# Python:
#   ssh HOST sh -s < collect.sh > HOST.snap          (or: ssh HOST sh -s -- /mnt/image < collect.sh)
#   sh collect.sh /path/to/root > image.snap
#   hostaudit run --snapshot HOST.snap               (hostaudit cpu compare/baseline take it too)
#
# Output: the hostaudit line format (documented in hostaudit's audit/snapshot.py):
#   hostaudit-snapshot 1                   first line
#   meta KEY VALUE                         tool, collected_at, mode (live|image), root
#   dir PATH  + "name NAME" lines          a directory and its listing ("dir PATH -": no listing)
#   link PATH TARGET                       a symbolic link and its raw target
#   kind PATH char|block|fifo|socket|other
#   absent PATH                            looked for, not there
#   file PATH b64|hex + content lines + "."   a regular file, base64 (or od hex) encoded
#   file PATH large SIZE | denied | failed  a file not captured, and why
#   end                                    last line: without it the snapshot is truncated
# A field made only of [A-Za-z0-9._/+:@,=~-] is written as is; any other is "%" + base64 of its
# bytes ("!" + hex without base64).
#
# Safety: nothing is written on the host. Symbolic links are resolved here, component by
# component, inside ROOT (an absolute target is re-rooted, ".." stops at ROOT), and a file is read
# only after "cd -P" + "pwd -P" shows its directory inside ROOT. Only regular files are read,
# never FIFOs or devices; a file is read only up to a cap, the whole snapshot stops at a total cap.
set -u
LC_ALL=C
export LC_ALL
GLOB_CAP=@GLOB_CAP@
LITERAL_CAP=@LITERAL_CAP@
TOTAL_CAP=@TOTAL_CAP@
TOTAL=0
if [ $# -gt 1 ]; then
	echo "usage: sh collect.sh [ROOT] > host.snap" >&2
	exit 2
fi
ROOT=${1:-/}
R=$(cd -P -- "$ROOT/" 2>/dev/null && pwd -P) || {
	echo "collect.sh: $ROOT: not a directory" >&2
	exit 2
}
[ "$R" != / ] || R=
if command -v base64 >/dev/null 2>&1; then ENC=b64; else ENC=hex; fi
if [ "$(printf abc | head -c 2 2>/dev/null)" = ab ]; then HEADC=1; else HEADC=0; fi
if command -v readlink >/dev/null 2>&1; then RL=1; else RL=0; fi
SEEN='
'

# field VALUE: F = VALUE as a record field
field() {
	case $1 in
	'' | *[!A-Za-z0-9._/+:@,=~-]*)
		if [ "$ENC" = b64 ]; then
			F=%$(printf '%s' "$1" | base64 | tr -d '\n')
		else
			F=!$(printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n')
		fi
		;;
	*) F=$1 ;;
	esac
}

# was KEY: true when KEY was recorded before; seen KEY: the same, and record it
was() {
	case $SEEN in *"
$1
"*) return 0 ;; esac
	return 1
}

seen() {
	was "$1" && return 0
	SEEN="$SEEN$1
"
	return 1
}

encode() {
	if [ "$ENC" = b64 ]; then base64; else od -An -v -tx1; fi
}

# inside DIR: I = the physical location of DIR (a path on this machine), if it is inside the root
inside() {
	I=$(cd -P -- "$1" 2>/dev/null && pwd -P) || return 1
	case $I/ in
	"$R"/*) return 0 ;;
	esac
	echo "collect.sh: $1 resolves outside $ROOT; not read" >&2
	return 1
}

emit_absent() {
	field "${1:-/}"
	seen "absent $F" || echo "absent $F"
}

emit_kind() {
	field "${1:-/}"
	seen "kind $F" || echo "kind $F $2"
}

# linktarget HOSTPATH: T = the raw target of a symbolic link
linktarget() {
	if [ "$RL" = 1 ]; then
		T=$(readlink -- "$1" 2>/dev/null) || T=
	else
		T=$(ls -ld -- "$1" 2>/dev/null) || T=
		T=${T#*" $1 -> "}
	fi
}

# walk PATH follow|nofollow CAP: resolve PATH inside the root the way hostaudit does, recording
# every link met and the first missing component. RES = the resolved path ("" is the root).
walk() {
	W_pend=$1
	W_done=
	W_links=0
	while :; do
		while :; do
			case $W_pend in
			/*) W_pend=${W_pend#/} ;;
			*) break ;;
			esac
		done
		[ -n "$W_pend" ] || break
		case $W_pend in
		*/*)
			W_part=${W_pend%%/*}
			W_pend=${W_pend#*/}
			;;
		*)
			W_part=$W_pend
			W_pend=
			;;
		esac
		case $W_part in
		.) continue ;;
		..)
			W_done=${W_done%/*}
			continue
			;;
		esac
		W_c=$W_done/$W_part
		if [ -h "$R$W_c" ]; then
			if [ -z "$W_pend" ] && [ "$2" = nofollow ]; then
				W_done=$W_c
				break
			fi
			W_links=$((W_links + 1))
			if [ -z "$R" ] && [ "$W_c" = /proc/self ]; then
				T=$$ # readlink would name its own, short-lived, process
			elif [ -z "$R" ] && [ "$W_c" = /proc/thread-self ]; then
				T=$$/task/$$
			else
				linktarget "$R$W_c"
			fi
			[ -n "$T" ] || return 1
			field "$W_c"
			W_f=$F
			field "$T"
			seen "link $W_f" || echo "link $W_f $F"
			[ "$W_links" -le 40 ] || return 1
			case $T in
			/*) W_done= ;;
			esac
			W_pend=$T/$W_pend
			continue
		fi
		if [ ! -e "$R$W_c" ]; then
			emit_absent "$W_c"
			return 1
		fi
		if [ -n "$W_pend" ] && [ ! -d "$R$W_c" ]; then
			capture "$W_c" "$3" list
			return 1
		fi
		W_done=$W_c
	done
	RES=$W_done
}

# capture PATH CAP list|nolist: record what is at the resolved PATH (never a symbolic link)
capture() {
	C=$R$1
	[ -n "$C" ] || C=/
	if [ -h "$C" ]; then return 0; fi
	if [ -f "$C" ]; then
		cap_file "$1" "$2"
	elif [ -d "$C" ]; then
		cap_dir "$1" "$3"
	elif [ -c "$C" ]; then
		emit_kind "$1" char
	elif [ -b "$C" ]; then
		emit_kind "$1" block
	elif [ -p "$C" ]; then
		emit_kind "$1" fifo
	elif [ -S "$C" ]; then
		emit_kind "$1" socket
	elif [ -e "$C" ]; then
		emit_kind "$1" other
	else
		emit_absent "$1"
	fi
}

cap_dir() {
	field "${1:-/}"
	D_f=$F
	if [ "$2" != list ]; then
		seen "dir- $D_f" || echo "dir $D_f -"
		return 0
	fi
	seen "dir $D_f" && return 0
	inside "$R$1/" || return 0
	echo "dir $D_f"
	for D_e in "$I"/* "$I"/.[!.]* "$I"/..?*; do
		[ -e "$D_e" ] || [ -h "$D_e" ] || continue
		field "${D_e##*/}"
		echo "name $F"
	done
}

cap_file() {
	field "$1"
	P_f=$F
	was "filed $P_f" && return 0
	inside "$R${1%/*}/" || return 0
	P_h=$I/${1##*/}
	if [ -h "$P_h" ] || [ ! -f "$P_h" ]; then return 0; fi
	if ! { true <"$P_h"; } 2>/dev/null; then # cannot be opened for reading
		seen "filed $P_f" || echo "file $P_f denied"
		return 0
	fi
	if [ "$HEADC" = 1 ]; then
		P_s=$(head -c $(($2 + 1)) 2>/dev/null <"$P_h" | wc -c)
	else
		P_s=$(wc -c 2>/dev/null <"$P_h")
	fi
	P_s=$((P_s + 0))
	if [ "$P_s" -gt "$2" ]; then
		seen "filel $P_f $2" || echo "file $P_f large $P_s"
		return 0
	fi
	TOTAL=$((TOTAL + P_s))
	if [ "$TOTAL" -gt "$TOTAL_CAP" ]; then
		echo "collect.sh: more than $TOTAL_CAP bytes to capture (at $1); stopped, the output is incomplete" >&2
		exit 3
	fi
	seen "filed $P_f"
	if P_d=$(encode 2>/dev/null <"$P_h"); then
		echo "file $P_f $ENC"
		[ -z "$P_d" ] || printf '%s\n' "$P_d"
		echo .
	else
		echo "file $P_f failed"
	fi
}

echo "hostaudit-snapshot 1"
echo "meta tool collect.sh-@VERSION@"
echo "meta collected_at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
if [ -z "$R" ]; then echo "meta mode live"; else echo "meta mode image"; fi
field "${R:-/}"
echo "meta root $F"
"""

_SH_TAIL = """
echo end
"""


def _sh_case_pattern(component: str) -> str:
    """A glob component as an sh ``case`` pattern: only * ? [ ] ! keep their meaning."""
    return "".join(c if re.fullmatch(r"[A-Za-z0-9._*?\[\]!-]", c) else "\\" + c for c in component)


def _sh_for_pattern(pattern: str, cap: int, *, kind_only: bool = False) -> list[str]:
    # "{release}" is any release here: the script cannot know which one hostaudit will pick, and a
    # superset answers the same.
    comps = [c for c in pattern.replace("{release}", "*").split("/") if c not in ("", ".")]
    out = [f"# {pattern}"]
    indent = ""
    base = ""  # sh words for the resolved directory so far
    literal: list[str] = []
    depth = 0
    for comp in comps:
        if not has_magic(comp):
            literal.append(comp)
            continue
        depth += 1
        d, f, n, h = f"_d{depth}", f"_f{depth}", f"_n{depth}", f"_h{depth}"
        where = base + "".join("/" + shlex.quote(c) for c in literal) or "/"
        out += [
            f"{indent}if walk {where} follow {cap}; then",
            f"{indent}\t{d}=$RES",
            f'{indent}\tcapture "${d}" {cap} list',
            f'{indent}\tif inside "$R${d}/"; then',
            f"{indent}\t\t{h}=$I",
            f'{indent}\t\tfor {f} in "${h}"/* "${h}"/.[!.]* "${h}"/..?*; do',
            f'{indent}\t\t\t[ -e "${f}" ] || [ -h "${f}" ] || continue',
            f"{indent}\t\t\t{n}=${{{f}##*/}}",
            f"{indent}\t\t\tcase ${n} in {_sh_case_pattern(comp)}) ;; *) continue ;; esac",
        ]
        indent += "\t\t\t"
        base = f'"${d}/${n}"'
        literal = []
    where = base + "".join("/" + shlex.quote(c) for c in literal) or "/"
    listing = "nolist" if kind_only else "list"
    out.append(f'{indent}if walk {where} follow {cap}; then capture "$RES" {cap} {listing}; fi')
    for _ in range(depth):
        indent = indent[:-3]
        out += [f"{indent}\t\tdone", f"{indent}\tfi", f"{indent}fi"]
    return out


def render_script(patterns: Patterns, *, total_cap: int = TOTAL_CAP) -> str:
    head = (_SH_HEAD.replace("@VERSION@", __version__).replace("@GLOB_CAP@", str(GLOB_FILE_CAP))
            .replace("@LITERAL_CAP@", str(MAX_READ)).replace("@TOTAL_CAP@", str(total_cap)))
    body: list[str] = []
    # Larger caps first: the script records a file once, so a content capture must come before a
    # "where and what kind only" one for the same file.
    for pattern, size in sorted(map(pattern_cap, patterns.paths), key=lambda pc: -pc[1]):
        cap = {GLOB_FILE_CAP: "$GLOB_CAP", MAX_READ: "$LITERAL_CAP"}.get(size, str(size))
        body += _sh_for_pattern(pattern, cap)  # type: ignore[arg-type]
    for path in patterns.kind_only:
        body += _sh_for_pattern(path, "$GLOB_CAP", kind_only=True)  # type: ignore[arg-type]
    return head + "\n".join(body) + "\n" + _SH_TAIL


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
        if args.root:
            raise UsageError("--script takes no --root: give the root to the script (sh collect.sh ROOT)")
        _write(render_script(patterns, total_cap=args.max_size), args.output)
        return 0
    doc = collect_document(args.root or "/", patterns, total_cap=args.max_size)
    from audit.snapshot import render_document

    _write(render_document(doc), args.output)
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "collect",
        help="capture the files hostaudit reads into a snapshot (audit it later with run --snapshot)",
        description="Capture every file, directory listing and link the facts read into one JSON snapshot; "
        "--script prints a POSIX sh collector for hosts without Python.",
    )
    p.add_argument("--root", metavar="DIR", help="capture the tree at DIR (an unbooted image) instead of this host")
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
