"""/proc/cpuinfo: architecture, vendor, model name, the CPU flags every processor has and, on ARM,
each processor's implementation (the MIDR_EL1 fields the kernel prints).

Bounded by construction, whatever the input: the text is split into lines a run of about
``_RUN_CHARS`` characters at a time (``str.split`` walks it, in C), only the keys read below are
kept, a flags line holds at most ``MAX_FLAGS_PER_LINE`` words and the whole file at most
``MAX_DISTINCT_FLAGS`` distinct flags and ``MAX_PROCESSORS`` processors; past any of these the
parser raises ParseError naming the limit and the line. Processors that print the same flags line
(the usual case) cost one string comparison each, not a set; a line's key (what is before its
first ":") is looked at once per distinct spelling, so the 26-odd lines a processor prints cost a
dictionary lookup each, not a strip and a lowering.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from audit.errors import ParseError
from audit.record import Record

#: Far above any real CPU (x86 prints about 200-300 flags, arm64 about 60 Features): a flags line
#: with more words, or a file with more distinct flags, is not a /proc/cpuinfo.
MAX_FLAGS_PER_LINE = 4096
MAX_DISTINCT_FLAGS = 4096
#: Linux's largest NR_CPUS is 8192 (x86 MAXSMP); eight times that.
MAX_PROCESSORS = 65536
#: A flag is a short word; a flags line longer than this many characters is refused before it is split.
MAX_FLAGS_LINE_CHARS = MAX_FLAGS_PER_LINE * 64
#: Any other value kept (model name, vendor, CPU part, ...) is far shorter.
MAX_VALUE_CHARS = 1024
_MAX_KEY_CHARS = 64

# x86 "flags", ARM "Features", s390x "features": all are whitespace-separated lists of words.
_FLAG_KEYS = ("flags", "features")
_ARM_KEYS = ("cpu implementer", "cpu architecture", "cpu variant", "cpu part", "cpu revision")
#: Only these keys are kept; every other line is skipped without being copied.
_KEPT = frozenset({"processor", "processor name", "vendor_id", "vendor", "model name", "cpu model", "cpu",
                   "cpu family", "model", *_FLAG_KEYS, *_ARM_KEYS})
_X86_VENDORS = frozenset({"GenuineIntel", "AuthenticAMD", "HygonGenuine", "CentaurHauls", "Shanghai",
                          "GenuineTMx86", "CyrixInstead", "Geode by NSC", "NexGenDriven", "RiseRiseRise",
                          "SiS SiS SiS", "UMC UMC UMC", "Vortex86 SoC"})
#: Lines are split this many characters at a time (a real 256-processor cpuinfo is some 400,000).
_RUN_CHARS = 1 << 15
#: How a key spelling (what a line holds before its first ":") reads: its key when kept, else "".
#: Shared by every parse in the process (a fleet's hosts spell their keys alike), up to this many.
_HEADS: dict[str, str] = {}
_MAX_HEADS = 1024
_NONBLANK = re.compile(r"\S")


def _key(head: str) -> str:
    """The kept key a line's text before its first ":" names, else "" (too long, or not kept)."""
    key = head.strip().lower() if len(head) <= _MAX_KEY_CHARS else ""
    if key not in _KEPT:
        key = ""
    if len(_HEADS) < _MAX_HEADS:
        _HEADS[head] = key
    return key


def _line_runs(text: str) -> Iterator[list[str]]:
    """The lines of ``text`` (split at "\n" only; no empty line after a final newline), a list of
    those in at most ``_RUN_CHARS`` characters at a time, and a longer line alone as
    ``_long_line`` gives it: a text of 32 MiB of empty lines, or of one line, never has more
    than about 300 KB of it copied at once."""
    size, pos = len(text), 0
    while pos < size:
        stop = pos + _RUN_CHARS
        if stop >= size:
            run = text[pos:].split("\n")
            if text.endswith("\n"):
                run.pop()  # the last line's newline, not a line after it
            yield run
            return
        cut = text.rfind("\n", pos, stop)
        if cut >= 0:
            yield text[pos:cut].split("\n")
            pos = cut + 1
            continue
        end = text.find("\n", pos)
        end = size if end < 0 else end
        yield [_long_line(text, pos, end)]
        pos = end + 1


#: What is kept of a line longer than that: past this, a value is too long for any key.
_LONG_KEEP = MAX_FLAGS_LINE_CHARS + _MAX_KEY_CHARS + 2


