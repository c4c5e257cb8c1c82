"""CPU vulnerabilities that let a guest reach the host or another guest, as the running kernel reports
them under /sys/devices/system/cpu/vulnerabilities.

The strings judged here are the ones the kernel writes: arch/x86/kernel/cpu/bugs.c (mds_strings,
taa_strings, mmio_strings, rfds_strings, srbds_strings, gds_strings, retbleed_strings, srso_strings,
spectre_v2_strings, vmscape_strings; l1tf_show_state "VMX: vulnerable", itlb_multihit_show_state
"KVM: Vulnerable", the "; SMT vulnerable" suffixes, spectre_bhi_state "BHI: Vulnerable" and
"KVM: SW loop", pbrsb_eibrs_state), arch/arm64/kernel/proton-pack.c (cpu_show_spectre_v2: "Mitigation:
CSV2, BHB", ", but not BHB", "Vulnerable"), and Documentation/admin-guide/hw-vuln/*.rst, which list
each file's values and the kernel parameters that control them (with kernel-parameters.txt).
"""

from __future__ import annotations

import re

from audit import hookimpl
from audit.host.arch import ARM64, I386, X86_64, arch_name
from audit.host.core import Host
from audit.host.virt import VULN_DIR, SysfsValue, cpu_vulnerabilities
from audit.model import Check, Evidence, Outcome, Severity, check, errored, failed, passed, skipped, warned
from audit.parsers.cmdline import Param, last, values
from audit.policy import Policy
from audit.record import Record
from audit.remedy.cmdline import kernel_params
from audit.remedy.packages import Package, install
from audit.remedy.system import sysctl_persist, write_now
from audit.remedy.target import FixTarget
from checks._common import hint


class Vuln(Record):
    """One file of the vulnerabilities directory, as it concerns a KVM host."""

    doc: str  # Documentation/admin-guide/hw-vuln/<doc>
    since: str  # the mainline release that added the file (stable kernels got several earlier)
    #: command-line parameters that switch its mitigation off: (name, values that do; None: any value)
    switches: tuple[tuple[str, tuple[str, ...] | None], ...]
    enable: tuple[tuple[str, str], ...] = ()  # what turns it on again when nothing on the command line turned it off


#: x86: the files whose issue crosses the guest/host boundary (Documentation/admin-guide/hw-vuln/
#: attack_vector_controls.rst lists each under Guest-to-Host / Guest-to-Guest; itlb_multihit is a
#: guest's denial of service against the host, multihit.rst). Parameters from kernel-parameters.txt.
X86_VULNS: dict[str, Vuln] = {
    "l1tf": Vuln("l1tf.rst", "4.19", (("l1tf", ("off",)), ("kvm-intel.vmentry_l1d_flush", ("never",))),
                 (("kvm-intel.vmentry_l1d_flush", "always"),)),
    "itlb_multihit": Vuln("multihit.rst", "5.4", (("kvm.nx_huge_pages", ("off",)),),
                          (("kvm.nx_huge_pages", "force"),)),
    "mds": Vuln("mds.rst", "5.2", (("mds", ("off",)),), (("mds", "full"),)),
    "tsx_async_abort": Vuln("tsx_async_abort.rst", "5.4", (("tsx_async_abort", ("off",)),),
                            (("tsx_async_abort", "full"),)),
    "mmio_stale_data": Vuln("processor_mmio_stale_data.rst", "5.19", (("mmio_stale_data", ("off",)),),
                            (("mmio_stale_data", "full"),)),
    "retbleed": Vuln("(no hw-vuln page: kernel-parameters.txt retbleed=)", "5.19", (("retbleed", ("off",)),),
                     (("retbleed", "auto"),)),
    "gather_data_sampling": Vuln("gather_data_sampling.rst", "6.5", (("gather_data_sampling", ("off",)),)),
    "spec_rstack_overflow": Vuln("srso.rst", "6.5", (("spec_rstack_overflow", ("off",)),),
                                 (("spec_rstack_overflow", "safe-ret"),)),
    "reg_file_data_sampling": Vuln("reg-file-data-sampling.rst", "6.9", (("reg_file_data_sampling", ("off",)),),
                                   (("reg_file_data_sampling", "on"),)),
    "srbds": Vuln("special-register-buffer-data-sampling.rst", "5.8", (("srbds", ("off",)),)),
    "spectre_v2": Vuln("spectre.rst", "4.15", (("spectre_v2", ("off",)), ("nospectre_v2", None),
                                              ("spectre_bhi", ("off",))), (("spectre_v2", "on"),)),
    "vmscape": Vuln("vmscape.rst", "6.17", (("vmscape", ("off",)),), (("vmscape", "ibpb"),)),
}

