"""Kernel, CPU, /dev/kvm and AES-NI checks on host trees built from the real samples."""

from __future__ import annotations

import os
import stat

import pytest

from audit.engine import run_check
from audit.host.core import Host
from audit.model import Status, TargetMode
from audit.plugins import make_plugins
from audit.policy import DEFAULT_POLICY
from tests.conftest import Link, cpuinfo_sample, kconfig_sample


def checks_by_id():
    from audit.engine import collect_checks

    declared, broken = collect_checks(make_plugins(entry_points=False))
    assert not broken
    return {d.check.id: d.check for d in declared}


CHECKS = checks_by_id()


def run(check_id: str, host: Host):
    return run_check(CHECKS[check_id], host, DEFAULT_POLICY)


# sample -> (cpu.virtualization, cpu.aes, cpu.avx)
CPU_EXPECT = {
    "amd-epyc-7451-zen1-naples.txt": ("pass", "pass", "pass"),
    "amd-epyc-9654-zen4-genoa.txt": ("pass", "pass", "pass"),
    "intel-xeon-e5-2650v2-ivybridge-ep.txt": ("pass", "pass", "pass"),
    "intel-xeon-e5-2680v3-haswell-ep.txt": ("pass", "pass", "pass"),
    "intel-xeon-e5-2690v4-broadwell-ep.txt": ("pass", "pass", "pass"),
    "intel-xeon-e5640-westmere-ep.txt": ("pass", "pass", "fail"),
    "intel-xeon-gold-6132-skylake-sp.txt": ("pass", "pass", "pass"),
    "intel-xeon-platinum-8480plus-sapphirerapids.txt": ("pass", "pass", "pass"),
    "intel-xeon-x7550-nehalem-ex.txt": ("pass", "fail", "fail"),
    "qemu-virtual-cpu-2.5-kvm-guest.txt": ("fail", "fail", "fail"),
    "this-vm.txt": ("fail", "pass", "pass"),
}


@pytest.mark.parametrize("sample", sorted(CPU_EXPECT))
def test_cpu_checks_on_every_sample(make_root, sample):
    host = Host.from_root(str(make_root({"proc/cpuinfo": cpuinfo_sample(sample)})))
    got = tuple(run(i, host).status.value for i in ("cpu.virtualization", "cpu.aes", "cpu.avx"))
    assert got == CPU_EXPECT[sample]
    for i in ("cpu.virtualization", "cpu.aes", "cpu.avx"):
        outcome = run(i, host)
        assert outcome.evidence[0].source == "/proc/cpuinfo"
        if outcome.status is Status.FAIL:
            assert outcome.remediation is not None


def test_guest_without_vmx_is_told_about_nested_virtualization(make_root):
    host = Host.from_root(str(make_root({"proc/cpuinfo": cpuinfo_sample("qemu-virtual-cpu-2.5-kvm-guest.txt")})))
    outcome = run("cpu.virtualization", host)
    assert "virtual machine" in outcome.message
    assert any("nested=1" in c for c in outcome.remediation.commands)


# sample -> (kernel.hugetlbfs, kernel.thp, kernel.ksm, kernel.kvm, kernel.aesni) in an image (CPU unknown)
KCONFIG_EXPECT = {
    "almalinux9-config-5.14.0-570.18.1.el9_6.x86_64": ("pass", "pass", "pass", "pass", "pass"),
    "debian12-config-6.1.0-56-amd64": ("pass", "pass", "pass", "pass", "pass"),
    "oraclelinux7-rhck-config-3.10.0-1160.119.1.0.5.el7.x86_64": ("pass", "pass", "pass", "pass", "pass"),
    "rhel6-config-2.6.32-696.el6.x86_64": ("pass", "pass", "pass", "pass", "pass"),
    "this-vm-config-6.18.44": ("pass", "pass", "pass", "warn", "fail"),
    "ubuntu2204-config-5.15.0-25-generic": ("pass", "pass", "pass", "pass", "pass"),
}
KERNEL_IDS = ("kernel.hugetlbfs", "kernel.thp", "kernel.ksm", "kernel.kvm", "kernel.aesni")


def _release(sample: str) -> str:
    return sample.split("config-", 1)[1]


