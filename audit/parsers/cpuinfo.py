"""/proc/cpuinfo: vendor, model name and the CPU flags every processor has."""

from __future__ import annotations

from dataclasses import dataclass

from audit.errors import ParseError

# x86 "flags", ARM "Features", s390x "features": all are whitespace-separated lists of words.
_FLAG_KEYS = ("flags", "features")


@dataclass(frozen=True, slots=True, kw_only=True)
class CpuInfo:
    vendor: str | None  # "GenuineIntel", "AuthenticAMD", ... (None when the arch does not say)
    model_name: str | None
    family: str | None
    model: str | None
    flags: frozenset[str]  # present on *every* processor (heterogeneous hosts: the intersection)
    processors: int
    flags_differ: bool = False  # some processors have flags others lack

    @property
    def vendor_kind(self) -> str | None:
        """'intel', 'amd' or None, from the vendor string."""
        v = (self.vendor or "").lower()
        if "intel" in v:
            return "intel"
        if "amd" in v or "hygon" in v:
            return "amd"
        return None


def _split_line(line: str) -> tuple[str, str] | None:
    if ":" not in line:
        return None  # tolerated: some arches and captures have such lines
    key, _, value = line.partition(":")
    return key.strip().lower(), value.strip()


def parse_cpuinfo(text: str) -> CpuInfo:
    """Parse /proc/cpuinfo. Separators may be tabs or spaces; blank lines separate processors."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    shared: dict[str, str] = {}  # s390x and ARM put some keys in a header without "processor"
    for raw in text.splitlines():
        if not raw.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        kv = _split_line(raw)
        if kv is None:
            continue
        key, value = kv
        if key == "processor" and current and "processor" in current:
            blocks.append(current)
            current = {}
        current.setdefault(key, value)
    if current:
        blocks.append(current)
    if not blocks:
        raise ParseError("no processor information found")

    procs = [b for b in blocks if "processor" in b or any(k in b for k in _FLAG_KEYS)]
    for b in blocks:
        if b not in procs:
            shared.update(b)
    if not procs:
        procs = blocks

    flag_sets: list[frozenset[str]] = []
    for b in procs:
        for key in _FLAG_KEYS:
            if key in b:
                flag_sets.append(frozenset(b[key].split()))
                break
    if not flag_sets and "features" in shared:
        flag_sets.append(frozenset(shared["features"].split()))
    if flag_sets:
        flags = frozenset.intersection(*flag_sets)
        differ = any(s != flag_sets[0] for s in flag_sets)
    else:
        flags, differ = frozenset(), False

    def first(*keys: str) -> str | None:
        for b in (*procs, shared):
            for k in keys:
                if b.get(k):
                    return b[k]
        return None

    return CpuInfo(
        vendor=first("vendor_id", "vendor"),
        model_name=first("model name", "cpu model", "cpu"),
        family=first("cpu family"),
        model=first("model"),
        flags=flags,
        processors=sum(1 for b in procs if "processor" in b) or len(procs),
        flags_differ=differ,
    )