#: arm64 prints spectre_v1, spectre_v2, spec_store_bypass and meltdown (proton-pack.c, cpufeature.c)
#: and, through drivers/base/cpu.c's defaults, "Not affected" for every x86 name above: none of
#: those applies. Of its own, spectre_v2 is the one KVM hardens the hypervisor against (branch
#: predictor hardening of the EL2 vectors, and Spectre-BHB in the same string); v1 is each program's
#: own matter, and SSB and Meltdown are not guest-to-host paths (attack_vector_controls.rst).
ARM64_VULNS: dict[str, Vuln] = {
    "spectre_v2": Vuln("spectre.rst", "4.15", (("nospectre_v2", None), ("nospectre_bhb", None))),
}

#: mitigations= words that turn off what protects a KVM host: everything, or the guest attack vectors
#: (attack_vector_controls.rst, Linux 6.17).
MITIGATIONS_OFF = ("off", "no_guest_host", "no_guest_guest")

SMT_CONTROL = "/sys/devices/system/cpu/smt/control"
NX_HUGE_PAGES = "/sys/module/kvm/parameters/nx_huge_pages"
L1D_FLUSH = "/sys/module/kvm_intel/parameters/vmentry_l1d_flush"
UNPRIV_BPF = "kernel.unprivileged_bpf_disabled"

#: CPU microcode: Debian's non-free-firmware packages, RHEL's microcode_ctl (Intel) and linux-firmware
#: (which carries amd-ucode), SUSE's ucode-intel and ucode-amd.
MICROCODE = {
    "intel": Package(debian="intel-microcode   # from non-free-firmware", rhel="microcode_ctl",
                     suse="ucode-intel", otherwise="# install your distribution's Intel CPU microcode package"),
    "amd": Package(debian="amd64-microcode   # from non-free-firmware",
                   rhel="linux-firmware   # AMD microcode (amd-ucode) ships in linux-firmware",
                   suse="ucode-amd", otherwise="# install your distribution's AMD CPU microcode package"),
}

_NO_MICROCODE = re.compile(r"\bno microcode\b", re.IGNORECASE)

FAIL, WARN, OK = "fail", "warn", "ok"


class Finding(Record):
    name: str
    value: str
    level: str  # FAIL, WARN, OK
    tags: frozenset[str]  # what is wrong: off, vmx, bhi, pbrsb, lfence, ebpf, nonamd, bhb, smt, microcode, unknown
    why: str


def assess(name: str, value: str, *, arm64: bool = False) -> Finding:
    """How a KVM host stands on one file: fail on 'Vulnerable…', 'KVM: Vulnerable' and the parts
    that leave guests a way in (l1tf 'VMX: vulnerable', spectre_v2 'BHI: Vulnerable' without 'KVM:
    SW loop', 'PBRSB-eIBRS: Vulnerable'; arm64 ', but not BHB'); warn on 'SMT vulnerable',
    'Unknown…' and a mitigation that lacks its microcode."""
    if value.startswith("Not affected"):
        return Finding(name, value, OK, frozenset(), "not affected")
    tags: set[str] = set()
    fail: list[str] = []
    warn: list[str] = []
    if value.startswith("Vulnerable") or "KVM: Vulnerable" in value:
        fail.append("vulnerable")
        lower = value.lower()
        if "unprivileged ebpf" in lower:
            tags.add("ebpf")
        elif value.startswith("Vulnerable: LFENCE"):
            tags.add("lfence")
        elif "non-AMD" in value:
            tags.add("nonamd")
        elif not _NO_MICROCODE.search(value):
            tags.add("off")
    if name == "l1tf" and "VMX: vulnerable" in value:
        fail.append("no L1D flush on VM entry")
        tags.add("vmx")
    if name == "spectre_v2" and not arm64:
        if "BHI: Vulnerable" in value and "KVM: SW loop" not in value:
            fail.append("BHI not mitigated for guests")
            tags.add("bhi")
        if "PBRSB-eIBRS: Vulnerable" in value:
            fail.append("PBRSB not mitigated on VM exit")
            tags.add("pbrsb")
    if arm64 and ", but not BHB" in value:
        fail.append("Spectre-BHB not mitigated")
        tags.add("bhb")
    if _NO_MICROCODE.search(value):
        (fail if fail else warn).append("no microcode")
        tags.add("microcode")
    if "SMT vulnerable" in value:
        warn.append("SMT vulnerable")
        tags.add("smt")
    if value.startswith("Unknown"):
        warn.append("the kernel cannot tell")
        tags.add("unknown")
    if fail:
        return Finding(name, value, FAIL, frozenset(tags), ", ".join(fail + warn))
    if warn:
        return Finding(name, value, WARN, frozenset(tags), ", ".join(warn))
    return Finding(name, value, OK, frozenset(tags), "mitigated")


