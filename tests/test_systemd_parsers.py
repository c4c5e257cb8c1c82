"""systemd and SysV persistence helpers: masks, enable links, .mount units, ksmtuned.conf."""

from __future__ import annotations

import pytest

from audit.errors import ParseError
from audit.parsers.mounts import hugetlbfs_page_size
from audit.parsers.systemd import (
    SYSV_RC_DIRS,
    UNIT_DIRS,
    MountUnit,
    UnitState,
    is_enabled,
    is_masked,
    mount_unit_name,
    parse_ksmtuned_conf,
    parse_mount_unit,
    parse_unit_file,
    sysv_enabled,
    unit_state,
    wanted_by,
)

MIB, GIB = 1024**2, 1024**3

# --- masks --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "link_dir", "masked"),
    [
        ("/dev/null", "/etc/systemd/system", True),
        ("/dev//null", "/etc/systemd/system", True),
        ("../../../dev/null", "/etc/systemd/system", True),
        ("../../../../../../dev/null", "/etc/systemd/system", True),  # '..' stops at the root
        ("../../dev/null", "/etc/systemd/system", False),  # that is /etc/dev/null
        ("../../dev/null", "/run/systemd", True),
        ("/usr/lib/systemd/system/ksm.service", "/etc/systemd/system", False),
        ("ksm.service", "/etc/systemd/system", False),
        ("/dev/null/x", "/etc/systemd/system", False),
        (None, "/etc/systemd/system", False),
    ],
)
def test_is_masked(target, link_dir, masked):
    assert is_masked(target, link_dir=link_dir) is masked


# --- unit state -------------------------------------------------------------------------------

VENDOR_WANTS = {"/usr/lib/systemd/system/sysinit.target.wants": ["dev-hugepages.mount", "systemd-journald.service"]}


def test_dev_hugepages_mount_vendor_linked_starts_at_boot():
    state = unit_state(
        "dev-hugepages.mount",
        unit_files={"/usr/lib/systemd/system/dev-hugepages.mount": None},
        wants_listing=VENDOR_WANTS,
    )
    assert state is UnitState.VENDOR
    assert state.starts_at_boot
    assert is_enabled("dev-hugepages.mount", VENDOR_WANTS)


@pytest.mark.parametrize("target", ["/dev/null", "../../../dev/null"])
def test_dev_hugepages_mount_masked_in_etc(target):
    """A /dev/null link in /etc beats the vendor unit and its vendor wants link.

    Field bug #35: the link is judged by its text, never resolved on the auditing machine.
    """
    state = unit_state(
        "dev-hugepages.mount",
        unit_files={
            "/etc/systemd/system/dev-hugepages.mount": target,
            "/usr/lib/systemd/system/dev-hugepages.mount": None,
        },
        wants_listing=VENDOR_WANTS,
    )
    assert state is UnitState.MASKED
    assert not state.starts_at_boot
    assert str(state) == "masked"


def test_relative_mask_and_runtime_mask():
    files = {"/etc/systemd/system/ksm.service": "../../../dev/null", "/usr/lib/systemd/system/ksm.service": None}
    assert unit_state("ksm.service", unit_files=files, wants_listing={}) is UnitState.MASKED
    files = {"/run/systemd/system/ksm.service": "/dev/null", "/usr/lib/systemd/system/ksm.service": None}
    assert unit_state("ksm.service", unit_files=files, wants_listing={}) is UnitState.MASKED_RUNTIME


def test_etc_copy_overrides_a_vendor_mask():
    files = {"/etc/systemd/system/ksm.service": None, "/usr/lib/systemd/system/ksm.service": "/dev/null"}
    assert unit_state("ksm.service", unit_files=files, wants_listing={}) is UnitState.DISABLED


@pytest.mark.parametrize(
    ("listing", "state"),
    [
        ({"/etc/systemd/system/multi-user.target.wants": ["ksm.service", "ksmtuned.service"]}, UnitState.ENABLED),
        ({"/etc/systemd/system/multi-user.target.requires": ["ksm.service"]}, UnitState.ENABLED),
        ({"/run/systemd/system/multi-user.target.wants": ["ksm.service"]}, UnitState.ENABLED_RUNTIME),
        ({"/usr/lib/systemd/system/multi-user.target.wants": ["ksm.service"]}, UnitState.VENDOR),
        ({"/etc/systemd/system/multi-user.target.wants": ["ksmtuned.service"]}, UnitState.DISABLED),
        ({"/etc/systemd/system/ksm.service.d": ["ksm.service"]}, UnitState.DISABLED),  # not a wants dir
        ({"/etc/multi-user.target.wants": ["ksm.service"]}, UnitState.DISABLED),  # not a unit dir
        ({}, UnitState.DISABLED),
    ],
)
def test_enable_links(listing, state):
    files = {"/usr/lib/systemd/system/ksm.service": None}
    assert unit_state("ksm.service", unit_files=files, wants_listing=listing) is state
    assert state.starts_at_boot is (state in (UnitState.ENABLED, UnitState.VENDOR))


