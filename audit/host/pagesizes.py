"""Which huge page sizes the audited host's kernel can reserve, and what the kernel makes of the
huge page boot parameters with them: a size it rejects, and the ``hugepages=`` after that size,
depending on the kernel release.

Sizes (``arch_hugetlb_valid_size``):

- x86-64: the PMD size, 2 MiB, and the PUD size, 1 GiB, only when the boot CPU has
  ``X86_FEATURE_GBPAGES`` (cpuinfo ``pdpe1gb``) (arch/x86/mm/hugetlbpage.c:
  ``arch_hugetlb_valid_size`` in 5.8.1, the same test in ``setup_hugepagesz`` in 4.6.2, 4.7.4 and
  5.6.4). Without ``pse`` (``hugepages_supported()``, arch/x86/include/asm/hugetlb.h) the kernel
  reserves no huge page. The CPU is known where a kernel runs (live, a snapshot); an image boots
  on a CPU nobody knows yet, so its 1 GiB pool depends on that CPU.
- arm64: by the translation granule of the kernel build (``CONFIG_ARM64_{4K,16K,64K}_PAGES``),
  the contiguous-PTE, PMD, contiguous-PMD and (4K only) PUD sizes: 4K: 64K, 2M, 32M, 1G; 16K: 2M,
  32M, 1G; 64K: 2M, 512M, 16G (arch/arm64/mm/hugetlbpage.c, "HugeTLB Support Matrix" and
  ``__hugetlb_valid_size``, torvalds/linux at 02410ac72ac3; the same set in 5.6.4's
  ``setup_hugepagesz`` and 5.8.1's ``arch_hugetlb_valid_size``). The default size is the PMD size
  (``HPAGE_SHIFT`` is ``PMD_SHIFT``, arch/arm64/include/asm/pgtable.h). Older arm64 kernels differ
  in detail (4.7.4's ``setup_hugepagesz`` took ``PUD_SIZE`` with every granule): not modelled.

What the kernel does with a rejected size (mm/hugetlb.c):

- ``hugepagesz=<rejected>``: since Linux 4.7 the ``hugepages=`` that follows it is ignored
  (``parsed_valid_hugepagesz``, Vaishali Thakkar's "mm/hugetlb: introduce hugetlb_bad_size()"
  and "x86: mm: use hugetlb_bad_size()", mmotm since-4.6, merged for 4.7; the 4.6.2 tree lacks
  it, the 4.7.4 tree has it). Before 4.7 the x86 ``setup_hugepagesz`` returned without changing
  any state, so ``hugepages=`` went to the size of the last accepted ``hugepagesz=`` or, with
  none, to the default size (``default_hstate_max_huge_pages``).
- ``default_hugepagesz=<rejected>``: since Linux 5.8 it too marks the parse invalid and the
  ``hugepages=`` after it is ignored (Mike Kravetz, "hugetlbfs: clean up command line
  processing", the series "Clean up hugetlb boot command line processing": the 5.7.14 tree still
  has ``hugetlb_default_setup``, the 5.8.1 tree ``default_hugepagesz_setup``). Before 5.8 the
  option was only remembered and ``hugetlb_init`` reverted to the architecture's default size,
  so the ``hugepages=`` after it counted as if it were not there.

The trees read: the linux-4.6.2, linux-4.7.4, linux-5.6.4, linux-5.7.14 and linux-5.8.1 source
snapshots on GitHub (xing393939, calebwilliamsd, shmily1012, a5221985, semwett0301). Distribution
kernels backport: a release number is read as the mainline series it is built from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from audit.errors import FactError, FactUnavailable, HostauditError, ParseError
from audit.host.arch import ARM64, X86_64, arch_name
from audit.host.kernel import CPUINFO, cpuinfo, kernel_config
from audit.host.memory import meminfo
from audit.host.registry import HostReader
from audit.model import Evidence, replace
from audit.parsers.cmdline import Param
from audit.parsers.hugepages import HugepageRequest, format_size, hugepage_request, parse_size
from audit.record import Record

K, M, G = 1 << 10, 1 << 20, 1 << 30
X86_PMD, X86_PUD = 2 * M, G
#: arm64 granule (page size) -> (sizes arch_hugetlb_valid_size accepts, the PMD size = the default).
ARM64_SIZES: dict[int, tuple[frozenset[int], int]] = {
    4 * K: (frozenset({64 * K, 2 * M, 32 * M, G}), 2 * M),
    16 * K: (frozenset({2 * M, 32 * M, G}), 32 * M),
    64 * K: (frozenset({2 * M, 512 * M, 16 * G}), 512 * M),
}
_GRANULE_OPTIONS = (("ARM64_4K_PAGES", 4 * K), ("ARM64_16K_PAGES", 16 * K), ("ARM64_64K_PAGES", 64 * K))
#: The mainline releases whose handling of a rejected size differs (see the module docstring).
HUGEPAGESZ_IGNORES_NEXT = (4, 7)
DEFAULT_SZ_IGNORES_NEXT = (5, 8)
_SIZE_KEYS = ("hugepagesz", "default_hugepagesz")



#: the default of a mapping field: shared by every record, so it cannot be changed
_NO_ENTRIES: Mapping[Any, Any] = MappingProxyType({})


class PageSizes(Record):
    """The huge page sizes one host's kernel accepts on its boot command line."""

    arch: str | None  # kernel naming ("x86_64", "arm64"); None: unknown
    #: sizes the kernel accepts here for certain; None: unknown (any power of two is taken as given)
    accepted: frozenset[int] | None
    #: sizes that depend on a CPU not known here, with what they need: {1G: "a CPU with pdpe1gb"}
    conditional: Mapping[int, str] = _NO_ENTRIES
    #: why the kernel rejects a size this architecture may have: {1G: "this CPU has no pdpe1gb"}
    rejected: Mapping[int, str] = _NO_ENTRIES
    default_size: int | None = None  # the architecture's default huge page size (HPAGE_SIZE)
    source: str = "huge page sizes"
    observed: str = ""

    def valid(self, *, with_conditional: bool = True) -> frozenset[int] | None:
        if self.accepted is None:
            return None
        return self.accepted | frozenset(self.conditional) if with_conditional else self.accepted

    def why_not(self, size: int) -> str:
        """Why the kernel rejects ``size`` here (a size not accepted)."""
        if size in self.rejected:
            return self.rejected[size]
        shown = ", ".join(format_size(s) for s in sorted(self.valid() or ()))
        what = {X86_64: "x86-64", ARM64: "arm64 with this granule"}.get(self.arch or "", self.arch or "this kernel")
        return f"{what} has no {format_size(size)} pages ({shown or 'none'})"

    @property
    def evidence(self) -> Evidence:
        return Evidence(source=self.source, observed=self.observed)


