"""A menu entry's kernel command: which kernel (or Xen dom0 kernel, or chainloaded image) an entry boots
and its arguments with variables expanded.
"""

from __future__ import annotations

import contextlib
from collections import ChainMap
from collections.abc import Collection, Iterable, Mapping

from audit.parsers.grub.evaluator import (
    GrubFiles,
    MenuEntry,
    _base_env,
    _condition,
    _Evaluator,
    _Return,
    _unknown_vars,
    bind_arguments,
)
from audit.parsers.grub.expand import _expand_fields, _Expansion, _join_cmdline
from audit.parsers.grub.lexer import _NAME, Command, Word, _is_assignment
from audit.parsers.grub.limits import Meter
from audit.parsers.grub.script import FunctionBlock, IfBlock, Node
from audit.record import Record

# -- a menu entry's kernel command ---------------------------------------------------------------------

_LINUX_COMMANDS = {"linux", "linux16", "linuxefi"}
_XEN_COMMANDS = {"multiboot", "multiboot2"}
_MODULE_COMMANDS = {"module", "module2"}


class KernelCommand(Record):
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
    #: (variable, why) for the arguments' variables whose value depends on a condition the evaluator
    #: could not decide; why: the undecided variable it came from, or "the condition at line N"
    uncertain_variables: tuple[tuple[str, str], ...] = ()


def entry_kernel(
    entry: MenuEntry,
    *,
    env: Mapping[str, str],
    files: GrubFiles,
    platform: str | None = None,
    functions: Mapping[str, FunctionBlock] | None = None,
    uncertain: Collection[str] = (),
) -> KernelCommand | None:
    """The kernel an entry boots and its arguments, from the first ``linux``/``linux16``/``linuxefi``
    (or, for Xen, the first ``module`` after ``multiboot``), as GRUB runs the body when the entry
    boots: expanded with ``env`` (the variables of the entry's menu once the file has run) plus what
    the body's ``set`` commands and calls of ``functions`` (``GrubRun.functions``) set before it.
    ``uncertain``: variables set under a condition the evaluator could not decide; what is computed
    from them is reported in ``uncertain_variables``. None when the entry loads no kernel.
    Raises GrubLimitError (naming the entry's file and line) when the body needs more work than any
    real entry does (``audit.parsers.grub.limits``)."""
    meter = Meter()
    meter.label = entry.source
    scope = dict(env)
    # a condition sees GRUB's own variables under the entry's (as a fresh evaluator's would)
    cond_env = ChainMap(scope, _base_env(platform))
    unknown = _unknown_vars(platform)
    hypervisor: list[str] = []
    result: list[KernelCommand] = []
    known = dict(functions or {})
    calls = [0, 0]  # nesting, total
    tainted = {v: f"${v}" for v in uncertain}  # variable -> why its value is uncertain

    def reads_tainted(words: Iterable[Word]) -> str | None:
        exp = _Expansion(meter=meter)
        _expand_fields(words, scope, exp)
        return next((tainted[v] for v in exp.used if v in tainted), None)

    def walk(nodes: Iterable[Node], cause: str | None) -> bool:
        """cause: why the commands walked may not run (an undecidable condition), None when they do."""
        for node in nodes:
            meter.line = node.line
            meter.step()
            if isinstance(node, IfBlock):
                for cond, body in node.branches:
                    truth: bool | None = True
                    why = cause
                    if cond is not None:
                        why = reads_tainted(cond.words)
                        truth = None if why else _condition(cond, cond_env, unknown, files, meter)
                        why = why or cause or f"the condition at line {cond.line}"
                    if truth is False:
                        continue
                    if walk(body, cause if truth is True else why):
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
                for word in args_words:
                    exp = _Expansion(meter=meter)
                    for text, _ in _expand_fields([word], scope, exp):
                        var, eq, value = text.partition("=")
                        if eq and _NAME.fullmatch(var):
                            scope[var] = value
                            why = cause or next((tainted[v] for v in exp.used if v in tainted), None)
                            if why:
                                tainted[var] = why
                            else:
                                tainted.pop(var, None)
                continue
            if name == "unset":
                for text, _ in _expand_fields(args_words, scope, _Expansion(meter=meter)):
                    scope.pop(text, None)
                continue
            if name == "return" and calls[0]:
                raise _Return
            if name in known and calls[0] < _Evaluator.MAX_CALLS and calls[1] < _Evaluator.MAX_CALLS_TOTAL:
                args = [t for t, _ in _expand_fields(args_words, scope, _Expansion(meter=meter))]
                meter.step(len(scope))  # bind_arguments looks at every variable
                # every positional name: an argument that expands to nothing shifts the others
                positional = [str(k) for k in range(1, max(len(args), 9) + 1)] + ["#", "@", "*"]
                outer = {k: tainted.pop(k) for k in positional if k in tainted}
                why = reads_tainted(args_words)
                if why:
                    tainted.update(dict.fromkeys(positional, why))
                calls[0] += 1
                calls[1] += 1
                found = False
                with bind_arguments(scope, args), contextlib.suppress(_Return):
                    found = walk(known[name].body, cause)
                calls[0] -= 1
                for k in positional:
                    tainted.pop(k, None)
                tainted.update(outer)
                if found:
                    return True
                continue
            if name in _XEN_COMMANDS:
                raw = " ".join(w.raw for w in args_words)
                hypervisor.append(f"{name} {raw}")
                continue
            is_module = name in _MODULE_COMMANDS and hypervisor
            if name in _LINUX_COMMANDS or is_module or name == "chainloader":
                exp = _Expansion(meter=meter)
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
                        uncertain_variables=tuple(
                            (v, tainted[v]) for v in dict.fromkeys(exp.used) if v in tainted
                        ),
                        hypervisor=hypervisor[0] if is_module else None,
                        chainloader=path if name == "chainloader" else None,
                        uncertain=cause is not None,
                    )
                )
                return True
        return False

    walk(entry.body, None)
    return result[0] if result else None
