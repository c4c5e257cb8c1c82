"""Capturing a host into a snapshot: the recorder behind ``hostaudit collect`` and the POSIX sh
collector it prints for hosts without Python.

Both capture the paths they are given (``Patterns``: what the facts, the checks and the plugins
declare, gathered by ``audit.capture``) and write the formats ``audit.host.snapshot`` loads.
"""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
import gzip
import json
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from audit import __version__
from audit.errors import FactError, FactUnavailable, UsageError
from audit.host import facts
from audit.host.core import Host
from audit.host.fs import MAX_READ, FileSource, RootFS, walk_inside
from audit.host.snapshot import (
    COMPRESS_FROM,
    FORMAT,
    GLOB_FILE_CAP,
    GLOB_MAGIC,
    SCHEMA_VERSION,
    TOTAL_CAP,
    SnapshotError,
)
from audit.model import TargetMode
from audit.record import Record

#: Paths the Host itself looks at (``has_runtime``): only what is there, never their content.
KIND_ONLY = ("/proc/self",)


class Patterns(Record):
    paths: tuple[str, ...]  # may hold "{release}" and globs
    kind_only: tuple[str, ...] = KIND_ONLY
    problems: tuple[str, ...] = ()  # plugins whose hook failed (said on stderr, never silent)


def pattern_cap(pattern: str) -> tuple[str, int]:
    """A declared path and the most of a file's content to capture: a leading "?" asks only where
    it is and what kind (a kernel image, a boot binary, a tool), a glob gets the glob cap, a path
    named literally the reader's cap."""
    if pattern.startswith("?"):
        return pattern[1:], 0
    comps = [c for c in pattern.split("/") if c]
    literal = not comps or not has_magic(comps[-1])
    return pattern, MAX_READ if literal else GLOB_FILE_CAP


class _Unresolved(Exception):
    """Internal: the collector's walk stops at a component that does not resolve."""

# ------------------------------------------------------------------------------------------------
# Capturing: the recorder used by ``hostaudit collect``
# ------------------------------------------------------------------------------------------------
def encode_content(data: bytes) -> dict[str, Any]:
    """How a file's bytes are stored in JSON: readable when small text, else (compressed) base64."""
    if len(data) >= COMPRESS_FROM:
        packed = gzip.compress(data, compresslevel=9, mtime=0)
        if len(packed) < len(data) * 0.9:
            return {"encoding": "gzip+base64", "data": base64.b64encode(packed).decode("ascii"), "size": len(data)}
    elif b"\0" not in data:  # a snapshot refuses NUL in text content: /proc/PID/cmdline, environ go as base64
        try:
            return {"encoding": "utf-8", "data": data.decode("utf-8"), "size": len(data)}
        except UnicodeDecodeError:
            pass
    return {"encoding": "base64", "data": base64.b64encode(data).decode("ascii"), "size": len(data)}


def has_magic(component: str) -> bool:
    return GLOB_MAGIC.search(component) is not None


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


