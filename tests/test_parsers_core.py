"""Pure parsers, tested on strings and on the real samples in tests/data/."""

from __future__ import annotations

import pytest

from audit.errors import ParseError
from audit.parsers.cmdline import parse_cmdline, repeated_params, tokenize, values
from audit.parsers.cpuinfo import parse_cpuinfo
from audit.parsers.kconfig import NOT_SET, parse_kconfig
from audit.parsers.modules import module_name, parse_modules_builtin, parse_proc_crypto, parse_proc_modules
from audit.parsers.osrelease import identify_os, parse_os_release
from audit.parsers.version import newest, version_key
from tests.conftest import cpuinfo_sample, kconfig_sample

# Ground truth from the fixtures README ("key facts", generated mechanically from the files).
CPUINFO_FACTS = {
    "amd-epyc-7451-zen1-naples.txt": ("AuthenticAMD", "AMD EPYC 7451 24-Core Processor", 2,
                                      "svm pdpe1gb avx avx2 xsave aes", "vmx avx512f hypervisor"),
    "amd-epyc-9654-zen4-genoa.txt": ("AuthenticAMD", "AMD EPYC 9654 96-Core Processor", 1,
                                     "svm pdpe1gb avx avx2 avx512f xsave aes", "vmx hypervisor"),
    "intel-xeon-e5-2650v2-ivybridge-ep.txt": ("GenuineIntel", "Intel(R) Xeon(R) CPU E5-2650 v2 @ 2.60GHz", 1,
                                              "vmx pdpe1gb avx xsave aes", "svm avx2 avx512f hypervisor"),
    "intel-xeon-e5-2680v3-haswell-ep.txt": ("GenuineIntel", "Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz", 1,
                                            "vmx pdpe1gb avx avx2 xsave aes", "svm avx512f hypervisor"),
    "intel-xeon-e5-2690v4-broadwell-ep.txt": ("GenuineIntel", "Intel(R) Xeon(R) CPU E5-2690 v4 @ 2.60GHz", 1,
                                              "vmx pdpe1gb avx avx2 xsave aes", "svm avx512f hypervisor"),
    "intel-xeon-e5640-westmere-ep.txt": ("GenuineIntel", "Intel(R) Xeon(R) CPU           E5640  @ 2.67GHz", 2,
                                         "vmx pdpe1gb aes", "svm avx avx2 avx512f xsave hypervisor"),
    "intel-xeon-gold-6132-skylake-sp.txt": ("GenuineIntel", "Intel(R) Xeon(R) Gold 6132 CPU @ 2.60GHz", 1,
                                            "vmx pdpe1gb avx avx2 avx512f xsave aes", "svm hypervisor"),
    "intel-xeon-platinum-8480plus-sapphirerapids.txt": ("GenuineIntel", "Intel(R) Xeon(R) Platinum 8480+", 1,
                                                        "vmx pdpe1gb avx avx2 avx512f xsave aes", "svm hypervisor"),
    "intel-xeon-x7550-nehalem-ex.txt": ("GenuineIntel", "Intel(R) Xeon(R) CPU           X7550  @ 2.00GHz", 2,
                                        "vmx", "svm pdpe1gb avx avx2 avx512f xsave aes hypervisor"),
    "qemu-virtual-cpu-2.5-kvm-guest.txt": ("GenuineIntel", "QEMU Virtual CPU version 2.5+", 2,
                                           "hypervisor", "vmx svm pdpe1gb avx avx2 avx512f xsave aes"),
    "this-vm.txt": ("GenuineIntel", "Intel(R) Xeon(R) Processor", 2,
                    "pdpe1gb avx avx2 avx512f xsave aes hypervisor", "vmx svm"),
}


@pytest.mark.parametrize("name", sorted(CPUINFO_FACTS))
def test_cpuinfo_samples(name):
    vendor, model, procs, has, lacks = CPUINFO_FACTS[name]
    cpu = parse_cpuinfo(cpuinfo_sample(name).read_text())
    assert cpu.vendor == vendor
    assert cpu.model_name == model
    assert cpu.processors == procs
    assert set(has.split()) <= cpu.flags
    assert not set(lacks.split()) & cpu.flags


