"""Start-up time, run time and peak memory of hostaudit on this machine.

    python benchmarks/run.py [--runs N] [--root DIR]

Prints the median wall time and peak RSS of `hostaudit --format json` and of the text output over
repeated runs, and the import time of the CLI. Figures, not assertions: targets live here, never in
timed unit tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

# An installed wheel runs from byte-compiled modules (pip compiles them at install). Measure that:
# a PYTHONDONTWRITEBYTECODE environment would otherwise recompile every module on every run.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(cmd: list[str], runs: int) -> tuple[float, float]:
    """(median wall ms, max peak RSS MiB) over ``runs`` runs of ``cmd``."""
    walls, peaks = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
        _, _, usage = os.wait4(proc.pid, 0)
        walls.append((time.perf_counter() - t0) * 1000)
        peaks.append(usage.ru_maxrss / 1024)
    return statistics.median(walls), max(peaks)


def import_time(module: str, runs: int) -> float:
    """Median ms to import ``module`` in a fresh interpreter, minus a bare interpreter start."""
    base, _ = measure([sys.executable, "-c", "pass"], runs)
    full, _ = measure([sys.executable, "-c", f"import {module}"], runs)
    return full - base


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--root", help="audit this image root instead of the live host")
    args = ap.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", *(os.path.join(REPO, d) for d in
                                                                ("audit", "checks", "reports"))],
                   env=ENV, check=True, stdout=subprocess.DEVNULL)
    base = [sys.executable, "-m", "audit"]
    target = ["--root", args.root] if args.root else []
    rows = [
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ("hostaudit --version", [*base, "--version"]),
        ("hostaudit --format json", [*base, *target, "--format", "json"]),
        ("hostaudit (text)", [*base, *target]),
        ("hostaudit checks", [*base, "checks"]),
    ]
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}, {args.runs} runs each, "
          "byte-compiled modules (as installed by pip)")
    print(f"{'command':32} {'median wall ms':>15} {'peak RSS MiB':>13}")
    for name, cmd in rows:
        wall, rss = measure(cmd, args.runs)
        print(f"{name:32} {wall:15.1f} {rss:13.1f}")
    print(f"{'import audit.cli.main (ms)':32} {import_time('audit.cli.main', args.runs):15.1f}")
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "audit", *target, "--format", "json"],
                         capture_output=True, text=True, env=ENV)
    loaded = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    for mod in ("tabulate", "jinja2", "junit_xml"):
        print(f"JSON run imports {mod}: {'yes' if mod in loaded else 'no'}")


if __name__ == "__main__":
    main()