class Recorder:
    """Captures paths and glob patterns from a FileSource into snapshot entries.

    Resolution mirrors RootFS and records what it meets, so SnapshotFS resolves the same way:
    every symlink where it is, every missing component as absent, directory listings wherever a
    glob is expanded or a named path is a directory.
    """

    def __init__(self, fs: FileSource, *, total_cap: int = TOTAL_CAP, glob_cap: int = GLOB_FILE_CAP,
                 literal_cap: int = MAX_READ) -> None:
        self.fs = fs
        self.entries: dict[str, dict[str, Any]] = {}
        self.caps: dict[str, int] = {}
        self.total_cap = total_cap
        self.glob_cap = glob_cap
        self.literal_cap = literal_cap
        self.stored = 0

    # -- resolution --------------------------------------------------------------------------------
    def walk(self, path: str, *, follow_last: bool = True, cap: int | None = None) -> str | None:
        """The physical path ``path`` designates (links recorded); None when it does not resolve."""

        def step(parent: str, name: str, more: bool) -> str | None:
            cand = f"{parent.rstrip('/')}/{name}"
            rec = self.entries.get(cand)
            if rec is None:
                try:
                    kind = self.fs.kind(cand, follow=False)
                except FactError as exc:
                    self.entries[cand] = {"type": "error", "error": exc.problem}
                    raise _Unresolved from None
                if kind is None:
                    self.entries[cand] = {"type": "absent"}
                    raise _Unresolved
                if kind == "link":
                    target = self.fs.readlink(cand)
                    if target is None:  # vanished meanwhile
                        self.entries[cand] = {"type": "absent"}
                        raise _Unresolved
                    rec = self.entries[cand] = {"type": "link", "target": target}
                elif kind != "dir":
                    self.capture(cand, cap if cap is not None else self.glob_cap)
                    rec = self.entries.get(cand)
                else:
                    rec = {"type": "dir"}
            if rec is None or rec["type"] in ("absent", "error"):
                raise _Unresolved
            if rec["type"] == "link":
                return str(rec["target"])
            if rec["type"] != "dir" and more:
                raise _Unresolved  # a file in the middle of a path: recorded, nothing below it
            return None

        try:
            return walk_inside(path, step, follow_last=follow_last)
        except (_Unresolved, FactError):  # a loop is recorded: SnapshotFS meets it too
            return None

    # -- capture of one resolved path ----------------------------------------------------------------
    def capture(self, phys: str, cap: int, *, listing: bool = True) -> None:
        old = self.entries.get(phys)
        retry = old is not None and old["type"] == "file" and "omitted" in old and cap > self.caps.get(phys, 0)
        if old is not None and old["type"] not in ("dir", "absent") and not retry:
            return
        if old is not None and old["type"] == "dir" and ("names" in old or "error" in old or not listing):
            return
        try:
            kind = self.fs.kind(phys, follow=False)
        except FactError as exc:
            self.entries[phys] = {"type": "error", "error": exc.problem}
            return
        if kind is None:
            self.entries[phys] = {"type": "absent"}
        elif kind == "file":
            self._file(phys, cap)
        elif kind == "dir":
            rec: dict[str, Any] = {"type": "dir"}
            if listing:
                try:
                    rec["names"] = sorted(self.fs.listdir(phys))
                except FactUnavailable:
                    rec = {"type": "absent"}
                except FactError as exc:
                    rec["error"] = exc.problem
            self.entries[phys] = rec
        elif kind == "link":  # only when asked not to follow
            target = self.fs.readlink(phys)
            self.entries[phys] = {"type": "link", "target": target} if target else {"type": "absent"}
        elif kind in ("char", "block"):
            self.entries[phys] = {"type": kind, **self._node_owner(phys)}
        else:
            self.entries[phys] = {"type": kind}

    def _node_owner(self, phys: str) -> dict[str, Any]:
        """A device node's mode, uid and gid (who may open /dev/kvm): none when they cannot be read."""
        try:
            found = self.fs.owner(phys)
        except (FactUnavailable, FactError):
            return {}
        if found is None:
            return {}
        mode, uid, gid = found
        return {"mode": f"{mode:04o}", "uid": uid, "gid": gid}

    def _file(self, phys: str, cap: int) -> None:
        self.caps[phys] = cap
        try:
            data = self.fs.read_bytes(phys, limit=cap)
        except FactUnavailable:
            self.entries[phys] = {"type": "absent"}
            return
        except FactError as exc:
            if exc.problem.startswith("larger than the"):
                self.entries[phys] = {"type": "file", "size": cap + 1,
                                      "omitted": f"larger than the {cap} byte cap of the collector"}
            else:
                self.entries[phys] = {"type": "file", "error": exc.problem}
            return
        rec = {"type": "file", **encode_content(data)}
        old = self.entries.get(phys)
        if old is not None and "data" in old:
            self.stored -= len(old["data"])
        self.stored += len(rec["data"])
        self.entries[phys] = rec
        if self.stored > self.total_cap:
            biggest = sorted(((len(r.get("data", "")), p) for p, r in self.entries.items()), reverse=True)[:3]
            shown = ", ".join(f"{p} ({n} bytes stored)" for n, p in biggest)
            raise SnapshotError(
                f"the snapshot would hold more than {self.total_cap} bytes (the cap); largest: {shown}"
            )

    # -- patterns ----------------------------------------------------------------------------------
    def add(self, pattern: str, *, kind_only: bool = False, cap: int | None = None) -> None:
        """Capture a path or a glob pattern (``*``, ``?``, ``[...]`` in any component).

        A file a glob matched gets the glob cap, a file named literally the reader's cap.
        """
        comps = [c for c in pattern.split("/") if c not in ("", ".")]
        if cap is None:
            cap = self.glob_cap if comps and has_magic(comps[-1]) else self.literal_cap
        self._expand("/", comps, cap, kind_only)

    def _expand(self, base: str, comps: list[str], cap: int, kind_only: bool) -> None:
        first = next((i for i, c in enumerate(comps) if has_magic(c)), None)
        if first is None:
            phys = self.walk("/".join([base.rstrip("/"), *comps]) or "/", cap=cap)
            if phys is not None:
                self.capture(phys, cap, listing=not kind_only)
            return
        prefix = "/".join([base.rstrip("/"), *comps[:first]]) or "/"
        phys = self.walk(prefix, cap=cap)
        if phys is None:
            return
        self.capture(phys, cap)
        rec = self.entries.get(phys, {})
        if rec.get("type") != "dir" or "names" not in rec:
            return
        rest = comps[first + 1 :]
        for name in rec["names"]:
            if not fnmatch.fnmatchcase(name, comps[first]):
                continue
            child = f"{phys.rstrip('/')}/{name}"
            if rest:
                target = self.walk(child, cap=cap)
                if target is not None:
                    self.capture(target, cap, listing=has_magic(rest[0]) if rest else True)
                    if self.entries.get(target, {}).get("type") == "dir":
                        self._expand(target, rest, cap, kind_only)
            else:
                target = self.walk(child, cap=cap)
                if target is not None:
                    self.capture(target, cap, listing=not kind_only)

    def document(self, *, mode: str, root: str, hostname: str | None, collected_at: str, tool_version: str,
                 patterns: Iterable[str]) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "schema_version": SCHEMA_VERSION,
            "tool_version": tool_version,
            "hostname": hostname,
            "collected_at": collected_at,
            "source": {"mode": mode, "root": root, "collector": "hostaudit collect"},
            "patterns": sorted(set(patterns)),
            "entries": dict(sorted(self.entries.items())),
        }


