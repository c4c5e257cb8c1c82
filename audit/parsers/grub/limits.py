"""Bounds on the work a GRUB configuration may make hostaudit do, and the meter that enforces them.

An audited image is untrusted input: a ``grub.cfg`` that sources itself, fans out into many files,
doubles a variable on every line or defines a hundred thousand entries would otherwise hang the audit
or exhaust its memory. GRUB itself has none of these limits; real configurations stay orders of
magnitude below them (a few hundred commands, under ten files, one ``blscfg``, tens of entries).

A limit that runs out is a :class:`GrubLimitError` naming the file and line where it ran out: the
configuration is then reported as unusable (an ``error``), never evaluated in part and passed.
"""

from __future__ import annotations

from collections.abc import Iterator

from audit.errors import FactError, ParseError

#: Words one script may hold (lexer): bounds the syntax tree's memory (about 100-250 bytes a word).
MAX_WORDS = 250_000
#: Evaluation steps of one run, across sourced files, submenus and function calls: a command, a
#: condition or a menu entry is one step; copying the variables into a snapshot (``blscfg``, a new
#: context) costs one step a variable.
MAX_STEPS = 200_000
#: Files one run reads: ``source``/``configfile``/``normal`` targets, ``load_env`` blocks, ``test -s``.
MAX_FILES = 64
#: Characters word expansion may produce in one run (or one shell-variable file): a variable doubled
#: on each line (``set x=$x$x``) grows exponentially otherwise. Twice the largest file hostaudit reads.
MAX_EXPANSION = 64 << 20
#: Menu entries and submenus one run may define (every level, ``configfile`` menus included).
MAX_MENU_ITEMS = 10_000
#: ``blscfg`` commands one run may evaluate: each one reads every BLS entry file again.
MAX_BLSCFG = 8
#: BLS entry files read from one directory.
MAX_BLS_ENTRIES = 1024
#: One BLS entry file: a real one is a few hundred bytes, and every entry read is kept (the menu).
MAX_BLS_ENTRY_BYTES = 64 << 10
#: Lines with a key in one BLS entry (a real one has about ten).
MAX_BLS_KEYS = 256
#: ``module`` lines in one legacy GRUB entry (a Xen entry has two or three).
MAX_LEGACY_MODULES = 64
#: Problems kept per run (or file); further ones are counted in one last line.
MAX_PROBLEMS = 100

#: The line breaks str.splitlines() knows.


def iter_lines(text: str) -> Iterator[tuple[int, str]]:
    """The lines of a file as GRUB reads them (``grub_file_getline``: split at line feeds only, a
    carriage return before one dropped), numbered from 1, one at a time: no list of every line. Not
    ``str.splitlines``, which also splits at vertical tab, form feed, \x1c-\x1e, NEL and U+2028/9:
    characters GRUB keeps inside a line."""
    pos = lineno = 0
    n = len(text)
    while pos < n:
        lineno += 1
        end = text.find("\n", pos)
        if end < 0:
            end = n
        line = text[pos:end]
        yield lineno, line[:-1] if line.endswith("\r") else line
        pos = end + 1


class GrubLimitError(FactError, ParseError):
    """A bound above ran out. Both a :class:`ParseError` (the input is unusable, for callers of the
    pure parsers) and a :class:`FactError` naming the file and line (so a fact that lets it escape
    becomes an ``error`` result that names the file, not a crash and never a pass)."""

    def __init__(self, problem: str, *, source: str = "GRUB configuration", line: int | None = None) -> None:
        FactError.__init__(self, source, problem, line=line)
        # FactError's super().__init__ reached ParseError.__init__ through the MRO with the whole
        # message; FactError then set source, line and problem: keep them as FactError left them.

    def at(self, source: str, line: int | None = None) -> GrubLimitError:
        """The same problem, located in ``source`` (a file the lexer did not know the name of)."""
        return GrubLimitError(self.problem, source=source, line=self.line if line is None else line)


class Meter:
    """The work one evaluation has done so far, shared by everything it runs (sourced files, submenus,
    function calls). The evaluator keeps ``label``/``line`` on the command it runs, for messages."""

    __slots__ = (
        "blscfg",
        "chars",
        "files",
        "label",
        "line",
        "max_chars",
        "max_files",
        "max_steps",
        "menu_items",
        "steps",
    )

    def __init__(
        self, *, max_steps: int = MAX_STEPS, max_chars: int = MAX_EXPANSION, max_files: int = MAX_FILES
    ) -> None:
        self.steps = 0
        self.chars = 0
        self.files = 0
        self.menu_items = 0
        self.blscfg = 0
        self.label = "GRUB configuration"
        self.line: int | None = None
        self.max_steps = max_steps
        self.max_chars = max_chars
        self.max_files = max_files

    def error(self, problem: str) -> GrubLimitError:
        return GrubLimitError(problem, source=self.label, line=self.line)

    def step(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > self.max_steps:
            raise self.error(
                f"evaluation stopped after {self.max_steps} steps (commands run, variables copied), "
                "more than any real configuration needs: a loop or a fan-out of 'source'?"
            )

    def spend(self, n: int) -> None:
        self.chars += n
        if self.chars > self.max_chars:
            raise self.error(
                f"variable expansion produced more than {self.max_chars} characters "
                "(a variable doubled on every line?)"
            )

    def read(self, what: str) -> None:
        self.files += 1
        if self.files > self.max_files:
            raise self.error(f"{what}: more than {self.max_files} files read by one configuration")

    def menu_item(self) -> None:
        self.menu_items += 1
        if self.menu_items > MAX_MENU_ITEMS:
            raise self.error(f"more than {MAX_MENU_ITEMS} menu entries and submenus")

    def blscfg_call(self) -> None:
        self.blscfg += 1
        if self.blscfg > MAX_BLSCFG:
            raise self.error(f"more than {MAX_BLSCFG} 'blscfg' commands (each reads every BLS entry again)")
