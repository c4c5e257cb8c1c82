"""Word expansion: ``$name``/``${name:-word}`` replaced from an environment, unquoted values split into
fields as GRUB does, and fields joined back into a kernel command line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from audit.parsers.grub.lexer import Part, Word


@dataclass
class _Expansion:
    undefined: list[str] = field(default_factory=list)
    used: list[str] = field(default_factory=list)
    dynamic: bool = False


def _var_value(part: Part, env: Mapping[str, str], exp: _Expansion) -> str:
    name = part.text
    defined = name in env
    value = env.get(name, "")
    exp.used.append(name)
    op = part.op
    if op:
        arg = _expand_simple(part.arg, env, exp)
        if op in (":-", ":=", ":?"):
            return value if value else arg
        if op in ("-", "=", "?"):
            return value if defined else arg
        if op == ":+":
            return arg if value else ""
        if op == "+":
            return arg if defined else ""
    if not defined:
        exp.undefined.append(name)
    return value


def _expand_simple(text: str, env: Mapping[str, str], exp: _Expansion) -> str:
    """``$name``/``${name}`` inside an operator's word."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        exp.used.append(name)
        if name not in env:
            exp.undefined.append(name)
        return env.get(name, "")

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", sub, text)


def _expand_word(word: Word, env: Mapping[str, str], exp: _Expansion) -> str:
    out: list[str] = []
    for part in word.parts:
        if part.kind == "lit":
            out.append(part.text)
        elif part.kind == "var":
            out.append(_var_value(part, env, exp))
        else:
            exp.dynamic = True
            out.append(part.text)
    return "".join(out)


def _expand_fields(words: Iterable[Word], env: Mapping[str, str], exp: _Expansion) -> list[tuple[str, bool]]:
    """Expand words into fields; unquoted variable values are split on blanks, as GRUB does.

    Each field comes with whether it must be quoted to survive as one kernel argument.
    """
    fields: list[tuple[str, bool]] = []
    for word in words:
        cur: list[str] = []
        protected = False
        have = False
        for part in word.parts:
            if part.kind == "var" and not part.quoted:
                value = _var_value(part, env, exp)
                pieces = value.split()
                if not pieces:
                    continue
                if value[:1].isspace() and have:
                    fields.append(("".join(cur), protected))
                    cur, protected, have = [], False, False
                for k, piece in enumerate(pieces):
                    if k:
                        fields.append(("".join(cur), protected))
                        cur, protected = [], False
                    cur.append(piece)
                    have = True
                if value[-1:].isspace():
                    fields.append(("".join(cur), protected))
                    cur, protected, have = [], False, False
            else:
                text = part.text if part.kind != "var" else _var_value(part, env, exp)
                if part.kind == "cmd":
                    exp.dynamic = True
                if part.quoted:
                    protected = protected or any(ch.isspace() for ch in text)
                    have = True
                elif text:
                    have = True
                cur.append(text)
        if have:
            fields.append(("".join(cur), protected))
    return fields


def _join_cmdline(fields: Iterable[tuple[str, bool]]) -> str:
    """Arguments back into one command line; GRUB quotes an argument that contains blanks."""
    return " ".join(f'"{text}"' if protected else text for text, protected in fields)
