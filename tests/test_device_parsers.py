"""The pure parsers behind kvm.device_access: /etc/passwd and /etc/group (nss_files' rules),
libvirt's configuration syntax (virconf.c's rules) and udev rules, on real Debian 12 files
(tests/data/devices/README.md) and on strings."""

from __future__ import annotations

import pytest

from audit.errors import ParseError
from audit.parsers.accounts import Accounts, parse_group, parse_passwd
from audit.parsers.libvirtconf import parse_libvirt_conf
from audit.parsers.udev import Device, evaluate
from tests.conftest import DATA
from tests.workcount import count_work

DEV = DATA / "devices"
KVM = Device(name="kvm", subsystem="misc", devpath="/devices/virtual/misc/kvm")


# -- /etc/passwd, /etc/group -----------------------------------------------------------------------------


def test_debian_accounts_after_libvirts_postinst():
    acc = Accounts(parse_passwd((DEV / "debian12-libvirt-passwd").read_text()),
                   parse_group((DEV / "debian12-libvirt-group").read_text()))
    user = acc.user("libvirt-qemu")
    assert user is not None and (user.uid, user.gid, user.line) == (64055, 103, 20)
    assert sorted(acc.group_name(g) for g in acc.groups_of(user)) == ["kvm", "libvirt-qemu"]
    assert acc.group_name(103) == "kvm" and acc.user_name(0) == "root" and acc.group_name(4242) == "4242"
    assert not acc.compat and acc.passwd.skipped == acc.group.skipped == 0


def test_first_entry_wins_and_every_listing_counts():
    p = parse_passwd("a:x:1:1::/:/bin/sh\na:x:2:2::/:/bin/sh\nb:x:1:3::/:/bin/sh\n")
    assert p.by_name["a"].uid == 1 and p.by_uid[1].name == "a"  # getpwnam, getpwuid: the first
    g = parse_group("g:x:10:a\ng:x:11:a\nh:x:12: a , b,\n")
    assert g.by_name["g"].gid == 10
    assert g.member_of["a"] == (10, 11, 12) and g.member_of["b"] == (12,)  # getgrouplist reads them all


@pytest.mark.parametrize("line", [
    "short:x:1:1", "nouid:x::1::/:/bin/sh", "neg:x:-1:1::/:/bin/sh", "big:x:4294967295:1::/:/bin/sh",
    ":x:1:1::/:/bin/sh", "uni:x:\u0661:1::/:/bin/sh",
])
def test_lines_glibc_skips_are_counted_not_fatal(line):
    p = parse_passwd(f"{line}\nok:x:5:5::/:/bin/sh\n")
    assert list(p.by_name) == ["ok"] and p.skipped == 1


def test_comments_blanks_and_nis_compat():
    p = parse_passwd("# comment\n\n   \n  root:x:0:0:root:/root:/bin/bash\n+::::::\n")
    assert list(p.by_name) == ["root"] and p.compat and p.skipped == 0
    g = parse_group("kvm:x:103\n-bad\n")  # no member field at all is still a group
    assert g.by_name["kvm"].members == () and g.compat


def test_a_colon_in_the_shell_field_is_kept():
    assert parse_passwd("u:x:1:1:gecos:/h:/bin/sh:extra\n").by_name["u"].uid == 1


# -- libvirt's configuration syntax ----------------------------------------------------------------------


def test_debians_qemu_conf_sets_nothing():
    conf = parse_libvirt_conf((DEV / "debian12-qemu.conf").read_text())
    assert conf.entries == {} and conf.repeated == {}


def test_values_lists_comments_and_separators():
    text = ('user = "qemu" # a comment\n'
            "group='kvm'; dynamic_ownership = 0\n"
            "cgroup_device_acl = [\n    \"/dev/null\", \"/dev/kvm\",\n  [1, -2], ]\n"
            'nvram = """a\nb"""\n'
            "max_core = +5\n"
            'user = "second"\n')
    conf = parse_libvirt_conf(text)
    assert conf.get("user") == ("string", "qemu", 1)  # the first wins
    assert conf.repeated == {"user": 9}
    assert conf.get("group") == ("string", "kvm", 2) and conf.get("dynamic_ownership").value == 0
    acl = conf.get("cgroup_device_acl")
    assert acl.kind == "list" and acl.show() == '["/dev/null", "/dev/kvm", [1, -2]]' and acl.line == 3
    assert conf.get("nvram").value == "a\nb" and conf.get("max_core").value == 5


