#!/usr/bin/env python3
"""Derive audit/cpu/data/cpu_models.json from libvirt's x86 cpu_map XML files.

The table lists every x86 CPU model libvirt names, each resolved through libvirt's
``<model name='X'/>`` inheritance and translated into Linux /proc/cpuinfo flag names, plus the
x86-64 micro-architecture levels and a newest-first order per vendor. Every libvirt feature and
every Linux flag is classified explicitly below: nothing is dropped without a written reason.

Source used for the committed table (Debian packages, fetched with ``apt-get download``):

    apt-get download libvirt-common            # Debian 13 "trixie": 11.3.0-3+deb13u3
    dpkg-deb -x libvirt-common_*.deb /tmp/libvirt-x
    python tools/gen_cpu_models.py /tmp/libvirt-x/usr/share/libvirt/cpu_map \\
        --package libvirt-common=11.3.0-3+deb13u3 --distribution "Debian 13 (trixie)"

(Debian 12's libvirt0 9.0.0 also ships cpu_map, but has no SapphireRapids, GraniteRapids or
EPYC-Genoa.) ``--cpufeatures`` takes the kernel's arch/x86/include/asm/cpufeatures.h (from
linux-headers-*-common) and reports Linux flags this script does not classify yet: run it when
moving to a newer libvirt or kernel. tools/gen_cpu_flags.py makes the kernel flag table from
several kernels' headers (either naming rule) and stops on any printed name that neither this
table nor its own curated tables classify: regenerate it after this one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import Path

# --------------------------------------------------------------------------------------------
# libvirt feature name -> Linux /proc/cpuinfo flag name(s). Derived once from the CPUID bit each
# name stands for (x86_features.xml) and the kernel's cpufeatures.h, then written out here so a
# reviewer can read every pair. Names the kernel never prints are in NOT_IN_CPUINFO instead.
# --------------------------------------------------------------------------------------------
LIBVIRT_TO_LINUX: dict[str, tuple[str, ...]] = {
    name: (linux,) if isinstance(linux, str) else linux
    for name, linux in {
        # CPUID 0x1 ECX
        "pni": "pni", "pclmuldq": "pclmulqdq", "dtes64": "dtes64", "monitor": "monitor",
        "ds_cpl": "ds_cpl", "vmx": "vmx", "smx": "smx", "est": "est", "tm2": "tm2", "ssse3": "ssse3",
        "cid": "cid", "fma": "fma", "cx16": "cx16", "xtpr": "xtpr", "pdcm": "pdcm", "pcid": "pcid",
        "dca": "dca", "sse4.1": "sse4_1", "sse4.2": "sse4_2", "x2apic": "x2apic", "movbe": "movbe",
        "popcnt": "popcnt", "tsc-deadline": "tsc_deadline_timer", "aes": "aes", "xsave": "xsave",
        "avx": "avx", "f16c": "f16c", "rdrand": "rdrand", "hypervisor": "hypervisor",
        # CPUID 0x1 EDX
        "fpu": "fpu", "vme": "vme", "de": "de", "pse": "pse", "tsc": "tsc", "msr": "msr", "pae": "pae",
        "mce": "mce", "cx8": "cx8", "apic": "apic", "sep": "sep", "mtrr": "mtrr", "pge": "pge",
        "mca": "mca", "cmov": "cmov", "pat": "pat", "pse36": "pse36", "pn": "pn", "clflush": "clflush",
        "ds": "dts", "acpi": "acpi", "mmx": "mmx", "fxsr": "fxsr", "sse": "sse", "sse2": "sse2",
        "ss": "ss", "ht": "ht", "tm": "tm", "ia64": "ia64", "pbe": "pbe",
        # CPUID 0x6 EAX
        "arat": "arat",
        # CPUID 0x7 EBX
        "fsgsbase": "fsgsbase", "tsc_adjust": "tsc_adjust", "sgx": "sgx", "bmi1": "bmi1", "hle": "hle",
        "avx2": "avx2", "smep": "smep", "bmi2": "bmi2", "erms": "erms", "invpcid": "invpcid",
        "rtm": "rtm", "cmt": "cqm", "mpx": "mpx", "avx512f": "avx512f", "avx512dq": "avx512dq",
        "rdseed": "rdseed", "adx": "adx", "smap": "smap", "avx512ifma": "avx512ifma",
        "clflushopt": "clflushopt", "clwb": "clwb", "intel-pt": "intel_pt", "avx512pf": "avx512pf",
        "avx512er": "avx512er", "avx512cd": "avx512cd", "sha-ni": "sha_ni", "avx512bw": "avx512bw",
        "avx512vl": "avx512vl",
        # CPUID 0x7 ECX
        "avx512vbmi": "avx512vbmi", "umip": "umip", "pku": "pku", "ospke": "ospke",
        "waitpkg": "waitpkg", "avx512vbmi2": "avx512_vbmi2", "gfni": "gfni", "vaes": "vaes",
        "vpclmulqdq": "vpclmulqdq", "avx512vnni": "avx512_vnni", "avx512bitalg": "avx512_bitalg",
        "avx512-vpopcntdq": "avx512_vpopcntdq", "la57": "la57", "rdpid": "rdpid",
        "bus-lock-detect": "bus_lock_detect", "cldemote": "cldemote", "movdiri": "movdiri",
        "movdir64b": "movdir64b", "sgxlc": "sgx_lc",
        # CPUID 0x7 EDX. Linux hides the raw SPEC_CTRL / INTEL_STIBP / SPEC_CTRL_SSBD bits and
        # prints the vendor-neutral ibrs/ibpb/stibp/ssbd it derives from them (and from the AMD
        # bits below). KVM synthesises each vendor's bits from the other's, so one Linux flag
        # stands for both libvirt names.
        "avx512-4vnniw": "avx512_4vnniw", "avx512-4fmaps": "avx512_4fmaps", "fsrm": "fsrm",
        "avx512-vp2intersect": "avx512_vp2intersect", "md-clear": "md_clear",
        "serialize": "serialize", "tsx-ldtrk": "tsxldtrk", "pconfig": "pconfig",
        "arch-lbr": "arch_lbr", "amx-bf16": "amx_bf16", "avx512-fp16": "avx512_fp16",
        "amx-tile": "amx_tile", "amx-int8": "amx_int8", "spec-ctrl": ("ibrs", "ibpb"),
        "stibp": "stibp", "flush-l1d": "flush_l1d", "arch-capabilities": "arch_capabilities",
        "ssbd": "ssbd",
        # CPUID 0x7.1 EAX
        "avx-vnni": "avx_vnni", "avx512-bf16": "avx512_bf16", "fred": "fred", "lam": "lam",
        # CPUID 0xd.1 EAX
        "xsaveopt": "xsaveopt", "xsavec": "xsavec", "xgetbv1": "xgetbv1", "xsaves": "xsaves",
        # CPUID 0x80000001 ECX
        "lahf_lm": "lahf_lm", "cmp_legacy": "cmp_legacy", "svm": "svm", "extapic": "extapic",
        "cr8legacy": "cr8_legacy", "abm": "abm", "sse4a": "sse4a", "misalignsse": "misalignsse",
        "3dnowprefetch": "3dnowprefetch", "osvw": "osvw", "ibs": "ibs", "xop": "xop",
        "skinit": "skinit", "wdt": "wdt", "lwp": "lwp", "fma4": "fma4", "tce": "tce",
        "nodeid_msr": "nodeid_msr", "tbm": "tbm", "topoext": "topoext",
        "perfctr_core": "perfctr_core", "perfctr_nb": "perfctr_nb",
        # CPUID 0x80000001 EDX
        "syscall": "syscall", "nx": "nx", "mmxext": "mmxext", "fxsr_opt": "fxsr_opt",
        "pdpe1gb": "pdpe1gb", "rdtscp": "rdtscp", "lm": "lm", "3dnowext": "3dnowext", "3dnow": "3dnow",
        # CPUID 0x80000007 EBX
        "overflow-recov": "overflow_recov", "succor": "succor",
        # CPUID 0x80000008 EBX (the AMD spellings of the speculation controls: see 0x7 EDX)
        "clzero": "clzero", "xsaveerptr": "xsaveerptr", "wbnoinvd": "wbnoinvd", "ibpb": "ibpb",
        "ibrs": "ibrs", "amd-stibp": "stibp", "amd-ssbd": "ssbd", "virt-ssbd": "virt_ssbd",
        # CPUID 0x8000000a EDX (SVM)
        "npt": "npt", "lbrv": "lbrv", "svm-lock": "svm_lock", "nrip-save": "nrip_save",
        "tsc-scale": "tsc_scale", "vmcb-clean": "vmcb_clean", "flushbyasid": "flushbyasid",
        "decodeassists": "decodeassists", "pause-filter": "pausefilter", "pfthreshold": "pfthreshold",
        "avic": "avic", "v-vmsave-vmload": "v_vmsave_vmload", "vgif": "vgif", "vnmi": "vnmi",
        # IA32_ARCH_CAPABILITIES bit 1: the one MSR bit Linux turns into a flag
        "ibrs-all": "ibrs_enhanced",
        # IA32_CORE_CAPABILITIES bit 5
        "split-lock-detect": "split_lock_detect",
    }.items()
}

# When one Linux flag has several libvirt names, the name to render for each vendor's models.
# Generic models (no vendor) use the Intel spelling: KVM synthesises it on AMD hosts too.
RENDER_PREFERENCE: dict[str, dict[str, str]] = {
    "ibrs": {"intel": "spec-ctrl", "amd": "ibrs", "hygon": "ibrs"},
    "ibpb": {"intel": "spec-ctrl", "amd": "ibpb", "hygon": "ibpb"},
    "stibp": {"intel": "stibp", "amd": "amd-stibp", "hygon": "amd-stibp"},
    "ssbd": {"intel": "ssbd", "amd": "amd-ssbd", "hygon": "amd-ssbd"},
}

# libvirt names whose QEMU -cpu spelling differs (QEMU also maps '_' to '-' itself).
LIBVIRT_TO_QEMU: dict[str, str] = {
    "pclmuldq": "pclmulqdq", "lahf_lm": "lahf-lm", "cmp_legacy": "cmp-legacy",
    "nodeid_msr": "nodeid-msr", "perfctr_core": "perfctr-core", "perfctr_nb": "perfctr-nb",
    "fxsr_opt": "fxsr-opt", "tsc_adjust": "tsc-adjust", "ds_cpl": "ds-cpl",
}

# --------------------------------------------------------------------------------------------
# libvirt features Linux never prints in /proc/cpuinfo (checked against Linux 6.12's
# cpufeatures.h): either the CPUID bit has no display name, or the bit lives in an MSR.
#   "assume": not required of a host when matching models. Used where every CPU that has the
#             model's visible features has this one too (libvirt and QEMU recheck at VM start).
#   "expect": required under the Linux name a future kernel would print. Used where the hidden
#             bit is what tells this model from an older one: no current host can prove it, so
#             the model is honestly reported as unsupported rather than guessed.
#   "ignore": not required, for the reason given (KVM cannot provide it, nested only, ...).
# --------------------------------------------------------------------------------------------
_MSR_NO = "IA32_ARCH_CAPABILITIES 'not affected' bit: Linux shows it only as an absent bugs: entry"
_HIDDEN = "CPUID bit with no /proc/cpuinfo name in Linux 6.12"
NOT_IN_CPUINFO: dict[str, tuple[str, str | None, str]] = {
    # Intel speculation-safety MSR bits of the models from Cascadelake on.
    "rdctl-no": ("assume", None, _MSR_NO),
    "skip-l1dfl-vmentry": ("assume", None, _MSR_NO + " (set by KVM when L1D flush is not needed)"),
    "mds-no": ("assume", None, _MSR_NO),
    "pschange-mc-no": ("assume", None, _MSR_NO),
    "taa-no": ("assume", None, _MSR_NO),
    "sbdr-ssdp-no": ("assume", None, _MSR_NO),
    "fbsdp-no": ("assume", None, _MSR_NO),
    "psdp-no": ("assume", None, _MSR_NO),
    "pbrsb-no": ("assume", None, _MSR_NO),
    "ssb-no": ("assume", None, _MSR_NO),
    "gds-no": ("assume", None, _MSR_NO),
    "rfds-no": ("assume", None, _MSR_NO),
    "rsba": ("assume", None, "IA32_ARCH_CAPABILITIES bit (RSB alternate behaviour), not in /proc/cpuinfo"),
    "tsx-ctrl": ("assume", None, "IA32_ARCH_CAPABILITIES bit (TSX_CTRL MSR present)"),
    "fb-clear": ("assume", None, "IA32_ARCH_CAPABILITIES bit (VERW clears fill buffers)"),
    "rfds-clear": ("assume", None, "IA32_ARCH_CAPABILITIES bit (VERW clears register files)"),
    # Intel CPUID bits Linux hides.
    "xfd": ("assume", None, _HIDDEN + "; every CPU with AMX (amx_tile) has XFD, AMX needs it"),
    "fzrm": ("assume", None, _HIDDEN + "; fast-string hint present on every Golden Cove core "
             "(Sapphire Rapids), the only CPUs matching the models that list it"),
    "fsrs": ("assume", None, _HIDDEN + "; as fzrm"),
    "fsrc": ("assume", None, _HIDDEN + "; as fzrm"),
    "amx-fp16": ("expect", "amx_fp16", _HIDDEN + "; tells Granite Rapids from Sapphire Rapids"),
    "prefetchiti": ("expect", "prefetchiti", _HIDDEN + "; tells Granite Rapids from Sapphire Rapids"),
    "mcdt-no": ("expect", "mcdt_no", "CPUID 0x7.2 EDX bit unknown to Linux 6.12; Granite Rapids "
                "and Sierra Forest only"),
    "avx10": ("expect", "avx10", _HIDDEN + "; GraniteRapids-v2 only"),
    "avx10-128": ("expect", "avx10_128", "CPUID 0x24 bit unknown to Linux 6.12"),
    "avx10-256": ("expect", "avx10_256", "CPUID 0x24 bit unknown to Linux 6.12"),
    "avx10-512": ("expect", "avx10_512", "CPUID 0x24 bit unknown to Linux 6.12"),
    "cmpccxadd": ("expect", "cmpccxadd", _HIDDEN + "; tells Sierra Forest from Sapphire Rapids"),
    "avx-ifma": ("expect", "avx_ifma", _HIDDEN + "; Sierra Forest"),
    "avx-vnni-int8": ("expect", "avx_vnni_int8", _HIDDEN + "; Sierra Forest"),
    "avx-ne-convert": ("expect", "avx_ne_convert", _HIDDEN + "; Sierra Forest"),
    "avx-vnni-int16": ("expect", "avx_vnni_int16", _HIDDEN),
    "amx-complex": ("expect", "amx_complex", _HIDDEN),
    "sha512": ("expect", "sha512", _HIDDEN),
    "sm3": ("expect", "sm3", _HIDDEN),
    "sm4": ("expect", "sm4", _HIDDEN),
    "lkgs": ("expect", "lkgs", _HIDDEN),
    "wrmsrns": ("expect", "wrmsrns", _HIDDEN),
    "fdp-excptn-only": ("assume", None, _HIDDEN + "; x87 FPU pointer behaviour, not an instruction"),
    "zero-fcs-fds": ("assume", None, _HIDDEN + "; x87 FPU pointer behaviour, not an instruction"),
    "intel-psfd": ("assume", None, "speculation-control CPUID bit (0x7.2 EDX) unknown to Linux 6.12"),
    "ipred-ctrl": ("assume", None, "speculation-control CPUID bit (0x7.2 EDX) unknown to Linux 6.12"),
    "rrsba-ctrl": ("assume", None, "speculation-control CPUID bit (0x7.2 EDX), hidden by Linux"),
    "ddpd-u": ("assume", None, "speculation-control CPUID bit (0x7.2 EDX) unknown to Linux 6.12"),
    "bhi-ctrl": ("assume", None, "speculation-control CPUID bit (0x7.2 EDX), hidden by Linux"),
    "core-capability": ("ignore", None, "IA32_CORE_CAPABILITIES is not virtualised by KVM; QEMU "
                        "dropped it (and split-lock-detect) from Snowridge-v2 on"),
    "pks": ("ignore", None, "supervisor protection keys: no model uses it; Linux 6.12 hides it"),
    "pcommit": ("ignore", None, "PCOMMIT was withdrawn by Intel before any CPU shipped it"),
    "osxsave": ("ignore", None, "OS-enabled state (CR4.OSXSAVE), set by the guest's own kernel"),
    "invtsc": ("ignore", None, "invariant TSC: libvirt marks it non-migratable; Linux shows it as "
               "constant_tsc/nonstop_tsc, which are host-only here"),
    "mbm_total": ("ignore", None, "RDT memory-bandwidth monitoring: host resource control"),
    "mbm_local": ("ignore", None, "RDT memory-bandwidth monitoring: host resource control"),
    "intel-pt-lip": ("ignore", None, "Intel PT sub-feature: tracing is not part of any model"),
    "perfmon-v2": ("ignore", None, "AMD PMU version 2: performance monitoring, not a model feature"),
    "cvt16": ("ignore", None, "AMD CVT16 was never shipped; no model uses it"),
    **{n: ("ignore", None, "SGX: needs an EPC section configured per guest; no model carries it")
       for n in ("sgx1", "sgx2", "sgx-edeccssa", "sgx-exinfo", "sgx-debug", "sgx-mode64",
                 "sgx-provisionkey", "sgx-tokenkey", "sgx-kss", "sgx-aex-notify")},
    # AMD CPUID bits Linux hides. The 0x80000021 bits and PSFD arrived with Zen 3, AutoIBRS with
    # Zen 4: the EPYC-Milan/-Genoa models that list them are told apart by visible features.
    "stibp-always-on": ("assume", None, _HIDDEN + " (AMD: STIBP always-on preferred)"),
    "amd-psfd": ("assume", None, _HIDDEN + " (AMD predictive store forwarding disable, Zen 3+)"),
    "amd-no-ssb": ("assume", None, _HIDDEN + " (AMD: not affected by speculative store bypass)"),
    "no-nested-data-bp": ("assume", None, _HIDDEN + " (CPUID 0x80000021, Zen 3+)"),
    "lfence-always-serializing": ("assume", None, _HIDDEN + " (CPUID 0x80000021, Zen 3+)"),
    "null-sel-clr-base": ("assume", None, _HIDDEN + " (CPUID 0x80000021, Zen 3+)"),
    "auto-ibrs": ("assume", None, _HIDDEN + " (CPUID 0x80000021, Zen 4+)"),
    "eraps": ("assume", None, "CPUID 0x80000021 bit unknown to Linux 6.12 (Zen 5)"),
    "sbpb": ("assume", None, _HIDDEN + " (CPUID 0x80000021)"),
    "ibpb-brtype": ("assume", None, _HIDDEN + " (CPUID 0x80000021)"),
    "srso-no": ("assume", None, _HIDDEN + " (CPUID 0x80000021)"),
    "srso-user-kernel-no": ("assume", None, _HIDDEN + " (CPUID 0x80000021)"),
    "svme-addr-chk": ("ignore", None, "SVM sub-feature: nested virtualisation is not compared"),
}

# --------------------------------------------------------------------------------------------
# Linux flags that are NOT guest-visible CPU features, by reason. They are dropped from every
# comparison; a model feature that maps to one of them is listed in the model's "not_compared".
# --------------------------------------------------------------------------------------------
_NOT_GUEST_VISIBLE_BY_REASON: dict[str, tuple[str, ...]] = {
    "kernel-synthesised flag about the host's own software or state, not a CPUID feature a guest "
    "is given": (
        "rep_good", "nopl", "xtopology", "cpuid", "up", "art", "amd_dcm", "extd_apicid", "pti",
        "eagerfpu", "invpcid_single", "kaiser", "retpoline", "retpoline_amd", "rsb_ctxsw",
        "use_ibpb", "use_ibrs_fw", "ibrs_fw", "ibpb_support", "clflush_monitor", "k7", "k8", "p3",
        "p4", "cxmmx", "k6_mtrr", "cyrix_arr", "centaur_mcr", "tsc_reliable", "tsc_known_freq",
        "tdx_host_platform", "tdx_guest", "vmmcall", "cpuid_fault", "ring3mwait", "user_shstk",
        "ospke", "hypervisor", "xenpv", "zen", "zen1", "zen2", "zen3", "zen4", "zen5",
    ),
    "invariant TSC: libvirt marks invtsc non-migratable and no model carries it": (
        "constant_tsc", "nonstop_tsc", "nonstop_tsc_s3",
    ),
    "power and thermal management: the host's, KVM does not expose it": (
        "est", "tm", "tm2", "acpi", "pbe", "dtherm", "ida", "pln", "pts", "hwp", "hwp_notify",
        "hwp_act_window", "hwp_epp", "hwp_pkg_req", "hwp_highest_perf_change", "hfi", "epb", "cpb",
        "hw_pstate", "proc_feedback", "cppc", "aperfmperf", "rapl", "acc_power", "longrun",
        "lrti", "recovery",
    ),
    "performance monitoring, debug store or tracing: offered only through QEMU's pmu/lbr/pt "
    "options, never part of a named model": (
        "arch_perfmon", "pebs", "bts", "dts", "dtes64", "ds_cpl", "pdcm", "perfctr_nb",
        "perfctr_llc", "irperf", "ibs", "amd_lbr_v2", "perfmon_v2", "arch_lbr", "brs",
        "amd_lbr_pmc_freeze", "intel_pt", "sdbg", "bpext", "ptsc", "lwp",
    ),
    "machine-check / RAS capability: KVM zeroes CPUID 0x80000007 EBX for guests": (
        "overflow_recov", "succor", "smca",
    ),
    "cache and memory-bandwidth QoS (RDT / PQoS): host resource control": (
        "cqm", "cqm_llc", "cqm_occup_llc", "cqm_mbm_total", "cqm_mbm_local", "cat_l3", "cat_l2",
        "cdp_l3", "cdp_l2", "mba", "rdt_a", "rdt", "smba", "bmec",
    ),
    "hardware virtualisation: nested virtualisation is opt-in and not part of the migration "
    "baseline (see notes)": (
        "vmx", "svm", "tpr_shadow", "vnmi", "flexpriority", "ept", "vpid", "ept_ad", "npt",
        "lbrv", "svm_lock", "nrip_save", "tsc_scale", "vmcb_clean", "flushbyasid",
        "decodeassists", "pausefilter", "pfthreshold", "avic", "v_vmsave_vmload", "vgif",
        "x2avic", "v_spec_ctrl", "skinit",
    ),
    "memory encryption, trusted execution or enclaves set up by the host (SGX needs a per-guest "
    "EPC section; TXT, TME, SEV are host platform features)": (
        "sme", "sev", "sev_es", "sev_snp", "debug_swap", "svsm", "tme", "pconfig", "smx", "sgx",
        "sgx_lc",
    ),
    "CPU topology indicator: QEMU derives it from the guest's own -smp topology": (
        "ht", "cmp_legacy",
    ),
    "CPUID bit KVM does not offer to guests": (
        "monitor", "mwaitx", "extapic", "wdt", "tce", "nodeid_msr", "cid", "xtpr", "dca", "ia64",
        "pn", "mp", "enqcmd", "rdpru", "amd_ppin", "intel_ppin",
    ),
    "split-lock #AC belongs to the host kernel: KVM does not virtualise MSR_TEST_CTRL, and QEMU "
    "dropped split-lock-detect from Snowridge-v2 on": ("split_lock_detect",),
    "VIA/Zhaoxin PadLock units: libvirt's x86 cpu_map has no names for them": (
        "rng", "rng_en", "ace", "ace_en", "ace2", "ace2_en", "phe", "phe_en", "pmm", "pmm_en",
    ),
    "PCOMMIT was withdrawn by Intel before any CPU shipped it": ("pcommit",),
    "MPX: newer silicon (Ice Lake on) and Linux 5.6 dropped it; QEMU's later model versions "
    "(e.g. Skylake-Server-v4) and libvirt (removed='yes') no longer require it": ("mpx",),
}
NOT_GUEST_VISIBLE: dict[str, str] = {
    flag: reason for reason, flags in _NOT_GUEST_VISIBLE_BY_REASON.items() for flag in flags
}

# Guest-visible, but libvirt (11.3) has no name for it: counted in comparisons, left out of
# rendered CPU definitions (the renderers say so in a comment).
GUEST_VISIBLE_UNNAMED: dict[str, str] = {
    "ibt": "CET indirect branch tracking: KVM offers it from Linux 6.18; libvirt 11.3 has no name",
}

# KVM gives these to every guest whatever the host's /proc/cpuinfo says.
KVM_PROVIDED: dict[str, str] = {
    "x2apic": "KVM's in-kernel local APIC emulates x2APIC on any host",
    "tsc_deadline_timer": "KVM's in-kernel local APIC emulates the TSC-deadline timer",
    "tsc_adjust": "KVM emulates IA32_TSC_ADJUST for every guest",
    "arat": "KVM always reports ARAT (CPUID 6 EAX bit 2): the virtual APIC timer never stops",
    "arch_capabilities": "KVM emulates IA32_ARCH_CAPABILITIES for every guest since Linux 5.1",
}

# Present on every CPU that has the implying flag, even where an old kernel hides it.
IMPLIED: dict[str, tuple[str, str]] = {
    "sep": ("lm", "every x86-64 CPU reports SYSENTER in CPUID, but 64-bit kernels before ~3.x did "
            "not print 'sep' (see the Nehalem-EX and Westmere samples)"),
    "pat": ("lm", "PAT is architectural on every x86-64 CPU; kernels running with PAT disabled "
            "(nopat, some hypervisors) clear the flag, as in the QEMU guest sample"),
}

# Old kernel spellings and libvirt/QEMU spellings accepted as input, mapped to Linux names.
LINUX_ALIASES: dict[str, tuple[str, ...]] = {
    "spec_ctrl": ("ibrs", "ibpb"),  # RHEL 7 kernels print the raw CPUID bit too
    "intel_stibp": ("stibp",),
    "amd_ssbd": ("ssbd",),
    "amd_stibp": ("stibp",),
    "amd_ibrs": ("ibrs",),
    "amd_ibpb": ("ibpb",),
    "sse3": ("pni",),
}

# --------------------------------------------------------------------------------------------
# x86-64 micro-architecture levels: System V ABI, AMD64 Architecture Processor Supplement
# (x86-64 psABI), section 3.1.1 "Micro-Architecture Levels", Table 3.1. Each level includes the
# previous one. Linux names: LZCNT is 'abm', SSE3 is 'pni', SCE (SYSCALL) is 'syscall';
# OSXSAVE/OSFXSR are OS-enabled bits Linux does not print, so 'xsave'/'fxsr' stand for them.
# 'lm' (long mode itself) is added to v1 because the levels describe 64-bit mode.
# --------------------------------------------------------------------------------------------
LEVELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("x86-64-v1", ("cmov", "cx8", "fpu", "fxsr", "mmx", "syscall", "sse", "sse2", "lm")),
    ("x86-64-v2", ("cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3")),
    ("x86-64-v3", ("avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave")),
    ("x86-64-v4", ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")),
)

# --------------------------------------------------------------------------------------------
# Generation order, newest first, per vendor line. A model's family is its name without the
# -vN / -noTSX / -IBRS / -IBPB suffixes. Within a family, variants with more features rank
# first, and an unversioned name before a -vN alias of the same features (older libvirt and
# QEMU know only the unversioned names). Server parts rank before client parts of the same era
# and the Atom / Xeon Phi lines after the Core/Xeon line: a host that matches both is better
# served by the Core/Xeon model (extra features are added on top anyway).
# --------------------------------------------------------------------------------------------
FAMILIES: dict[str, tuple[str, ...]] = {
    "intel": (
        "GraniteRapids", "SapphireRapids", "Cooperlake", "Icelake-Server", "Cascadelake-Server",
        "Skylake-Server", "Icelake-Client", "Skylake-Client", "Broadwell", "Haswell", "IvyBridge",
        "SandyBridge", "Westmere", "Nehalem", "Penryn", "Conroe",
        "SierraForest", "Snowridge", "Denverton", "KnightsMill",
        "core2duo", "coreduo", "n270", "pentium3", "pentium2", "pentiumpro", "pentium",
    ),
    "amd": (
        "EPYC-Genoa", "EPYC-Milan", "EPYC-Rome", "EPYC", "Opteron_G5", "Opteron_G4", "Opteron_G3",
        "Opteron_G2", "Opteron_G1", "phenom", "athlon",
    ),
    "hygon": ("Dhyana",),
    # QEMU's vendor-less models: the only ones left when Intel and AMD hosts share a pool.
    "generic": ("qemu64", "kvm64", "cpu64-rhel6", "cpu64-rhel5", "qemu32", "kvm32", "486"),
}
VENDOR_NAMES = {"Intel": "intel", "AMD": "amd", "Hygon": "hygon"}
_SUFFIX = re.compile(r"(-v\d+)?$")
_VARIANT = re.compile(r"(-noTSX-IBRS|-noTSX|-IBRS|-IBPB)$")

NOTES: dict[str, str] = {
    "source": "Derived by tools/gen_cpu_models.py from libvirt's cpu_map/x86_*.xml (see 'source'). "
    "Each model's features are resolved through <model name='X'/> inheritance and translated to "
    "Linux /proc/cpuinfo flag names; vmx-* sub-features are dropped (nested VMX only).",
    "features": "'features' is what a host must show (after guest_visible()) for the model to run: "
    "removed, not_compared and assumed libvirt features are listed separately and not required.",
    "removed": "libvirt marks some model features removed='yes' (mpx in Skylake/Cascadelake/Icelake, "
    "monitor in EPYC/Opteron_G3/Dhyana, intel-pt in Icelake): QEMU's later model versions dropped "
    "them (e.g. Skylake-Server-v4 has no mpx) and libvirt disables them when starting a guest. They "
    "are not required here, and the renderers disable them explicitly for older libvirt.",
    "mpx": "MPX is treated as not required: newer silicon (Ice Lake on) and Linux >= 5.6 dropped it.",
    "nested": "vmx/svm and their sub-features (vmx-*, npt, nrip-save, vnmi, svme-addr-chk, ...) are "
    "not compared: nested virtualisation is opt-in (kvm_intel/kvm_amd nested=1) and cannot cross "
    "vendors. The renderers disable svm for models that carry it; add it back deliberately.",
    "kvm_provided": "Features KVM emulates for every guest (x2apic, tsc_deadline_timer, tsc_adjust, "
    "arat, arch_capabilities) count as present on any KVM host.",
    "implied": "'sep' and 'pat' are implied by 'lm': every x86-64 CPU has them, but old 64-bit "
    "kernels did not print 'sep' and kernels running without PAT clear 'pat'.",
    "versions": "-vN names appear in libvirt 11.x's cpu_map (not in 9.0's): with equal features "
    "the unversioned name ranks first.",
    "not_in_cpuinfo": "libvirt features Linux never prints: 'assume' ones are not required (every "
    "CPU matching the rest of the model has them; libvirt rechecks at start), 'expect' ones are "
    "required under the name a future kernel would print, so models they distinguish "
    "(GraniteRapids: amx-fp16, prefetchiti; SierraForest: cmpccxadd, avx-ifma, ...) cannot be "
    "confirmed from /proc/cpuinfo and are reported unsupported; 'ignore' ones are not required.",
    "tsx": "Linux disables TSX by default on CPUs with TSX_CTRL (tsx=off), so hle/rtm are absent "
    "there and only -noTSX models (or models with hle/rtm disabled) fit.",
    "bits": "Models without 'lm' are 32-bit: listed, never recommended for a 64-bit KVM pool.",
    "generic": "qemu64, kvm64, cpu64-rhel5/6, qemu32, kvm32 and 486 have no vendor: they are the "
    "fallback when hosts of different vendors share a pool (a vendor's model on the other "
    "vendor's host is not recommended). Ranked qemu64, kvm64 first: cpu64-rhel5/6 exist only in "
    "RHEL's QEMU builds.",
    "rank": "'rank' is the position in the vendor's newest-first list (0 = best); 'generation' is "
    "the family's age within its vendor line (higher = newer).",
    "levels": "x86-64-v1..v4 from the x86-64 psABI, Table 3.1 'Micro-Architecture Levels'.",
}


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------
def _x86_files(cpu_map: Path) -> list[Path]:
    """x86 model files in index.xml order (falls back to sorted names)."""
    index = cpu_map / "index.xml"
    names: list[str] = []
    if index.is_file():
        root = ET.parse(index).getroot()
        for arch in root.iter("arch"):
            if arch.get("name") == "x86":
                names = [inc.get("filename", "") for inc in arch.iter("include")]
    if not names:
        names = sorted(p.name for p in cpu_map.glob("x86_*.xml"))
    return [cpu_map / n for n in names if n not in ("x86_vendors.xml", "x86_features.xml")]


def parse_feature_names(cpu_map: Path) -> list[str]:
    """Every feature name x86_features.xml defines, in file order."""
    root = ET.parse(cpu_map / "x86_features.xml").getroot()
    return [f.get("name", "") for f in root.iter("feature")]


def parse_models(cpu_map: Path) -> dict[str, dict]:
    """Raw model definitions: vendor, parent models, own features with their attributes."""
    models: dict[str, dict] = {}
    for path in _x86_files(cpu_map):
        root = ET.parse(path).getroot()
        for m in root.findall("model"):
            vendor = m.find("vendor")
            models[m.get("name", "")] = {
                "file": path.name,
                "vendor": vendor.get("name") if vendor is not None else None,
                "parents": [p.get("name", "") for p in m.findall("model")],
                "features": {f.get("name", ""): dict(f.attrib) for f in m.findall("feature")},
                "decode_guest": (m.find("decode").get("guest") if m.find("decode") is not None
                                 else None),
            }
    return models


def resolve(models: Mapping[str, dict], name: str) -> dict:
    """Follow <model name='X'/> inheritance: features and vendor of the parents, then our own."""
    raw = models[name]
    vendor = raw["vendor"]
    features: dict[str, dict] = {}
    for parent in raw["parents"]:
        inherited = resolve(models, parent)
        features.update(inherited["features"])
        vendor = vendor or inherited["vendor"]
    features.update(raw["features"])
    return {"vendor": vendor, "features": features, "parents": raw["parents"]}


def family_of(name: str) -> str:
    return _VARIANT.sub("", _SUFFIX.sub("", name))


# --------------------------------------------------------------------------------------------
# Translation
# --------------------------------------------------------------------------------------------
def translate_model(features: Mapping[str, dict]) -> dict[str, list[str]]:
    """Split a model's libvirt features into required Linux flags and the documented rest."""
    required: set[str] = set()
    removed, not_compared, assumed, libvirt = set(), set(), set(), set()
    for feat, attrs in features.items():
        if feat.startswith("vmx-"):
            continue  # nested VMX capabilities: inert unless vmx itself is enabled
        libvirt.add(feat)
        if attrs.get("removed") == "yes":
            removed.add(feat)
            continue
        if feat in LIBVIRT_TO_LINUX:
            flags = LIBVIRT_TO_LINUX[feat]
            if any(f in NOT_GUEST_VISIBLE for f in flags):
                not_compared.add(feat)
            else:
                required.update(flags)
            continue
        if feat not in NOT_IN_CPUINFO:
            raise SystemExit(f"unclassified libvirt feature {feat!r}: add it to the tables")
        policy, linux, _reason = NOT_IN_CPUINFO[feat]
        if policy == "expect" and linux:
            required.add(linux)
        elif policy == "assume":
            assumed.add(feat)
        else:
            not_compared.add(feat)
    return {
        "features": sorted(required),
        "libvirt_features": sorted(libvirt),
        "removed": sorted(removed),
        "not_compared": sorted(not_compared),
        "assumed": sorted(assumed),
    }