@pytest.mark.parametrize("sample", sorted(KCONFIG_EXPECT))
def test_kernel_checks_on_every_config_in_an_image(make_root, sample):
    rel = _release(sample)
    root = make_root({f"boot/config-{rel}": kconfig_sample(sample), f"boot/vmlinuz-{rel}": "kernel"})
    host = Host.from_root(str(root))
    assert host.mode is TargetMode.IMAGE
    got = tuple(run(i, host).status.value for i in KERNEL_IDS)
    assert got == KCONFIG_EXPECT[sample]
    ev = run("kernel.hugetlbfs", host).evidence[0]
    assert ev.source.startswith(f"/boot/config-{rel}:")
    assert ev.observed == "CONFIG_HUGETLBFS=y"


def test_kvm_vendor_module_must_match_the_cpu(make_root):
    cfg = kconfig_sample("debian12-config-6.1.0-56-amd64").read_text()
    cfg = cfg.replace("CONFIG_KVM_AMD=m", "# CONFIG_KVM_AMD is not set")
    root = make_root({
        "proc/cpuinfo": cpuinfo_sample("amd-epyc-7451-zen1-naples.txt"),
        "proc/sys/kernel/osrelease": "6.1.0-56-amd64\n",
        "boot/config-6.1.0-56-amd64": cfg,
    })
    outcome = run("kernel.kvm", Host.from_root(str(root)))
    assert outcome.status is Status.FAIL
    assert "CONFIG_KVM_AMD" in outcome.message
    assert outcome.remediation.reboot_required


def test_missing_kernel_option_gets_an_honest_remedy(make_root):
    cfg = kconfig_sample("debian12-config-6.1.0-56-amd64").read_text()
    cfg = cfg.replace("CONFIG_KSM=y", "# CONFIG_KSM is not set")
    root = make_root({"boot/config-6.1.0-56-amd64": cfg, "etc/os-release": "ID=debian\n"})
    outcome = run("kernel.ksm", Host.from_root(str(root)))
    assert outcome.status is Status.FAIL
    # an image: installed into it, without starting anything there
    assert outcome.remediation.commands[0].startswith('[[ -e "$ROOT"/usr/sbin/policy-rc.d ]] || ')
    assert "chroot \"$ROOT\" apt-get install -y --no-install-recommends linux-image" in outcome.remediation.commands[1]


def test_image_runtime_checks_are_not_applicable(make_root):
    root = make_root({"boot/config-6.1.0-56-amd64": kconfig_sample("debian12-config-6.1.0-56-amd64")})
    host = Host.from_root(str(root))
    for check_id in ("cpu.virtualization", "cpu.aes", "cpu.avx", "kvm.device", "crypto.aesni"):
        outcome = run(check_id, host)
        assert outcome.status is Status.SKIP, check_id
        assert "unbooted image" in outcome.message


def test_no_kernel_config_skips_with_reason(make_root):
    host = Host.from_root(str(make_root({"boot/vmlinuz-6.1.0-9-amd64": "k"})))
    outcome = run("kernel.hugetlbfs", host)
    assert outcome.status is Status.SKIP
    assert "no kernel config for 6.1.0-9-amd64" in outcome.message


def test_malformed_kernel_config_is_an_error_naming_file_and_line(make_root):
    root = make_root({"boot/config-6.1.0-9-amd64": "CONFIG_KSM=y\n<html>oops</html>\n"})
    outcome = run("kernel.ksm", Host.from_root(str(root)))
    assert outcome.status is Status.ERROR
    assert outcome.message.startswith("/boot/config-6.1.0-9-amd64:2: ")


def test_kernel_release_of_an_image_follows_the_default_boot_link(make_root):
    root = make_root({
        "boot/vmlinuz-6.1.0-9-amd64": "k", "boot/vmlinuz-6.1.0-10-amd64": "k",
        "vmlinuz": Link("boot/vmlinuz-6.1.0-9-amd64"),
    })
    rel = Host.from_root(str(root)).kernel_release
    assert (rel.release, rel.how) == ("6.1.0-9-amd64", "default boot link")


def test_kernel_release_of_an_image_is_the_newest_by_version_order(make_root):
    root = make_root({"boot/vmlinuz-5.9.0-1": "k", "boot/vmlinuz-5.10.0-1": "k", "boot/config-5.4.0": "c"})
    assert Host.from_root(str(root)).kernel_release.release == "5.10.0-1"


def test_kernel_release_from_module_tree_when_boot_is_empty(make_root):
    root = make_root({"usr/lib/modules/6.8.5-301.fc40.x86_64/config": kconfig_sample("debian12-config-6.1.0-56-amd64")})
    host = Host.from_root(str(root))
    assert host.kernel_release.release == "6.8.5-301.fc40.x86_64"
    assert run("kernel.hugetlbfs", host).status is Status.PASS


