"""Which CPU architecture the audited system runs (live) or its kernel is built for (image).

The first source that answers wins, in this order; the answer names its source:

1. ``/proc/cpuinfo`` where a kernel runs (x86 ``vendor_id``/``flags``, arm64 ``CPU implementer``);
2. the kernel build config: its header (``# Linux/arm64 6.1.0 Kernel Configuration``) or the
   architecture option (``CONFIG_ARM64=y``, ``CONFIG_X86_64=y``);
3. the kernel release's own suffix (Debian ``-amd64``/``-arm64``, Red Hat ``.x86_64``/``.aarch64``);
4. the kernel image's boot header: x86 bzImage ``HdrS`` at 0x202, arm64 ``Image`` magic
   ``ARM\\x64`` at 0x38, the PE ``Machine`` field of an EFI (zboot) image, after gunzip when the
   file is gzip-compressed (Debian's arm64 ``vmlinuz`` is);
5. the package database: the ``Architecture`` of the kernel's Debian package.

Sources: Documentation/arch/x86/boot.rst ("HdrS" at 0x202), Documentation/arch/arm64/booting.rst
(magic 0x644d5241 at offset 56), drivers/firmware/efi/libstub/zboot-header.S ("zimg" at 4, PE
header offset at 0x3c), the PE/COFF specification (Machine 0x8664 AMD64, 0xaa64 ARM64, 0x14c i386).
"""

from __future__ import annotations

import re
import struct
import zlib

from audit.errors import FactError, FactUnavailable, HostauditError
from audit.host.kernel import CPUINFO, kernel_config, kernel_release
from audit.host.registry import HostReader, fact
from audit.parsers.text import lines
from audit.record import Record

X86_64 = "x86_64"
ARM64 = "arm64"
I386 = "i386"

#: Architectures under their kernel names (what ``uname -m``/``dpkg`` call them maps onto these).
_ALIASES = {
    "x86_64": X86_64, "amd64": X86_64, "x86-64": X86_64, "x64": X86_64,
    "aarch64": ARM64, "arm64": ARM64,
    "i386": I386, "i486": I386, "i586": I386, "i686": I386, "x86": I386,
    "ppc64le": "ppc64le", "ppc64el": "ppc64le", "ppc64": "ppc64", "s390x": "s390x",
    "riscv64": "riscv64", "armhf": "arm", "armv7l": "arm", "arm": "arm", "loongarch64": "loongarch64",
}
#: The kernel config option each architecture sets (checked in this order: X86_64 before X86).
_KCONFIG_ARCH = (("ARM64", ARM64), ("X86_64", X86_64), ("X86_32", I386), ("PPC64", "ppc64"),
                 ("S390", "s390x"), ("RISCV", "riscv64"), ("ARM", "arm"), ("LOONGARCH", "loongarch64"))
_RELEASE_SUFFIX = re.compile(
    r"[.-](amd64|arm64|x86_64|aarch64|i686|i386|ppc64le|ppc64el|s390x|riscv64|armhf|686-pae|686)$")
_PE_MACHINE = {0x8664: X86_64, 0xAA64: ARM64, 0x14C: I386, 0x5064: "riscv64", 0x6264: "loongarch64"}
#: How much of a kernel image is looked at: every header named above is in its first 4 KiB.
_IMAGE_HEAD = 64 * 1024
#: Kernel images are read only as a fallback; arm64 ``Image`` files reach 40 MiB uncompressed.
_IMAGE_CAP = 96 * 1024 * 1024
DPKG_STATUS = "/var/lib/dpkg/status"


class ArchFact(Record):
    name: str  # kernel naming: "x86_64", "arm64", "i386", ...
    source: str  # the file that said so
    how: str  # "cpuinfo", "kernel config header", ...

    @property
    def is_x86(self) -> bool:
        return self.name in (X86_64, I386)


def canonical(name: str) -> str | None:
    """An architecture name as the kernel calls it, or None when unknown."""
    return _ALIASES.get(name.strip().lower())


def arch_from_cpuinfo_keys(keys: set[str]) -> str | None:
    """x86 prints vendor_id and flags; arm64 prints CPU implementer and Features."""
    if "cpu implementer" in keys or "cpu part" in keys:
        return ARM64
    if "vendor_id" in keys or "flags" in keys:
        return X86_64
    return None


def _cpuinfo_keys(text: str) -> set[str]:
    keys: set[str] = set()
    for n, line in enumerate(lines(text)):
        if n > 200:  # the keys repeat per processor: the first block names them all
            break
        key, sep, _ = line.partition(":")
        if sep:
            keys.add(key.strip().lower())
    return keys