def feature_names(libvirt_features: Iterable[str]) -> dict[str, dict]:
    """Linux flag -> the libvirt and QEMU names to render it with (per vendor where they differ)."""
    table: dict[str, dict] = {}
    for feat in libvirt_features:
        if feat.startswith("vmx-"):
            continue
        linux: tuple[str, ...] = ()
        if feat in LIBVIRT_TO_LINUX:
            linux = LIBVIRT_TO_LINUX[feat]
        elif feat in NOT_IN_CPUINFO and NOT_IN_CPUINFO[feat][0] == "expect":
            linux = (NOT_IN_CPUINFO[feat][1] or "",)
        for flag in linux:
            if flag in NOT_GUEST_VISIBLE:
                continue
            prefs = RENDER_PREFERENCE.get(flag)
            name = prefs["intel"] if prefs else feat
            entry = {"libvirt": name, "qemu": LIBVIRT_TO_QEMU.get(name, name)}
            if prefs and prefs["amd"] != name:
                amd = prefs["amd"]
                entry["amd"] = {"libvirt": amd, "qemu": LIBVIRT_TO_QEMU.get(amd, amd)}
            if flag in table and table[flag] != entry:
                raise SystemExit(f"Linux flag {flag!r} has two libvirt names: add RENDER_PREFERENCE")
            table[flag] = entry
    return table


