"""Huge pages: a pool reserved persistently, that fits in memory, that the kernel really allocated,
that the CPU supports, with hugetlbfs mounted (now and after a reboot) and the tools installed."""

from __future__ import annotations

from audit import hookimpl
from audit.boot.model import ORDERED_PARAMS
from audit.host.arch import X86_64
from audit.host.core import Host
from audit.host.memory import (
    DEV_HUGEPAGES_UNIT,
    FSTAB,
    fstab,
    fstab_hugetlbfs,
    hugeadm_path,
    hugepage_state,
    meminfo,
    mounts,
    service_tree,
)
from audit.model import Check, Evidence, Outcome, Severity, check, failed, passed, skipped, warned
from audit.parsers.cmdline import canonical_name
from audit.parsers.hugepages import format_size
from audit.parsers.mounts import FstabEntry, hugetlbfs_mounts, hugetlbfs_page_size, normalize_mount_path
from audit.parsers.systemd import UnitState
from audit.policy import Policy
from audit.remedy import hugepages as remedy
from audit.remedy.cmdline import regenerate
from audit.remedy.packages import HUGEADM, install
from audit.remedy.system import dedupe_lines, unmask_unit
from audit.remedy.target import FixTarget
from checks._common import maybe
from checks._hugepages import (
    GIB,
    HugepagePlan,
    configured_boot_pools,
    describe_pools,
    hugepage_plan,
    human_size,
    suggested_pool,
)
from checks.boot import stale_tokens


def _stale_pool(target: FixTarget, plan: HugepagePlan) -> tuple[str, list[str]]:
    """(message suffix, fix) when the boot configuration's inputs ask for huge pages the
    generated configuration lacks: regenerating it is the fix, not another pool."""
    stale = [st for st in plan.boot.stale if canonical_name(st.name) in ORDERED_PARAMS]
    if not stale:
        return "", []
    by_source: dict[str, list[str]] = {}
    for st in stale:
        by_source.setdefault(st.source, []).append(f"{st.name}={st.wanted}")
    wants = ", ".join(f"{src} asks for {' '.join(toks)}" for src, toks in by_source.items())
    # only the pool parameters: regenerating in place on an image must not bring back other stale ones
    # (a THP mode another fix of the same script changes)
    pools = [t for t in stale_tokens(plan.boot.config) if canonical_name(t.split("=", 1)[0]) in ORDERED_PARAMS]
    return (f"; {wants}, but the boot configuration was not regenerated (see boot.drift)",
            regenerate(target, pools))


def _inputs_enough(policy: Policy, plan: HugepagePlan, configured: dict[int, int]) -> bool:
    """Whether the pools the inputs configure are what the policy wants, so regenerating is the fix."""
    if not (policy.hugepages_size or policy.hugepages_count):
        return bool(configured)
    return configured.get(policy.hugepages_size or plan.default_size, 0) >= (policy.hugepages_count or 1)


