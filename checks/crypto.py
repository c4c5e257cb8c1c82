"""Whether the hardware AES crypto driver is registered with the running kernel: AES-NI on x86,
the ARMv8 Crypto Extensions driver (AES-CE) on arm64."""

from __future__ import annotations

from collections.abc import Callable

from audit import hookimpl
from audit.host.arch import ARM64, I386, X86_64, arch_name
from audit.host.core import Host
from audit.host.facts import builtin_modules, crypto_algs, loaded_modules
from audit.host.kernel import kernel_config
from audit.model import Check, Evidence, Outcome, Severity, check, failed, passed, skipped
from audit.parsers.modules import CryptoAlg
from audit.policy import Policy
from audit.record import Record
from audit.remedy.packages import stock_kernel
from audit.remedy.system import persist_module
from audit.remedy.target import FixTarget
from checks._common import maybe


class AesDriver(Record):
    """What provides hardware AES on one architecture."""

    name: str  # how messages call it
    short: str  # the word its driver names carry in /proc/crypto
    cpu_part: str  # what the CPU has that the driver uses
    cpu_has: str  # how messages say the CPU lacks it
    cpu_evidence: str  # what /proc/cpuinfo showed then
    module: str  # the module a fix loads (it pulls in the ones it needs)
    modules: frozenset[str]  # any of these loaded or built in means the driver is there
    option: str  # the kernel option that builds it
    see: str  # where the CPU's own support is checked
    match: Callable[[CryptoAlg], bool]  # is this /proc/crypto entry one of the driver's


def _is_aesni(alg: CryptoAlg) -> bool:
    return "aesni" in alg.driver or alg.module == "aesni_intel" or "aes-vaes" in alg.driver


def _is_aes_ce(alg: CryptoAlg) -> bool:
    """arm64 (arch/arm64/crypto/aes-glue.c, aes-ce-glue.c): "aes-ce" (the cipher), "xts-aes-ce",
    "cbc-aes-ce", "ctr-aes-ce", "ccm-aes-ce", ... from aes_ce_blk, aes_ce_cipher, aes_ce_ccm, or
    "kernel" when built in. "__xts-aes-ce" and "cryptd(__ecb-aes-ce)" are internal helpers;
    aes-neon and aes-neonbs are NEON code without the AES instructions: not hardware AES."""
    if alg.driver.startswith(("__", "cryptd(")):
        return False
    return alg.module.startswith("aes_ce_") or alg.driver == "aes-ce" or alg.driver.endswith("-aes-ce")


AESNI = AesDriver(name="AES-NI", short="aesni", cpu_part="AES-NI", cpu_has="the CPU has no aes flag",
                  cpu_evidence="no aes flag", module="aesni_intel", modules=frozenset({"aesni_intel"}),
                  option="CRYPTO_AES_NI_INTEL", see="cpu.aes", match=_is_aesni)
#: aes-ce-blk.ko depends on aes-ce-cipher.ko (its modinfo in Debian 12's 6.1.0-47-arm64)
AES_CE = AesDriver(name="AES-CE (ARMv8 Crypto Extensions)", short="aes-ce", cpu_part="the AES instructions",
                   cpu_has="the CPU has no 'aes' in its Features (no ARMv8 Crypto Extensions AES)",
                   cpu_evidence="no aes in Features", module="aes_ce_blk",
                   modules=frozenset({"aes_ce_blk", "aes_ce_cipher", "aes_ce_ccm"}),
                   option="CRYPTO_AES_ARM64_CE_BLK", see="cpu.aes", match=_is_aes_ce)


@check(
    "crypto.aesni",
    title="Hardware AES crypto driver is registered (x86 AES-NI, arm64 AES-CE)",
    severity=Severity.MEDIUM,
    reads=["/proc/cpuinfo", "/proc/crypto", "/proc/modules", "/lib/modules/<release>/modules.builtin"],
    runtime_only=True,
    example_fix=["modprobe aesni_intel   # arm64: modprobe aes_ce_blk",
                 "echo aesni_intel > /etc/modules-load.d/aesni_intel.conf"],
)
def aesni_driver(host: Host, policy: Policy) -> Outcome:
    """A CPU with AES instructions only helps when their driver is registered: aesni_intel on
    x86, aes_ce_blk (the ARMv8 Crypto Extensions) on arm64. Otherwise dm-crypt, IPsec and TLS use
    the generic software AES."""
    arch = arch_name(host)
    if arch is not None and arch not in (X86_64, I386, ARM64):
        return skipped(f"hostaudit knows the AES drivers of x86 and arm64 only (this system: {arch})")
    drv = AES_CE if arch == ARM64 else AESNI
    cpu = host.cpuinfo
    if "aes" not in cpu.flags:
        return skipped(
            f"{drv.cpu_has}: no {drv.name} driver can load (see {drv.see})",
            Evidence(source="/proc/cpuinfo", observed=drv.cpu_evidence),
        )
    evidence: list[Evidence] = []
    algs = maybe(host, crypto_algs)
    if algs is not None:
        drivers = sorted({a.driver for a in algs if drv.match(a)})
        if drivers:
            shown = ", ".join(drivers[:4]) + (f" (+{len(drivers) - 4} more)" if len(drivers) > 4 else "")
            ev = Evidence(source="/proc/crypto", observed=f"{drv.name} drivers: {shown}",
                          expected=f"an {drv.short} driver")
            return passed(f"{drv.name} driver registered ({drivers[0]})", ev)
        evidence.append(Evidence(source="/proc/crypto", observed=f"no {drv.short} driver",
                                 expected=f"an {drv.short} driver"))
    mods = maybe(host, loaded_modules)
    if mods is not None:
        loaded = sorted(drv.modules & mods)
        if loaded:
            return passed(f"module {loaded[0]} is loaded", Evidence(source="/proc/modules", observed=", ".join(loaded)))
        evidence.append(Evidence(source="/proc/modules", observed=f"{drv.module} not loaded"))
    else:
        evidence.append(Evidence(source="/proc/modules", observed="absent (no loadable module support)"))
    builtin = maybe(host, builtin_modules)
    if builtin is not None:
        names, path = builtin
        inside = sorted(drv.modules & names)
        if inside:
            return passed(f"{inside[0]} is built into the kernel", Evidence(source=path, observed=", ".join(inside)))
        evidence.append(Evidence(source=path, observed=f"{drv.module} not built in"))
    kc = maybe(host, kernel_config)
    if kc is not None:
        value = kc.config.describe(drv.option)
        evidence.append(Evidence(source=kc.source, observed=value, expected=f"CONFIG_{drv.option}=y or m"))
        if not kc.config.enabled(drv.option):
            return failed(
                f"no {drv.name} driver: this kernel was built without it",
                evidence,
                fix=stock_kernel(FixTarget.of(host), arch),
                reboot=True,
                notes="The driver has to be built into or shipped with the kernel.",
            )
    if algs is None and mods is None:
        return skipped("cannot tell which crypto drivers are registered (/proc/crypto and /proc/modules absent)",
                       evidence)
    return failed(
        f"the CPU has {drv.cpu_part} but no {drv.name} driver is registered",
        evidence,
        fix=persist_module(FixTarget.of(host), drv.module),
        notes="Load the driver now and at every boot.",
    )


@hookimpl
def hostaudit_checks() -> list[Check]:
    return [aesni_driver]
