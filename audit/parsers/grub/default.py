"""Default entry selection: the ``default`` variable split into menu levels, and numbers read as GRUB
reads them.
"""

from __future__ import annotations

import re

# -- default entry selection -------------------------------------------------------------------------


_DEFAULT_PIECE = re.compile(r">>|>|[^>]+")


def split_default(value: str) -> list[str]:
    """``default`` split into menu levels at ``>`` (``>>`` is a literal ``>`` in a title)."""
    parts: list[str] = []
    buf: list[str] = []
    for m in _DEFAULT_PIECE.finditer(value):
        piece = m.group()
        if piece == ">":
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(">" if piece == ">>" else piece)
    parts.append("".join(buf))
    return parts


def parse_grub_number(text: str) -> int | None:
    """``grub_strtoul(text, 0, 0)``: decimal, ``0x`` hex or leading-zero octal; None if not a number."""
    t = text.strip()
    try:
        if re.fullmatch(r"0[xX][0-9a-fA-F]+", t):
            return int(t, 16)
        if re.fullmatch(r"0[0-7]+", t):
            return int(t, 8)
        if re.fullmatch(r"[0-9]+", t):
            return int(t)
    except ValueError:  # pragma: no cover - guarded by the patterns
        return None
    return None
