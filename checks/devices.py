"""The device nodes QEMU opens, as libvirt's virt-host-validate checks them: /dev/kvm readable and
writable by the user QEMU runs as, /dev/vhost-net and /dev/net/tun present (issue #13).

Choices where the issue is silent:

* Who QEMU runs as: the policy (``qemu.user`` / ``qemu.group``), else ``user =`` / ``group =`` in
  /etc/libvirt/qemu.conf, else what the distribution's libvirt is built with (Debian:
  libvirt-qemu / libvirt-qemu, as Debian 12's qemu.conf comments say; Ubuntu: libvirt-qemu / kvm;
  Fedora and RHEL: qemu / qemu; SUSE: qemu / kvm; Arch: nobody / kvm); the evidence names the source.
  As in libvirt (virGetGroupList), QEMU has the configured group plus the user's primary and
  supplementary groups, read from /etc/passwd and /etc/group inside the root. A user or group that
  is not in those files (LDAP, SSSD, NIS) makes the answer unknown, never a pass.
  ``user = "+0"`` is uid 0; libvirt drops QEMU's capabilities unless ``clear_emulator_capabilities =
  0``, so root is judged by the mode bits like any user unless that is set.
* Access is decided as the kernel decides it, from the node's mode, owner and group: the owner bits
  when QEMU's uid owns the node, else the group bits when one of its groups is the node's, else the
  other bits; it needs read and write. os.access is never used (hostaudit runs as root, for which it
  says yes). POSIX ACLs on the node are not read.
* A live host, or a snapshot of one, is judged by the node itself (a snapshot records its mode and
  owner; one from an older collector does not: cannot know). When udev's rules would give the node
  other permissions at the next boot (and every rule involved can be evaluated here), a node that
  works now is a warning: lost at the next boot.
* An unbooted image has no /dev/kvm: /dev is a tmpfs that udev fills at boot. Its udev rules are
  judged instead: the OWNER, GROUP and MODE they give /dev/kvm (Debian's 50-udev-default.rules:
  ``KERNEL=="kvm", GROUP="kvm", MODE="0660"``), or the kernel's 0600 root:root when no rule does.
  An image without udev rule directories: not applicable.
* kvm.vhost_net and kvm.tun: live, the node must exist and be a character device. An image is judged
  by its kernel config: CONFIG_VHOST_NET / CONFIG_TUN =y or =m pass (a module's devname alias makes
  kmod create the node at boot, and the first open loads the module); not set fails; without a
  kernel config they are not applicable.
"""

from __future__ import annotations

from collections.abc import Callable

from audit import hookimpl
from audit.errors import FactError, FactUnavailable
from audit.host.arch import arch_name
from audit.host.core import Host
from audit.host.devices import (
    DEV_KVM,
    DEV_TUN,
    DEV_VHOST_NET,
    GROUP,
    PASSWD,
    QEMU_CONF,
    Node,
    accounts,
    kvm_node,
    qemu_conf,
    tun_node,
    udev_kvm_perms,
    vhost_net_node,
)
from audit.host.kernel import kernel_config, os_release_fact
from audit.model import (
    Check,
    Evidence,
    Outcome,
    Severity,
    check,
    failed,
    not_applicable,
    passed,
    skipped,
    warned,
)
from audit.parsers.accounts import Accounts, User
from audit.parsers.kconfig import NOT_SET
from audit.parsers.libvirtconf import LibvirtConf
from audit.parsers.udev import UdevPerms
from audit.policy import Policy
from audit.record import Record
from audit.remedy.packages import stock_kernel
from audit.remedy.system import persist_module, remove_file, runtime_only, write_file
from audit.remedy.target import FixTarget
from checks._common import hint, maybe, q

