"""``hostaudit cpu compare|baseline|models``: live-migration CPU compatibility between hosts.

Each host is a snapshot (JSON or collect.sh text), a saved /proc/cpuinfo, or ``local`` (this
machine). The judgement itself is audit.cpu.models'; this module reads inputs and formats answers.

Exit codes: compare 0 when a guest can move from A to B, 1 when it cannot (or when A shows flags
hostaudit does not know that B lacks: undecided); baseline 0 when a named model fits every host (on
arm64: when host-passthrough does, every host being one CPU implementation with the same Features),
1 when none does; 2 on bad input, always in one line.

Architectures are told apart first (x86 and arm64 hosts: impossible), then, on arm64, CPU
implementations (audit.cpu.arm64), then features. Host text only reaches XML through
reports.sanitize.xml_comment_text (comments) or escaping (elements, attributes), and the QEMU
-cpu value only carries names from hostaudit's tables.

Feature lists are Linux /proc/cpuinfo names; where libvirt spells a feature differently the text
shows both ("pclmulqdq / pclmuldq") and the JSON maps one to the other ("libvirt_names").
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from audit.cpu.sources import CpuSource, load_input
from reports import jsontext

SCHEMA_VERSION = 1


def _unique_names(sources: Sequence[CpuSource]) -> list[str]:
    """Host names for a pool; a name two inputs share is replaced by their paths."""
    counts: dict[str, int] = {}
    for s in sources:
        counts[s.name] = counts.get(s.name, 0) + 1
    names = [s.name if counts[s.name] == 1 else f"{s.name} ({s.source})" for s in sources]
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n} #{seen[n]}")
    return out


# ------------------------------------------------------------------------------------------------
# compare
# ------------------------------------------------------------------------------------------------
VERDICT_TEXT = {
    "identical": "identical: the same guest-visible CPU features; guests can move both ways",
    "superset": "B is a superset: guests from A can move to B (not back)",
    "incompatible": "incompatible: B lacks features a guest on A may use; guests from A cannot move to B",
    "undecided": "undecided: B has every feature of A that hostaudit knows, but A shows flags hostaudit "
                 "does not know that B lacks",
}


ARCH_LABEL = {"x86": "x86", "arm64": "arm64", "arm": "32-bit ARM", "s390x": "s390x", "powerpc": "POWER"}


def arch_label(arch: str | None) -> str:
    return ARCH_LABEL.get(arch or "", arch or "unknown architecture")


def cross_arch_text(a: str | None, b: str | None) -> str:
    """'live migration between x86 (A) and arm64 (B) hosts is impossible'."""
    return f"live migration between {arch_label(a)} (A) and {arch_label(b)} (B) hosts is impossible"


def _cross_arch(a: CpuSource, b: CpuSource) -> bool:
    return bool(a.arch and b.arch and a.arch != b.arch)


def _compare_base(a: CpuSource, b: CpuSource) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "cpu-compare",
        "a": a.describe(),
        "b": b.describe(),
        "cross_vendor": False,
        "cross_arch": False,
        "cross_implementation": False,
        "unknown": {"a": [], "b": []},
        "assumed": [],
        "libvirt_names": {},
        "model": None,
        "level": None,
        "qemu": None,
        "libvirt": None,
    }


def _cross_arch_doc(a: CpuSource, b: CpuSource) -> dict[str, Any]:
    text = cross_arch_text(a.arch, b.arch)
    return {
        **_compare_base(a, b),
        "verdict": "incompatible",
        "migration_safe": False,
        "cross_arch": True,
        "verdict_text": f"incompatible: {text}",
        "missing": [],
        "extra": [],
        "recommendation": (f"{text[0].upper()}{text[1:]}: a guest runs its host's instruction set, which B's CPUs do "
                           "not execute (QEMU could only emulate it, without KVM). Features are not compared."),
        "notes": [],
    }


def _arm_compare_doc(a: CpuSource, b: CpuSource) -> dict[str, Any]:
    from audit.cpu import arm64

    c = arm64.compare(a.cpu, b.cpu, b_kernel=b.kernel_release)
    notes = list(c.notes)
    for side, src in (("A", a), ("B", b)):
        if src.cpu.flags_differ:
            notes.append(f"{side}: processors show different Features; only those all of them have were compared")
    ignored = sorted(set(arm64.KERNEL_ONLY) & (a.cpu.flags | b.cpu.flags))
    if ignored:
        notes.append("not compared, they describe the kernel rather than the CPU (Linux "
                     "Documentation/arch/arm64/elf_hwcaps.rst): "
                     + "; ".join(f"{k} ({arm64.KERNEL_ONLY[k]})" for k in ignored))
    return {
        **_compare_base(a, b),
        "verdict": c.verdict.value,
        "migration_safe": c.verdict.value in ("identical", "superset"),
        "cross_implementation": not c.same_implementation,
        "verdict_text": c.headline,
        "missing": list(c.missing),
        "extra": list(c.extra),
        "qemu": "-cpu host" if c.verdict.value == "identical" else None,
        "recommendation": c.recommendation,
        "notes": notes,
    }


def view_notes(pairs: Sequence[tuple[str, CpuSource]]) -> list[str]:
    """Which CPU source each input's flags came from (a guest-CPU view is preferred), and why not."""
    out = []
    for label, s in pairs:
        out.append(f"{label}: CPU source: {s.view}")
        out += [f"{label}: {n}" for n in s.notes]
    return out


