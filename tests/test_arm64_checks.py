"""arm64 KVM hosts (issue #10 section 5): the kernel, CPU, AES, /dev/kvm, IOMMU, fleet-gate and KSM
checks judge an arm64 system as arm64, never by x86 options or flags.

Real data (sources in tests/data/README.md): Debian 12's linux-image-6.1.0-47-arm64 6.1.170-3
config and modules.builtin; /proc/cpuinfo of a Cavium ThunderX2 (CentOS 7) and a Fujitsu A64FX
(Rocky 8, an ARMv8.2 server CPU without the AES instructions) from archspec-json; /proc/crypto of
an arm64 machine with the AES-CE modules and of an Allwinner H616 board with them built in, from
PureSwift/CryptoLinux's tests. Where a file is changed (an option unset, entries left out), the
test says what and why.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from audit.engine import collect_checks, run_check
from audit.host.core import Host
from audit.model import Status
from audit.parsers.modules import parse_proc_crypto
from audit.plugins import make_plugins
from audit.policy import DEFAULT_POLICY, Policy
from audit.remedy.packages import stock_kernel
from audit.remedy.target import FixTarget
from tests import trees
from tests.conftest import DATA, Dir, kconfig_sample

REL = "6.1.0-47-arm64"
ARM = DATA / "proc" / "arm64"
ARM_CONFIG = kconfig_sample("debian12-config-6.1.0-47-arm64")
BUILTIN = DATA / "modules" / "debian12-6.1.0-47-arm64" / "modules.builtin"
THUNDERX2 = ARM / "cpuinfo-cavium-thunderx2-centos7"
A64FX = ARM / "cpuinfo-fujitsu-a64fx-rocky8"
CRYPTO_CE_MODULES = ARM / "crypto-cryptolinux-arm64"
CRYPTO_CE_BUILTIN = ARM / "crypto-cryptolinux-allwinner-h616"
#: The SMMUv3 of QEMU's virt machine as the guest kernel names it (QEMU commit "hw/arm/virt-acpi-build:
#: Add IORT support to bypass SMMUv3", its /sys/class/iommu listing)
SMMU_UNIT = "smmu3.0x0000000009050000"
#: x86 words that must never appear in what an arm64 result says or asks to run
X86_WORDS = ("KVM_INTEL", "KVM_AMD", "AES_NI", "aesni_intel", "intel_iommu", "amd_iommu", "vmx", "svm",
             "kvm_intel", "kvm_amd", "linux-image-amd64", "VT-x", "AMD-V", "VT-d")

DECLARED, _ = collect_checks(make_plugins(entry_points=False))
CHECKS = {d.check.id: d.check for d in DECLARED}


def run(check_id: str, host: Host, policy: Policy = DEFAULT_POLICY):
    return run_check(CHECKS[check_id], host, policy)


def config(*edits: tuple[str, str]) -> str:
    """The Debian arm64 config with lines replaced (each old line must be there)."""
    text = ARM_CONFIG.read_text()
    for old, new in edits:
        assert f"\n{old}\n" in text, old
        text = text.replace(f"\n{old}\n", f"\n{new}\n")
    return text


def image(**files: object) -> dict[str, object]:
    """An arm64 Debian 12 image: the kernel package's config and modules.builtin, os-release."""
    tree: dict[str, object] = {
        f"boot/config-{REL}": ARM_CONFIG,
        f"lib/modules/{REL}/modules.builtin": BUILTIN,
        "etc/os-release": trees.DEBIAN_OS_RELEASE,
    }
    tree.update(files)
    return tree


def live(cpuinfo: Path = THUNDERX2, cmdline: str = "BOOT_IMAGE=/boot/vmlinuz-6.1.0-47-arm64 root=/dev/vda2 ro quiet",
         **files: object) -> dict[str, object]:
    """The image running: /proc (cpuinfo, release, command line), /dev without /dev/kvm unless added."""
    return image(**{"proc/cpuinfo": cpuinfo, "proc/sys/kernel/osrelease": REL + "\n", "proc/self": Dir(),
                    "proc/cmdline": cmdline + "\n", "dev/null": "", **files})


def host(make_root, tree: dict[str, object]) -> Host:
    return Host.from_root(str(make_root(tree)))


def said(outcome) -> str:
    """Everything a result tells: message, evidence, remediation."""
    parts = [outcome.message, *(f"{e.source} {e.observed} {e.expected}" for e in outcome.evidence)]
    if outcome.remediation:
        parts += [*outcome.remediation.commands, outcome.remediation.notes or ""]
    return "\n".join(parts)