def test_cpuinfo_vmx_flags_line_is_not_the_flags_line():
    cpu = parse_cpuinfo(cpuinfo_sample("intel-xeon-platinum-8480plus-sapphirerapids.txt").read_text())
    assert "preemption_timer" not in cpu.flags  # that word is only on the "vmx flags" line


def test_cpuinfo_flags_are_the_intersection_over_processors():
    # field note #28: a host with one processor lacking a flag must not claim it
    text = "processor\t: 0\nflags\t\t: fpu vmx aes\n\nprocessor\t: 1\nflags\t\t: fpu vmx\n"
    cpu = parse_cpuinfo(text)
    assert cpu.flags == {"fpu", "vmx"}
    assert cpu.flags_differ


def test_cpuinfo_tolerates_lines_without_colon_and_spaces():
    cpu = parse_cpuinfo("processor : 0\ngarbage line\nvendor_id : AuthenticAMD\nflags : svm aes\n")
    assert cpu.vendor_kind == "amd"
    assert cpu.flags == {"svm", "aes"}


def test_cpuinfo_arm_features_and_s390x():
    arm = parse_cpuinfo("processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd aes pmull\nCPU implementer\t: 0x41\n")
    assert "aes" in arm.flags and arm.vendor is None
    s390 = parse_cpuinfo(
        "vendor_id       : IBM/S390\n# processors    : 2\nfeatures\t: esan3 zarch stfle msa ldisp eimm dfp sie\n\n"
        "processor 0: version = FF,  identification = 0133E8,  machine = 2964\n"
    )
    assert "sie" in s390.flags


def test_cpuinfo_empty_is_a_parse_error():
    with pytest.raises(ParseError):
        parse_cpuinfo("\n\n")


KCONFIG_FACTS = {
    "almalinux9-config-5.14.0-570.18.1.el9_6.x86_64": ("5.14.0-570.18.1.el9_6.x86_64", "y", "m", "y"),
    "debian12-config-6.1.0-56-amd64": ("6.1.192", "y", "m", "m"),
    "oraclelinux7-rhck-config-3.10.0-1160.119.1.0.5.el7.x86_64": ("3.10.0-1160.119.1.0.5.el7.x86_64", "y", "m", "m"),
    "rhel6-config-2.6.32-696.el6.x86_64": ("2.6.32", "y", "m", "m"),
    "this-vm-config-6.18.44": ("6.18.44", "y", NOT_SET, NOT_SET),
    "ubuntu2204-config-5.15.0-25-generic": ("5.15.0-25-generic", "y", "m", "m"),
}


@pytest.mark.parametrize("name", sorted(KCONFIG_FACTS))
def test_kconfig_samples(name):
    version, hugetlbfs, kvm_intel, aesni = KCONFIG_FACTS[name]
    cfg = parse_kconfig(kconfig_sample(name).read_text())
    assert cfg.version == version
    assert cfg.get("HUGETLBFS") == hugetlbfs
    assert cfg.get("CONFIG_KVM_INTEL") == kvm_intel
    assert cfg.get("CRYPTO_AES_NI_INTEL") == aesni
    assert cfg.get("CONFIG_DOES_NOT_EXIST") is None


def test_kconfig_values_strings_numbers_and_unset():
    cfg = parse_kconfig('CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="str ing"\nCONFIG_D=0x10\nCONFIG_E=1024\n')
    assert cfg.options == {"CONFIG_A": "y", "CONFIG_B": NOT_SET, "CONFIG_C": "str ing", "CONFIG_D": "0x10",
                           "CONFIG_E": "1024"}
    assert cfg.describe("B") == "# CONFIG_B is not set"
    assert cfg.describe("Z") == "CONFIG_Z absent (unknown to this kernel)"
    assert cfg.lines["CONFIG_C"] == 3


