"""Which boot parameters the kernel accepts, since when, and which values it acts on: the table
``tools/gen_kernel_params.py`` derives from the kernel's own kernel-parameters.txt and source
(``audit/boot/data/kernel_params.json``), and the judgement of a command line against it."""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from audit.parsers.cmdline import Param
from audit.record import Record

TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "kernel_params.json")
#: The near-miss threshold (difflib ratio): transparent_hugepages/transparent_hugepage is 0.98.
CUTOFF = 0.85
#: Shorter names are compared with the watched names only: one letter from a short name is too often another one.
MIN_TABLE_MISS = 8
#: how many near_miss answers a table keeps
NEAR_MISS_MEMO = 4096
#: Advice where the value people write is a known misunderstanding.
VALUE_HINTS = {
    ("amd_iommu", "on"): "the AMD IOMMU is on by default; only amd_iommu=off changes that",
    ("iommu", "<number>"): "a number only sizes the legacy AMD GART remapping area and enables no IOMMU",
}
#: What the huge page parameters accept, by the table's "form" (mm/hugetlb.c; their values are
#: replayed by audit.parsers.hugepages).
HUGEPAGE_FORMS = {
    "size": "a page size the CPU has: 2M, or 1G with pdpe1gb, on x86-64",
    "count": "a number of pages, or <node>:<pages>,... per NUMA node",
}
#: audit.parsers.hugepages' words for a value the kernel rejects.
_REJECTED = ("not a size", "unsupported huge page size", "not a number")