def arch_from_image(data: bytes) -> str | None:
    """The architecture a kernel image is built for, from its boot header (None: not recognised)."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, _IMAGE_HEAD)
        except zlib.error:
            return None
    if len(data) >= 0x40 and data[0x38:0x3C] == b"ARM\x64":
        return ARM64
    if len(data) >= 0x206 and data[0x202:0x206] == b"HdrS":
        # a bzImage: its PE stub (when there is one) says 64 or 32 bit; without one, the protocol
        # header's xloadflags bit 0 (XLF_KERNEL_64) does
        machine = _pe_machine(data)
        if machine:
            return machine
        if len(data) >= 0x238:
            (xloadflags,) = struct.unpack_from("<H", data, 0x236)
            return X86_64 if xloadflags & 1 else I386
        return X86_64
    return _pe_machine(data)


def _pe_machine(data: bytes) -> str | None:
    if data[:2] != b"MZ" or len(data) < 0x40:
        return None
    (pe,) = struct.unpack_from("<I", data, 0x3C)
    if pe + 6 > len(data) or data[pe : pe + 4] != b"PE\0\0":
        return None
    (machine,) = struct.unpack_from("<H", data, pe + 4)
    return _PE_MACHINE.get(machine)


def _from_dpkg(text: str, release: str) -> str | None:
    """The Architecture of the Debian package that ships this kernel (linux-image-<release>)."""
    wanted = {f"linux-image-{release}", f"linux-image-{release}-unsigned"}
    for stanza in text.split("\n\n"):
        if not stanza.startswith("Package: ") and "\nPackage: " not in stanza:
            continue
        fields = dict(line.split(": ", 1) for line in lines(stanza) if ": " in line and line[0] != " ")
        if fields.get("Package") in wanted and fields.get("Status", "").endswith(" installed"):
            return canonical(fields.get("Architecture", ""))
    return None


@fact(paths=[CPUINFO, "?/boot/vmlinuz-{release}", f"?{DPKG_STATUS}"])
def architecture(host: HostReader) -> ArchFact:
    """The architecture, from the first source that says (see the module docstring)."""
    if host.has_runtime and host.kind(CPUINFO) == "file":
        try:
            found = arch_from_cpuinfo_keys(_cpuinfo_keys(host.read_runtime(CPUINFO)))
        except (FactUnavailable, FactError):
            found = None
        if found:
            return ArchFact(name=found, source=CPUINFO, how="cpuinfo")
    try:
        kc = host.fact(kernel_config)
    except HostauditError:
        kc = None
    if kc is not None:
        for option, name in _KCONFIG_ARCH:
            if kc.config.get(option) == "y":
                return ArchFact(name=name, source=kc.source, how=f"CONFIG_{option}=y")
        word = kc.config.arch or ""
        name = X86_64 if word == "x86" and kc.config.get("64BIT") == "y" else canonical(word)
        if name:
            return ArchFact(name=name, source=kc.source, how=f"kernel config header (Linux/{word})")
    try:
        rel = host.fact(kernel_release).release
    except HostauditError:
        rel = None
    if rel:
        m = _RELEASE_SUFFIX.search(rel)
        if m:
            name = canonical(m.group(1)) or (I386 if m.group(1).startswith("686") else None)
            if name:
                return ArchFact(name=name, source=f"kernel release {rel}", how="kernel release suffix")
        image = f"/boot/vmlinuz-{rel}"
        if host.kind(image) == "file":
            try:
                found = arch_from_image(host.read_bytes(image, limit=_IMAGE_CAP))
            except (FactUnavailable, FactError):
                found = None
            if found:
                return ArchFact(name=found, source=image, how="kernel image header")
        if host.kind(DPKG_STATUS) == "file":
            try:
                found = _from_dpkg(host.read_text(DPKG_STATUS), rel)
            except (FactUnavailable, FactError):
                found = None
            if found:
                return ArchFact(name=found, source=DPKG_STATUS, how=f"package linux-image-{rel}")
    raise FactUnavailable("architecture unknown: no cpuinfo, kernel config, kernel image or package record says")


def arch_name(host: HostReader) -> str | None:
    """The architecture's name, or None when nothing says."""
    try:
        return host.fact(architecture).name
    except HostauditError:
        return None


__all__ = ["ARM64", "I386", "X86_64", "ArchFact", "arch_from_image", "arch_name", "architecture", "canonical"]
