"""Host trees for the memory, boot and IOMMU check tests: dicts for ``make_root`` built from the
real samples in tests/data (proc/, sys/ from the name=value listings, grub/, kconfig/, cpuinfo/).

Every builder returns a plain dict, so a test adds, replaces or drops single files before calling
``make_root``. Live-like trees have ``proc/`` (the host then has a running kernel to ask); image
trees do not.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import DATA, Dir, Link, cpuinfo_sample, kconfig_sample

PROC = DATA / "proc"
GRUB = DATA / "grub"

Tree = dict[str, "str | bytes | Path | Link | Dir"]


def sysfs_from_listing(listing: Path, base: str) -> Tree:
    """Real sysfs-like files under ``base`` from a ``name=value`` listing (one file a line, as
    collected from the machine). ``dir/`` lines become directories; a value the collector could
    not read (``<write-only, ...>``) becomes no file, like a tunable the auditor cannot read."""
    tree: Tree = {}
    for line in listing.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        if line.endswith("/") and "=" not in line:
            tree[f"{base}/{line.rstrip('/')}"] = Dir()
            continue
        name, eq, value = line.partition("=")
        if not eq:
            raise ValueError(f"{listing}: not a name=value line: {line!r}")
        if value.startswith("<") and value.endswith(">"):
            continue
        tree[f"{base}/{name}"] = value + "\n"
    return tree


def grub_sample(name: str) -> str:
    return (GRUB / name).read_text(encoding="utf-8")


def grubenv(**values: str) -> str:
    """A real 1024-byte GRUB environment block (signature, key=value lines, '#' padding)."""
    body = "# GRUB Environment Block\n" + "".join(f"{k}={v}\n" for k, v in values.items())
    if len(body) > 1024:
        raise ValueError("grubenv values do not fit in 1024 bytes")
    return body + "#" * (1024 - len(body))


# -- live (a running kernel under proc/ and sys/) ---------------------------------------------------


#: /proc/cmdline of the machine the fixtures were collected on (shared fixtures, proc/this-vm/cmdline).
THIS_VM_CMDLINE = ("mitigations=auto,no_guest_host,no_guest_guest console=ttyS0 quiet reboot=k panic=1 nomodule "
                   "random.trust_cpu=1 swiotlb=noforce psi=1 page_reporting.page_reporting_order=11 "
                   "deferred_init=lazy nested_pvm=1")


def live_tree(
    sample: str = "this-vm",
    *,
    cpuinfo: str = "this-vm.txt",
    cmdline: str | None = THIS_VM_CMDLINE,
    release: str | None = "6.18.44",
    thp: str | None = None,
    ksm: bool = True,
) -> Tree:
    """proc/ and sys/ of the machine the fixtures were collected on, as real files.

    ``sample`` is ``this-vm`` (default state) or ``this-vm-hugepages`` (512 x 2M + 2 x 1G reserved,
    hugetlbfs mounted for both sizes; files it lacks come from ``this-vm``). ``thp`` replaces the
    ``enabled`` line; ``ksm=False`` leaves out /sys/kernel/mm/ksm (a kernel without CONFIG_KSM);
    ``cmdline=None`` leaves out /proc/cmdline.
    """
    base, own = PROC / "this-vm", PROC / sample

    def pick(name: str) -> Path:
        return own / name if (own / name).exists() else base / name

    tree: Tree = {
        "proc/cpuinfo": cpuinfo_sample(cpuinfo),
        "proc/meminfo": pick("meminfo"),
        "proc/mounts": pick("mounts"),
        "proc/swaps": pick("swaps"),
        "proc/self": Dir(),
    }
    if cmdline is not None:
        tree["proc/cmdline"] = cmdline + "\n"
    if release is not None:
        tree["proc/sys/kernel/osrelease"] = release + "\n"
    if (own / "proc-sys-vm-nr_hugepages").exists():
        tree["proc/sys/vm/nr_hugepages"] = own / "proc-sys-vm-nr_hugepages"
    tree.update(sysfs_from_listing(pick("sys-kernel-mm-hugepages.txt"), "sys/kernel/mm/hugepages"))
    tree.update(sysfs_from_listing(pick("sys-kernel-mm-transparent_hugepage.txt"),
                                   "sys/kernel/mm/transparent_hugepage"))
    if ksm:
        tree.update(sysfs_from_listing(pick("sys-kernel-mm-ksm.txt"), "sys/kernel/mm/ksm"))
    if thp is not None:
        tree["sys/kernel/mm/transparent_hugepage/enabled"] = thp
    return tree


def ksm_running(tree: Tree, *, pages_sharing: int = 100000) -> Tree:
    """The tree with KSM merging now (run=1 and pages being shared)."""
    tree = dict(tree)
    tree["sys/kernel/mm/ksm/run"] = "1\n"
    tree["sys/kernel/mm/ksm/pages_sharing"] = f"{pages_sharing}\n"
    tree["sys/kernel/mm/ksm/pages_shared"] = f"{max(1, pages_sharing // 10)}\n"
    return tree


def swaps_text(*devices: tuple[str, int]) -> str:
    """/proc/swaps with the header and (path, size in KiB) rows."""
    rows = "".join(f"{path}\t\t\t\tfile\t\t{kib}\t\t0\t\t-2\n" for path, kib in devices)
    return (PROC / "this-vm" / "swaps").read_text() + rows


#: systemd's own dev-hugepages.mount (units/dev-hugepages.mount), as shipped in /usr/lib or /lib.
DEV_HUGEPAGES_MOUNT = """\
#  SPDX-License-Identifier: LGPL-2.1-or-later
#
#  This file is part of systemd.

