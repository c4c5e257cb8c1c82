"""GRUB 2 script evaluation: ``run_grub_script`` replays what GRUB's normal mode does before showing the
menu (``set``, ``export``, ``load_env``, ``if [ ... ]``, ``menuentry``, ``submenu``, ``blscfg``,
``source``/``configfile``), reaching files only through a :class:`GrubFiles` object the caller supplies.

When GRUB does what (GRUB's source: grub-core/normal/menu.c, normal/context.c, commands/blscfg.c):

- ``menuentry`` stores its body; the body runs when the entry boots, after the whole file has run, in
  the context of the menu it is in: a top-level entry sees the variables as the file leaves them
  (``GrubRun.env``). Its title and options are expanded where ``menuentry`` stands.
- ``submenu`` stores its body too; it runs when the submenu is entered, in a new context that holds
  only the *exported* variables of the outer one (upstream GRUB; Fedora/RHEL builds copy every
  variable, rhboot commit 30ab5fcb4). Its entries are defined then, and boot in that context
  (``Submenu.context``).
- ``configfile`` runs the file in a new context made the same way (commands/configfile.c); ``source``
  and ``normal`` do not. Either way the loaded file's menu replaces the current one, except ``source``.
- ``function`` defines a function (globally) where it stands; a call runs its body with ``$1``...
  bound, so an entry body's ``gfxmode $linux_gfx_mode`` sets ``$vt_handoff`` before ``linux`` reads it.
- ``blscfg`` creates its entries where it stands and expands their ``options`` right then
  (``expand_val`` in rhboot's blscfg.c since 2018, ``blsuki_expand_val`` in upstream's blsuki.c):
  a variable set after ``blscfg`` does not reach them (``BlscfgCall.env`` is the snapshot).

What it may cost is bounded (``audit.parsers.grub.limits``): evaluation steps across every file and
call, files read, characters expanded, menu items, ``blscfg`` commands, and the nesting of loaded
files; a file that loads itself while it runs (directly or through others) is a loop. Each raises
:class:`GrubLimitError` naming the file and line: the configuration is unusable, never half-read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

from audit.errors import ParseError
from audit.parsers.grub.expand import _expand_fields, _Expansion
from audit.parsers.grub.grubenv import parse_grubenv
from audit.parsers.grub.lexer import _NAME, Command, Word, _is_assignment
from audit.parsers.grub.limits import MAX_PROBLEMS, GrubLimitError, Meter
from audit.parsers.grub.script import FunctionBlock, GrubScript, IfBlock, MenuBlock, Node, parse_grub_script
from audit.record import Record

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


class MenuEntry(Record):
    title: str
    entry_id: str | None
    body: tuple[Node, ...]
    source: str  # label of the configuration file
    line: int
    classes: tuple[str, ...] = ()
    conditional: bool = False  # defined under a condition the evaluator could not decide


class BootContext(Record):
    """The variables of a GRUB context (a submenu's, or the top level's after ``configfile``) once
    its script has run: what the entries defined in it see when they boot."""

    env: dict[str, str]
    origins: dict[str, str]  # variable -> where its value came from
    uncertain: dict[str, str]  # variable -> where it is set under an undecidable condition
    #: variables of the outer context that were not copied in (not exported) -> why, for messages
    dropped: dict[str, str]


class Submenu(Record):
    title: str
    entry_id: str | None
    children: tuple[MenuItem, ...]
    source: str
    line: int
    conditional: bool = False
    #: the submenu's own context (its body run after the whole file, as when GRUB enters it)
    context: BootContext | None = None


class BlscfgCall(Record):
    """Where ``blscfg`` ran: it inserts the BLS entries here, expanding their options with the
    variables as they are at this point."""

    source: str
    line: int
    blsdir: str | None  # the ``blsdir`` variable or argument, if set
    env: dict[str, str]
    origins: dict[str, str]  # variable -> where its value came from
    conditional: bool
    dropped: dict[str, str]  # see BootContext.dropped


MenuItem = MenuEntry | Submenu | BlscfgCall


class _PendingSubmenu(Record):
    """A ``submenu`` whose body has not run yet: GRUB runs it when the submenu is entered."""

    node: MenuBlock
    label: str
    title: str
    entry_id: str | None
    conditional: bool


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

#: Variables GRUB itself exports (kern/main.c, normal/main.c, gettext.c): a new context gets them.
GRUB_EXPORTED = frozenset(
    {
        *GRUB_FEATURES,
        "root",
        "prefix",
        "fw_path",
        "config_file",
        "config_directory",
        "pager",
        "color_normal",
        "color_highlight",
        "grub_cpu",
        "grub_platform",
        "lang",
        "locale_dir",
        "secondary_locale_dir",
        "chosen",
    }
)


class Redirect(Record):
    source: str
    line: int
    command: str  # "configfile", "source", "normal", "."
    target: str  # the GRUB path after expansion
    resolved: str | None  # label of the file read, None when it was not found


class GrubRun(Record):
    """What a GRUB 2 configuration leaves behind once executed."""

    env: dict[str, str]  # variables at the end (``default`` among them)
    origins: dict[str, str]  # variable -> "<file>:<line>" or "<grubenv> (load_env)"
    menu: tuple[MenuItem, ...]
    files: tuple[str, ...]  # labels of the scripts executed, in order
    redirects: tuple[Redirect, ...]
    env_loads: tuple[tuple[str, dict[str, str]], ...]  # (grubenv label, variables loaded)
    uncertain: dict[str, str]  # variable -> where it is set under an undecidable condition
    problems: tuple[str, ...]
    #: variable -> the variables its last assignment expanded (``default`` <- ``saved_entry``)
    derived: dict[str, tuple[str, ...]]
    exported: frozenset[str]
    dropped: dict[str, str]  # see BootContext.dropped (configfile)
    functions: dict[str, FunctionBlock]  # defined when the file has run
    steps: int  # evaluation steps the run took (Meter.steps), for tests of linear work

    @property
    def has_entries(self) -> bool:
        return bool(self.menu)


class _Stop(Exception):
    """``configfile`` replaced the running script, or ``exit``/``return``."""


class _Return(_Stop):
    """``return``: ends the function (or sourced file) it is in."""


def _base_env(platform: str | None) -> dict[str, str]:
    """The variables GRUB sets before any script runs."""
    env = dict(GRUB_FEATURES)
    if platform:
        env["grub_platform"] = platform
    return env


def _unknown_vars(platform: str | None) -> frozenset[str]:
    """Values only the booting machine knows: a condition that reads them is undecidable here."""
    return frozenset({"grub_cpu", "?"} if platform else {"grub_cpu", "?", "grub_platform"})


class _Evaluator:
    MAX_DEPTH = 8  # files loaded from loaded files

    def __init__(
        self,
        files: GrubFiles,
        platform: str | None,
        env: Mapping[str, str],
        *,
        export_all: bool = False,
        meter: Meter | None = None,
    ) -> None:
        self.files = files
        self.platform = platform
        self.export_all = export_all  # a new context copies every variable (Fedora/RHEL builds)
        self.meter = meter if meter is not None else Meter()
        self.env: dict[str, str] = _base_env(platform)
        self.unknown = _unknown_vars(platform)
        self.env.update(env)
        self.exported: set[str] = set(GRUB_EXPORTED)
        self.origins: dict[str, str] = {}
        self.derived: dict[str, tuple[str, ...]] = {}
        self.dropped: dict[str, str] = {}
        self.uncertain: dict[str, str] = {}
        self.problems: list[str] = []
        self.problems_dropped = 0
        self.executed: list[str] = []
        #: files running now, outermost first, with the variables each started with: entering one of
        #: them again with the same variables repeats what it did, without end (a loop)
        self.active: list[tuple[str, dict[str, str]]] = []
        self.redirects: list[Redirect] = []
        self.env_loads: list[tuple[str, dict[str, str]]] = []
        self.menu: list[MenuItem | _PendingSubmenu] = []
        self.functions: dict[str, FunctionBlock] = {}
        self.calls = 0  # function calls in progress (recursion guard)
        self.calls_total = 0  # function calls made (a hostile file may branch its recursion)
        self.depth = 0
        self.grubenv_problems_seen: set[str] = set()

    def exp(self) -> _Expansion:
        return _Expansion(meter=self.meter)

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)
        else:
            self.problems_dropped += 1

    # mode: "run" (certain), "maybe" (under an undecidable condition), "shadow" (other branches)
    def run_nodes(self, nodes: Iterable[Node], label: str, mode: str) -> None:
        meter = self.meter
        for node in nodes:
            meter.label = label
            meter.line = node.line
            meter.step()
            if isinstance(node, Command):
                self.run_command(node, label, mode)
            elif isinstance(node, IfBlock):
                self.run_if(node, label, mode)
            elif isinstance(node, MenuBlock) and mode != "shadow":
                self.add_menu(node, label, conditional=mode == "maybe")
            elif isinstance(node, FunctionBlock) and mode != "shadow":
                self.functions[node.name] = node
            # loops: repetitions are not replayed

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
        return _condition(cond, self.env, self.unknown, self.files, self.meter)

    def set_var(self, name: str, value: str, where: str, mode: str, used: tuple[str, ...] = ()) -> None:
        if mode == "run":
            self.env[name] = value
            self.origins[name] = where
            self.derived[name] = used
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
            for word in words:
                exp = self.exp()
                for text, _ in _expand_fields([word], self.env, exp):
                    var, eq, value = text.partition("=")
                    if eq and _NAME.fullmatch(var):
                        self.set_var(var, value, where, mode, tuple(dict.fromkeys(exp.used)))
        elif name == "unset":
            for text, _ in _expand_fields(words, self.env, self.exp()):
                if mode == "run":
                    self.env.pop(text, None)
                    self.exported.discard(text)
                    self.origins[text] = f"{where} (unset)"
                    self.derived.pop(text, None)
                else:
                    self.uncertain.setdefault(text, where)
        elif name == "export":
            if mode == "shadow":
                return
            for text, _ in _expand_fields(words, self.env, self.exp()):
                self.exported.add(text)
                # kern/env.c: exporting an unset variable sets it to "" (unless it may be set already)
                if text not in self.env and text not in self.uncertain:
                    self.set_var(text, "", f"{where} (export)", mode)
        elif name == "load_env":
            self.load_env(cmd, label, mode)
        elif name == "blscfg":
            if mode == "shadow":
                return
            args = [t for t, _ in _expand_fields(words, self.env, self.exp()) if not t.startswith("-")]
            blsdir = args[0] if args else self.env.get("blsdir") or None
            self.meter.blscfg_call()
            self.meter.menu_item()
            self.meter.step(len(self.env) + len(self.origins) + len(self.dropped))  # the snapshot below
            self.menu.append(
                BlscfgCall(
                    source=label,
                    line=cmd.line,
                    blsdir=blsdir,
                    env=dict(self.env),
                    origins=dict(self.origins),
                    conditional=mode == "maybe",
                    dropped=dict(self.dropped),
                )
            )
        elif name in ("configfile", "source", ".", "normal"):
            self.redirect(cmd, name, label, mode)
        elif name == "return" and mode == "run":
            raise _Return
        elif name == "exit" and mode == "run":
            raise _Stop
        elif name in self.functions and mode != "shadow":
            self.call(self.functions[name], words, label, mode)

    MAX_CALLS = 16  # nesting
    MAX_CALLS_TOTAL = 1000

    def call(self, function: FunctionBlock, words: Iterable[Word], label: str, mode: str) -> None:
        """A function call: its body runs here, with ``$1``... bound to the arguments."""
        if self.calls >= self.MAX_CALLS or self.calls_total >= self.MAX_CALLS_TOTAL:
            return
        self.calls_total += 1
        args = [t for t, _ in _expand_fields(words, self.env, self.exp())]
        self.meter.step(len(self.env))  # bind_arguments looks at every variable
        with bind_arguments(self.env, args):
            self.calls += 1
            try:
                self.run_nodes(function.body, label, mode)
            except _Return:  # ends the function only
                pass
            finally:
                self.calls -= 1

    def load_env(self, cmd: Command, label: str, mode: str) -> None:
        args = [t for t, _ in _expand_fields(cmd.words[1:], self.env, self.exp())]
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
        self.meter.read(f"load_env {envlabel}")
        try:
            grubenv = parse_grubenv(text.encode("utf-8", "surrogateescape"))
        except GrubLimitError as exc:
            raise exc.at(envlabel) from None
        except ParseError as exc:
            if envlabel not in self.grubenv_problems_seen:
                self.grubenv_problems_seen.add(envlabel)
                where = f"{envlabel}:{exc.line}" if exc.line else envlabel
                self.problem(f"{where}: {exc.problem}; GRUB loads no variables from it")
            return
        for p in grubenv.problems:
            if envlabel not in self.grubenv_problems_seen:
                self.grubenv_problems_seen.add(envlabel)
                self.problem(f"{envlabel}: {p}")
        self.meter.step(len(grubenv.values))
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
        args = [t for t, _ in _expand_fields(cmd.words[1:], self.env, self.exp())]
        if not args or mode == "shadow":
            return
        target = args[0]
        if self.depth >= self.MAX_DEPTH:
            chain = " -> ".join(a for a, _ in self.active)
            raise self.meter.error(f"'{name} {target}': files loaded more than {self.MAX_DEPTH} deep ({chain})")
        got = self.files.read(target)
        self.redirects.append(
            Redirect(
                source=label, line=cmd.line, command=name, target=target, resolved=got[0] if got else None
            )
        )
        if got is None:
            if mode == "run" and name in ("configfile", "normal"):
                self.problem(
                    f"{label}:{cmd.line}: '{name} {cmd.words[1].raw}' loads {target}, which does not exist"
                )
            return
        sub_label, text = got
        self.meter.read(f"'{name} {target}'")
        if sub_label in self.executed and name in ("configfile", "normal"):
            self.problem(f"{label}:{cmd.line}: '{name}' loads {sub_label} again (a loop); stopped")
            raise _Stop
        self.meter.step(len(self.env))  # comparing and keeping the variables below
        for k, (running, env) in enumerate(self.active):
            if running == sub_label and env == self.env:  # GRUB would recurse until it runs out of memory
                loop = " -> ".join([*(a for a, _ in self.active[k:]), sub_label])
                raise self.meter.error(
                    f"'{name} {target}' loads {sub_label} while it is running, with the same variables: "
                    f"a loop without end ({loop})"
                )
        try:
            script = parse_grub_script(text)
        except GrubLimitError as exc:
            raise exc.at(sub_label) from None
        except ParseError as exc:
            self.problem(f"{sub_label}:{exc.line or '?'}: {exc.problem}; not used")
            return
        self.depth += 1
        self.active.append((sub_label, dict(self.env)))
        if name == "configfile" and mode == "run":  # commands/configfile.c: a new context
            self.new_context(f"before 'configfile' at {label}:{cmd.line}")
        saved_dir = self.env.get("config_directory")
        self.env["config_directory"] = _dirname(target)
        self.executed.append(sub_label)
        try:
            if name in ("configfile", "normal") and mode == "run":
                self.menu = []  # the loaded file's menu replaces this one
                with contextlib.suppress(_Stop):
                    self.run_nodes(script.nodes, sub_label, mode)
                raise _Stop
            with contextlib.suppress(_Stop):
                self.run_nodes(script.nodes, sub_label, mode)
        finally:
            self.depth -= 1
            self.active.pop()
            if not (name in ("configfile", "normal") and mode == "run"):
                if saved_dir is None:
                    self.env.pop("config_directory", None)
                else:
                    self.env["config_directory"] = saved_dir

    def add_menu(self, node: MenuBlock, label: str, *, conditional: bool) -> None:
        self.meter.menu_item()
        fields = [t for t, _ in _expand_fields(node.args, self.env, self.exp())]
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
        # the body runs when GRUB enters the submenu, after the whole file: see open_submenus
        self.menu.append(_PendingSubmenu(node, label, title, entry_id, conditional))

    def new_context(self, why: str) -> None:
        """normal/context.c ``grub_env_new_context``: the new context holds the exported variables of
        the current one (every variable on Fedora/RHEL builds), all of them exported."""
        self.meter.step(len(self.env) + len(self.origins) + len(self.uncertain))  # the copies below
        keep = set(self.env) if self.export_all else {k for k in self.env if k in self.exported}
        self.dropped = {
            k: f"set at {self.origins.get(k, 'GRUB start-up')}, not exported {why}"
            for k in self.env
            if k not in keep
        }
        self.env = {k: v for k, v in self.env.items() if k in keep}
        self.origins = {k: v for k, v in self.origins.items() if k in keep}
        self.derived = {k: v for k, v in self.derived.items() if k in keep}
        self.uncertain = {k: v for k, v in self.uncertain.items() if k in keep or self.export_all}
        self.exported = set(keep)

    def open_submenus(self, items: list[MenuItem | _PendingSubmenu]) -> tuple[MenuItem, ...]:
        """Each pending submenu's body run as GRUB runs it when the submenu is entered: in a new
        context made from this one as it is now (after the file that defined the submenu ran)."""
        out: list[MenuItem] = []
        for item in items:
            out.append(self.open_submenu(item) if isinstance(item, _PendingSubmenu) else item)
        return tuple(out)

    def open_submenu(self, pending: _PendingSubmenu) -> Submenu:
        saved = (self.env, self.origins, self.derived, self.uncertain, self.exported, self.dropped, self.menu)
        self.new_context(f"before submenu {pending.title!r} ({pending.label}:{pending.node.line})")
        self.menu = []
        with contextlib.suppress(_Stop):
            self.run_nodes(pending.node.body, pending.label, "maybe" if pending.conditional else "run")
        children = self.open_submenus(self.menu)
        self.meter.step(len(self.env) + len(self.origins) + len(self.uncertain))  # the copies below
        context = BootContext(
            env=dict(self.env), origins=dict(self.origins), uncertain=dict(self.uncertain), dropped=self.dropped
        )
        self.env, self.origins, self.derived, self.uncertain, self.exported, self.dropped, self.menu = saved
        return Submenu(
            title=pending.title,
            entry_id=pending.entry_id,
            children=children,
            source=pending.label,
            line=pending.node.line,
            conditional=pending.conditional,
            context=context,
        )


@contextlib.contextmanager
def bind_arguments(env: dict[str, str], args: list[str]) -> Iterator[None]:
    """``$1``..., ``$#``, ``$@``/``$*`` of a function call, set in ``env`` for the call's duration."""
    names = [str(k) for k in range(1, len(args) + 1)]
    bound = {"#": str(len(args)), "@": " ".join(args), "*": " ".join(args), **dict(zip(names, args, strict=True))}
    saved = {k: env[k] for k in ("#", "@", "*") if k in env} | {k: env[k] for k in env if k.isdigit()}
    for k in list(env):
        if k.isdigit():
            del env[k]
    env.update(bound)
    try:
        yield
    finally:
        for k in list(env):
            if k.isdigit() or k in ("#", "@", "*"):
                del env[k]
        env.update(saved)


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


