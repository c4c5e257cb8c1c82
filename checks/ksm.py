"""Kernel same-page merging: running and started at boot as the policy wants, with swap behind it."""

from __future__ import annotations

from audit import hookimpl
from audit.errors import FactUnavailable
from audit.host.core import Host
from audit.host.kernel import kernel_config
from audit.host.memory import (
    KSM_UNITS,
    fstab,
    fstab_swaps,
    ksm_boot_writes,
    ksm_state,
    ksmtuned_conf,
    service_tree,
    swaps,
)
from audit.model import Check, Evidence, Outcome, Severity, check, failed, passed, skipped, warned
from audit.parsers.memory import KSM_DIR, KsmState
from audit.parsers.systemd import KSMTUNED_CONF, UnitState
from audit.policy import Policy
from audit.record import Record
from audit.remedy.ksm import KSM_RUN, ksm_off, ksm_on, ksm_units_off
from audit.remedy.system import afterwards, swap_file
from audit.remedy.target import FixTarget
from checks._common import hint, maybe
from checks._hugepages import human_size

PAGE_SIZE = 4096  # KSM merges base pages: 4 KiB on x86, and where the kernel config does not say
SWAP_FILE = "/swapfile-ksm"


def base_page_size(host: Host) -> int:
    """The base page size KSM merges: the kernel config's CONFIG_PAGE_SHIFT (newer kernels, every
    architecture) or arm64's CONFIG_ARM64_PAGE_SHIFT (4, 16 or 64 KiB: RHEL 8 builds its arm64
    kernel with 64 KiB pages, Debian's arm64-16k flavour with 16 KiB); else 4 KiB, x86's size."""
    kc = hint(lambda: host.fact(kernel_config))
    if kc is not None:
        for option in ("PAGE_SHIFT", "ARM64_PAGE_SHIFT"):
            value = kc.config.get(option) or ""
            if value.isdigit() and 12 <= int(value) <= 18:
                return 1 << int(value)
    return PAGE_SIZE


class KsmPicture(Record):
    state: KsmState | None  # None: no runtime view (image) or no KSM in the kernel
    state_problem: str | None  # why state is None
    units_at_boot: tuple[str, ...]  # ksm.service / ksmtuned.service that start at boot
    boot_writes: tuple[str, ...]  # sysfs.d / tmpfiles.d lines writing ksm/run = 1
    evidence: tuple[Evidence, ...]
    masked: tuple[str, ...] = ()  # the KSM units masked (an earlier "off"): unmasked before enabling

    @property
    def running(self) -> bool:
        return self.state is not None and self.state.run == 1

    @property
    def enabled(self) -> bool:
        return bool(self.units_at_boot or self.boot_writes)


def ksm_picture(host: Host) -> KsmPicture:
    evidence: list[Evidence] = []
    state, problem = None, None
    try:
        state = host.fact(ksm_state)
        evidence.append(Evidence(source=KSM_RUN, observed=f"run={state.run}", expected=None))
        if state.pages_sharing is not None:
            evidence.append(Evidence(source=f"{KSM_DIR}/pages_sharing", observed=str(state.pages_sharing)))
        tuning = [f"{k}={v}" for k, v in (("pages_to_scan", state.pages_to_scan),
                                          ("sleep_millisecs", state.sleep_millisecs),
                                          ("merge_across_nodes", state.merge_across_nodes)) if v is not None]
        if tuning:
            evidence.append(Evidence(source=KSM_DIR, observed="tuning: " + ", ".join(tuning)))
    except FactUnavailable as exc:
        problem = str(exc)
        evidence.append(Evidence(source=KSM_DIR, observed="absent"))
    tree = host.fact(service_tree)
    units = tuple(u for u in KSM_UNITS if tree.starts_at_boot(u))
    for u in KSM_UNITS:
        evidence.append(Evidence(source=f"systemd/SysV: {u}", observed=str(tree.state(u))
                                 + (" (SysV start link)" if u in units and not tree.state(u).starts_at_boot else "")))
    if "ksmtuned.service" in units:
        conf = maybe(host, ksmtuned_conf)
        if conf:
            shown = ", ".join(f"{k}={v}" for k, v in sorted(conf.items()))
            evidence.append(Evidence(source=KSMTUNED_CONF, observed=shown[:300]))
    writes = tuple(maybe(host, ksm_boot_writes) or ())
    for w in writes:
        evidence.append(Evidence(source=w.split(": ", 1)[0], observed=w.split(": ", 1)[-1]))
    masked = tuple(u for u in KSM_UNITS if tree.state(u) is UnitState.MASKED)
    return KsmPicture(state=state, state_problem=problem, units_at_boot=units, boot_writes=writes,
                      evidence=tuple(evidence), masked=masked)


