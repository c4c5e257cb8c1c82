"""Which architecture a host or image is, from real files: Debian 12's arm64 and amd64 kernel
packages (linux-image-6.1.0-47-{arm64,amd64} 6.1.170-3: their config and the first 4 KiB of their
vmlinuz, tests/data/kernel-images/), the x86 kernel configs and cpuinfo samples in tests/data."""

from __future__ import annotations

import gzip
import struct

import pytest

from audit.host.arch import ARM64, I386, X86_64, arch_from_image, architecture
from audit.host.core import Host
from tests.conftest import DATA, cpuinfo_sample, kconfig_sample

ARM64_HEAD = (DATA / "kernel-images" / "debian12-vmlinuz-6.1.0-47-arm64.head").read_bytes()
AMD64_HEAD = (DATA / "kernel-images" / "debian12-vmlinuz-6.1.0-47-amd64.head").read_bytes()


def test_image_headers_of_real_kernels() -> None:
    assert arch_from_image(ARM64_HEAD) == ARM64  # a signed PE Image: "ARM\x64" at 0x38
    assert arch_from_image(AMD64_HEAD) == X86_64  # a bzImage with an EFI stub: "HdrS" at 0x202


def test_gzip_compressed_arm64_image() -> None:
    # Ubuntu and older Debian ship arm64 vmlinuz as a gzip-compressed Image: read after gunzip
    assert arch_from_image(gzip.compress(ARM64_HEAD)) == ARM64


def test_efi_zboot_pe_machine() -> None:
    # An EFI zboot image (drivers/firmware/efi/libstub/zboot-header.S): "MZ", "zimg" at 4, the PE
    # header offset at 0x3c, and a compressed payload; only the PE Machine field says the arch.
    head = bytearray(512)
    head[0:2] = b"MZ"
    head[4:8] = b"zimg"
    struct.pack_into("<I", head, 0x3C, 0x40)
    head[0x40:0x44] = b"PE\0\0"
    struct.pack_into("<H", head, 0x44, 0xAA64)
    assert arch_from_image(bytes(head)) == ARM64
    struct.pack_into("<H", head, 0x44, 0x8664)
    assert arch_from_image(bytes(head)) == X86_64


@pytest.mark.parametrize("data", [b"", b"MZ", b"\x1f\x8b\x08garbage", b"\0" * 4096, b"MZ" + b"\xff" * 100])
def test_unrecognised_images_say_nothing(data: bytes) -> None:
    assert arch_from_image(data) is None


def test_bzimage_without_pe_stub_uses_xloadflags() -> None:
    head = bytearray(AMD64_HEAD)
    head[0:2] = b"\0\0"  # no MZ: a plain bzImage (before EFI stubs)
    assert arch_from_image(bytes(head)) == X86_64
    struct.pack_into("<H", head, 0x236, 0)  # XLF_KERNEL_64 clear: a 32-bit kernel
    assert arch_from_image(bytes(head)) == I386


def _image(make_root, release: str, **files: object) -> Host:  # type: ignore[no-untyped-def]
    tree: dict[str, object] = {f"lib/modules/{release}/modules.order": "", **files}
    return Host.from_root(str(make_root(tree)))


def test_arm64_image_by_its_kernel_config(make_root) -> None:  # type: ignore[no-untyped-def]
    rel = "6.1.0-47-arm64"
    host = _image(make_root, rel, **{f"boot/config-{rel}": kconfig_sample("debian12-config-6.1.0-47-arm64")})
    found = host.fact(architecture)
    assert (found.name, found.how, found.source) == (ARM64, "CONFIG_ARM64=y", f"/boot/config-{rel}")


@pytest.mark.parametrize("sample", ["debian12-config-6.1.0-56-amd64", "almalinux9-config-5.14.0-570.18.1.el9_6.x86_64",
                                    "rhel6-config-2.6.32-696.el6.x86_64", "ubuntu2204-config-5.15.0-25-generic"])
def test_x86_64_images_by_their_kernel_config(make_root, sample: str) -> None:  # type: ignore[no-untyped-def]
    rel = "5.15.0-25-generic"
    host = _image(make_root, rel, **{f"boot/config-{rel}": kconfig_sample(sample)})
    assert host.fact(architecture).name == X86_64


def test_release_suffix_then_image_then_dpkg(make_root) -> None:  # type: ignore[no-untyped-def]
    assert _image(make_root, "5.14.0-570.el9_6.aarch64").fact(architecture).how == "kernel release suffix"
    assert _image(make_root, "5.14.0-570.el9_6.aarch64").fact(architecture).name == ARM64
    # a custom release name says nothing: the kernel image does
    rel = "6.6.31+rpt-rpi-v8"
    host = _image(make_root, rel, **{f"boot/vmlinuz-{rel}": gzip.compress(ARM64_HEAD)})
    assert (host.fact(architecture).name, host.fact(architecture).how) == (ARM64, "kernel image header")
    status = (f"Package: linux-image-{rel}\nStatus: install ok installed\nArchitecture: arm64\n"
              "Version: 1:6.6.31-1+rpt1\n\nPackage: dpkg\nStatus: install ok installed\nArchitecture: arm64\n")
    host = _image(make_root, rel, **{"var/lib/dpkg/status": status})
    assert (host.fact(architecture).name, host.fact(architecture).source) == (ARM64, "/var/lib/dpkg/status")


def test_live_cpuinfo_wins(make_root) -> None:  # type: ignore[no-untyped-def]
    tree = {"proc/cpuinfo": cpuinfo_sample("intel-xeon-e5-2690v4-broadwell-ep.txt"),
            "proc/sys/kernel/osrelease": "6.1.0-47-arm64\n"}
    host = Host.from_root(str(make_root(tree)))
    assert host.fact(architecture).name == X86_64
    assert host.fact(architecture).how == "cpuinfo"


def test_nothing_says(make_root) -> None:  # type: ignore[no-untyped-def]
    from audit.errors import FactUnavailable

    host = _image(make_root, "6.6.31-custom")
    with pytest.raises(FactUnavailable, match="architecture unknown"):
        host.fact(architecture)


def test_check_for_another_arch_is_not_applicable_and_does_not_count(make_root) -> None:  # type: ignore[no-untyped-def]
    from audit.engine import run_check
    from audit.model import Gate, Result, Severity, Status, Verdict, check, passed
    from audit.policy import Policy

    @check("demo.x86only", title="x86 only", severity=Severity.HIGH, arches=[X86_64])
    def demo(host, policy):  # type: ignore[no-untyped-def]
        return passed("ran")

    rel = "6.1.0-47-arm64"
    host = _image(make_root, rel, **{f"boot/config-{rel}": kconfig_sample("debian12-config-6.1.0-47-arm64")})
    outcome = run_check(demo, host, Policy())
    assert outcome.status is Status.SKIP and outcome.not_applicable
    assert outcome.message == "not applicable on arm64: demo.x86only applies to x86_64"
    judged = Gate(required=("demo.*",)).judge(Result(check=demo, outcome=outcome, plugin="t"))
    assert judged.verdict is Verdict.SKIPPED and not judged.counts
    assert judged.note == "required, but not applicable here"
    # where the architecture is unknown the check runs (and says what it can)
    assert run_check(demo, _image(make_root, "6.6.31-custom"), Policy()).status is Status.PASS
