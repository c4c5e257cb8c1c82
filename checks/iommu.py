"""IOMMU: active now (IOMMU groups exist) and enabled on the next boot's command line."""

from __future__ import annotations

from audit import hookimpl
from audit.boot.facts import boot_cmdline
from audit.host.core import Host
from audit.host.kernel import kernel_config
from audit.host.memory import iommu_state
from audit.model import Check, Evidence, Outcome, Severity, check, failed, passed, skipped, warned
from audit.parsers.cmdline import Param, last, values
from audit.policy import Policy
from audit.remedy.cmdline import kernel_params
from audit.remedy.packages import stock_kernel
from audit.remedy.target import FixTarget
from checks._common import hint, maybe, maybe_value


def _words(value: str | None) -> set[str]:
    return set((value or "").lower().split(",")) if value is not None else set()


def _any_off(params: list[Param], name: str) -> bool:
    return any("off" in _words(v) for v in values(params, name))


def iommu_on(params: list[Param] | None, kconfig: dict[str, str | None], vendor: str) -> tuple[bool | None, str]:
    """Is the IOMMU enabled at boot for ``vendor`` ('intel' or 'amd')? (answer, why).

    Intel: ``intel_iommu=on``, or a kernel built to enable it by default without ``intel_iommu=off``:
    CONFIG_INTEL_IOMMU_DEFAULT_ON=y, Debian's CONFIG_INTEL_IOMMU_DEFAULT_ON_INTGPU_OFF=y (on for
    everything but the integrated GPU), or CONFIG_DMAR_DEFAULT_ON=y on kernels before 3.1.
    AMD: on by default with CONFIG_AMD_IOMMU=y unless ``amd_iommu=off``. ``iommu=off`` disables
    both; ``iommu=pt`` keeps it on in pass-through mode.
    """
    if params is None:
        return None, "boot command line unknown"
    if _any_off(params, "iommu"):  # the kernel never clears iommu=off, whatever follows it
        return False, "iommu=off"
    if vendor == "intel":
        driver = "CONFIG_INTEL_IOMMU" if kconfig.get("CONFIG_INTEL_IOMMU") is not None else "CONFIG_DMAR"
        if kconfig.get(driver) not in ("y", None):
            return False, f"{driver}={kconfig.get(driver)}"
        words = _words(last(params, "intel_iommu"))
        if "off" in words:
            return False, "intel_iommu=off"
        if "on" in words:
            return True, "intel_iommu=on"
        for opt in INTEL_DEFAULT_ON:
            if kconfig.get(opt) == "y":
                return True, f"{opt}=y"
        if not kconfig:
            return None, ("no intel_iommu=on, and no kernel config was read: whether the kernel enables it by default "
                          "is unknown")
        return False, "no intel_iommu=on (and the kernel does not enable it by default)"
    if kconfig.get("CONFIG_AMD_IOMMU") not in ("y", None):
        return False, f"CONFIG_AMD_IOMMU={kconfig.get('CONFIG_AMD_IOMMU')}"
    if _any_off(params, "amd_iommu"):
        return False, "amd_iommu=off"
    if not kconfig:
        return True, "AMD IOMMU is on by default (no amd_iommu=off; CONFIG_AMD_IOMMU=y assumed: no kernel config read)"
    return True, "AMD IOMMU is on by default (no amd_iommu=off)"


def _params_for(vendor: str) -> dict[str, str]:
    return {"intel_iommu": "on", "iommu": "pt"} if vendor == "intel" else {"iommu": "pt"}


def _blockers(*cmdlines: list[Param] | None) -> list[str]:
    """Parameters set to off: the fix must take them off, since adding a later value does not
    undo them (iommu=off is sticky in the kernel's parser)."""
    return [name for name in ("iommu", "intel_iommu", "amd_iommu")
            if any(params is not None and _any_off(params, name) for params in cmdlines)]


#: Kernel options that turn the Intel IOMMU on without intel_iommu=on.
INTEL_DEFAULT_ON = ("CONFIG_INTEL_IOMMU_DEFAULT_ON", "CONFIG_INTEL_IOMMU_DEFAULT_ON_INTGPU_OFF",
                    "CONFIG_DMAR_DEFAULT_ON")
KCONFIG_OPTIONS = ("CONFIG_INTEL_IOMMU", "CONFIG_DMAR", *INTEL_DEFAULT_ON, "CONFIG_AMD_IOMMU")


