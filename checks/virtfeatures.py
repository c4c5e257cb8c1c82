"""What the KVM module offers guests beyond plain VMs: nested virtualization and confidential
(memory-encrypted) guests, read from the loaded module's parameters."""

from __future__ import annotations

from audit import hookimpl
from audit.host.arch import ARM64, I386, X86_64, arch_name
from audit.host.core import Host
from audit.host.virt import DEV_SEV, KvmModule, kvm_modules, module_param_path, sev_device
from audit.model import Check, Evidence, Outcome, Severity, check, failed, passed, skipped
from audit.parsers.cmdline import last
from audit.policy import Policy
from audit.remedy.cmdline import kernel_params
from audit.remedy.system import load_module, module_options
from audit.remedy.target import FixTarget
from checks._common import hint, q

DEV_KVM = "/dev/kvm"
#: The modprobe.d file the fixes write (whole, so running a fix twice leaves one line). Not kvm.conf:
#: module_options writes its file whole, and kvm.conf is where distributions and admins keep their own
#: options (Fedora ships one); the name matches the nested advice of cpu.virtualization.
NESTED_CONF = "/etc/modprobe.d/kvm-nested.conf"
SECURE_CONF = {"kvm_amd": "/etc/modprobe.d/kvm-amd-sev.conf", "kvm_intel": "/etc/modprobe.d/kvm-intel-tdx.conf"}


def _reload(module: KvmModule) -> tuple[list[str], str]:
    """Commands that reload the module so a new option takes effect, and a note. Unloading fails while
    a guest runs (each VM holds the module: /sys/module/<module>/refcnt), so the reload is only
    written as commands when the module was idle when audited."""
    name = module.name
    if module.refcnt == 0:
        return ([f"modprobe -r {q(name)}   # no guest was running when audited; unloading fails if one runs now",
                 *load_module(name)],
                "The module is reloaded now (no guest was running); the modprobe.d file keeps it at every boot.")
    running = f"{module.refcnt} reference(s) held" if module.refcnt else "its use count is unknown"
    return ([f"# once no guest runs ({name}: {running}): modprobe -r {name}; modprobe {name}   (or reboot)"],
            "Unloading the module stops nothing: it fails while any guest runs, so reload it (or reboot) when the "
            "host is idle.")


def _arm64_nested(host: Host, policy: Policy) -> Outcome:
    """arm64: nested virtualization is a boot-time mode, kvm-arm.mode=nested (Documentation/admin-guide/
    kernel-parameters.txt), which needs a CPU with FEAT_NV2 (ARMv8.4) and a kernel that supports it."""
    if host.kind(DEV_KVM) != "char":
        return skipped("KVM is not initialised here (no /dev/kvm): nested virtualization does not apply")
    params = host.cmdline
    mode = last(params, "kvm-arm.mode")
    on = mode == "nested"
    ev = Evidence(source="/proc/cmdline", observed=f"kvm-arm.mode={mode}" if mode is not None else "no kvm-arm.mode",
                  expected=_expected(policy.nested_required, "kvm-arm.mode=nested"))
    state = f"nested virtualization is {'on' if on else 'off'} (kvm-arm.mode={mode or 'default'})"
    want = policy.nested_required
    if want is None or want == on:
        return passed(state + ("" if want is not None else "; the policy only reports it"), ev)
    target = FixTarget.of(host)
    if want:
        return failed(state + "; the policy requires it", ev,
                      fix=kernel_params(target, add={"kvm-arm.mode": "nested"}, topic="kvm-nested"), reboot=True,
                      notes="arm64 KVM reads kvm-arm.mode at boot; the CPU must implement FEAT_NV2 (ARMv8.4).")
    return failed(state + "; the policy forbids it", ev,
                  fix=kernel_params(target, remove=["kvm-arm.mode"], topic="kvm-nested"), reboot=True)


def _expected(want: bool | None, on: str) -> str:
    if want is None:
        return "reported only (nested.required not set)"
    return on if want else "off"