def build_table(cpu_map: Path, *, source: Mapping[str, str]) -> dict:
    """The whole JSON document (pure, apart from reading cpu_map)."""
    defined = parse_feature_names(cpu_map)
    unknown = [f for f in defined if not f.startswith("vmx-")
               and f not in LIBVIRT_TO_LINUX and f not in NOT_IN_CPUINFO]
    if unknown:
        raise SystemExit(f"libvirt features not classified in this script: {unknown}")
    raw = parse_models(cpu_map)

    family_vendor = {fam: v for v, fams in FAMILIES.items() for fam in fams}
    models: dict[str, dict] = {}
    for name in raw:
        res = resolve(raw, name)
        fam = family_of(name)
        if fam not in family_vendor:
            raise SystemExit(f"model {name!r} (family {fam!r}) is not in FAMILIES: place it there")
        line = family_vendor[fam]
        xml_vendor = VENDOR_NAMES.get(res["vendor"] or "")
        if line != "generic" and xml_vendor not in (None, line):
            raise SystemExit(f"{name}: vendor {xml_vendor} but listed under {line}")
        entry = translate_model(res["features"])
        parents = res["parents"]
        own = raw[name]["features"]
        entry.update({
            "vendor": None if line == "generic" else line,
            "family": fam,
            "generation": len(FAMILIES[line]) - FAMILIES[line].index(fam),
            "alias_of": parents[0] if len(parents) == 1 and not own else None,
            "bits": 64 if "lm" in entry["features"] else 32,
            # Model features a KVM pool must not rely on: libvirt disables the removed ones
            # itself (from 9.x), the renderers do it for every libvirt version.
            "disable": sorted({*entry["removed"], *entry["not_compared"]}),
        })
        models[name] = entry

    order: dict[str, list[str]] = {}
    for line, fams in FAMILIES.items():
        names = [n for n, m in models.items() if m["family"] in fams]

        def key(n: str, fams: tuple[str, ...] = fams) -> tuple:
            # Equal features: the unversioned name first (older libvirt and QEMU know only
            # those), then the highest -vN (QEMU's later fixes: cache info, model id).
            m = models[n]
            version = re.search(r"-v(\d+)$", n)
            return (fams.index(m["family"]), -len(m["features"]), m["alias_of"] is not None,
                    version is not None, -int(version.group(1)) if version else 0, n)

        if line == "generic":  # upstream QEMU's own first: cpu64-rhel* exist only in RHEL's QEMU
            names.sort(key=lambda n: (models[n]["bits"] != 64, key(n)))
        else:
            names.sort(key=key)
        order[line] = names
        for rank, n in enumerate(names):
            models[n]["rank"] = rank

    all_libvirt = set(defined)
    names_table = feature_names(sorted(all_libvirt))
    levels, acc = [], []
    for level, feats in LEVELS:
        acc = sorted({*acc, *feats})
        levels.append({"name": level, "features": acc})

    return {
        "source": dict(source),
        "notes": NOTES,
        "models": models,
        "order": order,
        "levels": levels,
        "feature_names": names_table,
        "not_guest_visible": NOT_GUEST_VISIBLE,
        "guest_visible_unnamed": GUEST_VISIBLE_UNNAMED,
        "kvm_provided": KVM_PROVIDED,
        "implied": {k: {"by": v[0], "reason": v[1]} for k, v in IMPLIED.items()},
        "linux_aliases": {k: list(v) for k, v in LINUX_ALIASES.items()},
        "not_in_cpuinfo": {k: {"policy": p, "linux": lx, "reason": r}
                           for k, (p, lx, r) in NOT_IN_CPUINFO.items()},
        "libvirt_to_linux": {k: list(v) for k, v in LIBVIRT_TO_LINUX.items()},
        "libvirt_to_qemu": LIBVIRT_TO_QEMU,
    }


