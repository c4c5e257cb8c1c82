"""libvirt domain XML as ``virsh dumpxml`` writes it, read into what ``guest check`` judges: the CPU
definition, memory and huge page backing, architecture and machine type.

The XML is untrusted input and is read with bounds: at most MAX_BYTES, UTF-8 only, no DOCTYPE (so
no entity can be declared, expanded or fetched: expat refuses undeclared entities), at most
MAX_DEPTH levels and MAX_ELEMENTS elements. CPU model and feature names must look like libvirt's
(letters, digits, ``_ . -``), so no markup from the file can reach any output through them; the
domain name is kept as data and escaped by each output format.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from audit.errors import UsageError
from audit.parsers import xmltree
from audit.record import Record

MAX_BYTES = 4 << 20  # a dumpxml of a guest with hundreds of devices is well under 1 MiB
MAX_DEPTH = 64  # domain XML nests about 8 deep
MAX_ELEMENTS = 100_000
MAX_NAME = 1024

#: libvirt's CPU feature and model names ("sse4.2", "Skylake-Client-IBRS", "amd-ssbd", "tsc_adjust")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}\Z")

POLICIES = ("force", "require", "optional", "disable", "forbid")
MODES = ("custom", "host-model", "host-passthrough", "maximum")

_SCALE = {"k": 1, "m": 2, "g": 3, "t": 4, "p": 5, "e": 6}


class Feature(Record):
    policy: str  # one of POLICIES
    name: str  # libvirt spelling


class Page(Record):
    size: int | None  # bytes; None: the destination's default huge page size
    nodeset: str | None  # guest NUMA cells this size backs; None: every cell not named elsewhere


class Cell(Record):
    id: int
    memory: int  # bytes


class Domain(Record):
    source: str  # the file it was read from
    name: str
    running: bool  # live XML: <domain id='N'> (virsh dumpxml of a running guest)
    virt_type: str | None  # 'kvm', 'qemu'
    arch: str | None  # 'x86_64', 'i686', 'aarch64', ...
    machine: str | None  # 'pc-q35-8.2'
    cpu_mode: str | None  # one of MODES; None: no <cpu> model given (the hypervisor's default CPU)
    match: str | None
    check: str | None
    model: str | None
    fallback: str | None
    vendor: str | None  # <vendor>Intel</vendor>
    features: tuple[Feature, ...]
    memory: int | None  # bytes, <memory>
    current_memory: int | None  # bytes, <currentMemory>
    hugepages: bool
    pages: tuple[Page, ...]
    memfd: bool  # <memoryBacking><source type='memfd'/>: huge pages without a hugetlbfs mount
    cells: tuple[Cell, ...]  # <cpu><numa><cell>

    @property
    def expanded(self) -> bool:
        """A CPU given as a model plus features: custom, or a host-model libvirt already expanded."""
        return self.model is not None and self.cpu_mode in ("custom", "host-model")


class DomainError(UsageError):
    """A domain XML file hostaudit will not read (one line naming the file)."""


def scale(value: str, unit: str | None, *, what: str, default: str = "KiB") -> int:
    """Bytes from a libvirt scaled integer (virScaleInteger): b/bytes, k/KiB = 1024, KB = 1000, ..."""
    text = (value or "").strip()
    if not text.isdigit() or len(text) > 20:
        raise ValueError(f"{what}: not a whole number: {text[:40]!r}")
    u = (unit or default).strip()
    if u in ("b", "bytes"):
        factor = 1
    elif u and u[0].lower() in _SCALE and u[1:] in ("", "iB", "B"):
        factor = (1000 if u[1:] == "B" else 1024) ** _SCALE[u[0].lower()]
    else:
        raise ValueError(f"{what}: unknown unit {u[:20]!r}")
    n = int(text) * factor
    if n >= 1 << 64:
        raise ValueError(f"{what}: {text} {u} is too large")
    return n


def parse_nodeset(text: str) -> frozenset[int]:
    """libvirt's node set syntax: '0,2-3', '0-7,^5'."""
    include: set[int] = set()
    exclude: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        target = exclude if part.startswith("^") else include
        part = part.lstrip("^")
        lo, _, hi = part.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()) or len(part) > 12:
            raise ValueError(f"not a node set: {text[:40]!r}")
        a, b = int(lo), int(hi or lo)
        if b < a or b - a > 4096:
            raise ValueError(f"not a node set: {text[:40]!r}")
        target.update(range(a, b + 1))
    return frozenset(include - exclude)