def _long_line(text: str, start: int, end: int) -> str:
    """A line read as the whole line ``text[start:end]`` is, without copying it all: "" when it is
    blank; else its first ``_LONG_KEEP`` characters, which hold its key (a ":" within the first 65)
    and a value still too long for that key; "-" (no key) when those hold no ":" at all."""
    if _NONBLANK.search(text, start, end) is None:
        return ""
    kept = text[start:min(end, start + _LONG_KEEP)]
    return kept if ":" in kept else "-"


def _words(value: str) -> list[str]:
    """The flags of one flags line: its runs of non-blanks (str.isspace, as ``\\S+`` takes them)."""
    return value.split()
_KNOWN_LINES = 64  # distinct flags lines remembered as already counted (big.LITTLE hosts have a few)


class Midr(Record):
    """One ARM processor's implementation, as /proc/cpuinfo prints the fields of its MIDR_EL1.

    None where the line is missing or not a number. The "CPU architecture" line is left out: an
    arm64 kernel prints 8 for every CPU, which says nothing about the implementation.
    """

    implementer: int | None
    part: int | None
    variant: int | None
    revision: int | None

    @property
    def label(self) -> str:
        """'0x41/0xd0c r3p1' (implementer/part, variant and revision as ARM writes them)."""
        def hx(v: int | None, width: int) -> str:
            return "?" if v is None else f"0x{v:0{width}x}"

        r = "?" if self.variant is None else str(self.variant)
        p = "?" if self.revision is None else str(self.revision)
        return f"{hx(self.implementer, 2)}/{hx(self.part, 3)} r{r}p{p}"


class CpuInfo(Record):
    vendor: str | None  # "GenuineIntel", "AuthenticAMD", ... (None when the arch does not say)
    model_name: str | None
    family: str | None
    model: str | None
    flags: frozenset[str]  # present on *every* processor (heterogeneous hosts: the intersection)
    processors: int
    flags_differ: bool = False  # some processors have flags others lack
    #: "x86", "arm64" (a 64-bit ARM kernel), "arm" (a 32-bit ARM kernel), "s390x", "powerpc"; None
    #: when the text does not say.
    arch: str | None = None
    #: Per processor (in file order), its implementation on ARM; empty on other architectures.
    midrs: tuple[Midr, ...] = ()

    @property
    def vendor_kind(self) -> str | None:
        """'intel', 'amd' or None, from the vendor string."""
        v = (self.vendor or "").lower()
        if "intel" in v:
            return "intel"
        if "amd" in v or "hygon" in v:
            return "amd"
        return None

    @property
    def implementations(self) -> tuple[tuple[Midr, int], ...]:
        """Each distinct implementation with how many processors have it, in order of first
        appearance: one on most hosts, several on big.LITTLE ones."""
        counts: dict[Midr, int] = {}
        for m in self.midrs:
            counts[m] = counts.get(m, 0) + 1
        return tuple(counts.items())


def _number(value: str | None) -> int | None:
    """0x41, 0xd0c, 3 -> int; anything else (archspec's "Irrelevant") -> None."""
    if not value:
        return None
    try:
        return int(value, 16) if value[:2].lower() == "0x" else int(value, 10)
    except ValueError:
        return None


class _Flags:
    """The intersection, the union (capped) and whether processors differ, fed one line at a time."""

    __slots__ = ("common", "differ", "first", "known", "lines", "seen")

    def __init__(self) -> None:
        self.common: set[str] | None = None
        self.first: frozenset[str] | None = None
        self.seen: set[str] = set()
        self.known: set[str] = set()  # lines already counted: the same line again changes nothing
        self.differ = False
        self.lines = 0

    def add(self, number: int, value: str) -> None:
        """The flags line ``number``: ``value``, all that follows its ":"."""
        self.lines += 1
        if len(value) > MAX_FLAGS_LINE_CHARS:
            raise ParseError(f"flags line longer than {MAX_FLAGS_LINE_CHARS} characters: not a /proc/cpuinfo",
                             line=number)
        if value in self.known:
            return
        words = _words(value)  # at most MAX_FLAGS_LINE_CHARS / 2 of them
        if len(words) > MAX_FLAGS_PER_LINE:
            raise ParseError(f"more than {MAX_FLAGS_PER_LINE} flags on one processor's flags line: "
                             "not a /proc/cpuinfo", line=number)
        line = frozenset(words)
        new = line - self.seen
        if len(self.seen) + len(new) > MAX_DISTINCT_FLAGS:
            raise ParseError(f"more than {MAX_DISTINCT_FLAGS} distinct flags: not a /proc/cpuinfo", line=number)
        self.seen |= new
        if self.first is None:
            self.first, self.common = line, set(line)
        else:
            assert self.common is not None
            self.common &= line
            self.differ = self.differ or line != self.first
        if len(self.known) < _KNOWN_LINES:
            self.known.add(value)


