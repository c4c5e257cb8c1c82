"""Memory tuning for guests (issue #13): THP defrag, huge page pools spread over the NUMA nodes, and
vm.min_free_kbytes where khugepaged does not set it."""

from __future__ import annotations

import posixpath

from audit import hookimpl
from audit.errors import FactUnavailable
from audit.host.arch import X86_64, arch_name
from audit.host.core import Host
from audit.host.kernel import kernel_config
from audit.host.memory import ThpState, sysctl_config, thp_state
from audit.host.memtune import (
    DEFRAG_MODES,
    MIN_FREE_KBYTES,
    MIN_FREE_SOURCE,
    NODE_DIR,
    ZONEINFO,
    BootWrite,
    defrag_boot_writes,
    min_free_kbytes,
    numa_topology,
    recommended_min_free_kbytes,
    thp_extra,
    zoneinfo,
)
from audit.model import (
    Check,
    Evidence,
    Outcome,
    Severity,
    check,
    errored,
    failed,
    not_applicable,
    passed,
    skipped,
    warned,
)
from audit.parsers.hugepages import format_size
from audit.parsers.memory import THP_DIRS
from audit.policy import Policy
from audit.remedy import hugepages as remedy
from audit.remedy.system import ensure_line, q, runtime_only, sysctl_persist, write_file, write_now
from audit.remedy.target import FixTarget
from checks._common import hint, maybe
from checks._hugepages import configured_boot_pools, describe_pools, hugepage_plan
from checks.ksm import base_page_size

#: The tmpfiles.d file hostaudit's fix writes (systemd-tmpfiles-setup.service applies it at boot).
DEFRAG_CONF = "/etc/tmpfiles.d/hostaudit-thp-defrag.conf"
QEMU_MADVISE = ("QEMU madvise()s guest RAM MADV_HUGEPAGE (ram_block_add: qemu_madvise(..., QEMU_MADV_HUGEPAGE)), so "
                "'madvise' and 'defer+madvise' put a guest's page faults into direct reclaim and compaction as "
                "'always' does for every task; 'defer' wakes kswapd/kcompactd and leaves the collapse to khugepaged "
                "(Documentation/admin-guide/mm/transhuge.rst)")
NO_DEFRAG_PARAM = ("no kernel parameter sets THP defrag (Documentation/admin-guide/kernel-parameters.txt, Linux "
                   "6.12.117): it persists through a write at boot, a systemd-tmpfiles 'w' line in /etc/tmpfiles.d")
NODE_FORMAT = ("hugepages= without node counts is spread over the nodes with memory at boot (mm/hugetlb.c "
               "hugetlb_hstate_alloc_pages: 'all node balanced alloc', Linux 6.12.117); the node format "
               "hugepages=0:N,1:M (commit b5389086ad7b, Linux 5.16) pins counts per node")
MIN_FREE_REASON = ("with THP on, khugepaged already raises vm.min_free_kbytes to its recommended value; pools reserved "
                   "at boot do not depend on it")
MIN_FREE_CONF = remedy.SYSCTL_CONF
MAX_PAGE_ORDER = 10  # include/linux/mmzone.h, unless CONFIG_ARCH_FORCE_MAX_ORDER says otherwise


def _selector(choices: tuple[str, ...], active: str | None) -> str:
    return " ".join(f"[{c}]" if c == active else c for c in choices)


def _write_ev(w: BootWrite) -> Evidence:
    why = "" if w.applied else (" (ignored: an earlier tmpfiles.d line writes this file)" if w.mechanism == "tmpfiles.d"
                                else " (overridden by a later sysfs.d line)")
    shown = "unknown (not in the configuration)" if w.value is None else repr(w.value)
    if w.value is not None and w.value not in DEFRAG_MODES:
        why += " (not a defrag mode: the kernel rejects the write)"
    return Evidence(source=w.source, observed=f"{w.mechanism}: writes {shown} to {w.target}{why}")