# --------------------------------------------------------------------------------------------
# Output: sorted keys; lists of strings on one line so a model stays readable in a diff.
# --------------------------------------------------------------------------------------------
def dumps(doc: object, indent: int = 0) -> str:
    pad = " " * indent
    if isinstance(doc, dict):
        if not doc:
            return "{}"
        items = [f'{pad} {json.dumps(k)}: {dumps(doc[k], indent + 1)}' for k in sorted(doc)]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(doc, list) and all(isinstance(x, str) for x in doc):
        return json.dumps(doc, ensure_ascii=False)
    if isinstance(doc, list):
        if not doc:
            return "[]"
        items = [f"{pad} {dumps(x, indent + 1)}" for x in doc]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(doc, ensure_ascii=False)


def check_kernel_names(cpufeatures_h: Path) -> list[str]:
    """Linux flag names in cpufeatures.h that this script does not classify."""
    known = {f for fl in LIBVIRT_TO_LINUX.values() for f in fl}
    known |= set(NOT_GUEST_VISIBLE) | set(GUEST_VISIBLE_UNNAMED)
    names = re.findall(r'#define X86_FEATURE_\w+\s+\([^)]*\)\s*/\*\s*"([^"]+)"',
                       cpufeatures_h.read_text())
    return sorted(set(names) - known)


