"""What huge pages a host reserves: persistently (boot command line, sysctl files) and now (sysfs),
as the kernel reads the command line on this CPU (audit.host.pagesizes)."""

from __future__ import annotations

from collections.abc import Sequence

from audit.boot.facts import BootCmdline, boot_cmdline
from audit.boot.params import series_of
from audit.errors import FactUnavailable
from audit.host.core import Host
from audit.host.memory import hugepage_state, meminfo, sysctl_config
from audit.host.pagesizes import PageSizes, Replay, hugepage_sizes, replay
from audit.model import Evidence, replace
from audit.parsers.hugepages import HugepageRequest, format_size, hugepage_request
from audit.policy import Policy
from audit.record import Record
from checks._common import hint, maybe

X86_DEFAULT_HUGEPAGE = 2 << 20  # x86-64's default huge page size when the command line names none
GIB = 1 << 30


class HugepagePlan(Record):
    default_size: int
    boot: BootCmdline
    boot_request: HugepageRequest | None  # None: the next boot's command line is unknown
    sysctl_count: int | None  # vm.nr_hugepages from sysctl files (default size)
    sysctl_source: str | None
    persistent: dict[int, int] | None  # size -> pages after the next boot; None: unknown
    running_request: HugepageRequest | None  # from /proc/cmdline
    running: dict[int, int] | None  # size -> pages the kernel holds now (sysfs); None: no runtime view
    sizes: PageSizes | None = None  # the sizes this host's kernel can reserve
    boot_replay: Replay | None = None  # the next boot's command line as its kernel reads it on this CPU
    running_replay: Replay | None = None  # /proc/cmdline as the running kernel read it
    #: size -> pages after the next boot on a CPU that lacks the sizes that depend on it (an image's
    #: 1G pool needs pdpe1gb); None when the CPU does not matter or is known
    persistent_without: dict[int, int] | None = None
    evidence: Sequence[Evidence] = ()

    def sizes_in_use(self) -> set[int]:
        sizes = {s for s, n in (self.persistent or {}).items() if n}
        sizes |= {s for s, n in (self.running or {}).items() if n}
        return sizes

    def in_use(self, policy: Policy) -> bool:
        return policy.hugepages_required or bool(self.sizes_in_use())

    @property
    def boot_notes(self) -> tuple[str, ...]:
        """What the next boot's kernel rejects: "hugepagesz=1G: rejected, ...; the following ..."."""
        return self.boot_replay.notes if self.boot_replay else ()

    def _depends(self) -> str:
        if self.persistent_without is None or self.sizes is None or self.boot_replay is None:
            return ""
        need = "; ".join(f"the {format_size(s)} pool needs {self.sizes.conditional[s]}"
                         for s in sorted(self.boot_replay.depends))
        return (f"{need}, and the CPU it boots on is not known here; on a CPU without it: "
                f"{describe_pools(self.persistent_without)}")

    @property
    def depends(self) -> str:
        """" (predicted: the 1G pool needs a CPU with pdpe1gb, ...; on a CPU without it: ...)" for a
        message, or "" where the pools do not depend on a CPU not known here."""
        text = self._depends()
        return f" (predicted: {text})" if text else ""

    @property
    def predicted(self) -> str:
        """The boot configuration's prediction and the pools' dependence on the CPU, in one aside."""
        text = self._depends()
        if not text:
            return self.boot.predicted
        return f" ({self.boot.config.prediction}; {text})" if self.boot.predicted else f" (predicted: {text})"


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


def page_sizes(host: Host) -> PageSizes:
    """The huge page sizes this host's kernel can reserve, with a default size always filled in:
    the architecture's, else the running kernel's, else x86-64's 2M (what hostaudit assumed before
    it knew the architecture)."""
    sizes = host.fact(hugepage_sizes)
    if sizes.default_size:
        return sizes
    mi = maybe(host, meminfo)
    default = mi.hugepagesize if mi is not None and mi.hugepagesize else X86_DEFAULT_HUGEPAGE
    return replace(sizes, default_size=default)