def _condition(
    cond: Command, env: Mapping[str, str], unknown: Iterable[str], files: GrubFiles, meter: Meter | None = None
) -> bool | None:
    """Whether an ``if``/``elif`` condition holds: True, False, or None when undecidable here."""
    if not cond.words:
        return None
    exp = _Expansion(meter=meter)
    args = [t for t, _ in _expand_fields(cond.words, env, exp)]
    if any(v in unknown and v not in env for v in exp.used):
        return None
    start = 0
    while start < len(args) and args[start] == "!":
        start += 1
    negate = start % 2 == 1
    args = args[start:]
    if not args:
        return None
    if args[0] == "[":
        result = _test(args[1:-1] if args[-1] == "]" else args[1:], files, meter)
    elif args[0] == "test":
        result = _test(args[1:], files, meter)
    elif args[0] == "true":
        result = True
    elif args[0] == "false":
        result = False
    else:
        result = None
    if result is None:
        return None
    return not result if negate else result


#: Parentheses nested deeper than this make a test undecidable (it would otherwise recurse without bound).
_MAX_TEST_NESTING = 32


def _test(args: list[str], files: GrubFiles, meter: Meter | None = None) -> bool | None:
    """GRUB's ``test``/``[``: string, number and file tests, ``!``, ``-a``, ``-o``. None when undecidable."""
    pos = 0
    depth = 0
    too_deep = False

    def primary() -> bool | None:
        nonlocal pos
        negate = False
        while pos < len(args) and args[pos] == "!":
            negate = not negate
            pos += 1
        r = value()
        return None if r is None else (not r if negate else r)

    def value() -> bool | None:
        nonlocal pos, depth, too_deep
        if pos >= len(args):
            return None
        a = args[pos]
        if a == "(":
            pos += 1
            if depth >= _MAX_TEST_NESTING:
                too_deep = True
                return None
            depth += 1
            r = or_expr()
            depth -= 1
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
            if a == "-s" and meter is not None:
                meter.read(f"test -s {operand}")  # it reads the file
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
    result = or_expr()
    return None if too_deep else result