@check(
    "boot.hugepages",
    title="A huge page pool is reserved persistently and active",
    severity=Severity.MEDIUM,
    reads=["/proc/cmdline", "/etc/default/grub", "/boot/grub*/grub.cfg", "/boot/loader/entries/*.conf",
           "/boot/grub/grub.conf", "/etc/sysctl.d/*.conf", "/sys/kernel/mm/hugepages/"],
    example_fix=["echo 512 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
                 "echo 'vm.nr_hugepages = 512' > /etc/sysctl.d/80-hugepages.conf"],
)
def boot_hugepages(host: Host, policy: Policy) -> Outcome:
    """Guests backed by huge pages (libvirt <memoryBacking><hugepages/>) need a pool reserved before
    they start; a pool set only at runtime is lost at the next boot, and one only configured is not
    there until the host reboots."""
    plan = hugepage_plan(host)
    target = FixTarget.of(host)
    ev = list(plan.evidence)
    size, count = suggested_pool(policy, plan)
    # what the next boot's kernel rejects on this CPU (hugepagesz=1G without pdpe1gb): said, not counted
    rej = "".join(f"; {n}" for n in plan.boot_notes)
    P = {s: n for s, n in (plan.persistent or {}).items() if n}
    R = {s: n for s, n in (plan.running or {}).items() if n} if plan.running is not None else None
    if plan.persistent is None:
        if R:
            return warned(
                f"huge pages are reserved now ({describe_pools(R)}) but the next boot's configuration is unknown"
                f" ({plan.boot.summary}): they may be lost at the next boot",
                ev, fix=remedy.persist_pools(target, R, default_size=plan.default_size,
                                             keep=configured_boot_pools(plan)),
                notes="Make the pools persistent: the default size in /etc/sysctl.d, others on the command line.",
            )
        if policy.hugepages_required and R is not None:  # live: we know nothing is reserved now
            cmds, notes, reboot = remedy.reserve_pool(target, size, count, default_size=plan.default_size)
            return failed(f"no huge pages are reserved now and no persistent huge page setting was found"
                          f" ({plan.boot.summary})", ev, fix=cmds, notes=notes, reboot=reboot)
        return skipped(f"cannot tell what the next boot reserves: {plan.boot.summary}, and no vm.nr_hugepages"
                       " in sysctl files", ev)
    stale_msg, stale_fix = _stale_pool(target, plan)
    keep = configured_boot_pools(plan)  # what the inputs configure: a rewrite of the pairs keeps it
    if policy.hugepages_size and plan.sizes is not None:
        valid = plan.sizes.valid()
        if valid is not None and policy.hugepages_size not in valid:
            why = plan.sizes.why_not(policy.hugepages_size)
            return failed(f"the policy wants {format_size(policy.hugepages_size)} pages, which this kernel cannot "
                          f"reserve here: {why}{rej}", [*ev, plan.sizes.evidence],
                          fix=[f"# choose a huge page size this host has (hugepages.size in the policy): {why}"],
                          notes="No boot parameter reserves a page size the kernel rejects (see cpu.pdpe1gb).")
    if not P and not R:
        if not policy.hugepages_required:
            return passed("no huge page pool is configured (not required by the policy)" + stale_msg + rej, ev)
        if stale_fix and _inputs_enough(policy, plan, keep):
            cmds, notes, reboot = stale_fix, "Regenerate the boot configuration from its inputs.", True
        else:  # the inputs do not ask for what the policy wants either: reserve it (and regenerate)
            cmds, notes, reboot = remedy.reserve_pool(target, size, count, default_size=plan.default_size, keep=keep)
        return failed("no huge page pool is reserved (neither on the boot command line nor in sysctl files)"
                      + stale_msg + plan.boot.predicted + rej, ev, fix=cmds, notes=notes, reboot=reboot)
    if policy.hugepages_size or policy.hugepages_count:
        want_size = policy.hugepages_size or plan.default_size
        want = policy.hugepages_count or 1
        have = P.get(want_size, 0)
        ev.append(Evidence(source="policy", observed=f"persistent {format_size(want_size)} pages: {have}",
                           expected=f">= {want} x {format_size(want_size)}"))
        if have < want:
            cmds, notes, reboot = remedy.reserve_pool(target, want_size, want, default_size=plan.default_size,
                                                      keep=keep)
            return failed(f"persistent pool has {have} x {format_size(want_size)} pages; the policy wants {want}"
                          + stale_msg + plan.boot.predicted + rej, ev, fix=cmds, notes=notes, reboot=reboot)
    if R is None:
        return passed(f"reserved at boot: {describe_pools(P)}{plan.predicted}{rej}", ev)
    asked = dict(plan.running_request.pools) if plan.running_request else {}
    if plan.sysctl_count is not None:
        asked[plan.default_size] = plan.sysctl_count
    pending = [s for s in P if R.get(s, 0) < P[s] and asked.get(s, 0) < P[s]]
    short = [s for s in P if R.get(s, 0) < P[s] and s not in pending]
    lost = [s for s in R if R[s] > P.get(s, 0)]
    if pending and not lost:
        return warned(f"configured, not active: reboot pending (next boot: {describe_pools(P)}; now: "
                      f"{describe_pools(R)}){rej}", ev,
                      fix=[*remedy.set_pools_now({s: P[s] for s in pending}), "# or reboot"],
                      notes="The running kernel has not been given the configured pool yet.", reboot=False)
    if lost:
        fixes = remedy.persist_pools(target, {s: R[s] for s in lost}, default_size=plan.default_size, keep=keep)
        reboot = False  # the pools are there now; the change only has to survive the next boot
        notes = "Make the pools persistent: the default size in /etc/sysctl.d, others on the command line."
        now = ", ".join(f"{R[s]} x {format_size(s)}" for s in lost)
        if plan.boot_request is None and all(s != plan.default_size for s in lost):
            # only the kernel command line can keep these sizes, and the next boot's is unknown
            return warned(f"active now, may be lost at next boot: {now} reserved now, {describe_pools(P)} in sysctl "
                          f"files; the next boot's command line is unknown ({plan.boot.summary})", ev, fix=fixes,
                          notes=notes, reboot=reboot)
        return warned(f"active now, lost at next boot: {now} reserved now, {describe_pools(P)} configured{rej}", ev,
                      fix=fixes, notes=notes, reboot=reboot)
    if short:
        got = "; ".join(f"{format_size(s)}: {R.get(s, 0)} of {P[s]}" for s in short)
        return warned(f"configured persistently, but the kernel holds fewer pages than it was asked for ({got}):"
                      f" see memory.hugepages_allocated{rej}", ev,
                      fix=[*remedy.compact_memory(), *remedy.set_pools_now({s: P[s] for s in short})],
                      notes="Memory was short or fragmented when the pool was reserved.")
    return passed(f"reserved persistently and active: {describe_pools(P)}{rej}", ev)


