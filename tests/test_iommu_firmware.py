"""iommu.enabled tells the firmware's part from the kernel's: the ACPI DMAR (Intel VT-d) or IVRS (AMD-Vi)
table under /sys/firmware/acpi/tables says the firmware describes an IOMMU. Without it the remedy is the
firmware setup; with it, the kernel command line."""

from __future__ import annotations

import pytest

from audit.capture import gather_patterns
from audit.engine import run_check
from audit.host.collect import collect_document, render_document
from audit.host.core import Host
from audit.host.snapshot import host_from_snapshot, parse_snapshot
from audit.model import Outcome, Status
from audit.policy import DEFAULT_POLICY
from checks.iommu import FIRMWARE_FIX, iommu_enabled
from tests import trees
from tests.conftest import Dir

INTEL = "intel-xeon-e5-2690v4-broadwell-ep.txt"
AMD = "amd-epyc-7451-zen1-naples.txt"
ALMA = "almalinux9-config-5.14.0-570.18.1.el9_6.x86_64"  # CONFIG_INTEL_IOMMU=y, not on by default
GROUPS = {"sys/kernel/iommu_groups/0/devices": Dir(), "sys/kernel/iommu_groups/1/devices": Dir()}
#: ACPI tables every x86 firmware has (this VM's /sys/firmware/acpi/tables: APIC DSDT FACP MCFG)
ACPI = {f"sys/firmware/acpi/tables/{t}": t.encode() for t in ("APIC", "DSDT", "FACP", "MCFG")}
FIRMWARE = "/sys/firmware/acpi/tables"


@pytest.fixture
def audit(make_root):
    def run(tree: dict) -> Outcome:
        return run_check(iommu_enabled, Host.from_root(str(make_root(tree))), DEFAULT_POLICY)

    return run


def firmware(outcome: Outcome) -> str:
    return next(e.observed for e in outcome.evidence if e.source == FIRMWARE)


def fix(outcome: Outcome) -> list[str]:
    assert outcome.remediation is not None
    return list(outcome.remediation.commands)


def intel(params: str = "", *tables: str) -> dict:
    tree = trees.debian12_live(params, cpuinfo=INTEL, kconfig=ALMA)
    tree.update(ACPI)
    tree.update({f"sys/firmware/acpi/tables/{t}": t.encode() for t in tables})
    return tree


def amd(params: str = "", *tables: str) -> dict:
    tree = trees.debian12_live(params, cpuinfo=AMD)
    tree.update(ACPI)
    tree.update({f"sys/firmware/acpi/tables/{t}": t.encode() for t in tables})
    return tree


def test_firmware_has_vtd_kernel_has_it_off_is_a_kernel_fix(audit):
    out = audit(intel("", "DMAR"))
    assert out.status is Status.FAIL
    assert out.message == "IOMMU not active (no intel_iommu=on (and the kernel does not enable it by default))"
    assert firmware(out) == "DMAR present: the firmware describes an IOMMU"
    assert FIRMWARE_FIX not in fix(out) and fix(out)[-1] == "update-grub"
    assert "intel_iommu=on" in " ".join(fix(out))
    assert out.remediation.notes.startswith("The firmware has the IOMMU")


def test_no_firmware_table_and_kernel_off_names_both_firmware_first(audit):
    out = audit(intel(""))
    assert out.status is Status.FAIL
    assert out.message == ("no IOMMU: the firmware has none (no DMAR/IVRS table) and the kernel has it off (no "
                           "intel_iommu=on (and the kernel does not enable it by default))")
    assert firmware(out) == "no DMAR table: the firmware describes no IOMMU (VT-d off in its setup, or absent)"
    commands = fix(out)
    assert commands[0] == FIRMWARE_FIX and commands[-1] == "update-grub"
    assert any("intel_iommu=on" in c for c in commands)


def test_next_boot_enables_it_but_firmware_has_none_is_not_a_pending_reboot(audit):
    tree = intel("")
    tree["boot/grub/grub.cfg"] = trees.debian12_grub_cfg("intel_iommu=on")
    out = audit(tree)
    assert out.status is Status.FAIL  # without the table a reboot alone changes nothing
    assert out.message.startswith("no IOMMU: the firmware has none (no DMAR/IVRS table); the next boot's command line")
    assert fix(out) == [FIRMWARE_FIX]


def test_next_boot_enables_it_and_firmware_has_it_is_a_pending_reboot(audit):
    tree = intel("", "DMAR")
    tree["boot/grub/grub.cfg"] = trees.debian12_grub_cfg("intel_iommu=on")
    out = audit(tree)
    assert out.status is Status.WARN and out.message.endswith("reboot pending")


def test_kernel_told_but_firmware_silent_keeps_its_message(audit):
    out = audit(intel("intel_iommu=on"))
    assert out.status is Status.FAIL
    assert out.message == "the kernel was told to enable the IOMMU but firmware provides no DMAR/IVRS table"
    assert fix(out) == [FIRMWARE_FIX]


def test_amd_reads_ivrs_not_dmar(audit):
    out = audit(amd("iommu=off", "DMAR"))  # a DMAR table says nothing about AMD-Vi
    assert out.status is Status.FAIL and out.message.startswith("no IOMMU: the firmware has none")
    assert firmware(out) == "no IVRS table: the firmware describes no IOMMU (AMD-Vi off in its setup, or absent)"
    out = audit(amd("iommu=off", "IVRS"))
    assert out.message == "IOMMU not active (iommu=off)"
    assert firmware(out) == "IVRS present: the firmware describes an IOMMU"


def test_active_iommu_passes_and_shows_the_table(audit):
    tree = intel("intel_iommu=on iommu=pt", "DMAR")
    tree.update(GROUPS)
    tree["sys/class/iommu/dmar0"] = Dir()
    out = audit(tree)
    assert out.status is Status.PASS and out.message == "IOMMU active (2 groups)"
    assert firmware(out) == "DMAR present: the firmware describes an IOMMU"


def test_vendor_unknown_accepts_either_table(audit):
    tree = intel("", "IVRS")
    tree["proc/cpuinfo"] = "processor\t: 0\nflags\t\t: fpu\n"  # no vendor_id
    out = audit(tree)
    assert firmware(out) == "IVRS present: the firmware describes an IOMMU"


def test_an_image_has_no_firmware_evidence(audit):
    out = audit(trees.debian12_tree())
    assert FIRMWARE not in [e.source for e in out.evidence]


def test_snapshot_round_trip_keeps_the_firmware_evidence(make_root):
    root = make_root(intel("", "DMAR"))
    doc = collect_document(str(root), gather_patterns(entry_points=False))
    snap = host_from_snapshot(parse_snapshot(render_document(doc).encode()), name="t.json")
    direct = run_check(iommu_enabled, Host.from_root(str(root)), DEFAULT_POLICY)
    again = run_check(iommu_enabled, snap, DEFAULT_POLICY)
    assert (again.status, again.message, again.evidence) == (direct.status, direct.message, direct.evidence)