def no_x86(outcome) -> None:
    text = said(outcome)
    assert not [w for w in X86_WORDS if w in text], text


def with_kvm_node(root: Path) -> None:
    try:
        os.mknod(root / "dev/kvm", 0o660 | stat.S_IFCHR, os.makedev(10, 232))
    except PermissionError:
        pytest.skip("creating a device node needs root (CI runs as root)")


# -- kernel.* on the Debian arm64 kernel -------------------------------------------------------------


def test_debian_arm64_kernel_passes_the_kernel_checks(make_root):
    h = host(make_root, image())
    kvm = run("kernel.kvm", h)
    assert kvm.status is Status.PASS
    assert "arm64 has no vendor module" in kvm.message
    assert [e.observed for e in kvm.evidence] == ["CONFIG_KVM=y"]
    assert kvm.evidence[0].source == f"/boot/config-{REL}:708"
    aes = run("kernel.aesni", h)
    assert aes.status is Status.PASS
    assert aes.message == "CONFIG_CRYPTO_AES_ARM64_CE_BLK=m"
    for check_id in ("kernel.hugetlbfs", "kernel.thp", "kernel.ksm"):
        assert run(check_id, h).status is Status.PASS, check_id
    for outcome in (kvm, aes):
        no_x86(outcome)


def test_arm64_kernel_without_kvm_names_the_arm64_package(make_root):
    h = host(make_root, image(**{f"boot/config-{REL}": config(("CONFIG_KVM=y", "# CONFIG_KVM is not set"))}))
    outcome = run("kernel.kvm", h)
    assert outcome.status is Status.FAIL
    assert "CONFIG_KVM" in outcome.message and "arm64 builds KVM into the kernel" in outcome.message
    assert any("apt-get install -y --no-install-recommends linux-image-arm64" in c
               for c in outcome.remediation.commands)
    no_x86(outcome)


def test_arm64_kernel_without_the_aes_ce_driver(make_root):
    cfg = config(("CONFIG_CRYPTO_AES_ARM64_CE_BLK=m", "# CONFIG_CRYPTO_AES_ARM64_CE_BLK is not set"))
    outcome = run("kernel.aesni", host(make_root, image(**{f"boot/config-{REL}": cfg})))
    assert outcome.status is Status.FAIL
    assert outcome.message == f"kernel {REL} lacks CONFIG_CRYPTO_AES_ARM64_CE_BLK"
    assert any("linux-image-arm64" in c for c in outcome.remediation.commands)
    no_x86(outcome)


def test_unknown_architecture_keeps_the_x86_requirements(make_root):
    # A config with no architecture option and no header, and a release without a suffix: nothing
    # says the architecture, so kernel.kvm asks for a vendor module as it always did.
    h = host(make_root, {"boot/config-6.6.0-custom": "CONFIG_KVM=y\nCONFIG_CRYPTO_AES_NI_INTEL=m\n"})
    outcome = run("kernel.kvm", h)
    assert outcome.status is Status.FAIL
    assert "CONFIG_KVM_INTEL or CONFIG_KVM_AMD" in outcome.message
    assert run("kernel.aesni", h).status is Status.PASS


def test_another_architecture_is_not_judged_by_x86_options(make_root):
    # A made-up s390x config (CONFIG_S390=y is what tells): hostaudit has no KVM/AES options for it.
    h = host(make_root, {"boot/config-6.6.0-custom": "CONFIG_S390=y\nCONFIG_64BIT=y\nCONFIG_KVM=m\n"})
    for check_id in ("kernel.kvm", "kernel.aesni"):
        outcome = run(check_id, h)
        assert outcome.status is Status.SKIP and "s390x" in outcome.message, check_id


# -- CPU: AES, AVX, virtualization --------------------------------------------------------------------


def test_cpu_aes_reads_the_arm64_features(make_root):
    outcome = run("cpu.aes", host(make_root, live(THUNDERX2)))
    assert outcome.status is Status.PASS
    assert outcome.message == "AES instructions (ARMv8 Crypto Extensions) available"
    assert outcome.evidence[0].observed == "Cavium ThunderX2 r1p1 (0x43/0x0af) (Features); has aes"


def test_cpu_without_the_crypto_extensions(make_root):
    # A64FX implements ARMv8.2 with SVE but not the optional Crypto Extensions: no aes in Features
    outcome = run("cpu.aes", host(make_root, live(A64FX)))
    assert outcome.status is Status.FAIL
    assert "optional in ARMv8" in outcome.message
    assert "firmware" not in said(outcome)  # nothing to enable there, unlike AES-NI
    no_x86(outcome)