_NO_CAPS = ("no libvirt capabilities (give 'virsh domcapabilities' output, or a snapshot carrying libvirt's QEMU "
            "capabilities cache)")


def usability_of(src: CpuSource) -> tuple[Any, str]:
    """(audit.cpu.models.ModelUsability or None, why not / where from): which named CPU models
    QEMU/KVM on this host reports usable, from its guest-CPU view when that view is in use."""
    guest = src.guest
    if guest is None:
        return None, _NO_CAPS
    from types import MappingProxyType

    from audit.cpu import libvirtcaps as lc
    from audit.cpu.models import ModelUsability

    if src.view == CPUINFO_VIEW:
        return None, f"libvirt's capabilities {guest.source} not used (see the CPU source note)"
    if not guest.lists_models:
        return None, f"{guest.kind} {guest.source} lists no CPU models under KVM"
    if src.kind == "snapshot":
        label = f"libvirt QEMU capabilities cache {guest.source} in {src.source}"
    elif guest.kind == lc.KIND_DOMCAPS:
        label = f"virsh domcapabilities {src.source}"
    else:
        label = f"libvirt QEMU capabilities cache {src.source}"
    return ModelUsability(source=label, usable=frozenset(guest.usable), unknown=frozenset(guest.usable_unknown),
                          blockers=MappingProxyType(dict(guest.blockers))), label


CPUINFO_VIEW = "/proc/cpuinfo"


def blocked_doc(b: Any) -> dict[str, Any]:
    return {"model": b.model, "host": b.host, "source": b.source, "blockers": list(b.blockers)}


def usable_notes(checked: Sequence[str], unchecked: Sequence[str], why: dict[str, str],
                 not_usable: Sequence[Any], chosen: str | None) -> list[str]:
    """Notes on QEMU/KVM's usable models: the newer models passed over (with blockers), and a
    partial check when some hosts could not say."""
    out = []
    if not_usable:
        passed = ", ".join(dict.fromkeys(b.model for b in not_usable))
        out.append(f"passed over, though every host's features allow them: {passed} (QEMU/KVM reports them not "
                   f"usable); {'the model above is the newest every host can run' if chosen else 'no model is left'}")
        out += [b.text() for b in not_usable]
    if checked and unchecked:
        out.append("usable CPU models checked on " + ", ".join(checked) + " only; the check is partial: "
                   + "; ".join(f"{h}: {why.get(h, 'not known')}" for h in unchecked))
    return out


def compare_doc(a: CpuSource, b: CpuSource) -> dict[str, Any]:
    doc = _compare_doc(a, b)
    doc["notes"] = [*doc["notes"], *view_notes([("A", a), ("B", b)])]
    return doc


