"""Facts for memory tuning (issue #13): THP defrag and what writes it at boot, NUMA huge page pools per
node, /proc/zoneinfo and vm.min_free_kbytes, and what ksmtuned counts as a guest (its script read as
text, the QEMU processes running, how libvirt starts guests). Pure parsers first, then the facts.

Nothing here runs a host program: ksmtuned's ``pgrep`` pattern is evaluated by a small POSIX ERE
matcher (``ere_compile``/``ere_search``) whose work is bounded by the pattern's size times the text's.
"""

from __future__ import annotations

import contextlib
import fnmatch
import posixpath
import re
from collections.abc import Callable, Iterable, Sequence

from audit.errors import FactError, FactUnavailable, ParseError
from audit.host.arch import arch_name
from audit.host.core import Host
from audit.host.registry import fact, parse_text
from audit.model import TargetMode
from audit.parsers import text as _text
from audit.parsers.hugepages import MAX_NUMNODES
from audit.parsers.memory import THP_DIRS, parse_hugepage_dir_name, parse_int_file
from audit.parsers.systemd import UNIT_DIRS, is_masked, parse_unit_file
from audit.record import Record

ZONEINFO = "/proc/zoneinfo"
MIN_FREE_KBYTES = "/proc/sys/vm/min_free_kbytes"
NODE_DIR = "/sys/devices/system/node"
HAS_MEMORY = f"{NODE_DIR}/has_memory"
DEFRAG_PATHS = tuple(f"{d}/defrag" for d in THP_DIRS)
#: systemd-tmpfiles' configuration directories, highest precedence first (tmpfiles.d(5)); /lib on
#: systems whose /lib is not merged into /usr.
TMPFILES_DIRS = ("/etc/tmpfiles.d", "/run/tmpfiles.d", "/usr/local/lib/tmpfiles.d", "/usr/lib/tmpfiles.d",
                 "/lib/tmpfiles.d")
SYSFS_CONF = "/etc/sysfs.conf"
SYSFS_D = "/etc/sysfs.d"
DEFRAG_MODES = ("always", "defer", "defer+madvise", "madvise", "never")

KSMTUNED_SCRIPTS = ("/usr/sbin/ksmtuned", "/usr/bin/ksmtuned", "/sbin/ksmtuned")
SCRIPT_CAP = 256 * 1024  # ksmtuned is 3.5 KB; a bigger "script" is not read
DPKG_STATUS = "/var/lib/dpkg/status"
LIBVIRT_DRIVER = "libvirt/connection-driver/libvirt_driver_qemu.so"
LIBVIRT_DOMAINS = "/etc/libvirt/qemu"
LIBVIRT_PACKAGES = ("libvirt-daemon-driver-qemu", "libvirt-daemon", "libvirt-daemon-system", "libvirt-bin")
EMULATORS = ("/usr/libexec/qemu-kvm", "/usr/bin/qemu-kvm")
MAX_DOMAINS = 256  # domain XML files read for <emulator>
MAX_EMULATORS = 64
#: /proc scan bounds: processes looked at, command line bytes per process (pgrep reads at most
#: 128 KiB: procps get_arg_max) and in all.
MAX_PIDS = 32768
CMDLINE_CAP = 128 * 1024
SCAN_BYTES = 8 * 1024 * 1024
MAX_QEMU = 256

_KIB = 1024


# --- /proc/zoneinfo ---------------------------------------------------------------------------


class Zone(Record):
    """One zone of /proc/zoneinfo; counts are pages. ``managed`` is None before Linux 3.8 (the
    kernel then had only ``present``)."""

    node: int
    name: str  # DMA, DMA32, Normal, HighMem, Movable, Device
    present: int
    managed: int | None
    high: int | None
    min: int | None


_ZONE_HEADER = re.compile(r"Node\s+(\d+),\s+zone\s+(\S+)\s*")
_ZONE_FIELDS = {"present", "managed", "high", "min"}
#: Zones whose index is at most ZONE_NORMAL (gfp_zone(GFP_USER)): the zones khugepaged counts and
#: nr_free_buffer_pages() sums (mm/khugepaged.c, mm/page_alloc.c).
LOWMEM_ZONES = ("DMA", "DMA32", "Normal")


def parse_zoneinfo(text: str) -> tuple[Zone, ...]:
    """``Node N, zone NAME`` blocks with their ``present``, ``managed``, ``high`` and ``min`` lines;
    every other line (per-node stats, pagesets, protection) is ignored."""
    zones: list[Zone] = []
    current: dict[str, int] | None = None
    header: tuple[int, str] | None = None

    def close(lineno: int) -> None:
        if header is None or current is None:
            return
        if "present" not in current:
            raise ParseError(f"zone {header[1]} of node {header[0]} has no 'present' line", line=lineno)
        zones.append(Zone(node=header[0], name=header[1], present=current["present"],
                          managed=current.get("managed"), high=current.get("high"), min=current.get("min")))

    lineno = 0
    for lineno, line in enumerate(_text.lines(text), start=1):
        m = _ZONE_HEADER.fullmatch(line)
        if m is not None:
            close(lineno)
            node = int(m.group(1))
            if node >= MAX_NUMNODES:
                raise ParseError(f"node {node}: beyond the kernel's MAX_NUMNODES ({MAX_NUMNODES})", line=lineno)
            header, current = (node, m.group(2)), {}
            continue
        if current is None:
            continue
        words = line.split()
        if len(words) == 3 and words[:2] == ["pages", "free"]:
            continue
        if len(words) == 2 and words[0] in _ZONE_FIELDS and words[0] not in current:
            if not words[1].isdigit():
                raise ParseError(f"{words[0]}: not a page count: {words[1]!r}", line=lineno)
            current[words[0]] = int(words[1])
    close(lineno)
    if not zones:
        raise ParseError("no 'Node N, zone NAME' lines")
    return tuple(zones)


class MinFreeRecommendation(Record):
    """khugepaged's recommended vm.min_free_kbytes, with every figure that goes into it."""

    zones: tuple[str, ...]  # "node0/DMA32", ... : the populated zones counted
    pageblock_pages: int
    page_size: int
    wanted_pages: int  # pageblock_nr_pages * nr_zones * (2 + MIGRATE_PCPTYPES^2)
    lowmem_pages: int  # nr_free_buffer_pages(): managed - high over the counted zones
    cap_pages: int  # lowmem_pages / 20: "never more than 5% of the lowmem"
    kbytes: int  # min(wanted, cap) << (PAGE_SHIFT - 10)

    @property
    def arithmetic(self) -> str:
        nz = len(self.zones)
        capped = " (capped)" if self.cap_pages < self.wanted_pages else ""
        return (f"min({self.pageblock_pages} x {nz} zones x (2 + 3 x 3) = {self.wanted_pages}, "
                f"{self.lowmem_pages} / 20 = {self.cap_pages}){capped} pages x {self.page_size // _KIB} KiB = "
                f"{self.kbytes} kB")