@check(
    "memory.hugepages_fit",
    title="Huge page pools fit in physical memory",
    severity=Severity.HIGH,
    reads=["/proc/meminfo", "/sys/kernel/mm/hugepages/", "boot configuration", "sysctl files"],
    example_fix=["echo 'vm.nr_hugepages = 512' > /etc/sysctl.d/80-hugepages.conf   # a smaller pool"],
)
def hugepages_fit(host: Host, policy: Policy) -> Outcome:
    """Huge pages are taken out of general memory at reservation: a pool larger than RAM makes the
    kernel reserve what it can and leaves the host itself starved; past the policy's fraction the
    host and its page cache run short."""
    plan = hugepage_plan(host)
    pools: dict[int, int] = {}
    asked_now = plan.running_request.pools if plan.running_request else {}  # what the running kernel was told
    for source in (plan.persistent or {}, asked_now, plan.running or {}):
        for s, n in source.items():
            pools[s] = max(pools.get(s, 0), n)
    total = sum(s * n for s, n in pools.items())
    if not total:
        rej = "".join(f"; next boot: {n}" for n in plan.boot_notes)
        return skipped("no huge page pool is configured or reserved: nothing to fit" + rej, plan.evidence)
    mi = maybe(host, meminfo)
    if mi is not None and mi.mem_total:
        mem, src = mi.mem_total, "/proc/meminfo"
    elif policy.host_memory:
        mem, src = policy.host_memory, f"policy host.memory ({policy.source})"
    else:
        return skipped("the target host's memory is unknown on an image: set host.memory in the policy to check",
                       plan.evidence)
    ev = [*plan.evidence, Evidence(source=src, observed=f"memory {human_size(mem)}; pools {describe_pools(pools)} = "
                                   f"{human_size(total)}",
                                   expected=f"<= {policy.hugepages_max_memory_fraction:.0%} of memory")]
    limit = int(mem * policy.hugepages_max_memory_fraction)
    fix = ["# shrink the pool: lower hugepages= on the kernel command line or vm.nr_hugepages in /etc/sysctl.d"]
    # pools the kernel rejects on this CPU are not counted (they are never reserved); an image's pool
    # that depends on the CPU it boots on is counted, and said to depend on it
    also = plan.depends if plan.persistent_without is not None else ""
    if total > mem:
        return failed(f"huge page pools ({human_size(total)}) exceed physical memory ({human_size(mem)}){also}",
                      ev, fix=fix, notes="The kernel reserves what it can and leaves the host with no memory.")
    if total > limit:
        return warned(f"huge page pools take {total / mem:.0%} of memory, over the policy's "
                      f"{policy.hugepages_max_memory_fraction:.0%}{also}", ev, fix=fix,
                      notes="Leave memory for the host, QEMU's own overhead and the page cache.")
    return passed(f"huge page pools take {human_size(total)} of {human_size(mem)} ({total / mem:.0%}){also}", ev)


