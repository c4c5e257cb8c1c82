"""GRUB 2 script syntax: the tree of commands, ``if``, ``menuentry``/``submenu``, functions and loops that
``parse_grub_script`` builds from a ``grub.cfg``.
"""

from __future__ import annotations

from audit.errors import ParseError
from audit.parsers.grub.lexer import Command, LexStats, Word, _lex
from audit.record import Record

# -- GRUB 2 script: syntax tree ---------------------------------------------------------------------


class IfBlock(Record):
    branches: tuple[tuple[Command | None, tuple[Node, ...]], ...]  # (condition, body); None = else
    line: int


class MenuBlock(Record):
    kind: str  # "menuentry" or "submenu"
    args: tuple[Word, ...]
    body: tuple[Node, ...]
    line: int


class FunctionBlock(Record):
    name: str
    body: tuple[Node, ...]
    line: int


class LoopBlock(Record):
    header: Command
    body: tuple[Node, ...]
    line: int


Node = Command | IfBlock | MenuBlock | FunctionBlock | LoopBlock


class GrubScript(Record):
    nodes: tuple[Node, ...]


_SPLIT_KEYWORDS = {"then", "else", "do"}


def parse_grub_script(text: str, *, stats: LexStats | None = None) -> GrubScript:
    """The syntax tree of a GRUB 2 script (``grub.cfg``, a stub, ``custom.cfg``).

    Raises ParseError (with the line) on unterminated quotes and unbalanced blocks, and
    GrubLimitError past ``MAX_WORDS`` words. ``stats`` collects the lexer's work (tests).
    """
    commands: list[Command] = []
    for cmd in _lex(text, shell=False, stats=stats):
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