#: What each distribution's libvirt runs QEMU as when qemu.conf says nothing (libvirt's meson.build
#: defaults, and the distribution packages that override them: Arch and SUSE).
DISTRO_DEFAULTS: tuple[tuple[str, str, str], ...] = (
    ("ubuntu", "libvirt-qemu", "kvm"),
    ("debian", "libvirt-qemu", "libvirt-qemu"),
    ("rhel", "qemu", "qemu"),
    ("suse", "qemu", "kvm"),
    ("arch", "nobody", "kvm"),
)
DISTRO_NAMES = {"ubuntu": "Ubuntu", "debian": "Debian", "rhel": "Fedora/RHEL", "suse": "SUSE", "arch": "Arch Linux"}
#: Where the fix writes its udev rule: late in the order, so its "=" assignments come last and win.
RULE_FILE = "/etc/udev/rules.d/99-hostaudit-kvm.rules"
KVM_GROUP = "kvm"
#: devtmpfs creates KVM's misc device 0600 root:root; udev's rules change that.
KERNEL_DEFAULT = (0o600, 0, 0)


# -- who QEMU runs as ---------------------------------------------------------------------------------


class Identity(Record):
    user: str  # as configured: a name, "+0", "107"
    group: str
    uid: int | None  # None: unknown (not in /etc/passwd and not a number)
    entry: User | None  # the user's /etc/passwd entry (its supplementary groups are known)
    gids: frozenset[int]  # the groups QEMU is known to have
    complete: bool  # every group QEMU has is known
    root_caps: bool  # uid 0 keeping its capabilities: no permission check applies
    evidence: tuple[Evidence, ...]
    unknown: tuple[str, ...]  # what could not be resolved, and why

    def describe(self, acc: Accounts | None) -> str:
        uid = "uid unknown" if self.uid is None else f"uid {self.uid}"
        names = sorted(acc.group_name(g) for g in self.gids) if acc else sorted(map(str, self.gids))
        groups = ", ".join(names) or "none known"
        return f"{self.user} ({uid}; groups {groups}{'' if self.complete else ' and possibly others'})"


def _distro_default(host: Host) -> tuple[str, str, str] | None:
    """(user, group, distribution) of the libvirt package this distribution ships; None: unknown."""
    try:
        info = host.fact(os_release_fact).info
    except (FactUnavailable, FactError):
        return None
    words = {info.id or "", *info.id_like}
    family = info.family()
    for key, user, group in DISTRO_DEFAULTS:
        if key in words or (key in ("rhel", "suse") and family == key) or (key == "rhel" and "fedora" in words):
            return user, group, DISTRO_NAMES[key]
    return None


def _conf_string(conf: LibvirtConf | None, name: str) -> tuple[str, int] | None:
    value = conf.get(name) if conf else None
    if value is None:
        return None
    if value.kind != "string":
        raise FactError(QEMU_CONF, f"expected a string for '{name}' parameter, got {value.show()[:40]}"
                        " (libvirt refuses this file)", line=value.line)
    return str(value.value), value.line


def _keeps_caps(conf: LibvirtConf | None) -> bool:
    """``clear_emulator_capabilities = 0``: QEMU keeps the capabilities it starts with (as root: all)."""
    value = conf.get("clear_emulator_capabilities") if conf else None
    if value is None:
        return False
    if value.kind != "number" or not isinstance(value.value, int) or not 0 <= value.value <= 1:
        raise FactError(QEMU_CONF, "clear_emulator_capabilities must be 0 or 1 (libvirt refuses this file)",
                        line=value.line)
    return value.value == 0


def _plus_id(spec: str, what: str, line: int | None) -> int | None:
    """libvirt's "+N" (an id, never a name); a bad one is refused by libvirt."""
    rest = spec[1:]
    if rest.isascii() and rest.isdigit() and len(rest) <= 10 and int(rest) < (1 << 32) - 1:
        return int(rest)
    if line is not None:
        raise FactError(QEMU_CONF, f"failed to parse {what} '{spec}' (libvirt refuses it)", line=line)
    return None