@check(
    "memory.hugepages_allocated",
    title="The kernel allocated every huge page it was asked for",
    severity=Severity.MEDIUM,
    reads=["/proc/cmdline", "/sys/kernel/mm/hugepages/*/nr_hugepages", "/sys/devices/system/node/*/hugepages/"],
    runtime_only=True,
    example_fix=["echo 1 > /proc/sys/vm/compact_memory",
                 "echo 16 > /sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages"],
)
def hugepages_allocated(host: Host, policy: Policy) -> Outcome:
    """The kernel silently reserves fewer pages than asked when memory is short or fragmented:
    guests that expect the pool then fail to start."""
    plan = hugepage_plan(host)
    asked = dict(plan.running_request.pools) if plan.running_request else {}
    if plan.sysctl_count is not None:
        asked[plan.default_size] = max(asked.get(plan.default_size, 0), plan.sysctl_count)
    asked = {s: n for s, n in asked.items() if n}
    if not asked:
        return skipped("no huge pages were asked for at boot (command line or sysctl)", plan.evidence)
    running = plan.running or {}
    state = host.fact(hugepage_state)
    ev = list(plan.evidence)
    for node in state.nodes:
        if node.nr:
            ev.append(Evidence(source=f"/sys/devices/system/node/node{node.node}/hugepages",
                               observed=f"{node.nr} x {format_size(node.size)} (free {node.free})"))
    short = {s: (running.get(s, 0), n) for s, n in asked.items() if running.get(s, 0) < n}
    if short:
        desc = "; ".join(f"{format_size(s)}: {got} of {want}" for s, (got, want) in short.items())
        fix = [*remedy.compact_memory(), *remedy.set_pools_now({s: want for s, (_, want) in short.items()})]
        return failed(f"the kernel allocated fewer huge pages than asked ({desc})", ev, fix=fix,
                      notes="Memory was short or fragmented; reserve gigantic pages on the command line, "
                            "early at boot, or reduce the pool.")
    return passed("every requested huge page was allocated: " + describe_pools({s: running[s] for s in asked}), ev)


@check(
    "cpu.pdpe1gb",
    title="The CPU supports the 1 GiB pages asked for",
    severity=Severity.HIGH,
    reads=["/proc/cpuinfo", "boot configuration", "/proc/cmdline"],
    runtime_only=True,
    arches=[X86_64],
    example_fix=["# use 2 MiB pages (hugepagesz=2M) on CPUs without pdpe1gb"],
)
def pdpe1gb(host: Host, policy: Policy) -> Outcome:
    """1 GiB pages need the CPU's pdpe1gb feature (an x86 flag); without it the kernel rejects
    hugepagesz=1G and ignores the hugepages= after it, and guests configured for 1 GiB pages do
    not start."""
    cpu = host.cpuinfo
    plan = hugepage_plan(host)
    run, nxt = plan.running_replay, plan.boot_replay
    # asked for now or at the next boot, whether or not the kernel accepts it on this CPU
    now = bool((plan.running or {}).get(GIB)) or (run is not None and (bool(run.request.pools.get(GIB))
                                                                         or GIB in run.rejected))
    later = bool((plan.persistent or {}).get(GIB)) or (nxt is not None and GIB in nxt.rejected)
    wanted = now or later or policy.hugepages_size == GIB
    has = "pdpe1gb" in cpu.flags
    ev = Evidence(source="/proc/cpuinfo", observed=("has" if has else "lacks") + " pdpe1gb",
                  expected="pdpe1gb" if wanted else None)
    if has:
        use = (" and in use" if now else " and configured for the next boot" if later
               else "; the policy wants them" if wanted else "")
        return passed("1 GiB pages supported (pdpe1gb)" + use, [*plan.evidence, ev])
    if wanted:
        return failed("1 GiB huge pages are configured but the CPU lacks pdpe1gb", [*plan.evidence, ev],
                      fix=[*remedy.drop_boot_pools(FixTarget.of(host)),
                           "# then reserve 2 MiB pages instead (vm.nr_hugepages)"],
                      reboot=True, notes="The kernel rejects hugepagesz=1G on this CPU and ignores the hugepages= "
                                         "after it (Linux 4.7 and later; older kernels give it to the default size).")
    return skipped("no 1 GiB pages asked for, and the CPU has no pdpe1gb", [ev])


