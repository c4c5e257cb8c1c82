"""The GRUB environment block (``grubenv``): its variables and the line each is on."""

from __future__ import annotations

import re

from audit.errors import ParseError
from audit.parsers.grub.limits import GrubLimitError
from audit.record import Record

# -- grubenv ---------------------------------------------------------------------------------------

GRUBENV_SIGNATURE = "# GRUB Environment Block\n"
GRUBENV_SIZE = 1024
#: A larger block is not read: grub2-editenv writes 1024 bytes, and GRUB reads the whole file.
MAX_GRUBENV = 1 << 20

_LINE = re.compile(r"(?:[^\\\n]+|\\[\s\S]|\\\Z)*")  # up to an unescaped newline
_ESCAPE = re.compile(r"\\([\s\S])")


class GrubEnv(Record):
    values: dict[str, str]
    lines: dict[str, int]  # line of each variable
    problems: tuple[str, ...] = ()  # oddities GRUB tolerates (size)


def parse_grubenv(data: str | bytes) -> GrubEnv:
    """A GRUB environment block (``grubenv``): ``key=value`` lines after the signature, padded
    with ``#`` to 1024 bytes; ``\\`` escapes a backslash or newline in a value.

    A block that ``grub2-editenv`` would call "invalid environment block" (no signature, NUL
    bytes, a line without ``=``) raises ParseError; one over ``MAX_GRUBENV`` bytes GrubLimitError.
    """
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    if len(raw) > MAX_GRUBENV:
        raise GrubLimitError(f"environment block of {len(raw)} bytes: hostaudit reads blocks up to {MAX_GRUBENV}")
    problems: list[str] = []
    if not raw.startswith(GRUBENV_SIGNATURE.encode()):
        raise ParseError("invalid environment block (no '# GRUB Environment Block' signature)", line=1)
    if b"\0" in raw:
        raise ParseError("invalid environment block (NUL bytes: damaged or zeroed)")
    if len(raw) != GRUBENV_SIZE:
        problems.append(f"block is {len(raw)} bytes, not {GRUBENV_SIZE} (edited by hand?)")
    text = raw.decode("utf-8", "replace")
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    body = text[len(GRUBENV_SIGNATURE) :]
    lineno = 1
    i = 0
    while i < len(body):
        lineno += 1
        if body[i] == "#":
            k = body.find("\n", i)
            i = len(body) if k < 0 else k + 1
            continue
        # a value may contain an escaped newline: the line ends at the first unescaped one
        m = _LINE.match(body, i)
        assert m is not None  # the pattern matches the empty string
        start_line = lineno
        lineno += m.group().count("\n")
        entry = _ESCAPE.sub(r"\1", m.group())
        i = m.end() + 1
        if not entry.strip():
            continue
        name, eq, value = entry.partition("=")
        if not eq or not name:
            raise ParseError(f"invalid environment block (line without '=': {entry[:40]!r})", line=start_line)
        values[name] = value
        lines[name] = start_line
    return GrubEnv(values=values, lines=lines, problems=tuple(problems))
