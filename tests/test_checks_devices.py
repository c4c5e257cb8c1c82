"""kvm.device_access, kvm.vhost_net and kvm.tun (issue #13, parity with virt-host-validate) on real
trees: Debian 12's qemu.conf, udev rules, /etc/passwd and /etc/group (tests/data/devices/README.md),
with real character device nodes made by mknod (root only: CI runs as root; elsewhere the tests that
need a node are skipped and say why).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from audit.engine import collect_checks, run_audit, run_check
from audit.host.collect import Patterns, collect_document, render_document, render_script
from audit.host.core import Host
from audit.host.devices import DEV_KVM, KVM_DEVICE, udev_kvm_perms
from audit.host.registry import FACTS
from audit.host.snapshot import host_from_snapshot, parse_snapshot
from audit.model import Status, replace
from audit.plugins import make_plugins
from audit.policy import DEFAULT_POLICY, Policy
from tests import trees
from tests.conftest import DATA, Dir, Link, kconfig_sample
from tests.workcount import count_work

DEV = DATA / "devices"
QEMU_CONF = DEV / "debian12-qemu.conf"
PASSWD = DEV / "debian12-libvirt-passwd"
GROUP = DEV / "debian12-libvirt-group"
RULES = {name: DEV / f"debian12-{name}" for name in ("50-udev-default.rules", "60-cdrom_id.rules",
                                                      "70-uaccess.rules")}
#: Debian 12's libvirt-qemu user as the package's postinst makes it (primary group kvm, 103)
LIBVIRT_QEMU = "libvirt-qemu:x:64055:103:Libvirt Qemu,,,:/var/lib/libvirt:/usr/sbin/nologin\n"
KVM_GID, RENDER_GID, LIBVIRT_QEMU_UID = 103, 104, 64055
RULE_FILE = "/etc/udev/rules.d/99-hostaudit-kvm.rules"

PLUGINS = make_plugins(builtins=("checks.devices",), entry_points=False)
DECLARED, BROKEN = collect_checks(PLUGINS)
CHECKS = {d.check.id: d.check for d in DECLARED}


def run(check_id: str, host: Host, policy: Policy = DEFAULT_POLICY):
    return run_check(CHECKS[check_id], host, policy)


def said(outcome) -> str:
    parts = [outcome.message, *(f"{e.source} {e.observed} {e.expected}" for e in outcome.evidence)]
    if outcome.remediation:
        parts += [*outcome.remediation.commands, outcome.remediation.notes]
    return "\n".join(parts)


def fix(outcome) -> list[str]:
    return list(outcome.remediation.commands) if outcome.remediation else []


def libvirt_files(**extra: object) -> dict[str, object]:
    """Debian 12 with libvirt-daemon-system installed: qemu.conf, the accounts, udev's rules."""
    tree: dict[str, object] = {
        "etc/libvirt/qemu.conf": QEMU_CONF,
        "etc/passwd": PASSWD,
        "etc/group": GROUP,
        **{f"lib/udev/rules.d/{n}": p for n, p in RULES.items()},
    }
    tree.update(extra)
    return tree


def image(**extra: object) -> dict[str, object]:
    return {**trees.debian12_tree(), **libvirt_files(**extra)}


def live(**extra: object) -> dict[str, object]:
    return {**trees.debian12_live(), "dev": Dir(), **libvirt_files(**extra)}


def node(root: Path, rel: str, mode: int, uid: int = 0, gid: int = 0, minor: int = 232) -> None:
    """A real character device node (misc major 10) with this mode and owner."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mknod(path, stat.S_IFCHR | mode, os.makedev(10, minor))
    except PermissionError:
        pytest.skip("creating a device node needs root (CI runs as root)")
    os.chown(path, uid, gid)
    os.chmod(path, mode)  # mknod's mode passes through the umask, and chown clears setgid


def kvm_host(make_root, mode: int = 0o660, uid: int = 0, gid: int = KVM_GID, **extra: object) -> Host:
    root = make_root(live(**extra))
    node(root, "dev/kvm", mode, uid, gid)
    return Host.from_root(str(root))


def with_line(path: Path, old: str, new: str) -> str:
    """``path``'s text with one line replaced (the line must be there)."""
    text = path.read_text()
    assert f"\n{old}\n" in text, old
    return text.replace(f"\n{old}\n", f"\n{new}\n")