def run_grub_script(
    script: GrubScript,
    *,
    label: str,
    files: GrubFiles,
    platform: str | None = None,
    env: Mapping[str, str] | None = None,
    export_all: bool = False,
    meter: Meter | None = None,
) -> GrubRun:
    """Execute a parsed GRUB 2 configuration the way GRUB's normal mode would before showing the
    menu, then run each submenu's body as GRUB does when the submenu is entered. ``platform`` is
    "efi" or "pc" (``$grub_platform``), None when unknown; ``env`` presets variables (``prefix``,
    ``config_directory``...), exported as GRUB exports them. ``export_all``: a new context
    (submenu, configfile) gets every variable, not only the exported ones, as in Fedora/RHEL builds.

    Raises GrubLimitError (naming the file and line) when the configuration needs more work than any
    real one does (``audit.parsers.grub.limits``; ``meter`` may carry other bounds, for tests)."""
    ev = _Evaluator(files, platform, env or {}, export_all=export_all, meter=meter)
    ev.executed.append(label)
    ev.active.append((label, dict(ev.env)))
    with contextlib.suppress(_Stop):
        ev.run_nodes(script.nodes, label, "run")
    ev.active.clear()
    menu = ev.open_submenus(ev.menu)
    if ev.problems_dropped:
        ev.problems.append(f"... and {ev.problems_dropped} more problems of the same configuration")
    return GrubRun(
        env=ev.env,
        origins=ev.origins,
        menu=menu,
        files=tuple(ev.executed),
        redirects=tuple(ev.redirects),
        env_loads=tuple(ev.env_loads),
        uncertain=ev.uncertain,
        problems=tuple(ev.problems),
        derived=ev.derived,
        exported=frozenset(ev.exported),
        dropped=ev.dropped,
        functions=ev.functions,
        steps=ev.meter.steps,
    )