def _switched_off(vuln: Vuln, params: list[Param]) -> list[str]:
    """The parameters on the running command line that turned this one's mitigation off."""
    found = []
    for pname, offs in vuln.switches:
        got = values(params, pname)
        if got and (offs is None or any(v.lower() in offs for v in got)):
            found.append(pname)
    return found


def _mitigations_off(params: list[Param]) -> str | None:
    value = last(params, "mitigations")
    if value is None:
        return None
    words = [w.strip().lower() for w in value.split(",")]
    return value if any(w in MITIGATIONS_OFF for w in words) else None


def _remedy(host: Host, findings: list[Finding], table: dict[str, Vuln], arm64: bool) -> tuple[list[str], bool, str]:
    """(commands, reboot, notes) for every finding that is not OK."""
    target = FixTarget.of(host)
    params = hint(lambda: host.cmdline) or []
    bad = [f for f in findings if f.level != OK]
    remove: list[str] = []
    add: list[tuple[str, str]] = []
    now: list[str] = []
    extra: list[str] = []
    notes: list[str] = []
    global_off = _mitigations_off(params)
    if global_off is not None and any(f.level == FAIL for f in bad):
        remove.append("mitigations")
        notes.append(f"mitigations={global_off} turns off what protects the host from its guests; without it the "
                     "kernel picks each mitigation itself.")
    for f in bad:
        vuln = table[f.name]
        switches = _switched_off(vuln, params)
        remove += switches
        kvm_param = "vmx" in f.tags or (f.name == "itlb_multihit" and "off" in f.tags)
        if kvm_param:  # KVM's own parameter: writable while it runs, whatever the command line said at boot
            path = L1D_FLUSH if f.name == "l1tf" else NX_HUGE_PAGES
            now.append(write_now(path, vuln.enable[0][1], why=f"{f.name}: applies to VMs started from now on"))
        explained = bool(switches) or (global_off is not None and f.level == FAIL)
        if explained or f.level != FAIL:
            continue
        if kvm_param:
            add += vuln.enable
        elif "bhi" in f.tags:
            add.append(("spectre_bhi", "on"))
        elif "pbrsb" in f.tags or "lfence" in f.tags:
            add.append(("spectre_v2", "auto"))
        elif "nonamd" in f.tags:
            add.append(("retbleed", "auto"))
        elif "ebpf" in f.tags:
            now.append(write_now(f"/proc/sys/{UNPRIV_BPF.replace('.', '/')}", 1, why="no unprivileged eBPF"))
            extra += sysctl_persist(target, "/etc/sysctl.d/90-hostaudit-bpf.conf", UNPRIV_BPF, 1)
        elif arm64:
            extra.append(f"# {f.name}: the firmware must provide the Spectre workarounds (SMCCC ARCH_WORKAROUND_1/3):"
                         " update the platform firmware (Trusted Firmware-A)")
        elif "off" in f.tags and vuln.enable:
            add += vuln.enable
        elif "off" in f.tags:
            extra.append(f"# {f.name}: nothing on the command line turned it off: see Documentation/admin-guide/"
                         f"hw-vuln/{vuln.doc} for what this kernel needs")
    if any("smt" in f.tags for f in bad):
        add = [a for a in add if a[0] != "mitigations"] + [("mitigations", "auto,nosmt")]
        now.append(write_now(SMT_CONTROL, "off", why="SMT vulnerable: siblings can read each other's buffers"))
        notes.append("Turning SMT off halves the hardware threads; core scheduling is the alternative where the "
                     "workload allows it.")
    microcode = any("microcode" in f.tags for f in bad)
    if microcode:
        cpu = hint(lambda: host.cpuinfo)
        vendor = cpu.vendor_kind if cpu else None
        for v in ([vendor] if vendor in MICROCODE else ["intel", "amd"]):
            extra[:0] = install(target, MICROCODE[v])
        notes.append("The new microcode loads at the next boot (from the initramfs).")
        if any(f.name == "gather_data_sampling" and "microcode" in f.tags for f in bad):
            notes.append("Without microcode, gather_data_sampling=force mitigates GDS by turning AVX off.")
    for f in bad:
        if "unknown" in f.tags:
            extra.append(f"# {f.name}: the kernel cannot tell: inside a VM the outer hypervisor decides; on bare metal"
                         " a newer kernel or microcode knows this CPU")
    add = list(dict.fromkeys(add))
    remove = [r for r in dict.fromkeys(remove) if r not in {a[0] for a in add}]
    cmds = [*(now if target.now else []), *extra]
    boot = kernel_params(target, add=add, remove=remove, topic="cpu-vulnerabilities")
    cmds += boot
    return cmds, bool(boot) or microcode, " ".join(notes)