def parse_cpuinfo(text: str) -> CpuInfo:
    """Parse /proc/cpuinfo. Separators may be tabs or spaces; blank lines separate processors, and
    so does a second "processor" line. Lines without ":" are tolerated. Raises ParseError when no
    processor is described or a limit above is passed."""
    flags = _Flags()
    firsts: dict[str, tuple[int, str]] = {}  # key -> (index of the first processor that has it, value)
    shared: dict[str, str] = {}  # s390x and ARM put some keys in a header or trailer block
    midrs: list[Midr] = []
    interned: dict[Midr, Midr] = {}  # one object per implementation, however many processors share it
    procs = numbered = 0
    arm_arch = ""
    block: dict[str, str] = {}
    flag_line: tuple[int, str] | None = None  # (line number, value) of the block's flags line

    def end_block(number: int) -> None:
        nonlocal procs, numbered, arm_arch, flag_line
        if "processor" not in block and flag_line is None:
            shared.update(block)  # a header or trailer ("Hardware", s390x's summary)
            block.clear()
            return
        index, procs = procs, procs + 1
        if "processor" in block:
            numbered += 1
            if numbered > MAX_PROCESSORS:
                raise ParseError(f"more than {MAX_PROCESSORS} processors: not a /proc/cpuinfo", line=number)
        for key, value in block.items():
            if value and key not in firsts:
                firsts[key] = (index, value)
        if flag_line is not None:
            flags.add(*flag_line)
        if "cpu implementer" in block:
            m = Midr(*(_number(block.get(k)) for k in ("cpu implementer", "cpu part", "cpu variant", "cpu revision")))
            midrs.append(interned.setdefault(m, m))
            arm_arch = arm_arch or block.get("cpu architecture", "")
        block.clear()
        flag_line = None

    number = 0
    heads = _HEADS
    for run in _line_runs(text):
        for line in run:
            number += 1
            head, colon, value = line.partition(":")
            if not colon:  # no key: a blank line ends a block; any other is tolerated (some arches have them)
                if not line or line.isspace():
                    end_block(number)
                continue
            key = heads.get(head)
            if key is None:
                key = _key(head)
            if not key:
                continue  # not a key of ours, or longer than any of them
            if key in _FLAG_KEYS:
                if flag_line is None:
                    flag_line = (number, value)
                continue
            if len(value) > MAX_VALUE_CHARS:
                raise ParseError(f"'{key}' value longer than {MAX_VALUE_CHARS} characters: not a /proc/cpuinfo",
                                 line=number)
            value = value.strip()
            if key == "processor" and not value.isdigit():
                key = "processor name"  # ARM kernels' "Processor : AArch64 Processor rev 14 (aarch64)"
            if key == "processor" and "processor" in block:
                end_block(number)
            block.setdefault(key, value)
    end_block(number)

    if not procs and not shared:
        raise ParseError("no processor information found")

    def first(*keys: str) -> str | None:
        """The value of the first processor that has one of the keys (earlier keys win within a
        processor), else the header's."""
        found: tuple[int, str] | None = None
        for k in keys:
            hit = firsts.get(k)
            if hit is not None and (found is None or hit[0] < found[0]):
                found = hit
        if found is not None:
            return found[1]
        return next((shared[k] for k in keys if shared.get(k)), None)

    vendor = first("vendor_id", "vendor")
    return CpuInfo(
        vendor=vendor,
        model_name=first("model name", "cpu model", "cpu"),
        family=first("cpu family"),
        model=first("model"),
        flags=frozenset(flags.common or ()),
        processors=numbered or procs or 1,
        flags_differ=flags.differ,
        arch=_arch(vendor=vendor, family=first("cpu family"), cpu=first("cpu"), midrs=midrs, arm_arch=arm_arch,
                   name=first("processor name", "model name")),
        midrs=tuple(midrs),
    )


def _arch(*, vendor: str | None, family: str | None, cpu: str | None, midrs: list[Midr], arm_arch: str,
          name: str | None) -> str | None:
    """The architecture the kernel that printed this runs on, from what only it prints."""
    if midrs:
        # arm64 kernels print "CPU architecture: 8" for every CPU; 32-bit ones the CPU's (7 also on
        # ARMv8 cores running AArch32).
        if arm_arch.strip() == "8" or "aarch64" in (name or "").lower():
            return "arm64"
        return "arm" if arm_arch.strip().isdigit() else "arm64"
    if vendor and vendor.startswith("IBM/S390"):
        return "s390x"
    if vendor in _X86_VENDORS or (vendor and family):
        return "x86"
    if (cpu or "").upper().startswith(("POWER", "PPC")):
        return "powerpc"
    return None