def identity(host: Host, policy: Policy) -> Identity:
    """Who QEMU runs as and which groups it has; FactUnavailable when nothing says who."""
    conf = maybe(host, qemu_conf)
    acc = maybe(host, accounts)
    default = _distro_default(host)
    evidence: list[Evidence] = []
    unknown: list[str] = []

    defaulted: list[str] = []

    def pick(policy_value: str | None, key: str, index: int) -> tuple[str, int | None]:
        if policy_value:
            evidence.append(Evidence(source="policy", observed=f"qemu.{key} = {policy_value}"))
            return policy_value, None
        found = _conf_string(conf, key)
        if found is not None:
            evidence.append(Evidence(source=f"{QEMU_CONF}:{found[1]}", observed=f'{key} = "{found[0]}"'))
            return found
        if default is not None:
            defaulted.append(key)
            return default[index], None
        raise FactUnavailable(
            f"who QEMU runs as is unknown: no qemu.{key} in the policy, no {key} = in {QEMU_CONF}, and no known"
            " libvirt default for this distribution (set qemu.user and qemu.group in the policy)")

    user, user_line = pick(policy.qemu_user, "user", 0)
    group, group_line = pick(policy.qemu_group, "group", 1)
    if default is not None and defaulted:
        said = {"user": user, "group": group}
        keys = " or ".join(f"{k} =" for k in defaulted)
        where = f"no {keys} in {QEMU_CONF}" if conf is not None else f"no {QEMU_CONF}"
        evidence.append(Evidence(source=f"{default[2]} libvirt default",
                                 observed=", ".join(f"{k} {said[k]}" for k in defaulted) + f" ({where})"))

    # the user (virGetUserID: "+N" is an id; a name is looked up, and a name made of digits that is
    # no user is an id)
    uid: int | None
    entry: User | None = None
    if user.startswith("+"):
        uid = _plus_id(user, "user", user_line)
        entry = acc.passwd.by_uid.get(uid) if acc and uid is not None else None
    else:
        entry = acc.user(user) if acc else None
        uid = entry.uid if entry else _number(user)
        if entry is None and uid is not None and acc:
            entry = acc.passwd.by_uid.get(uid)
    if acc is None:
        unknown.append(f"{PASSWD} does not exist")
    elif entry is None and conf is None:
        unknown.append(f"user {user} is not in {PASSWD} and there is no {QEMU_CONF}: libvirt is not installed, or"
                       " the user comes from LDAP, SSSD or NIS")
    elif entry is None:
        unknown.append(f"user {user} is not in {PASSWD} (a user from LDAP, SSSD or NIS?)")
    # the group (virGetGroupID)
    gid: int | None
    if group.startswith("+"):
        gid = _plus_id(group, "group", group_line)
    else:
        g = acc.group.by_name.get(group) if acc else None
        gid = g.gid if g else _number(group)
        if gid is None:
            unknown.append(f"group {group} is not in {GROUP} (a group from LDAP, SSSD or NIS?)")
    gids: set[int] = set()
    if gid is not None:
        gids.add(gid)
    if entry is not None and acc is not None:
        gids |= acc.groups_of(entry)
        member = sorted(acc.group_name(g) for g in acc.group.member_of.get(entry.name, ()))
        evidence.append(Evidence(
            source=f"{PASSWD}, {GROUP}",
            observed=f"{entry.name}: uid {entry.uid}, primary group {acc.group_name(entry.gid)}"
                     + (f", member of {', '.join(member)}" if member else ", in no other group")))
    if acc is not None and acc.compat:
        unknown.append(f"{PASSWD} or {GROUP} has NIS '+' entries: more groups may come from elsewhere")
    complete = entry is not None and gid is not None and not (acc and acc.compat)
    root_caps = uid == 0 and _keeps_caps(conf)
    return Identity(user=user, group=group, uid=uid, entry=entry, gids=frozenset(gids), complete=complete,
                    root_caps=root_caps, evidence=tuple(evidence), unknown=tuple(unknown))


# -- the permission decision -------------------------------------------------------------------------