def render_document(doc: Mapping[str, Any]) -> str:
    """The JSON text of a snapshot: sorted keys, ASCII (undecodable file names survive as escapes)."""
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=True) + "\n"


#: Expand ``{release}`` in a declared path: the kernel release (escaped), or any when unknown.
def expand_release(pattern: str, release: str | None) -> str:
    return pattern.replace("{release}", glob_escape(release) if release else "*")


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def collect_document(root: str, patterns: Patterns, *, total_cap: int = TOTAL_CAP,
                     clock: Callable[[], str] = _utc_now) -> dict[str, Any]:
    """The JSON snapshot document of the tree at ``root`` ("/" is this host)."""
    try:
        fs = RootFS(root)
    except (NotADirectoryError, FileNotFoundError):
        raise UsageError(f"--root {root}: not a directory") from None
    live = fs.root == "/"
    return collect_from(fs, patterns, mode=TargetMode.LIVE if live else TargetMode.IMAGE, root=fs.root,
                        total_cap=total_cap, clock=clock)


def collect_from(fs: FileSource, patterns: Patterns, *, mode: TargetMode, root: str, total_cap: int = TOTAL_CAP,
                 clock: Callable[[], str] = _utc_now) -> dict[str, Any]:
    """The JSON snapshot document of what ``fs`` holds (a directory tree, a disk image's files):
    the declared patterns, content first, the kernel release filled in."""
    host = Host(fs, mode=mode, root=root)

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
        mode="live" if mode is TargetMode.LIVE else "image",
        root=root,
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
# Output: the hostaudit line format (documented in hostaudit's audit/host/snapshot.py):
#   hostaudit-snapshot 1                   first line
#   meta KEY VALUE                         tool, collected_at, mode (live|image), root
#   dir PATH  + "name NAME" lines          a directory and its listing ("dir PATH -": no listing)
#   link PATH TARGET                       a symbolic link and its raw target
#   kind PATH char|block|fifo|socket|other
#   kind PATH char|block MODE UID GID      a device node, its permission bits (octal) and owner
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
if stat -c %u / >/dev/null 2>&1; then STATC=1; else STATC=0; fi
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

# lsmode PERMS: M = the permission bits of an "ls -l" mode string ("crw-rw----") in octal digits
lsmode() {
	M_r=${1#?}
	M_v=0
	for M_t in 64:2048 8:1024 1:512; do
		M_m=${M_t%:*}
		M_c=${M_r%"${M_r#?}"}
		M_r=${M_r#?}
		[ "$M_c" = r ] && M_v=$((M_v + 4 * M_m))
		M_c=${M_r%"${M_r#?}"}
		M_r=${M_r#?}
		[ "$M_c" = w ] && M_v=$((M_v + 2 * M_m))
		M_c=${M_r%"${M_r#?}"}
		M_r=${M_r#?}
		case $M_c in
		x) M_v=$((M_v + M_m)) ;;
		s | t) M_v=$((M_v + M_m + ${M_t#*:})) ;;
		S | T) M_v=$((M_v + ${M_t#*:})) ;;
		esac
	done
	M=$(printf '%o' "$M_v")
}

# emit_node PATH char|block: a device node with its mode, uid and gid ("stat -c", else "ls -ln")
emit_node() {
	field "${1:-/}"
	seen "kind $F" && return 0
	N_k=$2
	N_p=$R$1
	N_o=
	if [ "$STATC" = 1 ]; then
		N_o=$(stat -c '%a %u %g' -- "$N_p" 2>/dev/null) || N_o=
	fi
	if [ -z "$N_o" ]; then
		N_o=$(ls -lnd -- "$N_p" 2>/dev/null) || N_o=
		set -f
		# shellcheck disable=SC2086
		set -- $N_o
		set +f
		N_o=
		if [ $# -ge 4 ]; then
			lsmode "$1"
			N_o="$M $3 $4"
		fi
	fi
	set -f
	# shellcheck disable=SC2086
	set -- $N_o
	set +f
	if [ $# -eq 3 ]; then
		case $1 in [0-7] | [0-7][0-7] | [0-7][0-7][0-7] | [0-7][0-7][0-7][0-7]) ;; *) N_o= ;; esac
		case $2 in '' | *[!0-9]* | ???????????*) N_o= ;; esac
		case $3 in '' | *[!0-9]* | ???????????*) N_o= ;; esac
	else
		N_o=
	fi
	if [ -n "$N_o" ]; then echo "kind $F $N_k $1 $2 $3"; else echo "kind $F $N_k"; fi
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
		emit_node "$1" char
	elif [ -b "$C" ]; then
		emit_node "$1" block
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
