"""Kernel build configuration (``.config``): ``CONFIG_X=y|m|"str"|123`` and ``# CONFIG_X is not set``."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from types import MappingProxyType

from audit.errors import ParseError
from audit.record import Record

NOT_SET = "is not set"

_NAME = re.compile(r"CONFIG_[A-Za-z0-9_]+")
_UNSET = re.compile(r"^#\s*(CONFIG_[A-Za-z0-9_]+) is not set\s*$")
_VERSION = re.compile(r"^#\s*Linux(?:/(\S+))? (?:kernel )?(?:version:? )?(\S+)")


class KernelConfig(Record):
    """Read-only (the mappings are views): a fleet run shares one per distinct config among its hosts."""

    options: Mapping[str, str]  # "y", "m", a string (quotes removed), a number, or NOT_SET
    lines: Mapping[str, int]  # where each option was read
    version: str | None = None  # from the header comment, when there is one
    arch: str | None = None  # the header's architecture word: "x86", "x86_64", "arm64", ...

    def get(self, name: str) -> str | None:
        """The value, NOT_SET when explicitly unset, None when this kernel does not know the option."""
        return self.options.get(_full(name))

    def enabled(self, name: str) -> bool:
        return self.get(name) in ("y", "m")

    def describe(self, name: str) -> str:
        value = self.get(name)
        full = _full(name)
        if value is None:
            return f"{full} absent (unknown to this kernel)"
        if value == NOT_SET:
            return f"# {full} is not set"
        return f"{full}={value}"


def _full(name: str) -> str:
    return name if name.startswith("CONFIG_") else f"CONFIG_{name}"


def parse_kconfig(text: str) -> KernelConfig:
    """Lines end at ``\n`` only, as the kernel's conf reader (scripts/kconfig/confdata.c) takes them
    with ``getline``: a form feed or a vertical tab inside a value is part of the value."""
    written = _read_written(text)
    if written is not None:
        return written
    options: dict[str, str] = {}
    lines: dict[str, int] = {}
    version = arch = None
    for no, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line:
            continue
        if line[0] == "#":
            if line.endswith(NOT_SET) and (m := _UNSET.match(line)):
                options[m.group(1)] = NOT_SET
                lines[m.group(1)] = no
            elif version is None and (v := _VERSION.match(line)):
                arch, version = v.group(1), v.group(2)
            continue
        name, eq, value = line.partition("=")
        if not eq or not _NAME.fullmatch(name):
            raise ParseError(f"not a kernel config line: {line[:80]!r}", line=no)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        options[name] = value
        lines[name] = no
    if not options:
        raise ParseError("no CONFIG_ options found: not a kernel config")
    return KernelConfig(options=MappingProxyType(options), lines=MappingProxyType(lines), version=version, arch=arch)


# -- a config as the kernel writes it -------------------------------------------------------------
#: Every line an option, a comment or empty, none with blanks around it or around a value: what
#: ``make``'s conf writes (and distributions ship). Such a text is read by ``_read_written``;
#: anything else by the loop above, which takes blanks and says what is wrong. (Possessive: a line
#: that does not fit ends the match there, without trying the lines before it again.)
_WRITTEN = re.compile(r"(?:(?:CONFIG_[A-Za-z0-9_]+=(?:\S(?:[^\n]*\S)?)?|#(?:[^\n]*\S)?)?\n)*+"
                      r"(?:CONFIG_[A-Za-z0-9_]+=(?:\S(?:[^\n]*\S)?)?|#(?:[^\n]*\S)?)?")
#: After a newline: an unset option (group 1), or a set one and its value (groups 2 and 3)
_OPTION_LINE = re.compile(r"\n(?:#[^\S\n]*(CONFIG_[A-Za-z0-9_]+) is not set(?=\n|\Z)|(CONFIG_[A-Za-z0-9_]+)=([^\n]*))")
#: characters of the text searched at once (a distribution's config is one piece)
_PIECE = 1 << 20
#: ``_VERSION`` on a line of its own
_VERSION_LINE = re.compile(r"\n#[^\S\n]*Linux(?:/(\S+))? (?:kernel )?(?:version:? )?(\S+)")


def _read_written(text: str) -> KernelConfig | None:
    """What the loop of ``parse_kconfig`` makes of a text ``_WRITTEN`` matches whole, found by
    regular expressions over the whole text rather than a loop over its lines (about 10,000 in a
    distribution's config: a third of the time); None for any other text. The options are in the
    same order with the same values (a later line for an option wins); the line of an option is
    found when asked (``_Lines``)."""
    if _WRITTEN.fullmatch(text) is None:
        return None
    body = "\n" + text  # every line after a newline
    options: dict[str, str] = {}
    at = 0
    while at < len(body):  # a piece at a time (from a line's start to a line's start): what findall
        end = body.find("\n", at + _PIECE)  # lists is some ten times the text it was found in
        end = len(body) if end < 0 else end
        for unset, name, value in _OPTION_LINE.findall(body, at, end):
            if unset:
                options[unset] = NOT_SET
            else:
                options[name] = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
        at = end
    if not options:
        return None  # the loop says so
    v = _VERSION_LINE.search(body)
    return KernelConfig(options=MappingProxyType(options), lines=_Lines(body, options),
                        version=v.group(2) if v else None, arch=v.group(1) if v else None)


#: options whose line is searched for one by one; past this many, all are found in one walk
_ASKED_ONE_BY_ONE = 16


class _Lines(Mapping[str, int]):
    """Where each option of a config read by ``_read_written`` was last given (a line number): found
    when asked, since a run asks for a handful of the thousands. Read-only, as a view is."""

    __slots__ = ("_body", "_found", "_options")
    #: never changes (what it finds it keeps, the same each time): a fleet run's parse cache shares
    #: one among the hosts with this config, as it does the options' read-only view
    shared_as_is = True

    def __init__(self, body: str, options: Mapping[str, str]) -> None:
        self._body = body
        self._options = options
        self._found: dict[str, int] = {}

    def __getitem__(self, name: str) -> int:
        if name not in self._options:
            raise KeyError(name)
        line = self._found.get(name)
        if line is None:
            if len(self._found) < _ASKED_ONE_BY_ONE:  # a search of the text from its end for this option
                line = self._found[name] = self._body.count("\n", 0, self._last(name) + 1)
            else:  # asked for many (all of them, say): one walk over the text for every option
                self._found = self._every()
                line = self._found[name]
        return line

    def _last(self, name: str) -> int:
        """Where (the newline before) the last line for ``name`` starts: the one that gave it its
        value. A line setting it, unless its value is NOT_SET: then an unset line, or a line that
        sets it to those very words, whichever is later."""
        body = self._body
        set_at = body.rfind(f"\n{name}=")  # such a line is always an option's (the text is _WRITTEN)
        if self._options[name] != NOT_SET:
            return set_at
        tail, end = f"{name} is not set", len(body)
        while (at := body.rfind(tail, 0, end)) > set_at:  # the last whole unset line ("#", blanks, NAME ...)
            start = body.rfind("\n", 0, at)
            if body.startswith("\n", at + len(tail)) or at + len(tail) == len(body):
                head = body[start + 1:at]
                if head[:1] == "#" and (len(head) == 1 or head[1:].isspace()):
                    return start
            end = at + len(tail) - 1  # an earlier one
        return set_at

    def _every(self) -> dict[str, int]:
        found: dict[str, int] = {}
        at = line = 0
        for m in _OPTION_LINE.finditer(self._body):
            line += self._body.count("\n", at, m.start() + 1)
            at = m.start() + 1
            found[m.group(1) or m.group(2)] = line
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._options)

    def __len__(self) -> int:
        return len(self._options)