def _compare_doc(a: CpuSource, b: CpuSource) -> dict[str, Any]:
    from audit.cpu import arm64
    from audit.cpu import models as cm
    from reports.sanitize import xml_comment_text

    if _cross_arch(a, b):
        return _cross_arch_doc(a, b)
    if arm64.is_arm(a.cpu) or arm64.is_arm(b.cpu):
        return _arm_compare_doc(a, b)
    ua, why_a = usability_of(a)
    ub, why_b = usability_of(b)
    c = cm.compare(a.cpu.flags, b.cpu.flags, a_vendor=a.vendor, b_vendor=b.vendor,
                   a_kernel=a.kernel_release, b_kernel=b.kernel_release, a_usable=ua, b_usable=ub,
                   usable_asked=True)
    pool = cm.baseline({"A": a.cpu.flags, "B": b.cpu.flags}, vendors={"A": a.vendor, "B": b.vendor},
                       kernels={"A": a.kernel_release, "B": b.kernel_release},
                       usability={"A": ua, "B": ub})
    notes = list(c.notes)
    if c.a_model_on_b is not None:
        m = c.a_model_on_b
        notes.append(f"A's own newest model {m.model} (a host-model guest on A is expanded to about that) is not "
                     f"usable on B ({m.why()}): guests with that CPU cannot start "
                     "on B")
    notes += usable_notes(c.usable_checked, c.usable_unchecked, {"A": why_a, "B": why_b},
                          () if c.cross_vendor else c.not_usable, c.model.name if c.model else None)
    for side, src in (("A", a), ("B", b)):
        if src.cpu.flags_differ:
            notes.append(f"{side}: processors show different flags; only those all of them have were compared")
    named = not c.cross_vendor and pool.model is not None
    vendor = pool.vendor or (a.vendor if a.vendor == b.vendor else None)
    verdict_text = VERDICT_TEXT[c.verdict.value]
    if c.cross_vendor:
        verdict_text = "incompatible: " + cm.cross_vendor_text(a.vendor, b.vendor)
    return {
        **_compare_base(a, b),
        "verdict": c.verdict.value,
        "verdict_text": verdict_text,
        "migration_safe": c.verdict.value in ("identical", "superset"),
        "cross_vendor": c.cross_vendor,
        "missing": list(c.missing),
        "extra": list(c.extra),
        "unknown": {"a": list(c.unknown_a), "b": list(c.unknown_b)},
        "assumed": list(c.assumed),
        "libvirt_names": cm.libvirt_names([*c.missing, *c.extra, *c.assumed], vendor),
        "model": c.model.name if c.model else None,
        "level": c.level,
        "qemu": f"-cpu {cm.qemu_cpu_arg(pool)}" if named else None,
        "libvirt": cm.libvirt_xml(pool, comment=xml_comment_text) if named else None,
        "recommendation": c.recommendation,
        **({"usable": {"checked": list(c.usable_checked), "unchecked": list(c.usable_unchecked),
                       "sources": {k: w for k, u, w in (("A", ua, why_a), ("B", ub, why_b)) if u is not None},
                       "not_usable": [blocked_doc(x) for x in c.not_usable],
                       "a_model_on_b": blocked_doc(c.a_model_on_b) if c.a_model_on_b else None}}
           if c.usable_checked else {}),  # only with a view: outputs from /proc/cpuinfo alone keep their shape
        "notes": notes,
    }


def _wrap(items: Sequence[str], indent: str = "  ", width: int = 100) -> str:
    """Names (host-supplied: made printable) as a comma-separated list wrapped into indented lines."""
    from reports.sanitize import printable

    if not items:
        return f"{indent}(none)"
    lines, line = [], indent
    cells = [printable(item) + ("," if i < len(items) - 1 else "") for i, item in enumerate(items)]
    for cell in cells:
        if len(line) + len(cell) + 1 > width and line.strip():
            lines.append(line.rstrip())
            line = indent
        line += cell + " "
    lines.append(line.rstrip())
    return "\n".join(lines)


def _paired(names: Sequence[str], mapping: dict[str, str]) -> list[str]:
    """'pclmulqdq / pclmuldq' where libvirt's name differs, else the name."""
    return [f"{n} / {mapping[n]}" if n in mapping else n for n in names]


