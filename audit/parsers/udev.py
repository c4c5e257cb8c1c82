"""udev rules, evaluated for one device node: the OWNER, GROUP and MODE udev gives it when it is added.

Enough of udev(7) to say what /dev/kvm will look like after an image boots. The caller hands the
rule files in udev's order (``rule_files``: by file name across the rule directories, a name in a
higher directory hiding the same name lower down). Within a file, lines are read in order; a
trailing backslash continues a line; blank and ``#`` lines are skipped, and so is a line udev
cannot parse or a line longer than udev's 16 KiB limit (udev logs those and goes on).

A rule applies when each of its match keys matches the device. For a device known only by its
name this can decide KERNEL and KERNELS (the name), SUBSYSTEM and SUBSYSTEMS, ACTION ("add", what
the boot-time trigger sends) and DEVPATH; patterns are globs, ``|`` separates alternatives. A rule
with any other match key (ATTR, ENV, TEST, PROGRAM, ...) cannot be decided here: if it would set
OWNER, GROUP or MODE it is reported as undecided, never applied, and if it jumps (GOTO) the rules it
might skip are reported as undecided when they set any of the three. A rule that applies and has
GOTO skips to its LABEL in the same file. ``=`` sets a value unless an earlier ``:=`` made it final;
a value with a substitution (``$``, ``%``) is undecided.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

from audit.record import Record

#: udev's longest rule line (UDEV_LINE_SIZE); longer lines are refused by udev
MAX_LINE = 16 * 1024
PERM_KEYS = ("OWNER", "GROUP", "MODE")

_TOKEN = re.compile(r'([A-Za-z_]+)(?:\{([^{}]*)\})?[ \t]*(==|!=|\+=|-=|:=|=)[ \t]*[er]?"((?:[^"\\]|\\.)*)"')
_SEP = re.compile(r"[ \t,]*")
_MAGIC = re.compile(r"[*?\[]")


class Device(Record):
    name: str  # the kernel name: "kvm"
    subsystem: str  # "misc"
    devpath: str  # "/devices/virtual/misc/kvm"


class Setting(Record):
    value: str
    where: str  # "path:line"


class UdevPerms(Record):
    owner: Setting | None
    group: Setting | None
    mode: Setting | None
    undecided: tuple[str, ...]  # "path:line: rule" of rules that may set them, not decided here
    files: int  # rule files read

    def get(self, key: str) -> Setting | None:
        return {"OWNER": self.owner, "GROUP": self.group, "MODE": self.mode}[key]


class _Rule(Record):
    line: int
    text: str
    tokens: tuple[tuple[str, str | None, str, str], ...]  # key, {attr}, operator, value


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each rule line, continuations joined."""
    out: list[tuple[int, str]] = []
    parts: list[str] = []
    start = 0
    for no, raw in enumerate(text.split("\n"), 1):
        line = raw.rstrip("\r")
        if not parts:
            start = no
        if line.endswith("\\"):
            parts.append(line[:-1])
            continue
        parts.append(line)
        out.append((start, "".join(parts)))
        parts = []
    if parts:
        out.append((start, "".join(parts)))
    return out


def _parse(text: str) -> list[_Rule]:
    rules = []
    for no, line in _logical_lines(text):
        body = line.strip()
        if not body or body.startswith("#") or len(body) > MAX_LINE:
            continue
        tokens = []
        pos = 0
        while True:
            pos = _SEP.match(body, pos).end()  # type: ignore[union-attr]
            if pos >= len(body):
                break
            m = _TOKEN.match(body, pos)
            if m is None:
                tokens = []
                break  # a line udev cannot parse: skipped as a whole
            tokens.append((m.group(1), m.group(2), m.group(3), m.group(4)))
            pos = m.end()
        if tokens:
            rules.append(_Rule(no, body, tuple(tokens)))
    return rules


def _matches(pattern: str, value: str) -> bool:
    """udev's match: any ``|`` alternative, each a glob (most are plain words: compared, not compiled)."""
    return any(fnmatch.fnmatchcase(value, alt) if _MAGIC.search(alt) else alt == value for alt in pattern.split("|"))


def _decide(rule: _Rule, device: Device) -> bool | None:
    """Whether every match key of ``rule`` matches ``device``; None when one cannot be decided."""
    known = {"KERNEL": device.name, "KERNELS": device.name, "SUBSYSTEM": device.subsystem,
             "SUBSYSTEMS": device.subsystem, "ACTION": "add", "DEVPATH": device.devpath}
    verdict: bool | None = True
    for key, attr, op, value in rule.tokens:
        if op not in ("==", "!="):
            continue
        if key not in known or attr is not None:
            verdict = None  # unless a key this can decide does not match
            continue
        if _matches(value, known[key]) != (op == "=="):
            return False
    return verdict


def evaluate(files: Sequence[tuple[str, str]], device: Device) -> UdevPerms:
    """What the rule files (``(path, text)`` in udev's order) set for ``device``'s node."""
    found: dict[str, Setting] = {}
    final: set[str] = set()
    undecided: list[str] = []
    for path, text in files:
        rules = _parse(text)
        last_label: dict[str, int] = {}  # label -> index of its last LABEL rule (a GOTO jumps only forward)
        for i, r in enumerate(rules):
            for k, _, op, v in r.tokens:
                if k == "LABEL" and op == "=":
                    last_label[v] = i
        skip_to: str | None = None
        maybe_skipped: dict[str, str] = {}  # label -> where the undecided GOTO is
        for index, rule in enumerate(rules):
            labels = [v for k, _, op, v in rule.tokens if k == "LABEL" and op == "="]
            for label in labels:
                maybe_skipped.pop(label, None)
            if skip_to is not None:
                if skip_to in labels:
                    skip_to = None
                else:
                    continue
            sets = [(k, op, v) for k, _, op, v in rule.tokens if k in PERM_KEYS]
            gotos = [v for k, _, op, v in rule.tokens if k == "GOTO" and op == "="]
            if any(op not in ("=", ":=") for _, op, _ in sets):
                continue  # udev refuses the line ("invalid operator")
            verdict = _decide(rule, device)
            where = f"{path}:{rule.line}"
            if verdict is None:
                if sets:
                    undecided.append(f"{where}: {rule.text[:200]}")
                for g in gotos:
                    maybe_skipped.setdefault(g, where)
                continue
            if not verdict:
                continue
            for key, op, value in sets:
                if "$" in value or "%" in value:
                    undecided.append(f"{where}: {rule.text[:200]}")
                    continue
                if maybe_skipped:
                    undecided.append(f"{where}: {rule.text[:200]} (the rule at {next(iter(maybe_skipped.values()))}"
                                     " may skip it)")
                if key in final:
                    continue
                found[key] = Setting(value, where)
                if op == ":=":
                    final.add(key)
            if gotos and last_label.get(gotos[-1], -1) > index:  # udev ignores a GOTO to no label
                skip_to = gotos[-1]
    return UdevPerms(owner=found.get("OWNER"), group=found.get("GROUP"), mode=found.get("MODE"),
                     undecided=tuple(undecided), files=len(files))