def _swap_behind_ksm(host: Host) -> list[str]:
    """Turning KSM on makes swap.ksm ask for swap behind it. A running host without any swap gets a
    swap file in the same fix; an image is only told (its swap is sized for the host it boots on)."""
    target = FixTarget.of(host)
    if target.now:
        devs = maybe(host, swaps)
        if devs is None or sum(d.size for d in devs):
            return []
        return ["# KSM needs swap behind it (swap.ksm) and this host has none: a swap file",
                *swap_file(target, SWAP_FILE, 1 << 30)]
    if fstab_swaps(maybe(host, fstab) or []):
        return []
    return [afterwards("swap.ksm: KSM starts at boot, and no swap is configured in /etc/fstab: give the host swap "
                       "of at least what KSM will save (policy swap.ksm_factor)")]


@check(
    "ksm.state",
    title="KSM state matches the policy",
    severity=Severity.LOW,
    reads=[f"{KSM_DIR}/run", "/etc/systemd/system/*.wants/", "/etc/rc?.d/", "/etc/sysfs.d/", "/etc/tmpfiles.d/"],
    example_fix=["echo 1 > /sys/kernel/mm/ksm/run", "systemctl enable --now ksmtuned.service"],
)
def ksm_mode(host: Host, policy: Policy) -> Outcome:
    """KSM merges identical guest pages, which lets a host overcommit memory; on a host shared by
    mutually untrusted tenants page merging is a side channel between guests, so the
    multi-tenant profile wants it off. 'on' means running now or started at boot (ksm or
    ksmtuned), 'off' means neither."""
    pic = ksm_picture(host)
    ev = list(pic.evidence)
    where = []
    if pic.running:
        where.append("running now")
    if pic.units_at_boot:
        where.append("started at boot by " + ", ".join(pic.units_at_boot))
    if pic.boot_writes:
        where.append("enabled at boot by a sysfs/tmpfiles setting")
    if pic.state is None and not host.has_runtime:
        runtime_note = " (no running kernel here: only what starts at boot was checked)"
    elif pic.state is None:
        runtime_note = f" ({pic.state_problem})"
    else:
        runtime_note = ""
    if pic.state is None and host.has_runtime and pic.units_at_boot:
        return failed(
            f"{', '.join(pic.units_at_boot)} starts at boot but the kernel has no KSM ({pic.state_problem})",
            ev,
            fix=[*ksm_units_off(FixTarget.of(host), pic.units_at_boot), "# or boot a kernel with CONFIG_KSM=y"],
            notes="ksmtuned without KSM only logs errors every minute.",
        )
    if policy.ksm_mode == "any":
        return passed(f"KSM {'; '.join(where) or 'not running and not enabled'} (policy: any)", ev)
    if policy.ksm_mode == "on":
        if pic.running and not pic.enabled:
            return warned(
                "KSM is running now but nothing starts it at the next boot",
                ev,
                fix=ksm_on(FixTarget.of(host), now=False, masked=pic.masked),
                notes="Enable ksmtuned (or ksm) so KSM survives a reboot.",
            )
        if where:
            return passed(f"KSM {'; '.join(where)}{runtime_note}", ev)
        state = "KSM is not running and nothing starts it at boot" if pic.state is not None or host.has_runtime \
            else "nothing starts KSM at boot (ksm/ksmtuned not enabled)"
        return failed(
            f"{state}{runtime_note}",
            ev,
            fix=[*ksm_on(FixTarget.of(host), masked=pic.masked), *_swap_behind_ksm(host)],
            notes="The kvm-host profile wants KSM for memory overcommit; merged pages need swap behind them.",
        )
    # off
    if where:
        return failed(
            f"KSM is {'; '.join(where)} but the policy wants it off (multi-tenant host)",
            ev,
            fix=ksm_off(FixTarget.of(host), pic.units_at_boot),
            notes="Page merging between guests of different tenants is a timing side channel.",
        )
    return passed(f"KSM is off: not running and not started at boot{runtime_note}", ev)


