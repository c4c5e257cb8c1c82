"""KSM in use (issue #13): what merging saves and costs while it runs, and whether ksmtuned can see
the guests whose memory should start it."""

from __future__ import annotations

from audit import hookimpl
from audit.errors import FactError, FactUnavailable
from audit.host.core import Host
from audit.host.memory import ksm_state, ksmtuned_conf, meminfo, service_tree
from audit.host.memtune import (
    KSMTUNED_SCRIPTS,
    LOCAL_KSMTUNED,
    GuestFinder,
    ProcessView,
    compile_finder,
    finder_matches,
    ksmtuned_script,
    libvirt_processes,
    libvirt_setup,
    numa_topology,
    parse_ksmtuned_script,
    qemu_processes,
)
from audit.model import Check, Evidence, Outcome, Severity, check, failed, passed, skipped, warned
from audit.parsers.memory import KSM_DIR, KsmState
from audit.parsers.systemd import KSMTUNED_CONF
from audit.policy import Policy
from audit.remedy.system import q, runtime_only, write_now
from audit.remedy.target import FixTarget
from checks._common import hint, maybe
from checks._hugepages import human_size
from checks.ksm import base_page_size

KSM_DOC = "Documentation/admin-guide/mm/ksm.rst (Linux 6.12.117)"
#: The guest search of ksmtuned as Fedora and RHEL ship it (ksmtuned/ksmtuned src/ksmtuned.sh.in
#: @3dc2f08713a1): the process name, which is "qemu-system-x86" (cut to 15), "qemu-kvm" or "qemu:NAME".
UPSTREAM_PGREP = "pgrep -d ' ' -- '^qemu(-(kvm|system-.+)|:.{1,11})$'"
LOCAL_SCRIPT = LOCAL_KSMTUNED
DROPIN = "/etc/systemd/system/ksmtuned.service.d/hostaudit-guest-pattern.conf"
MAX_SHOWN = 12  # guests shown in the evidence; the message counts them all


def _ratio(a: int, b: int) -> str:
    return f"{a / b:.2f}" if b else "inf"