def test_not_found_even_with_a_dangling_wants_link():
    listing = {"/etc/systemd/system/multi-user.target.wants": ["ksm.service"]}
    assert unit_state("ksm.service", unit_files={}, wants_listing=listing) is UnitState.NOT_FOUND


def test_wanted_by_gives_evidence():
    listing = {
        "/etc/systemd/system/multi-user.target.wants": ["ksmtuned.service"],
        "//etc/systemd/system//default.target.wants/": ["ksmtuned.service"],
        "/etc/systemd/system/timers.target.wants": ["x.timer"],
    }
    assert wanted_by("ksmtuned.service", listing) == [
        "/etc/systemd/system/multi-user.target.wants",
        "//etc/systemd/system//default.target.wants/",
    ]
    assert not is_enabled("ksm.service", listing)


def test_template_instances():
    files = {"/usr/lib/systemd/system/hugetlb-reserve@.service": None}
    listing = {"/etc/systemd/system/multi-user.target.wants": ["hugetlb-reserve@1G.service"]}
    assert unit_state("hugetlb-reserve@1G.service", unit_files=files, wants_listing=listing) is UnitState.ENABLED
    assert unit_state("hugetlb-reserve@2M.service", unit_files=files, wants_listing=listing) is UnitState.DISABLED
    assert is_enabled("hugetlb-reserve@.service", listing)  # some instance of the template is enabled
    masked = {**files, "/etc/systemd/system/hugetlb-reserve@.service": "/dev/null"}
    assert unit_state("hugetlb-reserve@1G.service", unit_files=masked, wants_listing=listing) is UnitState.MASKED


def test_unit_dirs_priority_order():
    assert UNIT_DIRS[0] == "/etc/systemd/system"
    assert UNIT_DIRS.index("/run/systemd/system") < UNIT_DIRS.index("/usr/lib/systemd/system")
    assert "/lib/systemd/system" in UNIT_DIRS


# --- SysV ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("listing", "enabled"),
    [
        ({"/etc/rc3.d": ["S20ksm", "S99local"]}, True),
        ({"/etc/rc.d/rc5.d": ["S84ksm"]}, True),  # Red Hat layout
        ({"/etc/rc2.d": ["K16ksm"], "/etc/rc3.d": ["K16ksm"]}, False),
        ({"/etc/rc1.d": ["S20ksm"], "/etc/rc6.d": ["S20ksm"]}, False),  # not multi-user runlevels
        ({"/etc/rc3.d": ["S85ksmtuned"]}, False),  # another service
        ({"/etc/rc3.d": ["Sksm"]}, False),
        ({}, False),
    ],
)
def test_sysv_enabled(listing, enabled):
    assert sysv_enabled("ksm", listing) is enabled
    assert sysv_enabled("ksm.service", listing) is enabled


def test_sysv_rc_dirs():
    assert "/etc/rc3.d" in SYSV_RC_DIRS and "/etc/rc.d/rc5.d" in SYSV_RC_DIRS
    assert not any("rc1.d" in d or "rc6.d" in d for d in SYSV_RC_DIRS)


# --- unit files ---------------------------------------------------------------------------------

DEV_HUGEPAGES = """\
#  This file is part of systemd.

[Unit]
Description=Huge Pages File System
Documentation=https://www.kernel.org/doc/Documentation/vm/hugetlbpage.txt
DefaultDependencies=no
Before=sysinit.target
ConditionPathExists=/sys/kernel/mm/hugepages
ConditionCapability=CAP_SYS_ADMIN

[Mount]
What=hugetlbfs
Where=/dev/hugepages
Type=hugetlbfs
"""


def test_parse_dev_hugepages_mount():
    unit = parse_mount_unit(DEV_HUGEPAGES)
    assert unit == MountUnit(what="hugetlbfs", where="/dev/hugepages", type="hugetlbfs", options=None)
    assert hugetlbfs_page_size(unit.option_map, 2 * MIB) == 2 * MIB  # no pagesize: the default


def test_parse_custom_1g_mount_unit_with_continuation_and_install():
    text = (
        "[Unit]\n"
        "Description=1G huge pages \\\n"
        "   for guests\n"
        "[Mount]\n"
        "; 1 GiB pages need a boot-time pool\n"
        "What = hugetlbfs\n"
        "Where=/dev/hugepages1G\n"
        "Type=hugetlbfs\n"
        "Options=pagesize=1G,mode=1770,gid=kvm\n"
        "[Install]\n"
        "WantedBy=local-fs.target \\\n"
        "# a comment inside a continued line is skipped\n"
        "  remote-fs.target\n"
        "RequiredBy=libvirtd.service\n"
    )
    unit = parse_mount_unit(text)
    assert unit.where == "/dev/hugepages1G"
    assert unit.what == "hugetlbfs"
    assert unit.options == "pagesize=1G,mode=1770,gid=kvm"
    assert unit.option_map == {"pagesize": "1G", "mode": "1770", "gid": "kvm"}
    assert hugetlbfs_page_size(unit.option_map, 2 * MIB) == GIB
    assert unit.wanted_by == ("local-fs.target", "remote-fs.target", "libvirtd.service")
    assert parse_unit_file(text)["Unit"]["Description"] == ["1G huge pages  for guests"]


