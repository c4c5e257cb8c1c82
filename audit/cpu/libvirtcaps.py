"""What libvirt says QEMU/KVM can give a guest: ``virsh domcapabilities`` output, libvirt's QEMU
capabilities cache (``/var/cache/libvirt/qemu/capabilities/*.xml``) and ``virsh capabilities``.

All three are untrusted input read with audit.parsers.xmltree: at most MAX_BYTES, UTF-8,
no DOCTYPE (so no entity is declared, expanded or fetched), at most MAX_DEPTH levels and
MAX_ELEMENTS elements. Every CPU model, feature, property and machine name kept must look like a
libvirt or QEMU name (letters, digits, ``_ . + -``), so no markup from a file reaches any output
through them. The cache is libvirt's internal, unversioned format: only the elements read here are
relied on (``<hostCPU><property>``, ``<cpu usable=…>``, ``<machine>``, ``<kernelVersion>``,
``<microcodeVersion>``), as they appear in libvirt's own tests/qemucapabilitiesdata.
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

    @property
    def has_cpu_view(self) -> bool:
        """A guest-CPU view: host-model (domcapabilities) or the KVM host CPU (cache)."""
        return self.host_model is not None or bool(self.host_props)

    def offers_machine(self, machine: str) -> bool | None:
        """True/False when known; None when this file cannot say (domcapabilities of another machine)."""
        if machine in self.machines:
            return True
        return False if self.machines_complete else None

    def describe(self) -> dict[str, object]:
        return {"source": self.source, "kind": self.kind, "arch": self.arch, "host_model": self.host_model,
                "vendor": self.vendor, "usable_models": list(self.usable), "machines": list(self.machines),
                "machines_complete": self.machines_complete, "kernel_version": self.kernel_version,
                "microcode_version": self.microcode_version, "qemu_version": self.qemu_version}


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
                    (usable if m.get("usable") == "yes" else unusable).append(name)
    machine = _text(root.find("machine"))
    return GuestCpu(
        source=path, kind=KIND_DOMCAPS, arch=_short(_text(root.find("arch")), "<arch>", 32),
        virt_type=_short(_text(root.find("domain")), "<domain>", 32),
        emulator=_short(_text(root.find("path")), "<path>"),
        host_model=host_model, vendor=vendor, features=tuple(features), host_props=(),
        usable=tuple(usable), unusable=tuple(unusable),
        machines=(_name(machine, "<machine>"),) if machine else (), machines_complete=False,
        kernel_version=None, microcode_version=None, qemu_version=None)


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
    for c in root.findall("cpu"):
        if c.get("type") != "kvm":
            continue
        name = _name(c.get("name"), "<cpu name=…>")
        (usable if c.get("usable") == "yes" else unusable).append(name)
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
        qemu_version=_qemu_version(_text(root.find("version"))))


def parse_capabilities(root: ET.Element, path: str, arch: str | None = None) -> GuestCpu:
    """``virsh capabilities``: the KVM machine types of one guest arch (the first with KVM when not
    given); its <host><cpu> is the physical CPU, never taken as the guest view."""
    machines: list[str] = []
    found_arch = None
    for guest in root.findall("guest"):
        a = guest.find("arch")
        if a is None or (arch is not None and a.get("name") != arch):
            continue
        kvm = next((d for d in a.findall("domain") if d.get("type") == "kvm"), None)
        if kvm is None:
            continue
        # a <domain type='kvm'> without its own machines offers the arch's
        for m in kvm.findall("machine") or a.findall("machine"):
            machines.append(_name(_text(m), "<machine>"))
        found_arch = a.get("name")
        break
    return GuestCpu(
        source=path, kind=KIND_CAPS, arch=_short(found_arch, "<arch name=…>", 32), virt_type="kvm",
        emulator=None, host_model=None, vendor=None, features=(), host_props=(), usable=(), unusable=(),
        machines=tuple(dict.fromkeys(machines)), machines_complete=bool(machines),
        kernel_version=None, microcode_version=None, qemu_version=None)


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


def staleness(caps: GuestCpu, *, kernel_release: str | None, kernel_version: str | None = None,
              microcode: int | None = None) -> list[str]:
    """Why the cache no longer describes this host (empty: it does, as far as can be told).

    libvirt re-probes when ``uname -r`` + ``uname -v`` or the microcode revision change; a file
    still holding the old values was written under another kernel or microcode than the host's."""
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
    return out


# ------------------------------------------------------------------------------------------------
# the cache of an audited host (audit.host.libvirtcaps reads the files)
# ------------------------------------------------------------------------------------------------
class CachedCaps(Record):
    caps: GuestCpu
    path: str  # inside the root
    stale: tuple[str, ...]  # why it no longer describes the host; empty when current or not known


def cache_entries(host: object) -> tuple[CachedCaps, ...]:
    """The host's QEMU capabilities cache, parsed, each with why it is stale. FactUnavailable when
    there is none; CapsError naming the file when one is refused."""
    from audit.host.libvirtcaps import qemu_caps_cache

    got = host.fact(qemu_caps_cache)  # type: ignore[attr-defined]
    microcode = cpuinfo_microcode(got.cpuinfo) if got.cpuinfo is not None else None
    out = []
    for path, blob in got.files:
        caps = parse_caps(blob, path)
        if caps.kind != KIND_CACHE:
            raise CapsError(f"QEMU capabilities cache {path}: not a cache file (no <qemuCaps>)")
        out.append(CachedCaps(caps, path, tuple(staleness(caps, kernel_release=got.kernel_release,
                                                          kernel_version=got.kernel_version, microcode=microcode))))
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