def _number(text: str) -> int | None:
    """A user or group given as digits (at most 10: an id fits in 32 bits), else None."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 10 else None


def _rw(mode: int, shift: int) -> bool:
    return (mode >> shift) & 0o6 == 0o6


def can_open(owner: tuple[int, int, int], who: Identity) -> tuple[bool | None, str]:
    """Whether ``who`` may open a node with (mode, uid, gid) ``owner`` read-write, and by which bits;
    None when the answer depends on what is not known."""
    mode, node_uid, node_gid = owner
    if who.root_caps:
        return True, "it runs as root and keeps its capabilities (clear_emulator_capabilities = 0)"
    answers: dict[str, bool] = {}
    if who.uid is None or who.uid == node_uid:
        answers["the owner bits"] = _rw(mode, 6)
    if who.uid is None or who.uid != node_uid:
        if node_gid in who.gids:
            answers["the group bits"] = _rw(mode, 3)
        else:
            if not who.complete:
                answers["the group bits"] = _rw(mode, 3)
            answers["the other bits"] = _rw(mode, 0)
    if _rw(mode, 6) and _rw(mode, 3) and _rw(mode, 0):
        return True, f"mode {mode:04o} lets every user in"
    if all(answers.values()):
        return True, " or ".join(answers)
    if not any(answers.values()):
        return False, " or ".join(answers)
    return None, " or ".join(answers)


def show_node(owner: tuple[int, int, int], acc: Accounts | None) -> str:
    mode, uid, gid = owner
    user = acc.user_name(uid) if acc else str(uid)
    group = acc.group_name(gid) if acc else str(gid)
    user = user if user == str(uid) else f"{user} ({uid})"
    group = group if group == str(gid) else f"{group} ({gid})"
    return f"mode {mode:04o}, owner {user}, group {group}"


class BootNode(Record):
    owner: tuple[int, int, int]  # what udev leaves /dev/kvm as
    evidence: tuple[Evidence, ...]
    undecided: tuple[str, ...]


def boot_node(perms: UdevPerms, acc: Accounts | None) -> BootNode:
    """The mode, owner and group /dev/kvm has after udev's rules ran (udev ignores an unknown name)."""
    ev: list[Evidence] = []
    mode, uid, gid = KERNEL_DEFAULT
    if perms.owner is not None:
        u = acc.user(perms.owner.value) if acc else None
        uid = u.uid if u else (_number(perms.owner.value) or 0)
        ev.append(Evidence(source=perms.owner.where, observed=f'OWNER="{perms.owner.value}"'))
    group_set = False
    if perms.group is not None:
        g = acc.group.by_name.get(perms.group.value) if acc else None
        value = perms.group.value
        number = _number(value)
        if g is not None or number is not None:
            gid, group_set = (g.gid if g else number or 0), True
            ev.append(Evidence(source=perms.group.where, observed=f'GROUP="{value}"'))
        else:
            ev.append(Evidence(source=perms.group.where, observed=f'GROUP="{value}": no such group in {GROUP},'
                                                                  " udev ignores it"))
    if perms.mode is not None and len(perms.mode.value) <= 5 and all(c in "01234567" for c in perms.mode.value):
        mode = int(perms.mode.value, 8) & 0o7777
        ev.append(Evidence(source=perms.mode.where, observed=f'MODE="{perms.mode.value}"'))
    elif group_set:
        mode = 0o660  # udev's default once a rule names a group
    if not ev:
        ev.append(Evidence(source="udev rules",
                           observed=f"no rule sets OWNER, GROUP or MODE of kvm ({perms.files} rule files read):"
                                    " the kernel's 0600 root:root"))
    return BootNode(owner=(mode, uid, gid), evidence=tuple(ev), undecided=perms.undecided)


# -- remediation ------------------------------------------------------------------------------------


