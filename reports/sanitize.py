"""Make host-supplied text safe to show: no raw control characters reach a terminal or a file."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """Control characters (ANSI escapes, CR, bidi overrides) become visible ``\\xNN`` escapes."""

    def esc(m: re.Match[str]) -> str:
        ch = m.group(0)
        code = ord(ch)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    if not keep_newlines:
        text = text.replace("\n", "\\n").replace("\t", " ")
    return _CONTROL.sub(esc, text)
