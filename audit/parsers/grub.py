"""Boot loader configuration parsers: GRUB 2 scripts, grubenv, BLS entries, legacy GRUB, and the
shell-syntax files that regenerate them (``/etc/default/grub``, ``grub.d/*.cfg``).

Pure: text in, data out. GRUB 2 configurations are scripts, so besides the parser there is a small
evaluator (:func:`run_grub_script`) that replays what GRUB does at boot (``set``, ``load_env``,
``if [ ... ]``, ``menuentry``, ``submenu``, ``blscfg``, ``source``/``configfile``). It reaches files
only through a :class:`GrubFiles` callback object supplied by the caller, so it stays testable on
strings.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

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


# -- shell-syntax variable files: /etc/default/grub, /etc/default/grub.d/*.cfg ----------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ShellVar:
    name: str
    value: str
    origins: tuple[str, ...]  # "<tag>:<line>" of every assignment that contributed, oldest first
    dynamic: bool = False  # holds a $(...) or `...` substitution: value is the raw text


@dataclass(frozen=True, slots=True, kw_only=True)
class ShellAssignment:
    name: str
    value: str
    line: int
    dynamic: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ShellFile:
    variables: dict[str, ShellVar]  # the values after this file (inherited ones included)
    assignments: tuple[ShellAssignment, ...]  # this file's assignments in order
    problems: tuple[str, ...] = ()


_SHELL_DECLARE = {"export", "readonly", "local", "declare", "typeset"}


def parse_shell_vars(text: str, *, env: Mapping[str, ShellVar] | None = None, tag: str = "") -> ShellFile:
    """Variables assigned by a shell-syntax file such as ``/etc/default/grub``.

    Handles ``KEY=value``, ``KEY="..."``, ``KEY='...'``, ``export KEY=...``, ``$VAR``/``${VAR}``
    expansion of earlier variables (``env`` carries them from a previous file, as grub-mkconfig
    sources ``/etc/default/grub`` and then ``grub.d/*.cfg`` into one shell), comments, line
    continuations and a missing final newline. Other commands are not run; each is reported.
    ``tag`` prefixes line numbers in ``ShellVar.origins`` (the caller passes the file name).
    """
    problems: list[str] = []
    if "\r\n" in text:
        problems.append("CRLF line endings: read as LF (a shell would keep the CR in values)")
        text = text.replace("\r\n", "\n")
    variables: dict[str, ShellVar] = dict(env or {})
    values = {k: v.value for k, v in variables.items()}
    assignments: list[ShellAssignment] = []
    where = f"{tag}:" if tag else ""
    for cmd in _lex(text, shell=True):
        words = list(cmd.words)
        if words and words[0].literal in _SHELL_DECLARE:
            words = [w for w in words[1:] if not (w.literal or "").startswith("-")]
            words = [w for w in words if _is_assignment(w)]  # "export NAME" alone changes nothing here
            if not words:
                continue
        if not words or not all(_is_assignment(w) for w in words):
            problems.append(f"line {cmd.line}: shell command not evaluated: {cmd.words[0].raw}")
            continue
        for w in words:
            first = w.parts[0]
            m = _ASSIGN.match(first.text)
            assert m is not None
            name = m.group(1)
            rest = first.text[m.end() :]
            value_word = Word(((Part("lit", rest, first.quoted),) if rest else ()) + w.parts[1:], w.raw)
            exp = _Expansion()
            value = _expand_word(value_word, values, exp)
            origins: list[str] = []
            for ref in exp.used:
                if ref in variables:
                    origins.extend(o for o in variables[ref].origins if o not in origins)
            origins.append(f"{where}{cmd.line}")
            dynamic = exp.dynamic or any(variables[r].dynamic for r in exp.used if r in variables)
            variables[name] = ShellVar(name=name, value=value, origins=tuple(origins), dynamic=dynamic)
            values[name] = value
            assignments.append(ShellAssignment(name=name, value=value, line=cmd.line, dynamic=dynamic))
    return ShellFile(variables=variables, assignments=tuple(assignments), problems=tuple(problems))


def _is_assignment(word: Word) -> bool:
    first = word.parts[0] if word.parts else None
    return first is not None and first.kind == "lit" and not first.quoted and bool(_ASSIGN.match(first.text))


# -- grubenv ---------------------------------------------------------------------------------------

GRUBENV_SIGNATURE = "# GRUB Environment Block\n"
GRUBENV_SIZE = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class GrubEnv:
    values: dict[str, str]
    lines: dict[str, int]  # line of each variable
    problems: tuple[str, ...] = ()  # oddities GRUB tolerates (size)


def parse_grubenv(data: str | bytes) -> GrubEnv:
    """A GRUB environment block (``grubenv``): ``key=value`` lines after the signature, padded
    with ``#`` to 1024 bytes; ``\\`` escapes a backslash or newline in a value.

    A block that ``grub2-editenv`` would call "invalid environment block" (no signature, NUL
    bytes, a line without ``=``) raises ParseError.
    """
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    problems: list[str] = []
    if not raw.startswith(GRUBENV_SIGNATURE.encode()):
        raise ParseError("invalid environment block (no '# GRUB Environment Block' signature)", line=1)
    if b"\0" in raw:
        raise ParseError("invalid environment block (NUL bytes: damaged or zeroed)")
    if len(raw) != GRUBENV_SIZE:
        problems.append(f"block is {len(raw)} bytes, not {GRUBENV_SIZE} (edited by hand?)")
    text = raw.decode("utf-8", "replace")
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    body = text[len(GRUBENV_SIGNATURE) :]
    lineno = 1
    i = 0
    while i < len(body):
        lineno += 1
        if body[i] == "#":
            k = body.find("\n", i)
            i = len(body) if k < 0 else k + 1
            continue
        # a value may contain an escaped newline, so scan characters
        buf: list[str] = []
        start_line = lineno
        while i < len(body) and body[i] != "\n":
            if body[i] == "\\" and i + 1 < len(body):
                if body[i + 1] == "\n":
                    lineno += 1
                buf.append(body[i + 1])
                i += 2
            else:
                buf.append(body[i])
                i += 1
        i += 1
        entry = "".join(buf)
        if not entry.strip():
            continue
        name, eq, value = entry.partition("=")
        if not eq or not name:
            raise ParseError(f"invalid environment block (line without '=': {entry[:40]!r})", line=start_line)
        values[name] = value
        lines[name] = start_line
    return GrubEnv(values=values, lines=lines, problems=tuple(problems))


# -- GRUB 2 script: syntax tree ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IfBlock:
    branches: tuple[tuple[Command | None, tuple[Node, ...]], ...]  # (condition, body); None = else
    line: int


@dataclass(frozen=True, slots=True)
class MenuBlock:
    kind: str  # "menuentry" or "submenu"
    args: tuple[Word, ...]
    body: tuple[Node, ...]
    line: int


@dataclass(frozen=True, slots=True)
class FunctionBlock:
    name: str
    body: tuple[Node, ...]
    line: int


@dataclass(frozen=True, slots=True)
class LoopBlock:
    header: Command
    body: tuple[Node, ...]
    line: int


Node = Command | IfBlock | MenuBlock | FunctionBlock | LoopBlock


@dataclass(frozen=True, slots=True)
class GrubScript:
    nodes: tuple[Node, ...]


_SPLIT_KEYWORDS = {"then", "else", "do"}


def parse_grub_script(text: str) -> GrubScript:
    """The syntax tree of a GRUB 2 script (``grub.cfg``, a stub, ``custom.cfg``).

    Raises ParseError (with the line) on unterminated quotes and unbalanced blocks.
    """
    commands: list[Command] = []
    for cmd in _lex(text, shell=False):
        if cmd.name in _SPLIT_KEYWORDS and len(cmd.words) > 1:  # "then search ..." on one line
            commands.append(Command(cmd.words[:1], cmd.line))
            commands.append(Command(cmd.words[1:], cmd.line))
        else:
            commands.append(cmd)
    nodes, i, end = _parse_block(commands, 0, frozenset())
    if i < len(commands):
        raise ParseError(f"unexpected '{end}'", line=commands[i].line)
    return GrubScript(nodes)


#: Deeper nesting is refused: an image is untrusted input and real configurations nest a few levels.
MAX_NESTING = 64


def _parse_block(
    cmds: list[Command], i: int, stop: frozenset[str], depth: int = 0
) -> tuple[tuple[Node, ...], int, str | None]:
    if depth > MAX_NESTING:
        raise ParseError(
            f"blocks nested more than {MAX_NESTING} deep", line=cmds[i].line if i < len(cmds) else None
        )
    nodes: list[Node] = []
    while i < len(cmds):
        cmd = cmds[i]
        kw = cmd.name
        if kw in stop:
            return tuple(nodes), i, kw
        if kw == "if":
            node, i = _parse_if(cmds, i, depth)
            nodes.append(node)
        elif kw in ("menuentry", "submenu", "function"):
            args = list(cmd.words[1:])
            if args and args[-1].literal == "{":
                args.pop()
                i += 1
            elif i + 1 < len(cmds) and cmds[i + 1].name == "{" and len(cmds[i + 1].words) == 1:
                i += 2
            else:
                raise ParseError(f"'{kw}' without '{{'", line=cmd.line)
            body, i, end = _parse_block(cmds, i, frozenset({"}"}), depth + 1)
            if end != "}":
                raise ParseError(f"'{kw}' block not closed with '}}'", line=cmd.line)
            i += 1
            if kw == "function":
                nodes.append(FunctionBlock(args[0].raw if args else "", body, cmd.line))
            else:
                nodes.append(MenuBlock(kw, tuple(args), body, cmd.line))
        elif kw in ("for", "while", "until"):
            i += 1
            if i < len(cmds) and cmds[i].name == "do":
                i += 1
            else:
                raise ParseError(f"'{kw}' without 'do'", line=cmd.line)
            body, i, end = _parse_block(cmds, i, frozenset({"done"}), depth + 1)
            if end != "done":
                raise ParseError(f"'{kw}' without 'done'", line=cmd.line)
            i += 1
            nodes.append(LoopBlock(cmd, body, cmd.line))
        elif kw in ("fi", "then", "elif", "else", "done", "do", "}", "{"):
            return tuple(nodes), i, kw
        else:
            nodes.append(cmd)
            i += 1
    return tuple(nodes), i, None


def _parse_if(cmds: list[Command], i: int, depth: int) -> tuple[IfBlock, int]:
    start = cmds[i]
    branches: list[tuple[Command | None, tuple[Node, ...]]] = []
    cond: Command | None = Command(start.words[1:], start.line)
    i += 1
    while True:
        if cond is not None:
            if i >= len(cmds) or cmds[i].name != "then":
                raise ParseError("'if' without 'then'", line=start.line)
            i += 1
        body, i, end = _parse_block(cmds, i, frozenset({"elif", "else", "fi"}), depth + 1)
        branches.append((cond, body))
        if end == "fi":
            return IfBlock(tuple(branches), start.line), i + 1
        if end == "elif" and cond is not None:
            cond = Command(cmds[i].words[1:], cmds[i].line)
            i += 1
        elif end == "else" and cond is not None:
            cond = None
            i += 1
        else:
            raise ParseError("'if' without 'fi'", line=start.line)


# -- GRUB 2 script: evaluation -----------------------------------------------------------------------


class GrubFiles(Protocol):
    """How the evaluator reaches files. Paths are GRUB paths (``($dev)/grub2/grub.cfg``); the
    implementation maps them into the audited root and says which file it used."""

    def exists(self, path: str, *, nonempty: bool = False) -> bool | None:
        """None when it cannot tell."""
        ...

    def read(self, path: str) -> tuple[str, str] | None:
        """(label of the file read, its text) or None when absent or unreadable."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class MenuEntry:
    title: str
    entry_id: str | None
    body: tuple[Node, ...]
    source: str  # label of the configuration file
    line: int
    classes: tuple[str, ...] = ()
    conditional: bool = False  # defined under a condition the evaluator could not decide


@dataclass(frozen=True, slots=True, kw_only=True)
class Submenu:
    title: str
    entry_id: str | None
    children: tuple[MenuItem, ...]
    source: str
    line: int
    conditional: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class BlscfgCall:
    """Where ``blscfg`` ran: it inserts the BLS entries here, expanding their options with the
    variables as they are at this point."""

    source: str
    line: int
    blsdir: str | None  # the ``blsdir`` variable or argument, if set
    env: dict[str, str]
    origins: dict[str, str]  # variable -> where its value came from
    conditional: bool = False


MenuItem = MenuEntry | Submenu | BlscfgCall

#: Variables GRUB's normal mode sets itself (grub-core/normal/main.c, features list).
GRUB_FEATURES = {
    name: "y"
    for name in (
        "feature_chainloader_bpb",
        "feature_ntldr",
        "feature_platform_search_hint",
        "feature_default_font_path",
        "feature_all_video_module",
        "feature_menuentry_id",
        "feature_menuentry_options",
        "feature_200_final",
        "feature_nativedisk_cmd",
        "feature_timeout_style",
    )
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Redirect:
    source: str
    line: int
    command: str  # "configfile", "source", "normal", "."
    target: str  # the GRUB path after expansion
    resolved: str | None  # label of the file read, None when it was not found


@dataclass(frozen=True, slots=True, kw_only=True)
class GrubRun:
    """What a GRUB 2 configuration leaves behind once executed."""

    env: dict[str, str]  # variables at the end (``default`` among them)
    origins: dict[str, str]  # variable -> "<file>:<line>" or "<grubenv> (load_env)"
    menu: tuple[MenuItem, ...]
    files: tuple[str, ...]  # labels of the scripts executed, in order
    redirects: tuple[Redirect, ...]
    env_loads: tuple[tuple[str, dict[str, str]], ...]  # (grubenv label, variables loaded)
    uncertain: dict[str, str]  # variable -> where it is set under an undecidable condition
    problems: tuple[str, ...]

    @property
    def has_entries(self) -> bool:
        return bool(self.menu)


class _Stop(Exception):
    """``configfile`` replaced the running script, or ``exit``/``return``."""


class _Evaluator:
    MAX_DEPTH = 8

    def __init__(self, files: GrubFiles, platform: str | None, env: Mapping[str, str]) -> None:
        self.files = files
        self.platform = platform
        self.env: dict[str, str] = dict(GRUB_FEATURES)
        # values only the booting machine knows: a condition that reads them is undecidable here
        self.unknown = {"grub_cpu", "?"}
        if platform:
            self.env["grub_platform"] = platform
        else:
            self.unknown.add("grub_platform")
        self.env.update(env)
        self.origins: dict[str, str] = {}
        self.uncertain: dict[str, str] = {}
        self.problems: list[str] = []
        self.executed: list[str] = []
        self.redirects: list[Redirect] = []
        self.env_loads: list[tuple[str, dict[str, str]]] = []
        self.menu: list[MenuItem] = []
        self.depth = 0
        self.grubenv_problems_seen: set[str] = set()

    # mode: "run" (certain), "maybe" (under an undecidable condition), "shadow" (other branches)
    def run_nodes(self, nodes: Iterable[Node], label: str, mode: str) -> None:
        for node in nodes:
            if isinstance(node, Command):
                self.run_command(node, label, mode)
            elif isinstance(node, IfBlock):
                self.run_if(node, label, mode)
            elif isinstance(node, MenuBlock) and mode != "shadow":
                self.add_menu(node, label, conditional=mode == "maybe")
            # functions and loops: definitions and repetitions do not change the menu here

    def run_if(self, node: IfBlock, label: str, mode: str) -> None:
        undecided = False
        for cond, body in node.branches:
            if undecided:  # after an undecidable condition, any later branch may be the one that runs
                self.run_nodes(body, label, "shadow")
                continue
            truth = True if cond is None else self.condition(cond)
            if truth is True:
                self.run_nodes(body, label, mode)
                return
            if truth is None:
                self.run_nodes(body, label, "shadow" if mode == "shadow" else "maybe")
                undecided = True

    def condition(self, cond: Command) -> bool | None:
        if not cond.words:
            return None
        exp = _Expansion()
        args = [t for t, _ in _expand_fields(cond.words, self.env, exp)]
        if any(v in self.unknown and v not in self.env for v in exp.used):
            return None
        negate = False
        while args and args[0] == "!":
            negate = not negate
            args = args[1:]
        if not args:
            return None
        if args[0] == "[":
            result = _test(args[1:-1] if args[-1] == "]" else args[1:], self.files)
        elif args[0] == "test":
            result = _test(args[1:], self.files)
        elif args[0] == "true":
            result = True
        elif args[0] == "false":
            result = False
        else:
            result = None
        if result is None:
            return None
        return not result if negate else result

    def set_var(self, name: str, value: str, where: str, mode: str) -> None:
        if mode == "run":
            self.env[name] = value
            self.origins[name] = where
            self.uncertain.pop(name, None)
        else:
            self.uncertain.setdefault(name, where)

    def run_command(self, cmd: Command, label: str, mode: str) -> None:
        name = cmd.name
        where = f"{label}:{cmd.line}"
        if cmd.words and _is_assignment(cmd.words[0]):  # "name=value" without "set"
            name = "set"
            words = cmd.words
        else:
            words = cmd.words[1:]
        if name == "set":
            for text, _ in _expand_fields(words, self.env, _Expansion()):
                var, eq, value = text.partition("=")
                if eq and _NAME.fullmatch(var):
                    self.set_var(var, value, where, mode)
        elif name == "unset":
            for text, _ in _expand_fields(words, self.env, _Expansion()):
                if mode == "run":
                    self.env.pop(text, None)
                    self.origins[text] = f"{where} (unset)"
                else:
                    self.uncertain.setdefault(text, where)
        elif name == "load_env":
            self.load_env(cmd, label, mode)
        elif name == "blscfg":
            if mode == "shadow":
                return
            args = [t for t, _ in _expand_fields(words, self.env, _Expansion()) if not t.startswith("-")]
            blsdir = args[0] if args else self.env.get("blsdir") or None
            self.menu.append(
                BlscfgCall(
                    source=label,
                    line=cmd.line,
                    blsdir=blsdir,
                    env=dict(self.env),
                    origins=dict(self.origins),
                    conditional=mode == "maybe",
                )
            )
        elif name in ("configfile", "source", ".", "normal"):
            self.redirect(cmd, name, label, mode)
        elif name in ("exit", "return") and mode == "run":
            raise _Stop

    def load_env(self, cmd: Command, label: str, mode: str) -> None:
        args = [t for t, _ in _expand_fields(cmd.words[1:], self.env, _Expansion())]
        path = None
        names: list[str] = []
        k = 0
        while k < len(args):
            a = args[k]
            if a in ("-f", "--file") and k + 1 < len(args):
                path = args[k + 1]
                k += 2
                continue
            if a.startswith("--file="):
                path = a.split("=", 1)[1]
            elif not a.startswith("-"):
                names.append(a)
            k += 1
        if path is None:
            path = self.env.get("prefix", "") + "/grubenv"
        got = self.files.read(path)
        if got is None:
            return
        envlabel, text = got
        try:
            grubenv = parse_grubenv(text.encode("utf-8", "surrogateescape"))
        except ParseError as exc:
            if envlabel not in self.grubenv_problems_seen:
                self.grubenv_problems_seen.add(envlabel)
                where = f"{envlabel}:{exc.line}" if exc.line else envlabel
                self.problems.append(f"{where}: {exc.problem}; GRUB loads no variables from it")
            return
        for p in grubenv.problems:
            if envlabel not in self.grubenv_problems_seen:
                self.grubenv_problems_seen.add(envlabel)
                self.problems.append(f"{envlabel}: {p}")
        loaded: dict[str, str] = {}
        for var, value in grubenv.values.items():
            if names and var not in names:
                continue
            self.set_var(
                var, value, f"{envlabel}:{grubenv.lines[var]} (load_env at {label}:{cmd.line})", mode
            )
            loaded[var] = value
        if mode == "run":
            self.env_loads.append((envlabel, loaded))

    def redirect(self, cmd: Command, name: str, label: str, mode: str) -> None:
        args = [t for t, _ in _expand_fields(cmd.words[1:], self.env, _Expansion())]
        if not args or mode == "shadow":
            return
        target = args[0]
        if self.depth >= self.MAX_DEPTH:
            self.problems.append(f"{label}:{cmd.line}: '{name} {target}' nested too deep; not followed")
            return
        got = self.files.read(target)
        self.redirects.append(
            Redirect(
                source=label, line=cmd.line, command=name, target=target, resolved=got[0] if got else None
            )
        )
        if got is None:
            if mode == "run" and name in ("configfile", "normal"):
                self.problems.append(
                    f"{label}:{cmd.line}: '{name} {cmd.words[1].raw}' loads {target}, which does not exist"
                )
            return
        sub_label, text = got
        if sub_label in self.executed and name in ("configfile", "normal"):
            self.problems.append(f"{label}:{cmd.line}: '{name}' loads {sub_label} again (a loop); stopped")
            raise _Stop
        try:
            script = parse_grub_script(text)
        except ParseError as exc:
            self.problems.append(f"{sub_label}:{exc.line or '?'}: {exc.problem}; not used")
            return
        self.depth += 1
        saved_dir = self.env.get("config_directory")
        self.env["config_directory"] = _dirname(target)
        self.executed.append(sub_label)
        if name in ("configfile", "normal") and mode == "run":
            self.menu = []  # the loaded file's menu replaces this one
            with contextlib.suppress(_Stop):
                self.run_nodes(script.nodes, sub_label, mode)
            raise _Stop
        try:
            self.run_nodes(script.nodes, sub_label, mode)
        except _Stop:
            pass
        finally:
            self.depth -= 1
            if saved_dir is None:
                self.env.pop("config_directory", None)
            else:
                self.env["config_directory"] = saved_dir

    def add_menu(self, node: MenuBlock, label: str, *, conditional: bool) -> None:
        fields = [t for t, _ in _expand_fields(node.args, self.env, _Expansion())]
        title, entry_id, classes = _menu_args(fields)
        if node.kind == "menuentry":
            self.menu.append(
                MenuEntry(
                    title=title,
                    entry_id=entry_id,
                    body=node.body,
                    source=label,
                    line=node.line,
                    classes=tuple(classes),
                    conditional=conditional,
                )
            )
            return
        outer, saved_env = self.menu, dict(self.env)
        self.menu = []
        with contextlib.suppress(_Stop):
            self.run_nodes(node.body, label, "maybe" if conditional else "run")
        children, self.menu, self.env = tuple(self.menu), outer, saved_env
        self.menu.append(
            Submenu(
                title=title,
                entry_id=entry_id,
                children=children,
                source=label,
                line=node.line,
                conditional=conditional,
            )
        )


def _menu_args(fields: list[str]) -> tuple[str, str | None, list[str]]:
    """menuentry/submenu arguments: the title is the first word that is not an option."""
    title: str | None = None
    entry_id: str | None = None
    classes: list[str] = []
    with_value = {"--class", "--users", "--hotkey", "--id", "--source"}
    k = 0
    while k < len(fields):
        f = fields[k]
        if f.startswith("--") and "=" in f:
            opt, _, val = f.partition("=")
            if opt == "--id":
                entry_id = val
            elif opt == "--class":
                classes.append(val)
        elif f in with_value and k + 1 < len(fields):
            if f == "--id":
                entry_id = fields[k + 1]
            elif f == "--class":
                classes.append(fields[k + 1])
            k += 1
        elif f.startswith("--"):
            pass  # --unrestricted
        elif title is None:
            title = f
        k += 1
    return title or "", entry_id, classes


def _dirname(path: str) -> str:
    head, _, _tail = path.rpartition("/")
    return head


def _test(args: list[str], files: GrubFiles) -> bool | None:
    """GRUB's ``test``/``[``: string, number and file tests, ``!``, ``-a``, ``-o``. None when undecidable."""
    pos = 0

    def primary() -> bool | None:
        nonlocal pos
        if pos >= len(args):
            return None
        a = args[pos]
        if a == "!":
            pos += 1
            r = primary()
            return None if r is None else not r
        if a == "(":
            pos += 1
            r = or_expr()
            if pos < len(args) and args[pos] == ")":
                pos += 1
            return r
        if pos + 2 < len(args) and args[pos + 1] in (
            "=",
            "==",
            "!=",
            "-eq",
            "-ne",
            "-lt",
            "-le",
            "-gt",
            "-ge",
        ):
            left, op, right = a, args[pos + 1], args[pos + 2]
            pos += 3
            if op in ("=", "=="):
                return left == right
            if op == "!=":
                return left != right
            try:
                lv, rv = int(left), int(right)
            except ValueError:
                return None
            return {"-eq": lv == rv, "-ne": lv != rv, "-lt": lv < rv, "-le": lv <= rv, "-gt": lv > rv}.get(
                op, lv >= rv
            )
        if a in ("-z", "-n", "-f", "-e", "-d", "-s") and pos + 1 < len(args):
            operand = args[pos + 1]
            pos += 2
            if a == "-z":
                return operand == ""
            if a == "-n":
                return operand != ""
            if a == "-d":
                return None
            return files.exists(operand, nonempty=a == "-s")
        pos += 1
        return a != ""

    def and_expr() -> bool | None:
        nonlocal pos
        r = primary()
        while pos < len(args) and args[pos] == "-a":
            pos += 1
            s = primary()
            r = False if r is False or s is False else (None if r is None or s is None else True)
        return r

    def or_expr() -> bool | None:
        nonlocal pos
        r = and_expr()
        while pos < len(args) and args[pos] == "-o":
            pos += 1
            s = and_expr()
            r = True if r is True or s is True else (None if r is None or s is None else False)
        return r

    if not args:
        return False
    return or_expr()


def run_grub_script(
    script: GrubScript,
    *,
    label: str,
    files: GrubFiles,
    platform: str | None = None,
    env: Mapping[str, str] | None = None,
) -> GrubRun:
    """Execute a parsed GRUB 2 configuration the way GRUB's normal mode would before showing the
    menu. ``platform`` is "efi" or "pc" (``$grub_platform``), None when unknown; ``env`` presets
    variables (``prefix``, ``config_directory``...)."""
    ev = _Evaluator(files, platform, env or {})
    ev.executed.append(label)
    with contextlib.suppress(_Stop):
        ev.run_nodes(script.nodes, label, "run")
    return GrubRun(
        env=ev.env,
        origins=ev.origins,
        menu=tuple(ev.menu),
        files=tuple(ev.executed),
        redirects=tuple(ev.redirects),
        env_loads=tuple(ev.env_loads),
        uncertain=ev.uncertain,
        problems=tuple(ev.problems),
    )


# -- a menu entry's kernel command ---------------------------------------------------------------------

_LINUX_COMMANDS = {"linux", "linux16", "linuxefi"}
_XEN_COMMANDS = {"multiboot", "multiboot2"}
_MODULE_COMMANDS = {"module", "module2"}


@dataclass(frozen=True, slots=True, kw_only=True)
class KernelCommand:
    command: str  # "linux", "linux16", "linuxefi", or "module" for a Xen dom0 kernel
    path: str  # kernel image as written (device prefix kept)
    cmdline: str  # arguments after the path, variables expanded
    raw_args: str  # arguments as written
    line: int
    undefined: tuple[str, ...] = ()  # variables used in the arguments without a definition
    variables: tuple[str, ...] = ()  # every variable used in the arguments
    hypervisor: str | None = None  # Xen: "multiboot /xen.gz dom0_mem=..." when the entry boots Xen
    chainloader: str | None = None  # the entry chainloads this image instead of a kernel
    uncertain: bool = False  # chosen under a condition the evaluator could not decide


def entry_kernel(
    entry: MenuEntry, *, env: Mapping[str, str], files: GrubFiles, platform: str | None = None
) -> KernelCommand | None:
    """The kernel an entry boots and its arguments, from the first ``linux``/``linux16``/``linuxefi``
    (or, for Xen, the first ``module`` after ``multiboot``), expanded with ``env`` plus the entry's
    own ``set`` commands. None when the entry loads no kernel."""
    scope = dict(env)
    hypervisor: list[str] = []
    result: list[KernelCommand] = []

    def walk(nodes: Iterable[Node], uncertain: bool) -> bool:
        for node in nodes:
            if isinstance(node, IfBlock):
                for cond, body in node.branches:
                    truth = True
                    if cond is not None:
                        ev = _Evaluator(files, platform, scope)
                        truth = ev.condition(cond)
                    if truth is False:
                        continue
                    if walk(body, uncertain or truth is None):
                        return True
                    break
                continue
            if not isinstance(node, Command) or not node.words:
                continue
            name = node.name
            if _is_assignment(node.words[0]):
                name, args_words = "set", node.words
            else:
                args_words = node.words[1:]
            if name == "set":
                for text, _ in _expand_fields(args_words, scope, _Expansion()):
                    var, eq, value = text.partition("=")
                    if eq and _NAME.fullmatch(var):
                        scope[var] = value
                continue
            if name in _XEN_COMMANDS:
                raw = " ".join(w.raw for w in args_words)
                hypervisor.append(f"{name} {raw}")
                continue
            is_module = name in _MODULE_COMMANDS and hypervisor
            if name in _LINUX_COMMANDS or is_module or name == "chainloader":
                exp = _Expansion()
                fields = _expand_fields(args_words, scope, exp)
                while fields and fields[0][0].startswith("--"):  # --nounzip, --type=...
                    fields = fields[1:]
                if not fields:
                    continue
                path = fields[0][0]
                rest = fields[1:]
                if is_module and rest and rest[0][0] == "placeholder":  # Debian 20_linux_xen
                    rest = rest[1:]
                raw_words = [w.raw for w in args_words]
                while raw_words and raw_words[0].startswith("--"):
                    raw_words = raw_words[1:]
                result.append(
                    KernelCommand(
                        command="module" if is_module else name,
                        path=path,
                        cmdline="" if name == "chainloader" else _join_cmdline(rest),
                        raw_args=" ".join(raw_words[1:]),
                        line=node.line,
                        undefined=tuple(dict.fromkeys(exp.undefined)),
                        variables=tuple(dict.fromkeys(exp.used)),
                        hypervisor=hypervisor[0] if is_module else None,
                        chainloader=path if name == "chainloader" else None,
                        uncertain=uncertain,
                    )
                )
                return True
        return False

    walk(entry.body, False)
    return result[0] if result else None


# -- default entry selection -------------------------------------------------------------------------


def split_default(value: str) -> list[str]:
    """``default`` split into menu levels at ``>`` (``>>`` is a literal ``>`` in a title)."""
    parts: list[str] = []
    buf: list[str] = []
    i = 0
    while i < len(value):
        if value[i] == ">":
            if value[i + 1 : i + 2] == ">":
                buf.append(">")
                i += 2
                continue
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(value[i])
        i += 1
    parts.append("".join(buf))
    return parts


def parse_grub_number(text: str) -> int | None:
    """``grub_strtoul(text, 0, 0)``: decimal, ``0x`` hex or leading-zero octal; None if not a number."""
    t = text.strip()
    try:
        if re.fullmatch(r"0[xX][0-9a-fA-F]+", t):
            return int(t, 16)
        if re.fullmatch(r"0[0-7]+", t):
            return int(t, 8)
        if re.fullmatch(r"[0-9]+", t):
            return int(t)
    except ValueError:  # pragma: no cover - guarded by the patterns
        return None
    return None


# -- BLS entries ---------------------------------------------------------------------------------------

_BLS_MULTI = {"initrd", "options", "grub_arg", "grub_class"}


@dataclass(frozen=True, slots=True, kw_only=True)
class BlsEntry:
    """One ``/boot/loader/entries/*.conf`` file."""

    title: str | None = None
    version: str | None = None
    linux: str | None = None
    initrd: tuple[str, ...] = ()
    options: tuple[str, ...] = ()  # each options line as written
    entry_id: str | None = None  # the ``id`` key (GRUB uses the file name instead)
    grub_users: str | None = None
    grub_arg: tuple[str, ...] = ()
    grub_class: tuple[str, ...] = ()
    efi: str | None = None
    keys: tuple[tuple[str, str, int], ...] = ()  # every (key, value, line), in order
    grub_stop_line: int | None = None  # GRUB's blscfg stops reading here (blank line, key without value)

    @property
    def options_joined(self) -> str:
        """All options lines joined, as the BLS specification (and systemd-boot) reads them."""
        return " ".join(o for o in self.options if o)

    def grub_values(self, key: str) -> list[tuple[str, int]]:
        """(value, line) of ``key`` among the lines GRUB's blscfg actually reads."""
        stop = self.grub_stop_line
        return [(v, n) for k, v, n in self.keys if k == key and (stop is None or n < stop)]

    def line_of(self, key: str) -> int | None:
        for k, _v, n in self.keys:
            if k == key:
                return n
        return None


def parse_bls_entry(text: str) -> BlsEntry:
    """A Boot Loader Specification entry: ``key value`` lines; ``#`` comments, blank lines and keys
    without a value are tolerated. ``initrd``, ``options``, ``grub_arg`` and ``grub_class`` may
    repeat. Raises ParseError only for binary content."""
    if "\0" in text:
        raise ParseError("binary content (NUL bytes)")
    keys: list[tuple[str, str, int]] = []
    stop: int | None = None
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.lstrip(" \t").rstrip("\r")
        if line.startswith("#"):
            continue
        # GRUB splits at the first space (else the first tab) and stops at a line without a value.
        sep = line.find(" ")
        if sep < 0:
            sep = line.find("\t")
        if stop is None and (sep < 0 or sep + 1 >= len(line)):
            stop = n
        if not line.strip():
            continue
        m = re.match(r"(\S+)\s*(.*)$", line)
        assert m is not None
        keys.append((m.group(1), m.group(2).rstrip(), n))
    if stop is not None and not any(n > stop for _k, _v, n in keys):
        stop = None  # nothing after it: GRUB loses nothing

    def first(key: str) -> str | None:
        for k, v, _n in keys:
            if k == key:
                return v
        return None

    def every(key: str) -> tuple[str, ...]:
        return tuple(v for k, v, _n in keys if k == key)

    return BlsEntry(
        title=first("title"),
        version=first("version"),
        linux=first("linux"),
        initrd=tuple(x for v in every("initrd") for x in v.split()),
        options=every("options"),
        entry_id=first("id"),
        grub_users=first("grub_users"),
        grub_arg=every("grub_arg"),
        grub_class=every("grub_class"),
        efi=first("efi"),
        keys=tuple(keys),
        grub_stop_line=stop,
    )


def rpm_vercmp(a: str, b: str) -> int:
    """rpm's version comparison as GRUB's blscfg implements it: 1 if ``a`` is newer, -1, or 0."""
    if a == b:
        return 0
    i = j = 0
    la, lb = len(a), len(b)

    def sep(s: str, k: int) -> int:
        while k < len(s) and not s[k].isalnum() and s[k] not in "~+":
            k += 1
        return k

    while i < la or j < lb:
        i, j = sep(a, i), sep(b, j)
        ca = a[i] if i < la else ""
        cb = b[j] if j < lb else ""
        if ca == "~" or cb == "~":
            if ca != "~":
                return 1
            if cb != "~":
                return -1
            i, j = i + 1, j + 1
            continue
        if ca == "+" or cb == "+":
            if not ca:
                return -1
            if not cb:
                return 1
            if ca != "+":
                return 1
            if cb != "+":
                return -1
            i, j = i + 1, j + 1
            continue
        if not (ca and cb):
            break
        if ca.isdigit():
            ei, ej = i, j
            while ei < la and a[ei].isdigit():
                ei += 1
            while ej < lb and b[ej].isdigit():
                ej += 1
            isnum = True
        else:
            ei, ej = i, j
            while ei < la and a[ei].isalpha():
                ei += 1
            while ej < lb and b[ej].isalpha():
                ej += 1
            isnum = False
        one, two = a[i:ei], b[j:ej]
        if not two:
            return 1 if isnum else -1
        if isnum:
            one, two = one.lstrip("0"), two.lstrip("0")
            if len(one) != len(two):
                return 1 if len(one) > len(two) else -1
        if one != two:
            return 1 if one > two else -1
        i, j = ei, ej
    if i >= la and j >= lb:
        return 0
    return -1 if i >= la else 1


def _split_nvr(s: str) -> tuple[str, str, str]:
    """name, version, release: the last two ``-`` separate them (blscfg's split_package_string)."""
    head, dash, release = s.rpartition("-")
    if not dash:
        return s, "", ""
    name, dash2, version = head.rpartition("-")
    if not dash2:
        return head, release, ""  # values bubble up when there are fewer fields
    return name, version, release


def bls_compare(a: str, b: str) -> int:
    """GRUB's order of two BLS file names (without ``.conf``): 1 when ``a`` sorts as newer."""
    for x, y in zip(_split_nvr(a), _split_nvr(b), strict=True):
        r = rpm_vercmp(x, y)
        if r:
            return r
    return 0


def sort_bls_names(names: Iterable[str]) -> list[str]:
    """BLS entry ids in GRUB's menu order: newest first (rhboot grub2 ``bls_add_entry``)."""
    return sorted(names, key=functools.cmp_to_key(bls_compare), reverse=True)


def expand_bls_options(text: str, env: Mapping[str, str]) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """``options`` with ``$name``/``${name}`` replaced from ``env``, as blscfg does when it builds
    the menu. An undefined variable expands to nothing. Returns (text, used, undefined)."""
    used: list[str] = []
    undefined: list[str] = []

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        used.append(name)
        if name not in env:
            undefined.append(name)
            return ""
        return env[name]

    out = re.sub(r"\$\{([A-Za-z0-9_]+)\}|\$([A-Za-z0-9_]+)", sub, text)
    return " ".join(out.split()), tuple(dict.fromkeys(used)), tuple(dict.fromkeys(undefined))


# -- legacy GRUB (0.97): grub.conf / menu.lst -----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LegacyEntry:
    title: str
    line: int
    kernel: str | None = None  # image path as written (a "(hd0,0)" device may lead)
    kernel_args: str = ""
    kernel_line: int | None = None
    initrd: str | None = None
    modules: tuple[tuple[str, str, int], ...] = ()  # (path, args, line): Xen dom0 kernel and initrd
    root: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LegacyConfig:
    default: str | None  # "0", "saved", ...
    default_line: int | None
    fallback: str | None
    entries: tuple[LegacyEntry, ...]
    problems: tuple[str, ...] = ()


def parse_legacy_grub(text: str) -> LegacyConfig:
    """GRUB legacy ``grub.conf``/``menu.lst``. Every line after ``title`` belongs to that entry,
    indented or not (inspec #868); ``key=value`` and ``key value`` are both accepted."""
    default = fallback = None
    default_line = None
    entries: list[LegacyEntry] = []
    problems: list[str] = []
    title: tuple[str, int] | None = None
    kernel: tuple[str, str, int] | None = None
    initrd: str | None = None
    root: str | None = None
    modules: list[tuple[str, str, int]] = []

    def close() -> None:
        if title is None:
            return
        entries.append(
            LegacyEntry(
                title=title[0],
                line=title[1],
                kernel=kernel[0] if kernel else None,
                kernel_args=kernel[1] if kernel else "",
                kernel_line=kernel[2] if kernel else None,
                initrd=initrd,
                modules=tuple(modules),
                root=root,
            )
        )

    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)(?:\s*=\s*|\s+|$)(.*)$", line)
        if m is None:
            problems.append(f"line {n}: not a GRUB command: {line[:40]!r}")
            continue
        cmd, rest = m.group(1).lower(), m.group(2).strip()
        if cmd == "title":
            close()
            title, kernel, initrd, root, modules = (rest, n), None, None, None, []
            continue
        if title is None:
            if cmd == "default":
                default, default_line = (rest.split() or [""])[0], n
            elif cmd == "fallback":
                fallback = (rest.split() or [""])[0]
            continue
        words = rest.split()
        while words and words[0].startswith("--"):  # kernel --no-mem-option, module --type=...
            words.pop(0)
        if cmd == "kernel" and words and kernel is None:
            kernel = (words[0], _args_after(rest, words[0]), n)
        elif cmd == "initrd" and words and initrd is None:
            initrd = words[0]
        elif cmd == "module" and words:
            modules.append((words[0], _args_after(rest, words[0]), n))
        elif cmd == "root":
            root = rest
    close()
    return LegacyConfig(
        default=default,
        default_line=default_line,
        fallback=fallback,
        entries=tuple(entries),
        problems=tuple(problems),
    )


def _args_after(rest: str, path: str) -> str:
    k = rest.find(path)
    return " ".join(rest[k + len(path) :].split()) if k >= 0 else ""


def parse_legacy_default_file(text: str) -> int | None:
    """``/boot/grub/default`` (written by ``savedefault``): the saved entry number."""
    for line in text.splitlines():
        m = re.match(r"\s*(\d+)", line)
        if m:
            return int(m.group(1))
        if line.strip() and not line.startswith("#"):
            break
    return None


# -- /etc/kernel/cmdline and grubby ---------------------------------------------------------------------


def parse_kernel_cmdline_file(text: str) -> str:
    """``/etc/kernel/cmdline``: kernel-install squeezes blanks and newlines into single spaces."""
    return " ".join(text.split())


def parse_grubby_default_index(text: str) -> tuple[int, tuple[str, ...]]:
    """``grubby --default-index`` output: the last line that is a number is the index; other lines
    are noise that grubby, bash or grub2-editenv printed on the same stream (returned as such).
    Raises ParseError when no line is a number."""
    index: int | None = None
    noise: list[str] = []
    for line in text.splitlines():
        s = line.strip()
        if re.fullmatch(r"-?\d+", s):
            if index is not None:
                noise.append(str(index))
            index = int(s)
        elif s:
            noise.append(s)
    if index is None:
        raise ParseError("no default index in grubby output" + (f" ({noise[-1][:60]})" if noise else ""))
    return index, tuple(noise)
