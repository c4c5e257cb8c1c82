"""GRUB 2 script evaluation: ``run_grub_script`` replays what GRUB's normal mode does before showing the
menu (``set``, ``load_env``, ``if [ ... ]``, ``menuentry``, ``submenu``, ``blscfg``, ``source``/
``configfile``), reaching files only through a :class:`GrubFiles` object the caller supplies.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from audit.errors import ParseError
from audit.parsers.grub.expand import _expand_fields, _Expansion
from audit.parsers.grub.grubenv import parse_grubenv
from audit.parsers.grub.lexer import _NAME, Command, _is_assignment
from audit.parsers.grub.script import GrubScript, IfBlock, MenuBlock, Node, parse_grub_script

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