def _cpu_sizes(host: HostReader) -> PageSizes:
    """x86-64: 2M, and 1G with pdpe1gb where the CPU is known."""
    flags: frozenset[str] | None = None
    if host.has_runtime:
        try:
            flags = host.fact(cpuinfo).flags
        except (FactUnavailable, FactError):
            flags = None
    if flags is None:
        return PageSizes(arch=X86_64, accepted=frozenset({X86_PMD}), conditional={X86_PUD: "a CPU with pdpe1gb"},
                         default_size=X86_PMD, source="x86-64 (the CPU is not known here)",
                         observed="2M pages; 1G pages only on a CPU with pdpe1gb, and the CPU this system boots on "
                                  "is not known here (predicted)")
    if flags and "pse" not in flags:
        return PageSizes(arch=X86_64, accepted=frozenset(), rejected={X86_PMD: "this CPU has no pse",
                                                                      X86_PUD: "this CPU has no pse"},
                         default_size=X86_PMD, source=CPUINFO,
                         observed="no pse: the kernel reserves no huge pages (hugepages_supported())")
    if "pdpe1gb" in flags:
        return PageSizes(arch=X86_64, accepted=frozenset({X86_PMD, X86_PUD}), default_size=X86_PMD, source=CPUINFO,
                         observed="pdpe1gb: 2M and 1G huge pages")
    return PageSizes(arch=X86_64, accepted=frozenset({X86_PMD}), rejected={X86_PUD: "this CPU has no pdpe1gb"},
                     default_size=X86_PMD, source=CPUINFO, observed="no pdpe1gb: 2M huge pages only (the kernel "
                                                                    "rejects hugepagesz=1G)")