@pytest.mark.parametrize(("text", "problem", "line"), [
    ('user = "qemu\n', "unterminated string", 1),
    ("user = qemu\n", "expecting a value", 1),
    ('\n\nuser "qemu"\n', "expecting an assignment", 3),
    ('user = "a" group = "b"\n', "expecting a separator", 1),
    ("acl = [\"a\" \"b\"]\n", "expecting a separator in list", 1),
    ("acl = [\"a\",\n\"b\"\n", "list is not closed with ]", 3),
    ("acl = [\n# a comment\n]\n", "expecting a value", 2),  # no comments inside a list
    ("n = -\n", "unterminated number", 1),
    ("1user = 1\n", "expecting a name", 1),
    ("\n", "expecting a name", 2),  # libvirt refuses a file of blank lines too
    ('x = """never closed\n\n', "unterminated string", 3),
])
def test_what_libvirt_refuses_names_its_line(text, problem, line):
    with pytest.raises(ParseError) as err:
        parse_libvirt_conf(text)
    assert (err.value.problem, err.value.line) == (problem, line)


def test_nested_lists_need_no_recursion():
    depth = 50_000
    conf = parse_libvirt_conf("x = " + "[" * depth + "1" + "]" * depth + "\n")
    value, levels = conf.get("x"), 0
    while value.kind == "list":
        value, levels = value.value[0], levels + 1
    assert levels == depth and value.value == 1


def test_numbers_too_long_saturate():
    assert parse_libvirt_conf("n = " + "9" * 5000 + "\n").get("n").value == 1 << 63


def test_libvirt_conf_is_linear():
    def work(n: int) -> tuple[int, int]:
        text = "".join(f'key{i} = ["a", "b", {i}] # c\n#comment {i}\n' for i in range(n))
        _, calls, peak = count_work(lambda: parse_libvirt_conf(text))
        return calls, peak

    small, big = work(1_000), work(4_000)
    assert big[0] <= 5 * small[0] and big[1] <= 5 * small[1], (small, big)


# -- udev rules --------------------------------------------------------------------------------------------


def debian_rules() -> list[tuple[str, str]]:
    return [(f"/lib/udev/rules.d/{n}", (DEV / f"debian12-{n}").read_text())
            for n in ("50-udev-default.rules", "60-cdrom_id.rules", "70-uaccess.rules")]


def test_debian_rules_for_kvm_vhost_net_and_tun():
    perms = evaluate(debian_rules(), KVM)
    assert perms.group == ("kvm", "/lib/udev/rules.d/50-udev-default.rules:108")
    assert perms.mode == ("0660", "/lib/udev/rules.d/50-udev-default.rules:108")
    assert perms.owner is None and perms.undecided == () and perms.files == 3
    vhost = evaluate(debian_rules(), Device("vhost-net", "misc", "/devices/virtual/misc/vhost-net"))
    assert (vhost.group.value, vhost.mode.value) == ("kvm", "0660")
    tun = evaluate(debian_rules(), Device("tun", "misc", "/devices/virtual/misc/tun"))
    assert tun.group is None and tun.mode == ("0666", "/lib/udev/rules.d/50-udev-default.rules:103")


def test_undecidable_rules_are_reported_not_applied():
    files = [*debian_rules(),
             ("/etc/udev/rules.d/90-a.rules",
              'ENV{ID_X}=="1", GOTO="skip"\nKERNEL=="kvm", MODE="0600"\nLABEL="skip"\n'),
             ("/etc/udev/rules.d/91-b.rules", 'KERNEL=="kvm", GROUP="$env{G}"\nKERNEL=="kvm", MODE+="0777"\n'
                                              'KERNEL=="kvm" MODE="0644 this line cannot be parsed\n')]
    perms = evaluate(files, KVM)
    assert perms.mode == ("0600", "/etc/udev/rules.d/90-a.rules:2")  # applied, and flagged: the GOTO may skip it
    assert perms.group.value == "kvm"  # the substitution is not applied...
    assert [u.split(":")[0] + ":" + u.split(":")[1] for u in perms.undecided] == [
        "/etc/udev/rules.d/90-a.rules:2", "/etc/udev/rules.d/91-b.rules:1"]  # ...but reported; MODE+= is invalid


def test_a_decidable_mismatch_settles_an_undecidable_rule():
    perms = evaluate([("/x.rules", 'SUBSYSTEM=="block", ENV{DEVTYPE}=="disk", MODE="0600"\n')], KVM)
    assert perms.mode is None and perms.undecided == ()