@check(
    "iommu.enabled",
    title="The IOMMU is enabled (device assignment, VFIO)",
    severity=Severity.MEDIUM,
    reads=["/sys/kernel/iommu_groups/", "/sys/class/iommu/", "/sys/firmware/acpi/tables/DMAR", "boot configuration",
           "kernel config"],
    example_fix=["grubby --update-kernel=ALL --args='intel_iommu=on iommu=pt'   # Debian: grub.d + update-grub"],
)
def iommu_enabled(host: Host, policy: Policy) -> Outcome:
    """Passing PCI devices (NICs, GPUs, NVMe) to guests with VFIO needs an active IOMMU, which
    also isolates devices' DMA from the host. Intel needs intel_iommu=on unless the kernel enables
    it by default; AMD enables it by default; firmware must provide the DMAR/IVRS table."""
    if not policy.iommu_required:
        return skipped(f"the policy does not require an IOMMU ({policy.source})")
    boot = host.fact(boot_cmdline)
    kc = maybe(host, kernel_config)
    kconf: dict[str, str | None] = {}
    if kc is not None:
        for opt in KCONFIG_OPTIONS:
            kconf[opt] = kc.config.get(opt)
    cpu = hint(lambda: host.cpuinfo)
    vendor = cpu.vendor_kind if cpu else None
    vendors = [vendor] if vendor else ["intel", "amd"]
    params = list(boot.params) if boot.params is not None else None
    verdicts = {v: iommu_on(params, kconf, v) for v in vendors}
    ev = [Evidence(source=boot.source, observed=boot.summary)]
    if kc is not None:
        known = [k for k in kconf if kconf[k] is not None] or list(kconf)
        ev.append(Evidence(source=kc.source, observed=", ".join(kc.config.describe(k) for k in known)))
    for v, (_, why) in verdicts.items():
        ev.append(Evidence(source=f"next boot ({v})", observed=why, expected="IOMMU on"))
    assumed = "" if vendor else " (CPU vendor unknown here: judged for Intel and AMD)"
    answers = [ok for ok, _ in verdicts.values()]
    persistent_ok: bool | None = None if None in answers else all(answers)
    driver = {"intel": "CONFIG_INTEL_IOMMU", "amd": "CONFIG_AMD_IOMMU"}
    if kconf.get("CONFIG_INTEL_IOMMU") is None and kconf.get("CONFIG_DMAR") is not None:
        driver["intel"] = "CONFIG_DMAR"  # the Intel driver's name before 3.1
    kernel_lacks = bool(kconf) and all(kconf.get(driver[v]) not in ("y", None) for v in vendors)
    add = _params_for(vendor or "intel")
    running_params = maybe_value(lambda: host.cmdline) if host.has_runtime else None
    remove = _blockers(params, running_params)
    if not host.has_runtime:
        if persistent_ok is None:
            return skipped(f"cannot tell: {boot.summary}", ev)
        why = "; ".join(f"{v}: {w}" for v, (_, w) in verdicts.items())
        if persistent_ok:
            return passed(f"IOMMU enabled at the next boot ({why}){assumed}{boot.predicted}", ev)
        if kernel_lacks:
            return failed(f"the kernel is built without the IOMMU driver{assumed}", ev,
                          fix=stock_kernel(FixTarget.of(host)), reboot=True)
        off = "; ".join(f"{v}: {w}" for v, (ok, w) in verdicts.items() if ok is False)
        return failed(f"IOMMU not enabled at the next boot ({off}){assumed}{boot.predicted}", ev,
                      fix=kernel_params(FixTarget.of(host), add=add, remove=remove, topic="iommu"), reboot=True,
                      notes="Also enable VT-d / AMD-Vi in the firmware setup.")
    state = host.fact(iommu_state)
    ev.append(Evidence(source="/sys/kernel/iommu_groups", observed=f"{state.groups} group(s); units: "
                       f"{', '.join(state.units) or 'none'}; ACPI tables: {', '.join(state.acpi_tables) or 'none'}",
                       expected="at least one IOMMU group"))
    active = state.groups > 0
    running_ok, running_why = iommu_on(running_params, kconf, vendor or "intel")
    if active and persistent_ok is not False:
        groups = f"{state.groups} group" + ("" if state.groups == 1 else "s")
        return passed(f"IOMMU active ({groups})" + ("" if persistent_ok else f"; next boot unknown: {boot.summary}"),
                      ev)
    if active:
        return warned("IOMMU active now, but the next boot's command line does not enable it: lost at next boot",
                      ev, fix=kernel_params(FixTarget.of(host), add=add, remove=_blockers(params), topic="iommu"),
                      reboot=False)
    if kernel_lacks:
        return failed("no IOMMU: the kernel is built without the IOMMU driver", ev,
                      fix=stock_kernel(FixTarget.of(host)), reboot=True)
    if running_ok and not state.acpi_tables:
        return failed("the kernel was told to enable the IOMMU but firmware provides no DMAR/IVRS table", ev,
                      fix=["# enable Intel VT-d / AMD-Vi (IOMMU) in the firmware setup, then reboot"], reboot=True,
                      notes="A firmware setting; it cannot be changed from the running system.")
    if persistent_ok:
        return warned("IOMMU configured for the next boot but not active: reboot pending", ev, fix=["# reboot"],
                      reboot=True)
    return failed(f"IOMMU not active ({running_why})", ev,
                  fix=kernel_params(FixTarget.of(host), add=add, remove=remove, topic="iommu"), reboot=True,
                  notes="Enable it on the kernel command line, and VT-d / AMD-Vi in the firmware setup.")


@hookimpl
def hostaudit_checks() -> list[Check]:
    return [iommu_enabled]