def _host_line(prefix: str, d: dict[str, Any]) -> str:
    impls = d.get("implementations") or []
    if impls:  # ARM: the implementations say what the CPU is; there is no model name
        what = " + ".join(f"{i['name']} x{i['processors']}" if len(impls) > 1 else i["name"] for i in impls)
    else:
        what = d["model_name"] or "unknown CPU"
    where = f"; {d['source']}" if d["source"] != d["name"] else ""
    kernel = f"; kernel {d['kernel_release']}" if d.get("kernel_release") else ""
    arch = f"{d['arch']}, " if d.get("arch") and d["arch"] != "x86" else ""
    count = f", {d['processors']} processor(s)" if d.get("processors") else ""
    view = f"; from {d['input']}" if d.get("input") in ("domcapabilities", "qemu-caps-cache") else ""
    return f"{prefix}{d['name']} ({arch}{what}{count}{kernel}{where}{view})"


def _unknown_lines(unknown: dict[str, list[str]], labels: dict[str, str]) -> list[str]:
    from audit.cpu import models as cm

    if not any(unknown.values()):
        return []
    table = cm.load_table()
    where = table.kernel.describe() if table.kernel else "the model table"
    out = [f"flags hostaudit does not know ({where}; not compared, counted neither way):"]
    for key, label in labels.items():
        out += [f"  {label}:", _wrap(unknown.get(key, []), indent="    ")]
    return out


def compare_text(doc: dict[str, Any]) -> str:
    from reports.sanitize import printable

    names = doc.get("libvirt_names", {})
    verdict = doc.get("verdict_text") or VERDICT_TEXT[doc["verdict"]]
    arm = any(doc[side].get("implementations") for side in ("a", "b"))
    word = "Features" if arm else "features"
    out = [
        printable(_host_line("A: ", doc["a"])),
        printable(_host_line("B: ", doc["b"])),
        "",
        printable(f"verdict: {verdict}"),
        "",
    ]
    if doc.get("cross_arch"):
        out.append("features: not compared (different architectures)")
    else:
        out += [
            f"A has, B lacks ({len(doc['missing'])}): guests started on A may use these",
            _wrap(_paired(doc["missing"], names)),
            f"B has, A lacks ({len(doc['extra'])}):",
            _wrap(_paired(doc["extra"], names)),
        ]
        if arm and doc.get("cross_implementation"):
            out[-4] = f"A has, B lacks ({len(doc['missing'])}) {word} (not what decides: the implementations differ)"
    out += _unknown_lines(doc.get("unknown", {}), {"a": "A", "b": "B"})
    out.append("")
    if doc.get("cross_arch"):
        out += ["newest named model both support: none: live migration across architectures is impossible",
                "instead of -cpu host: none"]
    elif arm:
        out.append("CPU to use: " + ("host-passthrough (-cpu host)" if doc.get("qemu") else
                                     "none: do not live-migrate guests from A to B"))
    elif doc.get("cross_vendor"):
        out += ["newest named model both support: none: live migration across vendors is not supported",
                "instead of -cpu host: none: shut the guest down and start it on B"]
    else:
        out += [
            f"newest named model both support: {doc['model'] or 'none'}"
            + (f" (x86-64 level: {doc['level']})" if doc["level"] else ""),
            f"instead of -cpu host: {doc['qemu'] or 'no named model fits both; do not live-migrate'}",
        ]
    if doc["libvirt"]:
        out += ["libvirt domain XML:", doc["libvirt"].rstrip()]
    if doc.get("assumed"):
        out.append("assumed, not added: " + ", ".join(_paired(doc["assumed"], names)))
    out += ["", printable(doc["recommendation"])]
    out += [printable(f"note: {n}") for n in doc["notes"] if not (doc.get("cross_vendor") and n in verdict)]
    return "\n".join(out) + "\n"


