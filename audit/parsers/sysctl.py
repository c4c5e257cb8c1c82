"""Persistent sysctl settings: sysctl.d files and the value each key gets at boot, with its source.

Semantics follow systemd sysctl.d(5) (systemd-sysctl) and procps ``sysctl --system``:

- the host layer lists ``*.conf`` directly inside each of ``SYSCTL_DIRS`` (highest priority first)
  and reads ``SYSCTL_CONF``; a ``/dev/null`` symlink is passed as None (a mask);
- all files are ordered by basename across the directories; a basename found in a higher directory
  masks the same name in lower ones; a later assignment to a key wins; ``/etc/sysctl.conf`` is
  applied last (procps; systemd-sysctl does not read it, distributions link it as
  ``/etc/sysctl.d/99-sysctl.conf``).

insights applies /usr/lib, then /etc, then /etc/sysctl.conf, and knows no masks (FIELD-NOTES).
Runtime values (``/proc/sys/...``) are a separate fact: ``proc_sys_path`` names the file.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping
from fnmatch import fnmatchcase

from audit.errors import ParseError
from audit.parsers.mounts import normalize_mount_path
from audit.record import Record

SYSCTL_DIRS = (
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",  # only on systems without merged /usr; harmless elsewhere
)
SYSCTL_CONF = "/etc/sysctl.conf"

_GLOB_CHARS = frozenset("*?[")
#: The longest line read: systemd-sysctl reads lines with read_line(f, LONG_LINE_MAX) (1 MiB) and
#: gives up on the file at a longer one. It caps the value too.
MAX_LINE = 1 << 20
_SPACE = re.compile(r"\s")  # what str.isspace() calls a blank
#: What a message quotes of a line or key.
_QUOTED = 80
#: The line breaks str.splitlines() knows (the line numbers stay what they were with it).
_BREAK = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


class SysctlSetting(Record):
    key: str  # normalised, dotted: "vm.nr_hugepages"; a glob stays a pattern
    value: str | None  # None only for "-key" without "=": exclude the key from glob matches
    line: int
    ignore_errors: bool = False  # leading "-": a failed write is not an error

    @property
    def is_glob(self) -> bool:
        return any(c in _GLOB_CHARS for c in self.key)


class Provenance(Record):
    key: str
    value: str | None  # None: excluded from globs by a "-key" line; the kernel default stays
    path: str  # file inside the root that set it
    line: int
    ignore_errors: bool = False


class SysctlFileError(ParseError):
    """A malformed line in one of several files: carries the file, as the host cannot know which."""

    def __init__(self, path: str, problem: str, *, line: int | None = None) -> None:
        super().__init__(problem, line=line)
        self.path = path

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.problem}"


def _path_form(key: str) -> str:
    """systemd's sysctl_normalize: if the first separator is '.', swap '.' and '/'; then simplify."""
    for i, ch in enumerate(key):
        if ch == "/":
            break
        if ch == ".":
            key = key[:i] + key[i:].translate(str.maketrans("./", "/."))
            break
    return "/".join(p for p in key.split("/") if p not in ("", "."))  # systemd's path_simplify


def normalize_sysctl_key(key: str) -> str:
    """``vm/nr_hugepages`` and ``vm.nr_hugepages`` -> ``vm.nr_hugepages``.

    A dot inside a path component comes out as ``/``, as sysctl(8) prints it:
    ``net/ipv4/conf/enp3s0.200/forwarding`` -> ``net.ipv4.conf.enp3s0/200.forwarding``.
    """
    return _path_form(key.strip()).translate(str.maketrans("./", "/."))


def proc_sys_path(key: str) -> str:
    """The runtime file of a key: ``vm.nr_hugepages`` -> ``/proc/sys/vm/nr_hugepages``."""
    return "/proc/sys/" + _path_form(key.strip())


def _quote(text: str) -> str:
    return repr(text) if len(text) <= _QUOTED else repr(text[:_QUOTED]) + f"... ({len(text)} characters)"


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """(number, line) as ``enumerate(text.splitlines(), 1)`` gives them, one line at a time and
    without copying a line longer than ``MAX_LINE`` (ParseError naming its number)."""
    pos = lineno = 0
    n = len(text)
    while pos < n:
        lineno += 1
        m = _BREAK.search(text, pos)
        end = n if m is None else m.start()
        if end - pos > MAX_LINE:
            raise ParseError(f"line of {end - pos} characters: longer than the {MAX_LINE} systemd-sysctl reads",
                             line=lineno)
        yield lineno, text[pos:end]
        pos = n if m is None else end + (2 if text.startswith("\r\n", end) else 1)


