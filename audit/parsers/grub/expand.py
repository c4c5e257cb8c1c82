"""Word expansion: ``$name``/``${name:-word}`` replaced from an environment, unquoted values split into
fields as GRUB does, and fields joined back into a kernel command line.

Every character an expansion produces is counted (``_Expansion.spend``): against the run's
:class:`~audit.parsers.grub.limits.Meter` when there is one, else against ``MAX_EXPANSION`` for the
one expansion, so a variable doubled on each line cannot grow without bound.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from audit.parsers.grub.lexer import Part, Word
from audit.parsers.grub.limits import MAX_EXPANSION, GrubLimitError, Meter

_SIMPLE_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_SPACE = re.compile(r"\s")  # the characters str.isspace() and str.split() treat as blanks
_NONBLANK = re.compile(r"\S+")  # the pieces str.split() makes
#: what one field is charged beyond its characters: about the memory of its string and tuple
_FIELD_COST = 100


class _Expansion:
    """What one expansion used and produced, charged to the run's budget."""

    __slots__ = ("dynamic", "meter", "produced", "undefined", "used")

    def __init__(self, meter: Meter | None = None) -> None:
        self.undefined: list[str] = []
        self.used: list[str] = []
        self.dynamic = False
        self.meter = meter  # the run's budget; None: MAX_EXPANSION for this expansion alone
        self.produced = 0  # characters produced

    def spend(self, n: int) -> None:
        self.produced += n
        if self.meter is not None:
            self.meter.spend(n)
        elif self.produced > MAX_EXPANSION:
            raise GrubLimitError(f"word expansion produced more than {MAX_EXPANSION} characters")


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
        value = env.get(name, "")
        exp.spend(len(value))
        return value

    return _SIMPLE_VAR.sub(sub, text)


def _expand_word(word: Word, env: Mapping[str, str], exp: _Expansion) -> str:
    out: list[str] = []
    for part in word.parts:
        if part.kind == "lit":
            text = part.text
        elif part.kind == "var":
            text = _var_value(part, env, exp)
        else:
            exp.dynamic = True
            text = part.text
        exp.spend(len(text))
        out.append(text)
    return out[0] if len(out) == 1 else "".join(out)


def _expand_fields(words: Iterable[Word], env: Mapping[str, str], exp: _Expansion) -> list[tuple[str, bool]]:
    """Expand words into fields; unquoted variable values are split on blanks, as GRUB does.

    Each field comes with whether it must be quoted to survive as one kernel argument. A value is
    split lazily and each field is charged (``_FIELD_COST``), so a huge value of many short words
    runs out of budget instead of materialising millions of strings at once.
    """
    fields: list[tuple[str, bool]] = []
    cur: list[str] = []
    protected = False

    def emit() -> None:
        nonlocal cur, protected
        fields.append((cur[0] if len(cur) == 1 else "".join(cur), protected))
        exp.spend(_FIELD_COST)
        cur, protected = [], False

    for word in words:
        have = False
        for part in word.parts:
            if part.kind == "var" and not part.quoted:
                value = _var_value(part, env, exp)
                exp.spend(len(value))
                first = True
                for m in _NONBLANK.finditer(value):
                    if first:
                        first = False
                        if m.start() and have:  # the value starts with a blank: a new field
                            emit()
                    else:
                        emit()
                    cur.append(m.group())
                    have = True
                if first:  # nothing but blanks
                    continue
                if value[-1].isspace():
                    emit()
                    have = False
            else:
                text = part.text if part.kind != "var" else _var_value(part, env, exp)
                exp.spend(len(text))
                if part.kind == "cmd":
                    exp.dynamic = True
                if part.quoted:
                    protected = protected or _SPACE.search(text) is not None
                    have = True
                elif text:
                    have = True
                cur.append(text)
        if have:
            emit()
        cur, protected = [], False
    return fields


def _join_cmdline(fields: Iterable[tuple[str, bool]]) -> str:
    """Arguments back into one command line; GRUB quotes an argument that contains blanks."""
    return " ".join(f'"{text}"' if protected else text for text, protected in fields)
