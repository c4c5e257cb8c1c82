"""Start-up of two source trees of hostaudit, in paired runs: did a change make it slower?

    python benchmarks/startup_ab.py OLD_TREE [NEW_TREE] [--runs 30] [--root DIR]

OLD_TREE is a checkout of the earlier version (``git worktree add /tmp/old HEAD~1``); NEW_TREE
defaults to this one. Each command runs alternately from each tree (old, new, old, new...) so drift
on the machine hits both alike; byte-compiled modules, as a pip install has them. Prints the
medians and the ratio new/old. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}


def _env(tree: str) -> dict[str, str]:
    return {**BASE_ENV, "PYTHONPATH": tree}


def _check_tree(tree: str) -> None:
    out = subprocess.run([sys.executable, "-c", "import audit; print(audit.__file__)"], capture_output=True,
                         text=True, env=_env(tree), cwd=tree, check=True)
    if not os.path.realpath(out.stdout.strip()).startswith(os.path.realpath(tree)):
        sys.exit(f"{tree}: python imports audit from {out.stdout.strip()}, not from this tree")
    subprocess.run([sys.executable, "-m", "compileall", "-q", *(os.path.join(tree, d) for d in
                                                                ("audit", "checks", "reports"))],
                   env=_env(tree), check=True, stdout=subprocess.DEVNULL)


def _once(cmd: list[str], tree: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(tree), cwd=tree)
    return (time.perf_counter() - t0) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new", nargs="?", default=REPO)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--root", help="audit this image root instead of the live host")
    args = ap.parse_args()
    old, new = os.path.abspath(args.old), os.path.abspath(args.new)
    for tree in (old, new):
        _check_tree(tree)
    target = ["--root", args.root] if args.root else []
    rows = [
        ("hostaudit --version", ["--version"]),
        ("hostaudit checks", ["checks"]),
        ("hostaudit --format json", [*target, "--format", "json"]),
        ("hostaudit (text)", target),
        ("import the CLI", None),
    ]
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}, {args.runs} paired runs each, "
          "byte-compiled modules")
    print(f"old: {old}\nnew: {new}")
    print(f"{'command':26} {'old median ms':>14} {'new median ms':>14} {'new/old':>8}")
    for name, argv in rows:
        times: dict[str, list[float]] = {old: [], new: []}
        for _ in range(args.runs):
            for tree in (old, new):
                if argv is None:  # the CLI module, wherever this tree keeps it
                    cmd = [sys.executable, "-c", "import importlib.util as u, importlib as i; "
                           "i.import_module('audit.cli.main' if u.find_spec('audit.cli').submodule_search_locations "
                           "else 'audit.cli')"]
                else:
                    cmd = [sys.executable, "-m", "audit", *argv]
                times[tree].append(_once(cmd, tree))
        a, b = statistics.median(times[old]), statistics.median(times[new])
        print(f"{name:26} {a:14.1f} {b:14.1f} {b / a:8.3f}")


if __name__ == "__main__":
    main()
