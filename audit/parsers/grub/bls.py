"""Boot Loader Specification entries (``/boot/loader/entries/*.conf``): parsing, GRUB's rpm-style menu
order, and ``options`` variable expansion as blscfg does it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping

from audit.errors import ParseError
from audit.parsers.grub.limits import (
    MAX_BLS_ENTRIES,
    MAX_BLS_ENTRY_BYTES,
    MAX_BLS_KEYS,
    MAX_EXPANSION,
    GrubLimitError,
    iter_lines,
)
from audit.record import Record

#: GRUB's separators are space and tab (grub_isspace), not every Unicode space Python's \s means
_KEY_VALUE = re.compile(r"([^ \t]+)[ \t]*(.*)$")

# -- BLS entries ---------------------------------------------------------------------------------------

_BLS_MULTI = {"initrd", "options", "grub_arg", "grub_class"}


class BlsEntry(Record):
    """One ``/boot/loader/entries/*.conf`` file."""

    title: str | None = None
    version: str | None = None
    linux: str | None = None
    initrd: tuple[str, ...] = ()
    options: tuple[str, ...] = ()  # each options line as written
    entry_id: str | None = None  # the ``id`` key (GRUB uses the file name instead)
    grub_users: str | None = None
    grub_arg: tuple[str, ...] = ()
    grub_class: tuple[str, ...] = ()
    efi: str | None = None
    keys: tuple[tuple[str, str, int], ...] = ()  # every (key, value, line), in order
    grub_stop_line: int | None = None  # GRUB's blscfg stops reading here (blank line, key without value)

    @property
    def options_joined(self) -> str:
        """All options lines joined, as the BLS specification (and systemd-boot) reads them."""
        return " ".join(o for o in self.options if o)

    def grub_values(self, key: str) -> list[tuple[str, int]]:
        """(value, line) of ``key`` among the lines GRUB's blscfg actually reads."""
        stop = self.grub_stop_line
        return [(v, n) for k, v, n in self.keys if k == key and (stop is None or n < stop)]

    def line_of(self, key: str) -> int | None:
        for k, _v, n in self.keys:
            if k == key:
                return n
        return None


def parse_bls_entry(text: str) -> BlsEntry:
    """A Boot Loader Specification entry: ``key value`` lines; ``#`` comments, blank lines and keys
    without a value are tolerated. ``initrd``, ``options``, ``grub_arg`` and ``grub_class`` may
    repeat. Raises ParseError for binary content, and GrubLimitError for an entry larger than
    ``MAX_BLS_ENTRY_BYTES`` characters or with more than ``MAX_BLS_KEYS`` keys (every entry read is
    kept, so each must stay small)."""
    if "\0" in text:
        raise ParseError("binary content (NUL bytes)")
    if len(text) > MAX_BLS_ENTRY_BYTES:
        raise GrubLimitError(
            f"BLS entry of {len(text)} characters: more than the {MAX_BLS_ENTRY_BYTES} hostaudit reads"
        )
    keys: list[tuple[str, str, int]] = []
    stop: int | None = None
    for n, raw in iter_lines(text):
        line = raw.lstrip(" \t").rstrip("\r")
        if line.startswith("#"):
            continue
        # GRUB splits at the first space (else the first tab) and stops at a line without a value.
        sep = line.find(" ")
        if sep < 0:
            sep = line.find("\t")
        if stop is None and (sep < 0 or sep + 1 >= len(line)):
            stop = n
        if not line.strip(" \t"):
            continue
        m = _KEY_VALUE.match(line)
        assert m is not None
        if len(keys) >= MAX_BLS_KEYS:
            raise GrubLimitError(f"more than {MAX_BLS_KEYS} keys in one BLS entry", line=n)
        keys.append((m.group(1), m.group(2).rstrip(), n))
    if stop is not None and not any(n > stop for _k, _v, n in keys):
        stop = None  # nothing after it: GRUB loses nothing

    def first(key: str) -> str | None:
        for k, v, _n in keys:
            if k == key:
                return v
        return None

    def every(key: str) -> tuple[str, ...]:
        return tuple(v for k, v, _n in keys if k == key)

    return BlsEntry(
        title=first("title"),
        version=first("version"),
        linux=first("linux"),
        initrd=tuple(x for v in every("initrd") for x in v.split()),
        options=every("options"),
        entry_id=first("id"),
        grub_users=first("grub_users"),
        grub_arg=every("grub_arg"),
        grub_class=every("grub_class"),
        efi=first("efi"),
        keys=tuple(keys),
        grub_stop_line=stop,
    )


def rpm_vercmp(a: str, b: str) -> int:
    """rpm's version comparison as GRUB's blscfg implements it: 1 if ``a`` is newer, -1, or 0."""
    if a == b:
        return 0
    i = j = 0
    la, lb = len(a), len(b)

    def sep(s: str, k: int) -> int:
        while k < len(s) and not s[k].isalnum() and s[k] not in "~+":
            k += 1
        return k

    while i < la or j < lb:
        i, j = sep(a, i), sep(b, j)
        ca = a[i] if i < la else ""
        cb = b[j] if j < lb else ""
        if ca == "~" or cb == "~":
            if ca != "~":
                return 1
            if cb != "~":
                return -1
            i, j = i + 1, j + 1
            continue
        if ca == "+" or cb == "+":
            if not ca:
                return -1
            if not cb:
                return 1
            if ca != "+":
                return 1
            if cb != "+":
                return -1
            i, j = i + 1, j + 1
            continue
        if not (ca and cb):
            break
        if ca.isdigit():
            ei, ej = i, j
            while ei < la and a[ei].isdigit():
                ei += 1
            while ej < lb and b[ej].isdigit():
                ej += 1
            isnum = True
        else:
            ei, ej = i, j
            while ei < la and a[ei].isalpha():
                ei += 1
            while ej < lb and b[ej].isalpha():
                ej += 1
            isnum = False
        one, two = a[i:ei], b[j:ej]
        if not two:
            return 1 if isnum else -1
        if isnum:
            one, two = one.lstrip("0"), two.lstrip("0")
            if len(one) != len(two):
                return 1 if len(one) > len(two) else -1
        if one != two:
            return 1 if one > two else -1
        i, j = ei, ej
    if i >= la and j >= lb:
        return 0
    return -1 if i >= la else 1


def _split_nvr(s: str) -> tuple[str, str, str]:
    """name, version, release: the last two ``-`` separate them (blscfg's split_package_string)."""
    head, dash, release = s.rpartition("-")
    if not dash:
        return s, "", ""
    name, dash2, version = head.rpartition("-")
    if not dash2:
        return head, release, ""  # values bubble up when there are fewer fields
    return name, version, release


def bls_compare(a: str, b: str) -> int:
    """GRUB's order of two BLS file names (without ``.conf``): 1 when ``a`` sorts as newer."""
    for x, y in zip(_split_nvr(a), _split_nvr(b), strict=True):
        r = rpm_vercmp(x, y)
        if r:
            return r
    return 0


def sort_bls_names(names: Iterable[str], *, source: str = "BLS entry directory") -> list[str]:
    """BLS entry ids in GRUB's menu order: newest first (rhboot grub2 ``bls_add_entry``).

    More than ``MAX_BLS_ENTRIES`` names raise GrubLimitError naming ``source`` (the directory): each
    entry is a file to read, for every ``blscfg``."""
    names = list(names)
    if len(names) > MAX_BLS_ENTRIES:
        raise GrubLimitError(
            f"{len(names)} BLS entries: more than the {MAX_BLS_ENTRIES} hostaudit reads", source=source
        )
    return sorted(names, key=functools.cmp_to_key(bls_compare), reverse=True)


_BLS_VAR = re.compile(r"\$\{([A-Za-z0-9_]+)\}|\$([A-Za-z0-9_]+)")


def expand_bls_options(
    text: str, env: Mapping[str, str], *, source: str = "BLS entry options"
) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """``options`` with ``$name``/``${name}`` replaced from ``env``, as blscfg does when it builds
    the menu. An undefined variable expands to nothing. Returns (text, used, undefined).
    Raises GrubLimitError (naming ``source``) past ``MAX_EXPANSION`` characters of values."""
    used: list[str] = []
    undefined: list[str] = []
    produced = 0

    def sub(m: re.Match[str]) -> str:
        nonlocal produced
        name = m.group(1) or m.group(2)
        used.append(name)
        if name not in env:
            undefined.append(name)
            return ""
        produced += len(env[name])
        if produced > MAX_EXPANSION:
            raise GrubLimitError(f"the options expand to more than {MAX_EXPANSION} characters", source=source)
        return env[name]

    out = _BLS_VAR.sub(sub, text)
    return " ".join(out.split()), tuple(dict.fromkeys(used)), tuple(dict.fromkeys(undefined))
