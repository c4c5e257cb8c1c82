"""GRUB script and shell lexer: text split into commands of words, quoting kept (the lexical layer shared
by the shell-variable and GRUB script readers).

Linear in the input: literal text is taken in runs (one regular-expression match from the current
position, never from the start), pieces of a word are joined once when the word ends, and every
construct (quotes, ``${...}``, ``$(...)``, comments) is scanned once. Equal words share one object.
"""

from __future__ import annotations

import re

from audit.errors import ParseError
from audit.parsers.grub.limits import MAX_WORDS, GrubLimitError
from audit.record import Record

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=")
_BRACED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*|[0-9]+|[?#@*])(?:(:?[-+=?])(.*))?", re.S)
_DIGITS = re.compile(r"[0-9]+")
_PARENS = re.compile(r"[()]")
_BLANKS = re.compile(r"[ \t\r]+")
#: an unquoted run of literal text: up to anything the main loop handles itself (GRUB, shell)
_RUN = (re.compile(r"[^ \t\r\n;'\"$\\]+"), re.compile(r"[^ \t\r\n;'\"$\\`&|]+"))
#: what ends a word that is one unquoted run (the common case, read without the general machinery)
_WORD_END = (frozenset(" \t\r\n;"), frozenset(" \t\r\n;&|"))
#: a run inside double quotes
_DQ_RUN = (re.compile(r'[^"$\\]+'), re.compile(r'[^"$\\`]+'))
#: what a backslash escapes inside double quotes: GRUB's yylex.l DQUOTE state has \$ \\ \" and
#: \newline; the shell adds \`
_DQ_ESCAPES = ('$"\\\n', '$`"\\\n')

# -- words: the lexical layer shared by the shell and GRUB script readers --------------------------


class Part(Record):
    kind: str  # "lit", "var" or "cmd" (a shell command substitution, never run)
    text: str  # literal text, variable name, or the raw substitution
    quoted: bool = False  # inside '...' or "..."
    op: str = ""  # ${name:-word} style operator
    arg: str = ""  # its word, as written


class Word(Record):
    parts: tuple[Part, ...]
    raw: str  # as written, for messages

    @property
    def literal(self) -> str | None:
        """The text when the word is one unquoted literal (keywords, ``{``), else None."""
        if len(self.parts) == 1 and self.parts[0].kind == "lit" and not self.parts[0].quoted:
            return self.parts[0].text
        return None


class Command(Record):
    words: tuple[Word, ...]
    line: int

    @property
    def name(self) -> str | None:
        return self.words[0].literal if self.words else None


class LexStats:
    """Work one or more lexer runs did, for tests that check it grows linearly with the input:
    ``words`` and ``commands`` produced, ``steps`` (passes of the main loop and of the double-quote
    loop, each handling one construct or run of text), ``scanned`` (characters those passes cover)
    and ``copied`` (characters copied into words: their raw text and joined literal pieces). A linear
    lexer scans and copies each character a bounded number of times."""

    __slots__ = ("commands", "copied", "scanned", "steps", "words")

    def __init__(self) -> None:
        self.words = self.commands = self.steps = self.scanned = self.copied = 0


def _read_var(text: str, i: int, *, shell: bool, quoted: bool) -> tuple[Part | None, int]:
    """Parse the expansion at ``text[i] == '$'``; (None, i+1) when the ``$`` is literal."""
    n = len(text)
    j = i + 1
    if j >= n:
        return None, j
    c = text[j]
    if c == "(" and shell:
        depth = 0
        for m in _PARENS.finditer(text, j):
            if m.group() == "(":
                depth += 1
            else:
                depth -= 1
                if depth == 0:
                    return Part("cmd", text[i : m.end()], quoted), m.end()
        raise ParseError("unterminated $(...)")
    if c == "{":
        k = text.find("}", j)
        if k < 0:
            raise ParseError("unterminated ${...}")
        m = _BRACED.fullmatch(text, j + 1, k)
        if m is None:
            return Part("cmd", text[i : k + 1], quoted), k + 1  # ${#x}, ${x%y}...: not evaluated
        return Part("var", m.group(1), quoted, m.group(2) or "", m.group(3) or ""), k + 1
    m = _NAME.match(text, j)
    if m:
        return Part("var", m.group(0), quoted), m.end()
    if c.isdigit():
        if not shell:  # GRUB reads every digit ($10 is the tenth argument); the shell reads one
            m = _DIGITS.match(text, j)
            if m:
                return Part("var", m.group(0), quoted), m.end()
        return Part("var", c, quoted), j + 1
    if c in "?#@*$!-":
        return Part("var", c, quoted), j + 1
    return None, j


def _lex(text: str, *, shell: bool, stats: LexStats | None = None) -> list[Command]:
    """Split a script into simple commands (words with quoting kept), one per line or ``;``.

    Raises ParseError (with the line) on an unterminated quote or substitution, and GrubLimitError
    past ``MAX_WORDS`` words."""
    commands: list[Command] = []
    words: list[Word] = []
    parts: list[Part] | None = None  # the word being read; None between words
    pending: list[str] = []  # literal pieces not yet made a Part
    pending_quoted = False
    word_start = 0
    cmd_line = line = 1
    i, n = 0, len(text)
    nwords = steps = scanned = copied = 0
    known: dict[str, Word] = {}  # a word's parts depend only on its raw text: equal words share one
    run_re = _RUN[shell]
    word_end = _WORD_END[shell]
    dq_run_re = _DQ_RUN[shell]
    dq_escapes = _DQ_ESCAPES[shell]

    def lit(s: str, quoted: bool) -> None:
        nonlocal pending_quoted, copied
        copied += len(s)
        if pending and pending_quoted != quoted:
            flush()
        pending.append(s)
        pending_quoted = quoted

    def flush() -> None:
        nonlocal copied
        assert parts is not None
        if len(pending) == 1:
            parts.append(Part("lit", pending[0], pending_quoted))
        else:
            joined = "".join(pending)
            copied += len(joined)
            parts.append(Part("lit", joined, pending_quoted))
        pending.clear()

    def add(part: Part) -> None:
        assert parts is not None
        if pending:
            flush()
        parts.append(part)

    def end_word(at: int) -> None:
        nonlocal parts, copied
        if parts is None:
            return
        if pending:
            flush()
        raw = text[word_start:at]
        copied += len(raw)
        w = known.get(raw)
        if w is None:
            if len(parts) == 1 and parts[0].kind == "lit" and not parts[0].quoted and parts[0].text == raw:
                raw = parts[0].text  # one string for both
            w = known[raw] = Word(tuple(parts), raw)
        parts = None
        push(w)

    def push(w: Word) -> None:
        nonlocal nwords
        words.append(w)
        nwords += 1
        if nwords > MAX_WORDS:
            raise GrubLimitError(f"more than {MAX_WORDS} words: larger than any real configuration", line=line)
        if w.literal == "{":  # "menuentry 'x' {" : the body starts a new command
            end_command()

    def end_command() -> None:
        nonlocal words
        if words:
            commands.append(Command(tuple(words), cmd_line))
        words = []

    def var(at: int, quoted: bool) -> int:
        try:
            part, end = _read_var(text, at, shell=shell, quoted=quoted)
        except ParseError as exc:
            raise ParseError(exc.problem, line=line) from None
        if part is None:
            lit("$", quoted)
        else:
            add(part)
        return end

    while i < n:
        steps += 1
        c = text[i]
        start = i
        if c == "\\" and i + 1 < n and text[i + 1] == "\n":
            i += 2
            line += 1
        elif c in " \t\r":
            end_word(i)
            i = _BLANKS.match(text, i).end()  # type: ignore[union-attr]
        elif c == "\n" or c == ";" or (shell and c in "&|"):
            end_word(i)
            end_command()
            if c == "\n":
                line += 1
            i += 1
        elif c == "#" and parts is None:
            k = text.find("\n", i)
            i = n if k < 0 else k
        else:
            if parts is None:
                if not words:
                    cmd_line = line
                if c == "}":  # a closing brace is a command of its own
                    end_command()
                    cmd_line = line
                m = run_re.match(text, i)
                if m is not None and (m.end() == n or text[m.end()] in word_end):  # one plain run
                    raw = m.group()
                    copied += len(raw)
                    w = known.get(raw)
                    if w is None:
                        w = known[raw] = Word((Part("lit", raw, False),), raw)
                    push(w)
                    i = m.end()
                    scanned += i - start
                    continue
                parts = []
                word_start = i
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
                    steps += 1
                    if i >= n:
                        raise ParseError("unterminated double quote", line=start_line)
                    c = text[i]
                    if c == '"':
                        i += 1
                        break
                    if c == "\\":
                        if i + 1 < n and text[i + 1] in dq_escapes:
                            if text[i + 1] == "\n":
                                line += 1
                            else:
                                lit(text[i + 1], True)
                            i += 2
                        else:
                            lit("\\", True)
                            i += 1
                    elif c == "$":
                        end = var(i, True)
                        line += text.count("\n", i, end)
                        i = end
                    elif c == "`" and shell:
                        k = text.find("`", i + 1)
                        if k < 0:
                            raise ParseError("unterminated backquote", line=line)
                        add(Part("cmd", text[i : k + 1], True))
                        line += text.count("\n", i, k)
                        i = k + 1
                    else:
                        m = dq_run_re.match(text, i)
                        assert m is not None
                        s = m.group()
                        lit(s, True)
                        line += s.count("\n")
                        i = m.end()
            elif c == "$":
                end = var(i, False)
                line += text.count("\n", i, end)
                i = end
            elif c == "`" and shell:
                k = text.find("`", i + 1)
                if k < 0:
                    raise ParseError("unterminated backquote", line=line)
                add(Part("cmd", text[i : k + 1], False))
                line += text.count("\n", i, k)
                i = k + 1
            elif c == "\\":
                if i + 1 < n:
                    lit(text[i + 1], True)
                    i += 2
                else:
                    lit("\\", False)
                    i += 1
            else:
                m = run_re.match(text, i)
                assert m is not None  # c itself is in the run
                lit(m.group(), False)
                i = m.end()
        scanned += i - start
    end_word(n)
    end_command()
    if stats is not None:
        stats.words += nwords
        stats.commands += len(commands)
        stats.steps += steps
        stats.scanned += scanned
        stats.copied += copied
    return commands


def _is_assignment(word: Word) -> bool:
    first = word.parts[0] if word.parts else None
    return first is not None and first.kind == "lit" and not first.quoted and bool(_ASSIGN.match(first.text))