@check(
    "swap.ksm",
    title="Swap covers what KSM saves",
    severity=Severity.HIGH,
    reads=["/proc/swaps", f"{KSM_DIR}/pages_sharing", "/etc/fstab"],
    example_fix=["fallocate -l 8G /swapfile && chmod 600 /swapfile && mkswap /swapfile && swapon /swapfile",
                 "echo '/swapfile none swap defaults 0 0' >> /etc/fstab"],
)
def swap_for_ksm(host: Host, policy: Policy) -> Outcome:
    """Memory that KSM merged comes back unmerged the moment guests write to it; if the host
    cannot swap it out, the OOM killer takes guests instead. Swap should be at least the policy
    factor times what KSM currently saves (pages_sharing x the kernel's base page size)."""
    pic = ksm_picture(host)
    if not pic.running and not pic.enabled:
        return skipped("KSM neither runs nor starts at boot: no swap is needed for it", pic.evidence)
    if host.has_runtime and pic.state is None:  # ksm.state reports the service that starts for nothing
        return skipped(f"the running kernel has no KSM, so it merges nothing ({pic.state_problem})", pic.evidence)
    savings = (pic.state.pages_sharing or 0) * base_page_size(host) if pic.state else 0
    need = int(savings * policy.swap_ksm_factor)
    if host.has_runtime:
        devs = host.fact(swaps)
        total = sum(d.size for d in devs)
        ev = [*pic.evidence, Evidence(source="/proc/swaps", observed=f"{len(devs)} device(s), {human_size(total)}",
                                      expected=f">= {human_size(need)} ({policy.swap_ksm_factor} x KSM savings)")]
        fix = swap_file(FixTarget.of(host), SWAP_FILE, max(need, 1 << 30))
        if total == 0 and pic.running:
            return failed(f"KSM runs (saving {human_size(savings)}) and the host has no swap at all", ev, fix=fix,
                          notes="Without swap, unmerging under memory pressure ends in the OOM killer.")
        if total < need:
            return failed(f"swap {human_size(total)} < {human_size(need)} needed for what KSM saves "
                          f"({human_size(savings)} x {policy.swap_ksm_factor})", ev,
                          fix=swap_file(FixTarget.of(host), SWAP_FILE, need - total))
        if total == 0:
            return warned("KSM starts at boot but the host has no swap", ev, fix=fix,
                          notes="KSM saves nothing yet; once it merges pages, swap must back them.")
        return passed(f"swap {human_size(total)} covers KSM savings of {human_size(savings)}", ev)
    entries = fstab_swaps(maybe(host, fstab) or [])
    noun = "entry" if len(entries) == 1 else "entries"
    ev = [*pic.evidence, Evidence(source="/etc/fstab", observed=f"{len(entries)} swap {noun}")]
    if not entries:
        return warned("KSM starts at boot but the image configures no swap in /etc/fstab", ev,
                      fix=swap_file(FixTarget.of(host), SWAP_FILE, 1 << 30),
                      notes="Size the swap on the host from what KSM will save.")
    return passed(f"KSM starts at boot and /etc/fstab configures {len(entries)} swap area(s)", ev)


@hookimpl
def hostaudit_checks() -> list[Check]:
    return [ksm_mode, swap_for_ksm]
