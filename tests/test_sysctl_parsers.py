"""sysctl.d parsing and boot-time precedence (systemd sysctl.d(5), procps ``sysctl --system``)."""

from __future__ import annotations

import pytest

from audit.errors import ParseError
from audit.parsers.sysctl import (
    SYSCTL_CONF,
    SYSCTL_DIRS,
    Provenance,
    SysctlFileError,
    SysctlSetting,
    effective_sysctl,
    lookup_sysctl,
    normalize_sysctl_key,
    parse_sysctl_conf,
    proc_sys_path,
    sysctl_file_order,
)

# --- one file -----------------------------------------------------------------------------------


def test_parse_comments_spaces_and_values_with_spaces():
    text = (
        "# comment\n"
        "; also a comment\n"
        "   # indented comment\n"
        "\n"
        "vm.nr_hugepages = 512\n"
        "kernel.core_pattern=|/usr/lib/systemd/systemd-coredump %P %u %g\n"
        "net.ipv4.ip_local_port_range =  32768    60999  \n"
        "kernel.domainname =\n"
    )
    assert parse_sysctl_conf(text) == [
        SysctlSetting(key="vm.nr_hugepages", value="512", line=5),
        SysctlSetting(key="kernel.core_pattern", value="|/usr/lib/systemd/systemd-coredump %P %u %g", line=6),
        SysctlSetting(key="net.ipv4.ip_local_port_range", value="32768    60999", line=7),
        SysctlSetting(key="kernel.domainname", value="", line=8),
    ]


def test_parse_slash_dot_and_ignore_errors_are_not_distinct_keys():
    """insights kept these as three distinct keys (reproduced)."""
    text = "vm.nr_hugepages = 1\nvm/nr_hugepages = 2\n-vm.nr_hugepages = 3\n"
    settings = parse_sysctl_conf(text)
    assert {s.key for s in settings} == {"vm.nr_hugepages"}
    assert [s.ignore_errors for s in settings] == [False, False, True]


@pytest.mark.parametrize(
    ("key", "normal"),
    [
        ("vm.nr_hugepages", "vm.nr_hugepages"),
        ("vm/nr_hugepages", "vm.nr_hugepages"),
        ("/vm/nr_hugepages", "vm.nr_hugepages"),
        ("net/ipv4/conf/enp3s0.200/forwarding", "net.ipv4.conf.enp3s0/200.forwarding"),
        ("net.ipv4.conf.enp3s0/200.forwarding", "net.ipv4.conf.enp3s0/200.forwarding"),
        ("kernel//domainname", "kernel.domainname"),
        ("net.ipv4.conf.*.rp_filter", "net.ipv4.conf.*.rp_filter"),
    ],
)
def test_normalize_sysctl_key(key, normal):
    assert normalize_sysctl_key(key) == normal


def test_proc_sys_path():
    assert proc_sys_path("vm.nr_hugepages") == "/proc/sys/vm/nr_hugepages"
    assert proc_sys_path("vm/nr_hugepages") == "/proc/sys/vm/nr_hugepages"
    assert proc_sys_path("net.ipv4.conf.enp3s0/200.forwarding") == "/proc/sys/net/ipv4/conf/enp3s0.200/forwarding"


def test_parse_globs_and_exclusions_are_kept():
    text = "net.ipv4.conf.*.rp_filter = 2\n-net.ipv4.conf.all.rp_filter\nnet.ipv4.conf.hub0.rp_filter = 1\n"
    glob, excluded, explicit = parse_sysctl_conf(text)
    assert glob.is_glob and glob.key == "net.ipv4.conf.*.rp_filter" and glob.value == "2"
    assert excluded == SysctlSetting(key="net.ipv4.conf.all.rp_filter", value=None, line=2, ignore_errors=True)
    assert not explicit.is_glob


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param("vm.a = 1\nvm.nr_hugepages 512\n", 2, id="no-equals"),
        pytest.param("= 512\n", 1, id="no-key"),
        pytest.param("vm.a = 1\n\n- = 1\n", 3, id="dash-only"),
        pytest.param("vm nr = 1\n", 1, id="space-in-key"),
        pytest.param("./ = 1\n", 1, id="separators-only"),
    ],
)
def test_parse_malformed_names_the_line(text, line):
    with pytest.raises(ParseError) as e:
        parse_sysctl_conf(text)
    assert e.value.line == line


