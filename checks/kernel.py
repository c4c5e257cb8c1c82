"""Kernel build options a KVM host needs, declared as data with the reason beside each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from audit import hookimpl
from audit.host.core import Host
from audit.host.kernel import kernel_config
from audit.model import Check, Evidence, Outcome, Severity, failed, passed, warned
from audit.policy import Policy
from audit.remedy.packages import stock_kernel
from audit.remedy.target import FixTarget
from checks._common import hint

KCONFIG_READS = ("/proc/config.gz", "/boot/config-<release>", "/lib/modules/<release>/config")
BUILTIN = frozenset({"y"})
BUILTIN_OR_MODULE = frozenset({"y", "m"})


@dataclass(frozen=True, slots=True)
class Requirement:
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
        fix=stock_kernel(FixTarget.of(host)),
        reboot=True,
        notes="Kernel options are fixed at build time: boot a kernel built with them.",
    )


def kconfig(
    check_id: str,
    title: str,
    requirements: Mapping[str, frozenset[str]],
    severity: Severity,
    rationale: str,
) -> Check:
    """A check that passes when every option has one of its allowed values."""
    reqs = tuple(Requirement(opt, allowed) for opt, allowed in requirements.items())

    def evaluate(host: Host, policy: Policy) -> Outcome:
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
        example_fix=("apt-get install linux-image-amd64   # or: dnf install kernel",),
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
        "Kernel has the AES-NI crypto driver",
        {"CONFIG_CRYPTO_AES_NI_INTEL": BUILTIN_OR_MODULE},
        Severity.MEDIUM,
        "Disk and network encryption on the host (LUKS, IPsec, TLS migration) uses AES-NI when the"
        " driver exists; without it AES runs in software, many times slower.",
    ),
]


def _kvm(host: Host, policy: Policy) -> Outcome:
    """KVM needs the core module and the vendor module (kvm_intel for VT-x, kvm_amd for AMD-V)."""
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
            fix=stock_kernel(FixTarget.of(host)),
            reboot=True,
            notes="A stock distribution kernel builds kvm_intel and kvm_amd as modules.",
        )
    missing = [r for r, ok in (("CONFIG_KVM", core_ok), (want, vendor_ok)) if not ok]
    return _kernel_fail(host, " and ".join(missing) + assumed, evidence)


KVM_CHECK = Check(
    id="kernel.kvm",
    title="Kernel has KVM and the vendor module for this CPU",
    severity=Severity.CRITICAL,
    category="kernel",
    rationale=" ".join((_kvm.__doc__ or "").split()),
    evaluate=_kvm,
    reads=(*KCONFIG_READS, "/proc/cpuinfo"),
    example_fix=("apt-get install linux-image-amd64   # or: dnf install kernel",),
)

@hookimpl
def hostaudit_checks() -> list[Check]:
    return [*KCONFIG_CHECKS, KVM_CHECK]
