"""Boot-time huge page requests (``hugepagesz=``, ``hugepages=``, ``default_hugepagesz=``).

The kernel parses these as order-dependent pairs (``mm/hugetlb.c``, ``hugepagesz_setup``,
``hugepages_setup``, ``default_hugepagesz_setup`` and ``hugetlb_init``, as of 5.7+ and described in
``Documentation/admin-guide/mm/hugetlbpage.rst``). This module replays that state machine on a
parsed command line, so a reordered or repeated parameter is reported the way the kernel would
ignore it (siderolabs/image-factory #154) instead of being read as a request.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from audit.errors import ParseError
from audit.parsers.cmdline import Param
from audit.record import Record

_SHIFTS = {"k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60}
_NUMBER = re.compile(r"\s*(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
#: The kernel's MAX_NUMNODES upper bound (CONFIG_NODES_SHIFT=10); whether a node is online is
#: only known at boot.
MAX_NUMNODES = 1024


def _memparse(text: str) -> tuple[int, str]:
    """The kernel's ``memparse``: strtoull(base 0), then an optional K/M/G/T/P/E suffix.

    Returns the value and what the kernel leaves unparsed (it ignores it).
    """
    m = _NUMBER.match(text)
    if not m:
        raise ParseError(f"not a size: {text!r}")
    digits = m.group(1)
    if digits[:2] in ("0x", "0X"):
        value = int(digits, 16)
    elif len(digits) > 1 and digits[0] == "0":
        value = int(digits, 8)  # strtoull with base 0, like the kernel
    else:
        value = int(digits)
    rest = text[m.end() :]
    if rest and rest[0].lower() in _SHIFTS:
        value <<= _SHIFTS[rest[0].lower()]
        rest = rest[1:]
    return value, rest


def parse_size(text: str) -> int:
    """A size in bytes, read like the kernel's ``memparse``.

    ``2M``, ``2m``, ``2048K``, ``1G`` and ``1024M`` are binary multiples; a plain number is bytes
    (``hugepagesz=2097152`` is 2 MiB, ``hugepagesz=2048`` is 2 KiB). Anything after the unit is
    ignored, so ``2MB`` is 2 MiB, as the kernel reads it. Raises ParseError when the text does not
    start with a number.
    """
    value, _rest = _memparse(text)
    return value


def format_size(size: int) -> str:
    """``2097152`` -> ``2M``; used in messages."""
    for unit, shift in (("E", 60), ("P", 50), ("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift}{unit}"
    return f"{size}B"



#: the default of a mapping field: shared by every record, so it cannot be changed
_NO_ENTRIES: Mapping[Any, Any] = MappingProxyType({})


class HugepageRequest(Record):
    """What the kernel would reserve at boot from the huge page parameters of one command line."""

    pools: Mapping[int, int] = _NO_ENTRIES  # page size in bytes -> pages requested
    nodes: Mapping[int, Mapping[int, int]] = _NO_ENTRIES  # size -> NUMA node -> pages
    default_size: int | None = None  # the default huge page size after these parameters
    default_size_token: str | None = None  # "default_hugepagesz=1G"; None = the architecture default
    unsized_count: int | None = None  # hugepages= for the default size while that size is unknown
    tokens: Mapping[int, tuple[str, ...]] = _NO_ENTRIES  # size -> tokens that set it
    ignored: tuple[str, ...] = ()  # tokens the kernel ignores
    problems: tuple[str, ...] = ()  # one line per ignored or suspicious token

    @property
    def requested(self) -> bool:
        """True when any pool (or an unsized default pool) asks for at least one page."""
        return any(self.pools.values()) or bool(self.unsized_count)


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def _token(p: Param) -> str:
    return p.name if p.value is None else f"{p.name}={p.value}"


class _Pool:
    __slots__ = ("count", "counted", "nodes", "tokens")

    def __init__(self) -> None:
        self.count = 0
        self.counted = False  # a hugepages= was applied to it
        self.nodes: dict[int, int] = {}
        self.tokens: list[str] = []


def _parse_count(value: str) -> tuple[int, dict[int, int], str] | str:
    """``hugepages=`` value as ``hugepages_setup`` reads it: ``N`` or the node format ``0:1,1:2``.

    Returns (total, per-node counts, unparsed tail) or an error string.
    """
    num = re.compile(r"\s*\+?(\d+)")
    m = num.match(value)
    if m is None:
        return "not a number"
    if value[m.end() : m.end() + 1] != ":":
        return int(m.group(1)), {}, value[m.end() :]  # the kernel ignores what follows
    nodes: dict[int, int] = {}
    total = 0
    pos = 0
    while pos < len(value):
        m = num.match(value, pos)
        if m is None or value[m.end() : m.end() + 1] != ":":
            return f"bad node entry at {value[pos:]!r}"
        node = int(m.group(1))
        if node >= MAX_NUMNODES:
            return f"node {node} out of range"
        c = num.match(value, m.end() + 1)
        if c is None:
            return f"no page count for node {node}"
        nodes[node] = int(c.group(1))
        total += int(c.group(1))
        pos = c.end()
        if value[pos : pos + 1] != ",":
            break
        pos += 1
    return total, nodes, value[pos:]


def hugepage_request(
    params: Iterable[Param],
    default_size: int | None,
    *,
    valid_sizes: Collection[int] | None = None,
) -> HugepageRequest:
    """Replay the kernel's huge page parameter parsing over ``params`` (in command line order).

    ``default_size`` is the architecture's default huge page size (2 MiB on x86-64), or None when
    unknown: a ``hugepages=`` that applies to the default size is then kept in ``unsized_count``.
    ``valid_sizes`` are the sizes the CPU supports (x86-64: 2M, plus 1G with ``pdpe1gb``); when
    None, any power of two from 64 KiB up is accepted.
    """
    problems: list[str] = []
    ignored: list[str] = []
    pools: dict[int, _Pool] = {}  # insertion order = the kernel's hstate order
    implicit = _Pool()  # hugepages= before any size: the default size, decided at the end
    parsed_hstate: int | None = None
    parsed_valid = True
    parsed_default: int | None = None
    default_token: str | None = None
    last_target: object = None  # the kernel's last_mhp
    implicit_key = object()

    def size_ok(size: int) -> bool:
        if valid_sizes is not None:
            return size in valid_sizes
        return _is_power_of_two(size) and size >= 64 * 1024

    def read_size(p: Param) -> int | None:
        tok = _token(p)
        try:
            size, rest = _memparse(p.value or "")
        except ParseError:
            problems.append(f"{tok}: not a size; ignored by the kernel")
            ignored.append(tok)
            return None
        if not size_ok(size):
            hint = " (a number without a unit is bytes)" if not rest and size < 64 * 1024 else ""
            problems.append(f"{tok}: unsupported huge page size {format_size(size)}{hint}; ignored")
            ignored.append(tok)
            return None
        if rest and rest.lower() not in ("b", "ib"):
            problems.append(f"{tok}: trailing {rest!r} ignored by the kernel")
        return size

    for p in params:
        key = p.key
        if key not in ("hugepagesz", "hugepages", "default_hugepagesz"):
            continue
        tok = _token(p)
        if key == "hugepagesz":
            parsed_valid = False
            size = read_size(p)
            if size is None:
                continue
            if size in pools:
                pool = pools[size]
                # Only allowed for the default size named earlier and not yet given a count.
                if parsed_default != size or pool.count:
                    problems.append(
                        f"{tok}: size already specified; ignored, and so is a hugepages= after it"
                    )
                    ignored.append(tok)
                    continue
            else:
                pools[size] = _Pool()
            pools[size].tokens.append(tok)
            parsed_hstate = size
            parsed_valid = True
        elif key == "default_hugepagesz":
            parsed_valid = False
            if parsed_default is not None:
                problems.append(f"{tok}: default_hugepagesz given twice; the first one wins")
                ignored.append(tok)
                continue
            size = read_size(p)
            if size is None:
                continue
            if size not in pools:
                pools[size] = _Pool()
                parsed_hstate = size  # hugetlb_add_hstate only moves the cursor for a new size
            pools[size].tokens.append(tok)
            parsed_valid = True
            parsed_default = size
            default_token = tok
            if implicit.count:
                pools[size].count = implicit.count
                pools[size].nodes = dict(implicit.nodes)
                pools[size].tokens.extend(implicit.tokens)
                implicit = _Pool()
        else:  # hugepages
            if not parsed_valid:
                problems.append(f"{tok}: does not follow a valid hugepagesz=; ignored")
                ignored.append(tok)
                parsed_valid = True
                continue
            target_key: object = implicit_key if not pools else parsed_hstate
            target = implicit if not pools else pools[parsed_hstate]  # type: ignore[index]
            if target_key == last_target:
                problems.append(f"{tok}: hugepages= given twice without a hugepagesz= between; ignored")
                ignored.append(tok)
                continue
            parsed = _parse_count(p.value or "")
            if isinstance(parsed, str):
                problems.append(f"{tok}: invalid ({parsed}); ignored, and the pool is cleared")
                ignored.append(tok)
                target.count = 0
                target.nodes = {}
                continue
            count, nodes, tail = parsed
            if tail.strip():
                problems.append(f"{tok}: trailing {tail!r} ignored by the kernel (this is a page count)")
            if nodes:
                target.count += count
                target.nodes.update(nodes)
            else:
                target.count = count
            target.tokens.append(tok)
            target.counted = True
            last_target = target_key

    for size, pool in pools.items():
        if not pool.counted and any(
            t.split("=", 1)[0].replace("-", "_") == "hugepagesz" for t in pool.tokens
        ):
            problems.append(
                f"hugepagesz={format_size(size)}: no hugepages= follows it; no pages of that size"
            )

    effective_default = parsed_default if parsed_default is not None else default_size
    unsized: int | None = None
    if parsed_default is None and implicit.count:
        if default_size is None:
            unsized = implicit.count
        else:
            pool = pools.setdefault(default_size, _Pool())
            if pool.count:
                problems.append(
                    f"hugepages={implicit.count} before any hugepagesz= sets the default "
                    f"{format_size(default_size)} pool; {' '.join(pool.tokens)} loses"
                )
                ignored.extend(t for t in pool.tokens if t.startswith("hugepages="))
            pool.count = implicit.count
            pool.nodes = dict(implicit.nodes)
            pool.tokens.extend(implicit.tokens)

    return HugepageRequest(
        pools={size: pool.count for size, pool in pools.items()},
        nodes={size: dict(pool.nodes) for size, pool in pools.items() if pool.nodes},
        default_size=effective_default,
        default_size_token=default_token,
        unsized_count=unsized,
        tokens={size: tuple(pool.tokens) for size, pool in pools.items()},
        ignored=tuple(ignored),
        problems=tuple(problems),
    )