@pytest.mark.parametrize("cpuinfo", [THUNDERX2, A64FX])
def test_x86_only_cpu_checks_are_not_applicable(make_root, cpuinfo):
    outcome = run("cpu.avx", host(make_root, live(cpuinfo)))
    assert outcome.status is Status.SKIP and outcome.not_applicable
    assert outcome.message == "not applicable on arm64: cpu.avx applies to x86_64, i386"


def test_virtualization_from_dev_kvm(make_root):
    root = make_root(live())
    with_kvm_node(root)
    outcome = run("cpu.virtualization", Host.from_root(str(root)))
    assert outcome.status is Status.PASS
    assert "/dev/kvm exists" in outcome.message and "EL2" in outcome.message
    assert [e.source for e in outcome.evidence] == ["/proc/cpuinfo", "/dev/kvm"]
    assert run("kvm.device", Host.from_root(str(root))).status is Status.PASS


def test_no_dev_kvm_with_kvm_built_in_means_no_el2(make_root):
    h = host(make_root, live())
    outcome = run("cpu.virtualization", h)
    assert outcome.status is Status.FAIL
    assert "not entered at EL2" in outcome.message
    assert {e.source: e.observed for e in outcome.evidence}[f"/boot/config-{REL}"] == "CONFIG_KVM=y"
    no_x86(outcome)
    device = run("kvm.device", h)
    assert device.status is Status.FAIL and "no module" in " ".join(device.remediation.commands)
    assert not any(c.startswith("modprobe") for c in device.remediation.commands)
    no_x86(device)


def test_kvm_disabled_on_the_command_line(make_root):
    h = host(make_root, live(cmdline="root=/dev/vda2 ro kvm-arm.mode=none"))
    outcome = run("cpu.virtualization", h)
    assert outcome.status is Status.SKIP and "kvm-arm.mode=none" in outcome.message
    device = run("kvm.device", h)
    assert device.status is Status.FAIL and "kvm-arm.mode=none" in device.message
    assert device.remediation.reboot_required
    no_x86(device)


@pytest.mark.parametrize(("edit", "why"), [
    pytest.param(None, "no kernel config", id="no-config"),
    pytest.param(("CONFIG_KVM=y", "# CONFIG_KVM is not set"), "no KVM", id="kernel-without-kvm"),
])
def test_virtualization_unknown_without_kvm_to_ask(make_root, edit, why):
    tree = live()
    if edit is None:
        del tree[f"boot/config-{REL}"]
    else:
        tree[f"boot/config-{REL}"] = config(edit)
    outcome = run("cpu.virtualization", host(make_root, tree))
    assert outcome.status is Status.SKIP and outcome.message.startswith("cannot tell on arm64")
    assert why in outcome.message


def test_kvm_device_on_an_arm64_kernel_without_kvm(make_root):
    tree = live(**{f"boot/config-{REL}": config(("CONFIG_KVM=y", "# CONFIG_KVM is not set"))})
    outcome = run("kvm.device", host(make_root, tree))
    assert outcome.status is Status.FAIL and "built without KVM" in outcome.message
    assert any("linux-image-arm64" in c for c in outcome.remediation.commands)


def test_kvm_device_replaced_by_a_file_is_made_again(make_root):
    outcome = run("kvm.device", host(make_root, live(**{"dev/kvm": "not a device\n"})))
    assert outcome.status is Status.FAIL
    assert list(outcome.remediation.commands[:2]) == ["rm -f /dev/kvm", "mknod -m 0660 /dev/kvm c 10 232"]


# -- crypto.aesni: the AES-CE driver in /proc/crypto ------------------------------------------------


def test_aes_ce_modules_registered(make_root):
    outcome = run("crypto.aesni", host(make_root, live(**{"proc/crypto": CRYPTO_CE_MODULES})))
    assert outcome.status is Status.PASS
    assert outcome.message == "AES-CE (ARMv8 Crypto Extensions) driver registered (aes-ce)"
    observed = outcome.evidence[0].observed
    assert "cbc-aes-ce" in observed and "__" not in observed and "cryptd" not in observed


def test_aes_ce_built_in(make_root):
    # the H616 kernel has the CE drivers built in: "module : kernel", and an older kernel's names
    outcome = run("crypto.aesni", host(make_root, live(**{"proc/crypto": CRYPTO_CE_BUILTIN})))
    assert outcome.status is Status.PASS
    assert "aes-ce" in outcome.message