@check(
    "ksm.effectiveness",
    title="KSM saves memory for the scanning it costs",
    severity=Severity.INFO,
    reads=[f"{KSM_DIR}/run", f"{KSM_DIR}/pages_shared", f"{KSM_DIR}/pages_sharing", f"{KSM_DIR}/pages_unshared",
           f"{KSM_DIR}/general_profit", f"{KSM_DIR}/full_scans", f"{KSM_DIR}/pages_to_scan"],
    runtime_only=True,
    example_fix=["echo 1 > /sys/kernel/mm/ksm/smart_scan", "echo 200 > /sys/kernel/mm/ksm/sleep_millisecs"],
)
def ksm_effectiveness(host: Host, policy: Policy) -> Outcome:
    """While KSM runs, pages_sharing/pages_shared says how well guests share and
    pages_unshared/pages_sharing how much scanning is wasted (ksm.rst): warned past the policy's
    ksm.min_sharing_ratio and ksm.max_unshared_ratio once a full scan has completed, or when
    general_profit (6.4+) says KSM costs more memory than it saves. Whether KSM should run at all
    is ksm.state's question."""
    state: KsmState = host.fact(ksm_state)
    if state.run != 1:
        return skipped(f"KSM is not running (run={state.run}); ksm.state judges whether it should",
                       [Evidence(source=f"{KSM_DIR}/run", observed=str(state.run))])
    page = base_page_size(host)
    ev = [Evidence(source=f"{KSM_DIR}/run", observed="1 (ksmd merging)")]
    sharing, shared, unshared = state.pages_sharing, state.pages_shared, state.pages_unshared
    zero = state.ksm_zero_pages or 0
    problems: list[str] = []
    if sharing is not None:
        saved = sharing + zero
        zero_txt = f" + ksm_zero_pages {zero}" if state.ksm_zero_pages is not None else ""
        ev.append(Evidence(source=f"{KSM_DIR}/pages_sharing", observed=(
            f"saved: pages_sharing {sharing}{zero_txt} = {saved} pages x {page} B = {human_size(saved * page)}")))
    else:
        saved = None
    if state.general_profit is not None:
        lost = " lost" if state.general_profit < 0 else ""
        ev.append(Evidence(source=f"{KSM_DIR}/general_profit", observed=(
            f"{state.general_profit} B = {human_size(abs(state.general_profit))}{lost}"
            " (the kernel's (pages_sharing + ksm_zero_pages) x page size - rmap_items x sizeof(rmap_item))")))
        if state.general_profit < 0:
            problems.append(f"general_profit is {state.general_profit} B: KSM's metadata costs more than it saves")
    scans = state.full_scans
    settled = scans is None or scans > 0
    ev.append(Evidence(source=f"{KSM_DIR}/full_scans", observed=(
        "absent" if scans is None else f"{scans}: " + ("at least one full scan of the mergeable memory completed"
                                                      if scans else "no full scan completed yet: ratios not judged"))))
    if sharing is not None and shared is not None:
        r = sharing / shared if shared else None
        ev.append(Evidence(source=f"{KSM_DIR}/pages_shared", observed=(
            f"sharing ratio pages_sharing / pages_shared = {sharing} / {shared} = {_ratio(sharing, shared)}"
            + (f" (max_page_sharing {state.max_page_sharing} caps it)" if state.max_page_sharing else "")),
            expected=f">= {policy.ksm_min_sharing_ratio:g}"))
        if settled and r is not None and r < policy.ksm_min_sharing_ratio:
            problems.append(f"guests share little: pages_sharing / pages_shared = {r:.2f} "
                            f"(policy ksm.min_sharing_ratio {policy.ksm_min_sharing_ratio:g})")
    if unshared is not None and sharing is not None:
        ev.append(Evidence(source=f"{KSM_DIR}/pages_unshared", observed=(
            f"wasted scanning pages_unshared / pages_sharing = {unshared} / {sharing} = {_ratio(unshared, sharing)}"),
            expected=f"<= {policy.ksm_max_unshared_ratio:g}"))
        if settled and unshared and (not sharing or unshared / sharing > policy.ksm_max_unshared_ratio):
            problems.append(f"most scanned pages never merge: pages_unshared / pages_sharing = "
                            f"{_ratio(unshared, sharing)} "
                            f"(policy ksm.max_unshared_ratio {policy.ksm_max_unshared_ratio:g})")
    if state.pages_volatile is not None:
        ev.append(Evidence(source=f"{KSM_DIR}/pages_volatile", observed=f"{state.pages_volatile} (changing too fast to "
                                                                          "merge)"))
    if state.pages_to_scan is not None and state.sleep_millisecs is not None:
        rate = state.pages_to_scan * 1000 / max(state.sleep_millisecs, 1)
        ev.append(Evidence(source=f"{KSM_DIR}/pages_to_scan", observed=(
            f"tuning: pages_to_scan {state.pages_to_scan} every sleep_millisecs {state.sleep_millisecs} ms = up to "
            f"{rate:.0f} pages/s ({human_size(int(rate * page))}/s)"
            + (f"; smart_scan {state.smart_scan}" if state.smart_scan is not None else "")
            + (f"; advisor_mode {state.advisor_mode}" if state.advisor_mode is not None else ""))))
    topo = hint(lambda: host.fact(numa_topology))
    if state.merge_across_nodes is not None and topo is not None and len(topo.with_memory) > 1:
        ev.append(Evidence(source=f"{KSM_DIR}/merge_across_nodes", observed=(
            f"{state.merge_across_nodes} on a host with {len(topo.with_memory)} memory nodes: "
            + ("pages of different nodes are merged (more sharing, remote accesses for some guests)"
               if state.merge_across_nodes else "only pages of the same node are merged (lower latency)")
            + f" ({KSM_DOC})")))
    if not problems:
        what = human_size(saved * page) if saved is not None else "an unknown amount (no pages_sharing)"
        return passed(f"KSM runs and saves {what}", ev)
    target = FixTarget.of(host)
    fix: list[str] = []
    if state.smart_scan == 0:
        fix += runtime_only(target, [write_now(f"{KSM_DIR}/smart_scan", 1,
                                               why="skip pages that repeatedly failed to merge")])
    fix += ["# scan less for the same merges: raise sleep_millisecs or lower pages_to_scan (ksmtuned: KSM_SLEEP_MSEC, "
            "KSM_NPAGES_MAX in /etc/ksmtuned.conf)",
            "# or, where guests share little, let ksm.state turn KSM off on this host (policy ksm.mode: off)"]
    return warned("; ".join(problems), ev, fix=fix,
                  notes=f"Ratios as {KSM_DOC} reads them: a high pages_sharing/pages_shared is good sharing, a high "
                        "pages_unshared/pages_sharing wasted effort.")


def _describe(proc: ProcessView) -> str:
    who = f"pid {proc.pid}" if proc.pid is not None else proc.origin
    return f"{who}: name {proc.comm!r}, command line {proc.shown()!r}"