def conf_with(*lines: str) -> str:
    """Debian's qemu.conf with settings appended, as an administrator adds them."""
    return QEMU_CONF.read_text() + "".join(f"{line}\n" for line in lines)


def test_the_plugin_declares_three_checks():
    assert not BROKEN and not PLUGINS.problems
    assert set(CHECKS) == {"kvm.device_access", "kvm.vhost_net", "kvm.tun"}
    for c in CHECKS.values():
        assert c.rationale and c.example_fix and not c.runtime_only


def test_every_path_read_is_declared_for_snapshots():
    paths = {p for spec in FACTS.values() if spec.name.startswith("audit.host.devices.") for p in spec.paths}
    for p in ("/dev/kvm", "/dev/vhost-net", "/dev/net/tun", "/etc/libvirt/qemu.conf", "/etc/passwd", "/etc/group",
              "/etc/udev/rules.d/*.rules", "/usr/lib/udev/rules.d/*.rules", "/lib/udev/rules.d/*.rules"):
        assert p in paths, p


# -- kvm.device_access on a live host ----------------------------------------------------------------


def test_debian_defaults_pass(make_root):
    outcome = run("kvm.device_access", kvm_host(make_root))
    assert outcome.status is Status.PASS, said(outcome)
    assert outcome.message == "libvirt-qemu can read and write /dev/kvm (the group bits)"
    ev = {e.source: e for e in outcome.evidence}
    assert ev["/dev/kvm"].observed == "char device, mode 0660, owner root (0), group kvm (103)"
    assert ev["/dev/kvm"].expected == "read and write for libvirt-qemu (uid 64055; groups kvm, libvirt-qemu)"
    assert ev["Debian libvirt default"].observed == ("user libvirt-qemu, group libvirt-qemu (no user = or group = in"
                                                      " /etc/libvirt/qemu.conf)")
    assert "primary group kvm, member of libvirt-qemu" in ev["/etc/passwd, /etc/group"].observed


def test_wrong_group_hands_the_node_to_kvm(make_root):
    outcome = run("kvm.device_access", kvm_host(make_root, gid=RENDER_GID))
    assert outcome.status is Status.FAIL
    assert "group render (104)" in said(outcome)
    assert fix(outcome) == ["chgrp kvm /dev/kvm", "chmod 0660 /dev/kvm", "mkdir -p /etc/udev/rules.d",
                            f"echo 'KERNEL==\"kvm\", GROUP=\"kvm\", MODE=\"0660\"' > {RULE_FILE}"]
    assert not outcome.remediation.reboot_required


def test_mode_0600_owned_by_root(make_root):
    outcome = run("kvm.device_access", kvm_host(make_root, mode=0o600, gid=0))
    assert outcome.status is Status.FAIL
    assert "mode 0600, owner root (0), group root (0)" in said(outcome)
    assert "Permission denied" in outcome.message
    assert fix(outcome)[:2] == ["chgrp kvm /dev/kvm", "chmod 0660 /dev/kvm"]
    assert not any(c.startswith("usermod") for c in fix(outcome))  # already in kvm (its primary group)


def test_user_outside_the_nodes_group_is_added_to_it(make_root):
    # libvirt-qemu with its own primary group (as libvirt-qemu:libvirt-qemu elsewhere): not in kvm
    passwd = PASSWD.read_text().replace(LIBVIRT_QEMU, LIBVIRT_QEMU.replace(":64055:103:", ":64055:64055:"))
    outcome = run("kvm.device_access", kvm_host(make_root, **{"etc/passwd": passwd}))
    assert outcome.status is Status.FAIL
    assert fix(outcome) == ["usermod -aG kvm libvirt-qemu"]
    assert "restart the guests" in outcome.remediation.notes