def _fix(host: Host, who: Identity, owner: tuple[int, int, int], acc: Accounts | None, *,
         now: bool = True) -> tuple[list[str], str]:
    """Commands that let ``who`` open /dev/kvm now (where a system runs and ``now``) and after every
    boot: the node's group and mode, the user's groups, a udev rule."""
    target = FixTarget.of(host)

    def at_once(cmds: list[str]) -> list[str]:
        return runtime_only(target, cmds) if now else []

    mode, node_uid, node_gid = owner
    name = who.entry.name if who.entry else None
    cmds: list[str] = []
    notes: list[str] = []
    if who.uid is not None and who.uid == node_uid:
        new = mode | 0o600
        cmds += at_once([f"chmod {new:04o} {DEV_KVM}"])
        rule = f'KERNEL=="kvm", MODE="{new:04o}"'
    elif acc is not None and node_gid in acc.group.by_gid and (
            acc.group.by_gid[node_gid].name == KVM_GROUP or node_gid in who.gids) and node_gid != 0:
        # the node has the usual group (kvm), or one QEMU has: QEMU joins it, the group gets rw
        group = acc.group.by_gid[node_gid].name
        rule = ""
        if node_gid not in who.gids:
            if name is None:
                notes.append(f"{who.user} has no {PASSWD} entry: add it to group {group} where it is defined.")
            else:
                cmds.append(target.inside(f"usermod -aG {q(group)} {q(name)}"))
        if not _rw(mode, 3):
            new = mode | 0o060
            cmds += at_once([f"chmod {new:04o} {DEV_KVM}"])
            rule = f'KERNEL=="kvm", GROUP="{group}", MODE="{new:04o}"'
    else:  # root's group, another group, an unknown one: give the node to group kvm
        have_kvm = acc is not None and KVM_GROUP in acc.group.by_name
        if not have_kvm:
            cmds.append(f"{target.inside(f'getent group {KVM_GROUP} >/dev/null')} || "
                        f"{target.inside(f'groupadd --system {KVM_GROUP}')}")
        cmds += at_once([f"chgrp {KVM_GROUP} {DEV_KVM}", f"chmod 0660 {DEV_KVM}"])
        rule = f'KERNEL=="kvm", GROUP="{KVM_GROUP}", MODE="0660"'
        in_kvm = have_kvm and acc is not None and acc.group.by_name[KVM_GROUP].gid in who.gids
        if not in_kvm:
            if name is None:
                notes.append(f"{who.user} has no {PASSWD} entry: add it to group {KVM_GROUP} where it is defined.")
            else:
                cmds.append(target.inside(f"usermod -aG {KVM_GROUP} {q(name)}"))
    if any("usermod " in c for c in cmds):
        notes.append("QEMU takes its groups when it starts: restart the guests (or libvirtd) afterwards.")
    if rule:
        cmds += write_file(target, RULE_FILE, rule)
        notes.append(f"The udev rule in {RULE_FILE} keeps the group and mode after a reboot.")
    return cmds, " ".join(notes)


# -- kvm.device_access ------------------------------------------------------------------------------


def _boot_perms(host: Host) -> UdevPerms | None:
    try:
        return host.fact(udev_kvm_perms)
    except (FactUnavailable, FactError):
        return None


@check(
    "kvm.device_access",
    title="The user QEMU runs as can read and write /dev/kvm",
    severity=Severity.HIGH,
    reads=[DEV_KVM, QEMU_CONF, PASSWD, GROUP, "udev rules (/etc/udev/rules.d, /usr/lib/udev/rules.d)"],
    example_fix=["chgrp kvm /dev/kvm; chmod 0660 /dev/kvm", "usermod -aG kvm libvirt-qemu",
                 "echo 'KERNEL==\"kvm\", GROUP=\"kvm\", MODE=\"0660\"' > " + RULE_FILE],
)
def kvm_device_access(host: Host, policy: Policy) -> Outcome:
    """QEMU opens /dev/kvm read-write as the unprivileged user libvirt runs it as (libvirt-qemu,
    qemu); when the node's mode, owner and group do not let that user in, guests fail to start with
    'Could not access KVM kernel module: Permission denied' or run without KVM. libvirt's
    virt-host-validate checks the same. A live host is judged by the node, an image by the udev
    rules that set the node's group and mode at boot."""
    if not host.has_runtime:
        return _image_access(host, policy)
    node: Node = host.fact(kvm_node)
    if node.kind is None:
        return skipped(f"{DEV_KVM} does not exist: nothing to open (see kvm.device)",
                       Evidence(source=DEV_KVM, observed="absent", expected="character device"))
    if node.kind != "char":
        return skipped(f"{DEV_KVM} is a {node.kind}, not a device node (see kvm.device)",
                       Evidence(source=DEV_KVM, observed=node.kind, expected="character device"))
    if node.owner is None:
        return skipped(f"cannot know here: {node.unknown}", Evidence(source=DEV_KVM, observed="char device"))
    who = identity(host, policy)
    acc = maybe(host, accounts)
    verdict, how = can_open(node.owner, who)
    node_ev = Evidence(source=DEV_KVM, observed=f"char device, {show_node(node.owner, acc)}",
                       expected=f"read and write for {who.describe(acc)}")
    evidence = [node_ev, *who.evidence]
    if verdict is None:
        return skipped(f"cannot know whether {who.user} can open {DEV_KVM}: " + "; ".join(who.unknown),
                       evidence)
    perms = _boot_perms(host)
    boot = boot_node(perms, acc) if perms is not None else None
    if verdict:
        message = f"{who.user} can read and write {DEV_KVM} ({how})"
        if boot is not None and not boot.undecided and can_open(boot.owner, who)[0] is False:
            fix, notes = _fix(host, who, boot.owner, acc, now=False)
            return warned(f"{message} now, but udev's rules give it {show_node(boot.owner, acc)} at boot:"
                          " lost at the next boot", [*evidence, *boot.evidence], fix=fix, notes=notes)
        return passed(message, evidence)
    fix, notes = _fix(host, who, node.owner, acc)
    if boot is not None and not boot.undecided and can_open(boot.owner, who)[0]:
        evidence += boot.evidence
        notes += " udev's rules would set it right at boot: something changed the node since."
    return failed(f"{who.user} cannot read and write {DEV_KVM} ({how} deny it): guests fail with 'Could not"
                  " access KVM kernel module: Permission denied'", evidence, fix=fix, notes=notes)