def _tree(blob: bytes, path: str) -> ET.Element:
    try:
        return xmltree.bounded_tree(blob, max_bytes=MAX_BYTES, max_depth=MAX_DEPTH, max_elements=MAX_ELEMENTS,
                                    doctype_note="domain XML never does")
    except xmltree.XmlRefused as exc:
        raise DomainError(f"domain XML {path}: {exc}") from None


def _text(el: ET.Element | None) -> str | None:
    if el is None or el.text is None:
        return None
    return el.text.strip() or None


def _checked_name(value: str | None, what: str, path: str) -> str | None:
    if value is None:
        return None
    if not NAME.match(value):
        raise DomainError(f"domain XML {path}: {what} is not a libvirt CPU name "
                          "(letters, digits, '_', '.', '+', '-'; at most 64)")
    return value


def parse_domain(blob: bytes, path: str) -> Domain:
    """One domain from ``virsh dumpxml`` output (the bytes of ``path``), or DomainError."""
    root = _tree(blob, path)
    if root.tag != "domain":
        raise DomainError(f"domain XML {path}: the top element is not <domain> (virsh dumpxml writes one)")
    try:
        return _domain(root, path)
    except ValueError as exc:
        raise DomainError(f"domain XML {path}: {exc}") from None


def _domain(root: ET.Element, path: str) -> Domain:
    name = _text(root.find("name"))
    if not name:
        raise ValueError("no <name>")
    if len(name) > MAX_NAME:
        raise ValueError(f"<name> is longer than {MAX_NAME} characters")
    ostype = root.find("os/type")
    cpu = root.find("cpu")
    mode = model = fallback = vendor = match = check = None
    features: list[Feature] = []
    cells: list[Cell] = []
    if cpu is not None:
        mode = cpu.get("mode")
        if mode is not None and mode not in MODES:
            raise ValueError(f"<cpu mode=…> is not one of {', '.join(MODES)}")
        model_el = cpu.find("model")
        model = _checked_name(_text(model_el), "<cpu><model>", path)
        fallback = model_el.get("fallback") if model_el is not None else None
        vendor = _checked_name(_text(cpu.find("vendor")), "<cpu><vendor>", path)
        match, check = cpu.get("match"), cpu.get("check")
        if mode is None and (model is not None or cpu.find("feature") is not None):
            mode = "custom"  # libvirt's default mode when a model or features are given
        for i, f in enumerate(cpu.findall("feature"), 1):
            policy = f.get("policy", "require")
            if policy not in POLICIES:
                raise ValueError(f"<cpu> feature #{i}: policy is not one of {', '.join(POLICIES)}")
            fname = _checked_name(f.get("name"), f"<cpu> feature #{i}'s name", path)
            if fname is None:
                raise ValueError(f"<cpu> feature #{i} has no name")
            features.append(Feature(policy, fname))
        for c in cpu.findall("numa/cell"):
            cid = c.get("id", str(len(cells)))
            if not cid.isdigit() or len(cid) > 6:
                raise ValueError("<numa><cell id=…> is not a number")
            cells.append(Cell(int(cid), scale(c.get("memory", ""), c.get("unit"), what="<numa><cell memory>")))
    mem = root.find("memory")
    cur = root.find("currentMemory")
    backing = root.find("memoryBacking")
    hp = backing.find("hugepages") if backing is not None else None
    pages: list[Page] = []
    if hp is not None:
        for p in hp.findall("page"):
            size = scale(p.get("size", ""), p.get("unit"), what="<hugepages><page size>")
            nodeset = p.get("nodeset")
            if nodeset is not None:
                parse_nodeset(nodeset)  # checked here, used by the judgement
            pages.append(Page(size or None, nodeset))
    source = backing.find("source") if backing is not None else None
    return Domain(
        source=path,
        name=name,
        running=root.get("id") not in (None, "-1"),
        virt_type=root.get("type"),
        arch=ostype.get("arch") if ostype is not None else None,
        machine=ostype.get("machine") if ostype is not None else None,
        cpu_mode=mode,
        match=match,
        check=check,
        model=model,
        fallback=fallback,
        vendor=vendor,
        features=tuple(features),
        memory=scale(mem.text or "", mem.get("unit"), what="<memory>") if mem is not None else None,
        current_memory=(scale(cur.text or "", cur.get("unit"), what="<currentMemory>")
                        if cur is not None else None),
        hugepages=hp is not None,
        pages=tuple(pages),
        memfd=source is not None and source.get("type") == "memfd",
        cells=tuple(cells),
    )


def load_domain(path: str) -> Domain:
    from audit.inputfile import read_user_file

    return parse_domain(read_user_file(path, what="domain XML", cap=MAX_BYTES), path)