def _drop_writes(target: FixTarget, writes: list[BootWrite]) -> list[str]:
    """Take the given boot-time writes out: lines of /etc files are deleted in place; a vendor
    tmpfiles.d file gets a same-named copy in /etc/tmpfiles.d without them (which hides it)."""
    by_file: dict[str, list[int]] = {}
    for w in writes:
        by_file.setdefault(w.path, []).append(w.lineno)
    cmds = []
    for path, lines in sorted(by_file.items()):
        script = " ".join(f"-e {q(f'{n}d')}" for n in sorted(set(lines), reverse=True))
        if path.startswith("/etc/"):
            cmds.append(f"sed -i {script} {target.path(path)}")
        else:
            copy = f"/etc/tmpfiles.d/{posixpath.basename(path)}"
            cmds += [f"mkdir -p {target.path('/etc/tmpfiles.d')}",
                     f"sed {script} {target.path(path)} > {target.path(copy)}"]
    return cmds


def _persist_defrag(host: Host, want: str, bad: list[BootWrite], path: str = f"{THP_DIRS[0]}/defrag") -> list[str]:
    """``want`` written to ``path`` at every boot: a systemd-tmpfiles w line (after taking out the
    boot-time writes of other values), or on SysV init (RHEL 6) a line in rc.local, which runs last."""
    target = FixTarget.of(host)
    if target.init == "sysv":
        return [ensure_line(target, "/etc/rc.d/rc.local", write_now(path, want))]
    line = f"w {path} - - - - {want}"
    return [*_drop_writes(target, [w for w in bad if w.path != DEFRAG_CONF]), *write_file(target, DEFRAG_CONF, line)]


