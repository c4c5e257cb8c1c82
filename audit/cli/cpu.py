"""``hostaudit cpu compare|baseline|models``: live-migration CPU compatibility between hosts.

Each host is a snapshot (JSON or collect.sh text), a saved /proc/cpuinfo, or ``local`` (this
machine). The judgement itself is audit.cpu.models'; this module reads inputs and formats answers.

Exit codes: compare 0 when a guest can move from A to B, 1 when it cannot (or when A shows flags
hostaudit does not know that B lacks: undecided); baseline 0 when a named model fits every host, 1
when none does; 2 on bad input, always in one line.

Feature lists are Linux /proc/cpuinfo names; where libvirt spells a feature differently the text
shows both ("pclmulqdq / pclmuldq") and the JSON maps one to the other ("libvirt_names").
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from audit.cpu.sources import CpuSource, load_input

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


def compare_doc(a: CpuSource, b: CpuSource) -> dict[str, Any]:
    from audit.cpu import models as cm

    c = cm.compare(a.cpu.flags, b.cpu.flags, a_vendor=a.vendor, b_vendor=b.vendor,
                   a_kernel=a.kernel_release, b_kernel=b.kernel_release)
    pool = cm.baseline({"A": a.cpu.flags, "B": b.cpu.flags}, vendors={"A": a.vendor, "B": b.vendor},
                       kernels={"A": a.kernel_release, "B": b.kernel_release})
    notes = list(c.notes)
    for side, src in (("A", a), ("B", b)):
        if src.cpu.flags_differ:
            notes.append(f"{side}: processors show different flags; only those all of them have were compared")
    named = not c.cross_vendor and pool.model is not None
    vendor = pool.vendor or (a.vendor if a.vendor == b.vendor else None)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "cpu-compare",
        "a": a.describe(),
        "b": b.describe(),
        "verdict": c.verdict.value,
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
        "libvirt": cm.libvirt_xml(pool) if named else None,
        "recommendation": c.recommendation,
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
    what = d["model_name"] or "unknown CPU"
    where = f"; {d['source']}" if d["source"] != d["name"] else ""
    kernel = f"; kernel {d['kernel_release']}" if d.get("kernel_release") else ""
    return f"{prefix}{d['name']} ({what}, {d['processors']} processor(s){kernel}{where})"


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
    verdict = VERDICT_TEXT[doc["verdict"]]
    if doc.get("cross_vendor"):
        from audit.cpu import models as cm

        verdict = "incompatible: " + cm.cross_vendor_text(doc["a"]["vendor"], doc["b"]["vendor"])
    out = [
        printable(_host_line("A: ", doc["a"])),
        printable(_host_line("B: ", doc["b"])),
        "",
        f"verdict: {verdict}",
        "",
        f"A has, B lacks ({len(doc['missing'])}): guests started on A may use these",
        _wrap(_paired(doc["missing"], names)),
        f"B has, A lacks ({len(doc['extra'])}):",
        _wrap(_paired(doc["extra"], names)),
    ]
    out += _unknown_lines(doc.get("unknown", {}), {"a": "A", "b": "B"})
    out.append("")
    if doc.get("cross_vendor"):
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
        sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(compare_text(doc))
    return 0 if doc["migration_safe"] else 1


# ------------------------------------------------------------------------------------------------
# baseline
# ------------------------------------------------------------------------------------------------
def baseline_doc(sources: Sequence[CpuSource]) -> dict[str, Any]:
    from audit.cpu import models as cm

    names = _unique_names(sources)
    b = cm.baseline({n: s.cpu.flags for n, s in zip(names, sources, strict=True)},
                    vendors={n: s.vendor for n, s in zip(names, sources, strict=True)},
                    kernels={n: s.kernel_release for n, s in zip(names, sources, strict=True)})
    hosts = []
    for hb, src in zip(b.hosts, sources, strict=True):
        hosts.append({**src.describe(), "name": hb.name, "own_model": hb.model.name if hb.model else None,
                      "lost": list(hb.lost), "unknown": list(hb.unknown)})
    vendors = {s.vendor for s in sources if s.vendor}
    notes = list(b.notes)
    if len(vendors) > 1:
        labels = ", ".join(sorted(cm.vendor_label(v) for v in vendors))
        notes.insert(0, f"hosts of different vendors ({labels}): live migration between them is not "
                        "supported; the generic model below only lets a guest start on any of them")
    lost = {f for hb in b.hosts for f in hb.lost}
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "cpu-baseline",
        "model": b.model.name if b.model else None,
        "level": b.level,
        "vendor": b.vendor,
        "features": sorted(b.features),
        "extra_features": list(b.extra_features),
        "assumed": list(b.assumed),
        "libvirt_names": cm.libvirt_names([*b.features, *lost], b.vendor),
        "qemu": f"-cpu {cm.qemu_cpu_arg(b)}" if b.model else None,
        "libvirt": cm.libvirt_xml(b) if b.model else None,
        "hosts": hosts,
        "notes": notes,
    }


def baseline_text(doc: dict[str, Any]) -> str:
    from reports.sanitize import printable

    names = doc.get("libvirt_names", {})
    out = [f"hosts ({len(doc['hosts'])}):"]
    out += [printable(_host_line("  ", h)) for h in doc["hosts"]]
    out += [printable(f"note: {n}") for n in doc.get("notes", [])[:1] if "different vendors" in n]
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
    if doc["libvirt"]:
        out += ["libvirt:", doc["libvirt"].rstrip()]
    out += ["", "per host, what a guest loses against -cpu host (host-passthrough):"]
    for h in doc["hosts"]:
        own = h["own_model"] or "no named model"
        out.append(printable(f"  {h['name']} (alone: {own}): {len(h['lost'])} feature(s)"))
        if h["lost"]:
            out.append(_wrap(_paired(h["lost"], names), indent="    "))
    notes = [n for n in doc.get("notes", []) if "different vendors" not in n]
    if notes:
        out.append("")
        out += [printable(f"note: {n}") for n in notes]
    return "\n".join(out) + "\n"


def cmd_baseline(args: argparse.Namespace) -> int:
    sources = [s for spec in args.inputs for s in load_input(spec, allow_dir=True)]
    doc = baseline_doc(sources)
    if args.format == "json":
        sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        return 0 if doc["model"] else 1
    if args.format in ("libvirt", "qemu"):
        if not doc["model"]:
            print("hostaudit: no named CPU model fits every host: nothing to render", file=sys.stderr)
            return 1
        sys.stdout.write(doc["libvirt"] if args.format == "libvirt" else doc["qemu"] + "\n")
        return 0
    sys.stdout.write(baseline_text(doc))
    return 0 if doc["model"] else 1


# ------------------------------------------------------------------------------------------------
# models
# ------------------------------------------------------------------------------------------------
def models_doc(host: CpuSource | None, vendor: str | None) -> dict[str, Any]:
    from audit.cpu import models as cm

    table = cm.load_table()
    gv = cm.guest_visible(host.cpu.flags, table) if host else None
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
    if host is not None:
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
    if host:
        headers += ["supported", "missing"]
    names = doc.get("libvirt_names", {})
    rows = []
    for r in doc["models"]:
        row = [r["name"], r["vendor"], str(r["rank"]), r["level"] or "-", str(r["features"]), r["alias_of"] or ""]
        if host:
            shown = ", ".join(_paired(r["missing"][:6], names)) + (", ..." if len(r["missing"]) > 6 else "")
            row += ["yes" if r["supported"] else "no", shown]
        rows.append(row)
    out = []
    if host:
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
        sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(models_text(doc))
    return 0


# ------------------------------------------------------------------------------------------------
# registration
# ------------------------------------------------------------------------------------------------
INPUT_HELP = "a snapshot (hostaudit collect or collect.sh), a saved /proc/cpuinfo, or 'local'"


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