def cmd_compare(args: argparse.Namespace) -> int:
    (a,) = load_input(args.a)
    (b,) = load_input(args.b)
    doc = compare_doc(a, b)
    if args.format == "json":
        sys.stdout.write(jsontext.dumps(doc, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(compare_text(doc))
    return 0 if doc["migration_safe"] else 1


# ------------------------------------------------------------------------------------------------
# baseline
# ------------------------------------------------------------------------------------------------
def _baseline_base(sources: Sequence[CpuSource], names: Sequence[str]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "cpu-baseline",
        "model": None,
        "level": None,
        "vendor": None,
        "arch": None,
        "features": [],
        "extra_features": [],
        "assumed": [],
        "libvirt_names": {},
        "qemu": None,
        "libvirt": None,
        "host_passthrough": False,
        "left_out": {"unnamed": [], "unknown": []},
        "hosts": [{**s.describe(), "name": n, "own_model": None, "lost": [], "unknown": []}
                  for n, s in zip(names, sources, strict=True)],
        "notes": [],
    }


MIXED_ARCH = "no common CPU: hosts of different architectures"


def _mixed_arch_baseline(sources: Sequence[CpuSource], names: Sequence[str]) -> dict[str, Any]:
    by_arch: dict[str, list[str]] = {}
    for n, s in zip(names, sources, strict=True):
        by_arch.setdefault(arch_label(s.arch), []).append(n)
    listed = "; ".join(f"{arch}: {', '.join(hosts)}" for arch, hosts in sorted(by_arch.items()))
    headline = f"{MIXED_ARCH} ({listed}); live migration between them is impossible"
    return {**_baseline_base(sources, names), "headline": headline, "notes": [headline]}


def _arm_baseline(sources: Sequence[CpuSource], names: Sequence[str]) -> dict[str, Any]:
    from audit.cpu import arm64
    from reports.sanitize import xml_comment_text

    b = arm64.baseline({n: s.cpu for n, s in zip(names, sources, strict=True)})
    doc = _baseline_base(sources, names)
    for h in doc["hosts"]:
        h["lost"] = list(b.lost[h["name"]])
    libvirt = None
    if b.passthrough:
        what = arm64.implementations_text(arm64.implementations(sources[0].cpu))
        libvirt = ("<cpu mode='host-passthrough'>\n"
                   f"  <!-- {xml_comment_text('every host: ' + what)} -->\n"
                   "</cpu>\n")
    return {
        **doc,
        "arch": arches.pop() if len(arches := {s.arch for s in sources if s.arch}) == 1 else None,
        "features": sorted(b.features),
        "host_passthrough": b.passthrough,
        "qemu": "-cpu host" if b.passthrough else None,
        "libvirt": libvirt,
        "headline": b.headline,
        "notes": [b.headline, *b.notes],
    }


def baseline_doc(sources: Sequence[CpuSource]) -> dict[str, Any]:
    names = _unique_names(sources)
    doc = _baseline_doc(sources, names)
    doc["notes"] = [*doc["notes"], *view_notes(list(zip(names, sources, strict=True)))]
    return doc


def _baseline_doc(sources: Sequence[CpuSource], names: Sequence[str]) -> dict[str, Any]:
    from audit.cpu import arm64
    from audit.cpu import models as cm
    from reports.sanitize import xml_comment_text

    if len({s.arch for s in sources if s.arch}) > 1:
        return _mixed_arch_baseline(sources, names)
    if any(arm64.is_arm(s.cpu) for s in sources):
        return _arm_baseline(sources, names)
    views = {n: usability_of(s) for n, s in zip(names, sources, strict=True)}
    vendor_of = [s.vendor for s in sources]
    b = cm.baseline({n: s.cpu.flags for n, s in zip(names, sources, strict=True)},
                    vendors=dict(zip(names, vendor_of, strict=True)),
                    kernels={n: s.kernel_release for n, s in zip(names, sources, strict=True)},
                    usability={n: u for n, (u, _) in views.items()})
    hosts = []
    for hb, src in zip(b.hosts, sources, strict=True):
        hosts.append({**src.describe(), "name": hb.name, "own_model": hb.model.name if hb.model else None,
                      "lost": list(hb.lost), "unknown": list(hb.unknown)})
    vendors = {v for v in vendor_of if v}
    notes = list(b.notes)
    notes += usable_notes(b.usable_checked, b.usable_unchecked, {n: w for n, (_, w) in views.items()},
                          b.not_usable, b.model.name if b.model else None)
    headline = (f"newest named model every host supports: {b.model.name}" if b.model
                else "no named CPU model fits every host")
    if len(vendors) > 1:
        labels = ", ".join(sorted(cm.vendor_label(v) for v in vendors))
        headline = (f"hosts of different vendors ({labels}): live migration between them is not "
                    "supported; the generic model below only lets a guest start on any of them")
        notes.insert(0, headline)
    lost = {f for hb in b.hosts for f in hb.lost}
    arches = {s.arch for s in sources}
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "cpu-baseline",
        "model": b.model.name if b.model else None,
        "level": b.level,
        "vendor": b.vendor,
        "arch": arches.pop() if len(arches) == 1 else None,
        "features": sorted(b.features),
        "extra_features": list(b.extra_features),
        "assumed": list(b.assumed),
        "libvirt_names": cm.libvirt_names([*b.features, *lost], b.vendor),
        "qemu": f"-cpu {cm.qemu_cpu_arg(b)}" if b.model else None,
        "libvirt": cm.libvirt_xml(b, comment=xml_comment_text) if b.model else None,
        "host_passthrough": False,
        "left_out": cm.left_out(b) if b.model else {"unnamed": [], "unknown": sorted({f for h in b.hosts
                                                                                     for f in h.unknown})},
        "headline": headline,
        "hosts": hosts,
        **({"usable": {"checked": list(b.usable_checked), "unchecked": list(b.usable_unchecked),
                       "sources": {n: w for n, (u, w) in views.items() if u is not None},
                       "not_usable": [blocked_doc(x) for x in b.not_usable]}}
           if b.usable_checked else {}),
        "notes": notes,
    }


def _arm_baseline_text(doc: dict[str, Any]) -> str:
    from reports.sanitize import printable

    out = [f"hosts ({len(doc['hosts'])}):"]
    out += [printable(_host_line("  ", h)) for h in doc["hosts"]]
    out += ["", printable(doc["headline"]), ""]
    out += [f"shared Features ({len(doc['features'])}):", _wrap(doc["features"])]
    out += ["", f"qemu: {doc['qemu'] or 'none: no CPU every host can give a guest'}"]
    if doc["libvirt"]:
        out += ["libvirt:", doc["libvirt"].rstrip()]
    if any(h["lost"] for h in doc["hosts"]):
        out += ["", "per host, the Features a guest there would lose against the pool:"]
        for h in doc["hosts"]:
            out.append(printable(f"  {h['name']}: {len(h['lost'])} Feature(s)"))
            if h["lost"]:
                out.append(_wrap(h["lost"], indent="    "))
    notes = [n for n in doc.get("notes", []) if n != doc["headline"]]
    if notes:
        out.append("")
        out += [printable(f"note: {n}") for n in notes]
    return "\n".join(out) + "\n"


def baseline_text(doc: dict[str, Any]) -> str:
    from reports.sanitize import printable

    if doc.get("arch") in ("arm64", "arm"):
        return _arm_baseline_text(doc)
    if doc.get("headline", "").startswith(MIXED_ARCH):
        out = [f"hosts ({len(doc['hosts'])}):", *(printable(_host_line("  ", h)) for h in doc["hosts"]), "",
               printable(doc["headline"]), "", "qemu: none: no CPU every host can give a guest"]
        return "\n".join(out) + "\n"
    names = doc.get("libvirt_names", {})
    out = [f"hosts ({len(doc['hosts'])}):"]
    out += [printable(_host_line("  ", h)) for h in doc["hosts"]]
    out += [printable(f"note: {n}") for n in doc.get("notes", [])[:1]
            if "different vendors" in n or "different architectures" in n]
    out += [
        "",
        f"vendor: {doc['vendor'] or 'mixed or unknown (generic models only)'}",
        f"newest named model every host supports: {doc['model'] or 'none'}",
        f"highest x86-64 level every host reaches: {doc['level'] or 'none'}",
        f"shared guest-visible features ({len(doc['features'])}):",
        _wrap(_paired(doc["features"], names)),
        f"shared features beyond the model ({len(doc['extra_features'])}):",
        _wrap(_paired(doc["extra_features"], names)),
    ]
    if doc.get("assumed"):
        out.append("assumed, not added: " + ", ".join(_paired(doc["assumed"], names)))
    out += _unknown_lines({h["name"]: h.get("unknown", []) for h in doc["hosts"]},
                          {h["name"]: h["name"] for h in doc["hosts"] if h.get("unknown")})
    out += ["", f"qemu: {doc['qemu'] or 'no named model fits every host'}"]
    unnamed = (doc.get("left_out") or {}).get("unnamed") or []
    if doc["qemu"] and unnamed:
        out.append(printable("left out of -cpu and the libvirt XML (no QEMU or libvirt name): " + ", ".join(unnamed)))
    if doc["libvirt"]:
        out += ["libvirt:", doc["libvirt"].rstrip()]
    out += ["", "per host, what a guest loses against -cpu host (host-passthrough):"]
    for h in doc["hosts"]:
        own = h["own_model"] or "no named model"
        out.append(printable(f"  {h['name']} (alone: {own}): {len(h['lost'])} feature(s)"))
        if h["lost"]:
            out.append(_wrap(_paired(h["lost"], names), indent="    "))
    notes = [n for n in doc.get("notes", []) if "different vendors" not in n and "different architectures" not in n]
    if notes:
        out.append("")
        out += [printable(f"note: {n}") for n in notes]
    return "\n".join(out) + "\n"


def cmd_baseline(args: argparse.Namespace) -> int:
    from audit.cli.options import finishing
    from reports.sanitize import printable

    sources = [s for spec in args.inputs for s in load_input(spec, allow_dir=True)]
    finishing()
    doc = baseline_doc(sources)
    fits = bool(doc["model"] or doc.get("host_passthrough"))
    if args.format == "json":
        sys.stdout.write(jsontext.dumps(doc, indent=2, sort_keys=True) + "\n")
        return 0 if fits else 1
    if args.format in ("libvirt", "qemu"):
        if not fits:
            why = doc.get("headline") if doc.get("arch") != "x86" else None
            print(printable(f"hostaudit: {why or 'no named CPU model fits every host'}: nothing to render"),
                  file=sys.stderr)
            return 1
        sys.stdout.write(doc["libvirt"] if args.format == "libvirt" else doc["qemu"] + "\n")
        left = doc.get("left_out") or {}
        for key, why in (("unnamed", "no QEMU or libvirt name"), ("unknown", "flags hostaudit does not know")):
            if left.get(key):
                print(printable(f"hostaudit: note: left out ({why}): {', '.join(left[key])}"), file=sys.stderr)
        return 0
    sys.stdout.write(baseline_text(doc))
    return 0 if fits else 1


# ------------------------------------------------------------------------------------------------
# models
# ------------------------------------------------------------------------------------------------
def models_doc(host: CpuSource | None, vendor: str | None) -> dict[str, Any]:
    from audit.cpu import models as cm

    table = cm.load_table()
    foreign = host is not None and host.arch not in ("x86", None)
    gv = cm.guest_visible(host.cpu.flags, table) if host and not foreign else None
    rows = []
    for name, line, rank, level, nfeat, alias in cm.model_table_rows(vendor, table):
        row: dict[str, Any] = {"name": name, "vendor": line, "rank": int(rank),
                               "level": None if level == "-" else level, "features": int(nfeat),
                               "alias_of": alias or None}
        if gv is not None:
            missing = sorted(table.model(name).features - gv)
            row["supported"] = not missing
            row["missing"] = missing
        rows.append(row)
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "kind": "cpu-models", "models": rows,
                           "source": dict(table.source)}
    if table.kernel is not None:
        doc["flag_source"] = {"current": table.kernel.current, "kernels": table.kernel.describe()}
    if host is not None and foreign:
        from audit.cpu import arm64

        if arm64.is_arm(host.cpu):
            note = (f"{arm64.KVM['no_models']}; this host: "
                    f"{arm64.implementations_text(arm64.implementations(host.cpu))}")
        else:
            note = (f"the model table is x86 (libvirt's x86 CPU map): it says nothing about this "
                    f"{arch_label(host.arch)} host")
        doc["host"] = {**host.describe(), "newest_model": None, "level": None, "unknown": [], "note": note}
        doc["libvirt_names"] = {}
    elif host is not None:
        newest = cm.newest_model(host.cpu.flags, host.vendor, table)
        doc["host"] = {**host.describe(), "newest_model": newest.name if newest else None,
                       "level": cm.x86_level(host.cpu.flags, table),
                       "unknown": sorted(cm.unknown_flags(host.cpu.flags, table))}
        doc["libvirt_names"] = cm.libvirt_names({f for r in rows for f in r["missing"]}, host.vendor, table)
    return doc