@check(
    "memory.thp_defrag",
    title="THP defrag mode does not stall guests in direct compaction",
    severity=Severity.LOW,
    reads=[f"{THP_DIRS[0]}/defrag", f"{THP_DIRS[0]}/khugepaged/defrag", "/etc/tmpfiles.d/*.conf",
           "/usr/lib/tmpfiles.d/*.conf", "/etc/sysfs.d/*.conf"],
    example_fix=["echo madvise > /sys/kernel/mm/transparent_hugepage/defrag",
                 "echo 'w /sys/kernel/mm/transparent_hugepage/defrag - - - - madvise' > "
                 "/etc/tmpfiles.d/hostaudit-thp-defrag.conf"],
)
def thp_defrag(host: Host, policy: Policy) -> Outcome:
    """With defrag 'always' every task that faults a THP stalls in direct reclaim and compaction.
    QEMU marks guest RAM MADV_HUGEPAGE, so 'madvise' and 'defer+madvise' stall only guests (which
    then get huge pages at once) and 'defer' stalls nothing. The mode has no kernel parameter: it
    persists through a systemd-tmpfiles w line written at boot. Live hosts are judged by sysfs (and
    warned when the boot-time write differs); images by their tmpfiles.d/sysfs.d lines."""
    allowed = policy.thp_defrag_allowed
    want = "madvise" if "madvise" in allowed else (allowed[0] if allowed else "madvise")
    expected = "|".join(allowed)
    writes = list(host.fact(defrag_boot_writes))
    applied = [w for w in writes if w.applied]
    boot_values = {w.value for w in applied}
    bad = [w for w in applied if w.value is not None and w.value not in allowed]
    ev = [_write_ev(w) for w in writes]
    ev.append(Evidence(source="kernel parameters", observed=NO_DEFRAG_PARAM))
    ev.append(Evidence(source="QEMU", observed=QEMU_MADVISE))
    if len(boot_values) > 1:
        conflict = (f"; two boot-time writers disagree ({', '.join(sorted(repr(v) for v in boot_values))}): "
                    "which runs last decides")
    else:
        conflict = ""
    boot = applied[-1].value if len(boot_values) == 1 else None
    try:
        state: ThpState | None = host.fact(thp_state)
    except FactUnavailable:
        if host.has_runtime:
            raise
        state = None
    if state is None:  # an image: only the boot-time writes say anything
        if not applied:
            return skipped("no tmpfiles.d or sysfs.d line writes THP defrag, so the next boot keeps the kernel's "
                           "built-in default (madvise since Linux 4.6, commit e4a49efe4e7e; always before), which an "
                           "image does not show", ev)
        if bad:
            values = ", ".join(sorted({repr(w.value) for w in bad}))
            return failed(f"THP defrag will be {values} at boot{conflict}", ev, fix=_persist_defrag(host, want, bad),
                          reboot=True, notes=f"Write {want} at boot from /etc/tmpfiles.d instead.")
        if boot is None:
            return skipped(f"the boot-time THP defrag write cannot be read here{conflict}", ev)
        return passed(f"THP defrag will be '{boot}' at boot ({applied[-1].source})", ev)
    if state.defrag is None:
        raise FactUnavailable(f"{state.dir}/defrag does not exist", source=f"{state.dir}/defrag")
    path = f"{state.dir}/defrag"
    active = state.defrag.active
    ev.insert(0, Evidence(source=path, observed=_selector(state.defrag.choices, active), expected=expected))
    extra = hint(lambda: host.fact(thp_extra))
    if extra is not None and extra.khugepaged_defrag is not None:
        ev.insert(1, Evidence(source=f"{extra.dir}/khugepaged/defrag",
                              observed=f"{extra.khugepaged_defrag} (reported, not judged: 1 lets khugepaged compact "
                                       "memory in the background to collapse huge pages)"))
    if active is None:
        return errored(f"{path}: no active mode is marked (expected one word in [brackets])", ev)
    target = FixTarget.of(host)
    if active in allowed:
        if bad:
            return warned(f"THP defrag is '{active}' now, but a boot-time write sets "
                          f"{', '.join(sorted({repr(w.value) for w in bad}))}: lost at next boot{conflict}", ev,
                          fix=_persist_defrag(host, active, bad, path), reboot=False,
                          notes="Keep the current mode at boot from /etc/tmpfiles.d.")
        if not applied:
            return passed(f"THP defrag is '{active}' (no boot-time write: the kernel's default, or set by hand since "
                          "boot)", ev)
        also = f" (the boot-time write sets '{boot}', also allowed)" if boot is not None and boot != active else ""
        return passed(f"THP defrag is '{active}'{also}{conflict}", ev)
    if boot is not None and boot in allowed:
        return warned(f"THP defrag is '{active}' now; the boot-time write sets '{boot}': configured, not active",
                      ev, fix=runtime_only(target, [write_now(path, boot)]), reboot=False,
                      notes="Apply the configured mode now (or run systemd-tmpfiles --create).")
    return failed(f"THP defrag is '{active}'{conflict}", ev,
                  fix=[*runtime_only(target, [write_now(path, want)]), *_persist_defrag(host, want, bad, path)],
                  reboot=False, notes=f"The echo applies now; the tmpfiles.d line writes {want} at every boot.")


def _spread(total: int, nodes: list[int]) -> dict[int, int]:
    """``total`` pages as evenly as they go over ``nodes`` (the first nodes take the remainder)."""
    base, extra = divmod(total, len(nodes))
    return {n: base + (1 if i < extra else 0) for i, n in enumerate(nodes)}


def _node_pool(node: int, size: int) -> str:
    return f"{NODE_DIR}/node{node}/hugepages/hugepages-{size // 1024}kB/nr_hugepages"