# --- precedence ---------------------------------------------------------------------------------


def test_sysctl_dirs_priority_order():
    assert SYSCTL_DIRS[:4] == (
        "/etc/sysctl.d",
        "/run/sysctl.d",
        "/usr/local/lib/sysctl.d",
        "/usr/lib/sysctl.d",
    )
    assert "/lib/sysctl.d" in SYSCTL_DIRS
    assert SYSCTL_CONF == "/etc/sysctl.conf"


def test_later_basename_wins_across_directories():
    """insights applies /usr/lib before /etc: 99-z in /usr/lib must beat 10-a in /etc (reproduced)."""
    eff = effective_sysctl(
        {
            "/etc/sysctl.d/10-a.conf": "vm.nr_hugepages = 100\n",
            "/usr/lib/sysctl.d/99-z.conf": "# vendor\nvm.nr_hugepages = 200\n",
        }
    )
    assert eff["vm.nr_hugepages"] == Provenance(
        key="vm.nr_hugepages", value="200", path="/usr/lib/sysctl.d/99-z.conf", line=2
    )


def test_same_name_in_higher_directory_masks_the_lower_one():
    files = {
        "/usr/lib/sysctl.d/50-hugepages.conf": "vm.nr_hugepages = 1024\nvm.hugetlb_shm_group = 36\n",
        "/etc/sysctl.d/50-hugepages.conf": "vm.nr_hugepages = 64\n",
    }
    eff = effective_sysctl(files)
    assert eff["vm.nr_hugepages"].value == "64"
    assert "vm.hugetlb_shm_group" not in eff  # the whole vendor file is masked, not merged


def test_dev_null_mask_hides_the_vendor_file():
    eff = effective_sysctl(
        {
            "/usr/lib/sysctl.d/50-hugepages.conf": "vm.nr_hugepages = 1024\n",
            "/etc/sysctl.d/50-hugepages.conf": None,
        }
    )
    assert eff == {}


@pytest.mark.parametrize(
    ("upper", "lower"),
    [
        ("/etc/sysctl.d", "/run/sysctl.d"),
        ("/run/sysctl.d", "/usr/local/lib/sysctl.d"),
        ("/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d"),
        ("/usr/lib/sysctl.d", "/lib/sysctl.d"),
        ("/etc/sysctl.d", "/lib/sysctl.d"),
    ],
)
def test_directory_priority_for_same_name(upper, lower):
    eff = effective_sysctl({f"{lower}/x.conf": "vm.a = lower\n", f"{upper}/x.conf": "vm.a = upper\n"})
    assert eff["vm.a"].path == f"{upper}/x.conf"


def test_etc_sysctl_conf_is_applied_last():
    eff = effective_sysctl(
        {
            "/etc/sysctl.conf": "vm.swappiness = 10\n",
            "/etc/sysctl.d/zz-last.conf": "vm.swappiness = 60\nvm.overcommit_memory = 1\n",
        }
    )
    assert eff["vm.swappiness"].path == "/etc/sysctl.conf"
    assert eff["vm.overcommit_memory"].path == "/etc/sysctl.d/zz-last.conf"


