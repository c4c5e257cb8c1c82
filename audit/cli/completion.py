"""``hostaudit completion bash|zsh``: the shell completion script, generated from the argparse parser.

The same scripts are generated when the wheel is built (tools/build_backend.py) and installed as
``share/bash-completion/completions/hostaudit`` and ``share/zsh/site-functions/_hostaudit``. They are
written from the parser here rather than by shtab: hostaudit runs ``run`` when the first word is an
option (``hostaudit --format json``), and offers values for options whose set is open to plugins
(``run --format``) or lives elsewhere (profiles, check ids), which shtab cannot express without a
parser of its own for completion.
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from audit.record import Record

SHELLS = ("bash", "zsh")

#: Completion kinds. ``words``/``list`` carry their words (``list``: comma-separated, as ``--show``).
FLAG, WORDS, LIST, FILE, DIR, TEXT, CHECK = "flag", "words", "list", "file", "dir", "text", "check"

#: A value by its metavar, when neither choices nor OPTION_VALUES say; then a metavar ending in DIR
#: completes directories, one naming a FILE or PATH (or ending in .json) files.
METAVAR_KINDS: dict[str, str] = {"INPUT": FILE, "A": FILE, "B": FILE, "ID": CHECK, "GLOB": CHECK}

#: Metavars of values that are free text: nothing to offer (tests/test_manpage_completion.py fails on
#: a value whose completion is neither known nor listed here).
FREE_TEXT = frozenset({"N", "SECONDS", "OCTAL", "SIZE"})


def _metavar_kind(metavar: str) -> str:
    if metavar in METAVAR_KINDS:
        return METAVAR_KINDS[metavar]
    if re.search(r"FILE|PATH|\.json$", metavar):
        return FILE
    if metavar.endswith("DIR"):
        return DIR
    return TEXT


def _stdout_formats() -> tuple[str, list[str]]:
    from reports.output import STDOUT_FORMATS

    return WORDS, list(STDOUT_FORMATS)


def _profiles() -> tuple[str, list[str]]:
    from audit.policy import PROFILES

    return WORDS, list(PROFILES)


def _severities() -> tuple[str, list[str]]:
    from audit.model import Severity

    return WORDS, [str(s) for s in Severity]


def _statuses() -> tuple[str, list[str]]:
    from audit.model import Status

    return LIST, [s.value for s in Status]


#: An option's value, by option string, where its parser gives no choices (run's --format is open to
#: plugin formats; the others are checked when parsed): a function giving (kind, words).
OPTION_VALUES: dict[str, Callable[[], tuple[str, list[str]]]] = {
    "--format": _stdout_formats, "--profile": _profiles, "--fail-on": _severities, "--show": _statuses,
}


class Arg(Record):
    """One option (``strings`` set) or positional (``strings`` empty) and how its value completes."""

    strings: tuple[str, ...]
    metavar: str
    help: str
    kind: str
    words: tuple[str, ...] = ()
    repeat: bool = False  # an option given more than once, or a positional taking several words
    optional: bool = False  # a positional that may be left out
    excludes: tuple[str, ...] = ()  # options that cannot go with this one (a mutually exclusive group)


class Command(Record):
    path: tuple[str, ...]  # () for hostaudit itself, ("cpu", "compare")
    help: str
    commands: dict[str, str]  # sub-command -> its one-line help
    options: tuple[Arg, ...]
    positionals: tuple[Arg, ...]


def _kind(action: argparse.Action) -> tuple[str, tuple[str, ...]]:
    if action.nargs == 0:
        return FLAG, ()
    if action.choices is not None:
        return WORDS, tuple(str(c) for c in action.choices)
    declared = getattr(action, "complete", None)  # a module may say: ``p.add_argument(...).complete = "dir"``
    if declared is not None:
        return (declared, ()) if isinstance(declared, str) else (WORDS, tuple(declared))
    for string in action.option_strings:
        if string in OPTION_VALUES:
            kind, words = OPTION_VALUES[string]()
            return kind, tuple(words)
    metavar = action.metavar if isinstance(action.metavar, str) else action.dest.upper()
    return _metavar_kind(metavar), ()


def _arg(action: argparse.Action, parser: argparse.ArgumentParser) -> Arg:
    kind, words = _kind(action)
    metavar = action.metavar if isinstance(action.metavar, str) else action.dest.upper()
    help_text = "" if action.help in (None, argparse.SUPPRESS) else str(action.help)
    if action.option_strings:
        repeat = isinstance(action, argparse._AppendAction | argparse._CountAction)
        excludes = [s for g in parser._mutually_exclusive_groups if action in g._group_actions
                    for other in g._group_actions if other is not action for s in other.option_strings]
        return Arg(tuple(action.option_strings), metavar, help_text, kind, words, repeat=repeat,
                   excludes=tuple(excludes))
    return Arg((), metavar, help_text, kind, words, repeat=action.nargs in ("+", "*", argparse.REMAINDER),
               optional=action.nargs in ("?", "*"))


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = (), help_text: str = "") -> Iterator[Command]:
    """Every command of ``parser``, depth first: its sub-commands, options and positionals."""
    subs: dict[str, argparse.ArgumentParser] = {}
    helps: dict[str, str] = {}
    options: list[Arg] = []
    positionals: list[Arg] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                helps[choice.dest] = "" if choice.help in (None, argparse.SUPPRESS) else str(choice.help)
            subs.update(action.choices)
        elif action.help != argparse.SUPPRESS:
            (options if action.option_strings else positionals).append(_arg(action, parser))
    yield Command(path, help_text, {name: helps.get(name, "") for name in subs}, tuple(options), tuple(positionals))
    for name, sub in subs.items():
        yield from commands(sub, (*path, name), helps.get(name, ""))


def full_parser() -> argparse.ArgumentParser:
    from audit.cli.main import build_parser

    return build_parser()  # every sub-command's module


# ------------------------------------------------------------------------------------------------ bash
# Tables (one ``case`` per question, keyed by the command path) and one generic function, so the
# script needs nothing from the bash-completion package.

_BASH_MAIN = r"""
# The words before the cursor name the command: sub-commands extend the path, and a first word that
# is not an option of hostaudit itself means 'run', the default command. The word under the cursor
# is then an option, an option's value, a sub-command or a positional.
_hostaudit() {
    local cur=${COMP_WORDS[COMP_CWORD]} path='' word opt='' i=1 npos=0 REPLY
    while ((i < COMP_CWORD)); do
        word=${COMP_WORDS[i]}
        if [[ $word == -?* ]]; then
            if [[ -z $path ]]; then
                _hostaudit_options ''
                _hostaudit_has "$REPLY" "$word" || path=run
            fi
            _hostaudit_value "$path" "$word"
            if [[ $REPLY != flag ]]; then  # its value: the next word, or the one after '=', and any
                local v=$((i + 1))           # ':'-joined parts that bash split off (-o FORMAT:PATH)
                [[ ${COMP_WORDS[v]} == = ]] && ((v++))
                while ((v < COMP_CWORD)) && [[ ${COMP_WORDS[v + 1]} == : ]]; do
                    ((v + 2 < COMP_CWORD)) || { v=$COMP_CWORD; break; }
                    ((v += 2))
                done
                if ((v >= COMP_CWORD)); then opt=$word; break; fi
                i=$v
            fi
        else
            _hostaudit_commands "$path"
            if ((npos == 0)) && _hostaudit_has "$REPLY" "$word"; then
                path=${path:+$path }$word
            else
                ((npos++))
            fi
        fi
        ((i++))
    done
    [[ $cur == [=:] ]] && cur=  # bash completes the text after it
    COMPREPLY=()
    if [[ -n $opt ]]; then
        _hostaudit_value "$path" "$opt"
        _hostaudit_complete "$REPLY" "$cur"
    elif [[ $cur == -* ]]; then
        _hostaudit_options "$path"
        local options=$REPLY
        if [[ -z $path ]]; then
            _hostaudit_options run
            options+=" $REPLY"
        fi
        mapfile -t COMPREPLY < <(compgen -W "$options" -- "$cur")
    else
        _hostaudit_commands "$path"
        if ((npos == 0)) && [[ -n $REPLY ]]; then
            mapfile -t COMPREPLY < <(compgen -W "$REPLY" -- "$cur")
        else
            _hostaudit_positional "$path" "$npos"
            _hostaudit_complete "$REPLY" "$cur"
        fi
    fi
}