def _image_access(host: Host, policy: Policy) -> Outcome:
    perms = maybe(host, udev_kvm_perms)
    if perms is None:
        return not_applicable(f"an unbooted image has no {DEV_KVM} (udev creates it at boot), and this one has no"
                              " udev rules to judge")
    who = identity(host, policy)
    acc = maybe(host, accounts)
    boot = boot_node(perms, acc)
    verdict, how = can_open(boot.owner, who)
    evidence = [Evidence(source=f"{DEV_KVM} at boot", observed=show_node(boot.owner, acc),
                         expected=f"read and write for {who.describe(acc)}"), *boot.evidence, *who.evidence]
    evidence += [Evidence(source=u.split(": ", 1)[0], observed="not evaluated: " + u.split(": ", 1)[-1])
                 for u in boot.undecided]
    if verdict is None:
        return skipped(f"cannot know whether {who.user} can open {DEV_KVM}: " + "; ".join(who.unknown), evidence)
    caveat = " (rules hostaudit cannot evaluate may change this)" if boot.undecided else ""
    if verdict:
        return passed(f"udev gives {DEV_KVM} {show_node(boot.owner, acc)} at boot: {who.user} can read and"
                      f" write it ({how}){caveat}", evidence)
    fix, notes = _fix(host, who, boot.owner, acc)
    return failed(f"udev gives {DEV_KVM} {show_node(boot.owner, acc)} at boot: {who.user} cannot read and write"
                  f" it ({how} deny it){caveat}", evidence, fix=fix, notes=notes)


# -- kvm.vhost_net and kvm.tun ----------------------------------------------------------------------


class MiscNode(Record):
    path: str
    node: Callable[[Host], Node]
    option: str  # the kernel option, without CONFIG_
    module: str
    minor: int  # misc major 10 (include/linux/miscdevice.h)
    mode: str  # what udev's default rules give it
    what: str


VHOST_NET = MiscNode(DEV_VHOST_NET, vhost_net_node, "VHOST_NET", "vhost_net", 238, "0660",
                     "the in-kernel virtio-net backend (vhost-net)")
TUN = MiscNode(DEV_TUN, tun_node, "TUN", "tun", 200, "0666", "TUN/TAP devices for guest network interfaces")


def _remake(m: MiscNode) -> list[str]:
    parent = m.path.rsplit("/", 1)[0]
    return [*([f"mkdir -p {parent}"] if parent != "/dev" else []), f"mknod -m {m.mode} {m.path} c 10 {m.minor}",
            f"udevadm trigger --action=add --sysname-match={m.path.rsplit('/', 1)[1]}   # udev sets its group"]