def _without_ce(path: Path) -> str:
    """The /proc/crypto sample with the AES-CE entries left out, as if aes_ce_blk/aes_ce_cipher were
    not loaded (the generic and NEON entries stay)."""
    blocks = [b for b in path.read_text().split("\n\n") if b.strip()]
    kept = [b for b in blocks if not any(a.driver.endswith("aes-ce") or a.module.startswith("aes_ce")
                                         for a in parse_proc_crypto(b))]
    assert len(kept) < len(blocks)
    return "\n\n".join(kept) + "\n\n"


def test_aes_ce_not_loaded_is_loaded_by_the_fix(make_root):
    crypto = _without_ce(CRYPTO_CE_MODULES)
    assert not any(a.driver.endswith("-aes-ce") for a in parse_proc_crypto(crypto))
    tree = live(**{"proc/crypto": crypto, "proc/modules": "sha2_ce 16384 0 - Live 0x0\n"})
    outcome = run("crypto.aesni", host(make_root, tree))
    assert outcome.status is Status.FAIL
    assert outcome.message == ("the CPU has the AES instructions but no AES-CE (ARMv8 Crypto Extensions) driver is"
                               " registered")
    assert outcome.remediation.commands[0] == "modprobe aes_ce_blk"
    assert f"/lib/modules/{REL}/modules.builtin" in [e.source for e in outcome.evidence]
    no_x86(outcome)


def test_arm64_kernel_built_without_aes_ce(make_root):
    cfg = config(("CONFIG_CRYPTO_AES_ARM64_CE_BLK=m", "# CONFIG_CRYPTO_AES_ARM64_CE_BLK is not set"))
    tree = live(**{"proc/crypto": _without_ce(CRYPTO_CE_MODULES), "proc/modules": "sha2_ce 16384 0 - Live 0x0\n",
                   f"boot/config-{REL}": cfg})
    outcome = run("crypto.aesni", host(make_root, tree))
    assert outcome.status is Status.FAIL and "built without it" in outcome.message
    assert any("linux-image-arm64" in c for c in outcome.remediation.commands)


def test_no_aes_in_features_skips(make_root):
    outcome = run("crypto.aesni", host(make_root, live(A64FX, **{"proc/crypto": CRYPTO_CE_MODULES})))
    assert outcome.status is Status.SKIP
    assert outcome.message.startswith("the CPU has no 'aes' in its Features")


# -- iommu.enabled: an SMMU, never intel_iommu=on -----------------------------------------------------


def test_image_with_the_smmu_driver(make_root):
    # a GRUB configuration whose command line carries the x86 parameters: arm64 ignores them
    tree = image(**{"boot/grub/grub.cfg": trees.debian12_grub_cfg("intel_iommu=on iommu=pt")})
    outcome = run("iommu.enabled", host(make_root, tree))
    assert outcome.status is Status.PASS
    assert "no boot parameter enables it" in outcome.message
    assert "intel_iommu=on iommu=pt: x86 parameters, ignored on arm64" in [e.observed for e in outcome.evidence]


def test_image_kernel_without_smmu_drivers(make_root):
    cfg = config(("CONFIG_ARM_SMMU=y", "# CONFIG_ARM_SMMU is not set"),
                 ("CONFIG_ARM_SMMU_V3=y", "# CONFIG_ARM_SMMU_V3 is not set"))
    outcome = run("iommu.enabled", host(make_root, image(**{f"boot/config-{REL}": cfg})))
    assert outcome.status is Status.FAIL and "SMMU drivers" in outcome.message
    assert any("linux-image-arm64" in c for c in outcome.remediation.commands)
    no_x86(outcome)


def test_live_smmu_with_groups(make_root):
    tree = live(**{f"sys/class/iommu/{SMMU_UNIT}": Dir(), "sys/kernel/iommu_groups/0/devices": Dir(),
                   "sys/firmware/acpi/tables/IORT": b"IORT"})
    outcome = run("iommu.enabled", host(make_root, tree))
    assert outcome.status is Status.PASS
    assert outcome.message == f"IOMMU active (1 group; SMMU: {SMMU_UNIT})"


def test_live_iort_without_groups(make_root):
    # The IORT's content is not read (root-only, binary): an empty file stands for it.
    tree = live(**{"sys/class/iommu": Dir(), "sys/kernel/iommu_groups": Dir(), "sys/firmware/acpi/tables/IORT": b""})
    outcome = run("iommu.enabled", host(make_root, tree))
    assert outcome.status is Status.FAIL
    assert "attached to nothing" in outcome.message and "IORT" in outcome.message
    assert outcome.remediation.commands[0].startswith("#")
    no_x86(outcome)


