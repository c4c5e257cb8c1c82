"""Whether the AES-NI crypto driver is actually registered with the running kernel."""

from __future__ import annotations

from audit import hookimpl
from audit.host.core import Host
from audit.host.facts import builtin_modules, crypto_algs, loaded_modules
from audit.host.kernel import kernel_config
from audit.model import Check, Evidence, Outcome, Severity, check, failed, passed, skipped
from audit.policy import Policy
from audit.remedy.packages import stock_kernel
from audit.remedy.system import persist_module
from audit.remedy.target import FixTarget
from checks._common import maybe


def _is_aesni_driver(driver: str, module: str) -> bool:
    return "aesni" in driver or module == "aesni_intel" or "aes-vaes" in driver


@check(
    "crypto.aesni",
    title="AES-NI crypto driver is registered",
    severity=Severity.MEDIUM,
    reads=["/proc/cpuinfo", "/proc/crypto", "/proc/modules", "/lib/modules/<release>/modules.builtin"],
    runtime_only=True,
    example_fix=["modprobe aesni_intel", "echo aesni_intel > /etc/modules-load.d/aesni_intel.conf"],
)
def aesni_driver(host: Host, policy: Policy) -> Outcome:
    """A CPU with AES-NI only helps when the aesni_intel driver is registered: otherwise dm-crypt,
    IPsec and TLS use the generic software AES."""
    cpu = host.cpuinfo
    if "aes" not in cpu.flags:
        return skipped(
            "the CPU has no aes flag: no AES-NI driver can load (see cpu.aes)",
            Evidence(source="/proc/cpuinfo", observed="no aes flag"),
        )
    evidence: list[Evidence] = []
    algs = maybe(host, crypto_algs)
    if algs is not None:
        drivers = sorted({a.driver for a in algs if _is_aesni_driver(a.driver, a.module)})
        if drivers:
            shown = ", ".join(drivers[:4]) + (f" (+{len(drivers) - 4} more)" if len(drivers) > 4 else "")
            ev = Evidence(source="/proc/crypto", observed=f"AES-NI drivers: {shown}", expected="an aesni driver")
            return passed(f"AES-NI driver registered ({drivers[0]})", ev)
        evidence.append(Evidence(source="/proc/crypto", observed="no aesni driver", expected="an aesni driver"))
    mods = maybe(host, loaded_modules)
    if mods is not None:
        if "aesni_intel" in mods:
            return passed("module aesni_intel is loaded", Evidence(source="/proc/modules", observed="aesni_intel"))
        evidence.append(Evidence(source="/proc/modules", observed="aesni_intel not loaded"))
    else:
        evidence.append(Evidence(source="/proc/modules", observed="absent (no loadable module support)"))
    builtin = maybe(host, builtin_modules)
    if builtin is not None:
        names, path = builtin
        if "aesni_intel" in names:
            return passed("aesni_intel is built into the kernel", Evidence(source=path, observed="aesni_intel"))
        evidence.append(Evidence(source=path, observed="aesni_intel not built in"))
    kc = maybe(host, kernel_config)
    if kc is not None:
        value = kc.config.describe("CRYPTO_AES_NI_INTEL")
        evidence.append(Evidence(source=kc.source, observed=value, expected="CONFIG_CRYPTO_AES_NI_INTEL=y or m"))
        if not kc.config.enabled("CRYPTO_AES_NI_INTEL"):
            return failed(
                "no AES-NI driver: this kernel was built without it",
                evidence,
                fix=stock_kernel(FixTarget.of(host)),
                reboot=True,
                notes="The driver has to be built into or shipped with the kernel.",
            )
    if algs is None and mods is None:
        return skipped("cannot tell which crypto drivers are registered (/proc/crypto and /proc/modules absent)",
                       evidence)
    return failed(
        "the CPU has AES-NI but no AES-NI driver is registered",
        evidence,
        fix=persist_module(FixTarget.of(host), "aesni_intel"),
        notes="Load the driver now and at every boot.",
    )


@hookimpl
def hostaudit_checks() -> list[Check]:
    return [aesni_driver]
