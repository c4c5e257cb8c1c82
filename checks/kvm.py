"""The KVM device node that QEMU opens."""

from __future__ import annotations

from audit import hookimpl
from audit.host.arch import ARM64, arch_name
from audit.host.core import Host
from audit.host.kernel import kernel_config
from audit.model import Check, Evidence, Outcome, Severity, check, failed, passed
from audit.parsers.cmdline import last
from audit.policy import Policy
from audit.remedy.cmdline import kernel_params
from audit.remedy.packages import stock_kernel
from audit.remedy.system import load_module, persist_module, remove_file
from audit.remedy.target import FixTarget
from checks._common import hint, maybe

DEV_KVM = "/dev/kvm"
#: KVM's misc device number (include/linux/miscdevice.h KVM_MINOR 232, misc major 10), on every architecture
KVM_NODE = "mknod -m 0660 /dev/kvm c 10 232"


def _arm64_missing(host: Host, ev: Evidence) -> Outcome:
    """arm64 builds KVM into the kernel: there is no module to load. /dev/kvm is missing because the
    kernel has no KVM, the command line disabled it, or KVM found no EL2 at boot."""
    evidence = [ev]
    kc = maybe(host, kernel_config)
    if kc is not None:
        evidence.append(Evidence(source=kc.source, observed=kc.config.describe("KVM"), expected="CONFIG_KVM=y"))
        if not kc.config.enabled("KVM"):
            return failed("/dev/kvm does not exist: this kernel is built without KVM (see kernel.kvm)", evidence,
                          fix=stock_kernel(FixTarget.of(host), ARM64), reboot=True,
                          notes="arm64 builds KVM into the kernel (CONFIG_KVM=y); there is no module to load.")
    params = hint(lambda: host.cmdline)
    if params is not None and last(params, "kvm-arm.mode") == "none":
        evidence.append(Evidence(source="/proc/cmdline", observed="kvm-arm.mode=none", expected="no kvm-arm.mode=none"))
        return failed("/dev/kvm does not exist: KVM is disabled on the kernel command line (kvm-arm.mode=none)",
                      evidence, fix=kernel_params(FixTarget.of(host), remove=["kvm-arm.mode"], topic="kvm"),
                      reboot=True, notes="KVM reads kvm-arm.mode once, at boot.")
    return failed(
        "/dev/kvm does not exist: KVM did not initialise (arm64 builds it into the kernel; it gives up when the"
        " kernel was not entered at EL2)",
        evidence,
        fix=["# no module to load on arm64: boot the kernel at EL2 (firmware / boot loader; see cpu.virtualization)"],
        reboot=True,
        notes="The kernel log says why ('kvm [1]: HYP mode not available': no EL2).",
    )


@check(
    "kvm.device",
    title="/dev/kvm exists and is a character device",
    severity=Severity.CRITICAL,
    reads=[DEV_KVM],
    runtime_only=True,
    example_fix=["modprobe kvm_intel   # or kvm_amd", "echo kvm_intel > /etc/modules-load.d/kvm_intel.conf"],
)
def dev_kvm(host: Host, policy: Policy) -> Outcome:
    """QEMU and libvirt open /dev/kvm to create guests; without it they fall back to slow
    emulation (TCG) or refuse to start KVM guests. On x86 the vendor module creates it; on arm64
    KVM is built into the kernel and creates it at boot when the kernel runs at EL2."""
    kind = host.kind(DEV_KVM)
    ev = Evidence(source=DEV_KVM, observed=kind or "absent", expected="character device")
    if kind == "char":
        return passed("/dev/kvm is a character device", ev)
    arm64 = arch_name(host) == ARM64
    if arm64 and kind is None:
        return _arm64_missing(host, ev)
    if arm64:
        return failed(
            f"/dev/kvm is a {kind}, not a character device",
            ev,
            fix=[*remove_file(DEV_KVM), KVM_NODE, "udevadm trigger --action=add --sysname-match=kvm"
                 "   # udev gives it its group and mode"],
            notes="Something replaced the device node; arm64 KVM is built in, so no module reload recreates it.",
        )
    cpu = hint(lambda: host.cpuinfo)
    vendor = cpu.vendor_kind if cpu else None
    module = {"intel": "kvm_intel", "amd": "kvm_amd"}.get(vendor or "", "kvm_intel")
    if kind is None:
        return failed(
            "/dev/kvm does not exist: the KVM modules are not loaded",
            ev,
            fix=persist_module(FixTarget.of(host), module),
            notes="Loading the vendor module creates /dev/kvm; if it fails, check firmware VT-x/AMD-V.",
        )
    return failed(
        f"/dev/kvm is a {kind}, not a character device",
        ev,
        fix=[*remove_file(DEV_KVM), *load_module(module, why="udev recreates the node (10:232)")],
        notes="Something replaced the device node.",
    )


@hookimpl
def hostaudit_checks() -> list[Check]:
    return [dev_kvm]