def _sizes_needed(plan: HugepagePlan, policy: Policy) -> set[int]:
    sizes = plan.sizes_in_use()
    if policy.hugepages_required and not sizes:
        sizes = {policy.hugepages_size or plan.default_size}
    return sizes


@check(
    "mounts.hugetlbfs",
    title="hugetlbfs is mounted for each huge page size, now and after a reboot",
    severity=Severity.MEDIUM,
    reads=["/proc/mounts", "/etc/fstab", "/usr/lib/systemd/system/dev-hugepages.mount", "/etc/systemd/system/"],
    example_fix=["mkdir -p /dev/hugepages1G && mount -t hugetlbfs -o pagesize=1G hugetlbfs /dev/hugepages1G",
                 "echo 'hugetlbfs /dev/hugepages1G hugetlbfs pagesize=1G 0 0' >> /etc/fstab"],
)
def hugetlbfs_mounted(host: Host, policy: Policy) -> Outcome:
    """QEMU allocates guest memory from files on a hugetlbfs mount of the right page size; without
    one the pool sits unused. The mount must come back at every boot (fstab or a systemd mount unit)."""
    plan = hugepage_plan(host)
    sizes = _sizes_needed(plan, policy)
    if not sizes:
        return skipped("huge pages are not in use here (not required, none configured)", plan.evidence)
    default = plan.default_size
    ev: list[Evidence] = []
    persistent: set[int] = set()
    by_point: dict[str, list[FstabEntry]] = {}
    for e in fstab_hugetlbfs(maybe(host, fstab) or []):
        s = hugetlbfs_page_size(e.option_map, default)
        persistent.add(s)
        by_point.setdefault(normalize_mount_path(e.file), []).append(e)
        ev.append(Evidence(source=f"/etc/fstab:{e.line}", observed=f"hugetlbfs on {e.file} pagesize {format_size(s)}"))
    duplicates = {mp: es for mp, es in by_point.items() if len(es) > 1}
    tree = host.fact(service_tree)
    st = tree.state(DEV_HUGEPAGES_UNIT)
    ev.append(Evidence(source=f"systemd: {DEV_HUGEPAGES_UNIT}", observed=str(st)))
    if st.starts_at_boot:
        persistent.add(default)
    for path, unit in tree.mount_units.items():
        if unit.type == "hugetlbfs" and not path.endswith(f"/{DEV_HUGEPAGES_UNIT}"):
            name = path.rsplit("/", 1)[-1]
            if tree.state(name).starts_at_boot:
                s = hugetlbfs_page_size(unit.option_map, default)
                persistent.add(s)
                ev.append(Evidence(source=path, observed=f"hugetlbfs on {unit.where} pagesize {format_size(s)}"))
    now: set[int] | None = None
    if host.has_runtime:
        current_default = (maybe(host, meminfo).hugepagesize if maybe(host, meminfo) else None) or default
        now = set()
        for m in hugetlbfs_mounts(host.fact(mounts)):
            s = hugetlbfs_page_size(m.option_map, current_default)
            now.add(s)
            ev.append(Evidence(source=f"/proc/mounts:{m.line}", observed=f"hugetlbfs on {m.target} pagesize "
                               f"{format_size(s)}"))
    ev.append(Evidence(source="huge page sizes in use", observed=", ".join(format_size(s) for s in sorted(sizes))))
    miss_now = sorted(sizes - now) if now is not None else []
    miss_boot = sorted(sizes - persistent)

    # a mask in /etc also hides the unit fstab-generator would make for /dev/hugepages
    masked = st is UnitState.MASKED and default in miss_boot
    target = FixTarget.of(host)
    unmask = unmask_unit(target, DEV_HUGEPAGES_UNIT) if masked else []
    at_boot = remedy.mount_at_boot(target, miss_boot, default_size=default)
    why = f" ({DEV_HUGEPAGES_UNIT} is masked)" if masked else ""
    if miss_now:
        return failed(f"no hugetlbfs mount for {', '.join(format_size(s) for s in miss_now)} pages{why}", ev,
                      fix=[*remedy.mount_now(target, miss_now, default_size=default), *unmask, *at_boot],
                      notes="QEMU needs a hugetlbfs mount of each page size it backs guests with.")
    if miss_boot:
        what = "mounted now, not after a reboot" if now is not None else "not mounted at boot"
        fn = warned if now is not None else failed
        return fn(f"hugetlbfs for {', '.join(format_size(s) for s in miss_boot)} pages: {what}{why}", ev,
                  fix=[*unmask, *at_boot],
                  notes="Add an /etc/fstab entry (or a systemd .mount unit) so the mount comes back at boot.")
    where = "mounted now and at boot" if now is not None else "mounted at boot"
    done = f"hugetlbfs {where} for {', '.join(format_size(s) for s in sorted(sizes))} pages"
    if duplicates:
        return warned(done + ", but /etc/fstab mounts " + "; ".join(
            f"{mp} {len(es)} times (lines {', '.join(str(e.line) for e in es)})" for mp, es in duplicates.items())
            + ": systemd-fstab-generator refuses the duplicate and mount -a stacks a second mount", ev,
            fix=_dedupe_fstab(target, duplicates), notes="Keep one /etc/fstab entry per mount point.")
    return passed(done, ev)


