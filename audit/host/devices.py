"""Facts for the device nodes QEMU opens (/dev/kvm, /dev/vhost-net, /dev/net/tun), who QEMU runs as
(/etc/libvirt/qemu.conf, /etc/passwd, /etc/group) and what udev makes of /dev/kvm at boot.

Each fact declares the paths it reads, so snapshots carry them (a snapshot records a device node's
mode and owner; one from an older collector does not, and the node fact then says it cannot know).
"""

from __future__ import annotations

from audit.errors import FactError, FactUnavailable
from audit.host.core import Host
from audit.host.fs import Kind
from audit.host.registry import fact, parse_text
from audit.parsers.accounts import Accounts, Groups, parse_group, parse_passwd
from audit.parsers.libvirtconf import LibvirtConf, parse_libvirt_conf
from audit.parsers.systemd import is_masked
from audit.parsers.udev import Device, UdevPerms, evaluate
from audit.record import Record

DEV_KVM = "/dev/kvm"
DEV_VHOST_NET = "/dev/vhost-net"
DEV_TUN = "/dev/net/tun"
QEMU_CONF = "/etc/libvirt/qemu.conf"
PASSWD = "/etc/passwd"
GROUP = "/etc/group"
#: udev's rule directories, highest priority first (a file name in a higher one hides it lower down)
UDEV_RULE_DIRS = ("/etc/udev/rules.d", "/run/udev/rules.d", "/usr/local/lib/udev/rules.d", "/usr/lib/udev/rules.d",
                  "/lib/udev/rules.d")

#: libvirt refuses a configuration file larger than this (virconf.c MAX_CONFIG_FILE_SIZE)
QEMU_CONF_CAP = 10 * 1024 * 1024
#: /etc/passwd and /etc/group of a host with 100,000 accounts are about 6 MB
ACCOUNTS_CAP = 16 * 1024 * 1024
#: a rule file is captured by a glob, so snapshots hold at most this of it (GLOB_FILE_CAP): read no more
UDEV_FILE_CAP = 1024 * 1024

#: /dev/kvm as udev sees it when KVM registers its misc device
KVM_DEVICE = Device(name="kvm", subsystem="misc", devpath="/devices/virtual/misc/kvm")


class Node(Record):
    path: str
    kind: Kind | None  # None: absent
    owner: tuple[int, int, int] | None = None  # (permission bits, uid, gid); None: absent or unknown
    unknown: str | None = None  # why the mode and owner are not known (a snapshot without them)


def _node(host: Host, path: str) -> Node:
    if not host.has_runtime:
        raise host.runtime_unavailable(path)
    kind = host.kind(path)
    if kind is None:
        return Node(path=path, kind=None)
    try:
        owner = host.owner(path)
    except FactUnavailable as exc:
        return Node(path=path, kind=kind, unknown=str(exc))
    return Node(path=path, kind=kind, owner=owner)


@fact(paths=[DEV_KVM], runtime=True)
def kvm_node(host: Host) -> Node:
    return _node(host, DEV_KVM)


@fact(paths=[DEV_VHOST_NET], runtime=True)
def vhost_net_node(host: Host) -> Node:
    return _node(host, DEV_VHOST_NET)


@fact(paths=[DEV_TUN], runtime=True)
def tun_node(host: Host) -> Node:
    return _node(host, DEV_TUN)


@fact(paths=[QEMU_CONF])
def qemu_conf(host: Host) -> LibvirtConf:
    """libvirt's QEMU driver configuration; absent when libvirt is not installed."""
    return parse_text(QEMU_CONF, host.read_text(QEMU_CONF, limit=QEMU_CONF_CAP), parse_libvirt_conf)


@fact(paths=[PASSWD, GROUP])
def accounts(host: Host) -> Accounts:
    """Local users and groups (what nss_files answers); a missing /etc/group has no groups."""
    passwd = parse_text(PASSWD, host.read_text(PASSWD, limit=ACCOUNTS_CAP), parse_passwd)
    try:
        group = parse_text(GROUP, host.read_text(GROUP, limit=ACCOUNTS_CAP), parse_group)
    except FactUnavailable:
        group = Groups(by_name={}, by_gid={}, member_of={})
    return Accounts(passwd=passwd, group=group)


class RuleFiles(Record):
    files: tuple[tuple[str, str], ...]  # (path, text) in udev's order
    unread: tuple[str, ...]  # "path: why" of rule files that could not be read


def udev_rule_files(host: Host) -> RuleFiles:
    """The udev rule files in the order udev reads them: by file name across the directories, the
    highest directory's file for each name; a link to /dev/null or an empty file disables a name."""
    chosen: dict[str, str | None] = {}
    any_dir = False
    for d in UDEV_RULE_DIRS:
        try:
            names = host.listdir(d)
        except FactUnavailable:
            continue
        any_dir = True
        for name in names:
            if not name.endswith(".rules") or name in chosen:
                continue
            path = f"{d}/{name}"
            chosen[name] = None if is_masked(host.readlink(path), link_dir=d) else path
    if not any_dir:
        raise FactUnavailable(f"no udev rule directory ({', '.join(UDEV_RULE_DIRS)})", source=UDEV_RULE_DIRS[0])
    files: list[tuple[str, str]] = []
    unread: list[str] = []
    for name in sorted(chosen):
        path = chosen[name]
        if path is None or host.kind(path) != "file":
            continue  # masked, or a dangling link: udev skips it too
        try:
            files.append((path, host.read_text(path, limit=UDEV_FILE_CAP)))
        except (FactUnavailable, FactError) as exc:
            unread.append(f"{path}: not read ({exc})")
    return RuleFiles(files=tuple(files), unread=tuple(unread))


@fact(paths=[f"{d}/*.rules" for d in UDEV_RULE_DIRS])
def udev_kvm_perms(host: Host) -> UdevPerms:
    """The OWNER, GROUP and MODE udev's rules give /dev/kvm when it appears (at every boot)."""
    rules = udev_rule_files(host)
    perms = parse_text(UDEV_RULE_DIRS[0], "", lambda _: evaluate(rules.files, KVM_DEVICE))
    return perms._replace(undecided=perms.undecided + rules.unread)
