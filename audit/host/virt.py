"""Facts for the hypervisor side of a KVM host: the kernel's CPU vulnerability report, the vendor KVM
module's parameters (nested, SEV, TDX) and the SEV device. All are runtime facts of a running kernel.

Sources: Documentation/ABI/testing/sysfs-devices-system-cpu (one file per issue under
/sys/devices/system/cpu/vulnerabilities, one line each); a module's parameters are under
/sys/module/<module>/parameters/ while it is loaded (a bool prints Y or N, an int 1 or 0: kvm_amd's
sev and nested were ints before Linux 5.x and printed 1, libvirt's docs/kbase/launch_security_sev.rst).
"""

from __future__ import annotations

from audit.errors import FactError, FactUnavailable, ParseError
from audit.host.core import Host
from audit.host.registry import fact, parse_text
from audit.record import Record

VULN_DIR = "/sys/devices/system/cpu/vulnerabilities"
MODULE_DIR = "/sys/module"
DEV_SEV = "/dev/sev"
#: A sysfs attribute is at most one page (sysfs_emit); 64 KiB covers arm64's largest page size.
VALUE_CAP = 64 * 1024

#: The vendor KVM modules and the parameters read from them. kvm_intel: nested (VMX), tdx (Linux
#: 6.16, arch/x86/kvm/vmx/tdx.c); kvm_amd: nested, sev, sev_es, sev_snp (arch/x86/kvm/svm/sev.c).
KVM_MODULES: dict[str, tuple[str, ...]] = {
    "kvm_intel": ("nested", "tdx"),
    "kvm_amd": ("nested", "sev", "sev_es", "sev_snp"),
}


def parse_sysfs_line(text: str) -> str:
    """The value of a one-line sysfs attribute, without its newline. Empty, several lines or binary
    data are errors: the kernel writes one line of printable text."""
    body = text[:-1] if text.endswith("\n") else text
    if "\n" in body:
        raise ParseError("more than one line (the kernel writes one)", line=2)
    if not body.strip():
        raise ParseError("empty")
    for ch in body:
        if (ord(ch) < 32 and ch != "\t") or ord(ch) == 127 or ch == "\ufffd":
            raise ParseError(f"not text: holds {ch.encode('unicode_escape').decode()!r}")
    return body.strip()


def parse_module_bool(text: str) -> bool:
    """A module parameter that is on or off: Y/N (bool parameters), 1/0 (int parameters of older
    kernels). Anything else is an error, not a guess."""
    value = parse_sysfs_line(text)
    if value in ("Y", "y", "1"):
        return True
    if value in ("N", "n", "0"):
        return False
    raise ParseError(f"not Y, N, 1 or 0: {value[:40]!r}")


class SysfsValue(Record):
    value: str | None  # the one line the kernel wrote; None when the file could not be used
    problem: str | None = None  # why not (too large, binary, several lines, not a regular file)


def _read_value(host: Host, path: str) -> SysfsValue:
    """One attribute, its problem kept instead of raised: one broken file does not hide the rest."""
    try:
        return SysfsValue(parse_text(path, host.read_text(path, limit=VALUE_CAP), parse_sysfs_line))
    except FactError as exc:
        return SysfsValue(None, exc.problem + (f" (line {exc.line})" if exc.line is not None else ""))
    except FactUnavailable:
        return SysfsValue(None, "does not exist")


@fact(paths=[f"{VULN_DIR}/*"], runtime=True)
def cpu_vulnerabilities(host: Host) -> dict[str, SysfsValue]:
    """Every file of the vulnerabilities directory, by name. A file that cannot be used is kept with
    its problem: a check errors only when it needs that file."""
    if not host.has_runtime:
        raise host.runtime_unavailable(VULN_DIR)
    kind = host.kind(VULN_DIR)
    if kind is None:
        raise FactUnavailable(f"{VULN_DIR} does not exist (a kernel before 4.15, or one built without"
                              " GENERIC_CPU_VULNERABILITIES)", source=VULN_DIR)
    if kind != "dir":
        raise FactError(VULN_DIR, f"is a {kind}, not a directory")
    out: dict[str, SysfsValue] = {}
    for name in host.listdir(VULN_DIR):
        path = f"{VULN_DIR}/{name}"
        if host.kind(path) is None:
            continue  # gone between listing and looking
        out[name] = _read_value(host, path)
    return out


class KvmModule(Record):
    """A loaded vendor KVM module: its parameters as read (raw values), and the refcount."""

    name: str  # "kvm_intel" or "kvm_amd"
    params: dict[str, SysfsValue]  # parameter -> its line; parameters this kernel lacks are not here
    refcnt: int | None  # /sys/module/<name>/refcnt: open VMs hold the module; None: not readable

    def raw(self, param: str) -> str | None:
        got = self.params.get(param)
        return got.value if got is not None else None

    def flag(self, param: str) -> bool | None:
        """The parameter as on/off; None when this kernel has no such parameter. Malformed: FactError
        naming the file, raised only here, when a check asks for that parameter."""
        got = self.params.get(param)
        if got is None:
            return None
        path = module_param_path(self.name, param)
        if got.value is None:
            raise FactError(path, got.problem or "unusable")
        return parse_text(path, got.value, parse_module_bool)


def module_param_path(module: str, param: str) -> str:
    return f"{MODULE_DIR}/{module}/parameters/{param}"


@fact(paths=[*(module_param_path(m, p) for m, ps in KVM_MODULES.items() for p in ps),
             *(f"{MODULE_DIR}/{m}/refcnt" for m in KVM_MODULES)], runtime=True)
def kvm_modules(host: Host) -> dict[str, KvmModule]:
    """The vendor KVM modules that are loaded (kvm_intel, kvm_amd), by name; empty when neither is."""
    if not host.has_runtime:
        raise host.runtime_unavailable(MODULE_DIR)
    if host.kind("/sys") is None:
        raise FactUnavailable("/sys is not available here (sysfs not mounted?)", source="/sys")
    out: dict[str, KvmModule] = {}
    for module, names in KVM_MODULES.items():
        if host.kind(f"{MODULE_DIR}/{module}") != "dir":
            continue
        params = {p: _read_value(host, module_param_path(module, p)) for p in names
                  if host.kind(module_param_path(module, p)) is not None}
        count = _read_value(host, f"{MODULE_DIR}/{module}/refcnt")  # only a hint for the wording of a fix
        refcnt = int(count.value) if count.value is not None and count.value.isdigit() else None
        out[module] = KvmModule(name=module, params=params, refcnt=refcnt)
    return out


@fact(paths=[f"?{DEV_SEV}"], runtime=True)
def sev_device(host: Host) -> str | None:
    """What /dev/sev is (the AMD Secure Processor's SEV interface, made by the ccp driver): 'char',
    another kind, or None when absent."""
    if not host.has_runtime:
        raise host.runtime_unavailable(DEV_SEV)
    return host.kind(DEV_SEV)


__all__ = ["DEV_SEV", "KVM_MODULES", "VULN_DIR", "KvmModule", "SysfsValue", "cpu_vulnerabilities", "kvm_modules",
           "module_param_path", "parse_module_bool", "parse_sysfs_line", "sev_device"]
