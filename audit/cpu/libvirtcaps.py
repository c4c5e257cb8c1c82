"""What libvirt says QEMU/KVM can give a guest: ``virsh domcapabilities`` output, libvirt's QEMU
capabilities cache (``/var/cache/libvirt/qemu/capabilities/*.xml``) and ``virsh capabilities``.

All three are untrusted input read with audit.parsers.xmltree: at most MAX_BYTES, UTF-8,
no DOCTYPE (so no entity is declared, expanded or fetched), at most MAX_DEPTH levels and
MAX_ELEMENTS elements. Every CPU model, feature, property and machine name kept must look like a
libvirt or QEMU name (letters, digits, ``_ . + -``), so no markup from a file reaches any output
through them. The cache is libvirt's internal, unversioned format: only the elements read here are
relied on (``<hostCPU><property>``, ``<cpu usable=…>`` and its ``<blocker>``s, ``<machine>``,
``<kernelVersion>``, ``<microcodeVersion>``, ``<hostCPUSignature>``), as libvirt's own
tests/qemucapabilitiesdata and its writer (src/qemu/qemu_capabilities.c, virQEMUCapsFormatCache)
have them.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from audit.errors import UsageError
from audit.parsers import xmltree
from audit.record import Record

MAX_BYTES = 8 << 20  # libvirt's own caps_*.xml are 150-300 KB; domcapabilities about 10 KB
MAX_DEPTH = 32  # these documents nest about 6 deep
MAX_ELEMENTS = 200_000

#: CPU model, feature, QEMU property and machine type names ("pc-q35-7.2", "sse4.2", "EPYC-Rome")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}\Z")
_POLICIES = ("force", "require", "optional", "disable", "forbid")

#: libvirt's <vendor> in domcapabilities, as /proc/cpuinfo's vendor_id spells it
VENDOR_ID = {"Intel": "GenuineIntel", "AMD": "AuthenticAMD", "Hygon": "HygonGenuine"}
#: libvirt's guest arch names, as audit.parsers.cpuinfo names the host's
ARCH = {"x86_64": "x86", "i686": "x86", "aarch64": "arm64", "armv7l": "arm", "s390x": "s390x",
        "ppc64": "powerpc", "ppc64le": "powerpc"}

KIND_DOMCAPS = "domcapabilities"
KIND_CACHE = "qemu-caps-cache"
KIND_CAPS = "capabilities"


class CapsError(UsageError):
    """A libvirt capabilities file hostaudit will not read (one line naming the file)."""


class Feature(Record):
    policy: str
    name: str  # libvirt spelling


class CapsGuest(Record):
    """One guest architecture of ``virsh capabilities`` that KVM runs."""

    arch: str  # libvirt's: 'x86_64', 'i686'
    emulator: str | None
    machines: tuple[str, ...]  # names and the aliases (libvirt's canonical='…' entries are aliases)


class Cell(Record):
    """One NUMA cell of ``virsh capabilities`` <host><topology>."""

    id: int
    memory: int | None  # bytes
    pages: tuple[tuple[int, int], ...]  # (page size in bytes, pages configured: the pool, not what is free)
    cpus: int | None


class GuestCpu(Record):
    """What one QEMU binary under KVM offers guests, from one file."""

    source: str  # the file it was read from
    kind: str  # KIND_DOMCAPS, KIND_CACHE or KIND_CAPS
    arch: str | None  # libvirt's: 'x86_64', 'aarch64'
    virt_type: str | None  # 'kvm', 'qemu' (domcapabilities <domain>)
    emulator: str | None
    host_model: str | None  # domcapabilities host-model <model>
    vendor: str | None  # 'Intel', 'AMD', 'Hygon' (host-model <vendor>, or the cache's vendor property)
    features: tuple[Feature, ...]  # host-model features beyond the model (domcapabilities)
    host_props: tuple[str, ...]  # cache: QEMU properties of the KVM host CPU whose value is true
    usable: tuple[str, ...]  # custom models usable here (KVM)
    unusable: tuple[str, ...]
    machines: tuple[str, ...]  # KVM machine types, names and aliases
    machines_complete: bool  # False: domcapabilities names only the machine it was asked about
    kernel_version: str | None  # cache: 'release version' of the kernel it was probed under
    microcode_version: int | None  # cache: /proc/cpuinfo microcode it was probed under
    qemu_version: str | None  # cache <version> 7002000 -> '7.2.0'
    #: model -> the features that keep it from being usable here (domcapabilities: libvirt names;
    #: the cache: QEMU names), where libvirt recorded them
    blockers: tuple[tuple[str, tuple[str, ...]], ...] = ()
    host_cpu_signature: str | None = None  # cache <hostCPUSignature> (libvirt 6.x and later)
    guests: tuple[CapsGuest, ...] = ()  # capabilities: KVM machine types of every guest arch
    topology: tuple[Cell, ...] = ()  # capabilities: <host><topology> NUMA cells
    usable_unknown: tuple[str, ...] = ()  # models listed with usable='unknown' (or without usable=)

    @property
    def has_cpu_view(self) -> bool:
        """A guest-CPU view: host-model (domcapabilities) or the KVM host CPU (cache)."""
        return self.host_model is not None or bool(self.host_props)

    def offers_machine(self, machine: str, arch: str | None = None) -> bool | None:
        """True/False when known; None when this file cannot say (domcapabilities of another
        machine, or of another guest arch than ``arch``, libvirt's name)."""
        machines, complete = self.machines, self.machines_complete
        if arch is not None and self.guests:
            g = next((g for g in self.guests if g.arch == arch), None)
            if g is None:
                return False  # virsh capabilities lists every arch KVM runs: not this one
            machines, complete = g.machines, True
        elif arch is not None and self.arch is not None and arch != self.arch:
            return None
        if machine in machines:
            return True
        return False if complete and machines else None

    @property
    def lists_models(self) -> bool:
        """Names the CPU models QEMU offers under KVM here, usable or not (domcapabilities of a
        KVM domain, the cache): a model it does not name, QEMU there does not know."""
        return bool(self.usable or self.unusable) and self.virt_type in ("kvm", None)

    def model_usable(self, model: str) -> bool | None:
        """QEMU/KVM's own answer for a named CPU model: False also for a model QEMU there does not
        list at all; None when this file does not say."""
        if not self.lists_models or model in self.usable_unknown:
            return None
        return model in self.usable

    def blockers_of(self, model: str) -> tuple[str, ...]:
        return next((b for m, b in self.blockers if m == model), ())

    @property
    def label(self) -> str:
        """'domcapabilities web2-domcaps.xml', for reasons that name their source."""
        return f"{self.kind} {self.source}"

    def describe(self) -> dict[str, object]:
        return {"source": self.source, "kind": self.kind, "arch": self.arch, "host_model": self.host_model,
                "vendor": self.vendor, "usable_models": list(self.usable), "machines": list(self.machines),
                "machines_complete": self.machines_complete, "kernel_version": self.kernel_version,
                "microcode_version": self.microcode_version, "qemu_version": self.qemu_version,
                "host_cpu_signature": self.host_cpu_signature,
                "guest_arches": {g.arch: list(g.machines) for g in self.guests} or None}


# ------------------------------------------------------------------------------------------------
# bounded XML
# ------------------------------------------------------------------------------------------------
def bounded_tree(blob: bytes, path: str, what: str = "libvirt XML") -> ET.Element:
    """The element tree of ``blob``, or CapsError naming ``what`` and ``path``."""
    try:
        return xmltree.bounded_tree(blob, max_bytes=MAX_BYTES, max_depth=MAX_DEPTH, max_elements=MAX_ELEMENTS,
                                    doctype_note="libvirt never writes one")
    except xmltree.XmlRefused as exc:
        raise CapsError(f"{what} {path}: {exc}") from None


def looks_like_xml(blob: bytes) -> bool:
    """Starts with markup: read as libvirt XML (which then refuses a DOCTYPE or another root)."""
    return blob[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def root_kind(blob: bytes) -> str | None:
    """KIND_* from the root element's name in the first bytes, without parsing; None otherwise."""
    head = blob[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    while head.startswith((b"<?", b"<!--")):  # an XML declaration, comments
        close = b"?>" if head.startswith(b"<?") else b"-->"
        end = head.find(close)
        if end < 0:
            return None
        head = head[end + len(close):].lstrip()
    for tag, kind in ((b"<domainCapabilities", KIND_DOMCAPS), (b"<qemuCaps", KIND_CACHE),
                      (b"<capabilities", KIND_CAPS)):
        if head.startswith(tag) and head[len(tag):len(tag) + 1] in (b">", b" ", b"\n", b"\t", b"\r", b"/"):
            return kind
    return None


def _text(el: ET.Element | None) -> str | None:
    if el is None or el.text is None:
        return None
    return el.text.strip() or None


def _name(value: str | None, what: str) -> str:
    if value is None or not NAME.match(value):
        raise ValueError(f"{what} is not a libvirt or QEMU name (letters, digits, '_', '.', '+', '-'; at most 64)")
    return value


def _short(value: str | None, what: str, limit: int = 512) -> str | None:
    if value is None:
        return None
    if len(value) > limit or any(ord(c) < 32 for c in value):
        raise ValueError(f"{what} is longer than {limit} characters or holds control characters")
    return value


# ------------------------------------------------------------------------------------------------
# the three formats
# ------------------------------------------------------------------------------------------------
def parse_domcapabilities(root: ET.Element, path: str) -> GuestCpu:
    cpu = root.find("cpu")
    host_model = vendor = None
    features: list[Feature] = []
    usable: list[str] = []
    unusable: list[str] = []
    unknown: list[str] = []
    blockers: list[tuple[str, tuple[str, ...]]] = []
    if cpu is not None:
        for mode in cpu.findall("mode"):
            if mode.get("supported") != "yes":
                continue
            if mode.get("name") == "host-model":
                model = _text(mode.find("model"))
                host_model = _name(model, "host-model <model>") if model is not None else None
                v = _text(mode.find("vendor"))
                vendor = _name(v, "host-model <vendor>") if v is not None else None
                for i, f in enumerate(mode.findall("feature"), 1):
                    policy = f.get("policy", "require")
                    if policy not in _POLICIES:
                        raise ValueError(f"host-model feature #{i}: policy is not one of {', '.join(_POLICIES)}")
                    features.append(Feature(policy, _name(f.get("name"), f"host-model feature #{i}'s name")))
            elif mode.get("name") == "custom":
                for m in mode.findall("model"):
                    name = _name(_text(m), "custom <model>")
                    _sort_usable(name, m.get("usable"), usable, unusable, unknown)
                for i, b in enumerate(mode.findall("blockers"), 1):  # libvirt 10.x and later
                    model = _name(b.get("model"), f"custom <blockers> #{i}'s model")
                    blockers.append((model, tuple(dict.fromkeys(  # once each, in the order given
                        _name(f.get("name"), f"<blockers model='{model}'> feature") for f in b.findall("feature")))))
    machine = _text(root.find("machine"))
    return GuestCpu(
        source=path, kind=KIND_DOMCAPS, arch=_short(_text(root.find("arch")), "<arch>", 32),
        virt_type=_short(_text(root.find("domain")), "<domain>", 32),
        emulator=_short(_text(root.find("path")), "<path>"),
        host_model=host_model, vendor=vendor, features=tuple(features), host_props=(),
        usable=tuple(usable), unusable=tuple(unusable),
        machines=(_name(machine, "<machine>"),) if machine else (), machines_complete=False,
        kernel_version=None, microcode_version=None, qemu_version=None, blockers=tuple(blockers),
        usable_unknown=tuple(unknown))


def _sort_usable(name: str, usable: str | None, yes: list[str], no: list[str], unknown: list[str]) -> None:
    """libvirt writes usable='yes', 'no', or 'unknown' (or nothing: QEMU did not say)."""
    (yes if usable == "yes" else no if usable == "no" else unknown).append(name)


def _qemu_version(text: str | None) -> str | None:
    if not text or not text.isdigit() or len(text) > 12:
        return None
    n = int(text)
    return f"{n // 1_000_000}.{n // 1000 % 1000}.{n % 1000}"


_VENDOR_NAME = {v: k for k, v in VENDOR_ID.items()}


def parse_cache(root: ET.Element, path: str) -> GuestCpu:
    host = next((h for h in root.findall("hostCPU") if h.get("type") == "kvm"), None)
    props: list[str] = []
    vendor = None
    if host is not None:
        for i, p in enumerate(host.findall("property"), 1):
            name = _name(p.get("name"), f"<hostCPU> property #{i}'s name")
            if p.get("type") == "boolean" and p.get("value") == "true":
                props.append(name)
            elif name == "vendor":
                vendor = _VENDOR_NAME.get(p.get("value") or "")
    usable: list[str] = []
    unusable: list[str] = []
    unknown: list[str] = []
    blockers: list[tuple[str, tuple[str, ...]]] = []
    for c in root.findall("cpu"):
        if c.get("type") != "kvm":
            continue
        name = _name(c.get("name"), "<cpu name=…>")
        _sort_usable(name, c.get("usable"), usable, unusable, unknown)
        # once each, in the order given: QEMU 7.2 names pku twice for EPYC-Milan (libvirt's caps_7.2.0)
        blocked = tuple(dict.fromkeys(_name(b.get("name"), f"<cpu name='{name}'> blocker")
                                      for b in c.findall("blocker")))
        if blocked:
            blockers.append((name, blocked))
    machines: list[str] = []
    for m in root.findall("machine"):
        if m.get("type") != "kvm":
            continue
        machines.append(_name(m.get("name"), "<machine name=…>"))
        if m.get("alias"):
            machines.append(_name(m.get("alias"), "<machine alias=…>"))
    micro = _text(root.find("microcodeVersion"))
    if micro is not None and (not micro.isdigit() or len(micro) > 10):
        raise ValueError("<microcodeVersion> is not a whole number")
    return GuestCpu(
        source=path, kind=KIND_CACHE, arch=_short(_text(root.find("arch")), "<arch>", 32), virt_type="kvm",
        emulator=_short(_text(root.find("emulator")), "<emulator>"),
        host_model=None, vendor=vendor, features=(), host_props=tuple(props),
        usable=tuple(usable), unusable=tuple(unusable),
        machines=tuple(dict.fromkeys(machines)), machines_complete=bool(machines),
        kernel_version=_short(_text(root.find("kernelVersion")), "<kernelVersion>"),
        microcode_version=int(micro) if micro is not None else None,
        qemu_version=_qemu_version(_text(root.find("version"))), blockers=tuple(blockers),
        host_cpu_signature=_short(_text(root.find("hostCPUSignature")), "<hostCPUSignature>"),
        usable_unknown=tuple(unknown))


def parse_capabilities(root: ET.Element, path: str, arch: str | None = None) -> GuestCpu:
    """``virsh capabilities``: the KVM machine types of every guest arch, and the NUMA topology.
    ``machines`` are those of ``arch``, else of the host's own arch (<host><cpu><arch>), else of the
    first arch KVM runs. Its <host><cpu> is the physical CPU: never read as the guest view."""
    guests: list[CapsGuest] = []
    for i, guest in enumerate(root.findall("guest"), 1):
        a = guest.find("arch")
        kvm = next((d for d in a.findall("domain") if d.get("type") == "kvm"), None) if a is not None else None
        if a is None or kvm is None:
            continue
        name = _name(a.get("name"), f"<guest> #{i}'s <arch name=…>")
        # a <domain type='kvm'> without machines of its own offers the arch's
        machines = [_name(_text(m), "<machine>") for m in kvm.findall("machine") or a.findall("machine")]
        emulator = _short(_text(kvm.find("emulator")) or _text(a.find("emulator")), "<emulator>")
        if any(g.arch == name for g in guests):  # hvm and another os_type of one arch: merge
            old = next(g for g in guests if g.arch == name)
            guests[guests.index(old)] = old._replace(machines=tuple(dict.fromkeys((*old.machines, *machines))))
        else:
            guests.append(CapsGuest(name, emulator, tuple(dict.fromkeys(machines))))
    host_arch = _text(root.find("host/cpu/arch"))
    want = arch or host_arch
    chosen = next((g for g in guests if g.arch == want), None)
    if chosen is None and arch is None and guests:
        chosen = guests[0]
    return GuestCpu(
        source=path, kind=KIND_CAPS, arch=_short(chosen.arch if chosen else arch, "<arch name=…>", 32),
        virt_type="kvm", emulator=chosen.emulator if chosen else None, host_model=None, vendor=None,
        features=(), host_props=(), usable=(), unusable=(),
        machines=chosen.machines if chosen else (), machines_complete=chosen is not None and bool(chosen.machines),
        kernel_version=None, microcode_version=None, qemu_version=None, guests=tuple(guests),
        topology=_topology(root))


_MAX_CELLS = 1024
_UNITS = {"b": 0, "bytes": 0, "KiB": 10, "k": 10, "MiB": 20, "M": 20, "GiB": 30, "G": 30, "TiB": 40, "T": 40}


def _bytes(value: str | None, unit: str | None, what: str) -> int:
    """A <memory>/<pages> value in bytes; libvirt writes unit='KiB' in capabilities."""
    text = (value or "").strip()
    shift = _UNITS.get(unit or "KiB")
    if not text.isdigit() or len(text) > 20 or shift is None:
        raise ValueError(f"{what}: not a whole number of a known unit")
    return int(text) << shift


def _topology(root: ET.Element) -> tuple[Cell, ...]:
    """<host><topology><cells>: memory, huge page pools (per size: pages configured) and CPUs of
    each NUMA cell, as libvirt reads them from sysfs."""
    cells: list[Cell] = []
    for i, c in enumerate(root.findall("host/topology/cells/cell"), 1):
        if i > _MAX_CELLS:
            raise ValueError(f"more than {_MAX_CELLS} NUMA cells")
        where = f"<topology> cell #{i}"
        cid = c.get("id") or ""
        if not cid.isdigit() or len(cid) > 6:
            raise ValueError(f"{where}: id is not a whole number")
        mem = c.find("memory")
        memory = _bytes(_text(mem), mem.get("unit"), f"{where} <memory>") if mem is not None else None
        pages = []
        for p in c.findall("pages"):
            size = _bytes(p.get("size"), p.get("unit"), f"{where} <pages size=…>")
            count = _text(p) or "0"
            if not count.isdigit() or len(count) > 20:
                raise ValueError(f"{where}: <pages> count is not a whole number")
            pages.append((size, int(count)))
        cpus = c.find("cpus")
        num = cpus.get("num") if cpus is not None else None
        cells.append(Cell(int(cid), memory, tuple(pages),
                          int(num) if num is not None and num.isdigit() and len(num) < 7 else None))
    return tuple(cells)


def parse_caps(blob: bytes, path: str, *, arch: str | None = None) -> GuestCpu:
    """Any of the three formats, told apart by the root element; CapsError otherwise."""
    what = {KIND_DOMCAPS: "domcapabilities XML", KIND_CACHE: "QEMU capabilities cache",
            KIND_CAPS: "capabilities XML"}.get(root_kind(blob) or "", "libvirt XML")
    root = bounded_tree(blob, path, what)
    try:
        if root.tag == "domainCapabilities":
            return parse_domcapabilities(root, path)
        if root.tag == "qemuCaps":
            return parse_cache(root, path)
        if root.tag == "capabilities":
            return parse_capabilities(root, path, arch)
    except ValueError as exc:
        raise CapsError(f"{what} {path}: {exc}") from None
    raise CapsError(f"{what} {path}: the top element is not <domainCapabilities>, <qemuCaps> or <capabilities>")


# ------------------------------------------------------------------------------------------------
# the guest-CPU view in Linux flag names, and staleness
# ------------------------------------------------------------------------------------------------
def guest_flags(caps: GuestCpu) -> frozenset[str]:
    """The guest CPU as /proc/cpuinfo-style flag names (audit.cpu.models' spelling).

    domcapabilities: the host-model's named model's features, plus its required and forced
    features, minus those it disables; cache: the KVM host CPU's true QEMU properties. QEMU and
    libvirt names are translated by the model table (``normalise``)."""
    from audit.cpu import models as cm

    table = cm.load_table()
    if caps.host_props:  # QEMU also has true properties that are no CPUID feature ('migratable', 'pmu')
        return frozenset(f for f in cm.normalise(caps.host_props, table) if f in table.known)
    if caps.host_model is None:
        return frozenset()
    m = table.models.get(caps.host_model)
    base = set(m.features) if m is not None else set()
    on = cm.normalise([f.name for f in caps.features if f.policy in ("require", "force")], table)
    off = cm.normalise([f.name for f in caps.features if f.policy in ("disable", "forbid")], table)
    return frozenset((base | on) - off)


def cpuinfo_microcode(text: str) -> int | None:
    """The first ``microcode`` value of /proc/cpuinfo as libvirt reads it (strtoul base 0); None
    when there is none (not x86, a VM, an old kernel)."""
    for i, line in enumerate(text.splitlines()):
        if i > 4096:
            break
        key, sep, value = line.partition(":")
        if sep and key.strip() == "microcode":
            v = value.strip()
            try:
                return int(v, 0) if len(v) <= 20 else None
            except ValueError:
                return None
    return None


def host_microcode(cpuinfo: str, arch: str | None) -> int | None:
    """The microcode revision libvirt would record for this host: the first ``microcode`` value in
    the first 4 KiB of /proc/cpuinfo, 0 when there is none (libvirt's virHostCPUGetMicrocodeVersion);
    None off x86, where libvirt records 0 whatever the CPU."""
    if ARCH.get(arch or "") != "x86":
        return None
    return cpuinfo_microcode(cpuinfo[:4096]) or 0


_SIGNATURE_KEYS = {
    "x86": ("vendor_id", "model name", "cpu family", "model", "stepping"),
    "powerpc": ("cpu", "revision"),
    "s390x": ("vendor_id", "processor 0", "facilities"),
}


def cpuinfo_signature(cpuinfo: str, arch: str | None) -> str | None:
    """The host CPU signature libvirt records in the cache as <hostCPUSignature>, built from
    /proc/cpuinfo as libvirt's virHostCPUReadSignature does: the first value of each key (a line
    split at the first ': '), x86 'vendor, model name, family: F, model: M, stepping: S', POWER
    'cpu, rev R', s390x 'vendor, processor 0, facilities: F'. None for other architectures or when
    a key is missing."""
    kind = ARCH.get(arch or "")
    keys = _SIGNATURE_KEYS.get(kind or "")
    if keys is None:
        return None
    got: dict[str, str] = {}
    for i, line in enumerate(cpuinfo.splitlines()):
        if i > 65536:
            break
        key, sep, value = line.partition(": ")
        key = key.strip()
        if sep and key in keys and key not in got:
            got[key] = value.strip()
            if len(got) == len(keys):
                break
    if len(got) < len(keys):
        return None
    v = [got[k] for k in keys]
    if kind == "x86":
        return f"{v[0]}, {v[1]}, family: {v[2]}, model: {v[3]}, stepping: {v[4]}"
    if kind == "powerpc":
        return f"{v[0]}, rev {v[1]}"
    return f"{v[0]}, {v[1]}, facilities: {v[2]}"


def staleness(caps: GuestCpu, *, kernel_release: str | None, kernel_version: str | None = None,
              microcode: int | None = None, signature: str | None = None) -> list[str]:
    """Why the cache no longer describes this host (empty: it does, as far as can be told).

    libvirt re-probes QEMU when the host CPU signature (<hostCPUSignature>, libvirt 6.x and
    later), the microcode revision (<microcodeVersion>) or ``uname -r`` + ``uname -v``
    (<kernelVersion>) differ from what the file records (qemu_capabilities.c, virQEMUCapsIsValid);
    a file still holding other values was written on another CPU, microcode or kernel than the
    host's. Values the host does not give are not compared (see ``unchecked``)."""
    out: list[str] = []
    if caps.kind != KIND_CACHE:
        return out
    if caps.kernel_version and kernel_release:
        probed_release = caps.kernel_version.split(" ", 1)[0]
        if probed_release != kernel_release:
            out.append(f"probed under kernel {probed_release}, the host runs {kernel_release}")
        elif kernel_version and caps.kernel_version != f"{kernel_release} {kernel_version}":
            out.append("probed under another build of kernel " + kernel_release)
    if caps.microcode_version is not None and microcode is not None and caps.microcode_version != microcode:
        out.append(f"probed under microcode {caps.microcode_version:#x}, the host has {microcode:#x}")
    if caps.host_cpu_signature and signature and caps.host_cpu_signature != signature:
        out.append(f"probed on another CPU ('{caps.host_cpu_signature}'; the host: '{signature}')")
    return out


def unchecked(caps: GuestCpu, *, kernel_release: str | None, microcode: int | None,
              signature: str | None) -> list[str]:
    """What ``staleness`` could not compare, and why (for the notes: a cache is then only as
    current as far as it could be told)."""
    out: list[str] = []
    if caps.kind != KIND_CACHE:
        return out
    if caps.host_cpu_signature and signature is None:
        out.append("the host CPU signature (the host's /proc/cpuinfo is not known)")
    if caps.microcode_version is not None and microcode is None and ARCH.get(caps.arch or "") == "x86":
        out.append("the microcode revision (the host's /proc/cpuinfo is not known)")
    if not caps.kernel_version:
        out.append("the kernel (the file records none)")
    elif kernel_release is None:
        out.append("the kernel (the host's running kernel is not known)")
    return out


# ------------------------------------------------------------------------------------------------
# the cache of an audited host (audit.host.libvirtcaps reads the files)
# ------------------------------------------------------------------------------------------------
class CachedCaps(Record):
    caps: GuestCpu
    path: str  # inside the root
    stale: tuple[str, ...]  # why it no longer describes the host; empty when current or not known
    unchecked: tuple[str, ...] = ()  # what could not be compared with the host, and why


def cache_entries(host: object) -> tuple[CachedCaps, ...]:
    """The host's QEMU capabilities cache, parsed, each with why it is stale. FactUnavailable when
    there is none; CapsError naming the file when one is refused."""
    from audit.host.libvirtcaps import qemu_caps_cache

    got = host.fact(qemu_caps_cache)  # type: ignore[attr-defined]
    out = []
    for path, blob in got.files:
        caps = parse_caps(blob, path)
        if caps.kind != KIND_CACHE:
            raise CapsError(f"QEMU capabilities cache {path}: not a cache file (no <qemuCaps>)")
        # libvirt compares with its own host's values: the cache of a guest arch is judged by the host's
        text = got.cpuinfo
        microcode = host_microcode(text, caps.arch) if text is not None else None
        signature = cpuinfo_signature(text, caps.arch) if text is not None else None
        stale = staleness(caps, kernel_release=got.kernel_release, kernel_version=got.kernel_version,
                          microcode=microcode, signature=signature)
        unknown = unchecked(caps, kernel_release=got.kernel_release, microcode=microcode, signature=signature)
        out.append(CachedCaps(caps, path, tuple(stale), tuple(unknown)))
    return tuple(out)


def kvm_caps(host: object, arch: str | None) -> tuple[CachedCaps | None, str | None]:
    """The cache entry for KVM guests of the host's own architecture ('x86' -> x86_64, preferred
    to i686), or None with why not (None when the host simply has no cache)."""
    from audit.errors import FactError, FactUnavailable

    try:
        entries = cache_entries(host)
    except FactUnavailable:
        return None, None
    except (FactError, UsageError) as exc:
        return None, f"libvirt's QEMU capabilities cache not used: {exc}"
    fits = [e for e in entries if e.caps.host_props or e.caps.machines]
    if arch is not None:
        fits = [e for e in fits if ARCH.get(e.caps.arch or "") == arch]
    fits.sort(key=lambda e: e.caps.arch in ("i686", "armv7l"))
    return (fits[0], None) if fits else (None, None)