def test_live_firmware_without_iort_or_device_tree(make_root):
    tree = live(**{"sys/class/iommu": Dir(), "sys/kernel/iommu_groups": Dir()})
    outcome = run("iommu.enabled", host(make_root, tree))
    assert outcome.status is Status.FAIL and "describes no SMMU" in outcome.message
    no_x86(outcome)


def test_live_smmu_module_not_loaded(make_root):
    # a kernel that builds the SMMUv3 driver as a module (the Debian config with =m), not loaded
    cfg = config(("CONFIG_ARM_SMMU_V3=y", "CONFIG_ARM_SMMU_V3=m"),
                 ("CONFIG_ARM_SMMU=y", "# CONFIG_ARM_SMMU is not set"))
    tree = live(**{"sys/class/iommu": Dir(), "sys/kernel/iommu_groups": Dir(), "sys/firmware/acpi/tables/IORT": b"",
                   f"boot/config-{REL}": cfg, "proc/modules": "sha2_ce 16384 0 - Live 0x0\n"})
    outcome = run("iommu.enabled", host(make_root, tree))
    assert outcome.status is Status.FAIL and "arm_smmu_v3" in outcome.message
    assert outcome.remediation.commands[0] == "modprobe arm_smmu_v3"


# -- cpu.baseline: x86 models on an arm64 host ----------------------------------------------------------


def test_x86_pool_model_on_arm64_fails_the_gate(make_root):
    policy = Policy(cpu_required_model="Haswell-noTSX", source="pool.toml")
    outcome = run("cpu.baseline", host(make_root, live()), policy)
    assert outcome.status is Status.FAIL  # a skip would let an arm64 host through an x86 pool's gate
    assert outcome.message.startswith("this host is arm64: the pool's model Haswell-noTSX is x86")
    # flags that happen to share a name (aes) do not make an arm64 host fit an x86 pool
    flags_only = run("cpu.baseline", host(make_root, live()), Policy(cpu_required_flags=("aes",), source="pool.toml"))
    assert flags_only.status is Status.FAIL


# -- swap.ksm: KSM merges the kernel's base pages -------------------------------------------------------


@pytest.mark.parametrize(("edits", "status"), [
    pytest.param((), Status.PASS, id="4k-pages"),
    # RHEL 8's arm64 kernel layout: 64 KiB base pages (the Debian config with the page size changed)
    pytest.param((("CONFIG_ARM64_PAGE_SHIFT=12", "CONFIG_ARM64_PAGE_SHIFT=16"),
                  ("CONFIG_ARM64_4K_PAGES=y", "CONFIG_ARM64_64K_PAGES=y")), Status.FAIL, id="64k-pages"),
])
def test_ksm_savings_use_the_base_page_size(make_root, edits, status):
    tree = trees.ksm_running(trees.live_tree(release=REL), pages_sharing=100000)  # 100000 pages merged
    tree["proc/cpuinfo"] = THUNDERX2
    tree[f"boot/config-{REL}"] = config(*edits)
    tree["proc/swaps"] = trees.swaps_text(("/swapfile", 1 << 20))  # 1 GiB of swap
    outcome = run("swap.ksm", host(make_root, tree))
    assert outcome.status is status
    if status is Status.FAIL:  # 100000 x 64 KiB saved
        assert outcome.message == "swap 1G < 6250M needed for what KSM saves (6250M x 1.0)"


# -- remedies ---------------------------------------------------------------------------------------------


def test_stock_kernel_per_architecture():
    debian = FixTarget(family="debian", installer="apt-get")
    assert "linux-image-arm64" in stock_kernel(debian, "arm64")[0]
    assert "linux-image-amd64" in stock_kernel(debian, "x86_64")[0]
    assert stock_kernel(debian, None) == stock_kernel(debian)  # unknown: as before
    assert stock_kernel(debian, "s390x") == ["# install your distribution's stock kernel, or rebuild this one "
                                             "with the option enabled"]
    rhel = FixTarget(family="rhel", installer="dnf")
    assert stock_kernel(rhel, "arm64") == stock_kernel(rhel, "x86_64")  # Red Hat's package is kernel everywhere


# -- the whole audit of an arm64 image ------------------------------------------------------------------


def test_no_x86_verdict_on_an_arm64_image(make_root):
    h = host(make_root, image(**{"boot/grub/grub.cfg": trees.debian12_grub_cfg()}))
    for check in CHECKS.values():
        outcome = run_check(check, h, DEFAULT_POLICY)
        assert outcome.status is not Status.ERROR, (check.id, outcome.message)
        if check.id.startswith(("kernel.", "iommu.", "cpu.", "crypto.", "kvm.")):
            assert outcome.status is not Status.FAIL, (check.id, outcome.message)
            no_x86(outcome)