def _misc_node(host: Host, m: MiscNode) -> Outcome:
    option = f"CONFIG_{m.option}"
    if not host.has_runtime:
        kc = maybe(host, kernel_config)
        if kc is None:
            return not_applicable(f"an unbooted image has no {m.path} (/dev is filled at boot), and no kernel config"
                                  f" says whether its kernel provides {m.what}")
        value = kc.config.get(m.option)
        ev = Evidence(source=kc.source, observed=kc.config.describe(m.option), expected=f"{option}=y or m")
        if value == "y":
            return passed(f"the image's kernel has {m.what} built in ({option}=y): {m.path} appears at boot", ev)
        if value == "m":
            return passed(f"the image's kernel has {m.what} as module {m.module} ({option}=m): kmod creates {m.path}"
                          " at boot and the first open loads the module", ev)
        return failed(f"the image's kernel is built without {m.what} ({kc.config.describe(m.option)})", ev,
                      fix=stock_kernel(FixTarget.of(host), arch_name(host)), reboot=True,
                      notes=f"No module to load: install a kernel built with {option}=m or y.")
    node: Node = host.fact(m.node)
    ev = Evidence(source=m.path, observed=f"{node.kind} device" if node.kind in ("char", "block") else
                  (node.kind or "absent"), expected="character device")
    if node.kind == "char":
        return passed(f"{m.path} is a character device", ev)
    kc = hint(lambda: host.fact(kernel_config))
    value = kc.config.get(m.option) if kc else None
    evidence = [ev]
    if kc is not None:
        evidence.append(Evidence(source=kc.source, observed=kc.config.describe(m.option), expected=f"{option}=y or m"))
    if node.kind is not None:
        return failed(f"{m.path} is a {node.kind}, not a character device", evidence,
                      fix=[*remove_file(m.path), *_remake(m)], notes="Something replaced the device node.")
    if kc is not None and (value is None or value == NOT_SET):
        return failed(f"{m.path} does not exist: the running kernel is built without {m.what}"
                      f" ({kc.config.describe(m.option)})", evidence,
                      fix=stock_kernel(FixTarget.of(host), arch_name(host)), reboot=True,
                      notes=f"No module to load: boot a kernel built with {option}=m or y.")
    if value == "y":
        return failed(f"{m.path} does not exist although {m.what} is built in ({option}=y)", evidence,
                      fix=_remake(m), notes="devtmpfs or udev did not create the node; make it by hand.")
    return failed(f"{m.path} does not exist: module {m.module} is not loaded", evidence,
                  fix=persist_module(FixTarget.of(host), m.module),
                  notes=f"Loading {m.module} creates {m.path}; the modules-load.d file loads it at every boot.")


@check(
    "kvm.vhost_net",
    title="/dev/vhost-net exists (in-kernel virtio-net backend)",
    severity=Severity.LOW,
    reads=[DEV_VHOST_NET, "kernel config"],
    example_fix=["modprobe vhost_net", "echo vhost_net > /etc/modules-load.d/vhost_net.conf"],
)
def kvm_vhost_net(host: Host, policy: Policy) -> Outcome:
    """libvirt gives virtio-net guests the in-kernel vhost-net backend when /dev/vhost-net exists;
    without it packets go through QEMU's userspace, with more latency and CPU per packet
    (virt-host-validate: 'Checking if device /dev/vhost-net exists')."""
    return _misc_node(host, VHOST_NET)


@check(
    "kvm.tun",
    title="/dev/net/tun exists (TAP devices for guest networking)",
    severity=Severity.HIGH,
    reads=[DEV_TUN, "kernel config"],
    example_fix=["modprobe tun", "echo tun > /etc/modules-load.d/tun.conf"],
)
def kvm_tun(host: Host, policy: Policy) -> Outcome:
    """Bridged and NAT guest interfaces are TAP devices, made through /dev/net/tun; without it libvirt
    cannot start a guest with a network interface of type bridge or network (virt-host-validate:
    'Checking if device /dev/net/tun exists')."""
    return _misc_node(host, TUN)


@hookimpl
def hostaudit_checks() -> list[Check]:
    return [kvm_device_access, kvm_vhost_net, kvm_tun]