def test_kconfig_malformed_line_names_the_line():
    with pytest.raises(ParseError) as exc:
        parse_kconfig("CONFIG_A=y\nthis is not kconfig\n")
    assert exc.value.line == 2


def test_kconfig_rejects_non_config_text():
    with pytest.raises(ParseError):
        parse_kconfig("# just a comment\n")


def test_cmdline_last_value_wins():
    assert parse_cmdline('a=1 quiet a=2 x="y z"') == {"a": "2", "quiet": "", "x": "y z"}


def test_cmdline_stops_at_double_dash_and_folds_dashes():
    params = tokenize('BOOT_IMAGE=(hd0,gpt2)/vmlinuz root=LABEL=/1 intel-iommu=on -- init-arg hugepages=9')
    assert [p.key for p in params] == ["BOOT_IMAGE", "root", "intel_iommu"]
    assert params[1].value == "LABEL=/1"
    assert values(params, "intel_iommu") == ["on"]


def test_cmdline_keeps_order_and_repeats():
    params = tokenize("hugepagesz=1G hugepages=4 hugepagesz=2M hugepages=512 #rhgb")
    assert [(p.name, p.value) for p in params] == [
        ("hugepagesz", "1G"), ("hugepages", "4"), ("hugepagesz", "2M"), ("hugepages", "512"), ("#rhgb", None)]


def test_cmdline_live_sample_shape():
    params = tokenize("console=ttyS0 quiet nomodule rdinit=/process_api -- --firecracker-init --addr 0.0.0.0:2024")
    assert parse_cmdline("console=ttyS0 quiet nomodule rdinit=/x -- --a") == {
        "console": "ttyS0", "quiet": "", "nomodule": "", "rdinit": "/x"}
    assert params[-1].name == "rdinit"


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param('ID=fedora\nVERSION_ID=40\n', {"ID": "fedora", "VERSION_ID": "40"}, id="unquoted"),
    pytest.param('ID="rhel"\nID_LIKE="fedora"\n', {"ID": "rhel", "ID_LIKE": "fedora"}, id="double"),
    pytest.param("ID='fedora-coreos'\n", {"ID": "fedora-coreos"}, id="single"),
    pytest.param('PRETTY_NAME="A \\"quoted\\" name"\n', {"PRETTY_NAME": 'A "quoted" name'}, id="escaped"),
    pytest.param('NAME="Linux # not a comment"\n', {"NAME": "Linux # not a comment"}, id="hash-in-value"),
    pytest.param('# comment\n\nBROKEN LINE\nID=debian', {"ID": "debian"}, id="junk-and-no-newline"),
])
def test_os_release_variants(text, expected):
    assert parse_os_release(text).values == expected


def test_os_release_family():
    assert parse_os_release('ID=rocky\nID_LIKE="rhel centos fedora"\n').family() == "rhel"
    assert parse_os_release("ID=ubuntu\nID_LIKE=debian\n").family() == "debian"
    assert parse_os_release("ID=arch\n").family() is None


def test_modules():
    text = "kvm_intel 380928 0 - Live 0x0000000000000000\nkvm 1146880 1 kvm_intel, Live 0x0\n"
    assert parse_proc_modules(text) == {"kvm_intel", "kvm"}
    assert module_name("kernel/arch/x86/kvm/kvm-intel.ko.zst") == "kvm_intel"
    assert parse_modules_builtin("kernel/arch/x86/crypto/aesni-intel.ko\nkernel/fs/ext4/ext4.ko\n") == {
        "aesni_intel", "ext4"}
    with pytest.raises(ParseError):
        parse_proc_modules("lonely\n")


def test_proc_crypto():
    text = ("name         : __xts(aes)\ndriver       : __xts-aes-aesni\nmodule       : aesni_intel\n"
            "priority     : 401\n\nname         : aes\ndriver       : aes-generic\nmodule       : kernel\n")
    algs = parse_proc_crypto(text)
    assert [(a.driver, a.module) for a in algs] == [("__xts-aes-aesni", "aesni_intel"), ("aes-generic", "kernel")]