def _fix_pattern(host: Host, script: str, finder: GuestFinder) -> list[str]:
    """A copy of the script with the upstream guest search, run by a systemd drop-in (the packaged
    script is left as it is, and an upgrade of it does not undo the fix)."""
    target = FixTarget.of(host)
    if not finder.replaceable:
        return [f"# {script}:{finder.line}: make the guest search match QEMU by process name, as upstream ksmtuned "
                f"does ({UPSTREAM_PGREP}), in a copy of the script that a ksmtuned.service drop-in runs"]
    local, dropin = target.path(LOCAL_SCRIPT), target.path(DROPIN)
    new = f"    pidlist=$({UPSTREAM_PGREP})"
    change = f"{finder.line}c" + "\\" + new  # GNU sed: replace that line of the script
    sed = f"-e {q(change)}"
    tmp = target.path(LOCAL_SCRIPT + ".new")  # the script may be the local copy itself: never sed X > X
    cmds = [f"mkdir -p {target.path('/usr/local/sbin')}",
            f"sed {sed} {target.path(script)} > {tmp}",
            f"grep -qxF -- {q(new)} {tmp}",
            f"chmod 755 {tmp}",
            f"mv -f {tmp} {local}"]
    if target.init == "sysv":
        return [*cmds, f"# point /etc/init.d/ksmtuned at {LOCAL_SCRIPT} (SysV init: no drop-in)"]
    cmds += [f"mkdir -p {target.path('/etc/systemd/system/ksmtuned.service.d')}",
             f"printf '[Service]\\nExecStart=\\nExecStart={LOCAL_SCRIPT}\\n' > {dropin}"]
    return cmds + runtime_only(target, ["systemctl daemon-reload", "systemctl restart ksmtuned.service"])


