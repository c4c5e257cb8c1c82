"""The parameters the image's KVM modules declare (their ELF ``.modinfo`` section, read as data),
so boot.params can judge ``kvm-intel.nested=`` and ``kvm_amd.sev=`` on the command line."""

from __future__ import annotations

import lzma
import struct

from audit.boot.params import ModuleParamsView
from audit.errors import FactError, FactUnavailable
from audit.host.fs import MAX_READ, gunzip
from audit.host.kernel import MODULE_DIRS
from audit.host.registry import HostReader, fact

#: Module (canonical name) -> its file under /lib/modules/<release>/, without the suffix.
MODULE_FILES = {
    "kvm": "kernel/arch/x86/kvm/kvm",
    "kvm_intel": "kernel/arch/x86/kvm/kvm-intel",
    "kvm_amd": "kernel/arch/x86/kvm/kvm-amd",
}
#: How modules are shipped; zstd is not in Python's standard library, so a .ko.zst is not judged.
SUFFIXES = (".ko", ".ko.xz", ".ko.gz")
UNREADABLE_SUFFIXES = (".ko.zst",)
BUILTIN_MODINFO = "modules.builtin.modinfo"  # the .modinfo of the modules built into the kernel (5.2+)


def _paths() -> list[str]:
    out = []
    for d in MODULE_DIRS:
        out.append(f"{d}/{{release}}/{BUILTIN_MODINFO}")
        for rel in MODULE_FILES.values():
            out += [f"{d}/{{release}}/{rel}{s}" for s in SUFFIXES]
            out += [f"?{d}/{{release}}/{rel}{s}" for s in UNREADABLE_SUFFIXES]
    return out


def _params_of(entries: list[bytes]) -> frozenset[str]:
    """``parm=nested:...`` and ``parmtype=nested:bool`` entries -> {"nested"}."""
    names = set()
    for e in entries:
        key, eq, value = e.partition(b"=")
        if eq and key in (b"parm", b"parmtype"):
            name = value.split(b":", 1)[0].decode("utf-8", errors="replace")
            if name:
                names.add(name.replace("-", "_"))
    return frozenset(names)


def elf_modinfo(data: bytes) -> list[bytes]:
    """The NUL-separated entries of an ELF object's ``.modinfo`` section. Raises ValueError on
    anything that is not an ELF file with that section."""
    if data[:4] != b"\x7fELF" or len(data) < 0x40:
        raise ValueError("not an ELF file")
    cls, order = data[4], {1: "<", 2: ">"}.get(data[5])
    if order is None or cls not in (1, 2):
        raise ValueError("unknown ELF class or byte order")
    if cls == 2:
        shoff, = struct.unpack_from(order + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x3A)
        fmt = order + "IIQQQQ"
    else:
        shoff, = struct.unpack_from(order + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x2E)
        fmt = order + "IIIIII"
    if shentsize < struct.calcsize(fmt) or shstrndx >= shnum or shoff + shnum * shentsize > len(data):
        raise ValueError("section header table out of bounds")
    sections = []
    for i in range(shnum):
        fields = struct.unpack_from(fmt, data, shoff + i * shentsize)
        sections.append((fields[0], fields[4], fields[5]))  # sh_name, sh_offset, sh_size
    _, str_off, str_size = sections[shstrndx]
    strtab = data[str_off: str_off + str_size]
    for name_off, off, size in sections:
        end = strtab.find(b"\0", name_off)
        if strtab[name_off: end if end >= 0 else None] == b".modinfo":
            if off + size > len(data):
                raise ValueError(".modinfo out of bounds")
            return [e for e in data[off: off + size].split(b"\0") if e]
    raise ValueError("no .modinfo section")


def builtin_modinfo(data: bytes) -> dict[str, frozenset[str]]:
    """modules.builtin.modinfo (``kvm.parmtype=halt_poll_ns:uint`` NUL-separated) -> module -> params."""
    per: dict[str, list[bytes]] = {}
    for e in data.split(b"\0"):
        module, dot, rest = e.partition(b".")
        if dot and module:
            per.setdefault(module.decode("utf-8", errors="replace").replace("-", "_"), []).append(rest)
    return {m: _params_of(entries) for m, entries in per.items()}


def _decompress(path: str, raw: bytes) -> bytes:
    if path.endswith(".xz"):
        d = lzma.LZMADecompressor()
        try:
            out = d.decompress(raw, max_length=MAX_READ + 1)
        except lzma.LZMAError as exc:
            raise ValueError(f"xz: {exc}") from None
        if len(out) > MAX_READ:
            raise ValueError(f"decompresses to more than {MAX_READ} bytes")
        return out
    if path.endswith(".gz"):
        return gunzip(raw, source=path)
    return raw


@fact(paths=_paths())
def module_params(host: HostReader) -> ModuleParamsView:
    """What the KVM modules of the kernel release declare, and the built-in modules' parameters."""
    from audit.host.kernel import kernel_release

    release = host.fact(kernel_release).release
    declared: dict[str, frozenset[str]] = {}
    sources: dict[str, str] = {}
    unjudged: dict[str, str] = {}
    for d in MODULE_DIRS:
        path = f"{d}/{release}/{BUILTIN_MODINFO}"
        if host.kind(path) == "file":
            try:
                for m, params in builtin_modinfo(host.read_bytes(path)).items():
                    if m not in declared:
                        declared[m] = params
                        sources[m] = path
            except (FactError, FactUnavailable) as exc:
                unjudged["built-in modules"] = str(exc)
            break
    for module, rel in MODULE_FILES.items():
        if module in declared:
            continue
        for d in MODULE_DIRS:
            found = False
            for suffix in SUFFIXES + UNREADABLE_SUFFIXES:
                path = f"{d}/{release}/{rel}{suffix}"
                if host.kind(path) != "file":
                    continue
                found = True
                if suffix in UNREADABLE_SUFFIXES:
                    unjudged[module] = f"{path}: zstd-compressed, which Python's standard library cannot read"
                    break
                try:
                    declared[module] = _params_of(elf_modinfo(_decompress(path, host.read_bytes(path))))
                    sources[module] = path
                    unjudged.pop(module, None)
                except (ValueError, struct.error, FactError, FactUnavailable) as exc:
                    unjudged[module] = f"{path}: {exc}"
                    continue
                break
            if found:
                break
    return ModuleParamsView(declared=declared, unjudged=unjudged, sources=sources, release=release)
