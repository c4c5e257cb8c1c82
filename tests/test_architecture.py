"""The layout keeps its promises: no import cycle, imports go downwards only, re-exports are lazy.

Every import statement counts: at module level, inside functions, under ``TYPE_CHECKING``; so does
the edge from a module to its package's ``__init__`` (Python imports a package before any module
in it). Read with ``ast`` from the source, so nothing is imported to find out.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOPS = ("audit", "checks", "reports")

#: (module prefix, floor, room). A module may import its own room and the floors below, never above;
#: two rooms on one floor may not import each other. The README's map says the same.
FLOORS: tuple[tuple[str, int, str], ...] = (
    ("audit.record", -1, "record"),
    ("audit.errors", 0, "errors"),
    ("audit.model", 0, "model"),
    ("audit.parsers", 1, "parsers"),
    ("audit.inputfile", 1, "inputfile"),
    ("audit.policy", 2, "policy"),
    ("audit.host", 3, "host"),
    ("audit.boot", 4, "boot"),
    ("audit.cpu", 4, "cpu"),
    ("audit.guest", 5, "guest"),
    ("audit.remedy", 5, "remedy"),
    ("audit.hookspecs", 6, "engine"),
    ("audit.plugins", 6, "engine"),
    ("audit.entrypoints", 6, "engine"),
    ("audit.fleet", 6, "engine"),
    ("audit.engine", 6, "engine"),
    ("audit.capture", 6, "engine"),
    ("checks", 7, "checks"),
    ("reports", 7, "reports"),
    ("audit.cli", 8, "cli"),
    ("audit.__main__", 8, "cli"),
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {_module_name(p): p for top in TOPS for p in sorted((REPO / top).rglob("*.py"))}


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every project module ``name`` imports, by any import statement anywhere in it, plus its package."""
    found: set[str] = set()
    if "." in name:
        found.add(name.rsplit(".", 1)[0])
    package = name if _is_package(path) else name.rsplit(".", 1)[0] if "." in name else ""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base_name = ".".join([*base, *([node.module] if node.module else [])])
            else:
                base_name = node.module or ""
            targets = [base_name] + [f"{base_name}.{a.name}" for a in node.names]
        else:
            continue
        for target in targets:
            # "import a.b.c" imports a, a.b and a.b.c
            pieces = target.split(".")
            for i in range(1, len(pieces) + 1):
                candidate = ".".join(pieces[:i])
                if candidate in modules and candidate != name:
                    found.add(candidate)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def floor_of(module: str) -> tuple[str, int] | None:
    """(room, floor) of a module; None for the root package ``audit``, which everything is under."""
    best: tuple[str, int, str] | None = None
    for prefix, floor, room in FLOORS:
        if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, floor, room)
    return None if best is None else (best[2], best[1])


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None. Iterative DFS, three colours."""
    colour = dict.fromkeys(graph, 0)
    for start in sorted(graph):
        if colour[start]:
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        colour[start] = 1
        while stack:
            node, edges = stack[-1]
            nxt = next(edges, None)
            if nxt is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            elif colour.get(nxt) == 0:
                colour[nxt] = 1
                stack.append((nxt, iter(sorted(graph[nxt]))))
                path.append(nxt)
    return None


def test_the_walker_sees_every_kind_of_import(tmp_path):
    pkg = tmp_path / "audit"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from audit.sub import b\n"
        "def f():\n    from . import c\n    import audit.d\n")
    for n in ("b", "c"):
        (pkg / "sub" / f"{n}.py").write_text("")
    (pkg / "d.py").write_text("")
    modules = {"audit": pkg / "__init__.py", "audit.sub": pkg / "sub" / "__init__.py",
               "audit.sub.a": pkg / "sub" / "a.py", "audit.sub.b": pkg / "sub" / "b.py",
               "audit.sub.c": pkg / "sub" / "c.py", "audit.d": pkg / "d.py"}
    assert imports_of("audit.sub.a", modules["audit.sub.a"], modules) == {"audit", "audit.sub", "audit.sub.b",
                                                                          "audit.sub.c", "audit.d"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or ())


def test_every_module_has_a_floor():
    missing = sorted(m for m in project_modules() if m not in ("audit",) and floor_of(m) is None)
    assert not missing, f"add these to FLOORS (and to the README's map): {missing}"


def test_imports_go_downwards_only():
    wrong = []
    for module, targets in import_graph().items():
        mine = floor_of(module)
        for target in targets:
            theirs = floor_of(target)
            if mine is None or theirs is None:  # the root package "audit": everything is under it
                continue
            if theirs[1] > mine[1] or (theirs[1] == mine[1] and theirs[0] != mine[0]):
                wrong.append(f"{module} ({mine[0]}, floor {mine[1]}) imports {target} ({theirs[0]}, floor {theirs[1]})")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(("importer", "forbidden"), [
    ("checks", ("reports", "audit.cli")),
    ("reports", ("checks", "audit.cli", "audit.engine")),
    ("audit.host", ("checks", "reports", "audit.engine", "audit.plugins", "audit.cli", "audit.boot")),
    ("audit.parsers", ("audit.host", "checks", "reports", "audit.engine", "audit.cli")),
    ("audit.engine", ("audit.cli", "checks", "reports")),
    ("audit.model", ("audit.",)),
    ("audit.errors", ("audit.",)),
    ("audit.record", ("audit.",)),
])
def test_forbidden_directions(importer, forbidden):
    def under(module: str, prefix: str) -> bool:  # "audit." means every module below the root package
        if prefix.endswith("."):
            return module.startswith(prefix)
        return module == prefix or module.startswith(prefix + ".")

    bad = [f"{m} -> {t}" for m, ts in import_graph().items() if under(m, importer)
           for t in ts if any(under(t, f) for f in forbidden) and t != "audit.record"]  # the record base
    assert not bad, bad


def _loaded_after(statement: str) -> set[str]:
    code = (f"import sys\n{statement}\n"
            "print('\\n'.join(m for m in sys.modules if m.split('.')[0] in ('audit', 'checks', 'reports')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


@pytest.mark.parametrize(("statement", "expected"), [
    ("import audit", {"audit"}),
    ("import audit.model", {"audit", "audit.model", "audit.record"}),
    ("import audit.errors", {"audit", "audit.errors"}),
    ("import audit.host", {"audit", "audit.host"}),
    ("import audit.parsers.grub", {"audit", "audit.parsers", "audit.parsers.grub"}),
    ("import audit.boot, audit.cpu, audit.cli, audit.remedy",
     {"audit", "audit.boot", "audit.cpu", "audit.cli", "audit.remedy"}),
])
def test_package_reexports_are_lazy(statement, expected):
    assert _loaded_after(statement) == expected


def test_public_names_for_plugin_authors_resolve():
    loaded = _loaded_after(
        "from audit import hookimpl, check, Evidence, Severity, Status, Host, fact, passed, failed, FactUnavailable\n"
        "from audit.model import check as c2, Evidence as E2, passed as p2\n"
        "from audit.host import Host as H2, fact as f2, FACTS\n"
        "from audit.errors import FactError\n"
        "assert Host is H2 and fact is f2 and check is c2 and Evidence is E2 and passed is p2\n"
        "assert callable(hookimpl) and isinstance(FACTS, dict)")
    assert {"audit.model", "audit.host.core", "audit.host.registry"} <= loaded
    assert not any(m.startswith(("checks", "reports", "audit.cli", "audit.engine")) for m in loaded)


def test_every_builtin_fact_module_is_listed_for_snapshots():
    """collect captures what FACTS declares once every fact module is imported: a module that
    declares facts and is missing from audit.capture.FACT_MODULES would travel in no snapshot."""
    from audit.capture import FACT_MODULES

    declaring = set()
    for name, path in project_modules().items():
        if not name.startswith("audit."):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and any(
                    isinstance(d, ast.Call) and getattr(d.func, "id", None) == "fact" for d in node.decorator_list):
                declaring.add(name)
    assert declaring and declaring == set(FACT_MODULES)
