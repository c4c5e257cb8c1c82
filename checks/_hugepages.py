"""What huge pages a host reserves: persistently (boot command line, sysctl files) and now (sysfs)."""

from __future__ import annotations

from dataclasses import dataclass, field

from audit.boot.facts import BootCmdline, boot_cmdline
from audit.errors import FactUnavailable
from audit.host.core import Host
from audit.host.memory import hugepage_state, meminfo, sysctl_config
from audit.model import Evidence
from audit.parsers.hugepages import HugepageRequest, format_size, hugepage_request
from audit.policy import Policy
from checks._common import maybe

X86_DEFAULT_HUGEPAGE = 2 << 20  # x86-64's default huge page size when the command line names none
GIB = 1 << 30


@dataclass(frozen=True, slots=True, kw_only=True)
class HugepagePlan:
    default_size: int
    boot: BootCmdline
    boot_request: HugepageRequest | None  # None: the next boot's command line is unknown
    sysctl_count: int | None  # vm.nr_hugepages from sysctl files (default size)
    sysctl_source: str | None
    persistent: dict[int, int] | None  # size -> pages after the next boot; None: unknown
    running_request: HugepageRequest | None  # from /proc/cmdline
    running: dict[int, int] | None  # size -> pages the kernel holds now (sysfs); None: no runtime view
    evidence: list[Evidence] = field(default_factory=list)

    def sizes_in_use(self) -> set[int]:
        sizes = {s for s, n in (self.persistent or {}).items() if n}
        sizes |= {s for s, n in (self.running or {}).items() if n}
        return sizes

    def in_use(self, policy: Policy) -> bool:
        return policy.hugepages_required or bool(self.sizes_in_use())


def human_size(size: int) -> str:
    """``format_size`` for exact multiples (``2M``, ``32G``); else one decimal (``23.5G``), so a
    meminfo total does not read as ``24684092K``."""
    exact = format_size(size)
    if exact[-1] in "KB" and size >= 1 << 20:
        for unit, shift in (("T", 40), ("G", 30), ("M", 20)):
            if size >= 1 << shift:
                return f"{size / (1 << shift):.1f}{unit}"
    return exact


def describe_pools(pools: dict[int, int] | None) -> str:
    if pools is None:
        return "unknown"
    shown = [f"{n} x {format_size(s)}" for s, n in sorted(pools.items()) if n]
    return ", ".join(shown) or "none"


def hugepage_plan(host: Host) -> HugepagePlan:
    return host.fact(_plan)


def _plan(host: Host) -> HugepagePlan:
    evidence: list[Evidence] = []
    mi = maybe(host, meminfo)
    boot = host.fact(boot_cmdline)
    boot_req = None
    if boot.params is not None:
        boot_req = hugepage_request(boot.params, mi.hugepagesize if mi and mi.hugepagesize else X86_DEFAULT_HUGEPAGE)
    default = X86_DEFAULT_HUGEPAGE
    if mi is not None and mi.hugepagesize:
        default = mi.hugepagesize
    default_next = boot_req.default_size if boot_req is not None and boot_req.default_size else default
    evidence.append(Evidence(source=boot.source, observed=f"{boot.summary}; huge pages: "
                             + (describe_pools(boot_req.pools) if boot_req else "unknown")))
    cfg = maybe(host, sysctl_config)
    sysctl_count, sysctl_source = None, None
    if cfg is not None:
        prov = cfg.effective.get("vm.nr_hugepages")
        if prov is not None and prov.value is not None:
            try:
                sysctl_count = int(prov.value.strip())
                sysctl_source = f"{prov.path}:{prov.line}"
                evidence.append(Evidence(source=sysctl_source, observed=f"vm.nr_hugepages = {sysctl_count}"))
            except ValueError:
                evidence.append(Evidence(source=f"{prov.path}:{prov.line}",
                                         observed=f"vm.nr_hugepages = {prov.value!r} (not a number: ignored)"))
    persistent: dict[int, int] | None = None
    if boot_req is not None:
        persistent = dict(boot_req.pools)
    if sysctl_count is not None:  # systemd-sysctl runs after the kernel reserved its boot pools
        persistent = dict(persistent or {})
        persistent[default_next] = sysctl_count
    running_req, running = None, None
    if host.has_runtime:
        try:
            running_req = hugepage_request(host.cmdline, default)
        except FactUnavailable:
            running_req = None
        state = host.fact(hugepage_state)
        running = {p.size: p.nr or 0 for p in state.pools}
        evidence.append(Evidence(source="/sys/kernel/mm/hugepages", observed="now: " + describe_pools(running)))
    return HugepagePlan(
        default_size=default_next,
        boot=boot,
        boot_request=boot_req,
        sysctl_count=sysctl_count,
        sysctl_source=sysctl_source,
        persistent=persistent,
        running_request=running_req,
        running=running,
        evidence=evidence,
    )


def configured_boot_pools(plan: HugepagePlan) -> dict[int, int]:
    """The pools the kernel command line carries once the boot configuration is regenerated: from
    the generator's inputs where GRUB 2 is generated from /etc/default/grub (they are what a fix
    edits, and a stale grub.cfg lags behind them), else as the next boot has them. A fix that writes
    the ordered pairs again keeps these pools of the sizes it does not change."""
    cfg = plan.boot.config
    if cfg.loader == "grub2":
        inputs = [inp for inp in cfg.inputs if inp.applies and inp.name.startswith("GRUB_CMDLINE_LINUX")]
        if inputs:
            params = [p for inp in inputs for p in inp.params]
            return {s: n for s, n in hugepage_request(params, X86_DEFAULT_HUGEPAGE).pools.items() if n}
    return {s: n for s, n in (plan.boot_request.pools if plan.boot_request else {}).items() if n}


def suggested_pool(policy: Policy, plan: HugepagePlan) -> tuple[int, int | None]:
    """(size, count) to suggest in remediation: the policy's, else the default size."""
    size = policy.hugepages_size or plan.default_size
    return size, policy.hugepages_count