def test_version_order():
    assert newest(["5.10.0-9-amd64", "5.9.1", "4.19.0-10-amd64"]) == "5.10.0-9-amd64"
    assert sorted(["6.1.0-1", "6.1.0", "6.1.0-rc1"], key=version_key) == ["6.1.0-rc1", "6.1.0", "6.1.0-1"]
    assert newest(["3.10.0-1160.el7.x86_64", "3.10.0-957.el7.x86_64"]) == "3.10.0-1160.el7.x86_64"


@pytest.mark.parametrize(("line", "expected"), [
    pytest.param("transparent_hugepage=never quiet transparent-hugepage=madvise",
                 [("transparent_hugepage", ["never", "madvise"])], id="dash-and-underscore-are-one-name"),
    pytest.param("isolcpus=2-3 isolcpus=4-7 mitigations=off", [("isolcpus", ["2-3", "4-7"])], id="last-wins"),
    pytest.param("quiet quiet iommu=pt iommu=pt", [], id="same-value-twice-is-harmless"),
    pytest.param("console=tty0 console=ttyS0,115200 memmap=64M$0x1000000 memmap=1G!4G", [], id="repeatable"),
    pytest.param("rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap ip=eth0:dhcp ip=eth1:dhcp", [], id="dracut"),
    pytest.param("intel_iommu=on intel_iommu=igfx_off hugepagesz=1G hugepages=4 hugepagesz=2M hugepages=512", [],
                 id="option-lists-and-huge-page-pairs"),
])
def test_repeated_parameters_the_kernel_overrides(line, expected):
    assert repeated_params(tokenize(line)) == expected


# Identification files of hosts without os-release, as the distributions ship them: Ubuntu 22.04's
# /etc/lsb-release (base-files 12ubuntu4), Rocky 8.9's rocky-release and system-release-cpe
# (rocky-release 8.9-1.6), Amazon Linux 2's system-release and its CPE 2.3 name (system-release 2-15).
UBUNTU_LSB = ('DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\nDISTRIB_CODENAME=jammy\n'
              'DISTRIB_DESCRIPTION="Ubuntu 22.04.4 LTS"\n')


@pytest.mark.parametrize(("files", "name", "family", "source"), [
    pytest.param({"/etc/lsb-release": UBUNTU_LSB, "/etc/debian_version": "bookworm/sid\n"},
                 "Ubuntu 22.04.4 LTS", "debian", "/etc/lsb-release", id="ubuntu-not-debian-sid"),
    pytest.param({"/etc/rocky-release": "Rocky Linux release 8.9 (Green Obsidian)\n",
                  "/etc/redhat-release": "Rocky Linux release 8.9 (Green Obsidian)\n",
                  "/etc/system-release-cpe": "cpe:/o:rocky:rocky:8:GA\n"},
                 "Rocky Linux release 8.9 (Green Obsidian)", "rhel", "/etc/rocky-release", id="rocky"),
    pytest.param({"/etc/system-release": "Amazon Linux release 2 (Karoo)\n",
                  "/etc/system-release-cpe": "cpe:2.3:o:amazon:amazon_linux:2\n"},
                 "Amazon Linux release 2 (Karoo)", "rhel", "/etc/system-release", id="amazon-linux-2"),
    pytest.param({"/etc/system-release-cpe": "cpe:/o:redhat:enterprise_linux:7.9:ga:server\n"},
                 None, "rhel", "/etc/system-release-cpe", id="cpe-only"),
    pytest.param({"/etc/redhat-release": "CentOS release 6.10 (Final)\n"},
                 "CentOS release 6.10 (Final)", "rhel", "/etc/redhat-release", id="el6"),
    pytest.param({"/etc/debian_version": "12.5\n"}, "Debian 12.5", "debian", "/etc/debian_version", id="debian"),
])
def test_identify_os_without_os_release(files, name, family, source):
    ident = identify_os(files.get)
    assert ident is not None and (ident.name, ident.family, ident.source) == (name, family, source)


def test_identify_os_knows_nothing_without_any_file():
    assert identify_os({}.get) is None
