"""Make host-supplied text safe to show: no raw control characters reach a terminal or a file."""

from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
#: Lone surrogates: bytes that were not UTF-8 in a host file (decoded with surrogateescape), which
#: no encoder writes; shown as the byte they stand for (\xff), never written raw.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _escape(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the original byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def no_surrogates(text: str) -> str:
    """``text`` with every lone surrogate shown as the byte it stands for: encodable as UTF-8, and
    what every report format does with host bytes that are not UTF-8."""
    return _SURROGATE.sub(lambda m: _escape(m.group(0)), text) if _SURROGATE.search(text) else text


def sanitize_tree(value: Any) -> Any:
    """``no_surrogates`` on every string of a JSON-like tree (dict keys included)."""
    if isinstance(value, str):
        return no_surrogates(value)
    if isinstance(value, dict):
        return {sanitize_tree(k): sanitize_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [sanitize_tree(v) for v in value]
    return value


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """Control characters (ANSI escapes, CR, bidi overrides) become visible ``\\xNN`` escapes."""

    if not keep_newlines:
        text = text.replace("\n", "\\n").replace("\t", " ")
    return _CONTROL.sub(lambda m: _escape(m.group(0)), text)


#: Characters XML 1.0 forbids that printable() leaves alone (the other forbidden ones are control
#: characters and lone surrogates, which it escapes).
_XML_NONCHARS = re.compile(r"[\ufffe\uffff]")


def xml_comment_text(text: str) -> str:
    """``text`` made safe as the content of an XML comment (``<!-- ... -->``), visibly.

    Control characters, bidi overrides and lone surrogates are escaped as printable() shows them
    (``\\x1b``, ``\\n``), as are U+FFFE and U+FFFF, which XML forbids; every ``-`` followed by another
    ``-`` or by the end of the text becomes ``\\x2d``. The result never contains ``--`` and never ends
    with ``-``, so host text can neither close the comment nor make the document malformed:
    ``--><model>x</model><!--`` stays text, shown as ``\\x2d-><model>x</model><!\\x2d\\x2d``.
    """
    out = _XML_NONCHARS.sub(lambda m: f"\\u{ord(m.group(0)):04x}", printable(text))
    return re.sub(r"-(?=-|\Z)", lambda m: "\\x2d", out)
