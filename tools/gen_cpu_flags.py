#!/usr/bin/env python3
"""Derive audit/cpu/data/cpu_flags.json: the x86 /proc/cpuinfo flag names Linux kernels print.

The names come from the kernel's own ``arch/x86/include/asm/cpufeatures.h``, read the way
``arch/x86/kernel/cpu/mkcapflags.sh`` reads it when it builds the ``x86_cap_flags[]`` table that
/proc/cpuinfo prints: every line ``#define X86_FEATURE_<NAME> (<word>*32+<bit>) /* ... */``, and

- up to Linux 6.11 (the header's note says 'If the string is "", this feature bit is not
  displayed'): a comment that starts with a quoted string gives the name, ``""`` hides the flag,
  and any other flag is shown as the lower-cased ``<NAME>``;
- from Linux 6.12 (the note says 'Otherwise, this feature bit is not displayed'): only a flag
  whose comment starts with a quoted string is shown, under that name.

The newest header is the current table; older and distribution headers add the names their
kernels print (RHEL 7's ``perfctr_l2``, ``spec_ctrl``, ``ibp_disable``; 6.1's ``invpcid_single``).
Three curated tables below say what the generator cannot read from a header: RENAMED (an old name
for the same CPUID bit), VENDOR_ONLY (names only a distribution kernel prints) and CLASSIFIED
(whether a printed name the model table does not classify is a CPU feature a KVM guest can be
given). KVM_PROVIDES says from which kernel KVM gives a feature to every guest. Every entry names
its source, and the generator checks each one against the headers it is given.

Headers used for the committed table (``apt-get download`` + ``dpkg-deb -x``; the RHEL 7 source
through a public repository that holds the unmodified 3.10.0-1160.el7 tree):

    7.2.13           Debian sid: linux-headers-7.2.13+deb14-common 7.2.13-1
    6.12.117         Debian 12 (bookworm-security): linux-headers-6.12.117+deb12-common 6.12.117-1~deb12u1
    6.1.170          Debian 12 (bookworm): linux-headers-6.1.0-47-common 6.1.170-3
    3.10.0-1160.el7  RHEL 7.9: tremb1e/linux-3.10.0-1160.el7 @de8b6b6f944c8466ab1beadb1df497a0bd9f6f3c
                     (commit "linux-3.10.0-1160.el7 Source Code", the unmodified import)

    python tools/gen_cpu_flags.py \\
        --header 7.2.13=/tmp/h/7.2/usr/src/linux-headers-7.2.13+deb14-common/arch/x86/include/asm/cpufeatures.h \\
        --header 6.12.117=/tmp/h/6.12/usr/src/linux-headers-6.12.117+deb12-common/arch/x86/include/asm/cpufeatures.h \\
        --header 6.1.170=/tmp/h/6.1/usr/src/linux-headers-6.1.0-47-common/arch/x86/include/asm/cpufeatures.h \\
        --header 3.10.0-1160.el7=/tmp/h/rhel7/arch/x86/include/asm/cpufeatures.h

The first header is the current one. Run it again with a newer kernel's header first when one is
packaged; the generator stops on a printed name that nothing classifies.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "audit" / "cpu" / "data"

# --------------------------------------------------------------------------------------------
# Where each header comes from. The label is the kernel release; "mainline" tells a kernel.org
# tree (Debian's packages carry the upstream header unchanged) from a distribution's own.
# --------------------------------------------------------------------------------------------
SOURCES: dict[str, dict[str, object]] = {
    "7.2.13": {
        "mainline": True,
        "origin": "Debian package linux-headers-7.2.13+deb14-common 7.2.13-1 (sid)",
        "file": "/usr/src/linux-headers-7.2.13+deb14-common/arch/x86/include/asm/cpufeatures.h",
    },
    "6.12.117": {
        "mainline": True,
        "origin": "Debian package linux-headers-6.12.117+deb12-common 6.12.117-1~deb12u1 (bookworm-security)",
        "file": "/usr/src/linux-headers-6.12.117+deb12-common/arch/x86/include/asm/cpufeatures.h",
    },
    "6.1.170": {
        "mainline": True,
        "origin": "Debian package linux-headers-6.1.0-47-common 6.1.170-3 (bookworm)",
        "file": "/usr/src/linux-headers-6.1.0-47-common/arch/x86/include/asm/cpufeatures.h",
    },
    "3.10.0-1160.el7": {
        "mainline": False,
        "origin": "RHEL 7.9 kernel source 3.10.0-1160.el7, unmodified import in "
                  "tremb1e/linux-3.10.0-1160.el7 @de8b6b6f944c8466ab1beadb1df497a0bd9f6f3c",
        "file": "arch/x86/include/asm/cpufeatures.h",
    },
}

_RHEL7 = "3.10.0-1160.el7 cpufeatures.h"

# --------------------------------------------------------------------------------------------
# Old names for the same CPUID bit. The generator checks that the old name is shown by one of the
# headers, the new one by the current header, at the same word and bit.
# --------------------------------------------------------------------------------------------
RENAMED: dict[str, dict[str, str]] = {
    "perfctr_l2": {
        "now": "perfctr_llc",
        "why": "AMD CPUID 0x80000001 ECX bit 28: the L2 performance counters of family 16h are the "
               "last-level-cache (L3) counters from family 17h (Zen) on; mainline renamed the flag, "
               "RHEL 7 prints the old name on every AMD CPU since",
        "source": f"{_RHEL7}: X86_FEATURE_PERFCTR_L2 (6*32+28), no quoted name; 6.1.170, 6.12.117 "
                  "and 7.2.13: X86_FEATURE_PERFCTR_LLC (6*32+28) \"perfctr_llc\"",
    },
}

# --------------------------------------------------------------------------------------------
# Names only a distribution kernel prints: no mainline header given defines them at all. Each
# says what it means, whether a guest can be given it, and any mainline name it stands for.
# --------------------------------------------------------------------------------------------
VENDOR_ONLY: dict[str, dict[str, object]] = {
    "ibp_disable": {
        "kernels": "RHEL 7 (3.10.0-*.el7) and its rebuilds (CentOS 7, Scientific Linux 7, Oracle Linux 7 RHCK)",
        "meaning": "the kernel can switch off the indirect branch predictor (MSR 0xc0011021 bit 14) as "
                   "its Spectre v2 mitigation (RHEL 7.9 sets it on AMD family 10h and 12h). A mitigation "
                   "choice of the host kernel, not a CPUID bit: a guest is never given it",
        "guest_visible": False,
        "same_as": [],
        "source": f"{_RHEL7} line 213: X86_FEATURE_IBP_DISABLE (7*32+21) \"Old AMD Indirect Branch "
                  "Predictor Disable\"; set in arch/x86/kernel/cpu/amd.c (init_amd: family 0x10 or "
                  "0x12), used in arch/x86/kernel/spec_ctrl.c",
    },
}

# --------------------------------------------------------------------------------------------
# Printed names the model table (tools/gen_cpu_models.py) does not classify: whether a KVM guest
# can be given the feature. Everything a header shows must be classified there or here.
# --------------------------------------------------------------------------------------------
CLASSIFIED: dict[str, dict[str, object]] = {
    "ibpb_exit_to_user": {
        "guest_visible": False,
        "reason": "kernel-synthesised mitigation state (IBPB on exit to user space, VMSCAPE), not a CPUID "
                  "bit; 6.1.170 prints it (a stable backport under the old naming rule), 6.12 and later "
                  "hide it",
        "source": "6.1.170 cpufeatures.h: X86_FEATURE_IBPB_EXIT_TO_USER (21*32+14), no quoted name; "
                  "7.2.13: the same define, hidden",
    },
    "lass": {
        "guest_visible": True,
        "reason": "Linear Address Space Separation (CPUID 7.1 EAX bit 6), a CPU protection feature like "
                  "SMAP: counted as a guest-visible feature; libvirt 11.3 has no name for it",
        "source": "7.2.13 cpufeatures.h: X86_FEATURE_LASS (12*32+6) \"lass\"",
    },
}

# --------------------------------------------------------------------------------------------
# Features KVM gives every guest only from some kernel on. arch_capabilities: mainline emulates
# IA32_ARCH_CAPABILITIES for every guest on any vendor from Linux 5.1 (commit "KVM: x86: Emulate
# MSR_IA32_ARCH_CAPABILITIES on AMD hosts"); RHEL 7.9 does not: its arch/x86/kvm/cpuid.c masks
# CPUID 7 EDX (F(ARCH_CAPABILITIES)) with the host's own CPUID, so only hosts whose CPU has the
# MSR give it to guests.
# --------------------------------------------------------------------------------------------
KVM_PROVIDES: dict[str, dict[str, object]] = {
    "arch_capabilities": {
        "libvirt": "arch-capabilities",
        "since": "5.1",
        "source": "mainline Linux 5.1, commit \"KVM: x86: Emulate MSR_IA32_ARCH_CAPABILITIES on AMD "
                  "hosts\" (emulated for every guest, any vendor)",
        "host_only_before": {
            r"\.el7": "RHEL 7.9 3.10.0-1160.el7 arch/x86/kvm/cpuid.c: CPUID 7 EDX is masked with the "
                      "host's (cpuid_mask(&entry->edx, CPUID_7_EDX)): only a host whose CPU has "
                      "arch_capabilities gives it to guests",
        },
    },
}

NOTES: dict[str, str] = {
    "source": "Derived by tools/gen_cpu_flags.py from the kernels' arch/x86/include/asm/cpufeatures.h "
    "(see 'source'); the first header is the current one.",
    "flags": "Every name a header shows in /proc/cpuinfo ('shown_by') and the lower-cased name of every "
    "flag a header hides ('hidden_by': a distribution kernel may print those, as RHEL 7 prints "
    "spec_ctrl and intel_stibp). 'define' and 'bit' are from the newest header that has the name.",
    "renamed": "Old names of the same CPUID bit: read as the new name.",
    "vendor_only": "Names only a distribution kernel prints (no mainline header defines them).",
    "classified": "Whether a KVM guest can be given a printed feature the model table does not classify.",
    "kvm_provides": "Features KVM gives every guest only from a kernel release on (see 'since'); "
    "'host_only_before' names distribution kernels known to pass the feature only from CPUs that have it.",
}


# --------------------------------------------------------------------------------------------
# Parsing, as mkcapflags.sh does it
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Define:
    name: str  # X86_FEATURE_ suffix, as written
    word: int
    bit: int
    shown: str | None  # the /proc/cpuinfo name, None when hidden


_DEFINE = re.compile(r"^\s*#\s*define\s+X86_FEATURE_(\w+)\s*(.*)$")
_POSITION = re.compile(r"\(\s*(\d+)\s*\*\s*32\s*\+\s*(\d+)\s*\)")
_COMMENT = re.compile(r"/\*(.*?)\*/")
_QUOTED = re.compile(r'\s*"([^"]*)"')


def convention(text: str) -> str:
    """'old' (unquoted flags shown by their lower-cased name) or 'new' (only quoted names shown)."""
    if 'If the string is ""' in text:
        return "old"
    if "Otherwise, this feature" in text and "bit is not displayed" in text:
        return "new"
    raise ValueError("cpufeatures.h: cannot tell which naming rule it follows (no known 'Note:' comment)")


def parse_cpufeatures(text: str) -> list[Define]:
    """Every X86_FEATURE_ define with its /proc/cpuinfo name (None when hidden)."""
    rule = convention(text)
    out: list[Define] = []
    for line in text.replace("\t", " ").splitlines():
        m = _DEFINE.match(line)
        if not m:
            continue
        name, rest = m.group(1), m.group(2)
        pos = _POSITION.match(rest)
        if not pos:
            continue  # not a bit position (none in the headers used)
        comment = _COMMENT.search(rest)
        quoted = _QUOTED.match(comment.group(1)) if comment else None
        if quoted:
            shown: str | None = quoted.group(1).lower() or None
        else:
            shown = name.lower() if rule == "old" else None
        out.append(Define(name=name, word=int(pos.group(1)), bit=int(pos.group(2)), shown=shown))
    return out


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------
def _model_classified(models_doc: Mapping) -> set[str]:
    """Linux names the model table classifies (guest-visible or not)."""
    known = set(models_doc["feature_names"]) | set(models_doc["not_guest_visible"])
    known |= set(models_doc["kvm_provided"]) | set(models_doc["guest_visible_unnamed"])
    known |= set(models_doc["linux_aliases"]) | set(models_doc["implied"])
    for m in models_doc["models"].values():
        known |= set(m["features"])
    return known


def build_table(headers: Mapping[str, str], *, models_doc: Mapping, source: Mapping[str, object]) -> dict:
    """The JSON document. headers: kernel label -> header text, the current one first."""
    labels = list(headers)
    if not labels:
        raise SystemExit("give at least one header")
    parsed = {label: parse_cpufeatures(text) for label, text in headers.items()}
    mainline = [lb for lb in labels if SOURCES.get(lb, {}).get("mainline", True)]

    flags: dict[str, dict[str, object]] = {}
    for label in reversed(labels):  # oldest first, so the newest header's define and bit win
        for d in parsed[label]:
            key = d.shown or d.name.lower()
            entry = flags.setdefault(key, {"shown_by": [], "hidden_by": []})
            entry["define"] = f"X86_FEATURE_{d.name}"
            entry["bit"] = f"{d.word}*32+{d.bit}"
            entry["shown_by" if d.shown else "hidden_by"].append(label)
    for entry in flags.values():
        for k in ("shown_by", "hidden_by"):
            entry[k] = [lb for lb in labels if lb in entry[k]]  # newest first

    def position(label: str, name: str) -> tuple[int, int] | None:
        for d in parsed[label]:
            if d.shown == name:
                return d.word, d.bit
        return None

    current = labels[0]
    for old, r in RENAMED.items():
        old_at = [(lb, position(lb, old)) for lb in labels if position(lb, old)]
        new_at = position(current, str(r["now"]))
        if not old_at or new_at is None:
            raise SystemExit(f"RENAMED {old} -> {r['now']}: not shown by the headers given")
        if any(pos != new_at for _lb, pos in old_at):
            raise SystemExit(f"RENAMED {old} -> {r['now']}: not the same bit ({old_at} vs {new_at})")

    defined_by_mainline = {d.shown or d.name.lower() for lb in mainline for d in parsed[lb]}
    defined_by_mainline |= {d.name.lower() for lb in mainline for d in parsed[lb]}
    for name in VENDOR_ONLY:
        if name in defined_by_mainline:
            raise SystemExit(f"VENDOR_ONLY {name}: a mainline header defines it")
        if name not in flags or not flags[name]["shown_by"]:
            raise SystemExit(f"VENDOR_ONLY {name}: no header given shows it")

    classified = _model_classified(models_doc)
    aliases = {k: tuple(v) for k, v in models_doc["linux_aliases"].items()}
    for name, v in VENDOR_ONLY.items():
        if v["same_as"] and aliases.get(name) not in (None, tuple(v["same_as"])):
            raise SystemExit(f"VENDOR_ONLY {name}: same_as disagrees with the model table's aliases")
    for name in CLASSIFIED:
        if name in classified:
            raise SystemExit(f"CLASSIFIED {name}: the model table already classifies it; drop it here")
    shown = {n for n, e in flags.items() if e["shown_by"]}
    unclassified = shown - classified - set(CLASSIFIED) - set(VENDOR_ONLY) - set(RENAMED)
    if unclassified:
        raise SystemExit("printed names neither the model table nor CLASSIFIED classify: "
                         + " ".join(sorted(unclassified)))
    for name in KVM_PROVIDES:
        if name not in shown:
            raise SystemExit(f"KVM_PROVIDES {name}: not a name the headers show")

    return {
        "source": {
            **source,
            "current": current,
            "headers": [
                {"kernel": lb, "convention": convention(headers[lb]),
                 "shown": sum(1 for d in parsed[lb] if d.shown), "hidden": sum(1 for d in parsed[lb] if not d.shown),
                 **SOURCES.get(lb, {"mainline": True, "origin": "unrecorded", "file": "?"})}
                for lb in labels
            ],
        },
        "notes": NOTES,
        "flags": flags,
        "renamed": RENAMED,
        "vendor_only": VENDOR_ONLY,
        "classified": CLASSIFIED,
        "kvm_provides": KVM_PROVIDES,
    }


def dumps(doc: Mapping) -> str:
    """Sorted keys; every entry of a section on one line, so a flag's change is one line of diff."""
    sections = []
    for key in sorted(doc):
        value = doc[key]
        if isinstance(value, dict) and value:
            rows = ",\n".join(f"  {json.dumps(k)}: {json.dumps(value[k], sort_keys=True, ensure_ascii=False)}"
                              for k in sorted(value))
            sections.append(f" {json.dumps(key)}: {{\n{rows}\n }}")
        else:
            sections.append(f" {json.dumps(key)}: {json.dumps(value, sort_keys=True, ensure_ascii=False)}")
    return "{\n" + ",\n".join(sections) + "\n}"