def test_member_through_a_supplementary_group(make_root):
    passwd = PASSWD.read_text().replace(LIBVIRT_QEMU, LIBVIRT_QEMU.replace(":64055:103:", ":64055:64055:"))
    group = with_line(GROUP, "kvm:x:103:", "kvm:x:103:libvirt-qemu")
    outcome = run("kvm.device_access", kvm_host(make_root, **{"etc/passwd": passwd, "etc/group": group}))
    assert outcome.status is Status.PASS, said(outcome)
    assert "member of kvm, libvirt-qemu" in said(outcome)


def test_user_not_in_the_files_is_unknown_not_a_pass(make_root):
    policy = replace(DEFAULT_POLICY, qemu_user="ldapqemu")
    outcome = run("kvm.device_access", kvm_host(make_root), policy)
    assert outcome.status is Status.SKIP
    assert "user ldapqemu is not in /etc/passwd (a user from LDAP, SSSD or NIS?)" in outcome.message
    # ...unless the mode lets every user in
    outcome = run("kvm.device_access", kvm_host(make_root, mode=0o666), policy)
    assert outcome.status is Status.PASS
    assert "mode 0666 lets every user in" in outcome.message


def test_policy_names_the_user_and_group(make_root):
    passwd = PASSWD.read_text() + "qemu:x:107:107:QEMU:/:/usr/sbin/nologin\n"
    group = GROUP.read_text() + "qemu:x:107:\n"
    policy = replace(DEFAULT_POLICY, qemu_user="qemu", qemu_group="qemu")
    outcome = run("kvm.device_access", kvm_host(make_root, **{"etc/passwd": passwd, "etc/group": group}), policy)
    assert outcome.status is Status.FAIL
    assert [e.observed for e in outcome.evidence if e.source == "policy"] == ["qemu.user = qemu", "qemu.group = qemu"]
    assert fix(outcome) == ["usermod -aG kvm qemu"]
    # the policy wins over qemu.conf
    conf = conf_with('user = "root"')
    h = kvm_host(make_root, **{"etc/passwd": passwd, "etc/group": group, "etc/libvirt/qemu.conf": conf})
    assert "qemu.user = qemu" in said(run("kvm.device_access", h, policy))


def test_qemu_conf_user_plus_zero_is_root(make_root):
    conf = conf_with('user = "+0"', 'group = "+0"')
    outcome = run("kvm.device_access", kvm_host(make_root, **{"etc/libvirt/qemu.conf": conf}))
    assert outcome.status is Status.PASS
    assert outcome.message == "+0 can read and write /dev/kvm (the owner bits)"
    assert 'user = "+0"' in [e.observed for e in outcome.evidence if e.source == "/etc/libvirt/qemu.conf:971"]
    # libvirt drops root's capabilities by default: a node without owner bits keeps root out...
    outcome = run("kvm.device_access", kvm_host(make_root, mode=0o060, **{"etc/libvirt/qemu.conf": conf}))
    assert outcome.status is Status.FAIL and "the owner bits deny it" in outcome.message
    assert fix(outcome)[0] == "chmod 0660 /dev/kvm"
    # ...unless clear_emulator_capabilities = 0
    conf = conf_with('user = "+0"', "clear_emulator_capabilities = 0")
    outcome = run("kvm.device_access", kvm_host(make_root, mode=0o060, **{"etc/libvirt/qemu.conf": conf}))
    assert outcome.status is Status.PASS and "keeps its capabilities" in outcome.message


def test_qemu_conf_that_libvirt_refuses_is_an_error(make_root):
    h = kvm_host(make_root, **{"etc/libvirt/qemu.conf": conf_with("user = 107")})
    outcome = run("kvm.device_access", h)
    assert outcome.status is Status.ERROR
    assert outcome.message.startswith("/etc/libvirt/qemu.conf:971: expected a string for 'user' parameter")
    h = kvm_host(make_root, **{"etc/libvirt/qemu.conf": conf_with('user = "+x"')})
    assert "failed to parse user '+x'" in run("kvm.device_access", h).message


