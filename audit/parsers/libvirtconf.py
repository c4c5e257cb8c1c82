"""libvirt's configuration syntax (qemu.conf, libvirtd.conf), read the way libvirt's virconf.c reads it.

Statements ``name = value`` are separated by a newline or ``;``; ``#`` starts a comment (on its own
line or after a value). A value is a "double" or 'single' quoted string (one line, no escapes), a
\"\"\"triple quoted\"\"\" string (may span lines), a whole number with an optional sign, or a
``[list, of, values]`` that may span lines (and holds no comments). A name starts with an ASCII
letter, then letters, digits and ``_``. When a name is given twice, libvirt uses the first
(``virConfGetValue`` returns the first match), and so does this.

What libvirt refuses (it then fails to load the file: the QEMU driver does not start) is a
ParseError with libvirt's own message and the line libvirt names; nothing else is. Linear: one
pass from left to right; lists are parsed with an explicit stack, so any depth costs no recursion.
"""

from __future__ import annotations

import re

from audit.errors import ParseError
from audit.record import Record

_BLANKS = re.compile(r"[ \t]*")
_BLANKS_EOL = re.compile(r"[ \t\r\n]*")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_TO_EOL = re.compile(r"[^\r\n]*")
_DIGITS = re.compile(r"[0-9]*")
_SQ = re.compile(r"[^'\r\n]*")
_DQ = re.compile(r'[^"\r\n]*')
#: a number with more digits than this saturates (libvirt's long long would overflow)
_MAX_DIGITS = 19


class ConfValue(Record):
    kind: str  # "string", "number" or "list"
    value: str | int | tuple[ConfValue, ...]
    line: int  # the line the statement starts on

    def show(self) -> str:
        if self.kind == "string":
            return f'"{self.value}"'
        if self.kind == "number":
            return str(self.value)
        return "[" + ", ".join(v.show() for v in self.value) + "]"  # type: ignore[union-attr]


class LibvirtConf(Record):
    entries: dict[str, ConfValue]  # the first statement of each name: the one libvirt uses
    repeated: dict[str, int]  # names given again later: the line of the first repeat (ignored by libvirt)

    def get(self, name: str) -> ConfValue | None:
        return self.entries.get(name)


def parse_libvirt_conf(text: str) -> LibvirtConf:
    return _Parser(text).parse()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.n = len(text)
        self.i = 0
        self._line_at = 0  # newlines are counted up to here
        self._line = 1

    # -- positions and errors ------------------------------------------------------------------
    def line(self) -> int:
        """libvirt's line counter here: 1 + the newlines consumed (counted incrementally)."""
        if self.i > self._line_at:
            self._line += self.text.count("\n", self._line_at, self.i)
            self._line_at = self.i
        return self._line

    def fail(self, problem: str) -> ParseError:
        return ParseError(problem, line=self.line())

    def cur(self) -> str:
        return self.text[self.i] if self.i < self.n else "\0"  # libvirt reads the NUL after the end

    def skip(self, pattern: re.Pattern[str]) -> None:
        m = pattern.match(self.text, self.i)
        if m:
            self.i = m.end()

    # -- values --------------------------------------------------------------------------------
    def string(self) -> str:
        text, i = self.text, self.i
        quote = text[i]
        if quote == '"' and i + 6 < self.n and text.startswith('"""', i):
            end = text.find('"""', i + 3)
            if end < 0:
                self.i = self.n
                raise self.fail("unterminated string")
            self.i = end + 3
            return text[i + 3:end]
        m = (_DQ if quote == '"' else _SQ).match(text, i + 1)
        assert m is not None
        self.i = m.end()
        if self.cur() != quote:
            raise self.fail("unterminated string")
        self.i += 1
        return m.group(0)

    def number(self) -> int:
        sign = -1 if self.cur() == "-" else 1
        if self.cur() in "+-":
            self.i += 1
        m = _DIGITS.match(self.text, self.i)
        if self.i >= self.n or m is None or not m.group(0):
            raise self.fail("unterminated number")
        self.i = m.end()
        digits = m.group(0)
        return sign * (int(digits) if len(digits) <= _MAX_DIGITS else 1 << 63)

    def value(self, line: int) -> ConfValue:
        """One value (virConfParseValue), lists included, without recursion."""
        stack: list[list[ConfValue]] = []
        while True:
            self.skip(_BLANKS)
            if self.i >= self.n:
                raise self.fail("expecting a value")
            c = self.text[self.i]
            item: ConfValue | None
            if c in "\"'":
                item = ConfValue("string", self.string(), line)
            elif c == "[":
                self.i += 1
                self.skip(_BLANKS_EOL)
                if self.i < self.n and self.text[self.i] != "]":
                    stack.append([])
                    continue  # its first value
                item = None  # an empty list, closed below
                stack.append([])
            elif c in "0123456789+-":
                item = ConfValue("number", self.number(), line)
            else:
                raise self.fail("expecting a value")
            # attach ``item`` to the list that is open, closing the lists that end here
            while stack:
                if item is not None:
                    stack[-1].append(item)
                    self.skip(_BLANKS_EOL)
                    if self.i < self.n and self.text[self.i] != "]":
                        if self.text[self.i] != ",":
                            raise self.fail("expecting a separator in list")
                        self.i += 1
                        self.skip(_BLANKS_EOL)
                        if self.cur() != "]":
                            break  # the next value of this list
                if self.cur() != "]":
                    raise self.fail("list is not closed with ]")
                self.i += 1
                item = ConfValue("list", tuple(stack.pop()), line)
            else:
                assert item is not None
                return item

    # -- statements ----------------------------------------------------------------------------
    def parse(self) -> LibvirtConf:
        entries: dict[str, ConfValue] = {}
        repeated: dict[str, int] = {}
        while self.i < self.n:
            self.statement(entries, repeated)
            self.separator()
        return LibvirtConf(entries=entries, repeated=repeated)

    def statement(self, entries: dict[str, ConfValue], repeated: dict[str, int]) -> None:
        self.skip(_BLANKS_EOL)
        if self.cur() == "#":
            self.i += 1
            self.skip(_TO_EOL)
            return
        m = _NAME.match(self.text, self.i)
        if m is None:
            raise self.fail("expecting a name")
        name, line = m.group(0), self.line()
        self.i = m.end()
        self.skip(_BLANKS)
        if self.cur() != "=":
            raise self.fail("expecting an assignment")
        self.i += 1
        value = self.value(line)
        self.skip(_BLANKS)
        if self.cur() == "#":
            self.skip(_TO_EOL)
        if name in entries:
            repeated.setdefault(name, line)
        else:
            entries[name] = value

    def separator(self) -> None:
        self.skip(_BLANKS)
        if self.i >= self.n:
            return
        c = self.text[self.i]
        if c in "\r\n":
            self.skip(_BLANKS_EOL)
        elif c == ";":
            self.i += 1
            self.skip(_BLANKS_EOL)
        else:
            raise self.fail("expecting a separator")