def models_text(doc: dict[str, Any]) -> str:
    from tabulate import tabulate

    from reports.sanitize import printable

    host = doc.get("host")
    headers = ["model", "vendor", "rank", "level", "features", "alias of"]
    compared = bool(host) and "note" not in host
    if compared:
        headers += ["supported", "missing"]
    names = doc.get("libvirt_names", {})
    rows = []
    for r in doc["models"]:
        row = [r["name"], r["vendor"], str(r["rank"]), r["level"] or "-", str(r["features"]), r["alias_of"] or ""]
        if compared:
            shown = ", ".join(_paired(r["missing"][:6], names)) + (", ..." if len(r["missing"]) > 6 else "")
            row += ["yes" if r["supported"] else "no", shown]
        rows.append(row)
    out = []
    if host and not compared:
        out += [printable(_host_line("host: ", host)), printable(f"note: {host['note']}"), ""]
    elif host:
        out += [printable(_host_line("host: ", host)),
                f"newest model: {host['newest_model'] or 'none'}; x86-64 level: {host['level'] or 'none'}"]
        if host.get("unknown"):
            out.append(printable("flags hostaudit does not know (not counted): " + ", ".join(host["unknown"])))
        out.append("")
    out.append(tabulate(rows, headers=headers, disable_numparse=True))
    src = doc.get("source") or {}
    if src:
        out += ["", "table: " + ", ".join(f"{k} {v}" for k, v in sorted(src.items()))]
    if doc.get("flag_source"):
        out.append(f"flag names: {doc['flag_source']['kernels']} (cpufeatures.h)")
    return "\n".join(out) + "\n"