def test_no_dev_kvm_points_at_kvm_device(make_root):
    outcome = run("kvm.device_access", Host.from_root(str(make_root(live()))))
    assert outcome.status is Status.SKIP
    assert outcome.message == "/dev/kvm does not exist: nothing to open (see kvm.device)"
    outcome = run("kvm.device_access", Host.from_root(str(make_root(live(**{"dev/kvm": "not a node\n"})))))
    assert outcome.status is Status.SKIP and "is a file, not a device node (see kvm.device)" in outcome.message


def test_no_libvirt_and_no_user_says_so(make_root):
    tree = live()
    for key in ("etc/libvirt/qemu.conf", "etc/passwd", "etc/group"):
        del tree[key]
    root = make_root({**tree, "etc/passwd": DEV / "debian12-passwd", "etc/group": DEV / "debian12-group"})
    node(root, "dev/kvm", 0o660, 0, KVM_GID)
    outcome = run("kvm.device_access", Host.from_root(str(root)))
    assert outcome.status is Status.SKIP
    assert "there is no /etc/libvirt/qemu.conf: libvirt is not installed" in outcome.message


def test_works_now_but_not_after_a_reboot_warns(make_root):
    # someone ran chmod 0666 by hand; udev's rules give it back root:kvm 0660, and qemu is not in kvm
    passwd = PASSWD.read_text().replace(LIBVIRT_QEMU, LIBVIRT_QEMU.replace(":64055:103:", ":64055:64055:"))
    outcome = run("kvm.device_access", kvm_host(make_root, mode=0o666, gid=0, **{"etc/passwd": passwd}))
    assert outcome.status is Status.WARN
    assert "lost at the next boot" in outcome.message
    assert "/lib/udev/rules.d/50-udev-default.rules:108" in [e.source for e in outcome.evidence]
    assert fix(outcome) == ["usermod -aG kvm libvirt-qemu"]  # nothing to change now: only what lasts


def test_wrong_now_but_right_at_boot_says_so(make_root):
    outcome = run("kvm.device_access", kvm_host(make_root, mode=0o600, gid=0))
    assert outcome.status is Status.FAIL
    assert "udev's rules would set it right at boot" in outcome.remediation.notes


# -- kvm.device_access on an image: the udev rules ------------------------------------------------------


def test_image_judges_debians_udev_rule(make_root):
    outcome = run("kvm.device_access", Host.from_root(str(make_root(image()))))
    assert outcome.status is Status.PASS, said(outcome)
    assert outcome.message == ("udev gives /dev/kvm mode 0660, owner root (0), group kvm (103) at boot: libvirt-qemu"
                               " can read and write it (the group bits)")
    assert [e.observed for e in outcome.evidence if e.source == "/lib/udev/rules.d/50-udev-default.rules:108"] == [
        'GROUP="kvm"', 'MODE="0660"']


def test_image_rule_without_group(make_root):
    rules = with_line(RULES["50-udev-default.rules"],
                      'KERNEL=="kvm", GROUP="kvm", MODE="0660", OPTIONS+="static_node=kvm"',
                      'KERNEL=="kvm", MODE="0600", OPTIONS+="static_node=kvm"')
    outcome = run("kvm.device_access", Host.from_root(str(make_root(image(
        **{"lib/udev/rules.d/50-udev-default.rules": rules})))))
    assert outcome.status is Status.FAIL
    assert "mode 0600, owner root (0), group root (0)" in outcome.message
    # an image: nothing runs now, the rule goes under $ROOT
    assert fix(outcome) == ['mkdir -p "$ROOT"/etc/udev/rules.d',
                            f"echo 'KERNEL==\"kvm\", GROUP=\"kvm\", MODE=\"0660\"' > \"$ROOT\"{RULE_FILE}"]


def test_image_rule_masked_in_etc(make_root):
    tree = image(**{"etc/udev/rules.d/50-udev-default.rules": Link("/dev/null")})
    outcome = run("kvm.device_access", Host.from_root(str(make_root(tree))))
    assert outcome.status is Status.FAIL
    assert "no rule sets OWNER, GROUP or MODE of kvm" in said(outcome)


