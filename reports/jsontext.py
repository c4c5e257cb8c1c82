"""Indented JSON text, exactly as ``json.dumps(value, indent=..., sort_keys=..., ensure_ascii=...)``
writes it, without the standard library's pure-Python encoder.

``json.dumps`` uses its C encoder only without ``indent``; with it, every value goes through a chain
of Python generators (some 40% of ``cpu baseline`` over 10,000 hosts after reading them, and a few
milliseconds of every ``--format json`` run). Here the same text is built with one recursive
function, the strings escaped by the same C functions ``json`` uses, and a list of plain strings
(feature names, host names: most of a report) joined at once. The output is the standard
library's, byte for byte (``tests/test_jsontext.py`` holds it to that): the same escaping, number
forms (``NaN``, ``Infinity``), separators and key order. What this does not handle (a key that is
not a string, a type ``json`` would refuse, a structure nested too deep) is handed to
``json.dumps`` whole, which writes it or raises as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any

#: deeper than this is handed to json.dumps (which has its own limits and messages)
MAX_DEPTH = 200


_is_str = str.__instancecheck__  # isinstance(x, str), called from C by map()


class _Unsupported(Exception):
    pass


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value == float("inf"):
        return "Infinity"
    if value == -float("inf"):
        return "-Infinity"
    return float.__repr__(value)


def dumps(value: Any, *, indent: int = 2, sort_keys: bool = False, ensure_ascii: bool = True) -> str:
    """``json.dumps(value, indent=indent, sort_keys=sort_keys, ensure_ascii=ensure_ascii)``."""
    enc = encode_basestring_ascii if ensure_ascii else encode_basestring
    out: list[str] = []
    try:
        _write(value, out, enc, " " * indent, "\n", sort_keys, 0)
    except (_Unsupported, RecursionError):
        return json.dumps(value, indent=indent, sort_keys=sort_keys, ensure_ascii=ensure_ascii)
    return "".join(out)


def _write(o: Any, out: list[str], enc: Callable[[str], str], step: str, nl: str, sort_keys: bool,
           depth: int) -> None:
    """Append the text of ``o``; ``nl`` is a newline and the indentation of the line ``o`` is on."""
    if isinstance(o, str):
        out.append(enc(o))
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif isinstance(o, int):
        out.append(int.__repr__(o))
    elif isinstance(o, float):
        out.append(_float(o))
    elif isinstance(o, list | tuple):
        if not o:
            out.append("[]")
            return
        inner = nl + step
        if all(map(_is_str, o)):  # names and flags: one join, escaped in C
            out.append("[" + inner + ("," + inner).join(map(enc, o)) + nl + "]")
            return
        if depth >= MAX_DEPTH:
            raise _Unsupported
        sep = "[" + inner
        for x in o:
            out.append(sep)
            sep = "," + inner
            _write(x, out, enc, step, inner, sort_keys, depth + 1)
        out.append(nl + "]")
    elif isinstance(o, dict):
        if not o:
            out.append("{}")
            return
        if depth >= MAX_DEPTH:
            raise _Unsupported
        inner = nl + step
        sep = "{" + inner
        items: Any = o.items()
        if sort_keys:
            try:
                items = sorted(items)
            except TypeError:  # keys of several types: json.dumps raises its own error
                raise _Unsupported from None
        for k, v in items:
            if not isinstance(k, str):
                raise _Unsupported  # json's rules for other keys (and their sort order) are its own
            t = type(v)
            if t is str:  # most values of a report: written here rather than by another call
                out.append(sep + enc(k) + ": " + enc(v))
            elif v is None:
                out.append(sep + enc(k) + ": null")
            else:
                out.append(sep + enc(k) + ": ")
                _write(v, out, enc, step, inner, sort_keys, depth + 1)
            sep = "," + inner
        out.append(nl + "}")
    else:
        raise _Unsupported