@check(
    "memory.hugepages_numa",
    title="Huge page pools are spread over the NUMA nodes",
    severity=Severity.MEDIUM,
    reads=[f"{NODE_DIR}/has_memory", f"{NODE_DIR}/node*/meminfo", f"{NODE_DIR}/node*/hugepages/*/nr_hugepages",
           "boot configuration", "sysctl files"],
    runtime_only=True,
    example_fix=["echo 512 > /sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages",
                 "grubby --update-kernel=ALL --args='hugepagesz=2M hugepages=1024'"],
)
def hugepages_numa(host: Host, policy: Policy) -> Outcome:
    """Guests pinned to a NUMA node (libvirt <numatune>) take huge pages from that node only: a node
    that holds fewer than the policy's share of an equal split (hugepages.numa_min_share) leaves its
    guests without pages, or makes them run on remote memory. Judged per page size over the nodes
    with memory."""
    topo = host.fact(numa_topology)
    if not topo.nodes:
        return passed("no NUMA node directories (a kernel built without NUMA): one node holds every huge page, "
                      "nothing to spread", [Evidence(source=NODE_DIR, observed="absent")])
    mem_nodes = topo.memory_nodes()
    ev = [Evidence(source=topo.source, observed="nodes with memory: "
                   + (", ".join(f"node{n.node}" for n in mem_nodes) or "none"))]
    for n in mem_nodes:
        if n.mem_total:
            ev.append(Evidence(source=f"{NODE_DIR}/node{n.node}/meminfo",
                               observed=f"MemTotal {n.mem_total // 1024} kB"))
    sizes = sorted({s for n in mem_nodes for s, c in n.pools if c})
    if not sizes:
        return skipped("no huge page pool is reserved on any NUMA node: nothing to spread", ev)
    pools = {s: sum(n.nr(s) for n in mem_nodes) for s in sizes}
    if len(mem_nodes) <= 1:
        only = f"node{mem_nodes[0].node}" if mem_nodes else "one node"
        return passed(f"a single NUMA node with memory ({only}) holds every huge page ({describe_pools(pools)}): "
                      "nothing to spread", ev)
    share = policy.hugepages_numa_min_share
    short: dict[int, dict[int, int]] = {}
    for size in sizes:
        counts = {n.node: n.nr(size) for n in mem_nodes}
        total = sum(counts.values())
        equal = total / len(counts)
        floor = share * equal
        ev.append(Evidence(source=f"{NODE_DIR}/node*/hugepages/hugepages-{size // 1024}kB/nr_hugepages",
                           observed=f"{format_size(size)}: " + ", ".join(f"node{k} {c}" for k, c in counts.items())
                           + f" (total {total}, equal share {total} / {len(counts)} = {equal:g})",
                           expected=f">= {share:g} x {equal:g} = {floor:g} on every node with memory"))
        if any(c < floor for c in counts.values()):
            short[size] = counts
    if not short:
        return passed(f"huge pages are spread over the {len(mem_nodes)} nodes with memory "
                      f"({describe_pools(pools)})", ev)
    target = FixTarget.of(host)
    lower, raise_ = [], []
    for size, counts in short.items():
        goal = _spread(sum(counts.values()), list(counts))
        for node, want in goal.items():
            if counts[node] > want:
                lower.append(write_now(_node_pool(node, size), want))
            elif counts[node] < want:
                raise_.append(write_now(_node_pool(node, size), want))
    fix = runtime_only(target, [*lower, *remedy.compact_memory(), *raise_])
    plan = hint(lambda: hugepage_plan(host))
    notes = [NODE_FORMAT + "."]
    keep = configured_boot_pools(plan) if plan is not None else {}
    boot_req = plan.boot_request if plan is not None else None
    cmdline: dict[int, int] = {}
    for size in short:
        total = sum(short[size].values())
        if boot_req is not None and boot_req.nodes.get(size):
            per = ", ".join(f"{k}:{c}" for k, c in sorted(boot_req.nodes[size].items()))
            notes.append(f"The boot command line pins {format_size(size)} pages per node ({per}): a plain count "
                         "replaces it.")
            cmdline[size] = total
        elif boot_req is not None and boot_req.pools.get(size):
            notes.append(f"The boot command line asks for {boot_req.pools[size]} x {format_size(size)} without node "
                         "counts, which the kernel spreads at boot: the pool became uneven since (a per-node write), "
                         "or a node lacked free memory at boot.")
        else:
            notes.append(f"The {format_size(size)} pool is not reserved on the kernel command line: reserved there, "
                         "the kernel spreads it over the nodes at boot, before memory fragments.")
            cmdline[size] = total
    if cmdline:
        fix += remedy.boot_pools(target, {**{s: c for s, c in keep.items() if c}, **cmdline})
    uneven = "; ".join(f"{format_size(s)}: " + ", ".join(f"node{k} {c}" for k, c in counts.items())
                       for s, counts in short.items())
    return failed(f"huge pages are not spread over the NUMA nodes ({uneven}; each node with memory should hold at "
                  f"least {share:g} of an equal share)", ev, fix=fix, reboot=False, notes=" ".join(notes))