def test_image_rule_fedora_style_0666(make_root):
    rules = with_line(RULES["50-udev-default.rules"],
                      'KERNEL=="kvm", GROUP="kvm", MODE="0660", OPTIONS+="static_node=kvm"',
                      'KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS+="static_node=kvm"')
    tree = image(**{"lib/udev/rules.d/50-udev-default.rules": rules})
    nobody = replace(DEFAULT_POLICY, qemu_user="nobody")
    outcome = run("kvm.device_access", Host.from_root(str(make_root(tree))), nobody)
    assert outcome.status is Status.PASS and "mode 0666 lets every user in" in outcome.message


def test_image_rule_that_cannot_be_evaluated_is_shown(make_root):
    tree = image(**{"etc/udev/rules.d/90-local.rules": 'ATTR{dev}=="10:232", KERNEL=="kvm", MODE="0600"\n'})
    outcome = run("kvm.device_access", Host.from_root(str(make_root(tree))))
    assert outcome.status is Status.PASS
    assert "rules hostaudit cannot evaluate may change this" in outcome.message
    assert "/etc/udev/rules.d/90-local.rules:1" in [e.source for e in outcome.evidence]


def test_image_without_udev_is_not_applicable(make_root):
    tree = trees.debian12_tree()
    outcome = run("kvm.device_access", Host.from_root(str(make_root({**tree, "etc/passwd": PASSWD}))))
    assert outcome.status is Status.SKIP and outcome.not_applicable
    assert "no udev rules to judge" in outcome.message


def test_udev_rules_order_and_final_assignments():
    from audit.parsers.udev import evaluate

    files = [("/lib/udev/rules.d/50-udev-default.rules", RULES["50-udev-default.rules"].read_text()),
             ("/etc/udev/rules.d/60-a.rules", 'SUBSYSTEM=="misc", KERNEL=="kv[m]", GROUP:="qemu"\n'),
             ("/etc/udev/rules.d/70-b.rules", 'KERNEL=="kvm|vhost-net", GROUP="users", MODE="0666"\n'),
             ("/etc/udev/rules.d/80-c.rules", 'ACTION!="add", GOTO="end"\nKERNEL=="kvm", \\\n  MODE="0640"\n'
                                              'LABEL="end"\n')]
    perms = evaluate(files, KVM_DEVICE)
    assert perms.group == ("qemu", "/etc/udev/rules.d/60-a.rules:1")  # ":=" is final
    assert perms.mode == ("0640", "/etc/udev/rules.d/80-c.rules:2")  # a continued line
    assert perms.undecided == ()


# -- snapshots -------------------------------------------------------------------------------------------


def _snapshot(root: Path) -> Host:
    from audit.capture import gather_patterns

    doc = collect_document(str(root), gather_patterns(entry_points=False))
    return host_from_snapshot(parse_snapshot(render_document(doc).encode()), name="t.json")


def _all(host: Host, policy: Policy = DEFAULT_POLICY) -> dict[str, tuple]:
    return {cid: run(cid, host, policy) for cid in sorted(CHECKS)}


def _live_tree_with_nodes(make_root, mode: int = 0o660, gid: int = KVM_GID) -> Path:
    root = make_root(live())
    node(root, "dev/kvm", mode, 0, gid)
    node(root, "dev/vhost-net", 0o660, 0, KVM_GID, minor=238)
    node(root, "dev/net/tun", 0o666, minor=200)
    return root


@pytest.mark.parametrize(("mode", "gid"), [(0o660, KVM_GID), (0o600, 0), (0o2660, RENDER_GID)])
def test_snapshot_round_trip_gives_the_same_results(make_root, mode, gid):
    root = _live_tree_with_nodes(make_root, mode, gid)
    direct = _all(Host.from_root(str(root)))
    snap = _snapshot(root)
    assert snap.owner(DEV_KVM) == (mode, 0, gid)
    assert _all(snap) == direct
    assert direct["kvm.tun"].status is direct["kvm.vhost_net"].status is Status.PASS