def test_mount_unit_dropins_override_and_reset():
    dropin = "[Mount]\nOptions=pagesize=1G\n"
    assert parse_mount_unit(DEV_HUGEPAGES, dropin).options == "pagesize=1G"
    reset = "[Mount]\nOptions=\n[Install]\nWantedBy=\n"
    unit = parse_mount_unit("[Mount]\nOptions=pagesize=1G\n[Install]\nWantedBy=a.target\n", reset)
    assert unit.options is None and unit.option_map == {}
    assert unit.wanted_by == ()


def test_parse_unit_file_keeps_every_assignment():
    sections = parse_unit_file("[Unit]\nAfter=a.service\nAfter=b.service\n\n[Mount]\nWhat=x\n")
    assert sections == {"Unit": {"After": ["a.service", "b.service"]}, "Mount": {"What": ["x"]}}


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param("[Mount]\nWhat=hugetlbfs\nWhere /dev/hugepages\n", 3, id="missing-equals"),
        pytest.param("What=hugetlbfs\n[Mount]\n", 1, id="outside-section"),
        pytest.param("[Mount\nWhat=x\n", 1, id="bad-header"),
        pytest.param("[Mount]\nOptions=a,\\\n", 2, id="ends-in-continuation"),
    ],
)
def test_unit_file_malformed(text, line):
    with pytest.raises(ParseError) as e:
        parse_mount_unit(text)
    assert e.value.line == line


@pytest.mark.parametrize(
    ("where", "name"),
    [
        ("/dev/hugepages", "dev-hugepages.mount"),
        ("//dev//hugepages/", "dev-hugepages.mount"),
        ("/dev/hugepages1G", "dev-hugepages1G.mount"),
        ("/mnt/huge-1G", "mnt-huge\\x2d1G.mount"),
        ("/mnt/my disk", "mnt-my\\x20disk.mount"),
        ("/srv/.hidden", "srv-.hidden.mount"),
        ("/.hidden", "\\x2ehidden.mount"),
        ("/mnt/grün", "mnt-gr\\xc3\\xbcn.mount"),
        ("/", "-.mount"),
    ],
)
def test_mount_unit_name(where, name):
    assert mount_unit_name(where) == name


# --- ksmtuned.conf -----------------------------------------------------------------------------

KSMTUNED_DEFAULT = """\
# Configuration file for ksmtuned.

# How long ksmtuned should sleep between tuning adjustments
# KSM_MONITOR_INTERVAL=60

# Millisecond sleep between ksm scans for 16Gb server.
# KSM_SLEEP_MSEC=10

# KSM_NPAGES_BOOST=300
# KSM_THRES_COEF=20

# LOGFILE=/var/log/ksmtuned
# DEBUG=1
"""


def test_ksmtuned_default_is_all_comments():
    assert parse_ksmtuned_conf(KSMTUNED_DEFAULT) == {}


def test_ksmtuned_values():
    text = (
        "KSM_MONITOR_INTERVAL=60\n"
        "KSM_THRES_COEF=20   # percent of free memory\n"
        'LOGFILE="/var/log/ksm tuned.log"\n'
        "KSM_NPAGES_MIN='shmall'\n"
        "export DEBUG=1\n"
        "KSM_TAG=a#b\n"
        "KSM_EMPTY=\n"
        "KSM_MONITOR_INTERVAL=30\n"
    )
    assert parse_ksmtuned_conf(text) == {
        "KSM_MONITOR_INTERVAL": "30",
        "KSM_THRES_COEF": "20",
        "LOGFILE": "/var/log/ksm tuned.log",
        "KSM_NPAGES_MIN": "shmall",
        "DEBUG": "1",
        "KSM_TAG": "a#b",
        "KSM_EMPTY": "",
    }


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param("A=1\nnot an assignment\n", 2, id="no-equals"),
        pytest.param("A=1\n\n1BAD=2\n", 3, id="bad-name"),
        pytest.param('A="unterminated\n', 1, id="open-quote"),
        pytest.param("A=two words\n", 1, id="unquoted-space"),
        pytest.param("A= 1\n", 1, id="space-after-equals"),
    ],
)
def test_ksmtuned_malformed(text, line):
    with pytest.raises(ParseError) as e:
        parse_ksmtuned_conf(text)
    assert e.value.line == line
