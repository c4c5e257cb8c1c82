"""Kernel command lines, tokenised the way the kernel does it (``lib/cmdline.c``, ``next_arg``).

Double quotes protect spaces; everything after a lone ``--`` goes to init; ``-`` and ``_`` are
the same in parameter names. Order is kept (``hugepagesz=``/``hugepages=`` pairs depend on it).
"""

from __future__ import annotations

from audit.record import Record


class Param(Record):
    name: str  # as written
    value: str | None  # None for a bare flag ("quiet"); "" for "key="

    @property
    def key(self) -> str:
        """The name as the kernel compares it: dashes folded to underscores."""
        return canonical_name(self.name)


def canonical_name(name: str) -> str:
    return name.replace("-", "_")


def _split_words(text: str) -> list[str]:
    """Split on whitespace outside double quotes; quotes are removed like the kernel does."""
    if '"' not in text:
        return text.split()  # the same blanks (str.isspace), runs of them one separator
    words: list[str] = []
    buf: list[str] = []
    in_quote = False
    started = False
    for ch in text:
        if ch == '"':
            in_quote = not in_quote
            started = True
            continue
        if ch.isspace() and not in_quote:
            if started:
                words.append("".join(buf))
                buf, started = [], False
            continue
        buf.append(ch)
        started = True
    if started:
        words.append("".join(buf))
    return words


def tokenize(text: str) -> list[Param]:
    """The kernel parameters of a command line, in order, stopping at ``--``."""
    params: list[Param] = []
    for word in _split_words(text.strip()):
        if word == "--":
            break
        name, eq, value = word.partition("=")
        params.append(Param(name, value if eq else None))
    return params


def parse_cmdline(text: str) -> dict[str, str]:
    """Parameters as a dict of canonical name to value; the last of a repeated key wins.

    Bare flags map to "". ``parse_cmdline('a=1 quiet a=2 x="y z"')`` gives
    ``{"a": "2", "quiet": "", "x": "y z"}``.
    """
    return {p.key: (p.value if p.value is not None else "") for p in tokenize(text)}


def values(params: list[Param], name: str) -> list[str]:
    """Every value given to ``name`` (canonical comparison), in order."""
    want = canonical_name(name)
    # p.key == want, without making p.key for the names that are written as the kernel compares them
    return [p.value if p.value is not None else "" for p in params
            if p.name == want or ("-" in p.name and canonical_name(p.name) == want)]


def last(params: list[Param], name: str) -> str | None:
    found = values(params, name)
    return found[-1] if found else None


#: Parameters the kernel (or the early userspace that reads /proc/cmdline) takes more than once, each
#: occurrence adding rather than replacing: Documentation/admin-guide/kernel-parameters.txt (console=
#: "multiple console= options", memmap=, acpi_osi=, crashkernel= ",high"/",low" pairs, video= per
#: output), dracut.cmdline(7) (rd.*, ip=, nameserver=), systemd's kernel-command-line(7)
#: (systemd.wants=, systemd.mask=, systemd.setenv=), kmod (modprobe.blacklist=); and the option-list
#: parameters whose handler sets flags on each occurrence (intel_iommu=on intel_iommu=igfx_off,
#: iommu=, amd_iommu=, pci=, efi=), which iommu.enabled judges as a whole. The huge page parameters
#: are judged by audit.parsers.hugepages (pairs, one per size; default_hugepagesz first wins).
REPEATABLE = frozenset({
    "console", "memmap", "acpi_osi", "crashkernel", "video", "ip", "nameserver", "bootdev", "ifname",
    "systemd.wants", "systemd.mask", "systemd.setenv", "modprobe.blacklist", "module_blacklist",
    "hugepagesz", "hugepages", "default_hugepagesz", "initrd", "earlycon",
    "intel_iommu", "amd_iommu", "iommu", "pci", "efi",
})
REPEATABLE_PREFIXES = ("rd.",)


def repeated_params(params: list[Param]) -> list[tuple[str, list[str]]]:
    """(name as first written, its values in order) of every parameter given more than once with
    different values, where a later occurrence overrides or is ignored (the kernel keeps one)."""
    seen: dict[str, list[Param]] = {}
    for p in params:
        if p.key in REPEATABLE or p.key.startswith(REPEATABLE_PREFIXES) or "$" in p.name:
            continue
        seen.setdefault(p.key, []).append(p)
    out = []
    for ps in seen.values():
        vals = ["" if p.value is None else p.value for p in ps]
        if len(ps) > 1 and len(set(vals)) > 1:
            out.append((ps[0].name, vals))
    return out
