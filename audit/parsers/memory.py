"""Runtime memory facts: /proc/meminfo, /proc/swaps, huge page pools, THP and KSM sysfs files.

Paths the host layer reads (each function takes the text, never a path):

- ``parse_meminfo``: ``/proc/meminfo``
- ``parse_swaps``: ``/proc/swaps``
- ``parse_thp_setting`` / ``parse_thp_mode``: ``THP_DIRS[i]/{enabled,defrag,shmem_enabled}`` and
  ``THP_DIRS[0]/hugepages-<size>kB/{enabled,shmem_enabled}`` (mTHP, 2024+). Probe both THP_DIRS:
  RHEL 6 only has the ``redhat_`` one.
- ``parse_int_file``: any one-number sysfs file (``THP_DIRS[0]/hpage_pmd_size``,
  ``/proc/sys/vm/nr_hugepages``, KSM counters)
- ``parse_ksm_run`` / ``parse_ksm_state``: ``KSM_DIR/*`` (no directory at all without CONFIG_KSM)
- ``pools_from_values``: ``HUGEPAGES_DIR/hugepages-<size>kB/*`` and, per NUMA node,
  ``/sys/devices/system/node/node<N>/hugepages/hugepages-<size>kB/*`` (``NODE_HUGEPAGES_GLOB``)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from audit.errors import ParseError
from audit.parsers.mounts import decode_octal_escapes
from audit.parsers.text import lines
from audit.record import Record

THP_DIRS = ("/sys/kernel/mm/transparent_hugepage", "/sys/kernel/mm/redhat_transparent_hugepage")
KSM_DIR = "/sys/kernel/mm/ksm"
HUGEPAGES_DIR = "/sys/kernel/mm/hugepages"
NODE_HUGEPAGES_GLOB = "/sys/devices/system/node/node*/hugepages"

_MEMINFO_LINE = re.compile(r"(?P<key>[^:\s][^:]*):\s*(?P<value>-?\d+)(?:\s+(?P<unit>\S+))?\s*")
_HUGEPAGE_DIR = re.compile(r"hugepages-(?P<kb>\d+)kB/?")
_KIB = 1024


# --- /proc/meminfo ----------------------------------------------------------------------------


class Meminfo(Record):
    """Sizes in bytes; ``hugepages_*`` are page counts of the *default-size* pool only."""

    mem_total: int | None
    swap_total: int | None
    swap_free: int | None
    anon_huge_pages: int | None  # THP in use now; says nothing about the configured mode
    hugepages_total: int | None
    hugepages_free: int | None
    hugepages_rsvd: int | None
    hugepages_surp: int | None
    hugepagesize: int | None  # the default huge page size
    hugetlb: int | None  # all pool sizes together (kernel >= 4.16, fcb2b0c577f1); None before
    raw: dict[str, int]   # every field as in the file; "kB" values in bytes

    @property
    def hugetlb_other_sizes(self) -> int | None:
        """Bytes in pools other than the default size (1 GiB pools hide here, field bug #23)."""
        if self.hugetlb is None or self.hugepages_total is None or self.hugepagesize is None:
            return None
        return self.hugetlb - self.hugepages_total * self.hugepagesize


def parse_meminfo(text: str) -> Meminfo:
    """Parse /proc/meminfo. A value with ``kB`` is scaled to bytes; one without a unit is a count.

    Scaling follows the unit on the line, never the field name: ``HugePages_Rsvd`` was once scaled
    by 1024 by name (insights #1151). A first line ``COMMAND> cat /proc/meminfo`` (captured output)
    is skipped.
    """
    raw: dict[str, int] = {}
    seen_content = False
    for lineno, line in enumerate(lines(text), start=1):
        if not line.strip():
            continue
        if not seen_content and line.lstrip().startswith("COMMAND>"):
            seen_content = True
            continue
        seen_content = True
        m = _MEMINFO_LINE.fullmatch(line)
        if m is None:
            raise ParseError(f"not a 'Name: value [kB]' line: {line.strip()!r}", line=lineno)
        key, value, unit = m.group("key").strip(), int(m.group("value")), m.group("unit")
        if unit is not None:
            if unit.lower() != "kb":
                raise ParseError(f"unknown unit {unit!r} for {key}", line=lineno)
            value *= _KIB
        if key in raw:
            raise ParseError(f"{key} appears twice", line=lineno)
        raw[key] = value
    if not raw:
        raise ParseError("no meminfo fields")
    return Meminfo(
        mem_total=raw.get("MemTotal"),
        swap_total=raw.get("SwapTotal"),
        swap_free=raw.get("SwapFree"),
        anon_huge_pages=raw.get("AnonHugePages"),
        hugepages_total=raw.get("HugePages_Total"),
        hugepages_free=raw.get("HugePages_Free"),
        hugepages_rsvd=raw.get("HugePages_Rsvd"),
        hugepages_surp=raw.get("HugePages_Surp"),
        hugepagesize=raw.get("Hugepagesize"),
        hugetlb=raw.get("Hugetlb"),
        raw=raw,
    )


# --- /proc/swaps ------------------------------------------------------------------------------


class SwapDevice(Record):
    filename: str  # decoded (\040 -> space)
    type: str  # "partition", "file"
    size: int  # bytes
    used: int  # bytes
    priority: int  # may be negative
    line: int = 0


def parse_swaps(text: str) -> list[SwapDevice]:
    """Parse /proc/swaps. The header alone means no swap; an empty text is a broken capture."""
    if not text.strip():
        raise ParseError("empty /proc/swaps (the kernel always prints a header)")
    devices: list[SwapDevice] = []
    for lineno, line in enumerate(lines(text), start=1):
        fields = line.split()
        if not fields or (fields[0] == "Filename" and not devices):
            continue
        if len(fields) != 5:
            raise ParseError(f"expected 5 fields, found {len(fields)}: {line.strip()!r}", line=lineno)
        name, kind, size, used, prio = fields
        try:
            size_kib, used_kib, priority = int(size), int(used), int(prio)
        except ValueError:
            problem = f"size, used and priority must be integers: {line.strip()!r}"
            raise ParseError(problem, line=lineno) from None
        devices.append(
            SwapDevice(
                filename=decode_octal_escapes(name),
                type=kind,
                size=size_kib * _KIB,
                used=used_kib * _KIB,
                priority=priority,
                line=lineno,
            )
        )
    return devices


# --- one-value sysfs files ----------------------------------------------------------------------


def _one_line(text: str, what: str) -> str:
    value = text.strip()
    if not value:
        raise ParseError(f"{what}: empty")
    if "\n" in value:
        raise ParseError(f"{what}: expected one line, found {len(lines(value))}", line=2)
    return value


def parse_int_file(text: str, *, name: str = "value") -> int:
    """One integer on one line (sysfs counters; ``general_profit`` may be negative)."""
    value = _one_line(text, name)
    try:
        return int(value)
    except ValueError:
        raise ParseError(f"{name}: not an integer: {value!r}", line=1) from None


# --- transparent huge pages -------------------------------------------------------------------


class ThpSetting(Record):
    active: str | None  # the bracketed word; None for "[]", "[ ]" or no brackets
    choices: tuple[str, ...]  # every word offered, in order, brackets removed


def parse_thp_setting(text: str) -> ThpSetting:
    """Parse a THP selector file: ``always [madvise] never`` -> active "madvise".

    Same format for ``enabled``, ``defrag``, ``shmem_enabled``, mTHP ``hugepages-<size>kB/enabled``
    (with ``inherit``) and RHEL 6's ``redhat_transparent_hugepage``.
    """
    line = _one_line(text, "THP setting")
    selected = re.findall(r"\[([^\[\]]*)\]", line)
    rest = re.sub(r"\[[^\[\]]*\]", " ", line)
    if "[" in rest or "]" in rest:
        raise ParseError(f"unbalanced brackets: {line!r}", line=1)
    words = [s.strip() for s in selected if s.strip()]
    if len(words) > 1:
        raise ParseError(f"more than one active choice: {line!r}", line=1)
    if words and len(words[0].split()) > 1:
        raise ParseError(f"more than one word in brackets: {line!r}", line=1)
    choices = tuple(line.replace("[", " ").replace("]", " ").split())
    return ThpSetting(active=words[0] if words else None, choices=choices)


def parse_thp_mode(text: str) -> str | None:
    """Only the active word of a THP selector file (see ``parse_thp_setting``)."""
    return parse_thp_setting(text).active


# --- KSM ----------------------------------------------------------------------------------------

KSM_RUN_STOPPED = 0
KSM_RUN_RUNNING = 1
KSM_RUN_UNMERGED = 2  # stopped, and every merged page has been unmerged


def parse_ksm_run(text: str) -> int:
    """``/sys/kernel/mm/ksm/run``: exactly one line, 0, 1 or 2."""
    value = _one_line(text, "ksm run")
    if value not in ("0", "1", "2"):
        raise ParseError(f"ksm run must be 0, 1 or 2, not {value!r}", line=1)
    return int(value)


_KSM_INT_FILES = (
    "pages_shared",
    "pages_sharing",
    "pages_unshared",
    "pages_volatile",
    "pages_scanned",
    "pages_skipped",
    "full_scans",
    "sleep_millisecs",
    "pages_to_scan",
    "merge_across_nodes",
    "max_page_sharing",
    "use_zero_pages",
    "ksm_zero_pages",
    "general_profit",
    "stable_node_chains",
    "stable_node_dups",
    "stable_node_chains_prune_millisecs",
    "smart_scan",
)



#: the default of a mapping field: shared by every record, so it cannot be changed
_NO_ENTRIES: Mapping[Any, Any] = MappingProxyType({})


class KsmState(Record):
    """Values of /sys/kernel/mm/ksm. None = the file was absent (older kernel), never zero."""

    run: int | None = None
    pages_shared: int | None = None
    pages_sharing: int | None = None  # how many more sites share a page: the saving
    pages_unshared: int | None = None
    pages_volatile: int | None = None
    pages_scanned: int | None = None
    pages_skipped: int | None = None
    full_scans: int | None = None
    sleep_millisecs: int | None = None
    pages_to_scan: int | None = None
    merge_across_nodes: int | None = None  # 3.9+
    max_page_sharing: int | None = None
    use_zero_pages: int | None = None
    ksm_zero_pages: int | None = None
    general_profit: int | None = None  # may be negative
    stable_node_chains: int | None = None
    stable_node_dups: int | None = None
    stable_node_chains_prune_millisecs: int | None = None
    smart_scan: int | None = None
    advisor_mode: str | None = None  # "none" / "scan-time" (6.7+)
    other: Mapping[str, str] = _NO_ENTRIES  # files not known here, stripped

    @property
    def is_running(self) -> bool:
        """Only run=1 merges; 2 means stopped and unmerged."""
        return self.run == KSM_RUN_RUNNING


def parse_ksm_state(values: Mapping[str, str | None]) -> KsmState:
    """Build KsmState from {file name: text}; a None text or a missing name is an absent file."""
    kwargs: dict[str, Any] = {}
    other: dict[str, str] = {}
    for name, text in values.items():
        if text is None:
            continue
        if name == "run":
            kwargs["run"] = parse_ksm_run(text)
        elif name in _KSM_INT_FILES:
            kwargs[name] = parse_int_file(text, name=name)
        elif name == "advisor_mode":
            kwargs[name] = parse_thp_setting(text).active
        else:
            other[name] = text.strip()
    return KsmState(**kwargs, other=other)


# --- huge page pools (sysfs) -------------------------------------------------------------------


def parse_hugepage_dir_name(name: str) -> int:
    """``hugepages-2048kB`` -> 2097152 (bytes). A trailing ``/`` from a listing is accepted."""
    m = _HUGEPAGE_DIR.fullmatch(name.strip())
    if m is None or int(m.group("kb")) == 0:
        raise ParseError(f"not a huge page directory name: {name!r}")
    return int(m.group("kb")) * _KIB


class HugepagePool(Record):
    """One page size's pool; counts, not bytes. None = file absent (per-node dirs lack resv)."""

    size: int  # bytes per page
    nr: int | None
    free: int | None
    resv: int | None
    surplus: int | None
    node: int | None = None  # None: the system-wide pool
    overcommit: int | None = None  # nr_overcommit_hugepages, system-wide only

    @property
    def total_bytes(self) -> int | None:
        return None if self.nr is None else self.nr * self.size


_POOL_FILES = {
    "nr_hugepages": "nr",
    "free_hugepages": "free",
    "resv_hugepages": "resv",
    "surplus_hugepages": "surplus",
    "nr_overcommit_hugepages": "overcommit",
}


def pools_from_values(values: Mapping[str, Mapping[str, str | None]], *, node: int | None = None) -> list[HugepagePool]:
    """Pools from {``hugepages-<size>kB``: {file name: text}}, sorted by page size.

    Files not listed in ``_POOL_FILES`` (``demote``, which is write-only, ``nr_hugepages_mempolicy``)
    are ignored.
    """
    pools: list[HugepagePool] = []
    for dirname, files in values.items():
        size = parse_hugepage_dir_name(dirname)
        counts: dict[str, Any] = dict.fromkeys(_POOL_FILES.values())
        for fname, attr in _POOL_FILES.items():
            text = files.get(fname)
            if text is not None:
                counts[attr] = parse_int_file(text, name=f"{dirname.rstrip('/')}/{fname}")
        pools.append(HugepagePool(size=size, node=node, **counts))
    return sorted(pools, key=lambda p: p.size)
