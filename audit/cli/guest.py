"""``hostaudit guest check DOMAIN.xml... --host SNAPSHOT...``: can each guest move to each host?

Guests are libvirt domain XML as ``virsh dumpxml`` writes it (audit.guest.domain reads it, bounded);
hosts are snapshots (CPU and memory), saved /proc/cpuinfo files (CPU only), libvirt's guest-CPU
views (domcapabilities, a QEMU capabilities cache file) or ``virsh capabilities`` (machine types and
topology, never the CPU), each with ``--caps`` files of the same host after it. The judgement is
audit.guest.judge's; this module reads inputs and formats the matrix.

Exit codes: 0 every guest can move to every host; 1 some cannot, or hostaudit cannot tell (verdict
``unknown``, as ``cpu compare`` exits 1 when undecided); 2 on bad input, in one line.

JSON (``--format json``, keys sorted)::

    {"schema_version": 1, "kind": "guest-check",
     "guests": [{"name", "source", "running", "cpu_mode", "model", "arch", "machine",
                 "memory": bytes|null, "hugepages": bool, "pages": [{"size": bytes|null, "nodeset"}]}],
     "hosts":  [{"name", "source", "input": "snapshot"|"cpuinfo"|"domcapabilities"|"qemu-caps-cache"|"capabilities",
                 "arch", "vendor", "model_name", "memory_facts": bool, "cpu_view": str,
                 "machines": [machine types and aliases QEMU offers under KVM, every arch] | null,
                 "libvirt": [{"kind", "source"}: the libvirt documents read for it, --caps included],
                 "usable_models_from": "domcapabilities FILE" | "qemu-caps-cache FILE" | null,
                 "stale_cache": {"source": path in the snapshot, "why": [str]} | null (a snapshot's libvirt
                                capabilities cache that no longer describes the host: not used at all),
                 "notes": [str]}],
     "from":   {"name", "source", ...} | null,
     "results": [{"guest": guest name, "host": host name, "verdict": "ok"|"not-ok"|"unknown",
                  "reasons": [{"aspect": "arch"|"cpu"|"machine"|"memory", "verdict": ..., "text": str}],
                  "missing": [libvirt feature names], "forbidden": [...], "unknown": [...],
                  "hugepages": {"<page size in bytes>": bytes of guest memory}}],
     "summary": {"ok": n, "not-ok": n, "unknown": n}, "all_can_move": bool}

``results`` holds one entry per guest x host, guests in the order given, each with every host in
order. Guest and host names are made unique the way ``cpu baseline`` does it. Every string that came
from an input is data: text output shows it through reports.sanitize.printable, HTML through
html_text (escaped), JSON as a string.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from reports import jsontext

SCHEMA_VERSION = 1
VERDICT_WORD = {"ok": "ok", "not-ok": "NOT OK", "unknown": "unknown"}


def _unique(names: Sequence[str], sources: Sequence[str]) -> list[str]:
    from audit.cli.cpu import _unique_names

    class _N:
        def __init__(self, name: str, source: str) -> None:
            self.name, self.source = name, source

    return _unique_names([_N(n, s) for n, s in zip(names, sources, strict=True)])  # type: ignore[list-item]


def check_doc(doms: Sequence[Any], dests: Sequence[Any], source: Any = None) -> dict[str, Any]:
    from audit.guest import judge as gj

    gnames = _unique([d.name for d in doms], [d.source for d in doms])
    hnames = _unique([h.name for h in dests], [h.source for h in dests])
    results = []
    per_host: dict[int, list[Any]] = {i: [] for i in range(len(dests))}
    for gname, dom in zip(gnames, doms, strict=True):
        for i, (hname, dest) in enumerate(zip(hnames, dests, strict=True)):
            j = gj.judge(dom, dest, source)
            per_host[i].append(j)
            results.append({
                "guest": gname, "host": hname, "verdict": j.verdict.value,
                "reasons": [{"aspect": r.aspect, "verdict": r.verdict.value, "text": r.text} for r in j.reasons],
                "missing": list(j.missing), "forbidden": list(j.forbidden), "unknown": list(j.unknown),
                "hugepages": {str(k): v for k, v in sorted(j.needs.items())},
            })
    hosts = []
    for i, (hname, dest) in enumerate(zip(hnames, dests, strict=True)):
        notes = gj.together_notes(doms, dest, per_host[i]) + dest.view_notes()
        if not dest.machine_docs():
            why = ("; the snapshot's libvirt capabilities cache is stale" if dest.stale_cache is not None else "")
            notes.append(f"machine types not checked: which ones this host's QEMU offers is not known{why} (add "
                         "its 'virsh capabilities' or 'virsh domcapabilities' output with --caps, or give a "
                         "snapshot carrying a current libvirt capabilities cache)")
        if dest.usable_view() is None and any(d.expanded for d in doms):
            notes.append("usable CPU models not checked: QEMU/KVM's own word on them is not known for this host "
                         "(add its 'virsh domcapabilities' output with --caps, or give a snapshot carrying a "
                         "current libvirt capabilities cache)")
        if dest.memory is not None and dest.memory.partial:
            notes.append(f"memory from {dest.memory.source}: RAM and huge page pools only (not free pages, "
                         "reservations or hugetlbfs mounts)")
        if dest.memory is None and dest.memory_why:
            notes.append(dest.memory_why)
        hosts.append({**dest.describe(), "name": hname, "notes": notes})
    guests = [{
        "name": gname, "source": d.source, "running": d.running, "cpu_mode": d.cpu_mode, "model": d.model,
        "arch": d.arch, "machine": d.machine, "memory": d.memory, "hugepages": d.hugepages,
        "pages": [{"size": p.size, "nodeset": p.nodeset} for p in d.pages],
    } for gname, d in zip(gnames, doms, strict=True)]
    summary = {v.value: sum(1 for r in results if r["verdict"] == v.value) for v in gj.Verdict}
    return {
        "schema_version": SCHEMA_VERSION, "kind": "guest-check", "guests": guests, "hosts": hosts,
        "from": source.describe() if source is not None else None,
        "results": results, "summary": summary, "all_can_move": summary["ok"] == len(results),
    }


def check_text(doc: dict[str, Any]) -> str:
    from tabulate import tabulate

    from reports.sanitize import printable

    hosts = [h["name"] for h in doc["hosts"]]
    cells = {(r["guest"], r["host"]): r for r in doc["results"]}
    rows = []
    for g in doc["guests"]:
        rows.append([printable(g["name"]), printable(g["cpu_mode"] or "default")]
                    + [VERDICT_WORD[cells[(g["name"], h)]["verdict"]] for h in hosts])
    out = [tabulate(rows, headers=["guest", "cpu", *(printable(h) for h in hosts)], disable_numparse=True), ""]
    for r in doc["results"]:
        out.append(printable(f"{r['guest']} -> {r['host']}: {VERDICT_WORD[r['verdict']]}"))
        out += [printable(f"  [{x['aspect']}] {VERDICT_WORD[x['verdict']]}: {x['text']}") for x in r["reasons"]]
    for h in doc["hosts"]:
        out += [printable(f"note ({h['name']}): {n}") for n in h["notes"]]
    s = doc["summary"]
    out += ["", f"{s['ok']} ok, {s['not-ok']} not ok, {s['unknown']} unknown of {len(doc['results'])}"]
    return "\n".join(out) + "\n"


_CSS = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #999;"
        "padding:.3em .6em;text-align:left;vertical-align:top}.ok{background:#dfd}.not-ok{background:#fdd}"
        ".unknown{background:#ffd}ul{margin:0;padding-left:1.2em}")


def check_html(doc: dict[str, Any]) -> str:
    """A small self-contained page; every input string goes through html_text (escaped)."""
    from reports.sanitize import html_text as e

    cells = {(r["guest"], r["host"]): r for r in doc["results"]}
    head = "".join(f"<th>{e(h['name'])}</th>" for h in doc["hosts"])
    rows = []
    for g in doc["guests"]:
        tds = []
        for h in doc["hosts"]:
            r = cells[(g["name"], h["name"])]
            items = "".join(f"<li>[{e(x['aspect'])}] {e(VERDICT_WORD[x['verdict']])}: {e(x['text'])}</li>"
                            for x in r["reasons"])
            tds.append(f'<td class="{e(r["verdict"])}"><strong>{e(VERDICT_WORD[r["verdict"]])}</strong>'
                       f"<ul>{items}</ul></td>")
        rows.append(f"<tr><th>{e(g['name'])}<br><small>{e(g['cpu_mode'] or 'default')}</small></th>{''.join(tds)}</tr>")
    notes = "".join(f"<li>{e(h['name'])}: {e(n)}</li>" for h in doc["hosts"] for n in h["notes"])
    s = doc["summary"]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            f"<title>hostaudit guest check</title><style>{_CSS}</style></head><body>"
            "<h1>Guests against destinations</h1>"
            f"<table><thead><tr><th>guest</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            + (f"<h2>Notes</h2><ul>{notes}</ul>" if notes else "")
            + f"<p>{s['ok']} ok, {s['not-ok']} not ok, {s['unknown']} unknown of {len(doc['results'])}</p>"
            "</body></html>\n")


def cmd_check(args: argparse.Namespace) -> int:
    from audit.cpu.sources import load_input
    from audit.guest.domain import load_domain
    from audit.guest.judge import load_destination

    doms = [load_domain(p) for p in args.domains]
    dests = [load_destination(p, caps) for p, caps in args.hosts]
    source = load_input(args.source)[0] if args.source else None
    doc = check_doc(doms, dests, source)
    if args.format == "json":
        sys.stdout.write(jsontext.dumps(doc, indent=2, sort_keys=True) + "\n")
    elif args.format == "html":
        sys.stdout.write(check_html(doc))
    else:
        sys.stdout.write(check_text(doc))
    return 0 if doc["all_can_move"] else 1


class _HostAction(argparse.Action):
    """--host INPUT starts a destination; each --caps FILE after it adds to that destination."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        hosts = list(getattr(namespace, "hosts", None) or [])
        if self.dest == "hosts":
            hosts.append((values, []))
        elif not hosts:
            parser.error("--caps belongs to the --host before it: give --host first")
        else:
            hosts[-1][1].append(values)
        namespace.hosts = hosts


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("guest", help="libvirt guests against destination hosts")
    sub = p.add_subparsers(dest="guest_command", parser_class=type(p), required=True)
    c = sub.add_parser("check", help="can each guest (domain XML) move to each host?",
                       description="Exit 0 when every guest can move to every host, 1 when one cannot or "
                                   "hostaudit cannot tell, 2 on bad input.")
    c.add_argument("domains", metavar="DOMAIN_FILE", nargs="+", help="virsh dumpxml output, one domain a file")
    c.add_argument("--host", dest="hosts", metavar="INPUT", action=_HostAction, required=True,
                   help="a destination: a snapshot (hostaudit collect), 'virsh domcapabilities' output (the "
                        "guest-CPU view and machine type), a libvirt QEMU capabilities cache file, 'virsh "
                        "capabilities' output (machine types and topology only: its CPU is the physical one), "
                        "or a saved /proc/cpuinfo (CPU only); repeat for several")
    c.add_argument("--caps", dest="caps", metavar="FILE", action=_HostAction,
                   help="more of the --host before it, from libvirt on that host: 'virsh capabilities' (machine "
                        "types of every guest arch; RAM and huge page pools when nothing better is known), 'virsh "
                        "domcapabilities' or a QEMU capabilities cache file (the CPU view, preferred to "
                        "/proc/cpuinfo; usable CPU models); repeatable")
    c.add_argument("--from", dest="source", metavar="INPUT",
                   help="the host the guests run on now (snapshot, /proc/cpuinfo or 'local'); guests in "
                        "host-passthrough mode are judged against it")
    c.add_argument("--format", choices=("text", "json", "html"), default="text")
    c.set_defaults(func=cmd_check)