def test_container_view_with_proc_uses_runtime_facts(make_root):
    root = make_root({
        "proc/cpuinfo": cpuinfo_sample("intel-xeon-e5-2680v3-haswell-ep.txt"),
        "proc/sys/kernel/osrelease": "3.10.0-1160.119.1.0.5.el7.x86_64\n",
        "boot/config-3.10.0-1160.119.1.0.5.el7.x86_64":
            kconfig_sample("oraclelinux7-rhck-config-3.10.0-1160.119.1.0.5.el7.x86_64"),
        "proc/crypto": "name         : aes\ndriver       : aes-aesni\nmodule       : aesni_intel\n",
    })
    host = Host.from_root(str(root))
    assert host.has_runtime
    assert run("kernel.kvm", host).status is Status.PASS
    assert run("crypto.aesni", host).status is Status.PASS
    assert run("kvm.device", host).status is Status.FAIL  # no /dev/kvm in this tree


AES_CPU = "intel-xeon-e5-2680v3-haswell-ep.txt"


@pytest.mark.parametrize(("files", "status"), [
    pytest.param({"proc/crypto": "name : ecb(aes)\ndriver : ecb-aes-aesni\nmodule : aesni_intel\n"},
                 "pass", id="crypto"),
    pytest.param({"proc/crypto": "name : aes\ndriver : aes-generic\nmodule : kernel\n",
                  "proc/modules": "aesni_intel 372736 0 - Live 0x0\n"}, "pass", id="module-loaded"),
    pytest.param({"proc/crypto": "name : aes\ndriver : aes-generic\nmodule : kernel\n",
                  "proc/modules": "kvm 1 0 - Live 0x0\n",
                  "lib/modules/6.1.0-56-amd64/modules.builtin": "kernel/arch/x86/crypto/aesni-intel.ko\n"},
                 "pass", id="builtin"),
    pytest.param({"proc/crypto": "name : aes\ndriver : aes-generic\nmodule : kernel\n",
                  "proc/modules": "kvm 1 0 - Live 0x0\n"}, "fail", id="not-loaded"),
])
def test_crypto_aesni(make_root, files, status):
    spec = {"proc/cpuinfo": cpuinfo_sample(AES_CPU), "proc/sys/kernel/osrelease": "6.1.0-56-amd64\n", **files}
    outcome = run("crypto.aesni", Host.from_root(str(make_root(spec))))
    assert outcome.status.value == status
    if status == "fail":
        assert outcome.remediation.commands[0] == "modprobe aesni_intel"


def test_crypto_aesni_skips_without_the_aes_flag(make_root):
    root = make_root({"proc/cpuinfo": cpuinfo_sample("intel-xeon-x7550-nehalem-ex.txt"), "proc/crypto": ""})
    outcome = run("crypto.aesni", Host.from_root(str(root)))
    assert outcome.status is Status.SKIP and "no aes flag" in outcome.message


def test_crypto_aesni_kernel_without_driver(make_root):
    root = make_root({
        "proc/cpuinfo": cpuinfo_sample("this-vm.txt"),
        "proc/sys/kernel/osrelease": "6.18.44\n",
        "boot/config-6.18.44": kconfig_sample("this-vm-config-6.18.44"),
        "proc/crypto": "name : aes\ndriver : aes-fixed-time\nmodule : kernel\n",
    })
    outcome = run("crypto.aesni", Host.from_root(str(root)))
    assert outcome.status is Status.FAIL and "built without it" in outcome.message


def test_dev_kvm_character_device(make_root):
    root = make_root({"proc/cpuinfo": cpuinfo_sample(AES_CPU), "dev/.keep": ""})
    try:
        os.mknod(root / "dev/kvm", 0o660 | stat.S_IFCHR, os.makedev(10, 232))
    except PermissionError:
        pytest.skip("creating a device node needs root (CI runs as root)")
    assert run("kvm.device", Host.from_root(str(root))).status is Status.PASS


def test_dev_kvm_regular_file_fails(make_root):
    root = make_root({"proc/cpuinfo": cpuinfo_sample(AES_CPU), "dev/kvm": "not a device"})
    outcome = run("kvm.device", Host.from_root(str(root)))
    assert outcome.status is Status.FAIL and "is a file" in outcome.message


def test_dev_kvm_symlink_to_auditing_machine_is_not_followed_out(make_root):
    root = make_root({"proc/cpuinfo": cpuinfo_sample(AES_CPU), "dev/kvm": Link("/dev/null")})
    assert run("kvm.device", Host.from_root(str(root))).status is Status.FAIL
