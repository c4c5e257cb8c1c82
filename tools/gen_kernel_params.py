#!/usr/bin/env python3
"""Derive audit/boot/data/kernel_params.json from the kernel's own list of boot parameters.

For each kernel release in ``tools/data/kernel_params/<version>/`` the inputs are:

- ``kernel-parameters.txt``: ``Documentation/admin-guide/kernel-parameters.txt`` as shipped
  (``Documentation/kernel-parameters.txt`` before 4.9), byte for byte;
- ``source-names.txt``: the names the source registers with ``__setup``, ``early_param`` (and
  its wrappers), ``core_param`` and x86's ``cmdline_find_option``, which the documentation misses;
- ``parsers.txt``: the kernel functions that parse the values of the parameters hostaudit's checks
  act on (``intel_iommu=``, ``amd_iommu=``, x86 ``iommu=`` with the AMD GART options it hands on,
  ``transparent_hugepage=``), copied from the source with their path;
- ``release.json``: the version and where the tree came from.

``extract`` writes those files from an unpacked kernel source tree; ``build`` (the default) turns
every release folder into the table, so the committed table is reproducible from committed files:

    apt-get download linux-source-6.1                   # Debian 12: 6.1.192-3
    dpkg-deb -x linux-source-6.1_*.deb /tmp/ls && tar -xJf /tmp/ls/usr/src/linux-source-6.1.tar.xz -C /tmp/ls
    python tools/gen_kernel_params.py extract /tmp/ls/linux-source-6.1 \\
        --origin "Debian package linux-source-6.1 6.1.192-3 (bookworm-security)"
    python tools/gen_kernel_params.py build

The table records, for every name (hyphens folded to underscores, as the kernel compares them),
the first and the last of the table's releases that list it; names are compared across releases by
their mainline series (``6.1`` for ``6.1.192``). A stable or distribution release lists what was
backported to it, so "first listed" is an upper bound of when a parameter appeared, never a proof
that an older kernel ignores it. Accepted values are derived from ``parsers.txt``: the string
literals each parser compares with ``strcmp``/``strncmp``, and how it compares them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tools" / "data" / "kernel_params"
OUTPUT = ROOT / "audit" / "boot" / "data" / "kernel_params.json"
DOCS = ("Documentation/admin-guide/kernel-parameters.txt", "Documentation/kernel-parameters.txt")
#: Source directories whose registrations are boot parameters (not tools/, samples/, scripts/).
SOURCE_DIRS = ("arch", "block", "certs", "crypto", "drivers", "fs", "init", "io_uring", "ipc", "kernel", "lib",
               "mm", "net", "security", "sound", "virt")

# --------------------------------------------------------------------------------------------
# The value parsers of the parameters the checks act on: (parameter, registration as written in
# the source, files that may hold it (renamed across releases), helper functions it calls).
# --------------------------------------------------------------------------------------------
VALUE_PARSERS: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("intel_iommu", '"intel_iommu="', ("drivers/iommu/intel/iommu.c", "drivers/iommu/intel-iommu.c"), ()),
    ("amd_iommu", '"amd_iommu="', ("drivers/iommu/amd/init.c", "drivers/iommu/amd_iommu_init.c"), ()),
    ("iommu", '"iommu"', ("arch/x86/kernel/pci-dma.c",), ("gart_parse_options",)),
    ("transparent_hugepage", '"transparent_hugepage="', ("mm/huge_memory.c",), ()),
)
#: Where the helpers live.
HELPER_FILES = {"gart_parse_options": ("arch/x86/kernel/amd_gart_64.c", "arch/x86/kernel/pci-gart_64.c")}

#: The huge page parameters' values are replayed by audit.parsers.hugepages (pairs, sizes, node
#: lists); the table only says where their parsers are.
HUGEPAGE_VALUES = {
    "hugepages": {"form": "count", "judged_by": "audit.parsers.hugepages",
                  "parser": "mm/hugetlb.c hugepages_setup (hugetlb_nrpages_setup before 5.7)"},
    "hugepagesz": {"form": "size", "judged_by": "audit.parsers.hugepages",
                   "parser": "mm/hugetlb.c hugepagesz_setup (arch/x86/mm/hugetlbpage.c setup_hugepagesz "
                             "before 5.7)"},
    "default_hugepagesz": {"form": "size", "judged_by": "audit.parsers.hugepages",
                           "parser": "mm/hugetlb.c default_hugepagesz_setup (hugetlb_default_setup before 5.7)"},
}

NOTES = (
    "Names are canonical (hyphens as underscores). params: name -> [first, last] series of the table's releases "
    "whose documentation or source lists it. prefixes: documented wildcards (sysctl.*=). values: per parameter, "
    "per release, what the kernel's own parser acts on: match 'exact' (strcmp on the whole value), 'prefix' (each "
    "comma-separated option is compared with strncmp: an option that starts with a keyword is acted on), "
    "'substring' (the parser tries every position of the value: a keyword anywhere is acted on); 'ignored' keywords "
    "are parsed but only logged; 'number' says a leading number is read (iommu=: the AMD GART remapping size)."
)


# --------------------------------------------------------------------------------------------
# Parsing kernel-parameters.txt
# --------------------------------------------------------------------------------------------
_ENTRY = re.compile(r"^\t(?P<name>[^\t ]+)")
_LIST_START = re.compile(r"^\t[a-z0-9_.-]+=?\s*\[")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")


def canonical(name: str) -> str:
    return name.replace("-", "_")


def _expand_braces(name: str) -> list[str]:
    """``kvm-{amd,intel}.enable_mediated_pmu`` -> both names."""
    m = re.search(r"\{([^{}]+)\}", name)
    if not m:
        return [name]
    return [n for alt in m.group(1).split(",") for n in _expand_braces(name[: m.start()] + alt + name[m.end():])]


def doc_names(text: str) -> tuple[set[str], set[str]]:
    """(names, wildcard prefixes) of the entries of a kernel-parameters.txt.

    An entry starts a line with one tab and the name, then ``=``, a value template, blanks or its
    ``[TAGS]``. The legend of tags (``\\tACPI\\tACPI support is enabled.``) and the usage examples
    before the list are skipped: the list starts at the first entry with tags on its line.
    """
    names: set[str] = set()
    prefixes: set[str] = set()
    started = False
    for line in text.splitlines():
        if not started:
            started = bool(_LIST_START.match(line))
            if not started:
                continue
        elif line and not line[0].isspace():
            break  # the end matter of old files ("TODO:")
        m = _ENTRY.match(line)
        if not m:
            continue
        raw = m.group("name")
        if raw.startswith(("<", "(")) or raw.startswith("module."):
            continue  # placeholders: <module>.async_probe, module.dyndbg
        for full in _expand_braces(raw):
            if re.match(r"^[A-Za-z0-9_.\-]+\.\*=?$", full):
                prefixes.add(canonical(full.split("*", 1)[0]))
                continue
            nm = _NAME.match(full)
            if not nm:
                continue
            name = nm.group(0).rstrip(".")
            if not re.search(r"[a-z]", name):
                continue  # "ALSA", "MTD_Partition"-style pointers and legend tags are not parameters
            names.add(canonical(name))
    return names, prefixes


# --------------------------------------------------------------------------------------------
# Extracting from a source tree
# --------------------------------------------------------------------------------------------
_REGISTRATIONS = (
    re.compile(r'\b__setup(?:_param)?\(\s*"([^"]+)"'),
    re.compile(r'\b\w*early_param\(\s*"([^"]+)"'),
    re.compile(r"\bcore_param\(\s*([A-Za-z_]\w*)\s*,"),
    re.compile(r'\bcmdline_find_option(?:_bool)?\(\s*[^,()]+,\s*"([^"]+)"'),
)


def source_names(tree: Path) -> dict[str, str]:
    """Names registered in the source: canonical name -> the first file (sorted) registering it."""
    found: dict[str, str] = {}
    for top in SOURCE_DIRS:
        base = tree / top
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.suffix not in (".c", ".h") or not path.is_file():
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            if "param" not in text and "__setup" not in text and "cmdline_find_option" not in text:
                continue
            for rx in _REGISTRATIONS:
                for m in rx.finditer(text):
                    name = m.group(1).rstrip("=")
                    if not name or not _NAME.fullmatch(name):
                        continue
                    found.setdefault(canonical(name), str(path.relative_to(tree)))
    return found


def _function(text: str, name: str) -> str | None:
    """The definition of C function ``name`` in ``text``, from its line to the closing brace."""
    m = re.search(rf"^[^\n;]*\b{re.escape(name)}\s*\([^;{{]*\)\s*\{{", text, re.M)
    if not m:
        return None
    depth = 0
    for i in range(m.end() - 1, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[m.start(): i + 1]
    return None


def extract_parsers(tree: Path) -> str:
    """parsers.txt: each value parser with a marker line naming the parameter, file and function."""
    chunks: list[str] = []
    for param, registration, files, helpers in VALUE_PARSERS:
        for rel in files:
            path = tree / rel
            if not path.is_file():
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            m = re.search(rf"(?:__setup|early_param)\(\s*{re.escape(registration)}\s*,\s*(\w+)\s*\)", text)
            if not m:
                continue
            body = _function(text, m.group(1))
            if body is None:
                raise SystemExit(f"{rel}: cannot find the body of {m.group(1)}")
            chunks.append(f"/* hostaudit: {param} {rel} {m.group(1)} */\n{body}\n")
            for helper in helpers:
                if helper not in body:
                    continue
                for hrel in HELPER_FILES[helper]:
                    hpath = tree / hrel
                    hbody = _function(hpath.read_text(encoding="utf-8", errors="replace"), helper) \
                        if hpath.is_file() else None
                    if hbody:
                        chunks.append(f"/* hostaudit: {param} {hrel} {helper} */\n{hbody}\n")
                        break
            break
        else:
            print(f"warning: no parser for {param}= in this tree", file=sys.stderr)
    return "\n".join(chunks)


def release_of(tree: Path) -> str:
    text = (tree / "Makefile").read_text(encoding="utf-8", errors="replace")
    parts = [re.search(rf"^{k}\s*=\s*(\d+)", text, re.M) for k in ("VERSION", "PATCHLEVEL", "SUBLEVEL")]
    if not all(parts):
        raise SystemExit(f"{tree}/Makefile: no VERSION/PATCHLEVEL/SUBLEVEL")
    return ".".join(p.group(1) for p in parts if p)


def extract(tree: Path, origin: str, data: Path = DATA, version: str | None = None) -> Path:
    version = version or release_of(tree)
    doc = next((tree / d for d in DOCS if (tree / d).is_file()), None)
    if doc is None:
        raise SystemExit(f"{tree}: no {' or '.join(DOCS)}")
    out = data / version
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(doc, out / "kernel-parameters.txt")
    names = source_names(tree)
    (out / "source-names.txt").write_text(
        f"# names registered in the source of Linux {version} (__setup, early_param, core_param,\n"
        "# cmdline_find_option): canonical name, then the first file registering it\n"
        + "".join(f"{n} {f}\n" for n, f in sorted(names.items())), encoding="utf-8")
    (out / "parsers.txt").write_text(f"/* value parsers copied from Linux {version} */\n\n" + extract_parsers(tree),
                                   encoding="utf-8")
    meta = {"version": version, "origin": origin, "documentation": str(doc.relative_to(tree))}
    (out / "release.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return out


# --------------------------------------------------------------------------------------------
# Deriving accepted values from a parser
# --------------------------------------------------------------------------------------------
_LITERAL = re.compile(r'\bstr(n?)cmp\(\s*\w+\s*,\s*"([^"]+)"')


def parser_values(body: str) -> dict[str, object]:
    """What a value parser acts on: its keywords and how it compares them (see NOTES)."""
    keywords: list[str] = []
    ignored: list[str] = []
    exact = False
    for m in _LITERAL.finditer(body):
        word = m.group(2)
        exact = exact or m.group(1) == ""
        # a branch that only logs "... ignored" parses the option but does nothing with it
        branch = body[m.end(): m.end() + 120]
        if re.match(r"[^;{]*\)\s*\{?\s*pr_warn\(\"[^\"]*ignored", branch):
            ignored.append(word)
        elif word not in keywords:
            keywords.append(word)
    if exact:
        match = "exact"
    elif re.search(r"for\s*\(\s*;\s*\*\s*\w+\s*;\s*\+\+\s*\w+\s*\)", body):
        match = "substring"
    else:
        match = "prefix"
    out: dict[str, object] = {"keywords": sorted(keywords), "match": match}
    if ignored:
        out["ignored"] = sorted(ignored)
    if re.search(r"isdigit\(\s*\*\s*\w+\s*\)", body):
        out["number"] = True
    return out


def parse_parsers(text: str) -> dict[str, dict[str, object]]:
    """parsers.txt -> parameter -> {keywords, match, ..., parser: "file function[, helper]"}."""
    by_param: dict[str, list[tuple[str, str]]] = {}
    for m in re.finditer(r"^/\* hostaudit: (\S+) (\S+) (\S+) \*/\n(.*?)(?=^/\* hostaudit: |\Z)", text, re.M | re.S):
        by_param.setdefault(m.group(1), []).append((f"{m.group(2)} {m.group(3)}", m.group(4)))
    out: dict[str, dict[str, object]] = {}
    for param, parts in by_param.items():
        main = parser_values(parts[0][1])
        for _where, body in parts[1:]:  # helpers: their keywords add to the main parser's
            extra = parser_values(body)
            main["keywords"] = sorted({*main["keywords"], *extra["keywords"]})  # type: ignore[misc]
            if extra.get("number"):
                main["number"] = True
        main["parser"] = ", ".join(w for w, _ in parts)
        out[param] = main
    return out


# --------------------------------------------------------------------------------------------
# Building the table
# --------------------------------------------------------------------------------------------
def series(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _vkey(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version))


def build_table(data: Path = DATA) -> dict:
    releases = sorted((p for p in data.iterdir() if (p / "release.json").is_file()),
                      key=lambda p: _vkey(p.name))
    if not releases:
        raise SystemExit(f"no releases under {data}")
    first: dict[str, str] = {}
    last: dict[str, str] = {}
    from_doc: set[str] = set()
    prefixes: dict[str, str] = {}
    values: dict[str, dict[str, dict[str, object]]] = {}
    described = []
    for rel in releases:
        meta = json.loads((rel / "release.json").read_text(encoding="utf-8"))
        ser = series(meta["version"])
        doc = (rel / "kernel-parameters.txt").read_bytes()
        names, wild = doc_names(doc.decode("utf-8", errors="replace"))
        src = {line.split()[0] for line in (rel / "source-names.txt").read_text(encoding="utf-8").splitlines()
               if line and not line.startswith("#")}
        from_doc |= names
        for name in names | src:
            first.setdefault(name, ser)
            last[name] = ser
        for p in wild:
            prefixes.setdefault(p, ser)
        for param, v in parse_parsers((rel / "parsers.txt").read_text(encoding="utf-8")).items():
            values.setdefault(param, {})[ser] = v
        described.append({
            "version": meta["version"],
            "series": ser,
            "origin": meta["origin"],
            "documentation": meta["documentation"],
            "documentation_sha256": hashlib.sha256(doc).hexdigest(),
            "documented": len(names),
            "source_only": len(src - names),
        })
    params = {n: [first[n], last[n]] for n in sorted(first)}
    return {
        "source": {
            "generator": "tools/gen_kernel_params.py",
            "inputs": "tools/data/kernel_params/<version>/ (kernel-parameters.txt, source-names.txt, parsers.txt)",
            "releases": described,
            "notes": NOTES,
        },
        "newest": series(described[-1]["version"]),
        "oldest": series(described[0]["version"]),
        "series": [d["series"] for d in described],
        "params": params,
        "undocumented": sorted(set(params) - from_doc),
        "prefixes": {p: prefixes[p] for p in sorted(prefixes)},
        "values": values,
        "hugepage_values": HUGEPAGE_VALUES,
    }


def _key(k: str) -> tuple:
    """Sort keys; release series ("5.4" before "5.10") by number."""
    return (0, _vkey(k), k) if re.fullmatch(r"\d+(\.\d+)*", k) else (1, (), k)


def _line(v: object) -> str:
    """A value on one line, keys sorted (release series by number)."""
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{json.dumps(k)}: {_line(v[k])}" for k in sorted(v, key=_key)) + "}"
    return json.dumps(v, ensure_ascii=False)


def _block(m: Mapping[str, object], depth: int = 1) -> str:
    """An object a key a line; objects of objects, lists of objects and the top level's objects of
    lists (params: a name a line) open one more level."""
    pad = " " * depth
    rows = []
    for k in sorted(m, key=_key):
        v = m[k]
        if isinstance(v, Mapping) and any(isinstance(x, Mapping) or (depth == 1 and isinstance(x, list))
                                          for x in v.values()):
            text = _block(v, depth + 1)
        elif isinstance(v, list) and v and all(isinstance(x, Mapping) for x in v):
            text = "[\n" + ",\n".join(f"{pad} {_line(x)}" for x in v) + f"\n{pad}]"
        else:
            text = _line(v)
        rows.append(f"{pad}{json.dumps(k)}: {text}")
    return "{\n" + ",\n".join(rows) + "\n" + " " * (depth - 1) + "}"


def render(data: Path = DATA) -> str:
    return _block(build_table(data)) + "\n"


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd")
    ex = sub.add_parser("extract", help="copy one release's inputs from an unpacked source tree")
    ex.add_argument("tree", type=Path)
    ex.add_argument("--origin", required=True, help="where the tree came from (package and version, or repo@commit)")
    ex.add_argument("--version", help="release, when the Makefile's is not the one to record")
    ex.add_argument("--data", type=Path, default=DATA)
    bd = sub.add_parser("build", help="write the table from the committed inputs (the default)")
    bd.add_argument("--data", type=Path, default=DATA)
    bd.add_argument("-o", "--output", type=Path, default=OUTPUT)
    bd.add_argument("--check", action="store_true", help="exit 1 when the output differs from the table")
    args = ap.parse_args(list(argv) if argv is not None else None)
    if args.cmd == "extract":
        out = extract(args.tree, args.origin, args.data, args.version)
        print(f"{out}: written", file=sys.stderr)
        return 0
    data = getattr(args, "data", DATA)
    output = getattr(args, "output", OUTPUT)
    text = render(data)
    if getattr(args, "check", False):
        same = output.is_file() and output.read_text(encoding="utf-8") == text
        print(f"{output}: {'up to date' if same else 'differs from what the inputs give'}", file=sys.stderr)
        return 0 if same else 1
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(output)
    table = json.loads(text)
    print(f"{output}: {len(table['params'])} names from {', '.join(table['series'])}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
