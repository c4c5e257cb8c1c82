"""What the audited host should look like: a built-in profile, optionally overridden by a TOML file.

A policy file names the profile it starts from (``extends = "kvm-host"``) and overrides values,
per-check severities, disabled checks and waivers. Unknown keys and wrong types are errors that
name the key: a typo in a policy must never silently weaken an audit.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from audit.errors import UsageError
from audit.inputfile import read_user_text
from audit.model import Severity, replace
from audit.record import Record

if TYPE_CHECKING:
    import datetime as dt


class Waiver(Record):
    reason: str
    expires: dt.date | None = None

    def active(self, today: dt.date) -> bool:
        return self.expires is None or today <= self.expires


#: the default of a mapping field: shared by every policy, so it cannot be changed
_NO_ENTRIES: Mapping[Any, Any] = MappingProxyType({})


class Policy(Record):
    profile: str = "kvm-host"
    # huge pages
    hugepages_required: bool = True
    hugepages_size: int | None = None  # bytes
    hugepages_count: int | None = None
    hugepages_max_memory_fraction: float = 0.9
    host_memory: int | None = None  # bytes; lets an image be judged against the host it will run on
    # THP, KSM, swap, IOMMU
    thp_allowed: tuple[str, ...] = ("always", "madvise")
    ksm_mode: str = "on"  # on | off | any
    swap_ksm_factor: float = 1.0
    iommu_required: bool = True
    # issue #13: virtualization features, THP defrag, NUMA pools, KSM effectiveness
    thp_defrag_allowed: tuple[str, ...] = ("defer", "defer+madvise", "madvise", "never")
    hugepages_numa_min_share: float = 0.5  # each node with memory holds >= this fraction of an equal share
    hugepages_runtime_growth: bool = False  # pools are grown at runtime (then vm.min_free_kbytes matters)
    nested_required: bool | None = None  # None: report only
    secure_guest_required: bool = False
    secure_guest_kinds: tuple[str, ...] = ("sev", "sev-es", "sev-snp", "tdx")  # any one satisfies
    ksm_min_sharing_ratio: float = 1.0  # pages_sharing / pages_shared below this is poor sharing
    ksm_max_unshared_ratio: float = 10.0  # pages_unshared / pages_sharing above this is wasted scanning
    qemu_user: str | None = None  # the user and group QEMU runs as; None: qemu.conf, else the distribution's
    qemu_group: str | None = None
    # CPU fleet gate
    cpu_required_model: str | None = None
    cpu_required_flags: tuple[str, ...] = ()
    # gate: check id globs whose skip or error counts as a failure (a gate not passed by not knowing)
    gate_required: tuple[str, ...] = ()
    # engine
    severity_overrides: Mapping[str, Severity] = _NO_ENTRIES
    disabled: tuple[str, ...] = ()  # check id globs
    waivers: Mapping[str, Waiver] = _NO_ENTRIES
    source: str = "built-in profile kvm-host"


DEFAULT_POLICY = Policy()

PROFILES = ("kvm-host", "kvm-host-multitenant")
DEFAULT_PROFILE = "kvm-host"
_PROFILE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "profiles")

_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


#: The largest policy file read, and the largest size a policy may name (1 PiB: no machine has more).
MAX_POLICY = 1 << 20
MAX_SIZE = 1 << 50


def parse_bytes(value: Any, key: str) -> int:
    """``1G``, ``2MB``, ``512M``, ``2048K``, ``1GiB`` or a plain integer of bytes."""
    if isinstance(value, bool):
        raise UsageError(f"{key}: expected a size such as 2M or 1G, got {value!r}")
    if isinstance(value, int):
        if value <= 0:
            raise UsageError(f"{key}: must be positive, got {value}")
        return value
    if not isinstance(value, str):
        raise UsageError(f"{key}: expected a size such as 2M or 1G, got {type(value).__name__}")
    text = value.strip().upper().removesuffix("IB").removesuffix("B")
    num, unit = text, ""
    if text and text[-1] in _SIZE_UNITS:
        num, unit = text[:-1], text[-1]
    try:
        n = float(num)
    except ValueError:
        raise UsageError(f"{key}: not a size: {value!r} (use e.g. 2M, 1G, 256G)") from None
    if not math.isfinite(n):
        raise UsageError(f"{key}: not a size: {value!r} (use e.g. 2M, 1G, 256G)")
    if n <= 0:
        raise UsageError(f"{key}: must be positive, got {value!r}")
    size = n * _SIZE_UNITS[unit]
    if size > MAX_SIZE:
        raise UsageError(f"{key}: {value!r} is larger than any machine (at most 1024T)")
    if size < 1:
        raise UsageError(f"{key}: {value!r} is less than one byte")
    return int(size)


def _str(v: Any, key: str) -> str:
    if not isinstance(v, str):
        raise UsageError(f"{key}: expected a string, got {type(v).__name__}")
    return v


def _bool(v: Any, key: str) -> bool:
    if not isinstance(v, bool):
        raise UsageError(f"{key}: expected true or false, got {v!r}")
    return v


def _count(v: Any, key: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise UsageError(f"{key}: expected a whole number >= 0, got {v!r}")
    return v


def _fraction(v: Any, key: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < float(v) <= 1:
        raise UsageError(f"{key}: expected a number in (0, 1], got {v!r}")
    return float(v)


def _factor(v: Any, key: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= float(v) < math.inf:  # no nan, no inf
        raise UsageError(f"{key}: expected a finite number >= 0, got {v!r}")
    return float(v)


def _str_list(v: Any, key: str) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise UsageError(f"{key}: expected a list of strings")
    return tuple(v)


#: what a check id glob may contain: ids are lowercase letters, digits, ``.``, ``_`` and ``-``;
#: ``*``, ``?`` and ``[...]`` (``[!...]``) are the fnmatch wildcards
_ID_GLOB_RE = re.compile(r"^[a-z0-9._*?\[\]!-]+$")


def check_id_glob(text: str) -> str:
    """A check id glob (``boot.*``, ``iommu.enabled``); ValueError says what is wrong with it."""
    if not _ID_GLOB_RE.match(text):
        raise ValueError(
            f"{text!r} is not a check id glob (check ids are lowercase letters, digits, '.', '_' and '-';"
            " wildcards *, ? and [...])"
        )
    return text


def _id_globs(v: Any, key: str) -> tuple[str, ...]:
    globs = _str_list(v, key)
    for g in globs:
        try:
            check_id_glob(g)
        except ValueError as exc:
            raise UsageError(f"{key}: {exc}") from None
    return tuple(dict.fromkeys(globs))


THP_MODES = ("always", "madvise", "never")
THP_DEFRAG_MODES = ("always", "defer", "defer+madvise", "madvise", "never")
SECURE_GUEST_KINDS = ("sev", "sev-es", "sev-snp", "tdx")


def _one_of(allowed: tuple[str, ...], what: str) -> Callable[[Any, str], tuple[str, ...]]:
    """A converter for a list whose every item is one of ``allowed``: a wrong one is named, with the
    nearest valid one and the list."""
    def convert(v: Any, key: str) -> tuple[str, ...]:
        items = _str_list(v, key)
        bad = [x for x in items if x not in allowed]
        if bad:
            raise UsageError(f"{key}: unknown {what} {bad[0]!r}{_did_you_mean(bad[0], allowed)} ({', '.join(allowed)})")
        return items

    return convert


_thp = _one_of(THP_MODES, "THP mode")
_thp_defrag = _one_of(THP_DEFRAG_MODES, "THP defrag mode")
_secure_kinds = _one_of(SECURE_GUEST_KINDS, "secure guest kind")


def _name(v: Any, key: str) -> str:
    name = _str(v, key)
    if not re.fullmatch(r"[A-Za-z0-9._][A-Za-z0-9._-]{0,31}", name):
        raise UsageError(f"{key}: not a user or group name: {name!r}")
    return name


def _ksm_mode(v: Any, key: str) -> str:
    mode = _str(v, key)
    if mode not in ("on", "off", "any"):
        hint = _did_you_mean(mode, ("on", "off", "any"))
        raise UsageError(f"{key}: expected 'on', 'off' or 'any', got {mode!r}{hint}")
    return mode


# table.key -> (Policy field, converter)
_FIELDS: dict[str, tuple[str, Callable[[Any, str], Any]]] = {
    "hugepages.required": ("hugepages_required", _bool),
    "hugepages.size": ("hugepages_size", parse_bytes),
    "hugepages.count": ("hugepages_count", _count),
    "hugepages.max_memory_fraction": ("hugepages_max_memory_fraction", _fraction),
    "host.memory": ("host_memory", parse_bytes),
    "thp.allowed": ("thp_allowed", _thp),
    "ksm.mode": ("ksm_mode", _ksm_mode),
    "swap.ksm_factor": ("swap_ksm_factor", _factor),
    "iommu.required": ("iommu_required", _bool),
    "thp.defrag_allowed": ("thp_defrag_allowed", _thp_defrag),
    "hugepages.numa_min_share": ("hugepages_numa_min_share", _fraction),
    "hugepages.runtime_growth": ("hugepages_runtime_growth", _bool),
    "nested.required": ("nested_required", _bool),
    "secure_guest.required": ("secure_guest_required", _bool),
    "secure_guest.kinds": ("secure_guest_kinds", _secure_kinds),
    "ksm.min_sharing_ratio": ("ksm_min_sharing_ratio", _factor),
    "ksm.max_unshared_ratio": ("ksm_max_unshared_ratio", _factor),
    "qemu.user": ("qemu_user", _name),
    "qemu.group": ("qemu_group", _name),
    "cpu.required_model": ("cpu_required_model", _str),
    "cpu.required_flags": ("cpu_required_flags", _str_list),
    "gate.required": ("gate_required", _id_globs),
}
_TOP = {"extends", "disabled", "severity", "waivers", "description"}
_SECTIONS = {k.split(".", 1)[0] for k in _FIELDS}


def _date(v: Any, key: str) -> dt.date:
    import datetime as dt  # only for a waiver's expiry date: not a cost of every run

    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, str):
        try:
            return dt.date.fromisoformat(v)
        except ValueError:
            pass
    raise UsageError(f"{key}: expected a date like 2027-01-31, got {v!r}")


def _did_you_mean(key: str, known: Iterable[str]) -> str:
    """' (did you mean 'hugepages.count'?)' for a near miss, else ''."""
    import difflib  # only when a key is wrong

    close = difflib.get_close_matches(key, sorted(set(known)), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def apply(base: Policy, data: Mapping[str, Any], *, source: str) -> Policy:
    """Apply a parsed TOML document to ``base``; every key is checked."""
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("extends", "description"):
            _str(value, f"{source}: {key}")
        if key in _TOP:
            continue
        if not isinstance(value, dict):
            raise UsageError(f"{source}: unknown key {key!r}{_did_you_mean(key, [*_TOP, *_SECTIONS])}")
        for sub, subvalue in value.items():
            full = f"{key}.{sub}"
            if full not in _FIELDS:
                raise UsageError(f"{source}: unknown key {full!r}{_did_you_mean(full, _FIELDS)}")
            name, conv = _FIELDS[full]
            changes[name] = conv(subvalue, f"{source}: {full}")
    if "disabled" in data:
        changes["disabled"] = _str_list(data["disabled"], f"{source}: disabled")
    if "severity" in data:
        sev = data["severity"]
        if not isinstance(sev, dict):
            raise UsageError(f"{source}: severity: expected a table of check id = severity")
        overrides = dict(base.severity_overrides)
        for check_id, text in sev.items():
            try:
                overrides[check_id] = Severity.parse(_str(text, f"{source}: severity.{check_id}"))
            except ValueError as exc:
                hint = _did_you_mean(str(text).strip().lower(), [s.name.lower() for s in Severity])
                raise UsageError(f"{source}: severity.{check_id}: {exc}{hint}") from None
        changes["severity_overrides"] = overrides
    if "waivers" in data:
        ws = data["waivers"]
        if not isinstance(ws, dict):
            raise UsageError(f"{source}: waivers: expected [waivers.\"<check id>\"] tables")
        waivers = dict(base.waivers)
        for check_id, w in ws.items():
            where = f"{source}: waivers.{check_id}"
            if not isinstance(w, dict):
                raise UsageError(f"{where}: expected a table with reason and expires")
            unknown = set(w) - {"reason", "expires"}
            if unknown:
                raise UsageError(f"{where}: unknown key {sorted(unknown)[0]!r}")
            if "reason" not in w:
                raise UsageError(f"{where}: a waiver needs a reason")
            expires = _date(w["expires"], f"{where}.expires") if "expires" in w else None
            waivers[check_id] = Waiver(reason=_str(w["reason"], f"{where}.reason"), expires=expires)
        changes["waivers"] = waivers
    return replace(base, source=source, **changes)


def _load_toml(text: str, source: str) -> dict[str, Any]:
    import tomllib  # not for a run on the default profile: its values are Policy's defaults

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses into nested arrays and inline tables
        raise UsageError(f"{source}: not a policy: arrays or tables nested too deeply") from None


def load_profile(name: str, _seen: tuple[str, ...] = ()) -> Policy:
    if name not in PROFILES:
        raise UsageError(f"unknown profile {name!r} (one of: {', '.join(PROFILES)})")
    if name == DEFAULT_PROFILE:
        return DEFAULT_POLICY  # kvm-host.toml written out (tests/test_policy.py keeps the two equal)
    return _profile_from_file(name, _seen)


def _profile_from_file(name: str, _seen: tuple[str, ...] = ()) -> Policy:
    with open(os.path.join(_PROFILE_DIR, f"{name}.toml"), encoding="utf-8") as f:
        text = f.read()
    data = _load_toml(text, f"profile {name}")
    base = Policy()
    parent = data.get("extends")
    if parent is not None:
        if parent in (*_seen, name):
            raise UsageError(f"profile {name}: extends loops through {parent!r}")
        base = load_profile(_str(parent, f"profile {name}: extends"), (*_seen, name))
    policy = apply(base, data, source=f"built-in profile {name}")
    return replace(policy, profile=name)


def load_policy(*, profile: str | None = None, path: str | None = None) -> Policy:
    """The effective policy: a profile, then a policy file on top (its ``extends`` names the profile)."""
    if path is None:
        return load_profile(profile or "kvm-host")
    text = read_user_text(path, what="--policy", cap=MAX_POLICY)
    data = _load_toml(text, path)
    extends = _str(data.get("extends", profile or "kvm-host"), f"{path}: extends")
    try:
        base = load_profile(extends)
    except UsageError as exc:
        raise UsageError(f"{path}: extends: {exc}") from None
    if profile and "extends" in data and data["extends"] != profile:
        raise UsageError(f"--profile {profile} conflicts with {path}: extends = {data['extends']!r}")
    return apply(base, data, source=path)


def to_toml(policy: Policy) -> str:
    """The effective policy written back as TOML (``hostaudit policy show``)."""
    import json

    def val(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):  # a TOML basic string: JSON's escapes are valid TOML ones (\n, \t, \uXXXX)
            return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
        if isinstance(v, tuple | list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return repr(v)

    source = json.dumps(policy.source, ensure_ascii=False)[1:-1]  # a comment ends at a newline
    lines = [f"# effective policy: {source}", f"extends = {val(policy.profile)}"]
    if policy.disabled:
        lines.append(f"disabled = {val(policy.disabled)}")
    tables: dict[str, list[str]] = {}
    for full, (name, _) in _FIELDS.items():
        table, key = full.split(".")
        value = getattr(policy, name)
        if value is None:
            tables.setdefault(table, []).append(f"# {key} = (not set)")
        else:
            tables.setdefault(table, []).append(f"{key} = {val(value)}")
    for table, entries in tables.items():
        lines += ["", f"[{table}]", *entries]
    if policy.severity_overrides:
        lines += ["", "[severity]"]
        lines += [f'{val(k)} = "{v}"' for k, v in sorted(policy.severity_overrides.items())]
    for check_id, w in sorted(policy.waivers.items()):
        lines += ["", f"[waivers.{val(check_id)}]", f"reason = {val(w.reason)}"]
        if w.expires:
            lines.append(f"expires = {w.expires.isoformat()}")
    return "\n".join(lines) + "\n"
