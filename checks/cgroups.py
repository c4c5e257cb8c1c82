"""cgroups.controllers: the cgroup controllers libvirt's QEMU driver uses, where the host has them.

Parity with ``virt-host-validate qemu`` ("Checking for cgroup 'memory' controller support"): cpu,
cpuacct, cpuset, memory, devices and blkio, judged by where each controller actually is.

- cgroup v1 (legacy): a ``cgroup`` mount carrying the controller (its mount options), the kernel's
  /proc/cgroups for compiled in, enabled and bound.
- cgroup v2 (unified, cgroup2 on /sys/fs/cgroup): cpu, memory, io and cpuset offered at the root
  (cgroup.controllers) and, once guests run, enabled in cgroup.subtree_control at every level down to
  the guest partition (systemd's machine.slice; ``machine`` where libvirt runs without systemd).
  v2 has no cpuacct (CPU usage is in every cgroup's cpu.stat) and no devices controller: libvirt
  attaches BPF device programs, which need CONFIG_CGROUP_BPF (from the kernel config).
- hybrid (v1 controllers, cgroup2 on /sys/fs/cgroup/unified): each controller is judged where it is,
  as libvirt does: a v1 mount first, else the v2 hierarchy when that offers any controller.
- pids is reported, not judged.

Choices where issue #13 is silent:

- With no guest running (no machine.slice yet, or one without guest cgroups) the v2 tree is judged
  at the root: the controllers must be offered there (cgroup.controllers). systemd enables them down
  to machine.slice on demand (machined's guest scopes have Delegate=yes) and takes them back when the
  last guest stops, so an idle host's subtree_control is reported, not failed.
- A kernel without CONFIG_CGROUP_BPF on v2 fails, like a v1 host without the devices controller.
- A kernel config that cannot be found leaves v2 device control unconfirmed: a warning.
- An image (no /proc): the layout is decided when it boots, so the kernel config is judged
  (CONFIG_CGROUPS, CGROUP_SCHED, CPUSETS, MEMCG, BLK_CGROUP; CGROUP_BPF for v2, CGROUP_DEVICE and
  CGROUP_CPUACCT for v1) with the boot command line (cgroup_disable=, cgroup_no_v1=,
  systemd.unified_cgroup_hierarchy=). Without that parameter both layouts are judged: a gap in only
  one of them is a warning that names it. Kernels before 4.5 have no cgroup v2: v1 only.
- A snapshot is judged like the host it was taken from (it carries every path declared here).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from audit import hookimpl
from audit.boot.facts import boot_cmdline
from audit.errors import FactUnavailable
from audit.host.arch import arch_name
from audit.host.cgroups import (
    PROC_CGROUPS,
    SELF_CGROUP,
    SELF_MOUNTINFO,
    SUBTREE_FILE,
    CgroupMounts,
    V2Level,
    V2Tree,
    cgroup2_tree,
    cgroup_mounts,
    proc_cgroups,
    self_cgroup,
    systemd_booted,
    v1_mounts,
)
from audit.host.core import Host
from audit.host.kernel import CMDLINE, KconfigFact, kernel_config
from audit.model import Check, Evidence, Outcome, Severity, check, failed, passed, warned
from audit.parsers.cgroups import V2_NAMES, CgroupSubsys, controller_aliases, names_in, v1_controllers
from audit.parsers.cmdline import Param, last, values
from audit.parsers.kconfig import NOT_SET
from audit.parsers.mounts import Mount
from audit.policy import Policy
from audit.record import Record
from audit.remedy.cmdline import kernel_params
from audit.remedy.packages import stock_kernel
from audit.remedy.system import make_dir, runtime_only, write_now
from audit.remedy.target import FixTarget
from checks._common import hint, maybe, q

#: What virt-host-validate asks for, in its order (libvirt's v1 names).
REQUIRED = ("cpu", "cpuacct", "cpuset", "memory", "devices", "blkio")
#: The kernel options behind each controller (init/Kconfig). On v2 devices is CGROUP_BPF instead.
KCONFIG = {"cpu": "CGROUP_SCHED", "cpuacct": "CGROUP_CPUACCT", "cpuset": "CPUSETS", "memory": "MEMCG",
           "devices": "CGROUP_DEVICE", "blkio": "BLK_CGROUP", "pids": "CGROUP_PIDS"}
#: Older names of the same options: the memory controller was CGROUP_MEM_RES_CTLR before Linux 3.6.
KCONFIG_OLD = {"MEMCG": "CGROUP_MEM_RES_CTLR"}
#: Kernels from 6.11 (memory) and 6.12 (cpuset) build the v1 interface of these separately.
V1_INTERFACE = {"memory": "MEMCG_V1", "cpuset": "CPUSETS_V1"}
BPF = "CGROUP_BPF"
CGROUP_DISABLE = "cgroup_disable"
CGROUP_NO_V1 = "cgroup_no_v1"
UNIFIED_PARAM = "systemd.unified_cgroup_hierarchy"
DROP_IN = "/etc/systemd/system/machine.slice.d/50-hostaudit-cgroup.conf"
#: systemd settings that make it enable a controller for a slice (systemd.resource-control(5):
#: "when CPUWeight= is set, the cpu controller will be enabled"; MemoryAccounting=/IOAccounting=)
SYSTEMD_ENABLES = {"cpu": "CPUWeight=100", "io": "IOAccounting=yes", "memory": "MemoryAccounting=yes"}


def v2_name(name: str) -> str:
    return V2_NAMES.get(name, name)


class Finding(Record):
    """One controller: where it is, or why it is missing."""

    name: str
    ok: bool | None  # None: cannot be confirmed here
    text: str  # "mounted on /sys/fs/cgroup/memory (v1)", or the problem
    source: str
    params: tuple[str, ...] = ()  # kernel parameters that cause it (to remove)
    kernel: tuple[str, ...] = ()  # kernel options it lacks (CONFIG_ names without the prefix)
    mount_now: bool = False  # compiled in and enabled, not mounted: mountable now (v1)
    level: str | None = None  # v2: the cgroup whose subtree_control lacks it


class Context(Record):
    cm: CgroupMounts
    subsys: dict[str, CgroupSubsys] | None
    tree: V2Tree | None
    v1: dict[str, Mount]
    params: list[Param]
    kc: KconfigFact | None

    @property
    def v2_offers(self) -> bool:
        """libvirt uses cgroup v2 only where its root offers a controller (virCgroupV2Available)."""
        return self.tree is not None and bool(self.tree.root.controllers)


def _param_text(params: list[Param], name: str) -> str:
    return " ".join(f"{name}={v}" for v in values(params, name))


def _kernel_lacks(ctx: Context, options: Sequence[str]) -> tuple[str, ...]:
    """The options the kernel config shows off: a controller option not enabled; a v1-interface
    option (MEMCG_V1, CPUSETS_V1) only when this kernel knows it (older kernels always have v1)."""
    if ctx.kc is None:
        return ()
    return _lacking(ctx.kc, options)


def _enabled(kc: KconfigFact, option: str) -> bool:
    old = KCONFIG_OLD.get(option)
    return kc.config.enabled(option) or (old is not None and kc.config.enabled(old))


def _lacking(kc: KconfigFact, options: Sequence[str]) -> tuple[str, ...]:
    return tuple(o for o in options if (kc.config.get(o) == NOT_SET if o in V1_INTERFACE.values()
                                        else not _enabled(kc, o)))


def _cause(ctx: Context, name: str, *, v1: bool, source: str) -> Finding:
    """Why ``name`` is neither mounted (v1) nor offered (v2): the first cause that is known."""
    aliases = controller_aliases(name)
    disabled = names_in(values(ctx.params, CGROUP_DISABLE)) & aliases
    if disabled:
        return Finding(name, False, f"'{name}' is disabled on the kernel command line "
                       f"({_param_text(ctx.params, CGROUP_DISABLE)})", CMDLINE, params=(CGROUP_DISABLE,))
    no_v1 = names_in(values(ctx.params, CGROUP_NO_V1))
    if v1 and (no_v1 & aliases or "all" in no_v1):
        return Finding(name, False, f"'{name}' is kept off cgroup v1 by the kernel command line "
                       f"({_param_text(ctx.params, CGROUP_NO_V1)})", CMDLINE, params=(CGROUP_NO_V1,))
    options = [KCONFIG[name]] + ([V1_INTERFACE[name]] if v1 and name in V1_INTERFACE else [])
    lacks = _kernel_lacks(ctx, options)
    if lacks:
        built = ", ".join(f"CONFIG_{o}" for o in lacks)
        return Finding(name, False, f"'{name}': the kernel is built without {built}", ctx.kc.source if ctx.kc else "",
                       kernel=lacks)
    row = ctx.subsys.get(name) if ctx.subsys is not None else None
    if row is not None and not row.enabled:
        return Finding(name, False, f"'{name}' is disabled at boot ({PROC_CGROUPS}: enabled 0; not by /proc/cmdline: "
                       "the kernel's built-in command line or its defaults)", PROC_CGROUPS)
    if ctx.subsys is not None and row is None and v1:
        return Finding(name, False, f"'{name}' is not in {PROC_CGROUPS}: the kernel has no v1 '{name}' controller "
                       f"(CONFIG_{' or CONFIG_'.join(options)})", PROC_CGROUPS)
    if row is not None and row.hierarchy > 0 and v1:
        return Finding(name, False, f"'{name}' is bound to cgroup v1 hierarchy {row.hierarchy}, which is not "
                       "mounted in this mount namespace", PROC_CGROUPS)
    if row is not None and row.hierarchy > 0:
        return Finding(name, False, f"'{name}' is held by cgroup v1 hierarchy {row.hierarchy}, so cgroup v2 "
                       "cannot offer it", PROC_CGROUPS)
    if v1:
        return Finding(name, False, f"'{name}' is compiled in and enabled but not mounted", source,
                       mount_now=row is not None)
    return Finding(name, False, f"'{name}' is not offered by the cgroup v2 root", source)


def _on_v2(ctx: Context, name: str) -> Finding:
    tree = ctx.tree
    assert tree is not None
    root = tree.root
    ctrl_file = f"{root.path}/cgroup.controllers"
    if name == "cpuacct":
        return Finding(name, True, "cgroup v2 has no cpuacct controller: CPU usage is in every cgroup's cpu.stat "
                       "(folded into cpu; not required)", ctrl_file)
    if name == "devices":
        if ctx.kc is None:
            return Finding(name, None, "cgroup v2 has no devices controller: libvirt attaches BPF device programs, "
                           "and without a kernel config CONFIG_CGROUP_BPF cannot be confirmed", ctrl_file)
        if ctx.kc.config.enabled(BPF):
            return Finding(name, True, f"through BPF device programs ({ctx.kc.config.describe(BPF)}; cgroup v2 has no "
                           "devices controller)", ctx.kc.source)
        return Finding(name, False, f"'devices': cgroup v2 has no devices controller and the kernel is built without "
                       f"CONFIG_{BPF}, so libvirt cannot attach BPF device programs", ctx.kc.source, kernel=(BPF,))
    v2n = v2_name(name)
    if v2n not in root.controllers:
        if ctx.v1:  # hybrid: a controller v2 does not offer belongs on a v1 mount
            return _cause(ctx, name, v1=True, source=ctx.cm.source)
        cause = _cause(ctx, name, v1=False, source=ctrl_file)
        return cause._replace(text=f"{cause.text} ({ctrl_file} does not list '{v2n}')")
    part = tree.partition
    if part is not None and part.children:
        for level in (root, part):
            if v2n not in level.subtree_control:
                return Finding(name, False, f"'{v2n}' is not enabled in {level.path}/{SUBTREE_FILE}, so the guests "
                               f"below {part.path} do not get it", f"{level.path}/{SUBTREE_FILE}", level=level.path)
        return Finding(name, True, f"'{v2n}' enabled down to {part.path}", f"{part.path}/{SUBTREE_FILE}")
    return Finding(name, True, f"'{v2n}' offered at the cgroup v2 root", ctrl_file)


def _resolve(ctx: Context, name: str) -> Finding:
    mount = ctx.v1.get(name)
    if mount is not None:
        return Finding(name, True, f"mounted on {mount.target} (v1)", ctx.cm.source)
    if ctx.v2_offers:
        return _on_v2(ctx, name)
    return _cause(ctx, name, v1=True, source=ctx.cm.source)


def _layout(ctx: Context) -> str:
    if ctx.tree is not None and ctx.v1:
        return f"hybrid: cgroup v1 controllers, and cgroup v2 on {ctx.tree.mount.target}"
    if ctx.tree is not None:
        return f"cgroup v2 (unified) on {ctx.tree.mount.target}"
    if ctx.v1 or v1_mounts(ctx.cm.mounts):
        return "cgroup v1 (legacy)"
    return "no cgroup hierarchy is mounted"


def _row(m: Mount) -> str:
    if m.fstype == "cgroup2":
        return f"cgroup2 on {m.target}"
    return f"cgroup on {m.target} ({','.join(v1_controllers(m)) or 'no controllers'})"


def _level_evidence(level: V2Level, want: Sequence[str], *, judged: bool) -> list[Evidence]:
    if not want:  # every controller libvirt uses is on v1 (hybrid): what v2 offers is only reported
        return [Evidence(source=f"{level.path}/cgroup.controllers",
                         observed=(" ".join(level.controllers) or "(empty)") + " (none of libvirt's: they are on v1)")]
    expected = " ".join(want)
    ev = [Evidence(source=f"{level.path}/cgroup.controllers", observed=" ".join(level.controllers) or "(empty)",
                   expected=expected)]
    ev.append(Evidence(source=f"{level.path}/{SUBTREE_FILE}", observed=" ".join(level.subtree_control) or "(empty)",
                       expected=expected if judged else f"{expected} (once guests run; enabled on demand)"))
    return ev


def _v1_mount_commands(ctx: Context, findings: Sequence[Finding]) -> list[str]:
    cmds: list[str] = []
    fs = ctx.cm.fs_mount
    if fs is not None and fs.fstype == "tmpfs" and "ro" in fs.option_map:
        cmds.append("mount -o remount,rw /sys/fs/cgroup   # a read-only tmpfs (systemd mounts it so)")
    for f in findings:
        where = f"/sys/fs/cgroup/{f.name}"
        cmds += [f"mkdir -p {q(where)}", f"mount -t cgroup -o {q(f.name)} cgroup {q(where)}"]
    return cmds


def _v2_commands(host: Host, target: FixTarget, tree: V2Tree, findings: Sequence[Finding]) -> tuple[list[str], str]:
    part = tree.partition
    assert part is not None
    names = [v2_name(f.name) for f in findings]
    cmds = []
    for level in (tree.root, part):
        missing = [n for n in names if n not in level.subtree_control]
        if missing:
            cmds.append(write_now(f"{level.path}/{SUBTREE_FILE}", " ".join(f"+{n}" for n in missing)))
    cmds = runtime_only(target, cmds)
    systemd = hint(lambda: host.fact(systemd_booted))
    notes = ("Writing subtree_control takes effect now, top-down; guests already running get the controller "
             "in their own cgroups when they next start.")
    if systemd is False or target.init != "systemd":
        cmds.append("# without systemd libvirt enables what the root offers in its own /machine partition; "
                    "OpenRC: rc_cgroup_mode=\"unified\" in /etc/rc.conf")
        return cmds, notes
    at_root = [n for n in names if n not in tree.root.subtree_control]
    settings = [SYSTEMD_ENABLES[n] for n in at_root if n in SYSTEMD_ENABLES]
    notes += " systemd owns the tree and may take a hand-written controller back."
    if settings:
        lines = ["[Slice]", *settings]
        cmds += [make_dir(target, DROP_IN.rsplit("/", 1)[0]),
                 f"printf '%s\\n' {' '.join(q(ln) for ln in lines)} > {target.path(DROP_IN)}",
                 *runtime_only(target, ["systemctl daemon-reload"])]
        notes += (f" The drop-in's {', '.join(settings)} make systemd keep those controllers enabled for "
                  "machine.slice itself (systemd.resource-control(5)).")
    if "cpuset" in at_root:
        notes += " cpuset has no such setting short of pinning machine.slice (AllowedCPUs=)."
    cmds.append("# systemd enables in machine.slice every controller it delegates to machined's guest scopes "
                "(Delegate=yes; cpuset from systemd 244); what holds one back: "
                "systemctl show -p DisableControllers machine.slice -.slice")
    return cmds, notes


def _fix(host: Host, ctx: Context, bad: Sequence[Finding]) -> tuple[list[str], bool, str]:
    target = FixTarget.of(host)
    cmds: list[str] = []
    notes: list[str] = []
    reboot = False
    params = sorted({p for f in bad for p in f.params})
    if params:
        cmds += kernel_params(target, remove=params, topic="cgroups")
        reboot = True
        them = "it" if len(params) == 1 else "them"
        notes.append(f"The kernel reads {', '.join(params)} once, at boot: remove {them} and reboot.")
    options = sorted({o for f in bad for o in f.kernel})
    if options:
        cmds.append(f"# boot a kernel built with {', '.join(f'CONFIG_{o}=y' for o in options)}")
        cmds += stock_kernel(target, hint(lambda: arch_name(host)))
        reboot = True
    mountable = [f for f in bad if f.mount_now]
    if mountable:
        cmds += runtime_only(target, _v1_mount_commands(ctx, mountable))
        cmds.append("# persistent: the init system mounts every v1 controller the kernel offers at boot "
                    "(systemd does; without it: cgroupfs-mount, or OpenRC's rc_cgroup_mode)")
    levels = [f for f in bad if f.level is not None]
    if levels and ctx.tree is not None:
        more, note = _v2_commands(host, target, ctx.tree, levels)
        cmds += more
        notes.append(note)
    return cmds, reboot, " ".join(notes)


def _pids(ctx: Context) -> Evidence:
    mount = ctx.v1.get("pids")
    if mount is not None:
        return Evidence(source=ctx.cm.source, observed=f"pids: mounted on {mount.target} (v1; reported, not judged)")
    if ctx.tree is not None and "pids" in ctx.tree.root.controllers:
        return Evidence(source=f"{ctx.tree.root.path}/cgroup.controllers",
                        observed="pids: offered by cgroup v2 (reported, not judged)")
    return Evidence(source=ctx.cm.source, observed="pids: not available (reported, not judged)")


def _live(host: Host) -> Outcome:
    cm = host.fact(cgroup_mounts)
    rows = maybe(host, proc_cgroups)
    try:
        tree, v2_unknown = host.fact(cgroup2_tree), None
    except FactUnavailable as exc:  # cgroup2 is mounted, its files are not here (an old snapshot)
        tree, v2_unknown = None, exc
    v1: dict[str, Mount] = {}
    for m in v1_mounts(cm.mounts):
        for c in v1_controllers(m):
            v1[c] = m  # a later row covers an earlier one
    ctx = Context(cm=cm, subsys={r.name: r for r in rows} if rows is not None else None, tree=tree, v1=v1,
                  params=hint(lambda: host.cmdline) or [], kc=maybe(host, kernel_config))
    findings = [_resolve(ctx, name) for name in REQUIRED]
    layout = _layout(ctx)
    ev = [Evidence(source=cm.source, observed=f"{layout}; cgroup mounts: "
                   + ("; ".join(_row(m) for m in cm.mounts) or "none"))]
    if rows is not None:
        ev.append(Evidence(source=PROC_CGROUPS, observed="; ".join(
            f"{r.name} hierarchy {r.hierarchy} {'enabled' if r.enabled else 'disabled'}"
            for r in rows if r.name in (*REQUIRED, "pids")) or "no rows"))
    membership = hint(lambda: host.fact(self_cgroup))
    if membership:
        ev.append(Evidence(source=SELF_CGROUP, observed=" ".join(
            f"{r.hierarchy}:{','.join(r.controllers)}:{r.path}" for r in membership[:16])))
    on_v2 = [f for f in findings if f.name not in v1 and ctx.v2_offers]
    guests = tree is not None and tree.partition is not None and bool(tree.partition.children)
    if tree is not None and ctx.v2_offers:
        want = [v2_name(n) for n in REQUIRED if n not in ("cpuacct", "devices") and n not in v1]
        ev += _level_evidence(tree.root, want, judged=guests)
        if tree.partition is not None:
            ev += _level_evidence(tree.partition, want, judged=guests)
            ev.append(Evidence(source=tree.partition.path, observed=(
                f"{len(tree.partition.children)} guest cgroup(s): " + ", ".join(tree.partition.children[:8])
                if guests else "no guest cgroup (no guest running)")))
    for f in findings:
        ev.append(Evidence(source=f.source, observed=f"{f.name}: {f.text}", expected=_expected(f)))
    ev.append(_pids(ctx))
    wanted = {a for n in REQUIRED for a in controller_aliases(n)} | {"all"}
    for p in (CGROUP_DISABLE, CGROUP_NO_V1):
        if not names_in(values(ctx.params, p)) & wanted:
            continue
        ev.append(Evidence(source=CMDLINE, observed=_param_text(ctx.params, p),
                           expected=f"no {p}= naming a controller libvirt uses"))
    bad = [f for f in findings if f.ok is False]
    if bad and v2_unknown is not None:
        raise v2_unknown  # what v1 lacks, the v2 hierarchy might offer: unknown, not failed
    if bad:
        cmds, reboot, notes = _fix(host, ctx, bad)
        return failed(f"{layout}: " + "; ".join(_problems(bad, tree)), ev, fix=cmds, reboot=reboot,
                      notes=notes or "libvirt uses each controller it finds; without one its resource tuning "
                      "(memtune, blkiotune, cputune, numatune, device ACLs) fails for every guest.")
    unsure = [f for f in findings if f.ok is None]
    if unsure:
        return warned(f"{layout}: " + "; ".join(f.text for f in unsure), ev,
                      fix=["# make the kernel config readable: /proc/config.gz (CONFIG_IKCONFIG_PROC) or "
                           "/boot/config-$(uname -r)"])
    return passed(_pass_message(ctx, layout, on_v2, guests), ev)


def _expected(f: Finding) -> str | None:
    if f.ok:
        return None
    if f.level is not None:
        return f"'{v2_name(f.name)}' in {f.level}/{SUBTREE_FILE}"
    return "mounted (v1) or offered (v2)"


def _problems(bad: Sequence[Finding], tree: V2Tree | None) -> list[str]:
    """One phrase per problem; controllers missing at the same v2 level are named together."""
    out: list[str] = []
    by_level: dict[str, list[str]] = {}
    for f in bad:
        if f.level is None:
            out.append(f.text)
        else:
            by_level.setdefault(f.level, []).append(v2_name(f.name))
    below = tree.partition.path if tree is not None and tree.partition is not None else "it"
    for level, names in by_level.items():
        listed = ", ".join(f"'{n}'" for n in names)
        verb, them = ("is", "it") if len(names) == 1 else ("are", "them")
        out.append(f"{listed} {verb} not enabled in {level}/{SUBTREE_FILE}, so the guests below {below} do not "
                   f"get {them}")
    return out


def _pass_message(ctx: Context, layout: str, on_v2: Sequence[Finding], guests: bool) -> str:
    names = [f.name for f in on_v2 if f.name not in ("cpuacct", "devices")]
    v1_names = [n for n in REQUIRED if n in ctx.v1]
    parts = []
    if v1_names:
        parts.append(f"{', '.join(v1_names)} mounted (v1)")
    if names and ctx.tree is not None:
        v2 = ", ".join(v2_name(n) for n in names)
        part = ctx.tree.partition
        if guests and part is not None:
            parts.append(f"{v2} enabled down to {part.path}")
        elif part is not None:
            parts.append(f"{v2} offered at the root ({ctx.tree.root.path}/cgroup.controllers); judged at the root: "
                         f"{part.path} has no guest cgroup, and systemd enables the controllers there when a guest "
                         "starts")
        else:
            parts.append(f"{v2} offered at the root ({ctx.tree.root.path}/cgroup.controllers); judged at the root: "
                         "no machine.slice yet (no guest started), and systemd enables the controllers down to it "
                         "when the first guest starts")
    if "devices" not in ctx.v1 and ctx.v2_offers:
        parts.append("devices through BPF device programs (CONFIG_CGROUP_BPF=y)")
    if "cpuacct" not in ctx.v1 and ctx.v2_offers:
        parts.append("cpuacct is part of cpu on v2")
    return f"{layout}: " + "; ".join(parts)


# -- an image: the kernel config and the boot command line ---------------------------------------------

_RELEASE = re.compile(r"(\d+)\.(\d+)")


def _has_v2(kc: KconfigFact) -> bool:
    m = _RELEASE.match(kc.config.version or kc.release)
    return m is None or (int(m.group(1)), int(m.group(2))) >= (4, 5)


def _layout_choice(params: list[Param]) -> bool | None:
    """systemd.unified_cgroup_hierarchy= on the command line: True (v2), False (v1), None (absent)."""
    value = last(params, UNIFIED_PARAM)
    if value is None:
        return None
    return value.strip().lower() not in ("0", "no", "false", "off", "n")


def _image_gaps(kc: KconfigFact, params: list[Param], *, v2: bool) -> list[tuple[str, str, tuple[str, ...]]]:
    """(controller, problem, kernel options lacking) for one layout; kernel parameters are judged apart."""
    gaps = []
    disabled = names_in(values(params, CGROUP_DISABLE))
    no_v1 = names_in(values(params, CGROUP_NO_V1))
    for name in REQUIRED:
        if v2 and name == "cpuacct":
            continue
        options = [BPF] if v2 and name == "devices" else [KCONFIG[name]]
        if not v2 and name in V1_INTERFACE:
            options.append(V1_INTERFACE[name])
        lacks = _lacking(kc, options)
        if lacks:
            gaps.append((name, f"'{name}': built without {', '.join(f'CONFIG_{o}' for o in lacks)}", lacks))
        elif controller_aliases(name) & disabled:
            gaps.append((name, f"'{name}': disabled by {_param_text(params, CGROUP_DISABLE)}", ()))
        elif not v2 and (controller_aliases(name) & no_v1 or "all" in no_v1):
            gaps.append((name, f"'{name}': kept off cgroup v1 by {_param_text(params, CGROUP_NO_V1)}", ()))
    return gaps


def _image(host: Host) -> Outcome:
    kc = host.fact(kernel_config)  # no kernel config: nothing to judge an image by (skip, with the reason)
    boot = hint(lambda: host.fact(boot_cmdline))
    params = list(boot.params) if boot is not None and boot.params is not None else []
    ev = [Evidence(source=kc.source, observed="; ".join(kc.config.describe(o) for o in
                                                        ("CGROUPS", *dict.fromkeys(KCONFIG.values()), BPF)))]
    if boot is not None:
        ev.append(Evidence(source=boot.source, observed=boot.summary))
    target = FixTarget.of(host)
    if not kc.config.enabled("CGROUPS"):
        return failed("the kernel is built without CONFIG_CGROUPS: no controller at all", ev,
                      fix=["# boot a kernel built with CONFIG_CGROUPS=y", *stock_kernel(target, hint(
                          lambda: arch_name(host)))], reboot=True)
    choice = _layout_choice(params)
    if not _has_v2(kc):
        layouts, why = [False], f"kernel {kc.release} predates cgroup v2 (4.5): v1"
    elif choice is None:
        layouts, why = [True, False], (f"no {UNIFIED_PARAM}= on the boot command line: the layout is systemd's "
                                       "default (v2 since systemd 243 and on current distributions), both are judged")
    else:
        layouts, why = [choice], f"{UNIFIED_PARAM}={last(params, UNIFIED_PARAM)}: {'v2' if choice else 'v1'}"
    ev.append(Evidence(source=boot.source if boot is not None else "boot configuration", observed=why))
    gaps = {v2: _image_gaps(kc, params, v2=v2) for v2 in layouts}
    ev.append(Evidence(source=kc.source,
                       observed=f"pids: {kc.config.describe(KCONFIG['pids'])} (reported, not judged)"))
    for p in (CGROUP_DISABLE, CGROUP_NO_V1):
        if values(params, p):
            ev.append(Evidence(source=boot.source if boot else "boot configuration", observed=_param_text(params, p),
                               expected=f"no {p}= naming a controller libvirt uses"))
    name = {True: "cgroup v2", False: "cgroup v1"}
    failing = [v2 for v2 in layouts if gaps[v2]]
    prefix = "image (layout decided at boot; judged from the kernel config and the boot command line)"
    if not failing:
        layouts_text = " and ".join(name[v] for v in layouts)
        return passed(f"{prefix}: {layouts_text} would have every controller libvirt uses", ev)
    all_gaps = [g for v2 in failing for g in gaps[v2]]
    cmds: list[str] = []
    remove = sorted({p for p in (CGROUP_DISABLE, CGROUP_NO_V1) if any(f"{p}=" in g[1] for g in all_gaps)})
    if remove:
        cmds += kernel_params(target, remove=remove, topic="cgroups")
    options = sorted({o for g in all_gaps for o in g[2]})
    if options:
        cmds += [f"# boot a kernel built with {', '.join(f'CONFIG_{o}=y' for o in options)}",
                 *stock_kernel(target, hint(lambda: arch_name(host)))]
    texts = {v: ", ".join(g[1] for g in gaps[v]) for v in failing}
    if len(failing) == 2 and texts[True] == texts[False]:
        message = f"{prefix}: {texts[True]} (either layout)"
    else:
        message = f"{prefix}: " + "; ".join(f"{name[v]}: {texts[v]}" for v in failing)
    notes = f"The kernel reads {', '.join(remove)} once, at boot." if remove else ""
    if len(failing) < len(layouts):
        return warned(message + f" (the {name[not failing[0]]} layout has them all)", ev, fix=cmds, reboot=True,
                      notes=notes)
    return failed(message, ev, fix=cmds, reboot=True, notes=notes)


@check(
    "cgroups.controllers",
    title="cgroup controllers libvirt uses are available (cpu, cpuacct, cpuset, memory, devices, blkio)",
    severity=Severity.MEDIUM,
    reads=[SELF_MOUNTINFO, PROC_CGROUPS, "/sys/fs/cgroup/cgroup.controllers", "/sys/fs/cgroup/cgroup.subtree_control",
           "/sys/fs/cgroup/machine.slice/cgroup.subtree_control", SELF_CGROUP, CMDLINE, "kernel config",
           "boot configuration"],
    example_fix=["grubby --update-kernel=ALL --remove-args=cgroup_disable",
                 "echo '+cpu +memory +io +cpuset' > /sys/fs/cgroup/machine.slice/cgroup.subtree_control"],
)
def cgroup_controllers(host: Host, policy: Policy) -> Outcome:
    """libvirt confines and tunes every guest through cgroups: memory (memtune, the OOM boundary of a
    guest), cpu and cpuacct (cputune shares, quotas and CPU statistics), cpuset (numatune, emulator
    pinning), blkio/io (blkiotune) and devices (which device nodes QEMU may open; on cgroup v2 a BPF
    program). virt-host-validate warns for each one missing; libvirt then silently drops that tuning
    for every guest. cgroup_disable= on the kernel command line is the classic cause."""
    if not host.has_runtime:
        return _image(host)
    return _live(host)


@hookimpl
def hostaudit_checks() -> list[Check]:
    return [cgroup_controllers]
