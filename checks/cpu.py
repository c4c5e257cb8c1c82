"""CPU features a KVM host needs, from /proc/cpuinfo (flags every processor has)."""

from __future__ import annotations

from audit import hookimpl
from audit.host.arch import ARM64, I386, X86_64, arch_name
from audit.host.core import Host
from audit.host.kernel import kernel_config
from audit.model import Check, Evidence, Outcome, Severity, check, failed, passed, skipped
from audit.parsers.cmdline import last
from audit.parsers.cpuinfo import CpuInfo
from audit.policy import Policy
from audit.remedy.system import module_options
from checks._common import hint, maybe

CPUINFO = "/proc/cpuinfo"
DEV_KVM = "/dev/kvm"
X86 = (X86_64, I386)


def _flags_evidence(cpu: CpuInfo, wanted: list[str], expected: str, *, arm64: bool = False) -> Evidence:
    have = [f for f in wanted if f in cpu.flags]
    lacks = [f for f in wanted if f not in cpu.flags]
    if arm64:  # arm64 prints no vendor or model name: the implementation (MIDR) names the CPU
        parts = [f"{_arm_name(cpu)} (Features)"]
    else:
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


def _arm_name(cpu: CpuInfo | None) -> str:
    """'Cavium ThunderX2 r1p1 (0x43/0x0af)' from the MIDR lines (the part table loads only here)."""
    if cpu is None or not cpu.midrs:
        return (cpu.model_name if cpu else None) or "arm64 CPU"
    from audit.cpu.arm64 import implementations, implementations_text

    return implementations_text(implementations(cpu))


def _arm_cpu(cpu: CpuInfo | None) -> Evidence:
    return Evidence(source=CPUINFO, observed=f"{_arm_name(cpu)}: arm64 prints no flag for EL2 (the virtualization"
                    " exception level); /dev/kvm tells instead", expected="KVM initialised (/dev/kvm)")


def _arm64_virtualization(host: Host) -> Outcome:
    """arm64 has no /proc/cpuinfo flag for EL2. KVM, built into every arm64 kernel that has it,
    registers /dev/kvm only when its init finds every CPU entered at EL2 (arch/arm64/kvm/arm.c
    kvm_arm_init: "HYP mode not available" -> -ENODEV before kvm_init), and not when the command
    line says kvm-arm.mode=none ("KVM disabled from command line"). So /dev/kvm answers, given
    CONFIG_KVM=y; the kernel's log says why, but it is not read here."""
    ev = [_arm_cpu(hint(lambda: host.cpuinfo))]
    kind = host.kind(DEV_KVM)
    ev.append(Evidence(source=DEV_KVM, observed=kind or "absent", expected="character device"))
    if kind == "char":
        return passed("KVM initialised (/dev/kvm exists): the kernel runs with EL2 available (arm64 virtualization)",
                      ev)
    kc = maybe(host, kernel_config)
    if kc is not None:
        ev.append(Evidence(source=kc.source, observed=kc.config.describe("KVM"), expected="CONFIG_KVM=y"))
    if host.kind("/dev") is None:
        return skipped("cannot tell on arm64 without /dev (no cpuinfo flag says whether EL2 is available)", ev)
    if kc is None:
        return skipped("cannot tell on arm64: /dev/kvm is absent and no kernel config says whether this kernel has"
                       " KVM (arm64 prints no cpuinfo flag for EL2)", ev)
    if not kc.config.enabled("KVM"):
        return skipped("cannot tell on arm64: this kernel has no KVM to probe EL2 (see kernel.kvm), and arm64 prints"
                       " no cpuinfo flag for it", ev)
    params = hint(lambda: host.cmdline)
    mode = last(params, "kvm-arm.mode") if params is not None else None
    if mode == "none":
        ev.append(Evidence(source="/proc/cmdline", observed="kvm-arm.mode=none"))
        return skipped("cannot tell on arm64: KVM was disabled on the command line (kvm-arm.mode=none), so EL2 was not"
                       " probed (see kvm.device)", ev)
    return failed(
        "no /dev/kvm although the kernel has KVM (CONFIG_KVM=y): KVM did not initialise, most likely because the"
        " kernel was not entered at EL2 (hardware virtualization unavailable)",
        ev,
        fix=["# boot the kernel at EL2: the firmware or boot loader (some boards' vendor firmware) must enter it"
             " there",
             "# in a virtual machine: the outer host must offer nested virtualization (ARMv8.4 FEAT_NV2, and"
             " kvm-arm.mode=nested on its kernel: Linux 6.6 and later)"],
        reboot=True,
        notes="The kernel log says which: 'kvm [1]: HYP mode not available' means EL2 was not available.",
    )