def _arm64_sizes(host: HostReader) -> PageSizes:
    """arm64: by the kernel's granule (its build config), else by the running default size."""
    try:
        kc = host.fact(kernel_config)
    except HostauditError:
        kc = None
    if kc is not None:
        granule = next((g for opt, g in _GRANULE_OPTIONS if kc.config.get(opt) == "y"), None)
        if granule is None:
            shift = kc.config.get("ARM64_PAGE_SHIFT")
            granule = 1 << int(shift) if shift and shift.isdigit() and int(shift) in (12, 14, 16) else None
        if granule is not None:
            sizes, pmd = ARM64_SIZES[granule]
            shown = ", ".join(format_size(s) for s in sorted(sizes))
            return PageSizes(arch=ARM64, accepted=sizes, default_size=pmd, source=kc.source,
                             observed=f"arm64, {format_size(granule)} granule: {shown} huge pages (default "
                                      f"{format_size(pmd)})")
    mi = None
    if host.has_runtime:
        try:
            mi = host.fact(meminfo)
        except (FactUnavailable, FactError):
            mi = None
    for granule, (sizes, pmd) in ARM64_SIZES.items():
        if mi is not None and mi.hugepagesize == pmd:
            shown = ", ".join(format_size(s) for s in sorted(sizes))
            return PageSizes(arch=ARM64, accepted=sizes, default_size=pmd, source="/proc/meminfo",
                             observed=f"arm64, Hugepagesize {format_size(pmd)}: a {format_size(granule)} granule, "
                                      f"{shown} huge pages")
    return PageSizes(arch=ARM64, accepted=None, source="kernel config",
                     observed="arm64: the granule is unknown (no kernel config), so are its huge page sizes")


def hugepage_sizes(host: HostReader) -> PageSizes:
    """The huge page sizes this host's kernel can reserve (use ``host.fact(hugepage_sizes)``)."""
    arch = arch_name(host)
    if arch == X86_64:
        return _cpu_sizes(host)
    if arch == ARM64:
        return _arm64_sizes(host)
    default = None
    if host.has_runtime:
        try:
            default = host.fact(meminfo).hugepagesize
        except (FactUnavailable, FactError):
            default = None
    return PageSizes(arch=arch, accepted=None, default_size=default, source="architecture",
                     observed=f"huge page sizes of {arch or 'an unknown architecture'} are not known to hostaudit")


# -- the command line, as the kernel reads it ---------------------------------------------------------


class Replay(Record):
    """The huge page parameters of one command line, read by one kernel on one CPU."""

    request: HugepageRequest  # the pools (where a size depends on the CPU: on a CPU that has it)
    without: HugepageRequest | None  # on a CPU that lacks the conditional sizes, when that differs
    notes: tuple[str, ...]  # per size the kernel rejects here: what becomes of the hugepages= after it
    conditional: tuple[str, ...]  # per size that depends on the CPU: the same, on a CPU without it
    problems: tuple[str, ...]  # the notes, then the parser's other problems
    rejected: frozenset[int] = frozenset()  # sizes named on the line that the kernel rejects here
    depends: frozenset[int] = frozenset()  # sizes named on the line that depend on the CPU


def _nonzero(pools: Mapping[int, int]) -> dict[int, int]:
    return {s: n for s, n in pools.items() if n}


