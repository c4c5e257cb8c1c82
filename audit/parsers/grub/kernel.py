"""A menu entry's kernel command: which kernel (or Xen dom0 kernel, or chainloaded image) an entry boots
and its arguments with variables expanded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from audit.parsers.grub.evaluator import GrubFiles, MenuEntry, _Evaluator
from audit.parsers.grub.expand import _expand_fields, _Expansion, _join_cmdline
from audit.parsers.grub.lexer import _NAME, Command, _is_assignment
from audit.parsers.grub.script import IfBlock, Node

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