def cmd_models(args: argparse.Namespace) -> int:
    host = load_input(args.host)[0] if args.host else None
    doc = models_doc(host, args.vendor)
    if args.format == "json":
        sys.stdout.write(jsontext.dumps(doc, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(models_text(doc))
    return 0


# ------------------------------------------------------------------------------------------------
# registration
# ------------------------------------------------------------------------------------------------
INPUT_HELP = ("a snapshot (hostaudit collect or collect.sh), a saved /proc/cpuinfo, 'virsh domcapabilities' "
              "output or a libvirt QEMU capabilities cache file (the CPU guests get), or 'local'")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("cpu", help="CPU compatibility between hosts for live migration")
    sub = p.add_subparsers(dest="cpu_command", parser_class=type(p), required=True)

    c = sub.add_parser("compare", help="can guests move from host A to host B?",
                       description="Exit 0 when guests from A can move to B, 1 when they cannot, 2 on bad input.")
    c.add_argument("a", metavar="A", help=INPUT_HELP)
    c.add_argument("b", metavar="B", help=INPUT_HELP)
    c.add_argument("--format", choices=("text", "json"), default="text")
    c.set_defaults(func=cmd_compare)

    b = sub.add_parser("baseline", help="the CPU model and features every host of a pool shares",
                       description="Exit 0 when a named model fits every host, 1 when none does, 2 on bad input.")
    b.add_argument("inputs", metavar="INPUT", nargs="+", help=INPUT_HELP + ", or a directory of them")
    b.add_argument("--format", choices=("text", "json", "libvirt", "qemu"), default="text",
                   help="text (all of it), json, libvirt (<cpu> XML) or qemu (-cpu argument)")
    b.set_defaults(func=cmd_baseline)

    m = sub.add_parser("models", help="the CPU model table, and which models a host supports")
    m.add_argument("--host", metavar="INPUT", help=INPUT_HELP)
    m.add_argument("--vendor", choices=("intel", "amd", "hygon", "generic"), help="only this vendor's models")
    m.add_argument("--format", choices=("text", "json"), default="text")
    m.set_defaults(func=cmd_models)