def _threshold(host: Host) -> str:
    """ksmtuned's thres as it computes it: max(MemTotal x KSM_THRES_COEF / 100, KSM_THRES_CONST) kB."""
    conf = hint(lambda: host.fact(ksmtuned_conf)) or {}
    try:
        coef = int(conf.get("KSM_THRES_COEF", "20"))
        const = int(conf.get("KSM_THRES_CONST", "2048"))
    except ValueError:
        return "thres (KSM_THRES_COEF/KSM_THRES_CONST in /etc/ksmtuned.conf are not numbers)"
    mi = maybe(host, meminfo) if host.has_runtime else None
    if mi is None or not mi.mem_total:
        return f"thres = max(MemTotal x {coef}%, {const} kB)"
    total = mi.mem_total // 1024
    thres = max(total * coef // 100, const)
    return f"thres = max({total} kB x {coef}%, {const} kB) = {thres} kB"


@check(
    "ksm.ksmtuned_blind",
    title="ksmtuned recognises the guests this host runs",
    severity=Severity.LOW,
    reads=[*KSMTUNED_SCRIPTS, KSMTUNED_CONF, "/etc/systemd/system/*.wants/", "?/proc/[0-9]*/comm",
           "?/proc/[0-9]*/cmdline", "/var/lib/dpkg/status", "/etc/libvirt/qemu/*.xml"],
    example_fix=[f"sed -e {q('73c' + chr(92) + '    pidlist=$(' + UPSTREAM_PGREP + ')')} /usr/sbin/ksmtuned > "
                 f"{LOCAL_SCRIPT}",
                 "printf '[Service]\\nExecStart=\\nExecStart=/usr/local/sbin/ksmtuned\\n' > "
                 "/etc/systemd/system/ksmtuned.service.d/hostaudit-guest-pattern.conf"],
)
def ksmtuned_blind(host: Host, policy: Policy) -> Outcome:
    """ksmtuned starts KSM when the memory of QEMU processes plus a threshold exceeds the host's,
    finding them with a pgrep pattern. Debian's ksmtuned (4.20150326) counts only command lines
    starting 'qemu-system...-enable-kvm'; libvirt starts '/usr/bin/qemu-system-x86_64 ... -accel kvm',
    so it counts nothing and KSM starts only once free memory is already short. The script is read
    as text, never run; guests are the QEMU processes running now, else libvirt's way of starting
    them, from what is installed."""
    tree = host.fact(service_tree)
    if not tree.starts_at_boot("ksmtuned.service"):
        return skipped("ksmtuned does not start at boot: its guest search does not matter here",
                       [Evidence(source="systemd/SysV: ksmtuned.service",
                                 observed=str(tree.state("ksmtuned.service")))])
    if host.has_runtime:
        try:
            host.fact(ksm_state)
        except FactUnavailable as exc:
            return skipped(f"the running kernel has no KSM for ksmtuned to drive ({exc}); ksm.state reports it")
        except FactError:
            pass  # a malformed counter says nothing about the guest search (ksm.state reports it)
    script = host.fact(ksmtuned_script)
    finder = script.finder
    ev = [Evidence(source="systemd/SysV: ksmtuned.service", observed=f"starts at boot; runs {script.path} "
                                                                       f"({script.how})"),
          Evidence(source=f"{script.path}:{finder.line}" if finder.line else script.path,
                   observed=f"{finder.command or '(none)'} -> matches {finder.subject}" if finder.tool == "pgrep"
                   else (finder.command or "(no guest search found)"))]
    prog, problem = compile_finder(finder)
    if finder.tool == "ps -C":
        problem = finder.problem
    if problem is not None:
        return skipped(f"{script.path}: {problem}", ev)
    running: list[ProcessView] = []
    scan = None
    if host.has_runtime:
        try:
            scan = host.fact(qemu_processes)
        except (FactUnavailable, FactError) as exc:
            ev.append(Evidence(source="/proc", observed=f"processes not read: {exc}"))
        if scan is not None:
            running = list(scan.processes)
            ev.append(Evidence(source="/proc/*/comm, /proc/*/cmdline",
                               observed=f"{len(running)} QEMU process(es) among {scan.scanned}"
                               + (f" ({'; '.join(scan.limits)})" if scan.limits else "")))
    setup = hint(lambda: host.fact(libvirt_setup))
    if running:
        subjects, how = running, "running"
    elif setup is not None and setup.driver is not None:
        subjects, how = libvirt_processes(setup), "as libvirt starts them"
        ev.append(Evidence(source=setup.driver, observed="libvirt's QEMU driver is installed"
                           + (f" ({setup.version}, {setup.version_source})" if setup.version else "")))
        ev.append(Evidence(source=setup.emulator_source, observed=", ".join(setup.emulators) or "no emulator found"))
        for w in setup.wrappers:
            ev.append(Evidence(source=w, observed="a script, not QEMU: how it starts QEMU is not read"))
    else:
        return skipped("no QEMU process runs and libvirt's QEMU driver is not installed: how guests are started here "
                       "is not known", ev)
    if not subjects:
        return skipped("libvirt's QEMU driver is installed but no QEMU emulator was found to predict its guests", ev)
    seen, missed, unknown = [], [], []
    for k, proc in enumerate(subjects):
        hit = finder_matches(finder, proc, prog)
        (seen if hit else unknown if hit is None else missed).append(proc)
        if k < MAX_SHOWN:
            ev.append(Evidence(source="guest" if proc.pid is None else f"/proc/{proc.pid}",
                               observed=f"{_describe(proc)}: "
                               + {True: "counted", False: "missed", None: "not evaluated (too long)"}[hit]))
    if len(subjects) > MAX_SHOWN:
        ev.append(Evidence(source="/proc", observed=f"{len(subjects) - MAX_SHOWN} more QEMU processes not shown"))
    thres = _threshold(host)
    if missed and not seen:
        upstream = parse_ksmtuned_script(f"committed_memory () {{\n    pidlist=$({UPSTREAM_PGREP})\n}}\n")
        up_prog, _ = compile_finder(upstream)
        fixed = all(finder_matches(upstream, p, up_prog) for p in missed)
        note = ("The upstream pattern (Fedora/RHEL ksmtuned) matches these guests by process name."
                if fixed else "Even the upstream pattern misses some of these guests: adjust it to how they start.")
        return failed(f"ksmtuned's guest search misses every QEMU process {how} ({len(missed)}): it counts no "
                      f"committed guest memory, so KSM starts only once free memory (MemFree+Buffers+Cached) falls "
                      f"below {thres}", ev, fix=_fix_pattern(host, script.path, finder), reboot=False, notes=note)
    if missed:
        return warned(f"ksmtuned's guest search counts {len(seen)} of the {len(seen) + len(missed)} QEMU processes "
                      f"{how}: the memory of the others is not counted", ev,
                      fix=_fix_pattern(host, script.path, finder), reboot=False,
                      notes="The upstream pattern matches QEMU by process name.")
    if unknown and not seen:
        return skipped("ksmtuned's guest search could not be evaluated against these command lines", ev)
    return passed(f"ksmtuned's guest search counts the QEMU processes {how} ({len(seen)})", ev)


@hookimpl
def hostaudit_checks() -> list[Check]:
    return [ksm_effectiveness, ksmtuned_blind]