@check(
    "security.vm_vulnerabilities",
    title="CPU vulnerabilities that cross the guest/host boundary are mitigated",
    severity=Severity.HIGH,
    reads=[f"{VULN_DIR}/", "/proc/cmdline", "/proc/cpuinfo"],
    runtime_only=True,
    arches=(X86_64, I386, ARM64),
    example_fix=["grubby --update-kernel=ALL --remove-args=mitigations   # mitigations=off, or its no_guest_host",
                 "apt-get install intel-microcode   # 'Vulnerable: ... no microcode'"],
)
def vm_vulnerabilities(host: Host, policy: Policy) -> Outcome:
    """A guest that can read host memory or other guests' data through the CPU (L1TF, MDS, TAA, MMIO
    stale data, RFDS, GDS, Retbleed, SRSO, Spectre v2/BHI, VMSCAPE) or hang the host (iTLB multihit)
    breaks the isolation a hypervisor exists for. The running kernel says, per issue, whether it is
    mitigated; a missing file is an issue this kernel does not know, not one it has ruled out."""
    arm64 = arch_name(host) == ARM64
    table = ARM64_VULNS if arm64 else X86_VULNS
    files = host.fact(cpu_vulnerabilities)
    ev: list[Evidence] = []
    findings: list[Finding] = []
    broken: list[str] = []
    unknown: list[str] = []
    for name, vuln in table.items():
        path = f"{VULN_DIR}/{name}"
        got: SysfsValue | None = files.get(name)
        if got is None:
            unknown.append(name)
            ev.append(Evidence(source=path, observed=f"absent: not known to this kernel (added in Linux {vuln.since})"))
            continue
        if got.value is None:
            broken.append(name)
            ev.append(Evidence(source=path, observed=f"unusable: {got.problem}", expected="one line of text"))
            continue
        finding = assess(name, got.value, arm64=arm64)
        findings.append(finding)
        ev.append(Evidence(source=path, observed=got.value,
                           expected=None if finding.level == OK else "Not affected, or Mitigation: … without"
                           " 'SMT vulnerable'"))
    params = hint(lambda: host.cmdline)
    setting = _mitigations_off(params) if params is not None else None
    if setting is not None:
        ev.append(Evidence(source="/proc/cmdline", observed=f"mitigations={setting}",
                           expected="no mitigations=off, no_guest_host or no_guest_guest on a KVM host"))
    cpu = hint(lambda: host.cpuinfo)
    guest = cpu is not None and "hypervisor" in cpu.flags
    if broken:
        return errored(f"{', '.join(broken)}: the kernel's file could not be read as one line of text", ev)
    if not findings:
        return skipped(f"this kernel reports none of the {len(table)} issues this check reads ({', '.join(unknown)})",
                       ev)
    fails = [f for f in findings if f.level == FAIL]
    warns = [f for f in findings if f.level == WARN]
    tail = []
    if unknown:
        tail.append(f"not known to this kernel: {', '.join(unknown)}")
    if setting is not None:
        tail.append(f"the command line has mitigations={setting}")
    if guest:
        tail.append("this host is itself a VM: some values depend on what its own hypervisor passes through")
    suffix = f" ({'; '.join(tail)})" if tail else ""
    summary = "; ".join(f"{f.name}: {f.why}" for f in fails + warns)
    if fails or warns:
        cmds, reboot, notes = _remedy(host, fails + warns, table, arm64)
        counts = [f"{len(fails)} of {len(findings)} not mitigated"] if fails else []
        if warns:
            counts.append(f"{len(warns)} of {len(findings)} only partly")
        message = f"{', '.join(counts)}: {summary}{suffix}"
        if fails:
            return failed(message, ev, fix=cmds, reboot=reboot, notes=notes)
        return warned(message, ev, fix=cmds, reboot=reboot, notes=notes)
    return passed(f"{'all ' if len(findings) > 1 else ''}{len(findings)} mitigated or not affected{suffix}", ev)


@hookimpl
def hostaudit_checks() -> list[Check]:
    return [vm_vulnerabilities]