def parse_sysctl_conf(text: str) -> list[SysctlSetting]:
    """Parse one sysctl.d file or /etc/sysctl.conf; settings in file order, duplicates kept.

    A line longer than ``MAX_LINE`` characters is a ParseError naming it, as for systemd-sysctl."""
    settings: list[SysctlSetting] = []
    for lineno, raw in _lines(text):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, eq, value = line.partition("=")
        key = key.strip()
        ignore_errors = key.startswith("-")
        if ignore_errors:
            key = key[1:].strip()
        if not eq and not ignore_errors:
            raise ParseError(f"not an assignment (no '='): {_quote(line)}", line=lineno)
        if not key:
            raise ParseError(f"no key before '=': {_quote(line)}", line=lineno)
        if _SPACE.search(key):
            raise ParseError(f"key contains whitespace: {_quote(key)}", line=lineno)
        normalized = normalize_sysctl_key(key)
        if not normalized:
            raise ParseError(f"key has no name: {_quote(key)}", line=lineno)
        settings.append(
            SysctlSetting(
                key=normalized,
                value=value.strip() if eq else None,
                line=lineno,
                ignore_errors=ignore_errors,
            )
        )
    return settings


def sysctl_file_order(paths: Iterable[str]) -> list[str]:
    """The files applied at boot, in order, after same-name masking; ``/etc/sysctl.conf`` last.

    Files outside ``SYSCTL_DIRS`` (or in subdirectories) and names not ending in ``.conf`` are
    not read by systemd-sysctl or procps, so they are left out here too.
    """
    winners: dict[str, tuple[int, str]] = {}  # basename -> (directory rank, path)
    conf: str | None = None
    for path in paths:
        norm = normalize_mount_path(path)
        if norm == SYSCTL_CONF:
            conf = path
            continue
        directory, name = posixpath.split(norm)
        if directory not in SYSCTL_DIRS or not name.endswith(".conf"):
            continue
        rank = SYSCTL_DIRS.index(directory)
        if name not in winners or rank < winners[name][0]:
            winners[name] = (rank, path)
    order = [winners[name][1] for name in sorted(winners)]
    if conf is not None:
        order.append(conf)
    return order


def effective_sysctl(files: Mapping[str, str | None]) -> dict[str, Provenance]:
    """The value each key gets at boot, with the file and line that set it.

    ``files`` maps paths inside the root to their text, or None for a ``/dev/null`` mask.
    Glob keys are kept as patterns (expanding them needs /proc/sys); use ``lookup_sysctl`` to
    resolve a concrete key. Insertion order mirrors systemd's: an overridden key moves to the end.
    """
    result: dict[str, Provenance] = {}
    for path in sysctl_file_order(files):
        text = files[path]
        if text is None:  # masked
            continue
        try:
            settings = parse_sysctl_conf(text)
        except ParseError as e:
            raise SysctlFileError(path, e.problem, line=e.line) from None
        for s in settings:
            old = result.get(s.key)
            if old is not None and old.value == s.value:
                # systemd keeps the first assignment when the value is the same
                result[s.key] = Provenance(
                    key=old.key,
                    value=old.value,
                    path=old.path,
                    line=old.line,
                    ignore_errors=old.ignore_errors or s.ignore_errors,
                )
                continue
            result.pop(s.key, None)
            result[s.key] = Provenance(key=s.key, value=s.value, path=path, line=s.line, ignore_errors=s.ignore_errors)
    return result


def _glob_matches(pattern: str, key: str) -> bool:
    """Match per path component, as systemd's glob() over /proc/sys does ('*' stops at '/')."""
    pat, k = _path_form(pattern).split("/"), _path_form(key).split("/")
    return len(pat) == len(k) and all(fnmatchcase(a, b) for a, b in zip(k, pat, strict=True))


def lookup_sysctl(effective: Mapping[str, Provenance], key: str) -> Provenance | None:
    """What boot sets ``key`` to: an explicit line beats any glob; among globs the last applied.

    None when nothing sets it, or when a ``-key`` line excludes it from globs.
    """
    key = normalize_sysctl_key(key)
    exact = effective.get(key)
    if exact is not None:
        return exact if exact.value is not None else None
    found: Provenance | None = None
    for prov in effective.values():
        is_glob = any(c in _GLOB_CHARS for c in prov.key)
        if is_glob and prov.value is not None and _glob_matches(prov.key, key):
            found = prov
    return found