def test_file_order_ignores_other_files_and_normalises_paths():
    paths = [
        "/etc/sysctl.conf",
        "/etc/sysctl.d/README",
        "/etc/sysctl.d/sub/10-x.conf",
        "/etc/sysctl.d/30-x.conf.rpmsave",
        "//usr/lib/sysctl.d//10-default.conf",
        "/run/sysctl.d/20-run.conf",
        "/opt/sysctl.d/00-elsewhere.conf",
        "/usr/lib/sysctl.d/20-run.conf",
    ]
    assert sysctl_file_order(paths) == [
        "//usr/lib/sysctl.d//10-default.conf",
        "/run/sysctl.d/20-run.conf",
        "/etc/sysctl.conf",
    ]


def test_later_line_in_one_file_wins():
    eff = effective_sysctl({"/etc/sysctl.d/a.conf": "vm.a = 1\nvm/a = 2\n"})
    assert (eff["vm.a"].value, eff["vm.a"].line) == ("2", 2)


def test_same_value_again_keeps_the_first_source():
    """systemd-sysctl keeps the existing option when a later file sets the same value."""
    eff = effective_sysctl({"/etc/sysctl.d/10-a.conf": "vm.a = 1\n", "/etc/sysctl.d/20-b.conf": "-vm.a = 1\n"})
    assert eff["vm.a"] == Provenance(key="vm.a", value="1", path="/etc/sysctl.d/10-a.conf", line=1, ignore_errors=True)


def test_malformed_file_is_named():
    files = {"/etc/sysctl.d/10-ok.conf": "vm.a = 1\n", "/usr/lib/sysctl.d/20-bad.conf": "vm.a = 1\nbroken\n"}
    with pytest.raises(SysctlFileError) as e:
        effective_sysctl(files)
    assert isinstance(e.value, ParseError)
    assert (e.value.path, e.value.line) == ("/usr/lib/sysctl.d/20-bad.conf", 2)
    assert "/usr/lib/sysctl.d/20-bad.conf:2" in str(e.value)


def test_masked_malformed_file_is_not_read():
    files = {"/usr/lib/sysctl.d/20-bad.conf": "broken\n", "/etc/sysctl.d/20-bad.conf": None}
    assert effective_sysctl(files) == {}


def test_no_files():
    assert effective_sysctl({}) == {}


# --- globs --------------------------------------------------------------------------------------


def test_lookup_explicit_beats_glob_and_exclusion_blocks_it():
    eff = effective_sysctl(
        {
            "/usr/lib/sysctl.d/50-default.conf": (
                "net.ipv4.conf.default.rp_filter = 2\nnet.ipv4.conf.*.rp_filter = 2\n-net.ipv4.conf.all.rp_filter\n"
            ),
            "/etc/sysctl.d/10-early.conf": "net.ipv4.conf.eth0.rp_filter = 0\n",
        }
    )
    eth0 = lookup_sysctl(eff, "net.ipv4.conf.eth0.rp_filter")
    assert eth0 is not None and eth0.value == "0"  # explicit, even though the glob came later
    eth1 = lookup_sysctl(eff, "net/ipv4/conf/eth1/rp_filter")
    assert eth1 is not None and (eth1.value, eth1.key) == ("2", "net.ipv4.conf.*.rp_filter")
    assert lookup_sysctl(eff, "net.ipv4.conf.all.rp_filter") is None  # excluded: kernel default
    assert lookup_sysctl(eff, "net.ipv4.conf.eth1.log_martians") is None
    assert lookup_sysctl(eff, "net.ipv4.conf.a.b.rp_filter") is None  # '*' does not span components


def test_lookup_last_glob_wins():
    eff = effective_sysctl({"/etc/sysctl.d/a.conf": "vm.*_hugepages = 1\nvm.nr_*pages = 2\n"})
    found = lookup_sysctl(eff, "vm.nr_hugepages")
    assert found is not None and found.value == "2"


def test_lookup_plain_key():
    eff = effective_sysctl({"/etc/sysctl.d/a.conf": "vm/nr_hugepages = 512\n"})
    found = lookup_sysctl(eff, "vm.nr_hugepages")
    assert found is not None and found.value == "512"