@check(
    "kvm.nested",
    title="Nested virtualization matches the policy",
    severity=Severity.INFO,
    reads=["/sys/module/kvm_*/parameters/nested", "/proc/cmdline"],  # kvm_intel, kvm_amd (x86)
    runtime_only=True,
    arches=(X86_64, I386, ARM64),
    example_fix=[f"echo 'options kvm_intel nested=1' > {NESTED_CONF}",
                 "modprobe -r kvm_intel; modprobe kvm_intel   # only while no guest runs"],
)
def nested(host: Host, policy: Policy) -> Outcome:
    """Nested virtualization lets guests run their own hypervisors (CI of virtualization stacks,
    Windows VBS). It also widens what a guest can reach in the host's KVM, so some fleets forbid it.
    x86: the vendor module's nested parameter (read-only while loaded: it changes with a modprobe.d
    option and a reload). arm64: the kvm-arm.mode=nested boot parameter. nested.required decides;
    unset, the state is only reported."""
    if arch_name(host) == ARM64:
        return _arm64_nested(host, policy)
    modules = host.fact(kvm_modules)
    loaded = [m for m in modules.values() if "nested" in m.params]
    if not loaded:
        names = ", ".join(modules) or "neither kvm_intel nor kvm_amd"
        return skipped(f"no vendor KVM module with a nested parameter is loaded ({names}): nested virtualization is"
                       " that module's setting")
    module = loaded[0]
    path = module_param_path(module.name, "nested")
    on = module.flag("nested")
    want = policy.nested_required
    ev = [Evidence(source=path, observed=module.raw("nested") or "", expected=_expected(want, "Y (or 1)"))]
    state = f"nested virtualization is {'on' if on else 'off'} ({module.name} nested={module.raw('nested')})"
    if want is None:
        return passed(state + "; the policy only reports it (nested.required not set)", ev)
    if want == on:
        return passed(state + ("; the policy requires it" if want else "; the policy forbids it"), ev)
    value = "1" if want else "0"
    reload, notes = _reload(module)
    fix = [*module_options(module.name, f"nested={value}", NESTED_CONF), *reload]
    return failed(state + ("; the policy requires it" if want else "; the policy forbids it"), ev, fix=fix,
                  notes=notes + f" Another modprobe.d file that sets {module.name} nested is read in name order and"
                  " may override this one: grep -rs nested /etc/modprobe.d /usr/lib/modprobe.d")


#: Secure-guest kinds (secure_guest.kinds in the policy) and what provides each: the kvm module's
#: parameter (arch/x86/kvm/svm/sev.c: sev, sev_es, sev_snp; arch/x86/kvm/vmx/tdx.c: tdx, Linux 6.16)
#: and the /proc/cpuinfo flag the kernel sets when the CPU and firmware have it
#: (arch/x86/include/asm/cpufeatures.h: "sev", "sev_es", "sev_snp", "tdx_host_platform").
KINDS: dict[str, tuple[str, str, str]] = {
    "sev": ("kvm_amd", "sev", "sev"),
    "sev-es": ("kvm_amd", "sev_es", "sev_es"),
    "sev-snp": ("kvm_amd", "sev_snp", "sev_snp"),
    "tdx": ("kvm_intel", "tdx", "tdx_host_platform"),
}


