"""Legacy GRUB (0.97): ``grub.conf``/``menu.lst`` entries and the ``/boot/grub/default`` saved entry."""

from __future__ import annotations

import re

from audit.parsers.grub.limits import MAX_LEGACY_MODULES, MAX_MENU_ITEMS, MAX_PROBLEMS, GrubLimitError, iter_lines
from audit.record import Record

_NUMBER = re.compile(r"\s*(\d+)")
_COMMAND = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\s*=\s*|\s+|$)(.*)$")

# -- legacy GRUB (0.97): grub.conf / menu.lst -----------------------------------------------------------


class LegacyEntry(Record):
    title: str
    line: int
    kernel: str | None = None  # image path as written (a "(hd0,0)" device may lead)
    kernel_args: str = ""
    kernel_line: int | None = None
    initrd: str | None = None
    modules: tuple[tuple[str, str, int], ...] = ()  # (path, args, line): Xen dom0 kernel and initrd
    root: str | None = None


class LegacyConfig(Record):
    default: str | None  # "0", "saved", ...
    default_line: int | None
    fallback: str | None
    entries: tuple[LegacyEntry, ...]
    problems: tuple[str, ...] = ()


def parse_legacy_grub(text: str) -> LegacyConfig:
    """GRUB legacy ``grub.conf``/``menu.lst``. Every line after ``title`` belongs to that entry,
    indented or not (inspec #868); ``key=value`` and ``key value`` are both accepted.
    Raises GrubLimitError past ``MAX_MENU_ITEMS`` entries or ``MAX_LEGACY_MODULES`` modules in one;
    keeps ``MAX_PROBLEMS`` problems (and counts the rest)."""
    default = fallback = None
    default_line = None
    entries: list[LegacyEntry] = []
    problems: list[str] = []
    title: tuple[str, int] | None = None
    kernel: tuple[str, str, int] | None = None
    initrd: str | None = None
    root: str | None = None
    modules: list[tuple[str, str, int]] = []
    more_problems = 0

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

    for n, raw in iter_lines(text):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _COMMAND.match(line)
        if m is None:
            if len(problems) < MAX_PROBLEMS:
                problems.append(f"line {n}: not a GRUB command: {line[:40]!r}")
            else:
                more_problems += 1
            continue
        cmd, rest = m.group(1).lower(), m.group(2).strip()
        if cmd == "title":
            close()
            if len(entries) >= MAX_MENU_ITEMS:
                raise GrubLimitError(f"more than {MAX_MENU_ITEMS} title entries", line=n)
            title, kernel, initrd, root, modules = (rest, n), None, None, None, []
            continue
        if title is None:
            if cmd == "default":
                default, default_line = (rest.split() or [""])[0], n
            elif cmd == "fallback":
                fallback = (rest.split() or [""])[0]
            continue
        words = rest.split()
        first = 0
        while first < len(words) and words[first].startswith("--"):  # kernel --no-mem-option, module --type=...
            first += 1
        words = words[first:]
        if cmd == "kernel" and words and kernel is None:
            kernel = (words[0], _args_after(rest, words[0]), n)
        elif cmd == "initrd" and words and initrd is None:
            initrd = words[0]
        elif cmd == "module" and words:
            if len(modules) >= MAX_LEGACY_MODULES:
                raise GrubLimitError(f"more than {MAX_LEGACY_MODULES} module lines in one entry", line=n)
            modules.append((words[0], _args_after(rest, words[0]), n))
        elif cmd == "root":
            root = rest
    close()
    if more_problems:
        problems.append(f"... and {more_problems} more lines that are not GRUB commands")
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
    for _, line in iter_lines(text):
        m = _NUMBER.match(line)
        if m:
            return int(m.group(1))
        if line.strip() and not line.startswith("#"):
            break
    return None