def _khugepaged_runs(host: Host, state: ThpState | None, pmd_size: int) -> tuple[bool, str]:
    """Whether khugepaged runs, hence raises vm.min_free_kbytes (hugepage_pmd_enabled(),
    mm/khugepaged.c, Linux 6.12.117): THP 'always' or 'madvise' for the PMD size, directly or
    through 'inherit'; with CONFIG_READ_ONLY_THP_FOR_FS the global mode alone."""
    if state is None:
        return False, "the kernel has no THP: khugepaged does not run"
    glob = state.enabled.active
    name = f"hugepages-{pmd_size // 1024}kB"
    per = state.per_size.get(name)
    on_global = glob in ("always", "madvise")
    kc = hint(lambda: host.fact(kernel_config))
    if per is None:
        runs = on_global
        shown = f"THP enabled [{glob}]"
    else:
        rofs = kc is not None and kc.config.get("READ_ONLY_THP_FOR_FS") == "y"
        runs = per.active in ("always", "madvise") or (per.active == "inherit" and on_global) or (rofs and on_global)
        shown = f"THP enabled [{glob}], {name} [{per.active}]"
    return runs, shown + (": khugepaged runs" if runs else ": khugepaged does not run")


def _pageblock_pages(host: Host, pmd_size: int, page_size: int) -> tuple[int, str]:
    """pageblock_nr_pages: min(HPAGE_PMD_ORDER, MAX_PAGE_ORDER) on x86 (include/linux/pageblock-flags.h)."""
    order = max(0, (pmd_size // page_size).bit_length() - 1)
    max_order = MAX_PAGE_ORDER
    kc = hint(lambda: host.fact(kernel_config))
    forced = kc.config.get("ARCH_FORCE_MAX_ORDER") if kc is not None else None
    if forced and forced.isdigit():
        max_order = int(forced)
    order = min(order, max_order)
    return 1 << order, (f"pageblock_nr_pages = 2^min({(pmd_size // page_size).bit_length() - 1}, MAX_PAGE_ORDER "
                        f"{max_order}) = {1 << order} ({format_size(pmd_size)} PMD pages of {page_size // 1024} KiB)")


@check(
    "memory.min_free_kbytes",
    title="vm.min_free_kbytes keeps memory free for huge page allocations",
    severity=Severity.LOW,
    reads=[ZONEINFO, MIN_FREE_KBYTES, f"{THP_DIRS[0]}/enabled", f"{THP_DIRS[0]}/hpage_pmd_size", "sysctl files"],
    runtime_only=True,
    example_fix=["echo 90112 > /proc/sys/vm/min_free_kbytes",
                 "echo 'vm.min_free_kbytes = 90112' >> /etc/sysctl.d/80-hugepages.conf"],
)
def min_free(host: Host, policy: Policy) -> Outcome:
    """Huge pages allocated while the host runs need free pageblocks; khugepaged raises
    vm.min_free_kbytes to keep them (2 pageblocks per zone, plus 9 so each migrate type can fall
    back), but only while THP is on. Judged when THP is off or the policy grows pools at runtime
    (hugepages.runtime_growth); the recommended value is the kernel's own formula."""
    state = maybe(host, thp_state)
    extra = maybe(host, thp_extra)
    pmd = extra.hpage_pmd_size if extra is not None and extra.hpage_pmd_size else None
    if pmd is None and arch_name(host) == X86_64:
        pmd = 2 << 20
    runs, why = _khugepaged_runs(host, state, pmd or 2 << 20)
    ev = [Evidence(source=state.dir if state is not None else THP_DIRS[0], observed=why)]
    if runs and not policy.hugepages_runtime_growth:
        return not_applicable(MIN_FREE_REASON, ev)
    reason = ("pools grow at runtime: hugepages.runtime_growth" if policy.hugepages_runtime_growth
              else "THP is off, so khugepaged does not raise vm.min_free_kbytes")
    if pmd is None:
        raise FactUnavailable(f"the PMD huge page size is unknown here ({THP_DIRS[0]}/hpage_pmd_size absent)",
                              source=f"{THP_DIRS[0]}/hpage_pmd_size")
    zones = host.fact(zoneinfo)
    page_size = base_page_size(host)
    pb, pb_text = _pageblock_pages(host, pmd, page_size)
    rec = recommended_min_free_kbytes(zones, pageblock_pages=pb, page_size=page_size)
    running = host.fact(min_free_kbytes)
    ev += [Evidence(source=ZONEINFO, observed="populated zones up to Normal: " + (", ".join(rec.zones) or "none")),
           Evidence(source=MIN_FREE_SOURCE, observed=f"{pb_text}; recommended = {rec.arithmetic}"),
           Evidence(source=MIN_FREE_KBYTES, observed=f"{running} kB", expected=f">= {rec.kbytes} kB")]
    cfg = maybe(host, sysctl_config)
    prov = cfg.effective.get("vm.min_free_kbytes") if cfg is not None else None
    persist: int | None = None
    if prov is not None and prov.value is not None:
        try:
            persist = int(prov.value.strip())
            ev.append(Evidence(source=f"{prov.path}:{prov.line}", observed=f"vm.min_free_kbytes = {persist}"))
        except ValueError:
            ev.append(Evidence(source=f"{prov.path}:{prov.line}",
                               observed=f"vm.min_free_kbytes = {prov.value!r} (not a number: systemd-sysctl fails)"))
    target = FixTarget.of(host)
    conf = prov.path if prov is not None and prov.path.startswith("/etc/") else MIN_FREE_CONF
    persist_fix = sysctl_persist(target, conf, "vm.min_free_kbytes", rec.kbytes)
    if running >= rec.kbytes:
        if persist is not None and persist < rec.kbytes:
            return warned(f"vm.min_free_kbytes is {running} kB now, but {prov.path if prov else 'a sysctl file'} sets "
                          f"{persist}: lost at next boot (recommended {rec.kbytes} kB; {reason})", ev,
                          fix=persist_fix, reboot=False)
        if persist is None and not runs:
            return warned(f"vm.min_free_kbytes is {running} kB now, but no sysctl file keeps it: lost at next boot, "
                          "where the kernel sets sqrt(lowmem kB x 16) and khugepaged does not raise it (THP is off)",
                          ev, fix=persist_fix, reboot=False)
        return passed(f"vm.min_free_kbytes is {running} kB, at least the {rec.kbytes} kB khugepaged recommends "
                      f"({reason})", ev)
    if persist is not None and persist >= rec.kbytes:
        return warned(f"vm.min_free_kbytes is {running} kB now; {prov.path if prov else 'a sysctl file'} sets "
                      f"{persist}: configured, not active", ev,
                      fix=runtime_only(target, [write_now(MIN_FREE_KBYTES, persist)]), reboot=False)
    return failed(f"vm.min_free_kbytes is {running} kB, below the {rec.kbytes} kB the kernel's khugepaged formula "
                  f"recommends ({reason})", ev,
                  fix=[*runtime_only(target, [write_now(MIN_FREE_KBYTES, rec.kbytes)]), *persist_fix], reboot=False,
                  notes="The echo applies now; the sysctl.d line keeps it at every boot.")


@hookimpl
def hostaudit_checks() -> list[Check]:
    return [thp_defrag, hugepages_numa, min_free]
