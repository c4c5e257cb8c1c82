"""A fleet in one run (issue #12): ``hostaudit run --snapshot DIR`` and ``hostaudit cpu baseline DIR``
over N generated snapshots, with hosts/s, wall time, peak memory and bytes per snapshot.

    python benchmarks/fleet.py [--hosts 1000 10000] [--dir DIR] [--outputs] [--per-process 20] [--processors 64]

The snapshots are made from the real samples of ``tests/data`` (the fake roots of ``tests/trees.py``,
captured by ``hostaudit collect``): a running Debian 12, CentOS 6 and RHEL 9 host (running hosts, so
that ``cpu baseline`` takes the same folder), each host then varied: its CPU (every x86 cpuinfo
sample, a few flags left out, its clock), its name, its huge page pool, THP mode, KSM, its boot
command line and GRUB settings. Half are written as ``hostaudit collect`` JSON, half in collect.sh's
line format. They are made once per N into ``--dir`` (default ``$TMPDIR/hostaudit-fleet-bench``)
and reused.

The samples' cpuinfo holds one or two processors; a real host prints 16 to 256, and reading them is
then most of ``cpu baseline``'s work. ``--processors K`` gives every host K (the sample's first
processor repeated, each with its own number, core, APIC ID and clock, as Linux prints them).

Every snapshot is read once before the timed runs, so that they measure hostaudit rather than a
cold page cache (10,000 snapshots are some 1.9 GB).

Peak memory: the highest ``VmHWM`` of the hostaudit process and of any one worker, and the highest
sum of ``VmRSS`` over all of them, sampled every 20 ms. ``--per-process N`` also times N snapshots
audited one process each (the way before issue #12) for comparison. Figures, not assertions: the
targets of issue #12 (2 cores: 10,000 hosts audited in <= 60 s, aim 20 s; cpu baseline over 10,000
<= 5 s, aim 2 s; memory not growing with N beyond the summary) are printed beside them.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.pace import pace  # noqa: E402  (REPO first on the path, as above)

GENERATOR_VERSION = "3"
TARGETS = {"audit_10000_s": (60, 20), "baseline_10000_s": (5, 2)}
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
THP = ("[always] madvise never\n", "always [madvise] never\n", "always madvise [never]\n")
POOLS = (0, 0, 512, 1024, 4096)
EXTRA_PARAMS = ("", "intel_iommu=on", "intel_iommu=on iommu=pt", "hugepages=1024", "transparent_hugepage=never",
                "default_hugepagesz=1G hugepagesz=1G hugepages=16", "transparent_hugepages=never")


# ------------------------------------------------------------------------------------------------
# The sample hosts
# ------------------------------------------------------------------------------------------------
def base_trees() -> dict[str, dict[str, Any]]:
    from tests import trees

    rhel9 = trees.rhel9_tree()
    rhel9.update(trees.live_tree("this-vm-hugepages", cpuinfo="intel-xeon-gold-6132-skylake-sp.txt",
                                 release=trees.EL9_RELEASE,
                                 cmdline=f"BOOT_IMAGE=(hd0,gpt2)/vmlinuz-{trees.EL9_RELEASE} {trees.EL9_KERNELOPTS}"))
    return {
        "debian12": trees.debian12_live("hugepagesz=1G hugepages=16 intel_iommu=on"),
        "centos6": trees.centos6_tree(live=True),
        "rhel9": rhel9,
    }


def capture(tree: dict[str, Any]) -> Any:
    """The snapshot ``hostaudit collect`` makes on the running host whose files ``tree`` holds: a
    fake root read as ``/`` is (mode live, root "/"), so that each host's runtime state is its own
    (collected from a folder, a tree would be an image, and the live variations below would not apply)."""
    from audit.capture import gather_patterns
    from audit.host.collect import collect_from, render_document
    from audit.host.fs import RootFS
    from audit.host.snapshot import parse_snapshot
    from audit.model import TargetMode
    from tests.conftest import build_tree

    with tempfile.TemporaryDirectory() as d:
        build_tree(Path(d), tree)
        doc = collect_from(RootFS(d), gather_patterns(entry_points=False), mode=TargetMode.LIVE, root="/")
    snap = parse_snapshot(render_document(doc).encode())
    assert snap.mode == "live", snap.mode
    return snap


def cpuinfo_samples() -> list[str]:
    folder = REPO / "tests" / "data" / "cpuinfo"
    return [p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.txt"))
            if not p.name.startswith("arm64") and "qemu" not in p.name]


def vary_cpuinfo(text: str, rng: random.Random) -> str:
    """The same CPU with its clock moving and, on some hosts, a few flags the firmware hides."""
    hidden = ("avx512f", "rdrand", "pdpe1gb", "x2apic", "aes", "avx2", "invpcid")
    drop = set(rng.sample(hidden, rng.choice((0, 0, 1, 2))))
    mhz = f"{rng.uniform(1200, 3600):.3f}"
    out = []
    for line in text.splitlines():
        key = line.split(":", 1)[0].strip()
        if key == "cpu MHz":
            line = f"cpu MHz\t\t: {mhz}"
        elif key == "flags" and drop:
            name, _, flags = line.partition(":")
            line = name + ": " + " ".join(f for f in flags.split() if f not in drop)
        out.append(line)
    return "\n".join(out) + "\n"


_PER_CORE = re.compile(r"^(processor|core id|apicid|initial apicid)([ \t]*):.*$", re.M)


def many_processors(text: str, count: int, rng: random.Random) -> str:
    """The sample's first processor as a host of ``count`` processors prints it: numbered, each its
    own core and APIC ID and its own clock (a sample holds one or two; real hosts 16 to 256)."""
    block = text.strip("\n").split("\n\n")[0]
    out = []
    for n in range(count):
        own = _PER_CORE.sub(rf"\g<1>\g<2>: {n}", block)
        out.append(re.sub(r"(?m)^cpu MHz\s*: .*$", f"cpu MHz\t\t: {rng.uniform(1200, 3600):.3f}", own))
    return "\n\n".join(out) + "\n"


def vary(snap: Any, i: int, rng: random.Random, cpus: list[str]) -> dict[str, Any]:
    """Entries of host ``i``: the sample's, with this host's own name, CPU, pools and settings."""
    from audit.host.snapshot import Entry

    entries = dict(snap.entries)
    name = f"kvm-{i:05d}"

    def put(path: str, text: str) -> None:
        data = text.encode()
        entries[path] = Entry(type="file", data=data, size=len(data))

    def edit(path: str, change: Any) -> None:
        e = entries.get(path)
        if e is not None and e.data is not None:
            put(path, change(e.data.decode()))

    def change(path: str, text: str) -> None:  # a file the host has (CentOS 6 has no THP under /sys/kernel/mm)
        e = entries.get(path)
        if e is not None and e.type == "file":
            put(path, text)

    put("/etc/hostname", name + "\n")
    if snap.mode == "live":
        change("/proc/sys/kernel/hostname", name + "\n")
        change("/proc/cpuinfo", vary_cpuinfo(rng.choice(cpus), rng))
        change("/sys/kernel/mm/transparent_hugepage/enabled", rng.choice(THP))
        change("/sys/kernel/mm/ksm/run", rng.choice(("0\n", "1\n")))
        pool = rng.choice(POOLS)
        for path in ("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
                     "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages"):
            change(path, f"{pool}\n")
        extra = rng.choice(EXTRA_PARAMS)
        edit("/proc/cmdline", lambda t: (t.rstrip("\n") + " " + extra).rstrip() + "\n")
    extra = rng.choice(EXTRA_PARAMS)  # what the boot loader's inputs ask for next
    edit("/etc/default/grub", lambda t: t.replace('GRUB_CMDLINE_LINUX="', f'GRUB_CMDLINE_LINUX="{extra} ', 1))
    return entries


# ------------------------------------------------------------------------------------------------
# Writing snapshots (JSON as collect writes it; the line format as collect.sh writes it)
# ------------------------------------------------------------------------------------------------
_ENCODED: dict[bytes, Any] = {}


def _encoded(data: bytes, how: str) -> Any:
    key = how.encode() + b"\0" + data
    hit = _ENCODED.get(key)
    if hit is None:
        if how == "json":
            from audit.host.collect import encode_content

            hit = encode_content(data)
        else:
            b64 = base64.b64encode(data).decode("ascii")
            hit = "".join(b64[i:i + 76] + "\n" for i in range(0, len(b64), 76))
        if len(data) > 4096:
            _ENCODED[key] = hit
    return hit


def json_snapshot(snap: Any, entries: dict[str, Any], hostname: str) -> str:
    out: dict[str, Any] = {}
    for path, e in sorted(entries.items()):
        if e.type == "file" and e.data is not None:
            out[path] = {"type": "file", **_encoded(e.data, "json")}
        elif e.type == "file":
            out[path] = {"type": "file", **({"error": e.error} if e.error else {"omitted": e.omitted, "size": e.size})}
        elif e.type == "dir":
            out[path] = {"type": "dir", **({"names": list(e.names)} if e.names is not None else {})}
        elif e.type == "link":
            out[path] = {"type": "link", "target": e.target}
        elif e.type == "error":
            out[path] = {"type": "error", "error": e.error}
        else:
            out[path] = {"type": e.type}
    doc = {"format": "hostaudit-snapshot", "schema_version": 1, "tool_version": snap.tool_version,
           "hostname": hostname, "collected_at": "2026-01-01T00:00:00Z",
           "source": {"mode": snap.mode, "root": snap.root, "collector": "hostaudit collect"},
           "patterns": list(snap.patterns), "entries": out}
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=True) + "\n"


def _field(text: str) -> str:
    from audit.host.snapshot import SAFE_FIELD

    if SAFE_FIELD.fullmatch(text):
        return text
    return "%" + base64.b64encode(os.fsencode(text)).decode("ascii")


def text_snapshot(snap: Any, entries: dict[str, Any], hostname: str) -> str:
    lines = ["hostaudit-snapshot 1", "meta tool collect.sh-bench", "meta collected_at 2026-01-01T00:00:00Z",
             f"meta mode {snap.mode}", f"meta root {_field(snap.root or '/')}", f"meta hostname {_field(hostname)}"]
    for path, e in sorted(entries.items()):
        p = _field(path)
        if e.type == "file" and e.data is not None:
            lines.append(f"file {p} b64")
            lines.append(_encoded(e.data, "text") + ".")
        elif e.type == "file":
            lines.append(f"file {p} {'failed' if e.error else 'large ' + str(e.size)}")
        elif e.type == "dir":
            lines.append(f"dir {p}" + ("" if e.names is not None else " -"))
            lines += [f"name {_field(n)}" for n in e.names or ()]
        elif e.type == "link":
            lines.append(f"link {p} {_field(e.target)}")
        elif e.type == "absent":
            lines.append(f"absent {p}")
        elif e.type == "error":
            lines.append(f"file {p} failed")
        else:
            lines.append(f"kind {p} {e.type}")
    lines.append("end")
    return "\n".join(lines) + "\n"


def generate(folder: Path, n: int, seed: int = 12, processors: int | None = None) -> None:
    """N snapshots in ``folder`` (reused when a previous run made the same ones); each host's
    cpuinfo with ``processors`` processors when given, else as the sample has it."""
    marker = folder / ".made"
    want = f"{GENERATOR_VERSION} {n} {seed}" + (f" {processors}p" if processors else "")
    if marker.exists() and marker.read_text() == want:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if old.is_file():
            old.unlink()
    print(f"making {n} snapshots in {folder} ...", file=sys.stderr)
    rng = random.Random(seed)
    bases = [capture(t) for t in base_trees().values()]
    cpus = cpuinfo_samples()
    if processors:
        cpus = [many_processors(c, processors, rng) for c in cpus]
    for i in range(n):
        snap = bases[i % len(bases)]
        entries = vary(snap, i, rng, cpus)
        name = f"kvm-{i:05d}"
        if i % 2:
            (folder / f"{name}.snap").write_text(text_snapshot(snap, entries, name), encoding="utf-8")
        else:
            (folder / f"{name}.json").write_text(json_snapshot(snap, entries, name), encoding="utf-8")
    marker.write_text(want)


# ------------------------------------------------------------------------------------------------
# Measuring
# ------------------------------------------------------------------------------------------------
def _status(pid: int) -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    out[line.split(":")[0]] = int(line.split()[1])
    except OSError:
        pass
    return out


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
            return [int(x) for x in fh.read().split()]
    except OSError:
        return []


def measure(cmd: list[str]) -> dict[str, float]:
    """Wall time, and peak memory (KiB) of the process, of its largest worker and of all together."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV, cwd=REPO)
    main_hwm = worker_hwm = total = 0
    while proc.poll() is None:
        pids = [proc.pid, *_children(proc.pid)]
        stats = {p: _status(p) for p in pids}
        main_hwm = max(main_hwm, stats[proc.pid].get("VmHWM", 0))
        worker_hwm = max([worker_hwm, *(s.get("VmHWM", 0) for p, s in stats.items() if p != proc.pid)])
        total = max(total, sum(s.get("VmRSS", 0) for s in stats.values()))
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode not in (0, 1, 3):
        raise SystemExit(f"{' '.join(cmd)}: exit {proc.returncode}\n{err}")
    return {"wall": wall, "main_kib": main_hwm, "worker_kib": worker_hwm, "total_kib": total, "rc": proc.returncode}


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "hostaudit-fleet-bench"))
    ap.add_argument("--outputs", action="store_true",
                    help="also time the run writing every fleet output (JSON, JUnit, HTML, Prometheus, scripts)")
    ap.add_argument("--per-process", type=int, default=0, metavar="N",
                    help="also audit N snapshots one process each, as before issue #12")
    ap.add_argument("--processors", type=int, metavar="K",
                    help="give every host K processors (the samples' first one repeated, as a real host prints "
                         "them) instead of the samples' one or two; made into DIR/N-Kp")
    args = ap.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", *(str(REPO / d) for d in ("audit", "checks", "reports"))],
                   env=ENV, check=True, stdout=subprocess.DEVNULL)
    ha = [sys.executable, "-m", "audit"]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; {pace()}")
    rows = []
    for n in args.hosts:
        folder = Path(args.dir) / (f"{n}-{args.processors}p" if args.processors else str(n))
        generate(folder, n, processors=args.processors)
        files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
        size = sum(p.stat().st_size for p in files) / len(files)
        jsize = [p.stat().st_size for p in files if p.suffix == ".json"]
        tsize = [p.stat().st_size for p in files if p.suffix == ".snap"]
        # Every file read once first: the figures are hostaudit's work, not the disk's (a cold page
        # cache costs what reading N x 180 KB from this disk costs, whatever reads it).
        t0 = time.perf_counter()
        for p in files:
            p.read_bytes()
        print(f"N={n}: snapshots read once before timing (page cache warm): {time.perf_counter() - t0:.1f} s")
        audit = measure([*ha, "run", "--snapshot", str(folder), "-q", "--no-entry-points"])
        rows.append((n, "run --snapshot DIR -q", audit, size))
        if args.outputs:
            out = Path(tempfile.mkdtemp(prefix="hostaudit-fleet-out-"))
            full = measure([*ha, "run", "--snapshot", str(folder), "-q", "--no-entry-points",
                            "-o", str(out / "fleet.json"), "-o", str(out / "fleet.xml"), "-o", str(out / "fleet.prom"),
                            "-o", str(out / "fleet.html"), "-o", str(out / "fleet.txt"),
                            "--fix-script", str(out / "fix")])
            rows.append((n, "run ... -o json,xml,prom,html,txt --fix-script", full, size))
            subprocess.run(["rm", "-rf", str(out)], check=False)
        base = measure([*ha, "cpu", "baseline", str(folder), "--format", "json"])
        rows.append((n, "cpu baseline DIR --format json", base, size))
        if args.processors:
            print(f"N={n}: every host has {args.processors} processors")
        print(f"N={n}: {len(jsize)} JSON snapshots of {sum(jsize) / max(1, len(jsize)) / 1024:.1f} KiB on average, "
              f"{len(tsize)} collect.sh ones of {sum(tsize) / max(1, len(tsize)) / 1024:.1f} KiB")
        if args.per_process:
            sample = sorted(files)[: args.per_process]
            t0 = time.perf_counter()
            for f in sample:
                subprocess.run([*ha, "run", "--snapshot", str(f), "-q", "--no-entry-points"], env=ENV, cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            each = (time.perf_counter() - t0) / len(sample)
            print(f"N={n}: one process per snapshot: {each * 1000:.0f} ms a host, {n * each:.0f} s for all "
                  f"(from {len(sample)})")
    print()
    print(f"{'N':>6}  {'command':48} {'wall s':>7} {'hosts/s':>8} {'main MiB':>9} {'worker MiB':>11} "
          f"{'all MiB':>8} {'bytes/snapshot':>15}")
    for n, what, m, size in rows:
        print(f"{n:>6}  {what:48} {m['wall']:7.2f} {n / m['wall']:8.0f} {mib(m['main_kib']):>9} "
              f"{mib(m['worker_kib']):>11} {mib(m['total_kib']):>8} {size:15.0f}")
    print()
    print("targets (2 cores): 10,000 hosts audited in <= 60 s (aim 20 s); cpu baseline over 10,000 hosts <= 5 s "
          "(aim 2 s); peak memory not growing with N beyond the summary")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {pace()}")


if __name__ == "__main__":
    main()