def series(release: str | None) -> tuple[int, int] | None:
    """``4.18.0-513.el8.x86_64`` -> (4, 18)."""
    m = re.match(r"^\s*(\d+)\.(\d+)", release or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def _tok(p: Param) -> str:
    return p.name if p.value is None else f"{p.name}={p.value}"


def _size_of(p: Param) -> int | None:
    try:
        return parse_size(p.value or "")
    except ParseError:
        return None


def _following_count(params: Sequence[Param], i: int) -> int | None:
    """The index of the hugepages= the kernel reads right after params[i], before any other size."""
    for j in range(i + 1, len(params)):
        key = params[j].key
        if key == "hugepages":
            return j
        if key in _SIZE_KEYS:
            return None
    return None


def _landing(req: HugepageRequest, tok: str, default: int | None) -> str:
    """Where the kernel put ``tok`` (a hugepages= token) in ``req``, in words."""
    for size, toks in req.tokens.items():
        if tok in toks:
            if size == (req.default_size or default):
                return f"is given to the {format_size(size)} default"
            return f"is given to the {format_size(size)} pool named before it"
    if req.unsized_count is not None and tok not in req.ignored:
        return "is given to the default size"
    return "is ignored"


def replay(params: Iterable[Param], sizes: PageSizes, release: str | None) -> Replay:
    """The pools the kernel of ``release`` reserves from ``params`` on this host, with a note per
    size it rejects (or, where the CPU is unknown, may reject) and what becomes of the hugepages=
    that follows it. An unknown release is read as a current kernel."""
    plist = list(params)
    kernel = series(release)
    first = _run(plist, sizes, kernel, with_conditional=True)
    notes = _notes(plist, sizes, kernel, first, with_conditional=True)
    without: HugepageRequest | None = None
    conditional: list[str] = []
    if sizes.conditional:
        second = _run(plist, sizes, kernel, with_conditional=False)
        if _nonzero(second.pools) != _nonzero(first.pools) or second.default_size != first.default_size:
            without = second
            for line in _notes(plist, sizes, kernel, second, with_conditional=False):
                conditional.append(line)
    covered = set(_covered(plist, sizes, first))
    rest = [p for p in first.problems if p not in covered]
    named = {s for p in plist if p.key in _SIZE_KEYS and (s := _size_of(p)) is not None}
    valid = sizes.valid(with_conditional=False)
    return Replay(request=first, without=without, notes=tuple(notes), conditional=tuple(conditional),
                  problems=tuple(notes) + tuple(rest),
                  rejected=frozenset(s for s in named if valid is not None and s not in valid
                                     and s not in sizes.conditional),
                  depends=frozenset(s for s in named if s in sizes.conditional))


def _run(plist: list[Param], sizes: PageSizes, kernel: tuple[int, int] | None, *,
         with_conditional: bool) -> HugepageRequest:
    valid = sizes.valid(with_conditional=with_conditional)
    if kernel is None:
        return hugepage_request(plist, sizes.default_size, valid_sizes=valid)
    # Before the releases that ignore it, a rejected size left the parse state alone: replayed by
    # leaving the token out (audit.parsers.hugepages replays the current kernels).
    kept: list[Param] = []
    dropped: list[str] = []
    for p in plist:
        size = _size_of(p) if p.key in _SIZE_KEYS else None
        if valid is not None and size is not None and size not in valid:
            cut = HUGEPAGESZ_IGNORES_NEXT if p.key == "hugepagesz" else DEFAULT_SZ_IGNORES_NEXT
            if kernel < cut:
                dropped.append(_tok(p))
                continue
        kept.append(p)
    req = hugepage_request(kept, sizes.default_size, valid_sizes=valid)
    if kernel < DEFAULT_SZ_IGNORES_NEXT:
        req = _explicit_wins(kept, sizes, valid, req)
    return replace(req, ignored=req.ignored + tuple(t for t in dropped if t not in req.ignored)) if dropped else req


def _explicit_wins(kept: list[Param], sizes: PageSizes, valid: frozenset[int] | None,
                   req: HugepageRequest) -> HugepageRequest:
    """Before 5.8 a hugepages= given before any size lost to an explicit count for the default size
    (``hugetlb_init`` kept ``default_hstate.max_huge_pages`` when set); since 5.8 it wins."""
    first = next((i for i, p in enumerate(kept) if p.key in _SIZE_KEYS), None)
    if first is None:
        return req
    implicit = [i for i, p in enumerate(kept[:first]) if p.key == "hugepages"]
    if not implicit:
        return req
    explicit = hugepage_request([p for i, p in enumerate(kept) if i not in implicit], sizes.default_size,
                                valid_sizes=valid)
    size = explicit.default_size
    if size is None or not explicit.pools.get(size) or explicit.default_size != req.default_size:
        return req
    lost = " ".join(_tok(kept[i]) for i in implicit)
    won = " ".join(t for t in explicit.tokens.get(size, ()) if t.startswith("hugepages="))
    line = (f"{lost} before any hugepagesz= loses to {won} for the {format_size(size)} default (Linux < 5.8: an "
            "explicit count for the default size wins)")
    return replace(explicit, ignored=explicit.ignored + tuple(_tok(kept[i]) for i in implicit),
                   problems=(*explicit.problems, line))


def _notes(plist: list[Param], sizes: PageSizes, kernel: tuple[int, int] | None, req: HugepageRequest, *,
           with_conditional: bool) -> list[str]:
    valid = sizes.valid(with_conditional=with_conditional)
    if valid is None:
        return []
    out: list[str] = []
    for i, p in enumerate(plist):
        if p.key not in _SIZE_KEYS:
            continue
        size = _size_of(p)
        if size is None or size in valid:
            continue
        tok = _tok(p)
        if size in sizes.conditional:
            head = f"{tok}: only on {sizes.conditional[size]} (the CPU this system boots on is not known here)"
            lead = "without it, "
        else:
            head = f"{tok}: rejected, {sizes.why_not(size)}"
            lead = ""
        j = _following_count(plist, i)
        cut = HUGEPAGESZ_IGNORES_NEXT if p.key == "hugepagesz" else DEFAULT_SZ_IGNORES_NEXT
        since = f"{cut[0]}.{cut[1]}"
        if j is None:
            tail = "" if p.key == "hugepagesz" or not sizes.default_size else (
                f"; {lead}the default size stays {format_size(sizes.default_size)}")
            out.append(head + tail)
            continue
        nxt = _tok(plist[j])
        if kernel is None:
            older = _older_landing(plist, sizes, i, j, with_conditional)
            out.append(f"{head}; {lead}the following {nxt} is ignored (Linux >= {since}; before {since} it "
                       f"{older})")
        elif kernel >= cut:
            out.append(f"{head}; {lead}the following {nxt} is ignored (Linux >= {since})")
        else:
            out.append(f"{head}; {lead}the following {nxt} {_landing(req, nxt, sizes.default_size)} "
                       f"(Linux < {since})")
    return out


def _older_landing(plist: list[Param], sizes: PageSizes, i: int, j: int, with_conditional: bool) -> str:
    """Where a kernel older than the cut puts params[j] (for a release not known here)."""
    old = (4, 6) if plist[i].key == "hugepagesz" else (5, 7)
    req = _run(plist, sizes, old, with_conditional=with_conditional)
    return _landing(req, _tok(plist[j]), sizes.default_size).replace("is given", "was given").replace(
        "is ignored", "was ignored", 1)


def _covered(plist: list[Param], sizes: PageSizes, req: HugepageRequest) -> list[str]:
    """The parser's problem lines that the notes say better: the rejected size, and the
    hugepages= it makes the kernel ignore."""
    valid = sizes.valid()
    if valid is None:
        return []
    out = []
    for i, p in enumerate(plist):
        size = _size_of(p) if p.key in _SIZE_KEYS else None
        if size is None or size in valid:
            continue
        tok = _tok(p)
        out += [line for line in req.problems if line.startswith(f"{tok}: unsupported huge page size")]
        j = _following_count(plist, i)
        if j is not None:
            out.append(f"{_tok(plist[j])}: does not follow a valid hugepagesz=; ignored")
    return out


__all__ = ["ARM64_SIZES", "PageSizes", "Replay", "hugepage_sizes", "replay", "series"]