def _pairs(values: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        label, sep, path = v.partition("=")
        if not sep or not label or not path:
            raise SystemExit(f"--header takes KERNEL=PATH, not {v!r}")
        out[label] = Path(path).read_text(encoding="utf-8", errors="replace")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--header", action="append", required=True, metavar="KERNEL=PATH",
                    help="a cpufeatures.h and the kernel release it belongs to; the current one first")
    ap.add_argument("--models", type=Path, default=DATA / "cpu_models.json",
                    help="the model table whose classification this one completes")
    ap.add_argument("-o", "--output", type=Path, default=DATA / "cpu_flags.json")
    ap.add_argument("--date", default=dt.date.today().isoformat(), help="generation date")
    args = ap.parse_args(argv)
    headers = _pairs(args.header)
    models_doc = json.loads(args.models.read_text(encoding="utf-8"))
    doc = build_table(headers, models_doc=models_doc,
                      source={"generated": args.date, "generator": "tools/gen_cpu_flags.py"})
    written = write_atomically(args.output, dumps(doc) + "\n")
    print(f"{written}: {len(doc['flags'])} names from {len(headers)} header(s)", file=sys.stderr)
    return 0


def write_atomically(path: Path, text: str) -> Path:
    """Replace path with text through a temporary file beside it (a killed run leaves the old one)."""
    part = path.with_name(path.name + ".part")
    part.write_text(text, encoding="utf-8")
    return part.replace(path)


if __name__ == "__main__":
    sys.exit(main())
