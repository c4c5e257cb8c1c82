"""CPU features a KVM host needs, from /proc/cpuinfo (flags every processor has)."""

from __future__ import annotations

from audit import hookimpl
from audit.host.core import Host
from audit.model import Check, Evidence, Outcome, Severity, check, failed, passed
from audit.parsers.cpuinfo import CpuInfo
from audit.policy import Policy
from audit.remedy.system import module_options

CPUINFO = "/proc/cpuinfo"


def _flags_evidence(cpu: CpuInfo, wanted: list[str], expected: str) -> Evidence:
    have = [f for f in wanted if f in cpu.flags]
    lacks = [f for f in wanted if f not in cpu.flags]
    parts = [f"{cpu.model_name or 'unknown model'} ({cpu.vendor or 'unknown vendor'})"]
    if have:
        parts.append("has " + " ".join(have))
    if lacks:
        parts.append("lacks " + " ".join(lacks))
    if cpu.flags_differ:
        parts.append("flags differ between processors: only flags common to all counted")
    return Evidence(source=CPUINFO, observed="; ".join(parts), expected=expected)


def _guest_note(cpu: CpuInfo) -> str:
    if "hypervisor" in cpu.flags:
        return " This host is itself a virtual machine: the outer hypervisor must pass the feature through."
    return ""


@check(
    "cpu.virtualization",
    title="CPU has hardware virtualization (VT-x or AMD-V)",
    severity=Severity.CRITICAL,
    reads=[CPUINFO],
    runtime_only=True,
    example_fix=["# enable Intel VT-x / AMD-V (SVM) in the firmware setup, then reboot"],
)
def virtualization(host: Host, policy: Policy) -> Outcome:
    """KVM runs guests with the CPU's virtualization extensions (Intel VT-x: vmx, AMD-V: svm).
    Without them the flag is missing from /proc/cpuinfo: the CPU lacks them, firmware disabled
    them, or (in a guest) nested virtualization is off."""
    cpu = host.cpuinfo
    ev = _flags_evidence(cpu, ["vmx", "svm"], "vmx or svm")
    if "vmx" in cpu.flags or "svm" in cpu.flags:
        which = "VT-x (vmx)" if "vmx" in cpu.flags else "AMD-V (svm)"
        return passed(f"{which} available", ev)
    if "hypervisor" in cpu.flags:
        modules = {"intel": ["kvm_intel"], "amd": ["kvm_amd"]}.get(cpu.vendor_kind or "", ["kvm_intel", "kvm_amd"])
        return failed(
            "no vmx/svm flag: this host is a virtual machine without nested virtualization",
            ev,
            fix=[
                *(f"# on the outer KVM host: {cmd}"
                  for m in modules for cmd in module_options(m, "nested=1", "/etc/modprobe.d/kvm-nested.conf")),
                "# then give this VM the host CPU model (libvirt: <cpu mode='host-passthrough'/>)",
            ],
            reboot=True,
            notes="Nested virtualization is configured on the outer hypervisor, not here.",
        )
    return failed(
        "no vmx/svm flag: hardware virtualization is missing or disabled in firmware",
        ev,
        fix=["# reboot into the firmware setup and enable Intel VT-x / AMD-V (SVM Mode)"],
        reboot=True,
        notes="Firmware setting; it cannot be changed from the running system.",
    )


def _flag_check(host: Host, flags: list[str], what: str) -> Outcome:
    cpu = host.cpuinfo
    ev = _flags_evidence(cpu, flags, " and ".join(flags))
    lacks = [f for f in flags if f not in cpu.flags]
    if not lacks:
        return passed(f"{what} available", ev)
    return failed(
        f"CPU lacks {' '.join(lacks)}",
        ev,
        fix=["# no software fix: use a CPU with these features, or enable them in the firmware setup"],
        notes=f"{what} comes from the CPU.{_guest_note(cpu)}",
    )


@check(
    "cpu.aes",
    title="CPU has AES-NI",
    severity=Severity.MEDIUM,
    reads=[CPUINFO],
    runtime_only=True,
    example_fix=["# use a CPU with AES-NI (or pass it through to this VM: -cpu host / +aes)"],
)
def aes(host: Host, policy: Policy) -> Outcome:
    """AES-NI accelerates the host's disk and network encryption and, passed through, the
    guests' own; without it AES runs in software."""
    return _flag_check(host, ["aes"], "AES-NI")


@check(
    "cpu.avx",
    title="CPU has AVX with XSAVE",
    severity=Severity.MEDIUM,
    reads=[CPUINFO],
    runtime_only=True,
    example_fix=["# use a CPU with AVX and XSAVE (or pass them through to this VM)"],
)
def avx(host: Host, policy: Policy) -> Outcome:
    """Modern guest operating systems and workloads expect AVX, and KVM can only expose AVX
    state to guests through XSAVE; CPU models from Sandy Bridge on require both."""
    return _flag_check(host, ["avx", "xsave"], "AVX and XSAVE")


@hookimpl
def hostaudit_checks() -> list[Check]:
    return [virtualization, aes, avx]
