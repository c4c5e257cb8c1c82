"""Transparent huge pages: the mode QEMU's madvise() needs, running and at the next boot."""

from __future__ import annotations

from audit import hookimpl
from audit.boot.facts import boot_cmdline
from audit.errors import FactUnavailable
from audit.host.core import Host
from audit.host.kernel import kernel_config
from audit.host.memory import thp_state
from audit.model import Check, Evidence, Outcome, Severity, check, errored, failed, passed, warned
from audit.parsers.cmdline import last
from audit.policy import Policy
from audit.remedy.cmdline import kernel_params
from audit.remedy.system import write_now
from audit.remedy.target import FixTarget
from checks._common import maybe

THP_PARAM = "transparent_hugepage"


def _kconfig_default(host: Host) -> tuple[str | None, Evidence | None]:
    kc = maybe(host, kernel_config)
    if kc is None:
        return None, None
    if not kc.config.enabled("TRANSPARENT_HUGEPAGE"):
        return "unsupported", Evidence(source=kc.source, observed=kc.config.describe("TRANSPARENT_HUGEPAGE"))
    for mode in ("ALWAYS", "MADVISE", "NEVER"):
        if kc.config.get(f"TRANSPARENT_HUGEPAGE_{mode}") == "y":
            return mode.lower(), Evidence(source=kc.source, observed=f"CONFIG_TRANSPARENT_HUGEPAGE_{mode}=y")
    # kernels before the choice existed (RHEL 6's 2.6.32) default to always
    return "always", Evidence(source=kc.source, observed="CONFIG_TRANSPARENT_HUGEPAGE=y, no default choice: always")


def boot_mode(host: Host) -> tuple[str | None, list[Evidence]]:
    """The mode the next boot starts with: transparent_hugepage= on its command line, else the
    kernel's build default. None when neither is known."""
    boot = host.fact(boot_cmdline)
    ev = [Evidence(source=boot.source, observed=boot.summary)]
    if boot.params is not None:
        value = last(list(boot.params), THP_PARAM)
        if value is not None:
            ev.append(Evidence(source=boot.source, observed=f"{THP_PARAM}={value}"))
            return value, ev
    mode, kev = _kconfig_default(host)
    if kev is not None:
        ev.append(kev)
    return mode, ev


def _persist(host: Host, mode: str) -> list[str]:
    """transparent_hugepage=<mode> on every future boot; an existing value is taken off first, since
    GRUB_CMDLINE_LINUX_DEFAULT (or a later token) would otherwise still win."""
    boot = host.fact(boot_cmdline)
    present = boot.params is not None and last(list(boot.params), THP_PARAM) is not None
    return kernel_params(FixTarget.of(host), add={THP_PARAM: mode}, remove=[THP_PARAM] if present else [],
                         topic="thp")


@check(
    "memory.thp",
    title="Transparent huge pages mode is allowed by the policy",
    severity=Severity.MEDIUM,
    reads=["/sys/kernel/mm/transparent_hugepage/enabled", "/sys/kernel/mm/redhat_transparent_hugepage/enabled",
           "boot configuration", "kernel config"],
    example_fix=["echo madvise > /sys/kernel/mm/transparent_hugepage/enabled",
                 "grubby --update-kernel=ALL --args=transparent_hugepage=madvise"],
)
def thp_mode(host: Host, policy: Policy) -> Outcome:
    """QEMU asks for huge pages with madvise(); 'never' denies guests THP-backed memory and costs
    them TLB misses. Live hosts are judged by sysfs (and warned when the next boot differs); images
    by transparent_hugepage= on the boot command line, else the kernel's build default."""
    allowed = policy.thp_allowed
    want = "madvise" if "madvise" in allowed else (allowed[0] if allowed else "madvise")
    expected = "|".join(allowed)
    next_mode, boot_ev = boot_mode(host)
    try:
        state = host.fact(thp_state)
    except FactUnavailable:
        if host.has_runtime:
            raise
        state = None
    if state is None:  # an image: the boot-time mode is all there is
        if next_mode is None:
            raise FactUnavailable("the THP mode of the next boot is unknown (no boot parameter, no kernel config)")
        if next_mode == "unsupported":
            return failed("the kernel is built without THP", boot_ev,
                          fix=["# boot a kernel with CONFIG_TRANSPARENT_HUGEPAGE=y (see kernel.thp)"], reboot=True)
        ev = [*boot_ev, Evidence(source="next boot", observed=next_mode, expected=expected)]
        boot = host.fact(boot_cmdline)
        guess = boot.predicted if boot.params is not None else (" (the kernel's build default: the boot command line"
                                                                " is unknown)")
        if next_mode in allowed:
            return passed(f"THP will be '{next_mode}' at boot{guess}", ev)
        return failed(f"THP will be '{next_mode}' at boot{guess}", ev, fix=_persist(host, want),
                      reboot=True, notes=f"Set {THP_PARAM}={want} on the kernel command line.")
    path = f"{state.dir}/enabled"
    active = state.enabled.active
    ev = [Evidence(source=path, observed=" ".join(f"[{c}]" if c == active else c for c in state.enabled.choices),
                   expected=expected)]
    if state.shmem_enabled is not None:
        ev.append(Evidence(source=f"{state.dir}/shmem_enabled", observed=str(state.shmem_enabled.active)))
    for name, s in sorted(state.per_size.items()):
        if s.active not in (None, "inherit", "never"):
            ev.append(Evidence(source=f"{state.dir}/{name}/enabled", observed=str(s.active)))
    ev += boot_ev
    if active is None:
        return errored(f"{path}: no active mode is marked (expected one word in [brackets])", ev)
    if active not in allowed:
        return failed(f"THP is '{active}'", ev, fix=[write_now(path, want), *_persist(host, want)], reboot=False,
                      notes="The echo applies now; the kernel parameter keeps it after a reboot.")
    boot = host.fact(boot_cmdline)
    explicit = last(list(boot.params), THP_PARAM) if boot.params is not None else None
    if explicit is not None and explicit not in allowed:
        return warned(f"THP is '{active}' now, but the boot command line sets '{explicit}': lost at next boot",
                      ev, fix=_persist(host, active), reboot=False,
                      notes="Change the parameter so the next boot keeps the current mode.")
    return passed(f"THP is '{active}'", ev)


@hookimpl
def hostaudit_checks() -> list[Check]:
    return [thp_mode]
