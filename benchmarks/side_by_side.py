"""hostaudit against ``virt-host-validate qemu``, side by side, on this machine.

    python benchmarks/side_by_side.py [--runs 31] [--root DIR] [--snapshot FILE] [--dev]

hostaudit is measured as users run it: installed from this tree (``pip install .``, not editable) into
a fresh virtual environment, byte-compiled as pip leaves it, started from a directory outside the
tree (``--dev`` measures the development checkout instead: its editable-install finder alone adds
some 20 ms at start-up). Every command runs once per round, in the same order, round after round
(alternating, so drift on the machine hits all alike). For each: the median
wall time, the time over ``python -c pass`` in the same interpreter (start-up of Python itself is not
ours to cut), the ratio to ``virt-host-validate qemu`` when it is installed (Debian:
``libvirt-clients``), and the peak RSS. The targets (issue #11) are printed beside the figures:
time over ``python -c pass`` JSON <= 45 ms, text <= 55 ms, HTML <= 90 ms; peak RSS <= 25 MiB for JSON
and text, <= 30 MiB for HTML. Figures, not assertions: nothing here fails a build.

``--root`` audits an image root as well (default: the debootstrapped root the image acceptance job
caches, when it exists); ``--snapshot`` a snapshot (default: one collected from this host first).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from benchmarks.pace import pace  # noqa: E402  (REPO first on the path, as above)

CACHED_ROOT = os.path.expanduser("~/.cache/hostaudit/bookworm-kvm-root")
#: (time over `python -c pass` in ms, peak RSS in MiB) from issue #11
TARGETS = {"json": (45, 25), "text": (55, 25), "html": (90, 30)}


def once(cmd: list[str], cwd: str) -> tuple[float, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, cwd=cwd)
    _, _, usage = os.wait4(proc.pid, 0)
    return (time.perf_counter() - t0) * 1000, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=31)
    ap.add_argument("--root", default=CACHED_ROOT if os.path.isdir(CACHED_ROOT) else None)
    ap.add_argument("--snapshot")
    ap.add_argument("--dev", action="store_true", help="measure this checkout's environment, not an install")
    args = ap.parse_args()
    out = tempfile.mkdtemp(prefix="hostaudit-bench-")
    python, cwd = sys.executable, REPO
    if args.dev:
        subprocess.run([sys.executable, "-m", "compileall", "-q", *(os.path.join(REPO, d) for d in
                                                                    ("audit", "checks", "reports"))],
                       env=ENV, check=True, stdout=subprocess.DEVNULL)
    else:
        venv = os.path.join(out, "venv")
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        python, cwd = os.path.join(venv, "bin", "python"), out
        subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", REPO],
                       env=ENV, check=True, stdout=subprocess.DEVNULL)
    ha = [python, "-m", "audit"]
    snapshot = args.snapshot
    if snapshot is None:
        snapshot = os.path.join(out, "this-host.json")
        subprocess.run([*ha, "collect", "-o", snapshot], env=ENV, cwd=cwd, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows: list[tuple[str, str | None, list[str]]] = [
        ("python -c pass", None, [python, "-c", "pass"]),
        ("hostaudit --version", None, [*ha, "--version"]),
        ("hostaudit --format json -q", "json", [*ha, "--format", "json", "-q"]),
        ("hostaudit (text)", "text", ha),
        ("hostaudit -o x.html", "html", [*ha, "-q", "-o", os.path.join(out, "x.html")]),
        ("hostaudit -o x.xml (JUnit)", None, [*ha, "-q", "-o", os.path.join(out, "x.xml")]),
        ("hostaudit --snapshot (json)", None, [*ha, "--snapshot", snapshot, "--format", "json", "-q"]),
    ]
    if args.root:
        rows.append(("hostaudit --root IMAGE (json)", None, [*ha, "--root", args.root, "--format", "json", "-q"]))
    vhv = shutil.which("virt-host-validate")
    if vhv:
        rows.append(("virt-host-validate qemu", None, [vhv, "qemu"]))
    walls: dict[str, list[float]] = {name: [] for name, _, _ in rows}
    peaks: dict[str, list[float]] = {name: [] for name, _, _ in rows}
    for _ in range(args.runs):
        for name, _, cmd in rows:
            wall, peak = once(cmd, cwd)
            walls[name].append(wall)
            peaks[name].append(peak)
    shutil.rmtree(out, ignore_errors=True)
    base = statistics.median(walls["python -c pass"])
    ref = statistics.median(walls["virt-host-validate qemu"]) if vhv else None
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}, {args.runs} alternating rounds, "
          "byte-compiled modules", "(this checkout)" if args.dev else "(installed with pip into a fresh venv)")
    print(pace())
    print(f"image root: {args.root or '(none)'}; virt-host-validate: {vhv or 'not installed (libvirt-clients)'}")
    print(f"{'command':32} {'median ms':>10} {'over py':>8} {'target':>7} {'x vhv':>7} {'peak MiB':>9} {'target':>7}")
    for name, kind, _ in rows:
        med = statistics.median(walls[name])
        peak = max(peaks[name])
        over = "" if name == "python -c pass" or name.startswith("virt-") else f"{med - base:8.1f}"
        t_ms, t_rss = TARGETS.get(kind or "", ("", ""))
        ratio = f"{med / ref:7.1f}" if ref and not name.startswith("virt-") else ""
        print(f"{name:32} {med:10.1f} {over:>8} {t_ms!s:>7} {ratio:>7} {peak:9.1f} {t_rss!s:>7}")


if __name__ == "__main__":
    main()
