"""Boot loader configuration parsers: GRUB 2 scripts, grubenv, BLS entries, legacy GRUB, and the
shell-syntax files that regenerate them (``/etc/default/grub``, ``grub.d/*.cfg``).

Pure: text in, data out. GRUB 2 configurations are scripts, so besides the parser there is a small
evaluator (:func:`run_grub_script`) that replays what GRUB does at boot. It reaches files only through
a :class:`GrubFiles` callback object supplied by the caller, so it stays testable on strings.

The files, lowest layer first (each imports only those above it):

- ``limits``: bounds on the work a configuration may cause, and the error naming the file and line
  where one runs out (:class:`GrubLimitError`); an audited image is untrusted input.
- ``lexer``: text into commands of words, quoting kept (shared by the shell and GRUB script readers).
- ``expand``: word expansion from an environment, field splitting, kernel command line joining.
- ``shellvars``: ``/etc/default/grub`` and ``grub.d/*.cfg`` variables (:func:`parse_shell_vars`).
- ``grubenv``: the GRUB environment block (:func:`parse_grubenv`).
- ``script``: the GRUB 2 syntax tree (:func:`parse_grub_script`).
- ``evaluator``: running a parsed script into a menu (:func:`run_grub_script`, :class:`GrubRun`).
- ``kernel``: the kernel command a menu entry boots (:func:`entry_kernel`).
- ``default``: the ``default`` variable (:func:`split_default`, :func:`parse_grub_number`).
- ``bls``: Boot Loader Specification entries and GRUB's order of them (:func:`parse_bls_entry`).
- ``legacy``: legacy GRUB ``grub.conf``/``menu.lst`` (:func:`parse_legacy_grub`).
- ``grubby``: ``/etc/kernel/cmdline`` and ``grubby --default-index`` output.

Every name is importable from this package as before; the submodule that defines it is imported on
first use (PEP 562), so ``import audit.parsers.grub`` alone loads none of them.
"""

from __future__ import annotations

from audit import lazy_exports

#: name -> submodule defining it. Private names are listed so that existing imports keep working.
_SUBMODULE_OF: dict[str, str] = {
    # limits
    "GrubLimitError": "limits",
    "Meter": "limits",
    # lexer
    "LexStats": "lexer",
    "Part": "lexer",
    "Word": "lexer",
    "Command": "lexer",
    "_NAME": "lexer",
    "_ASSIGN": "lexer",
    "_read_var": "lexer",
    "_lex": "lexer",
    "_is_assignment": "lexer",
    # expand
    "_Expansion": "expand",
    "_var_value": "expand",
    "_expand_simple": "expand",
    "_expand_word": "expand",
    "_expand_fields": "expand",
    "_join_cmdline": "expand",
    # shellvars
    "ShellVar": "shellvars",
    "ShellAssignment": "shellvars",
    "ShellFile": "shellvars",
    "parse_shell_vars": "shellvars",
    "_SHELL_DECLARE": "shellvars",
    # grubenv
    "GRUBENV_SIGNATURE": "grubenv",
    "GRUBENV_SIZE": "grubenv",
    "GrubEnv": "grubenv",
    "parse_grubenv": "grubenv",
    # script
    "IfBlock": "script",
    "MenuBlock": "script",
    "FunctionBlock": "script",
    "LoopBlock": "script",
    "Node": "script",
    "GrubScript": "script",
    "MAX_NESTING": "script",
    "parse_grub_script": "script",
    "_SPLIT_KEYWORDS": "script",
    "_parse_block": "script",
    "_parse_if": "script",
    # evaluator
    "GrubFiles": "evaluator",
    "MenuEntry": "evaluator",
    "Submenu": "evaluator",
    "BootContext": "evaluator",
    "BlscfgCall": "evaluator",
    "MenuItem": "evaluator",
    "GRUB_FEATURES": "evaluator",
    "GRUB_EXPORTED": "evaluator",
    "Redirect": "evaluator",
    "GrubRun": "evaluator",
    "run_grub_script": "evaluator",
    "_Stop": "evaluator",
    "_Evaluator": "evaluator",
    "_menu_args": "evaluator",
    "_dirname": "evaluator",
    "_test": "evaluator",
    # kernel
    "KernelCommand": "kernel",
    "entry_kernel": "kernel",
    "_LINUX_COMMANDS": "kernel",
    "_XEN_COMMANDS": "kernel",
    "_MODULE_COMMANDS": "kernel",
    # default
    "split_default": "default",
    "parse_grub_number": "default",
    # bls
    "BlsEntry": "bls",
    "parse_bls_entry": "bls",
    "rpm_vercmp": "bls",
    "bls_compare": "bls",
    "sort_bls_names": "bls",
    "expand_bls_options": "bls",
    "_BLS_MULTI": "bls",
    "_split_nvr": "bls",
    # legacy
    "LegacyEntry": "legacy",
    "LegacyConfig": "legacy",
    "parse_legacy_grub": "legacy",
    "parse_legacy_default_file": "legacy",
    "_args_after": "legacy",
    # grubby
    "parse_kernel_cmdline_file": "grubby",
    "parse_grubby_default_index": "grubby",
}

__all__ = [
    "GRUBENV_SIGNATURE",
    "GRUBENV_SIZE",
    "GRUB_EXPORTED",
    "GRUB_FEATURES",
    "MAX_NESTING",
    "BlsEntry",
    "BlscfgCall",
    "BootContext",
    "Command",
    "FunctionBlock",
    "GrubEnv",
    "GrubFiles",
    "GrubLimitError",
    "GrubRun",
    "GrubScript",
    "IfBlock",
    "KernelCommand",
    "LegacyConfig",
    "LegacyEntry",
    "LexStats",
    "LoopBlock",
    "MenuBlock",
    "MenuEntry",
    "MenuItem",
    "Meter",
    "Node",
    "Part",
    "Redirect",
    "ShellAssignment",
    "ShellFile",
    "ShellVar",
    "Submenu",
    "Word",
    "bls_compare",
    "entry_kernel",
    "expand_bls_options",
    "parse_bls_entry",
    "parse_grub_number",
    "parse_grub_script",
    "parse_grubby_default_index",
    "parse_grubenv",
    "parse_kernel_cmdline_file",
    "parse_legacy_default_file",
    "parse_legacy_grub",
    "parse_shell_vars",
    "rpm_vercmp",
    "run_grub_script",
    "sort_bls_names",
    "split_default",
]

__getattr__, __dir__ = lazy_exports(__name__, _SUBMODULE_OF)
