"""IOMMU: active now (IOMMU groups exist) and enabled on the next boot's command line."""

from __future__ import annotations

from audit import hookimpl
from audit.boot.facts import boot_cmdline
from audit.host.arch import ARM64, I386, X86_64, arch_name
from audit.host.core import Host
from audit.host.facts import loaded_modules
from audit.host.kernel import kernel_config
from audit.host.memory import IommuState, iommu_state
from audit.model import Check, Evidence, Outcome, Severity, check, failed, passed, skipped, warned
from audit.parsers.cmdline import Param, last, values
from audit.policy import Policy
from audit.remedy.cmdline import kernel_params
from audit.remedy.packages import stock_kernel
from audit.remedy.system import persist_module
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


#: arm64's IOMMU drivers for KVM hosts: the Arm SMMU (v1/v2) and SMMUv3. Both are tristate: a module
#: loads when firmware describes the SMMU (drivers/iommu/arm/Kconfig).
SMMU_OPTIONS = ("CONFIG_ARM_SMMU_V3", "CONFIG_ARM_SMMU")
SMMU_MODULES = {"CONFIG_ARM_SMMU_V3": "arm_smmu_v3", "CONFIG_ARM_SMMU": "arm_smmu"}
#: What names the SMMUs register under /sys/class/iommu: "smmu3.%pa" (arm-smmu-v3.c) and "smmu.%pa"
#: (arm-smmu.c, qcom_iommu.c): smmu3.0x0000000009050000 on QEMU's virt machine.
SMMU_UNIT_PREFIXES = ("smmu3.", "smmu.")
#: The x86 IOMMU parameters, which arm64 kernels do not know.
X86_PARAMS = ("intel_iommu", "amd_iommu", "iommu")


def _arm64_iommu(host: Host, boot_summary: str, params: list[Param] | None) -> Outcome:
    """arm64: the IOMMU is an SMMU the firmware describes (ACPI IORT or the device tree). No boot
    parameter turns it on: the driver attaches to every SMMU described, when the kernel has it."""
    kc = maybe(host, kernel_config)
    ev = [Evidence(source="next boot", observed=boot_summary)]
    if params is not None:
        x86 = [p.name + (f"={p.value}" if p.value is not None else "") for p in params if p.key in X86_PARAMS]
        if x86:
            ev.append(Evidence(source="next boot", observed=f"{' '.join(x86)}: x86 parameters, ignored on arm64"))
    built: list[str] = []
    if kc is not None:
        built = [o for o in SMMU_OPTIONS if kc.config.get(o) in ("y", "m")]
        ev.append(Evidence(source=kc.source, observed=", ".join(kc.config.describe(o) for o in SMMU_OPTIONS),
                           expected="CONFIG_ARM_SMMU_V3=y or m (or CONFIG_ARM_SMMU)"))
    lacks = kc is not None and not built

    def kernel_fail() -> Outcome:
        return failed("the kernel is built without the arm64 SMMU drivers (CONFIG_ARM_SMMU_V3, CONFIG_ARM_SMMU)", ev,
                      fix=stock_kernel(FixTarget.of(host), ARM64), reboot=True)

    if not host.has_runtime:
        if lacks:
            return kernel_fail()
        if kc is None:
            return skipped("cannot tell: no kernel config says whether this arm64 kernel has the SMMU driver", ev)
        return passed(f"the kernel has the SMMU driver ({', '.join(f'{o}={kc.config.get(o)}' for o in built)});"
                      " on arm64 no boot parameter enables it: it attaches to the SMMUs the firmware describes"
                      " (ACPI IORT or device tree), which an image does not show", ev)
    state = host.fact(iommu_state)
    smmus = [u for u in state.units if u.startswith(SMMU_UNIT_PREFIXES)]
    ev.append(_state_evidence(state))
    if state.groups > 0:  # whichever driver made them (an SMMU, or a SoC's own IOMMU)
        groups = f"{state.groups} group" + ("" if state.groups == 1 else "s")
        return passed(f"IOMMU active ({groups}; SMMU: {', '.join(smmus) or 'none listed'})", ev)
    if lacks:
        return kernel_fail()
    firmware = "IORT" in state.acpi_tables or state.devicetree
    if not firmware:
        return failed("no IOMMU: the firmware describes no SMMU (no ACPI IORT table, no device tree)", ev,
                      fix=["# the platform must have an SMMU and its firmware describe it in the ACPI IORT table",
                           "# in a virtual machine: give it one (QEMU: -machine virt,iommu=smmuv3)"],
                      reboot=True, notes="A firmware matter; it cannot be changed from the running system.")
    mods = maybe(host, loaded_modules)
    as_modules = [SMMU_MODULES[o] for o in built if kc is not None and kc.config.get(o) == "m"]
    if as_modules and mods is not None and not set(as_modules) & mods:
        ev.append(Evidence(source="/proc/modules", observed=f"{', '.join(as_modules)} not loaded"))
        return failed(f"no IOMMU groups: the SMMU driver ({as_modules[0]}) is a module and is not loaded", ev,
                      fix=persist_module(FixTarget.of(host), as_modules[0]),
                      notes="udev loads it when firmware describes an SMMU; loaded by hand it attaches now.")
    where = ("the firmware has an ACPI IORT table, but an IORT also maps the interrupt controller's ITS: it may"
             " describe no SMMU") if "IORT" in state.acpi_tables else "the firmware's device tree may describe no SMMU"
    return failed(f"no IOMMU groups: the SMMU driver attached to nothing ({where})", ev,
                  fix=["# check that the platform has an SMMU and that its firmware describes it (an IORT SMMUv3"
                       " node or a device-tree iommu node); some firmware has a setting for it",
                       "# in a virtual machine: give it one (QEMU: -machine virt,iommu=smmuv3)"],
                  reboot=True, notes="The kernel log shows whether arm-smmu-v3 probed and why not.")


