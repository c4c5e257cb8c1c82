"""Kernel build configuration (``.config``): ``CONFIG_X=y|m|"str"|123`` and ``# CONFIG_X is not set``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from audit.errors import ParseError
from audit.record import Record

NOT_SET = "is not set"

_NAME = re.compile(r"CONFIG_[A-Za-z0-9_]+")
_UNSET = re.compile(r"^#\s*(CONFIG_[A-Za-z0-9_]+) is not set\s*$")
_VERSION = re.compile(r"^#\s*Linux(?:/(\S+))? (?:kernel )?(?:version:? )?(\S+)")


class KernelConfig(Record):
    """Read-only (the mappings are views): a fleet run shares one per distinct config among its hosts."""

    options: Mapping[str, str]  # "y", "m", a string (quotes removed), a number, or NOT_SET
    lines: Mapping[str, int]  # where each option was read
    version: str | None = None  # from the header comment, when there is one
    arch: str | None = None  # the header's architecture word: "x86", "x86_64", "arm64", ...

    def get(self, name: str) -> str | None:
        """The value, NOT_SET when explicitly unset, None when this kernel does not know the option."""
        return self.options.get(_full(name))

    def enabled(self, name: str) -> bool:
        return self.get(name) in ("y", "m")

    def describe(self, name: str) -> str:
        value = self.get(name)
        full = _full(name)
        if value is None:
            return f"{full} absent (unknown to this kernel)"
        if value == NOT_SET:
            return f"# {full} is not set"
        return f"{full}={value}"


def _full(name: str) -> str:
    return name if name.startswith("CONFIG_") else f"CONFIG_{name}"


def parse_kconfig(text: str) -> KernelConfig:
    """Lines end at ``\n`` only, as the kernel's conf reader (scripts/kconfig/confdata.c) takes them
    with ``getline``: a form feed or a vertical tab inside a value is part of the value."""
    options: dict[str, str] = {}
    lines: dict[str, int] = {}
    version = arch = None
    for no, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line:
            continue
        if line[0] == "#":
            if line.endswith(NOT_SET) and (m := _UNSET.match(line)):
                options[m.group(1)] = NOT_SET
                lines[m.group(1)] = no
            elif version is None and (v := _VERSION.match(line)):
                arch, version = v.group(1), v.group(2)
            continue
        name, eq, value = line.partition("=")
        if not eq or not _NAME.fullmatch(name):
            raise ParseError(f"not a kernel config line: {line[:80]!r}", line=no)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        options[name] = value
        lines[name] = no
    if not options:
        raise ParseError("no CONFIG_ options found: not a kernel config")
    return KernelConfig(options=MappingProxyType(options), lines=MappingProxyType(lines), version=version, arch=arch)