def release_for(host: Host, boot: BootCmdline, label: str) -> str | None:
    """The kernel release a command line is read by: the next boot's entry names its kernel (BLS
    version, image name), else the release fact (an image's default or newest kernel); the running
    kernel's only when the release fact comes from it."""
    rel = hint(lambda: host.kernel_release)
    if label == "next boot":
        entry = boot.config.entry
        if entry is not None and entry.version and series_of(entry.version):
            return entry.version
        return rel.release if rel else None
    return rel.release if rel and rel.how == "running kernel" else None


def _plan(host: Host) -> HugepagePlan:
    evidence: list[Evidence] = []
    # the architecture's default size (the next boot's command line may name another)
    sizes = page_sizes(host)
    default = sizes.default_size or X86_DEFAULT_HUGEPAGE
    boot = host.fact(boot_cmdline)
    boot_replay = replay(boot.params, sizes, release_for(host, boot, "next boot")) if boot.params is not None else None
    boot_req = boot_replay.request if boot_replay is not None else None
    default_next = boot_req.default_size if boot_req is not None and boot_req.default_size else default
    evidence.append(Evidence(source=boot.source, observed=f"{boot.summary}; huge pages: "
                             + (describe_pools(boot_req.pools) if boot_req else "unknown")))
    if boot_replay is not None and (boot_replay.notes or boot_replay.depends or boot_replay.rejected):
        evidence.append(sizes.evidence)
    for note in (boot_replay.notes + boot_replay.conditional) if boot_replay is not None else ():
        evidence.append(Evidence(source=boot.source, observed=f"next boot: {note}"))
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
    without: dict[int, int] | None = None
    if boot_req is not None:
        persistent = dict(boot_req.pools)
        if boot_replay is not None and boot_replay.without is not None:
            without = dict(boot_replay.without.pools)
    if sysctl_count is not None:  # systemd-sysctl runs after the kernel reserved its boot pools
        persistent = dict(persistent or {})
        persistent[default_next] = sysctl_count
        if without is not None and boot_replay is not None and boot_replay.without is not None:
            without[boot_replay.without.default_size or default] = sysctl_count
    running_replay, running_req, running = None, None, None
    if host.has_runtime:
        try:
            running_replay = replay(host.cmdline, sizes, release_for(host, boot, "running kernel"))
            running_req = running_replay.request
        except FactUnavailable:
            running_replay = running_req = None
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
        sizes=sizes,
        boot_replay=boot_replay,
        running_replay=running_replay,
        persistent_without=without,
        evidence=evidence,
    )


def configured_boot_pools(plan: HugepagePlan) -> dict[int, int]:
    """The pools the kernel command line carries once the boot configuration is regenerated: from
    the generator's inputs where GRUB 2 is generated from /etc/default/grub (they are what a fix
    edits, and a stale grub.cfg lags behind them), else as the next boot has them. A fix that writes
    the ordered pairs again keeps these pools of the sizes it does not change; a size the kernel
    rejects on this CPU is no pool and is not written again."""
    cfg = plan.boot.config
    valid = plan.sizes.valid() if plan.sizes is not None else None
    default = plan.sizes.default_size if plan.sizes is not None and plan.sizes.default_size else X86_DEFAULT_HUGEPAGE
    if cfg.loader == "grub2":
        inputs = [inp for inp in cfg.inputs if inp.applies and inp.name.startswith("GRUB_CMDLINE_LINUX")]
        if inputs:
            params = [p for inp in inputs for p in inp.params]
            return {s: n for s, n in hugepage_request(params, default, valid_sizes=valid).pools.items() if n}
    return {s: n for s, n in (plan.boot_request.pools if plan.boot_request else {}).items() if n}


def suggested_pool(policy: Policy, plan: HugepagePlan) -> tuple[int, int | None]:
    """(size, count) to suggest in remediation: the policy's, else the default size."""
    size = policy.hugepages_size or plan.default_size
    return size, policy.hugepages_count