@check(
    "cpu.virtualization",
    title="CPU has hardware virtualization (VT-x, AMD-V; arm64: EL2)",
    severity=Severity.CRITICAL,
    reads=[CPUINFO],  # arm64 also reads /dev/kvm, /proc/cmdline and the kernel config (facts kvm.device uses too)
    runtime_only=True,
    example_fix=["# enable Intel VT-x / AMD-V (SVM) in the firmware setup, then reboot"],
)
def virtualization(host: Host, policy: Policy) -> Outcome:
    """KVM runs guests with the CPU's virtualization extensions (Intel VT-x: vmx, AMD-V: svm).
    Without them the flag is missing from /proc/cpuinfo: the CPU lacks them, firmware disabled
    them, or (in a guest) nested virtualization is off. arm64 prints no such flag: there, KVM
    having created /dev/kvm says the kernel was entered at EL2."""
    arch = arch_name(host)
    if arch == ARM64:
        return _arm64_virtualization(host)
    if arch is not None and arch not in X86:
        return skipped(f"hostaudit tells hardware virtualization on x86 and arm64 only (this system: {arch})")
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


def _flag_check(host: Host, flags: list[str], what: str, *, arm64: bool = False) -> Outcome:
    cpu = host.cpuinfo
    ev = _flags_evidence(cpu, flags, " and ".join(flags), arm64=arm64)
    lacks = [f for f in flags if f not in cpu.flags]
    if not lacks:
        return passed(f"{what} available", ev)
    if arm64:
        return failed(
            f"CPU lacks {' '.join(lacks)} ({what} are optional in ARMv8 and this CPU does not implement them)",
            ev,
            fix=["# no software fix: use a CPU that implements them (in a VM: give it the host CPU, -cpu host)"],
            notes=f"{what} come from the CPU.",
        )
    return failed(
        f"CPU lacks {' '.join(lacks)}",
        ev,
        fix=["# no software fix: use a CPU with these features, or enable them in the firmware setup"],
        notes=f"{what} comes from the CPU.{_guest_note(cpu)}",
    )


@check(
    "cpu.aes",
    title="CPU has AES instructions (x86 AES-NI, arm64 Crypto Extensions)",
    severity=Severity.MEDIUM,
    reads=[CPUINFO],
    runtime_only=True,
    example_fix=["# use a CPU with AES-NI (or pass it through to this VM: -cpu host / +aes)"],
)
def aes(host: Host, policy: Policy) -> Outcome:
    """AES instructions accelerate the host's disk and network encryption and, passed through,
    the guests' own; without them AES runs in software. x86 calls them AES-NI (the aes flag);
    on arm64 they are the optional ARMv8 Crypto Extensions ('aes' in Features, HWCAP_AES)."""
    arch = arch_name(host)
    if arch == ARM64:
        return _flag_check(host, ["aes"], "AES instructions (ARMv8 Crypto Extensions)", arm64=True)
    if arch is not None and arch not in X86:
        return skipped(f"hostaudit knows the AES flag of x86 and arm64 only (this system: {arch})")
    return _flag_check(host, ["aes"], "AES-NI")


@check(
    "cpu.avx",
    title="CPU has AVX with XSAVE",
    severity=Severity.MEDIUM,
    reads=[CPUINFO],
    runtime_only=True,
    example_fix=["# use a CPU with AVX and XSAVE (or pass them through to this VM)"],
    arches=X86,
)
def avx(host: Host, policy: Policy) -> Outcome:
    """Modern guest operating systems and workloads expect AVX, and KVM can only expose AVX
    state to guests through XSAVE; CPU models from Sandy Bridge on require both."""
    return _flag_check(host, ["avx", "xsave"], "AVX and XSAVE")


@hookimpl
def hostaudit_checks() -> list[Check]:
    return [virtualization, aes, avx]