def _dedupe_fstab(target: FixTarget, duplicates: dict[str, list[FstabEntry]]) -> list[str]:
    """Identical repeated entries are dropped by a command; differing ones need a person to choose."""
    differing = [mp for mp, es in duplicates.items() if len({(e.spec, e.vfstype, e.options) for e in es}) > 1]
    cmds = dedupe_lines(target, FSTAB) if len(differing) < len(duplicates) else []
    return cmds + [f"# keep one of the /etc/fstab entries for {mp} (their options differ)" for mp in differing]


@check(
    "packages.libhugetlbfs",
    title="hugeadm (libhugetlbfs tools) is installed",
    severity=Severity.LOW,
    reads=["/usr/bin/hugeadm", "/usr/sbin/hugeadm", "/etc/os-release"],
    example_fix=["apt-get install libhugetlbfs-bin   # RHEL: dnf install libhugetlbfs-utils"],
)
def libhugetlbfs(host: Host, policy: Policy) -> Outcome:
    """hugeadm shows and adjusts pools per size and NUMA node and creates mounts; operators of a
    huge-page host reach for it when a pool falls short."""
    plan = hugepage_plan(host)
    if not plan.in_use(policy):
        return skipped("huge pages are not in use here (not required, none configured)")
    path = host.fact(hugeadm_path)
    ev = Evidence(source="/usr/bin/hugeadm", observed=path or "absent", expected="hugeadm installed")
    if path:
        return passed(f"hugeadm is installed ({path})", ev)
    return failed("hugeadm is not installed", ev, fix=install(FixTarget.of(host), HUGEADM),
                  notes="Package name differs per distribution.")


@hookimpl
def hostaudit_checks() -> list[Check]:
    return [boot_hugepages, hugepages_fit, hugepages_allocated, pdpe1gb, hugetlbfs_mounted, libhugetlbfs]