[Unit]
Description=Huge Pages File System
Documentation=https://docs.kernel.org/admin-guide/mm/hugetlbpage.html
Documentation=https://www.freedesktop.org/wiki/Software/systemd/APIFileSystems
DefaultDependencies=no
Before=sysinit.target
ConditionPathExists=/sys/kernel/mm/hugepages
ConditionCapability=CAP_SYS_ADMIN
ConditionVirtualization=!private-users

[Mount]
What=hugetlbfs
Where=/dev/hugepages
Type=hugetlbfs
Options=nosuid,nodev
"""


def systemd_hugepages_unit(unit_dir: str = "usr/lib/systemd/system") -> Tree:
    """dev-hugepages.mount and the vendor sysinit.target.wants link that starts it at every boot."""
    return {
        f"{unit_dir}/dev-hugepages.mount": DEV_HUGEPAGES_MOUNT,
        f"{unit_dir}/sysinit.target.wants/dev-hugepages.mount": Link("../dev-hugepages.mount"),
    }


def ksmtuned_unit(unit_dir: str = "usr/lib/systemd/system") -> Tree:
    """ksmtuned.service as qemu-kvm/ksmtuned packages ship it (not enabled)."""
    return {f"{unit_dir}/ksmtuned.service": (
        "[Unit]\nDescription=Kernel Samepage Merging (KSM) Tuning Daemon\nAfter=ksm.service\n"
        "Requires=ksm.service\n\n[Service]\nExecStart=/usr/sbin/ksmtuned\nExecReload=/bin/kill -USR1 $MAINPID\n\n"
        "[Install]\nWantedBy=multi-user.target\n")}


# -- CentOS 6: legacy GRUB, no os-release, RHEL 6's THP directory, SysV init ------------------------

EL6_RELEASE = "2.6.32-696.el6.x86_64"
EL6_PARAMS = "hugepagesz=2MB hugepages=512 default_hugepagesz=2MB intel_iommu=on"


def centos6_grub_conf(params: str = EL6_PARAMS) -> str:
    """rhel5-grub.conf (anaconda's legacy grub.conf) with an EL6 kernel and ``params`` added to
    the default (first) entry's kernel line."""
    text = grub_sample("rhel5-grub.conf").replace("2.6.18-308.1.1.el5", EL6_RELEASE)
    first = f"kernel /vmlinuz-{EL6_RELEASE} ro root=/dev/VolGroup00/LogVol00 rhgb quiet"
    assert text.count(first) == 1
    return text.replace(first, f"{first} {params}".rstrip())


def centos6_tree(*, live: bool, params: str = EL6_PARAMS, os_release: bool = False,
                 thp: str = "[always] madvise never") -> Tree:
    """A CentOS 6 KVM host: /boot/grub/grub.conf (with /etc/grub.conf linking to it, as anaconda
    leaves it), /etc/redhat-release only (EL6 has no os-release unless ``os_release``), the RHEL 6
    kernel config, RHEL 6's THP directory only. Live adds proc/ booted with ``params``."""
    tree: Tree = {
        "boot/grub/grub.conf": centos6_grub_conf(params),
        "etc/grub.conf": Link("../boot/grub/grub.conf"),
        "boot/vmlinuz-" + EL6_RELEASE: "kernel image\n",
        "boot/config-" + EL6_RELEASE: kconfig_sample("rhel6-config-2.6.32-696.el6.x86_64"),
        "etc/redhat-release": "CentOS release 6.10 (Final)\n",
        "etc/rc.d/rc3.d": Dir(),
        "etc/rc3.d": Link("rc.d/rc3.d"),
    }
    if os_release:
        tree["etc/os-release"] = 'NAME="CentOS Linux"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="6"\n'
    if live:
        tree.update(live_tree(cpuinfo="intel-xeon-e5640-westmere-ep.txt", release=EL6_RELEASE,
                              cmdline=f"ro root=/dev/VolGroup00/LogVol00 rhgb quiet {params}".rstrip()))
        thp_files = {k: v for k, v in tree.items() if k.startswith("sys/kernel/mm/transparent_hugepage")}
        for k in thp_files:
            del tree[k]
        tree["sys/kernel/mm/redhat_transparent_hugepage/enabled"] = thp + "\n"
        tree["sys/kernel/mm/redhat_transparent_hugepage/defrag"] = "[always] madvise never\n"
    return tree


# -- Debian 12: /etc/default/grub edited, grub.cfg not regenerated -----------------------------------

DEBIAN_RELEASE = "6.1.0-13-amd64"
DEBIAN_OS_RELEASE = (
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
    'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'
    'HOME_URL="https://www.debian.org/"\n'
)


def debian_default_grub(cmdline_linux: str = "hugepagesz=1G hugepages=16") -> str:
    """Debian 12's shipped /etc/default/grub with GRUB_CMDLINE_LINUX edited."""
    text = grub_sample("debian12-grub2-common-default-grub")
    assert 'GRUB_CMDLINE_LINUX=""\n' in text
    return text.replace('GRUB_CMDLINE_LINUX=""\n', f'GRUB_CMDLINE_LINUX="{cmdline_linux}"\n')


def debian12_grub_cfg(params: str = "") -> str:
    """The real grub-mkconfig output, as if regenerated with GRUB_CMDLINE_LINUX=``params``
    (grub-mkconfig writes "ro ${GRUB_CMDLINE_LINUX} ${GRUB_CMDLINE_LINUX_DEFAULT}")."""
    text = grub_sample("debian12-grub.cfg")
    return text.replace("ro  quiet", f"ro {params} quiet") if params else text


DEBIAN_ROOT = "root=UUID=3c1b3b7e-5d2a-4a57-9d0e-8f1c2b7a6e01"


def debian12_tree(asked: str = "hugepagesz=1G hugepages=16", booted: str | None = None,
                  *, kconfig: str = "debian12-config-6.1.0-56-amd64") -> Tree:
    """An image of a Debian 12 host whose /etc/default/grub asks for ``asked`` on
    GRUB_CMDLINE_LINUX. ``booted`` None: /boot/grub/grub.cfg is the real generated sample, not
    regenerated since; else it is regenerated with ``booted``."""
    return {
        "etc/os-release": DEBIAN_OS_RELEASE,
        "etc/default/grub": debian_default_grub(asked),
        "boot/grub/grub.cfg": debian12_grub_cfg(booted or ""),
        "boot/vmlinuz-" + DEBIAN_RELEASE: "kernel image\n",
        "boot/config-" + DEBIAN_RELEASE: kconfig_sample(kconfig),
        "usr/sbin/update-grub": "#!/bin/sh\nexec grub-mkconfig -o /boot/grub/grub.cfg \"$@\"\n",
        **systemd_hugepages_unit("lib/systemd/system"),
    }


def debian12_live(params: str = "", sample: str = "this-vm", *, cpuinfo: str = "intel-xeon-e5-2690v4-broadwell-ep.txt",
                  kconfig: str = "debian12-config-6.1.0-56-amd64", **live: object) -> Tree:
    """A running Debian 12 host booted with ``params`` from a grub.cfg regenerated with them."""
    tree = debian12_tree(params, params, kconfig=kconfig)
    cmdline = f"BOOT_IMAGE=/boot/vmlinuz-6.1.0-12-amd64 {DEBIAN_ROOT} ro {params} quiet".replace("  ", " ")
    tree.update(live_tree(sample, cpuinfo=cpuinfo, cmdline=cmdline, release=DEBIAN_RELEASE, **live))  # type: ignore[arg-type]
    return tree


# -- RHEL 9: EFI stub, BLS entries, grubenv kernelopts -----------------------------------------------

EL9_RELEASE = "5.14.0-570.18.1.el9_6.x86_64"
EL9_ENTRY = f"0123456789abcdef0123456789abcdef-{EL9_RELEASE}"
EL9_KERNELOPTS = ("root=/dev/mapper/rhel-root ro crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M "
                  "resume=/dev/mapper/rhel-swap rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap rhgb quiet "
                  "default_hugepagesz=1G hugepagesz=1G hugepages=8")
RHEL9_OS_RELEASE = (
    'NAME="Red Hat Enterprise Linux"\nVERSION="9.6 (Plow)"\nID="rhel"\nID_LIKE="fedora"\n'
    'VERSION_ID="9.6"\nPRETTY_NAME="Red Hat Enterprise Linux 9.6 (Plow)"\n'
)


def el9_bls_entry(options: str = "$kernelopts $tuned_params") -> str:
    """The Rocky 8.5 BLS entry sample, made an EL9 entry (version, kernel) with ``options``."""
    text = grub_sample("bls-rocky8.5-6fa25ca775f64accb0d3e53f0e4e6e92-5.16.9-custom.conf")
    text = text.replace("5.16.9-custom", EL9_RELEASE).replace("8.5 (Green Obsidian)", "9.6 (Plow)")
    text = text.replace("Rocky Linux", "Red Hat Enterprise Linux").replace("rocky-20220212013135", "rhel")
    return text.replace("options $kernelopts $tuned_params", f"options {options}")


def rhel9_tree(*, kernelopts: str = EL9_KERNELOPTS, options: str = "$kernelopts $tuned_params") -> Tree:
    """An image of a RHEL 9 host booted by UEFI: the ESP grub.cfg is the stub that redirects to
    /boot/grub2/grub.cfg, which runs blscfg; grubenv holds saved_entry and kernelopts."""
    return {
        "etc/os-release": RHEL9_OS_RELEASE,
        "boot/efi/EFI/redhat/grub.cfg": grub_sample("el9-efi-stub-grub.cfg"),
        "boot/efi/EFI/redhat/grubx64.efi": b"MZ",
        "boot/efi/EFI/redhat/shimx64.efi": b"MZ",
        "boot/grub2/grub.cfg": grub_sample("el8-bls-grub.cfg"),
        "boot/grub2/grubenv": grubenv(saved_entry=EL9_ENTRY, kernelopts=kernelopts, boot_success="1"),
        f"boot/loader/entries/{EL9_ENTRY}.conf": el9_bls_entry(options),
        "boot/vmlinuz-" + EL9_RELEASE: "kernel image\n",
        "boot/config-" + EL9_RELEASE: kconfig_sample("almalinux9-config-5.14.0-570.18.1.el9_6.x86_64"),
    }
