"""The KVM device node that QEMU opens."""

from __future__ import annotations

from audit import hookimpl
from audit.host.core import Host
from audit.model import Check, Evidence, Outcome, Severity, check, failed, passed
from audit.policy import Policy
from audit.remedy.system import load_module, persist_module, remove_file
from audit.remedy.target import FixTarget
from checks._common import hint

DEV_KVM = "/dev/kvm"


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
    emulation (TCG) or refuse to start KVM guests."""
    kind = host.kind(DEV_KVM)
    ev = Evidence(source=DEV_KVM, observed=kind or "absent", expected="character device")
    if kind == "char":
        return passed("/dev/kvm is a character device", ev)
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
