"""Shell-syntax variable files (``/etc/default/grub``, ``/etc/default/grub.d/*.cfg``): the variables they
assign, without running anything.
"""

from __future__ import annotations

from collections.abc import Mapping

from audit.parsers.grub.expand import _expand_word, _Expansion
from audit.parsers.grub.lexer import _ASSIGN, Part, Word, _is_assignment, _lex
from audit.parsers.grub.limits import Meter
from audit.record import Record

# -- shell-syntax variable files: /etc/default/grub, /etc/default/grub.d/*.cfg ----------------------


class ShellVar(Record):
    name: str
    value: str
    origins: tuple[str, ...]  # "<tag>:<line>" of every assignment that contributed, oldest first
    dynamic: bool = False  # holds a $(...) or `...` substitution: value is the raw text


class ShellAssignment(Record):
    name: str
    value: str
    line: int
    dynamic: bool = False


class ShellFile(Record):
    variables: dict[str, ShellVar]  # the values after this file (inherited ones included)
    assignments: tuple[ShellAssignment, ...]  # this file's assignments in order
    problems: tuple[str, ...] = ()
    #: (line, first word) of every command that is not an assignment (``if``, ``.``, ``source``, a
    #: function, any program): not run here, so a value it could set is unknown
    commands: tuple[tuple[int, str], ...] = ()


_SHELL_DECLARE = {"export", "readonly", "local", "declare", "typeset"}
#: Origins kept per variable (the most recent ones): ``X="$X more"`` on every line would otherwise
#: copy a growing list on each line.
MAX_ORIGINS = 32


def parse_shell_vars(
    text: str, *, env: Mapping[str, ShellVar] | None = None, tag: str = "", meter: Meter | None = None
) -> ShellFile:
    """Variables assigned by a shell-syntax file such as ``/etc/default/grub``.

    Handles ``KEY=value``, ``KEY="..."``, ``KEY='...'``, ``export KEY=...``, ``$VAR``/``${VAR}``
    expansion of earlier variables (``env`` carries them from a previous file, as grub-mkconfig
    sources ``/etc/default/grub`` and then ``grub.d/*.cfg`` into one shell), comments, line
    continuations and a missing final newline. Other commands are not run; each is reported.
    ``tag`` prefixes line numbers in ``ShellVar.origins`` (the caller passes the file name); a
    variable keeps its ``MAX_ORIGINS`` most recent origins. Raises ParseError (with the line) on an
    unterminated quote, and GrubLimitError when expansion outgrows ``MAX_EXPANSION`` characters
    (``X=$X$X`` on every line doubles it) or the file holds more than ``MAX_WORDS`` words
    (``meter`` may carry another budget, for tests).
    """
    problems: list[str] = []
    if "\r\n" in text:
        problems.append("CRLF line endings: read as LF (a shell would keep the CR in values)")
        text = text.replace("\r\n", "\n")
    variables: dict[str, ShellVar] = dict(env or {})
    values = {k: v.value for k, v in variables.items()}
    assignments: list[ShellAssignment] = []
    commands: list[tuple[int, str]] = []
    where = f"{tag}:" if tag else ""
    if meter is None:
        meter = Meter()  # one expansion budget for the whole file
    meter.label = tag or "shell variables"
    for cmd in _lex(text, shell=True):
        meter.line = cmd.line
        words = list(cmd.words)
        if words and words[0].literal in _SHELL_DECLARE:
            words = [w for w in words[1:] if not (w.literal or "").startswith("-")]
            words = [w for w in words if _is_assignment(w)]  # "export NAME" alone changes nothing here
            if not words:
                continue
        if not words or not all(_is_assignment(w) for w in words):
            problems.append(f"line {cmd.line}: shell command not evaluated: {cmd.words[0].raw}")
            commands.append((cmd.line, cmd.words[0].raw))
            continue
        for w in words:
            first = w.parts[0]
            m = _ASSIGN.match(first.text)
            assert m is not None
            name = m.group(1)
            rest = first.text[m.end() :]
            value_word = Word(((Part("lit", rest, first.quoted),) if rest else ()) + w.parts[1:], w.raw)
            exp = _Expansion(meter=meter)
            value = _expand_word(value_word, values, exp)
            seen: dict[str, None] = {}
            for ref in dict.fromkeys(exp.used):
                if ref in variables:
                    seen.update(dict.fromkeys(variables[ref].origins))
            origins = [*seen, f"{where}{cmd.line}"][-MAX_ORIGINS:]
            dynamic = exp.dynamic or any(variables[r].dynamic for r in dict.fromkeys(exp.used) if r in variables)
            variables[name] = ShellVar(name=name, value=value, origins=tuple(origins), dynamic=dynamic)
            values[name] = value
            assignments.append(ShellAssignment(name=name, value=value, line=cmd.line, dynamic=dynamic))
    return ShellFile(variables=variables, assignments=tuple(assignments), problems=tuple(problems),
                     commands=tuple(commands))