MIGRATE_PCPTYPES = 3  # MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE (include/linux/mmzone.h)
#: Where the formula is taken from, for the evidence.
MIN_FREE_SOURCE = ("mm/khugepaged.c set_recommended_min_free_kbytes() and mm/page_alloc.c nr_free_buffer_pages(), "
                   "Linux 6.12.117")


def recommended_min_free_kbytes(zones: Sequence[Zone], *, pageblock_pages: int,
                                page_size: int) -> MinFreeRecommendation:
    """What set_recommended_min_free_kbytes() computes (Linux 6.12.117, mm/khugepaged.c):

    per populated zone up to ZONE_NORMAL, 2 pageblocks free for fragmentation avoidance plus
    MIGRATE_PCPTYPES^2 pageblocks so each migrate type has room to fall back; never more than 5%
    of nr_free_buffer_pages(), the managed pages above the high watermark in those zones. The
    kernel raises vm.min_free_kbytes to this when it is lower. The high watermarks are the ones in
    /proc/zoneinfo now (the kernel used those of the moment it computed)."""
    counted = [z for z in zones if z.present > 0 and z.name in LOWMEM_ZONES]
    wanted = pageblock_pages * len(counted) * (2 + MIGRATE_PCPTYPES * MIGRATE_PCPTYPES)
    lowmem = 0
    for z in counted:
        managed = z.managed if z.managed is not None else z.present
        high = z.high or 0
        if managed > high:
            lowmem += managed - high
    cap = lowmem // 20
    pages = min(wanted, cap)
    return MinFreeRecommendation(zones=tuple(f"node{z.node}/{z.name}" for z in counted),
                                 pageblock_pages=pageblock_pages, page_size=page_size, wanted_pages=wanted,
                                 lowmem_pages=lowmem, cap_pages=cap, kbytes=pages * page_size // _KIB)


@fact(paths=[ZONEINFO], runtime=True)
def zoneinfo(host: Host) -> tuple[Zone, ...]:
    return host.parse(ZONEINFO, parse_zoneinfo, runtime=True)


@fact(paths=[MIN_FREE_KBYTES], runtime=True)
def min_free_kbytes(host: Host) -> int:
    return host.parse(MIN_FREE_KBYTES, lambda t: parse_int_file(t, name="min_free_kbytes"), runtime=True)


# --- THP: the files thp_state does not read ----------------------------------------------------


class ThpExtra(Record):
    dir: str
    hpage_pmd_size: int | None  # bytes; None before Linux 4.? or where absent
    khugepaged_defrag: str | None  # "0"/"1" (RHEL 6: "[yes] no"), reported as read


@fact(paths=[f"{d}/{f}" for d in THP_DIRS for f in ("hpage_pmd_size", "khugepaged/defrag")], runtime=True)
def thp_extra(host: Host) -> ThpExtra:
    for d in THP_DIRS:
        if host.kind(d) != "dir":
            continue
        size = None
        if host.kind(f"{d}/hpage_pmd_size") == "file":
            size = host.parse(f"{d}/hpage_pmd_size", lambda t: parse_int_file(t, name="hpage_pmd_size"))
            if size <= 0:
                raise FactError(f"{d}/hpage_pmd_size", f"not a page size: {size}")
        kd = None
        if host.kind(f"{d}/khugepaged/defrag") == "file":
            kd = host.read_text(f"{d}/khugepaged/defrag", limit=4096).strip()[:40]
        return ThpExtra(dir=d, hpage_pmd_size=size, khugepaged_defrag=kd)
    if not host.has_runtime:
        raise host.runtime_unavailable(THP_DIRS[0])
    raise FactUnavailable(f"{THP_DIRS[0]} does not exist (kernel without THP)", source=THP_DIRS[0])


# --- what writes THP defrag at boot: systemd-tmpfiles w lines, sysfsutils ----------------------


class BootWrite(Record):
    source: str  # "path:line"
    mechanism: str  # "tmpfiles.d" or "sysfs.d"
    target: str  # the sysfs file written
    value: str | None  # None: not known here (a credential, an undecodable argument)
    line: str  # the line as written (stripped, at most 200 characters)
    applied: bool = True  # False: a later duplicate tmpfiles ignores, or an earlier sysfsutils write overridden

    @property
    def path(self) -> str:
        return self.source.rsplit(":", 1)[0]

    @property
    def lineno(self) -> int:
        return int(self.source.rsplit(":", 1)[1])


_TMPFILES_W = re.compile(r"w\+?[-!=~^$?]*")
_C_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", "r": "\r", "0": ""}


def _unescape(text: str) -> str:
    """The C escapes systemd-tmpfiles undoes in an argument (cunescape), the common ones."""
    return re.sub(r"\\(.)", lambda m: _C_ESCAPES.get(m.group(1), m.group(1)), text)


def _sysfs_value(raw: str | None) -> str | None:
    """What the kernel's defrag_store makes of a write: sysfs_streq ignores one trailing newline."""
    if raw is None:
        return None
    value = raw.strip()
    return value if value else ""


def tmpfiles_writes(path: str, text: str, targets: Iterable[str]) -> list[BootWrite]:
    """``w``/``w+`` lines of one tmpfiles.d file that write any of ``targets`` (the path field may
    be a glob: systemd-tmpfiles expands it for w lines)."""
    wanted = tuple(targets)
    found: list[BootWrite] = []
    for no, raw in enumerate(_text.lines(text), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(None, 6)
        if len(fields) < 2 or not _TMPFILES_W.fullmatch(fields[0]):
            continue
        hit = next((t for t in wanted if fnmatch.fnmatchcase(t, fields[1].rstrip("/"))), None)
        if hit is None:
            continue
        arg = fields[6] if len(fields) == 7 else None
        value: str | None
        if arg is None or arg == "-":
            value = ""
        elif "^" in fields[0]:
            value = None  # a credential's content: not in the configuration
        elif "~" in fields[0]:  # base64 of the text
            import base64
            import binascii

            try:
                value = base64.b64decode(arg, validate=True).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                value = None
        else:
            value = _unescape(arg)
        found.append(BootWrite(source=f"{path}:{no}", mechanism="tmpfiles.d", target=hit,
                               value=_sysfs_value(value), line=line[:200]))
    return found


def sysfs_conf_writes(path: str, text: str, targets: Iterable[str]) -> list[BootWrite]:
    """``kernel/mm/transparent_hugepage/defrag = madvise`` lines of sysfsutils (relative to /sys);
    ``mode``/``owner`` lines set permissions and write nothing."""
    wanted = {t.removeprefix("/sys/"): t for t in targets}
    found: list[BootWrite] = []
    for no, raw in enumerate(_text.lines(text), 1):
        line = raw.split("#", 1)[0].strip()
        if "=" not in line:
            continue
        attr, _, value = line.partition("=")
        attr = attr.strip().strip("/")
        if not attr or attr.split()[0] in ("mode", "owner"):
            continue
        if attr in wanted:
            found.append(BootWrite(source=f"{path}:{no}", mechanism="sysfs.d", target=wanted[attr],
                                   value=_sysfs_value(value), line=raw.strip()[:200]))
    return found


def _effective_tmpfiles(host: Host) -> list[tuple[str, str]]:
    """(path, name) of the tmpfiles.d files systemd-tmpfiles reads, by basename: a name in a higher
    directory hides the same name lower down, a link to /dev/null masks it (tmpfiles.d(5))."""
    chosen: dict[str, str | None] = {}
    for d in TMPFILES_DIRS:
        try:
            names = host.listdir(d)
        except (FactUnavailable, FactError):
            continue
        for name in names[:4096]:
            if not name.endswith(".conf") or name in chosen:
                continue
            path = f"{d}/{name}"
            chosen[name] = None if is_masked(host.readlink(path), link_dir=d) else path
    return [(p, n) for n, p in sorted(chosen.items()) if p is not None]


def _read_small(host: Host, path: str, limit: int = 1024 * 1024) -> str | None:
    """A configuration file's text, or None when it is not a regular file or is unreadable or too
    big (one bad file does not hide what the others say)."""
    if host.kind(path) != "file":
        return None
    try:
        return host.read_text(path, limit=limit)
    except (FactUnavailable, FactError):
        return None


def boot_writes(host: Host, targets: Sequence[str]) -> list[BootWrite]:
    """Every boot-time write to ``targets``, each marked applied or not.

    systemd-tmpfiles sorts its files by basename across directories and, for one path, applies the
    first w line and ignores later duplicates ("Duplicate line for path ..., ignoring"). sysfsutils
    writes /etc/sysfs.conf, then /etc/sysfs.d/*.conf in name order: the last write wins."""
    writes: list[BootWrite] = []
    seen: set[str] = set()
    for path, _ in _effective_tmpfiles(host):
        text = _read_small(host, path)
        if text is None:
            continue
        for w in tmpfiles_writes(path, text, targets):
            writes.append(w._replace(applied=w.target not in seen))
            seen.add(w.target)
    sysfs: list[BootWrite] = []
    files = [SYSFS_CONF]
    with contextlib.suppress(FactUnavailable, FactError):
        files += [f"{SYSFS_D}/{n}" for n in host.listdir(SYSFS_D)[:4096] if n.endswith(".conf")]
    for path in files:
        text = _read_small(host, path)
        if text is not None:
            sysfs += sysfs_conf_writes(path, text, targets)
    last = {w.target: i for i, w in enumerate(sysfs)}
    writes += [w._replace(applied=last[w.target] == i) for i, w in enumerate(sysfs)]
    return writes


@fact(paths=[*(f"{d}/*.conf" for d in TMPFILES_DIRS), SYSFS_CONF, f"{SYSFS_D}/*.conf"])
def defrag_boot_writes(host: Host) -> tuple[BootWrite, ...]:
    """What writes THP defrag at boot: there is no kernel parameter for it (kernel-parameters.txt,
    Linux 6.12.117), so a tmpfiles.d w line (or sysfsutils) is how it persists."""
    return tuple(boot_writes(host, DEFRAG_PATHS))


# --- NUMA nodes: memory and huge page pools per node ---------------------------------------------


class NodePools(Record):
    node: int
    mem_total: int | None  # bytes, from nodeN/meminfo; None when unreadable
    pools: tuple[tuple[int, int], ...]  # (page size in bytes, nr_hugepages)
    free: tuple[tuple[int, int], ...] = ()  # (page size, free_hugepages)

    def nr(self, size: int) -> int:
        return next((n for s, n in self.pools if s == size), 0)


class NumaTopology(Record):
    nodes: tuple[NodePools, ...]  # every node directory, by number
    with_memory: tuple[int, ...]  # nodes with memory (has_memory, else MemTotal > 0)
    source: str  # how nodes with memory were told apart

    def memory_nodes(self) -> list[NodePools]:
        return [n for n in self.nodes if n.node in self.with_memory]


def parse_node_list(text: str) -> tuple[int, ...]:
    """A kernel node list (``0``, ``0-3``, ``0,2-3``; empty: none), each node below MAX_NUMNODES."""
    value = text.strip()
    if not value:
        return ()
    nodes: set[int] = set()
    for part in value.split(","):
        lo, dash, hi = part.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise ParseError(f"not a node list: {value[:60]!r}", line=1)
        a, b = int(lo), int(hi) if dash else int(lo)
        if b < a or b >= MAX_NUMNODES:
            raise ParseError(f"node range {part!r} out of bounds (MAX_NUMNODES {MAX_NUMNODES})", line=1)
        nodes.update(range(a, b + 1))
    return tuple(sorted(nodes))


def parse_node_meminfo(text: str) -> int | None:
    """``Node N MemTotal:  1030924 kB`` -> bytes (the rest of the file is not needed here)."""
    m = re.search(r"^Node\s+\d+\s+MemTotal:\s+(\d+)\s+kB\s*$", text, re.MULTILINE)
    return int(m.group(1)) * _KIB if m else None


@fact(paths=[HAS_MEMORY, f"{NODE_DIR}/node*/meminfo", f"{NODE_DIR}/node*/hugepages/*/nr_hugepages",
             f"{NODE_DIR}/node*/hugepages/*/free_hugepages"], runtime=True)
def numa_topology(host: Host) -> NumaTopology:
    """The NUMA nodes and their huge page pools. Bounded: a tree with more node directories than
    the kernel's MAX_NUMNODES (1024) is not a kernel's, and is an error rather than a long walk."""
    try:
        names = host.listdir(NODE_DIR)
    except FactUnavailable:
        if not host.has_runtime or host.kind("/sys/devices/system") != "dir":
            raise host.runtime_unavailable(NODE_DIR) from None
        # a kernel built without CONFIG_NUMA has no node directories: one node holds all memory
        return NumaTopology(nodes=(), with_memory=(), source=f"{NODE_DIR} absent (a kernel without NUMA)")
    numbers = sorted(int(n[4:]) for n in names if n.startswith("node") and n[4:].isdigit() and len(n) < 12)
    if len(numbers) > MAX_NUMNODES or (numbers and numbers[-1] >= MAX_NUMNODES):
        raise FactError(NODE_DIR, f"{len(numbers)} node directories up to node{numbers[-1]}: more than the "
                                  f"kernel's MAX_NUMNODES ({MAX_NUMNODES}); not read")
    nodes: list[NodePools] = []
    for i in numbers:
        base = f"{NODE_DIR}/node{i}"
        text = _read_small(host, f"{base}/meminfo", limit=64 * 1024)
        mem = parse_node_meminfo(text) if text is not None else None
        pools: list[tuple[int, int]] = []
        free: list[tuple[int, int]] = []
        try:
            sizes = [d for d in host.listdir(f"{base}/hugepages") if d.startswith("hugepages-")][:32]
        except (FactUnavailable, FactError):
            sizes = []
        for d in sizes:
            size = parse_text(f"{base}/hugepages/{d}", d, parse_hugepage_dir_name)
            for fname, into in (("nr_hugepages", pools), ("free_hugepages", free)):
                path = f"{base}/hugepages/{d}/{fname}"
                if host.kind(path) == "file":
                    into.append((size, host.parse(path, lambda t, f=fname: parse_int_file(t, name=f))))
        nodes.append(NodePools(node=i, mem_total=mem, pools=tuple(sorted(pools)), free=tuple(sorted(free))))
    if host.kind(HAS_MEMORY) == "file":
        with_memory = host.parse(HAS_MEMORY, parse_node_list)
        source = HAS_MEMORY
    else:
        with_memory = tuple(n.node for n in nodes if n.mem_total)
        source = f"{NODE_DIR}/node*/meminfo (MemTotal > 0)"
    return NumaTopology(nodes=tuple(nodes), with_memory=with_memory, source=source)


# --- a bounded POSIX extended regular expression matcher -----------------------------------------
# pgrep compiles its pattern with regcomp(REG_EXTENDED | REG_NOSUB) and only asks whether it
# matches. Python's re would do for the patterns ksmtuned ships, but the script is the audited
# host's file: a crafted pattern could make a backtracking engine run for hours. This is a Thompson
# NFA simulation: time is at most (program size) x (text length), checked against a budget first.

_CLASSES: dict[str, Callable[[str], bool]] = {
    "alpha": str.isalpha, "digit": lambda c: "0" <= c <= "9", "alnum": lambda c: c.isalpha() or "0" <= c <= "9",
    "upper": str.isupper, "lower": str.islower, "space": lambda c: c in " \t\n\r\f\v", "blank": lambda c: c in " \t",
    "punct": lambda c: c.isprintable() and not c.isalnum() and not c.isspace() and c.isascii(),
    "print": lambda c: c.isprintable(), "graph": lambda c: c.isprintable() and c != " ",
    "cntrl": lambda c: not c.isprintable() and c not in "\u0085", "xdigit": lambda c: c in "0123456789abcdefABCDEF",
    "word": lambda c: c.isalnum() or c == "_",
}
_MAX_PROGRAM = 4000
_MAX_REPEAT = 1000
ERE_BUDGET = 4_000_000  # program size x (text length + 1)


class EreError(ValueError):
    """The pattern is not a valid ERE, or uses what this matcher does not evaluate."""


class _Set(Record):
    negate: bool
    chars: frozenset[str]
    ranges: tuple[tuple[str, str], ...]
    classes: tuple[str, ...]


def _set_match(s: _Set, c: str, icase: bool) -> bool:
    def inside(ch: str) -> bool:
        return (ch in s.chars or any(lo <= ch <= hi for lo, hi in s.ranges)
                or any(_CLASSES[k](ch) for k in s.classes))

    hit = inside(c) or (icase and (inside(c.lower()) or inside(c.upper())))
    return hit != s.negate


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0
        self.depth = 0

    def peek(self) -> str | None:
        return self.p[self.i] if self.i < len(self.p) else None

    def alternation(self) -> tuple:
        branches = [self.concat()]
        while self.peek() == "|":
            self.i += 1
            branches.append(self.concat())
        return ("alt", branches) if len(branches) > 1 else branches[0]

    def concat(self) -> tuple:
        items = []
        while (c := self.peek()) is not None and c != "|" and not (c == ")" and self.depth):
            items.append(self.repeat())
        return ("cat", items)

    def repeat(self) -> tuple:
        node = self.atom()
        while (c := self.peek()) is not None and c in "*+?{":
            if node[0] in ("bol", "eol"):
                raise EreError("a repetition of an anchor")
            self.i += 1
            if c == "*":
                node = ("rep", node, 0, None)
            elif c == "+":
                node = ("rep", node, 1, None)
            elif c == "?":
                node = ("rep", node, 0, 1)
            else:
                m = re.match(r"(\d*)(,?)(\d*)\}", self.p[self.i:])
                if m is None or (not m.group(1) and not m.group(3) and not m.group(2)):
                    raise EreError("an invalid {interval}")
                lo = int(m.group(1) or 0)
                hi = None if m.group(2) and not m.group(3) else int(m.group(3) or m.group(1))
                if lo > _MAX_REPEAT or (hi is not None and (hi > _MAX_REPEAT or hi < lo)):
                    raise EreError(f"an interval {{{m.group(0)} out of range")
                self.i += m.end()
                node = ("rep", node, lo, hi)
        return node

    def atom(self) -> tuple:
        c = self.p[self.i]
        self.i += 1
        if c == "(":
            self.depth += 1
            if self.depth > 100:
                raise EreError("groups nested too deep")
            inner = self.alternation()
            if self.peek() != ")":
                raise EreError("an unmatched (")
            self.i += 1
            self.depth -= 1
            return inner
        if c == ")":
            raise EreError("an unmatched )")
        if c in "*+?{":
            raise EreError(f"{c!r} with nothing to repeat")
        if c == "^":
            return ("bol",)
        if c == "$":
            return ("eol",)
        if c == ".":
            return ("char", ("any",))
        if c == "[":
            return ("char", ("set", self.bracket()))
        if c == "\\":
            if self.i >= len(self.p):
                raise EreError("a trailing backslash")
            e = self.p[self.i]
            self.i += 1
            if e in "wWsS":
                cls = "word" if e in "wW" else "space"
                return ("char", ("set", _Set(negate=e.isupper(), chars=frozenset(), ranges=(), classes=(cls,))))
            if e.isdigit() or e in "bB<>`'":
                raise EreError(f"\\{e} (a back-reference or word boundary) is not evaluated here")
            return ("char", ("lit", e))
        return ("char", ("lit", c))

    def bracket(self) -> _Set:
        p = self.p
        negate = self.peek() == "^"
        if negate:
            self.i += 1
        chars: set[str] = set()
        ranges: list[tuple[str, str]] = []
        classes: list[str] = []
        first = True
        while True:
            if self.i >= len(p):
                raise EreError("an unmatched [")
            c = p[self.i]
            if c == "]" and not first:
                self.i += 1
                break
            first = False
            if c == "[" and p[self.i + 1 : self.i + 2] in (":", ".", "="):
                kind = p[self.i + 1]
                end = p.find(kind + "]", self.i + 2)
                if end < 0:
                    raise EreError(f"an unterminated [{kind}")
                name = p[self.i + 2 : end]
                self.i = end + 2
                if kind == ":":
                    if name not in _CLASSES or name == "word":
                        raise EreError(f"an unknown class [:{name}:]")
                    classes.append(name)
                elif len(name) == 1:
                    chars.add(name)
                else:
                    raise EreError(f"a collating element [{kind}{name}{kind}]")
                continue
            if p[self.i + 1 : self.i + 2] == "-" and self.i + 2 < len(p) and p[self.i + 2] != "]":
                hi = p[self.i + 2]
                if hi < c:
                    raise EreError(f"an invalid range {c}-{hi}")
                ranges.append((c, hi))
                self.i += 3
                continue
            chars.add(c)
            self.i += 1
        return _Set(negate=negate, chars=frozenset(chars), ranges=tuple(ranges), classes=tuple(classes))


class EreProgram(Record):
    code: tuple[tuple, ...]
    icase: bool
    pattern: str


def ere_compile(pattern: str, *, icase: bool = False) -> EreProgram:
    """Compile a POSIX ERE (as glibc's regcomp with REG_EXTENDED reads it, minus back-references,
    word boundaries and collating elements, which raise EreError) into an NFA program."""
    if len(pattern) > 4096:
        raise EreError("a pattern longer than 4096 characters")
    parser = _Parser(pattern)
    tree = parser.alternation()
    if parser.i != len(pattern):
        raise EreError("an unmatched )")
    code: list[list] = []

    def emit(node: tuple) -> None:
        if len(code) > _MAX_PROGRAM:
            raise EreError(f"a pattern that compiles to more than {_MAX_PROGRAM} steps")
        kind = node[0]
        if kind == "cat":
            for n in node[1]:
                emit(n)
        elif kind == "alt":
            jumps = []
            branches = node[1]
            for k, b in enumerate(branches):
                if k < len(branches) - 1:
                    split = len(code)
                    code.append(["split", split + 1, None])
                    emit(b)
                    jumps.append(len(code))
                    code.append(["jmp", None])
                    code[split][2] = len(code)
                else:
                    emit(b)
            for j in jumps:
                code[j][1] = len(code)
        elif kind == "rep":
            _, body, lo, hi = node
            for _ in range(lo):
                emit(body)
            if hi is None:
                start = len(code)
                code.append(["split", start + 1, None])
                emit(body)
                code.append(["jmp", start])
                code[start][2] = len(code)
            else:
                splits = []
                for _ in range(hi - lo):
                    splits.append(len(code))
                    code.append(["split", len(code) + 1, None])
                    emit(body)
                for s in splits:
                    code[s][2] = len(code)
        else:
            code.append(list(node))

    emit(tree)
    code.append(["match"])
    if len(code) > _MAX_PROGRAM:
        raise EreError(f"a pattern that compiles to more than {_MAX_PROGRAM} steps")
    return EreProgram(code=tuple(tuple(op) for op in code), icase=icase, pattern=pattern)


def _char_ok(pred: tuple, c: str, icase: bool) -> bool:
    kind = pred[0]
    if kind == "any":
        return True
    if kind == "lit":
        return c == pred[1] or (icase and c.lower() == pred[1].lower())
    return _set_match(pred[1], c, icase)


def ere_search(prog: EreProgram, text: str, *, budget: int = ERE_BUDGET) -> bool | None:
    """Whether the pattern matches anywhere in ``text`` (regexec without REG_NEWLINE: ``^`` and ``$``
    match only at the ends, ``.`` matches a newline). None when the work would exceed ``budget``."""
    code = prog.code
    n = len(text)
    if len(code) * (n + 1) > budget:
        return None
    current: set[int] = set()
    for pos in range(n + 1):
        current.add(0)  # a search: a match may start at every position
        seen: set[int] = set()
        stack = list(current)
        chars: list[int] = []
        while stack:
            pc = stack.pop()
            if pc in seen:
                continue
            seen.add(pc)
            op = code[pc]
            kind = op[0]
            if kind == "match":
                return True
            if kind == "jmp":
                stack.append(op[1])
            elif kind == "split":
                stack.append(op[1])
                stack.append(op[2])
            elif kind == "bol":
                if pos == 0:
                    stack.append(pc + 1)
            elif kind == "eol":
                if pos == n:
                    stack.append(pc + 1)
            else:
                chars.append(pc)
        if pos == n:
            break
        c = text[pos]
        current = {pc + 1 for pc in chars if _char_ok(code[pc][1], c, prog.icase)}
    return False


# --- ksmtuned: how its script recognises guests -------------------------------------------------


class GuestFinder(Record):
    """How a ksmtuned script finds the QEMU processes whose memory it counts."""

    tool: str  # "pgrep" or "ps -C"
    command: str  # the command as written (at most 200 characters)
    line: int  # line in the script
    pattern: str | None = None  # pgrep's pattern; for ps -C the names joined by ","
    full: bool = False  # pgrep -f: the whole command line, else the process name (comm, 15 characters)
    exact: bool = False  # -x
    icase: bool = False  # -i
    negate: bool = False  # -v
    filters: tuple[str, ...] = ()  # other selection options (-u, -P, ...): also applied, not evaluated
    problem: str | None = None  # why it cannot be evaluated
    #: the line is ksmtuned's own ``pidlist=$(pgrep ...)``: a fix may replace it with another pgrep
    replaceable: bool = False

    @property
    def subject(self) -> str:
        return "the whole command line (pgrep -f)" if self.full else "the process name (15 characters of comm)"


_PGREP_ARG_OPTS = set("dFpPOgsuUGtrq")
_PGREP_LONG_ARG = {"delimiter", "pidfile", "pid", "parent", "older", "pgroup", "session", "euid", "uid", "group",
                   "terminal", "runstates", "cgroup", "ns", "nslist", "env", "signal", "queue"}
_SELECTING = set("FpPOgsuUGtrnoAH")


def _shell_words(text: str) -> tuple[list[tuple[str, bool]], str | None, int]:
    """Words of one shell command, up to an unquoted ``)``, ``|``, ``;``, ``&``, ``<``, ``>``, a
    backquote or a comment: (word, holds an expansion) pairs, a problem (an unterminated quote),
    and where the command ends in ``text``."""
    words: list[tuple[str, bool]] = []
    cur: list[str] = []
    expands = False
    in_word = False
    quote: str | None = None
    i = 0
    while i < len(text):
        c = text[i]
        if quote == "'":
            if c == "'":
                quote = None
            else:
                cur.append(c)
            i += 1
            continue
        if quote == '"':
            if c == '"':
                quote = None
            elif c == "\\" and i + 1 < len(text) and text[i + 1] in '$`"\\':
                cur.append(text[i + 1])
                i += 1
            else:
                if c in "$`" and i + 1 < len(text) and (text[i + 1].isalnum() or text[i + 1] in "_{(@*#?!-"):
                    expands = True
                cur.append(c)
            i += 1
            continue
        if c in " \t\n":
            if in_word:
                words.append(("".join(cur), expands))
                cur, expands, in_word = [], False, False
            i += 1
            continue
        if c in ")|;&<>`" or (c == "#" and not in_word):
            break
        in_word = True
        if c in "'\"":
            quote = c
        elif c == "\\" and i + 1 < len(text):
            cur.append(text[i + 1])
            i += 1
        else:
            if c in "$`" and i + 1 < len(text) and (text[i + 1].isalnum() or text[i + 1] in "_{(@*#?!-"):
                expands = True
            cur.append(c)
        i += 1
    if quote is not None:
        return words, f"an unterminated {quote} quote", i
    if in_word:
        words.append(("".join(cur), expands))
    return words, None, i


def _pgrep(words: list[tuple[str, bool]], command: str, line: int) -> GuestFinder:
    full = exact = icase = negate = False
    filters: list[str] = []
    operands: list[tuple[str, bool]] = []
    i = 1
    only_operands = False
    while i < len(words):
        w, exp = words[i]
        i += 1
        if only_operands or not w.startswith("-") or w == "-":
            operands.append((w, exp))
            continue
        if w == "--":
            only_operands = True
            continue
        if w.startswith("--"):
            name, eq, _ = w[2:].partition("=")
            if name in _PGREP_LONG_ARG and not eq:
                i += 1
            full |= name == "full"
            exact |= name == "exact"
            icase |= name == "ignore-case"
            negate |= name == "inverse"
            if name in ("pidfile", "pid", "parent", "older", "pgroup", "session", "euid", "uid", "group", "terminal",
                        "runstates", "cgroup", "ns", "env", "newest", "oldest"):
                filters.append(w)
            continue
        j = 1
        while j < len(w):
            o = w[j]
            if o in _PGREP_ARG_OPTS:
                if o in _SELECTING:
                    filters.append(f"-{o}")
                if j == len(w) - 1:
                    i += 1  # the option's argument is the next word
                break
            full |= o == "f"
            exact |= o == "x"
            icase |= o == "i"
            negate |= o == "v"
            if o in _SELECTING:
                filters.append(f"-{o}")
            j += 1
    base = GuestFinder(tool="pgrep", command=command, line=line, full=full, exact=exact, icase=icase, negate=negate,
                       filters=tuple(filters))
    if len(operands) != 1:
        return base._replace(problem=f"pgrep is given {len(operands)} patterns (one is needed)")
    pattern, exp = operands[0]
    if exp:
        return base._replace(pattern=pattern, problem="the pattern is a shell expansion, known only when it runs")
    return base._replace(pattern=pattern)


def _ps_c(words: list[tuple[str, bool]], command: str, line: int) -> GuestFinder:
    for k, (w, exp) in enumerate(words):
        names = None
        if w == "-C" and k + 1 < len(words):
            names, exp = words[k + 1]
        elif w.startswith("-C") and len(w) > 2:
            names = w[2:]
        if names is not None:
            base = GuestFinder(tool="ps -C", command=command, line=line, pattern=names, exact=True)
            if exp:
                return base._replace(problem="the process names are a shell expansion, known only when it runs")
            return base
    return GuestFinder(tool="ps", command=command, line=line, problem="ps without -C: not a guest search")


_FUNCTION = re.compile(r"^\s*(?:function\s+)?committed_memory\s*(?:\(\s*\))?\s*\{?\s*$")
_COMMAND = re.compile(r"(?:^|[\s(|;&`])(pgrep|ps)(?=\s)")


def parse_ksmtuned_script(text: str) -> GuestFinder:
    """The command a ksmtuned script uses to find QEMU processes: the first ``pgrep`` (or
    ``ps -C``) in its committed_memory function, else in the whole script."""
    raw_lines = _text.lines(text)
    lines: list[tuple[int, str]] = []
    buf, start = "", 0
    for no, raw in enumerate(raw_lines, 1):  # backslash-newline continues a line
        if not buf:
            start = no
        if raw.endswith("\\") and not raw.endswith("\\\\"):
            buf += raw[:-1] + " "
            continue
        lines.append((start, buf + raw))
        buf = ""
    if buf:
        lines.append((start, buf))
    begin = next((k for k, (_, ln) in enumerate(lines) if _FUNCTION.match(ln)), 0)
    for no, ln in lines[begin:] + lines[:begin]:
        if ln.lstrip().startswith("#"):
            continue
        m = _COMMAND.search(ln)
        if m is None:
            continue
        cmd_text = ln[m.start(1):]
        words, problem, end = _shell_words(cmd_text)
        shown = cmd_text.strip()[:200]
        if problem is not None:
            return GuestFinder(tool=m.group(1), command=shown, line=no, problem=problem)
        finder = _pgrep(words, shown, no) if m.group(1) == "pgrep" else _ps_c(words, shown, no)
        if finder.tool == "ps":
            continue  # a ps that does not select by name (ps -p "$pidlist" -o rsz=)
        # ksmtuned's own line: pidlist=$(pgrep ...) and nothing else on it
        whole = ln[: m.start(1)].strip() == "pidlist=$(" and cmd_text[end:].strip() == ")"
        return finder._replace(replaceable=finder.tool == "pgrep" and whole)
    return GuestFinder(tool="none", command="", line=0,
                       problem="no pgrep or ps -C command in the script: how it finds guests is not known")


class ProcessView(Record):
    """A QEMU process as pgrep sees it."""

    pid: int | None  # None: predicted, not running
    comm: str  # the process name, at most 15 characters
    argv: tuple[str, ...]
    origin: str = ""  # where a predicted one comes from

    @property
    def cmdline(self) -> str:
        """What pgrep -f matches: the arguments joined by spaces (procps), at most 128 KiB."""
        return " ".join(self.argv)[:CMDLINE_CAP]

    def shown(self, width: int = 160) -> str:
        text = self.cmdline or f"[{self.comm}]"
        return text if len(text) <= width else text[: width - 3] + "..."


def finder_matches(finder: GuestFinder, proc: ProcessView, prog: EreProgram | None) -> bool | None:
    """Whether ``finder`` counts ``proc``; None when it cannot be told (a pattern this matcher does
    not evaluate, or one too costly for this command line)."""
    if finder.problem is not None:
        return None
    if finder.tool == "ps -C":
        names = [n for n in (finder.pattern or "").split(",") if n]
        return proc.comm in names  # ps -C compares the process name exactly
    if prog is None:
        return None
    subject = proc.cmdline if finder.full and proc.argv else proc.comm
    hit = ere_search(prog, subject)
    if hit is None:
        return None
    return hit != finder.negate


def compile_finder(finder: GuestFinder) -> tuple[EreProgram | None, str | None]:
    """The finder's pattern compiled as pgrep compiles it (-x wraps it in ``^(...)$``), or why not."""
    if finder.tool != "pgrep" or finder.pattern is None or finder.problem is not None:
        return None, finder.problem
    pattern = f"^({finder.pattern})$" if finder.exact else finder.pattern
    try:
        return ere_compile(pattern, icase=finder.icase), None
    except EreError as exc:
        return None, f"the pattern {finder.pattern[:80]!r} uses {exc}"


class KsmtunedScript(Record):
    path: str
    finder: GuestFinder
    how: str = ""  # how the path was found: the unit's ExecStart=, or the packaged place


KSMTUNED_UNIT = "ksmtuned.service"
LOCAL_KSMTUNED = "/usr/local/sbin/ksmtuned"  # where hostaudit's fix puts a corrected copy


def _unit_exec(host: Host, unit: str) -> tuple[str | None, str]:
    """The program ``unit`` runs: the last ExecStart= of its unit file and drop-ins (systemd reads
    drop-ins by basename across the unit directories, a higher directory hiding the same name; an
    empty ExecStart= clears the list). (None, why) when no unit file says."""
    main = next((f"{d}/{unit}" for d in UNIT_DIRS if host.kind(f"{d}/{unit}") == "file"), None)
    if main is None:
        return None, f"no {unit} unit file"
    dropins: dict[str, str] = {}
    for d in UNIT_DIRS:
        try:
            names = host.listdir(f"{d}/{unit}.d")
        except (FactUnavailable, FactError):
            continue
        for n in names[:256]:
            if n.endswith(".conf") and n not in dropins:
                dropins[n] = f"{d}/{unit}.d/{n}"
    execs: list[str] = []
    where = main
    for path in [main, *(dropins[n] for n in sorted(dropins))]:
        text = _read_small(host, path, limit=256 * 1024)
        if text is None:
            continue
        try:
            values = parse_unit_file(text).get("Service", {}).get("ExecStart", [])
        except ParseError:
            continue
        for v in values:
            if not v:
                execs = []
            else:
                execs.append(v)
                where = path
    if not execs:
        return None, f"no ExecStart= in {main} and its drop-ins"
    words = execs[0].split()
    program = words[0].lstrip("-@:+!|") if words else ""
    if not program.startswith("/"):
        return None, f"{where}: ExecStart={execs[0][:80]} does not name a program by its path"
    return program, f"ExecStart= in {where}"


@fact(paths=[*KSMTUNED_SCRIPTS, LOCAL_KSMTUNED, *(f"{d}/{KSMTUNED_UNIT}" for d in UNIT_DIRS),
             *(f"{d}/{KSMTUNED_UNIT}.d/*.conf" for d in UNIT_DIRS)])
def ksmtuned_script(host: Host) -> KsmtunedScript:
    """The ksmtuned script the service runs (its unit's ExecStart=, drop-ins included; else the
    packaged place), read as text and never run, and how it finds guests."""
    program, how = _unit_exec(host, KSMTUNED_UNIT)
    candidates = [program] if program else list(KSMTUNED_SCRIPTS)
    for path in candidates:
        if host.kind(path) != "file":
            continue
        data = host.read_bytes(path, limit=SCRIPT_CAP)
        if b"\0" in data[:4096]:
            raise FactError(path, "is a binary, not the ksmtuned shell script; its guest search cannot be read")
        return KsmtunedScript(path=path, finder=parse_ksmtuned_script(data.decode("utf-8", "replace")),
                              how=how if program else f"the packaged script ({how})")
    raise FactUnavailable(f"no ksmtuned script at {', '.join(candidates)} ({how})", source=candidates[0])


# --- QEMU processes running now ---------------------------------------------------------------


class ProcessScan(Record):
    processes: tuple[ProcessView, ...]  # QEMU system emulators (by process name or argv[0])
    scanned: int  # process directories looked at
    limits: tuple[str, ...] = ()  # bounds that were reached


def _is_emulator_name(name: str) -> bool:
    """A QEMU system emulator (a guest), not one of QEMU's tools (qemu-img, qemu-nbd, qemu-pr-helper,
    qemu-storage-daemon, qemu-ga): qemu-system-ARCH, RHEL's qemu-kvm, or a process renamed with
    -name process=qemu:NAME."""
    return name.startswith(("qemu-system-", "qemu:")) or name == "qemu-kvm"


def _is_qemu(comm: str, argv: Sequence[str]) -> bool:
    return _is_emulator_name(comm) or bool(argv and _is_emulator_name(posixpath.basename(argv[0])))


#: Declares no path: process command lines can hold secrets (passwords in arguments), so a snapshot,
#: which leaves the host, never carries them; a snapshot is judged by how libvirt would start guests.
@fact(paths=[], runtime=True)
def qemu_processes(host: Host) -> ProcessScan:
    """The QEMU processes running, from /proc/PID/comm and /proc/PID/cmdline (bounded: the first
    MAX_PIDS processes, CMDLINE_CAP bytes of a command line, SCAN_BYTES in all). Live hosts only."""
    if not host.has_runtime:
        raise host.runtime_unavailable("/proc")
    if host.mode is TargetMode.SNAPSHOT:
        raise FactUnavailable("process command lines are not captured in snapshots (they may hold secrets)",
                              source="/proc/*/cmdline")
    try:
        pids = sorted(int(n) for n in host.listdir("/proc") if n.isdigit() and len(n) < 11)
    except (FactUnavailable, FactError) as exc:
        raise FactUnavailable(f"/proc cannot be listed: {exc}", source="/proc") from None
    limits: list[str] = []
    if len(pids) > MAX_PIDS:
        limits.append(f"{len(pids)} processes: the first {MAX_PIDS} were looked at")
        pids = pids[:MAX_PIDS]
    found: list[ProcessView] = []
    spent = 0
    for pid in pids:
        if spent > SCAN_BYTES:
            limits.append(f"stopped after {spent} bytes of /proc/*/cmdline")
            break
        try:
            comm = host.read_text(f"/proc/{pid}/comm", limit=256).rstrip("\n")[:64]
            raw = host.read_bytes(f"/proc/{pid}/cmdline", limit=CMDLINE_CAP)
        except FactUnavailable:
            continue  # the process ended meanwhile
        except FactError as exc:
            if "larger than" in exc.problem:
                limits.append(f"/proc/{pid}/cmdline is over {CMDLINE_CAP} bytes: not read")
            continue
        spent += len(raw)
        argv = tuple(a.decode("utf-8", "replace") for a in raw.split(b"\0"))
        if argv and argv[-1] == "":
            argv = argv[:-1]
        if _is_qemu(comm, argv):
            found.append(ProcessView(pid=pid, comm=comm[:15], argv=argv))
            if len(found) >= MAX_QEMU:
                limits.append(f"the first {MAX_QEMU} QEMU processes were kept")
                break
    return ProcessScan(processes=tuple(found), scanned=len(pids), limits=tuple(limits))


# --- how libvirt would start guests here --------------------------------------------------------


class LibvirtSetup(Record):
    driver: str | None  # the QEMU driver module found, None: not installed
    version: str | None  # from the dpkg status database (rpm's database is not read)
    version_source: str | None
    emulators: tuple[str, ...]  # emulator paths: the domains' <emulator>, else the installed ones
    emulator_source: str
    wrappers: tuple[str, ...] = ()  # emulators that are scripts (#!): how they start QEMU is not read


def dpkg_version(text: str, packages: Sequence[str]) -> tuple[str, str] | None:
    """(package, version) of the first of ``packages`` installed per a dpkg status database."""
    found: dict[str, str] = {}
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in _text.lines(stanza):
            if line[:1] not in (" ", "\t") and ": " in line:
                k, v = line.split(": ", 1)
                fields[k] = v.strip()
        name = fields.get("Package")
        if name in packages and fields.get("Status", "").endswith(" installed") and "Version" in fields:
            found[name] = fields["Version"]
    for p in packages:
        if p in found:
            return p, found[p]
    return None


#: The emulator that runs KVM guests on each architecture (kernel names, audit.host.arch).
_NATIVE_EMULATOR = {"x86_64": "qemu-system-x86_64", "arm64": "qemu-system-aarch64", "i386": "qemu-system-i386",
                    "ppc64le": "qemu-system-ppc64", "ppc64": "qemu-system-ppc64", "s390x": "qemu-system-s390x",
                    "riscv64": "qemu-system-riscv64", "loongarch64": "qemu-system-loongarch64"}
_EMULATOR_TAG = re.compile(r"<emulator>\s*([^<\s][^<]*?)\s*</emulator>")


def _driver_paths(host: Host) -> list[str]:
    paths = [f"/usr/lib64/{LIBVIRT_DRIVER}", f"/usr/lib/{LIBVIRT_DRIVER}"]
    try:
        multiarch = [n for n in host.listdir("/usr/lib") if re.fullmatch(r"[a-z0-9_]+-linux-gnu[a-z0-9_]*", n)]
    except (FactUnavailable, FactError):
        multiarch = []
    return paths + [f"/usr/lib/{n}/{LIBVIRT_DRIVER}" for n in multiarch[:16]]


@fact(paths=[f"?/usr/lib64/{LIBVIRT_DRIVER}", f"?/usr/lib/{LIBVIRT_DRIVER}", f"?/usr/lib/*/{LIBVIRT_DRIVER}",
             DPKG_STATUS, f"{LIBVIRT_DOMAINS}/*.xml", "?/usr/bin/qemu-system-*", *(f"?{e}" for e in EMULATORS)])
def libvirt_setup(host: Host) -> LibvirtSetup:
    """Whether libvirt's QEMU driver is installed and which emulators its guests run: read from
    the files (never by running virsh or the emulator)."""
    driver = next((p for p in _driver_paths(host) if host.kind(p) == "file"), None)
    version = version_source = None
    text = _read_small(host, DPKG_STATUS, limit=64 * 1024 * 1024)
    if text is not None:
        hit = dpkg_version(text, LIBVIRT_PACKAGES)
        if hit is not None:
            version, version_source = hit[1], f"{DPKG_STATUS} ({hit[0]})"
    emulators: list[str] = []
    source = ""
    try:
        domains = [n for n in host.listdir(LIBVIRT_DOMAINS) if n.endswith(".xml")][:MAX_DOMAINS]
    except (FactUnavailable, FactError):
        domains = []
    for name in domains:
        xml = _read_small(host, f"{LIBVIRT_DOMAINS}/{name}", limit=1024 * 1024)
        m = _EMULATOR_TAG.search(xml or "")
        if m and m.group(1).startswith("/") and m.group(1) not in emulators:
            emulators.append(m.group(1)[:256])
    if emulators:
        source = f"<emulator> of the domains in {LIBVIRT_DOMAINS}"
    else:
        try:
            installed = [f"/usr/bin/{n}" for n in host.listdir("/usr/bin") if n.startswith("qemu-system-")]
        except (FactUnavailable, FactError):
            installed = []
        # a qemu-system-* package installs an emulator per architecture; KVM guests run the native one
        native = _NATIVE_EMULATOR.get(arch_name(host) or "")
        chosen = [e for e in installed if posixpath.basename(e) == native]
        emulators = (chosen or installed[:4]) + [e for e in EMULATORS if host.kind(e) == "file"]
        emulators = emulators[:MAX_EMULATORS]
        source = "installed QEMU emulators" + (" (the one for this architecture)" if chosen and len(installed) > 1
                                               else "")
    wrappers = []
    for e in emulators:
        if host.kind(e) == "file":
            try:  # a script is small; a binary is over the cap and is no wrapper
                if host.read_bytes(e, limit=64 * 1024)[:2] == b"#!":
                    wrappers.append(e)
            except (FactUnavailable, FactError):
                continue
    return LibvirtSetup(driver=driver, version=version, version_source=version_source, emulators=tuple(emulators),
                        emulator_source=source, wrappers=tuple(wrappers))


def libvirt_processes(setup: LibvirtSetup) -> list[ProcessView]:
    """The QEMU processes libvirt would start for KVM guests: the emulator by its absolute path,
    ``-name guest=...`` first, KVM chosen with ``-accel kvm`` (libvirt's tests/qemuxmlconfdata,
    e.g. kvm-features.x86_64-latest.args) or, from older libvirt, ``-machine ...,accel=kvm``;
    libvirt never passes ``-enable-kvm`` to a QEMU that has -machine accel=. The process name is
    the emulator's file name, cut to 15 characters."""
    out = []
    for e in setup.emulators:
        if e in setup.wrappers:
            continue
        comm = posixpath.basename(e)[:15]
        head = (e, "-name", "guest=GUEST,debug-threads=on", "-S")
        out.append(ProcessView(pid=None, comm=comm, origin="libvirt, -accel kvm",
                               argv=(*head, "-machine", "pc-q35,usb=off,dump-guest-core=off", "-accel", "kvm",
                                     "-cpu", "host", "-m", "size=4194304k")))
        out.append(ProcessView(pid=None, comm=comm, origin="older libvirt, -machine accel=kvm",
                               argv=(*head, "-machine", "pc-q35,accel=kvm,usb=off,dump-guest-core=off",
                                     "-cpu", "host", "-m", "4096")))
    return out


__all__ = [
    "BootWrite", "EreError", "GuestFinder", "LibvirtSetup", "MinFreeRecommendation", "NumaTopology", "ProcessScan",
    "ProcessView", "ThpExtra", "Zone", "boot_writes", "compile_finder", "defrag_boot_writes", "dpkg_version",
    "ere_compile", "ere_search", "finder_matches", "ksmtuned_script", "libvirt_processes", "libvirt_setup",
    "min_free_kbytes", "numa_topology", "parse_ksmtuned_script", "parse_node_list", "parse_zoneinfo",
    "qemu_processes", "recommended_min_free_kbytes", "sysfs_conf_writes", "thp_extra", "tmpfiles_writes", "zoneinfo",
]