def series_of(release: str | None) -> tuple[int, int] | None:
    """``4.18.0-513.el8.x86_64`` -> (4, 18): the mainline series a release is built from."""
    m = re.match(r"^\s*(\d+)\.(\d+)", release or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


@functools.cache  # a table names some 3,000 series, of about 30 distinct ones
def _series(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


def _show(s: tuple[int, int]) -> str:
    return f"{s[0]}.{s[1]}"


class Finding(Record):
    """One thing to say about a parameter: ``level`` "warn" (the kernel ignores it or does nothing
    with it) or "info" (it may be ignored; hostaudit cannot tell)."""

    level: str
    message: str


class ParamTable:
    """The generated table, loaded once (``load_table``)."""

    __slots__ = ("_by_len", "_near", "hugepage_forms", "names", "newest", "oldest", "prefixes", "series", "source",
                 "values")

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.names: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
            n: (_series(a), _series(b)) for n, (a, b) in doc["params"].items()}
        self.prefixes: tuple[str, ...] = tuple(doc.get("prefixes", {}))
        self.series: tuple[tuple[int, int], ...] = tuple(_series(s) for s in doc["series"])
        self.newest = self.series[-1]
        self.oldest = self.series[0]
        self.values: dict[str, dict[tuple[int, int], Mapping[str, Any]]] = {
            p: {_series(s): v for s, v in per.items()} for p, per in doc.get("values", {}).items()}
        self.source: Mapping[str, Any] = doc.get("source", {})
        self.hugepage_forms: dict[str, str] = {p: v["form"] for p, v in doc.get("hugepage_values", {}).items()}
        self._by_len: dict[int, list[str]] = {}
        #: near_miss answers: the same few unknown names come back on host after host of a fleet
        self._near: dict[tuple[str, frozenset[str]], str | None] = {}
        for n in self.names:
            self._by_len.setdefault(len(n), []).append(n)

    def known(self, key: str) -> bool:
        return key in self.names or key.startswith(self.prefixes)

    def listed(self, key: str) -> tuple[tuple[int, int], tuple[int, int]] | None:
        """(first, last) series of the table's releases that list ``key``."""
        return self.names.get(key)

    def previous(self, s: tuple[int, int]) -> tuple[int, int] | None:
        older = [x for x in self.series if x < s]
        return older[-1] if older else None

    def following(self, s: tuple[int, int]) -> tuple[int, int] | None:
        newer = [x for x in self.series if x > s]
        return newer[0] if newer else None

    def near_miss(self, key: str, watched: Iterable[str] = ()) -> str | None:
        """The known name ``key`` is most likely a misspelling of, or None.

        A plain lower-case name of MIN_TABLE_MISS characters or more is compared with the table's
        plain names of a length that can reach the cutoff (difflib's ratio is at most
        2·min(a, b)/(a + b)); a shorter one (``noht`` is one letter from MIPS' ``nohtw``) or one
        in capitals (init's ``LANG=``) only with the plain names of ``watched``. A dotted
        ``module.param`` is compared only with the dotted names of ``watched``: module parameters
        are judged by what the module declares."""
        memo = (key, watched if isinstance(watched, frozenset) else frozenset(watched))
        if memo in self._near:
            return self._near[memo]
        if len(self._near) >= NEAR_MISS_MEMO:  # a command line of endless made-up names: start again
            self._near.clear()
        self._near[memo] = found = self._near_miss(key, memo[1])
        return found

    def _near_miss(self, key: str, watched: frozenset[str]) -> str | None:
        if "." in key:
            cands = [n for n in watched if "." in n]
        elif len(key) < MIN_TABLE_MISS or key != key.lower():
            cands = [n for n in watched if "." not in n]
        else:
            lo = int(len(key) * CUTOFF / (2 - CUTOFF))
            hi = int(len(key) * (2 - CUTOFF) / CUTOFF) + 1
            cands = [n for size in range(lo, hi + 1) for n in self._by_len.get(size, ()) if "." not in n]
        import difflib  # only for a name the table does not know

        close = difflib.get_close_matches(key, cands, n=1, cutoff=CUTOFF)
        return close[0] if close else None

    def accepted(self, param: str, kernel: tuple[int, int] | None) -> tuple[tuple[int, int], Mapping[str, Any]] | None:
        """The value parser of ``param`` in the table's release nearest ``kernel`` (not newer than
        it, else the oldest; the newest when the kernel is unknown), with its series."""
        per = self.values.get(param)
        if not per:
            return None
        keys = sorted(per)
        if kernel is None:
            pick = keys[-1]
        else:
            older = [k for k in keys if k <= kernel]
            pick = older[-1] if older else keys[0]
        return pick, per[pick]


@functools.cache
def load_table() -> ParamTable:
    with open(TABLE, encoding="utf-8") as f:
        return ParamTable(json.load(f))


def with_accepted(problem: str, table: ParamTable | None = None) -> str:
    """A huge page problem line (``hugepagesz=huge: not a size; ignored by the kernel``) with what
    the parameter accepts, when it says the kernel rejected the value."""
    table = table or load_table()
    name = problem.split("=", 1)[0].replace("-", "_")
    form = table.hugepage_forms.get(name)
    if form is None or not any(r in problem for r in _REJECTED):
        return problem
    return f"{problem} ({name}= accepts {HUGEPAGE_FORMS[form]})"


def parser_acts(option: str, entry: Mapping[str, Any]) -> bool | None:
    """Does the parser described by ``entry`` act on ``option`` (one comma-separated option, or
    the whole value for an exact parser)? None: parsed, but only logged as ignored."""
    keywords: list[str] = list(entry.get("keywords", ()))
    match = entry.get("match")
    if match == "exact":
        return option in keywords
    if match == "substring":
        return any(k in option for k in keywords)
    if any(option.startswith(k) for k in keywords):
        return True
    if entry.get("number") and option[:1].isdigit():
        return True
    if any(option.startswith(k) for k in entry.get("ignored", ())):
        return None
    return False


def _accepted_text(entry: Mapping[str, Any]) -> str:
    words = list(entry.get("keywords", ()))
    if entry.get("number"):
        words.append("<size>")
    return ", ".join(words)


def _options(value: str, entry: Mapping[str, Any]) -> list[str]:
    if entry.get("match") == "exact":
        return [value]
    return [o for o in value.split(",") if o]


def judge_value(p: Param, kernel: tuple[int, int] | None, table: ParamTable | None = None) -> list[Finding]:
    """Values of the parameters hostaudit's checks act on that the kernel does nothing with."""
    table = table or load_table()
    key = p.key
    found = table.accepted(key, kernel)
    if found is None or p.value is None:
        return []
    at, entry = found
    out: list[Finding] = []
    tok = f"{p.name}={p.value}"
    options = _options(p.value, entry) or [""]
    for opt in options:
        acts = parser_acts(opt, entry)
        if acts:
            if key == "iommu" and opt[:1].isdigit() and not any(opt.startswith(k) for k in entry["keywords"]):
                out.append(Finding("warn", f"{tok}: {opt!r} does not enable an IOMMU: "
                                           f"{VALUE_HINTS[('iommu', '<number>')]} (iommu= acts on "
                                           f"{_accepted_text(entry)}; {entry['parser']} in {_show(at)})"))
            continue
        if acts is None:
            out.append(Finding("warn", f"{tok}: the kernel parses {opt!r} but ignores it ({entry['parser']} in "
                                       f"{_show(at)})"))
            continue
        later = [s for s, e in sorted(table.values[key].items()) if s > at and parser_acts(opt, e)]
        if later and kernel is not None:
            out.append(Finding("info", f"{tok}: possibly ignored: {opt!r} was added between "
                                       f"{_show(table.previous(later[0]) or at)} and {_show(later[0])} (kernel "
                                       f"{_show(kernel)}; distribution kernels backport options)"))
            continue
        if kernel is not None and kernel > table.newest:
            out.append(Finding("info", f"{tok}: {opt!r} is unknown to hostaudit's table (kernel {_show(kernel)} "
                                       f"is newer than the table's {_show(table.newest)})"))
            continue
        hint = VALUE_HINTS.get((key, opt.lower()))
        out.append(Finding("warn", f"{tok}: {opt!r} is not a value the kernel acts on ({p.name}= accepts "
                                   f"{_accepted_text(entry)}; {entry['parser']} in {_show(at)})"
                                   + (f"; {hint}" if hint else "")))
    return out


def judge_name(p: Param, kernel: tuple[int, int] | None, table: ParamTable | None = None,
               watched: Iterable[str] = ()) -> list[Finding]:
    """A name the kernel does not know (a near miss of a known one, see ``ParamTable.near_miss``),
    or knows only from a later release, or no longer lists."""
    table = table or load_table()
    key = p.key
    if "$" in key or not key:
        return []
    listed = table.listed(key)
    if listed is None:
        if table.known(key):
            return []
        close = table.near_miss(key, watched)
        if close is None:
            return []  # not a kernel parameter, and not like one: init's or a boot loader's
        if kernel is not None and kernel > table.newest:
            return [Finding("info", f"'{p.name}' is unknown to hostaudit's table (kernel {_show(kernel)} is newer "
                                    f"than the table's {_show(table.newest)})")]
        return [Finding("warn", f"'{p.name}' is not a kernel parameter (did you mean '{close}'?); "
                                "the kernel ignores it")]
    if kernel is None:
        return []
    first, last = listed
    prev = table.previous(first)
    if kernel < first and prev is not None:
        return [Finding("info", f"'{p.name}' is possibly ignored: added between {_show(prev)} and {_show(first)} "
                                f"(kernel {_show(kernel)}; distribution kernels backport parameters)")]
    nxt = table.following(last)
    if nxt is not None and kernel >= nxt:
        return [Finding("info", f"'{p.name}' is possibly ignored: removed between {_show(last)} and {_show(nxt)} "
                                f"(kernel {_show(kernel)})")]
    return []


class ModuleParamsView(Record):
    """What the image's modules declare: module (canonical) -> its parameter names, and the file
    that said so; modules that exist but could not be read, with why."""

    declared: Mapping[str, frozenset[str]]
    unjudged: Mapping[str, str]
    sources: Mapping[str, str] = {}
    release: str = ""


def judge_module_param(p: Param, modules: ModuleParamsView) -> list[Finding]:
    """``kvm_intel.nested``: checked against the parameters the module declares, when read."""
    module, _, param = p.key.partition(".")
    declared = modules.declared.get(module)
    if declared is None or not param:
        return []
    if param in declared:
        return []
    import difflib  # only for a parameter the module does not declare

    close = difflib.get_close_matches(param, sorted(declared), n=1, cutoff=CUTOFF)
    mean = f"did you mean '{module}.{close[0]}'? " if close else ""
    return [Finding("warn", f"'{p.name}': module {module} declares no parameter '{param}' ({mean}it declares "
                            f"{len(declared)}); the kernel ignores it")]


def judge_params(params: Iterable[Param], release: str | None, *, modules: ModuleParamsView | None = None,
                 watched: Iterable[str] = (), table: ParamTable | None = None) -> list[Finding]:
    """Every finding about the names and values of ``params`` for a kernel of ``release`` (None:
    unknown: names are judged as of the newest release in the table, and no version is noted)."""
    table = table or load_table()
    kernel = series_of(release)
    watched = tuple(watched)
    out: list[Finding] = []
    for p in params:
        if (modules is not None and "." in p.key and not table.known(p.key)
                and p.key.partition(".")[0] in modules.declared):
            out += judge_module_param(p, modules)
        else:
            out += judge_name(p, kernel, table, watched)
        out += judge_value(p, kernel, table)
    return list(dict.fromkeys(out))