_hostaudit_has() {  # is $2 one of the words in $1?
    [[ " $1 " == *" $2 "* ]]
}

_hostaudit_complete() {  # complete $2 as a value of kind $1: words W..., list W..., file, dir, check, text
    local kind=${1%% *} words=${1#* } prefix=
    case $kind in
        words) mapfile -t COMPREPLY < <(compgen -W "$words" -- "$2") ;;
        list)  # comma-separated: complete the word after the last comma
            [[ $2 == *,* ]] && prefix=${2%,*},
            mapfile -t COMPREPLY < <(compgen -P "$prefix" -W "$words" -- "${2##*,}")
            compopt -o nospace 2>/dev/null ;;
        file)
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -f -- "$2") ;;
        dir)
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -d -- "$2") ;;
        check)  # the check ids of the hostaudit being completed, plugins' included
            mapfile -t COMPREPLY < <(compgen -W "$("${COMP_WORDS[0]}" checks --format json 2>/dev/null |
                sed -n 's/^ *"id": "\([^"]*\)",*$/\1/p')" -- "$2") ;;
    esac
}
"""


def _bash_case(function: str, doc: str, entries: Iterable[tuple[str, str]], default: str) -> str:
    """A function setting REPLY from its arguments joined by a space; ``entries`` are (pattern, value)
    with the pattern already in shell syntax."""
    lines = [f"{function}() {{  # {doc}", '    case "$*" in']
    lines += [f"        {pattern}) REPLY={_sq(value)} ;;" for pattern, value in entries]
    lines += [f"        *) REPLY={_sq(default)} ;;", "    esac", "}"]
    return "\n".join(lines)


def _sq(text: str) -> str:
    """Single-quoted always (shlex.quote leaves 'file' bare, which reads as a command to shellcheck)."""
    return "'" + text.replace("'", "'\\''") + "'"


def _bash_kind(arg: Arg) -> str:
    return " ".join((arg.kind, *arg.words))


def bash_script(parser: argparse.ArgumentParser | None = None) -> str:
    cmds = [(" ".join(c.path), c) for c in commands(parser or full_parser())]
    q = shlex.quote
    positionals: list[tuple[str, str]] = []
    for name, c in cmds:
        for i, arg in enumerate(c.positionals):
            positionals.append((q(f"{name} {i}"), _bash_kind(arg)))
        if c.positionals and c.positionals[-1].repeat:  # every later word too
            positionals.append((q(f"{name} ") + "*", _bash_kind(c.positionals[-1])))
    tables = [
        _bash_case("_hostaudit_commands", "the sub-commands of the command path $1",
                   [(q(name), " ".join(c.commands)) for name, c in cmds if c.commands], ""),
        _bash_case("_hostaudit_options", "the options of the command path $1",
                   [(q(name), " ".join(s for a in c.options for s in a.strings)) for name, c in cmds], ""),
        _bash_case("_hostaudit_value", "how the value of option $2 of the command path $1 completes",
                   [(q(f"{name} {s}"), _bash_kind(a)) for name, c in cmds for a in c.options if a.kind != FLAG
                    for s in a.strings],
                   FLAG),
        _bash_case("_hostaudit_positional", "how positional $2 (from 0) of the command path $1 completes",
                   positionals, TEXT),
    ]
    head = ("# bash completion for hostaudit, generated from its command-line parser by audit/cli/completion.py:\n"
            "# do not edit. 'pip install' puts it in <prefix>/share/bash-completion/completions/hostaudit;\n"
            "# elsewhere: source <(hostaudit completion bash)\n")
    return head + _BASH_MAIN + "\n" + "\n\n".join(tables) + "\n\ncomplete -F _hostaudit hostaudit\n"


# ------------------------------------------------------------------------------------------------- zsh
# One function per command, each an _arguments call; a command with sub-commands hands the rest of
# the line to the sub-command's function (the usual '*:: :->argument' state).

_ZSH_TAIL = r"""
_hostaudit_check_ids() {  # the check ids of the hostaudit being completed, plugins' included
    local -a ids
    ids=(${(f)"$(_call_program check-ids ${_hostaudit_cmd:-hostaudit} checks --format json 2>/dev/null |
        sed -n 's/^ *"id": "\([^"]*\)",*$/\1/p')"})
    _wanted check-ids expl 'check id' compadd -a ids
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then  # autoloaded from $fpath: complete now
    _hostaudit "$@"
else  # sourced: source <(hostaudit completion zsh)
    compdef _hostaudit hostaudit
fi
"""

_SAFE_WORD = re.compile(r"[A-Za-z0-9_.+@%/=-]+")


def _zsh_function(path: tuple[str, ...]) -> str:
    return "_hostaudit" + "".join(f"__{re.sub(r'[^A-Za-z0-9_]', '_', p)}" for p in path)


def _zsh_explanation(text: str) -> str:
    """A one-line explanation for ``[...]``: the first clause, no brackets or backslashes."""
    text = " ".join(text.split())
    text = re.split(r"; | \(", text, maxsplit=1)[0]
    if len(text) > 80:
        text = text[:77].rsplit(" ", 1)[0] + "..."
    return text.replace("\\", "").replace("[", "(").replace("]", ")")


def _zsh_action(arg: Arg) -> str:
    words = " ".join(w if _SAFE_WORD.fullmatch(w) else re.sub(r"([^A-Za-z0-9_.-])", r"\\\1", w) for w in arg.words)
    return {WORDS: f"({words})", LIST: f"_values -s , {arg.metavar.lower()} {words}", FILE: "_files",
            DIR: "_files -/", CHECK: "_hostaudit_check_ids"}.get(arg.kind, " ")


def _zsh_option_specs(arg: Arg) -> Iterator[str]:
    message = arg.metavar.replace(":", r"\:")
    explanation = f"[{_zsh_explanation(arg.help)}]" if arg.help else ""
    if arg.strings in (("-h", "--help"), ("--version",)):
        excludes = "(- *)"
    else:  # an option given once is excluded after it (every spelling); a repeatable one is not
        excluded = sorted({*arg.excludes, *(() if arg.repeat or len(arg.strings) == 1 else arg.strings)})
        excludes = f"({' '.join(excluded)})" if excluded else ""
        excludes += "*" if arg.repeat else ""
    for string in arg.strings:
        if arg.kind == FLAG:
            yield f"{excludes}{string}{explanation}"
        else:
            suffix = "=" if string.startswith("--") else "+"
            yield f"{excludes}{string}{suffix}{explanation}:{message}:{_zsh_action(arg)}"


def _zsh_positional_specs(c: Command) -> Iterator[str]:
    for i, arg in enumerate(c.positionals, 1):
        message = arg.metavar.replace(":", r"\:")
        where = "*" if arg.repeat and i == len(c.positionals) else str(i)
        colon = ":" if arg.optional and where != "*" else ""
        yield f"{where}:{colon}{message}:{_zsh_action(arg)}"


def _zsh_command(c: Command, extra: tuple[Arg, ...] = (), note: str = "", preamble: tuple[str, ...] = ()) -> str:
    """The function completing command ``c``; ``extra``: options it takes from its default command."""
    q = shlex.quote
    name = _zsh_function(c.path)
    specs = [s for a in (*c.options, *extra) for s in _zsh_option_specs(a)]
    title = " ".join(("hostaudit", *c.path))
    opening = [f"{name}() {{  # {title}{note}", *(f"    {line}" for line in preamble)]
    if not c.commands:
        specs += list(_zsh_positional_specs(c))
        body = ["    _arguments -s -S : \\", *(f"        {q(s)} \\" for s in specs)]
        body[-1] = body[-1].removesuffix(" \\")
        return "\n".join([*opening, *body, "}"])
    colon = "\\:"
    described = [f"{cmd.replace(':', colon)}:{_zsh_explanation(h)}" for cmd, h in c.commands.items()]
    dispatch = [f"                {q(cmd)}) {_zsh_function((*c.path, cmd))} && ret=0 ;;" for cmd in c.commands]
    first = "(( CURRENT == 2 )) && " if extra else ""  # after an option: 'run' is the command, no more words
    return "\n".join([
        *opening,
        "    local curcontext=$curcontext state state_descr line ret=1",
        "    local -a commands=(",
        *(f"        {q(d)}" for d in described),
        "    )",
        "    _arguments -C -s -S : \\",
        *(f"        {q(s)} \\" for s in specs),
        "        '1: :->command' \\",
        "        '*:: :->argument' && ret=0",
        "    case $state in",
        f"        command) {first}_describe -t commands {q(title + ' command')} commands && ret=0 ;;",
        "        argument)",
        f"            curcontext=${{curcontext%:*:*}}:{'-'.join(('hostaudit', *c.path))}-$words[1]:",
        "            case $words[1] in",
        *dispatch,
        "            esac ;;",
        "    esac",
        "    return ret",
        "}",
    ])


def zsh_script(parser: argparse.ArgumentParser | None = None) -> str:
    cmds = list(commands(parser or full_parser()))
    run = next((c for c in cmds if c.path == ("run",)), None)
    top_strings = {s for a in cmds[0].options for s in a.strings}
    default_options = tuple(a for a in run.options if not set(a.strings) & top_strings) if run else ()
    top = _zsh_command(cmds[0], extra=default_options, note=", whose options include run's (the default command)",
                       preamble=("local _hostaudit_cmd=$words[1]  # for _hostaudit_check_ids",))
    head = ("#compdef hostaudit\n"
            "# zsh completion for hostaudit, generated from its command-line parser by audit/cli/completion.py:\n"
            "# do not edit. 'pip install' puts it in <prefix>/share/zsh/site-functions/_hostaudit (add that\n"
            "# directory to $fpath before compinit); elsewhere: source <(hostaudit completion zsh)\n\n")
    return head + "\n\n".join([top, *(_zsh_command(c) for c in cmds[1:])]) + "\n" + _ZSH_TAIL


def script(shell: str, parser: argparse.ArgumentParser | None = None) -> str:
    if shell == "bash":
        return bash_script(parser)
    if shell == "zsh":
        return zsh_script(parser)
    raise ValueError(f"no completion for {shell!r} (one of: {', '.join(SHELLS)})")


# --------------------------------------------------------------------------------------------- command


def register(sub: Any) -> None:
    p = sub.add_parser("completion", help="print the bash or zsh completion script (reads nothing; writes stdout)",
                       description="Print the completion script for SHELL to stdout. 'pip install' (not -e) also "
                                   "installs both: <prefix>/share/bash-completion/completions/hostaudit and "
                                   "<prefix>/share/zsh/site-functions/_hostaudit. To load it by hand: "
                                   "source <(hostaudit completion bash), or source <(hostaudit completion zsh) "
                                   "after compinit.")
    p.add_argument("shell", metavar="SHELL", choices=SHELLS, help="bash or zsh")
    p.set_defaults(func=cmd_completion)


def cmd_completion(args: argparse.Namespace) -> int:
    import sys

    sys.stdout.write(script(args.shell))
    return 0