def _debian_version(cpu_map: Path, package: str) -> str | None:
    """Version from the changelog dpkg-deb -x leaves beside cpu_map, when it is there."""
    import gzip

    changelog = cpu_map.parents[1] / "doc" / package / "changelog.Debian.gz"
    if not changelog.is_file():
        return None
    first = gzip.decompress(changelog.read_bytes()).decode().splitlines()[0]
    m = re.match(r"\S+ \(([^)]+)\)", first)
    return m.group(1) if m else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cpu_map", type=Path, help="directory holding x86_*.xml and index.xml")
    ap.add_argument("-o", "--output", type=Path,
                    default=Path(__file__).resolve().parents[1] / "audit" / "cpu" / "data" / "cpu_models.json")
    ap.add_argument("--package", default="libvirt-common",
                    help="source package NAME or NAME=VERSION (version read from its changelog)")
    ap.add_argument("--distribution", default="Debian 13 (trixie)")
    ap.add_argument("--date", default=dt.date.today().isoformat(), help="generation date")
    ap.add_argument("--cpufeatures", type=Path, help="kernel cpufeatures.h to cross-check")
    args = ap.parse_args(argv)

    name, _, version = args.package.partition("=")
    version = version or _debian_version(args.cpu_map, name)
    if not version:
        ap.error("cannot tell the package version: pass --package NAME=VERSION")
    if args.cpufeatures:
        missing = check_kernel_names(args.cpufeatures)
        if missing:
            print("Linux flags not classified:", " ".join(missing), file=sys.stderr)
            return 1
    source = {
        "package": name,
        "version": version,
        "distribution": args.distribution,
        "files": "/usr/share/libvirt/cpu_map/x86_*.xml",
        "generated": args.date,
        "generator": "tools/gen_cpu_models.py",
    }
    doc = build_table(args.cpu_map, source=source)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".tmp")
    tmp.write_text(dumps(doc) + "\n", encoding="utf-8")
    tmp.replace(args.output)
    print(f"{args.output}: {len(doc['models'])} models", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
