"""GRUB script and shell lexer: text split into commands of words, quoting kept (the lexical layer shared
by the shell-variable and GRUB script readers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from audit.errors import ParseError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=")

# -- words: the lexical layer shared by the shell and GRUB script readers --------------------------


@dataclass(frozen=True, slots=True)
class Part:
    kind: str  # "lit", "var" or "cmd" (a shell command substitution, never run)
    text: str  # literal text, variable name, or the raw substitution
    quoted: bool = False  # inside '...' or "..."
    op: str = ""  # ${name:-word} style operator
    arg: str = ""  # its word, as written


@dataclass(frozen=True, slots=True)
class Word:
    parts: tuple[Part, ...]
    raw: str  # as written, for messages

    @property
    def literal(self) -> str | None:
        """The text when the word is one unquoted literal (keywords, ``{``), else None."""
        if len(self.parts) == 1 and self.parts[0].kind == "lit" and not self.parts[0].quoted:
            return self.parts[0].text
        return None


@dataclass(frozen=True, slots=True)
class Command:
    words: tuple[Word, ...]
    line: int

    @property
    def name(self) -> str | None:
        return self.words[0].literal if self.words else None


def _read_var(text: str, i: int, *, shell: bool, quoted: bool) -> tuple[Part | None, int]:
    """Parse the expansion at ``text[i] == '$'``; (None, i+1) when the ``$`` is literal."""
    n = len(text)
    j = i + 1
    if j >= n:
        return None, j
    c = text[j]
    if c == "(" and shell:
        depth, k = 0, j
        while k < n:
            if text[k] == "(":
                depth += 1
            elif text[k] == ")":
                depth -= 1
                if depth == 0:
                    return Part("cmd", text[i : k + 1], quoted), k + 1
            k += 1
        raise ParseError("unterminated $(...)")
    if c == "{":
        k = text.find("}", j)
        if k < 0:
            raise ParseError("unterminated ${...}")
        inner = text[j + 1 : k]
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*|[0-9]+|[?#@*])(?:(:?[-+=?])(.*))?", inner, re.S)
        if m is None:
            return Part("cmd", text[i : k + 1], quoted), k + 1  # ${#x}, ${x%y}...: not evaluated
        return Part("var", m.group(1), quoted, m.group(2) or "", m.group(3) or ""), k + 1
    m = _NAME.match(text, j)
    if m:
        return Part("var", m.group(0), quoted), m.end()
    if c.isdigit() or c in "?#@*$!-":
        return Part("var", c, quoted), j + 1
    return None, j


def _lex(text: str, *, shell: bool) -> list[Command]:
    """Split a script into simple commands (words with quoting kept), one per line or ``;``."""
    commands: list[Command] = []
    words: list[Word] = []
    parts: list[Part] | None = None
    word_start = 0
    cmd_line = line = 1
    i, n = 0, len(text)

    def lit(s: str, quoted: bool) -> None:
        assert parts is not None
        if parts and parts[-1].kind == "lit" and parts[-1].quoted == quoted:
            parts[-1] = Part("lit", parts[-1].text + s, quoted)
        else:
            parts.append(Part("lit", s, quoted))

    def end_word(at: int) -> None:
        nonlocal parts
        if parts is None:
            return
        w = Word(tuple(parts), text[word_start:at])
        words.append(w)
        parts = None
        if w.literal == "{":  # "menuentry 'x' {" : the body starts a new command
            end_command()

    def end_command() -> None:
        nonlocal words
        if words:
            commands.append(Command(tuple(words), cmd_line))
        words = []

    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] == "\n":
            i += 2
            line += 1
            continue
        if c in " \t\r":
            end_word(i)
            i += 1
            continue
        if c == "\n" or c == ";" or (shell and c in "&|"):
            end_word(i)
            end_command()
            if c == "\n":
                line += 1
            i += 1
            continue
        if c == "#" and parts is None:
            while i < n and text[i] != "\n":
                i += 1
            continue
        if parts is None:
            parts = []
            word_start = i
            if not words:
                cmd_line = line
            if c == "}":  # a closing brace is a command of its own
                end_command()
                cmd_line = line
        if c == "'":
            k = text.find("'", i + 1)
            if k < 0:
                raise ParseError("unterminated single quote", line=line)
            lit(text[i + 1 : k], True)
            line += text.count("\n", i, k)
            i = k + 1
        elif c == '"':
            start_line = line
            i += 1
            while True:
                if i >= n:
                    raise ParseError("unterminated double quote", line=start_line)
                c = text[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\" and i + 1 < n and text[i + 1] in '$`"\\\n':
                    if text[i + 1] == "\n":
                        line += 1
                    else:
                        lit(text[i + 1], True)
                    i += 2
                elif c == "$":
                    try:
                        part, i = _read_var(text, i, shell=shell, quoted=True)
                    except ParseError as exc:
                        raise ParseError(exc.problem, line=line) from None
                    if part is None:
                        lit("$", True)
                    else:
                        parts.append(part)
                elif c == "`" and shell:
                    k = text.find("`", i + 1)
                    if k < 0:
                        raise ParseError("unterminated backquote", line=line)
                    parts.append(Part("cmd", text[i : k + 1], True))
                    i = k + 1
                else:
                    if c == "\n":
                        line += 1
                    lit(c, True)
                    i += 1
        elif c == "$":
            try:
                part, i = _read_var(text, i, shell=shell, quoted=False)
            except ParseError as exc:
                raise ParseError(exc.problem, line=line) from None
            if part is None:
                lit("$", False)
            else:
                parts.append(part)
        elif c == "`" and shell:
            k = text.find("`", i + 1)
            if k < 0:
                raise ParseError("unterminated backquote", line=line)
            parts.append(Part("cmd", text[i : k + 1], False))
            i = k + 1
        elif c == "\\" and i + 1 < n:
            lit(text[i + 1], True)
            i += 2
        else:
            lit(c, False)
            i += 1
    end_word(n)
    end_command()
    return commands


def _is_assignment(word: Word) -> bool:
    first = word.parts[0] if word.parts else None
    return first is not None and first.kind == "lit" and not first.quoted and bool(_ASSIGN.match(first.text))