@check(
    "cpu.secure_guest",
    title="Confidential guests (AMD SEV, SEV-ES, SEV-SNP; Intel TDX) are available where the policy wants them",
    severity=Severity.INFO,
    reads=[*(module_param_path(m, p) for m, p, _ in KINDS.values()), DEV_SEV, "/proc/cpuinfo"],
    runtime_only=True,
    arches=(X86_64, I386),
    example_fix=["echo 'options kvm_amd sev=1 sev_es=1 sev_snp=1' > /etc/modprobe.d/kvm-amd-sev.conf",
                 "# enable SME/SEV(-SNP) or TDX in the firmware setup"],
)
def secure_guest(host: Host, policy: Policy) -> Outcome:
    """Memory-encrypted guests keep their memory from the host itself: AMD SEV (and SEV-ES for the
    register state, SEV-SNP for integrity) and Intel TDX. Each needs the CPU, the firmware (which
    turns the feature on and reserves its keys) and the KVM module's parameter. Reported; required
    only when secure_guest.required is set (any kind in secure_guest.kinds satisfies it)."""
    modules = host.fact(kvm_modules)
    if not modules:
        return skipped("no vendor KVM module (kvm_amd, kvm_intel) is loaded: secure guests are its parameters")
    cpu = hint(lambda: host.cpuinfo)
    flags = cpu.flags if cpu is not None else frozenset()
    ev: list[Evidence] = []
    absent_dev = False
    have: list[str] = []
    cpu_only: list[str] = []
    for kind, (mod, param, flag) in KINDS.items():
        module = modules.get(mod)
        if module is None:
            continue
        on = module.flag(param)
        raw = module.raw(param)
        ev.append(Evidence(source=module_param_path(mod, param),
                           observed=raw if raw is not None else "absent (this kernel has no such parameter)"))
        if on:
            have.append(kind)
        elif flag in flags:
            cpu_only.append(kind)
    if "kvm_amd" in modules:
        dev = host.fact(sev_device)
        ev.append(Evidence(source=DEV_SEV, observed=dev or "absent",
                           expected="character device (the AMD Secure Processor's SEV interface)"))
        if dev != "char" and any(k.startswith("sev") for k in have):
            absent_dev = True  # KVM says SEV, but QEMU cannot reach the PSP's firmware interface
    if cpu is not None:
        shown = [f for _, _, f in KINDS.values() if f in flags]
        ev.append(Evidence(source="/proc/cpuinfo", observed="flags: " + (" ".join(shown) or "none of sev, sev_es,"
                                                                          " sev_snp, tdx_host_platform")))
    wanted = policy.secure_guest_kinds
    state = ("available: " + ", ".join(k.upper() for k in have)) if have else "none available"
    if cpu_only:
        state += f" (the CPU and firmware have {', '.join(k.upper() for k in cpu_only)}, KVM does not use it)"
    if absent_dev:
        state += f" ({DEV_SEV} is missing: QEMU needs it to launch an SEV guest)"
    if not policy.secure_guest_required:
        return passed(f"confidential guests {state}; not required by the policy", ev)
    usable = [k for k in have if not (absent_dev and k.startswith("sev"))]
    if any(k in wanted for k in usable):
        return passed(f"confidential guests {state}; the policy accepts {', '.join(wanted)}", ev)
    fix, notes = _secure_fix(modules, wanted, flags, have)
    if absent_dev:
        fix = ["modprobe ccp   # the AMD Secure Processor driver makes /dev/sev; dmesg | grep -i sev says why it"
               " did not", *fix]
    return failed(f"confidential guests {state}; the policy requires one of {', '.join(wanted)}", ev, fix=fix,
                  reboot=True, notes=notes)


def _secure_fix(modules: dict[str, KvmModule], wanted: tuple[str, ...], flags: frozenset[str],
                have: list[str]) -> tuple[list[str], str]:
    cmds: list[str] = []
    for mod in ("kvm_amd", "kvm_intel"):
        module = modules.get(mod)
        kinds = [k for k in wanted if KINDS[k][0] == mod and k not in have]
        if module is None or not kinds:
            continue
        usable = [k for k in kinds if KINDS[k][2] in flags]
        if usable:
            # SEV-ES needs SEV on, SEV-SNP needs SEV-ES (arch/x86/kvm/svm/sev.c sev_hardware_setup)
            chain = {"sev": ["sev"], "sev-es": ["sev", "sev_es"], "sev-snp": ["sev", "sev_es", "sev_snp"],
                     "tdx": ["tdx"]}
            params = list(dict.fromkeys(p for k in usable for p in chain[k]))
            cmds += module_options(mod, " ".join(f"{p}=1" for p in params), SECURE_CONF[mod])
            reload, _ = _reload(module)
            cmds += reload
        else:
            what = "SME and SEV (SEV-SNP: SNP and the RMP table)" if mod == "kvm_amd" else "TDX (and its TME-MK keys)"
            cmds.append(f"# enable {what} in the firmware setup: the CPU flag for {', '.join(kinds)} is missing from"
                        " /proc/cpuinfo, or the CPU lacks it")
    notes = ("A confidential guest also needs QEMU, OVMF and libvirt that support it; SEV additionally needs the"
             " ccp driver's /dev/sev, TDX a kernel with CONFIG_INTEL_TDX_HOST.")
    return cmds or ["# no loaded KVM module can provide " + ", ".join(wanted)], notes


@hookimpl
def hostaudit_checks() -> list[Check]:
    return [nested, secure_guest]
