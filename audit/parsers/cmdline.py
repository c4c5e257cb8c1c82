"""Kernel command lines, tokenised the way the kernel does it (``lib/cmdline.c``, ``next_arg``).

Double quotes protect spaces; everything after a lone ``--`` goes to init; ``-`` and ``_`` are
the same in parameter names. Order is kept (``hugepagesz=``/``hugepages=`` pairs depend on it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Param:
    name: str  # as written
    value: str | None  # None for a bare flag ("quiet"); "" for "key="

    @property
    def key(self) -> str:
        """The name as the kernel compares it: dashes folded to underscores."""
        return canonical_name(self.name)


def canonical_name(name: str) -> str:
    return name.replace("-", "_")


def _split_words(text: str) -> list[str]:
    """Split on whitespace outside double quotes; quotes are removed like the kernel does."""
    words: list[str] = []
    buf: list[str] = []
    in_quote = False
    started = False
    for ch in text:
        if ch == '"':
            in_quote = not in_quote
            started = True
            continue
        if ch.isspace() and not in_quote:
            if started:
                words.append("".join(buf))
                buf, started = [], False
            continue
        buf.append(ch)
        started = True
    if started:
        words.append("".join(buf))
    return words


def tokenize(text: str) -> list[Param]:
    """The kernel parameters of a command line, in order, stopping at ``--``."""
    params: list[Param] = []
    for word in _split_words(text.strip()):
        if word == "--":
            break
        name, eq, value = word.partition("=")
        params.append(Param(name, value if eq else None))
    return params


def parse_cmdline(text: str) -> dict[str, str]:
    """Parameters as a dict of canonical name to value; the last of a repeated key wins.

    Bare flags map to "". ``parse_cmdline('a=1 quiet a=2 x="y z"')`` gives
    ``{"a": "2", "quiet": "", "x": "y z"}``.
    """
    return {p.key: (p.value if p.value is not None else "") for p in tokenize(text)}


def values(params: list[Param], name: str) -> list[str]:
    """Every value given to ``name`` (canonical comparison), in order."""
    want = canonical_name(name)
    return [p.value if p.value is not None else "" for p in params if p.key == want]


def last(params: list[Param], name: str) -> str | None:
    found = values(params, name)
    return found[-1] if found else None
