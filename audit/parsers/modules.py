"""Loaded modules (/proc/modules), built-in modules (modules.builtin) and /proc/crypto."""

from __future__ import annotations

from audit.errors import ParseError
from audit.parsers.text import lines
from audit.record import Record


def module_name(name: str) -> str:
    """Module names use '_' where file names may use '-' (kvm-intel.ko is kvm_intel)."""
    base = name.rsplit("/", 1)[-1]
    for suffix in (".ko.zst", ".ko.xz", ".ko.gz", ".ko"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.replace("-", "_")


def parse_proc_modules(text: str) -> frozenset[str]:
    names = set()
    for no, line in enumerate(lines(text), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) < 3:
            raise ParseError(f"expected 'name size refcount ...', got {line[:80]!r}", line=no)
        names.add(module_name(fields[0]))
    return frozenset(names)


def parse_modules_builtin(text: str) -> frozenset[str]:
    """``kernel/arch/x86/crypto/aesni-intel.ko`` lines, one per built-in module."""
    return frozenset(module_name(line.strip()) for line in lines(text) if line.strip())


class CryptoAlg(Record):
    name: str
    driver: str
    module: str


def parse_proc_crypto(text: str) -> list[CryptoAlg]:
    algs: list[CryptoAlg] = []
    cur: dict[str, str] = {}

    def flush() -> None:
        if cur.get("name") or cur.get("driver"):
            algs.append(
                CryptoAlg(name=cur.get("name", ""), driver=cur.get("driver", ""), module=cur.get("module", ""))
            )
        cur.clear()

    for line in lines(text):
        if not line.strip():
            flush()
            continue
        if ":" not in line:
            continue
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "name" and "name" in cur:
            flush()
        cur[key] = value.strip()
    flush()
    return algs