def test_snapshot_of_an_image_judges_its_rules(make_root):
    root = make_root(image())
    assert _all(_snapshot(root)) == _all(Host.from_root(str(root)))


def test_old_snapshot_without_the_owner_cannot_know(make_root):
    from audit.capture import gather_patterns

    root = _live_tree_with_nodes(make_root)
    doc = collect_document(str(root), gather_patterns(entry_points=False))
    for entry in doc["entries"].values():
        for key in ("mode", "uid", "gid"):
            entry.pop(key, None)
    host = host_from_snapshot(parse_snapshot(render_document(doc).encode()), name="old.json")
    outcome = run("kvm.device_access", host)
    assert outcome.status is Status.SKIP
    assert outcome.message == ("cannot know here: /dev/kvm: its mode and owner were not captured in this snapshot"
                               " (an older collector)")
    assert run("kvm.tun", host).status is Status.PASS  # only the kind is needed there


DASH = shutil.which("dash")


@pytest.mark.skipif(DASH is None, reason="dash is not installed (apt-get install -y dash)")
@pytest.mark.parametrize("tools", ["all", "without stat"])
def test_collect_sh_records_the_mode_and_owner(make_root, tmp_path, tools):
    root = _live_tree_with_nodes(make_root, 0o2754, RENDER_GID)  # setgid: "ls -l" shows it as "s"
    script = tmp_path / "collect.sh"
    from audit.capture import gather_patterns

    patterns = gather_patterns(entry_points=False)
    script.write_text(render_script(Patterns(paths=patterns.paths)))
    env = None
    if tools != "all":
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        for tool in ("od", "tr", "head", "wc", "ls", "date", "readlink", "base64", "uname"):
            if found := shutil.which(tool):
                os.symlink(found, bin_dir / tool)
        env = {"PATH": str(bin_dir)}
    out = subprocess.run([DASH, str(script), str(root)], capture_output=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr.decode()
    assert b"kind /dev/kvm char 2754 0 104\n" in out.stdout
    assert b"kind /dev/net/tun char 666 0 0\n" in out.stdout
    host = host_from_snapshot(parse_snapshot(out.stdout), name="h.snap")
    assert host.owner(DEV_KVM) == (0o2754, 0, RENDER_GID)
    assert _all(host) == _all(Host.from_root(str(root)))


def test_snapshot_loader_refuses_a_bad_mode_or_half_an_owner():
    from audit.host.snapshot import SnapshotError

    def doc(entry: dict) -> bytes:
        return json.dumps({"format": "hostaudit-snapshot", "schema_version": 1, "source": {"mode": "live"},
                           "entries": {"/dev/kvm": entry}}).encode()

    assert host_from_snapshot(parse_snapshot(doc({"type": "char", "mode": "0660", "uid": 0, "gid": 5})),
                              name="x").owner(DEV_KVM) == (0o660, 0, 5)
    for bad in ({"type": "char", "mode": "0660"}, {"type": "char", "mode": "9", "uid": 0, "gid": 0},
                {"type": "char", "mode": 432, "uid": 0, "gid": 0}, {"type": "fifo", "mode": "0660", "uid": 0, "gid": 0},
                {"type": "char", "mode": "0660", "uid": -1, "gid": 0}):
        with pytest.raises(SnapshotError):
            parse_snapshot(doc(bad))
    text = b"hostaudit-snapshot 1\nmeta mode live\nkind /dev/kvm char 660 0 %s\nend\n"
    assert host_from_snapshot(parse_snapshot(text % b"103"), name="x").owner(DEV_KVM) == (0o660, 0, 103)
    for bad in (b"x", b"99999999999", b"-1"):
        with pytest.raises(SnapshotError):
            parse_snapshot(text % bad)


# -- hostile input ---------------------------------------------------------------------------------------


def test_huge_qemu_conf_line_and_binary_garbage(make_root):
    huge = "#" + "x" * (4 * 1024 * 1024) + '\nuser = "+0"\n'
    outcome = run("kvm.device_access", kvm_host(make_root, **{"etc/libvirt/qemu.conf": huge}))
    assert outcome.status is Status.PASS and outcome.message.startswith("+0 can read and write")
    garbage = bytes(range(256)) * 64
    outcome = run("kvm.device_access", kvm_host(make_root, **{"etc/libvirt/qemu.conf": garbage}))
    assert outcome.status is Status.ERROR
    assert outcome.message == "/etc/libvirt/qemu.conf:1: expecting a name"
    too_big = "#" * (10 * 1024 * 1024 + 1)
    outcome = run("kvm.device_access", kvm_host(make_root, **{"etc/libvirt/qemu.conf": too_big}))
    assert outcome.status is Status.ERROR and "byte cap" in outcome.message


def test_passwd_with_100k_lines_stays_linear():
    from audit.parsers.accounts import parse_group, parse_passwd

    def accounts(n: int) -> tuple[str, str]:
        users = "".join(f"user{i}:x:{10000 + i}:{10000 + i}::/home/u{i}:/bin/sh\n" for i in range(n))
        groups = "".join(f"g{i}:x:{10000 + i}:user{i},user{(i * 7) % n}\n" for i in range(n))
        return PASSWD.read_text() + users, GROUP.read_text() + groups

    def work(n: int) -> tuple[int, int]:
        passwd, group = accounts(n)
        (p, g), calls, peak = count_work(lambda: (parse_passwd(passwd), parse_group(group)))
        assert len(p.by_name) == n + 20 and len(g.by_name) == n + 46
        return calls, peak

    small, big = work(5_000), work(20_000)  # counted work: 4x the lines, at most 5x the work
    assert big[0] <= 5 * small[0] and big[1] <= 5 * small[1], (small, big)
    passwd, group = accounts(100_000)  # and the real size, whole
    p, g = parse_passwd(passwd), parse_group(group)
    assert p.by_name["user99999"].uid == 109999 and g.member_of["user99999"] == (52857, 109999)


def test_udev_rules_stay_linear():
    from audit.parsers.udev import evaluate

    def work(n: int) -> int:
        text = "".join(f'SUBSYSTEM!="x{i}*", GOTO="l{i}"\nKERNEL=="kvm", MODE="0660"\nLABEL="l{i}"\n'
                       for i in range(n))  # a glob each: compiled once per pattern (distinct for each n)
        _, calls, _ = count_work(lambda: evaluate([("/etc/udev/rules.d/x.rules", text)], KVM_DEVICE))
        return calls

    small = work(300)
    assert work(1200) <= 5 * small


# -- kvm.vhost_net and kvm.tun ------------------------------------------------------------------------------


def test_vhost_net_and_tun_present(make_root):
    root = _live_tree_with_nodes(make_root)
    for cid, path in (("kvm.vhost_net", "/dev/vhost-net"), ("kvm.tun", "/dev/net/tun")):
        outcome = run(cid, Host.from_root(str(root)))
        assert outcome.status is Status.PASS and outcome.message == f"{path} is a character device"


def test_vhost_net_module_not_loaded(make_root):
    outcome = run("kvm.vhost_net", Host.from_root(str(make_root(live()))))
    assert outcome.status is Status.FAIL
    assert outcome.message == "/dev/vhost-net does not exist: module vhost_net is not loaded"
    assert fix(outcome) == ["modprobe vhost_net", "mkdir -p /etc/modules-load.d",
                            "echo vhost_net > /etc/modules-load.d/vhost_net.conf"]
    assert "CONFIG_VHOST_NET=m" in said(outcome)


def test_vhost_net_kernel_without_it(make_root):
    tree = live(**{f"boot/config-{trees.DEBIAN_RELEASE}": kconfig_sample("this-vm-config-6.18.44")})
    outcome = run("kvm.vhost_net", Host.from_root(str(make_root(tree))))
    assert outcome.status is Status.FAIL
    assert "the running kernel is built without the in-kernel virtio-net backend" in outcome.message
    assert "# CONFIG_VHOST_NET is not set" in outcome.message
    assert outcome.remediation.reboot_required and not any("modprobe" in c for c in fix(outcome))


def test_tun_built_in_but_missing_is_made_by_hand(make_root):
    tree = live(**{f"boot/config-{trees.DEBIAN_RELEASE}": kconfig_sample("this-vm-config-6.18.44")})
    outcome = run("kvm.tun", Host.from_root(str(make_root(tree))))
    assert outcome.status is Status.FAIL
    assert fix(outcome)[:2] == ["mkdir -p /dev/net", "mknod -m 0666 /dev/net/tun c 10 200"]


def test_tun_module_and_a_file_in_its_place(make_root):
    outcome = run("kvm.tun", Host.from_root(str(make_root(live()))))
    assert outcome.status is Status.FAIL and fix(outcome)[0] == "modprobe tun"
    outcome = run("kvm.tun", Host.from_root(str(make_root(live(**{"dev/net/tun": "x"})))))
    assert outcome.status is Status.FAIL and outcome.message == "/dev/net/tun is a file, not a character device"
    assert fix(outcome)[:2] == ["rm -f /dev/net/tun", "mkdir -p /dev/net"]


def test_image_judges_the_kernel_config(make_root):
    h = Host.from_root(str(make_root(image())))
    vhost, tun = run("kvm.vhost_net", h), run("kvm.tun", h)
    assert vhost.status is tun.status is Status.PASS
    assert "as module vhost_net (CONFIG_VHOST_NET=m)" in vhost.message
    tree = {**image(), f"boot/config-{trees.DEBIAN_RELEASE}": kconfig_sample("this-vm-config-6.18.44")}
    h = Host.from_root(str(make_root(tree)))
    vhost, tun = run("kvm.vhost_net", h), run("kvm.tun", h)
    assert vhost.status is Status.FAIL and "# CONFIG_VHOST_NET is not set" in vhost.message
    assert not any("modprobe" in c for c in fix(vhost))
    assert tun.status is Status.PASS and "built in (CONFIG_TUN=y)" in tun.message
    tree = {k: v for k, v in image().items() if not k.startswith("boot/config-")}
    outcome = run("kvm.vhost_net", Host.from_root(str(make_root(tree))))
    assert outcome.status is Status.SKIP and outcome.not_applicable


# -- through the engine -------------------------------------------------------------------------------------


def test_a_run_through_the_engine(make_root):
    root = _live_tree_with_nodes(make_root, mode=0o600, gid=0)
    report = run_audit(PLUGINS, Host.from_root(str(root)))
    assert {r.id: r.status for r in report.results} == {
        "kvm.device_access": Status.FAIL, "kvm.tun": Status.PASS, "kvm.vhost_net": Status.PASS}
    assert all(r.plugin == "checks.devices" for r in report.results)
    assert [r.id for r in report.counting()] == ["kvm.device_access"]


def test_udev_fact_reads_the_rule_dirs_in_udevs_order(make_root):
    tree = image(**{"usr/lib/udev/rules.d/50-udev-default.rules": "KERNEL==\"kvm\", MODE=\"0600\"\n",
                    "etc/udev/rules.d/40-empty.rules": ""})
    perms = Host.from_root(str(make_root(tree))).fact(udev_kvm_perms)
    # /usr/lib comes before /lib: its 50-udev-default.rules hides Debian's
    assert perms.mode == ("0600", "/usr/lib/udev/rules.d/50-udev-default.rules:1") and perms.group is None


def test_owner_is_confined_to_the_root(make_root):
    from audit.host.fs import RootFS

    root = make_root({"dev/kvm": Link("../../../../../dev/null"), "dev/tun": Link("/dev/null"), "etc/x": "x"})
    fs = RootFS(str(root))
    assert fs.owner("/dev/kvm") is None and fs.owner("/dev/tun") is None  # never the auditing machine's /dev/null
    os.chmod(root / "etc/x", 0o640)
    st = os.stat(root / "etc/x")
    assert fs.owner("/etc/x") == (0o640, st.st_uid, st.st_gid) == Host.from_root(str(root)).owner("/etc/../etc/x")
    assert fs.owner("/nope/deeper") is None