#: The ACPI table each x86 vendor's firmware describes its IOMMU in: DMAR (Intel VT-d), IVRS (AMD-Vi).
FIRMWARE_TABLES = {"intel": ("DMAR",), "amd": ("IVRS",)}
FIRMWARE_FIX = "# enable Intel VT-d / AMD-Vi (IOMMU) in the firmware setup, then reboot"


def _firmware_tables(state: IommuState, vendor: str | None) -> tuple[bool, Evidence]:
    """Whether the firmware describes an IOMMU: without its ACPI table no kernel parameter helps (the
    remedy is the firmware setup, not intel_iommu=on)."""
    wanted = FIRMWARE_TABLES.get(vendor or "", ("DMAR", "IVRS"))
    feature = {"intel": "VT-d", "amd": "AMD-Vi"}.get(vendor or "", "VT-d / AMD-Vi")
    found = [t for t in wanted if t in state.acpi_tables]
    observed = (f"{', '.join(found)} present: the firmware describes an IOMMU" if found else
                f"no {'/'.join(wanted)} table: the firmware describes no IOMMU ({feature} off in its setup, or"
                " absent)")
    return bool(found), Evidence(source="/sys/firmware/acpi/tables", observed=observed,
                                 expected=" or ".join(wanted) + " (the firmware's IOMMU description)")


def _state_evidence(state: IommuState) -> Evidence:
    return Evidence(source="/sys/kernel/iommu_groups", observed=f"{state.groups} group(s); units: "
                    f"{', '.join(state.units) or 'none'}; ACPI tables: {', '.join(state.acpi_tables) or 'none'}"
                    + ("; device tree" if state.devicetree else ""), expected="at least one IOMMU group")


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
    it by default; AMD enables it by default; firmware must provide the DMAR/IVRS table. On arm64
    the IOMMU is an SMMU described by the ACPI IORT table or the device tree: no parameter enables
    it, the kernel needs its driver (CONFIG_ARM_SMMU_V3)."""
    if not policy.iommu_required:
        return skipped(f"the policy does not require an IOMMU ({policy.source})")
    boot = host.fact(boot_cmdline)
    arch = arch_name(host)
    if arch == ARM64:
        return _arm64_iommu(host, boot.summary, list(boot.params) if boot.params is not None else None)
    if arch is not None and arch not in (X86_64, I386):
        return skipped(f"hostaudit knows the IOMMU of x86 and arm64 only (this system: {arch})")
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
    ev.append(_state_evidence(state))
    firmware_ok, firmware_ev = _firmware_tables(state, vendor)
    ev.append(firmware_ev)
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
    if running_ok and not firmware_ok:
        return failed("the kernel was told to enable the IOMMU but firmware provides no DMAR/IVRS table", ev,
                      fix=[FIRMWARE_FIX], reboot=True,
                      notes="A firmware setting; it cannot be changed from the running system.")
    if not firmware_ok:  # the firmware first: no parameter helps without its table, and a reboot alone does not
        if persistent_ok:
            return failed("no IOMMU: the firmware has none (no DMAR/IVRS table); the next boot's command line enables"
                          " it, but that alone will not make one", ev, fix=[FIRMWARE_FIX], reboot=True,
                          notes="A firmware setting; it cannot be changed from the running system.")
        return failed(f"no IOMMU: the firmware has none (no DMAR/IVRS table) and the kernel has it off ({running_why})",
                      ev, fix=[FIRMWARE_FIX, *kernel_params(FixTarget.of(host), add=add, remove=remove, topic="iommu")],
                      reboot=True, notes="Enable VT-d / AMD-Vi in the firmware setup (it cannot be changed from the"
                      " running system), and the IOMMU on the kernel command line.")
    if persistent_ok:
        return warned("IOMMU configured for the next boot but not active: reboot pending", ev, fix=["# reboot"],
                      reboot=True)
    return failed(f"IOMMU not active ({running_why})", ev,
                  fix=kernel_params(FixTarget.of(host), add=add, remove=remove, topic="iommu"), reboot=True,
                  notes="The firmware has the IOMMU (its ACPI table is there): the kernel command line must enable it.")


@hookimpl
def hostaudit_checks() -> list[Check]:
    return [iommu_enabled]
