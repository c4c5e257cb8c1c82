"""Kernel build options a KVM host needs, declared as data with the reason beside each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from audit import hookimpl
from audit.host.arch import ARM64, I386, X86_64, arch_name
from audit.host.core import Host
from audit.host.kernel import kernel_config
from audit.model import Check, Evidence, Outcome, Severity, failed, passed, skipped, warned
from audit.policy import Policy
from audit.record import Record
from audit.remedy.packages import stock_kernel
from audit.remedy.target import FixTarget
from checks._common import hint

KCONFIG_READS = ("/proc/config.gz", "/boot/config-<release>", "/lib/modules/<release>/config")
BUILTIN = frozenset({"y"})
BUILTIN_OR_MODULE = frozenset({"y", "m"})


class Requirement(Record):
    option: str
    allowed: frozenset[str]

    def expected(self) -> str:
        return " or ".join(f"{self.option}={v}" for v in sorted(self.allowed, reverse=True))


def _evidence(host: Host, req: Requirement) -> tuple[Evidence, bool]:
    kc = host.fact(kernel_config)
    line = kc.config.lines.get(req.option)
    source = f"{kc.source}:{line}" if line else kc.source
    ok = kc.config.get(req.option) in req.allowed
    return Evidence(source=source, observed=kc.config.describe(req.option), expected=req.expected()), ok


def _kernel_fail(host: Host, what: str, evidence: Sequence[Evidence]) -> Outcome:
    rel = host.fact(kernel_config).release
    return failed(
        f"kernel {rel} lacks {what}",
        evidence,
        fix=stock_kernel(FixTarget.of(host), arch_name(host)),
        reboot=True,
        notes="Kernel options are fixed at build time: boot a kernel built with them.",
    )


X86 = (X86_64, I386)
#: Example remedies for `hostaudit explain` (the real one names the target's own package).
STOCK_KERNEL_EXAMPLE = ("apt-get install linux-image-amd64   # arm64: linux-image-arm64; or: dnf install kernel",)


def kconfig(
    check_id: str,
    title: str,
    requirements: Mapping[str, frozenset[str]],
    severity: Severity,
    rationale: str,
    *,
    arm64: Mapping[str, frozenset[str]] | None = None,
) -> Check:
    """A check that passes when every option has one of its allowed values.

    ``requirements`` hold on every architecture unless ``arm64`` is given: then they are the x86
    options (also used where the architecture is unknown, as before), ``arm64`` the arm64 ones, and
    another known architecture is skipped as one hostaudit has no options for."""
    default = tuple(Requirement(opt, allowed) for opt, allowed in requirements.items())
    on_arm = tuple(Requirement(opt, allowed) for opt, allowed in (arm64 or {}).items())

    def evaluate(host: Host, policy: Policy) -> Outcome:
        reqs = default
        if arm64 is not None:
            arch = arch_name(host)
            if arch == ARM64:
                reqs = on_arm
            elif arch is not None and arch not in X86:
                return skipped(f"hostaudit knows the options for this on x86 and arm64 only (this kernel: {arch})")
        results = [_evidence(host, r) for r in reqs]
        evidence = [ev for ev, _ in results]
        missing = [r.option for r, (_, ok) in zip(reqs, results, strict=True) if not ok]
        if not missing:
            return passed(", ".join(ev.observed for ev in evidence), evidence)
        return _kernel_fail(host, ", ".join(missing), evidence)

    return Check(
        id=check_id,
        title=title,
        severity=severity,
        category="kernel",
        rationale=rationale,
        evaluate=evaluate,
        reads=KCONFIG_READS,
        example_fix=STOCK_KERNEL_EXAMPLE,
    )


KCONFIG_CHECKS = [
    kconfig(
        "kernel.hugetlbfs",
        "Kernel supports huge pages (hugetlbfs)",
        {"CONFIG_HUGETLBFS": BUILTIN, "CONFIG_HUGETLB_PAGE": BUILTIN},
        Severity.HIGH,
        "Backing guest memory with huge pages (QEMU -mem-path / libvirt <hugepages/>) needs hugetlbfs;"
        " it cuts TLB misses and page-table overhead for large guests.",
    ),
    kconfig(
        "kernel.thp",
        "Kernel supports transparent huge pages",
        {"CONFIG_TRANSPARENT_HUGEPAGE": BUILTIN},
        Severity.MEDIUM,
        "Without THP, guests not given hugetlbfs memory run on 4 KiB pages only.",
    ),
    kconfig(
        "kernel.ksm",
        "Kernel supports same-page merging (KSM)",
        {"CONFIG_KSM": BUILTIN},
        Severity.MEDIUM,
        "KSM merges identical guest pages, which memory overcommit relies on.",
    ),
    kconfig(
        "kernel.aesni",
        "Kernel has the hardware AES crypto driver (x86 AES-NI, arm64 Crypto Extensions)",
        {"CONFIG_CRYPTO_AES_NI_INTEL": BUILTIN_OR_MODULE},
        Severity.MEDIUM,
        "Disk and network encryption on the host (LUKS, IPsec, TLS migration) uses the CPU's AES"
        " instructions when the kernel has their driver: AES-NI (aesni_intel) on x86, the ARMv8"
        " Crypto Extensions (aes_ce_blk, the ECB/CBC/CTR/XTS modes dm-crypt and IPsec use; it"
        " selects the aes_ce_cipher block cipher) on arm64. Without it AES runs in software, many"
        " times slower.",
        arm64={"CONFIG_CRYPTO_AES_ARM64_CE_BLK": BUILTIN_OR_MODULE},
    ),
]


def _kvm_arm64(host: Host) -> Outcome:
    """arm64: KVM is one part of the kernel, with no vendor module. Its option is a bool in
    arch/arm64/kvm/Kconfig (in a 3.18-based tree, in mainline at 5.11 and in 2024 trees alike),
    so it is built in or absent, never a module."""
    ev, ok = _evidence(host, Requirement("CONFIG_KVM", BUILTIN_OR_MODULE))
    if ok:
        return passed(f"KVM is built into the kernel ({ev.observed}); arm64 has no vendor module: KVM starts"
                      " when the kernel is entered at EL2 (see cpu.virtualization)", ev)
    return _kernel_fail(host, "CONFIG_KVM (arm64 builds KVM into the kernel)", [ev])


def _kvm(host: Host, policy: Policy) -> Outcome:
    """KVM needs the core module and, on x86, the vendor module (kvm_intel for VT-x, kvm_amd for
    AMD-V). On arm64 KVM is built into the kernel (CONFIG_KVM=y) and there is no vendor module."""
    arch = arch_name(host)
    if arch == ARM64:
        return _kvm_arm64(host)
    if arch is not None and arch not in X86:
        return skipped(f"hostaudit knows the KVM options of x86 and arm64 kernels only (this kernel: {arch})")
    kc = host.fact(kernel_config)
    core_ev, core_ok = _evidence(host, Requirement("CONFIG_KVM", BUILTIN_OR_MODULE))
    intel_ev, intel_ok = _evidence(host, Requirement("CONFIG_KVM_INTEL", BUILTIN_OR_MODULE))
    amd_ev, amd_ok = _evidence(host, Requirement("CONFIG_KVM_AMD", BUILTIN_OR_MODULE))
    cpu = hint(lambda: host.cpuinfo)
    vendor = cpu.vendor_kind if cpu else None
    if vendor == "intel":
        vendor_ok, vendor_evs, want = intel_ok, [intel_ev], "CONFIG_KVM_INTEL"
    elif vendor == "amd":
        vendor_ok, vendor_evs, want = amd_ok, [amd_ev], "CONFIG_KVM_AMD"
    else:
        vendor_ok, vendor_evs, want = intel_ok or amd_ok, [intel_ev, amd_ev], "CONFIG_KVM_INTEL or CONFIG_KVM_AMD"
    evidence = [core_ev, *vendor_evs]
    assumed = "" if vendor else " (CPU vendor unknown here: either vendor module accepted)"
    if core_ok and vendor_ok:
        return passed(f"KVM is built ({', '.join(e.observed for e in evidence)}){assumed}", evidence)
    pvm = kc.config.get("CONFIG_KVM_PVM")
    if core_ok and pvm in ("y", "m"):
        evidence.append(Evidence(source=kc.source, observed=f"CONFIG_KVM_PVM={pvm}"))
        return warned(
            f"KVM is built with the PVM backend only ({want} is not set): guests run without"
            " hardware virtualization (VT-x/AMD-V), slower and with fewer features",
            evidence,
            fix=stock_kernel(FixTarget.of(host), arch),
            reboot=True,
            notes="A stock distribution kernel builds kvm_intel and kvm_amd as modules.",
        )
    missing = [r for r, ok in (("CONFIG_KVM", core_ok), (want, vendor_ok)) if not ok]
    return _kernel_fail(host, " and ".join(missing) + assumed, evidence)


KVM_CHECK = Check(
    id="kernel.kvm",
    title="Kernel has KVM (on x86 with the vendor module for this CPU)",
    severity=Severity.CRITICAL,
    category="kernel",
    rationale=" ".join((_kvm.__doc__ or "").split()),
    evaluate=_kvm,
    reads=(*KCONFIG_READS, "/proc/cpuinfo"),
    example_fix=STOCK_KERNEL_EXAMPLE,
)

@hookimpl
def hostaudit_checks() -> list[Check]:
    return [*KCONFIG_CHECKS, KVM_CHECK]
