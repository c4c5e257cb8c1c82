"""audit.remedy: the target read from a host, and the commands built for it (quoted, per family,
per boot loader, per init system, with runtime writes left out where no kernel runs)."""

from __future__ import annotations

import pytest

from audit.host.core import Host
from audit.model import TargetMode, replace
from audit.remedy.cmdline import kernel_params, regen_command, regenerate
from audit.remedy.hugepages import drop_boot_pools, mount_at_boot, mount_now, persist_pools, reserve_pool
from audit.remedy.ksm import ksm_off, ksm_on, ksm_units_off
from audit.remedy.packages import HUGEADM, KSMTUNED, install, stock_kernel
from audit.remedy.system import persist_module, swap_file, write_now
from audit.remedy.target import FixTarget
from tests import trees

M, G = 1 << 20, 1 << 30
DEBIAN = FixTarget(family="debian", installer="apt-get", loader="grub2", family_hint="update-grub",
                   cmdline_files=(("/etc/default/grub", frozenset({"iommu", "quiet"})),))
EL7 = FixTarget(family="rhel", installer="yum", loader="grub2", family_hint="grub2-mkconfig -o /boot/grub2/grub.cfg")
EL6 = FixTarget(family="rhel", installer="yum", init="sysv", loader="grub-legacy", config_path="/boot/grub/grub.conf")
IMAGE = FixTarget(mode=TargetMode.IMAGE, runtime=False, family="rhel", installer="dnf", loader="grub2-bls")


def target_of(make_root, tree: dict) -> FixTarget:
    return FixTarget.of(Host.from_root(str(make_root(tree))))


def test_the_target_is_read_from_the_host_once(make_root):
    host = Host.from_root(str(make_root(trees.debian12_tree())))
    target = FixTarget.of(host)
    assert target is FixTarget.of(host)
    assert (target.mode, target.runtime, target.family, target.installer, target.init) == (
        TargetMode.IMAGE, False, "debian", "apt-get", "systemd")
    assert (target.loader, target.config_path) == ("grub2", "/boot/grub/grub.cfg")


@pytest.mark.parametrize(("tree", "expected"), [
    (lambda: trees.rhel9_tree(), ("rhel", "dnf", "systemd", "grub2-bls")),
    (lambda: trees.centos6_tree(live=False), ("rhel", "yum", "sysv", "grub-legacy")),
    (lambda: {"etc/hostname": "bare\n"}, (None, None, "systemd", None)),
])
def test_family_installer_init_and_loader(make_root, tree, expected):
    t = target_of(make_root, tree())
    assert (t.family, t.installer, t.init, t.loader) == expected


STRIP_IOMMU = ("-e :a -e 's/[[:space:]]+(iommu)(=[^[:space:]\"\\x27]*)?([[:space:]\"\\x27]|$)/\\3/' -e ta "
               "-e 's/([\"\\x27])(iommu)(=[^[:space:]\"\\x27]*)?([[:space:]]+|([\"\\x27]))/\\1\\5/' -e ta")


def test_kernel_params_follow_the_boot_loader():
    # taken off where the inputs hold it, then written once into hostaudit's own snippet, written whole
    assert kernel_params(DEBIAN, add={"iommu": "pt"}, remove=["iommu"]) == [
        f"sed -i -E -e '/GRUB_CMDLINE_LINUX/{{' {STRIP_IOMMU} -e '}}' /etc/default/grub",
        "mkdir -p /etc/default/grub.d",
        "echo 'GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX iommu=pt\"' > /etc/default/grub.d/90-hostaudit-iommu.cfg",
        "update-grub",
    ]
    assert kernel_params(EL7, add=[("hugepagesz", "1G"), ("hugepages", "4")]) == [
        "grubby --update-kernel=ALL --remove-args='hugepagesz hugepages'",
        "grubby --update-kernel=ALL --args='hugepagesz=1G hugepages=4'"]
    assert kernel_params(FixTarget(loader="systemd-boot"), add={"quiet": None}) == [
        "# add 'quiet' to /etc/kernel/cmdline and to the options line of each $ESP/loader/entries/*.conf"]
    assert kernel_params(FixTarget(), add={"iommu": "pt"}) == [
        "# add 'iommu=pt' to the kernel command line in your boot loader's configuration"]
    assert kernel_params(DEBIAN) == []


def test_host_values_are_quoted():
    assert regen_command("grub2-mkconfig -o /boot/efi/EFI/x y/grub.cfg") == \
        "grub2-mkconfig -o '/boot/efi/EFI/x y/grub.cfg'"
    (legacy,) = kernel_params(FixTarget(loader="grub-legacy", config_path="/boot/a b.conf"), add={"x": "$(id)"})
    assert legacy.startswith("sed -i -E -e '/^[[:space:]]*kernel[[:space:]]/{' -e :a")
    assert legacy.endswith("-e 's/[[:space:]]+$//' -e 's/$/ x=$(id)/' -e '}' '/boot/a b.conf'")
    assert write_now("/sys/x", "a;b") == "echo 'a;b' > /sys/x"
    assert persist_module(DEBIAN, "kvm_intel") == [
        "modprobe kvm_intel", "mkdir -p /etc/modules-load.d", "echo kvm_intel > /etc/modules-load.d/kvm_intel.conf"]
    assert persist_module(IMAGE, "kvm_intel") == [
        'mkdir -p "$ROOT"/etc/modules-load.d', 'echo kvm_intel > "$ROOT"/etc/modules-load.d/kvm_intel.conf']
    assert IMAGE.path("/boot/a b.conf") == '"$ROOT"\'/boot/a b.conf\''


def test_regenerate_uses_grubby_for_bls_and_the_generator_otherwise():
    assert regenerate(IMAGE, ["hugepages=8"]) == ['chroot "$ROOT" grubby --update-kernel=ALL --args=hugepages=8']
    assert regenerate(EL7, ["hugepages=8"]) == ["grub2-mkconfig -o /boot/grub2/grub.cfg"]
    assert regenerate(FixTarget(loader="grub2"), []) == [
        "# regenerate the boot loader configuration from /etc/default/grub"]


def test_packages_per_family():
    # never asking, nothing but what the package needs, nothing when it is installed already
    assert install(EL7, HUGEADM) == ["rpm -q libhugetlbfs-utils >/dev/null 2>&1 || yum -y install libhugetlbfs-utils"]
    assert install(FixTarget(family="suse", installer="zypper"), HUGEADM) == [
        "rpm -q libhugetlbfs >/dev/null 2>&1 || zypper --non-interactive install --no-recommends libhugetlbfs"]
    assert install(DEBIAN, HUGEADM) == [
        "dpkg-query -W -f='${db:Status-Status}' libhugetlbfs-bin 2>/dev/null | grep -qx installed"
        " || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libhugetlbfs-bin"]
    assert install(FixTarget(), HUGEADM) == ["# install your distribution's libhugetlbfs tools"]
    assert install(FixTarget(family="suse", installer="zypper"), KSMTUNED) == []
    # the stock kernel advice names dnf (and says "yum on EL7") whatever the release
    assert stock_kernel(EL7) == ["rpm -q kernel >/dev/null 2>&1 || dnf -y --setopt=install_weak_deps=False install "
                                 "kernel   # the distribution's stock kernel (yum on EL7)"]


def test_packages_go_into_an_image_without_starting_anything():
    debian_image = replace(DEBIAN, mode=TargetMode.IMAGE, runtime=False)
    policy_rc, apt = install(debian_image, HUGEADM)
    assert policy_rc.startswith('[[ -e "$ROOT"/usr/sbin/policy-rc.d ]] || { printf \'#!/bin/sh\\nexit 101\\n\'')
    assert "trap 'rm -f -- \"$ROOT\"/usr/sbin/policy-rc.d' EXIT" in policy_rc
    assert apt == ('chroot "$ROOT" dpkg-query -W -f=\'${db:Status-Status}\' libhugetlbfs-bin 2>/dev/null | grep -qx '
                   'installed || DEBIAN_FRONTEND=noninteractive chroot "$ROOT" apt-get install -y '
                   "--no-install-recommends libhugetlbfs-bin")
    assert install(IMAGE, HUGEADM) == ['rpm --root "$ROOT" -q libhugetlbfs-utils >/dev/null 2>&1 || dnf --installroot '
                                       '"$ROOT" -y --setopt=install_weak_deps=False install libhugetlbfs-utils']


def test_runtime_writes_are_left_out_where_no_kernel_runs():
    assert ksm_on(IMAGE)[1:] == ['systemctl --root="$ROOT" enable ksmtuned.service ksm.service']
    assert ksm_on(DEBIAN)[0] == "echo 1 > /sys/kernel/mm/ksm/run"
    assert ksm_on(DEBIAN, now=False)[1:] == ["systemctl enable --now ksmtuned.service"]
    assert ksm_on(DEBIAN, masked=["ksmtuned.service"])[2:] == [  # a masked unit cannot be enabled
        "systemctl unmask ksmtuned.service", "systemctl enable --now ksmtuned.service"]
    # disabling a unit that is not installed fails; masking it does not
    assert ksm_off(IMAGE, ["ksmtuned.service"]) == ['systemctl --root="$ROOT" disable ksmtuned.service',
                                                    'systemctl --root="$ROOT" mask ksm.service ksmtuned.service']
    assert ksm_off(DEBIAN, []) == ["echo 2 > /sys/kernel/mm/ksm/run   # stop KSM and unmerge every shared page",
                                   "systemctl mask --now ksm.service ksmtuned.service"]


def test_sysv_units():
    assert ksm_on(EL6) == ["echo 1 > /sys/kernel/mm/ksm/run",
                           "rpm -q qemu-kvm >/dev/null 2>&1 || yum -y install qemu-kvm   # ships the ksm and ksmtuned "
                           "init scripts",
                           "chkconfig ksm on", "chkconfig ksmtuned on", "service ksm start", "service ksmtuned start"]
    assert ksm_off(EL6)[1:] == ["service ksmtuned stop; service ksm stop", "chkconfig ksmtuned off; chkconfig ksm off"]
    assert ksm_units_off(EL6) == ["chkconfig ksmtuned off; chkconfig ksm off"]
    assert ksm_units_off(DEBIAN) == ["systemctl disable --now ksmtuned.service ksm.service"]


SET_512 = ("grep -qsxF -- 'vm.nr_hugepages = 512' /etc/sysctl.d/80-hugepages.conf || { touch /etc/sysctl.d/80-hugepages"
           ".conf; sed -i -E '/^[[:space:]]*-?vm[./]nr_hugepages[[:space:]]*=/d' /etc/sysctl.d/80-hugepages.conf; "
           "echo 'vm.nr_hugepages = 512' >> /etc/sysctl.d/80-hugepages.conf; }")


def test_huge_page_pools():
    assert reserve_pool(EL7, 2 * M, None, default_size=2 * M) == (
        ["echo 512 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "mkdir -p /etc/sysctl.d", SET_512],
        "Applies now and at every boot (systemd-sysctl). 512 pages is an example: size the pool for your guests' "
        "memory.", False)
    cmds, notes, reboot = reserve_pool(EL7, G, 16, default_size=2 * M)
    assert cmds == ["echo 16 > /sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages   # may fall short at "
                    "runtime: gigantic pages need contiguous memory",
                    "grubby --update-kernel=ALL --remove-args='hugepagesz hugepages'",
                    "grubby --update-kernel=ALL --args='hugepagesz=1G hugepages=16'"]
    assert reboot and notes == "Gigantic pages are reliably reserved only at boot."
    # the command line's other pools are kept: the pairs are written whole
    cmds, _, _ = reserve_pool(EL7, G, 16, default_size=2 * M, keep={2 * M: 512, G: 2})
    assert cmds[-1] == "grubby --update-kernel=ALL --args='hugepagesz=2M hugepages=512 hugepagesz=1G hugepages=16'"
    assert persist_pools(EL7, {G: 4, 2 * M: 256}, default_size=2 * M)[2:] == [
        "grubby --update-kernel=ALL --remove-args='hugepagesz hugepages'",
        "grubby --update-kernel=ALL --args='hugepagesz=1G hugepages=4'"]
    assert reserve_pool(IMAGE, 2 * M, 512, default_size=2 * M)[0] == [
        'mkdir -p "$ROOT"/etc/sysctl.d', SET_512.replace("/etc/", '"$ROOT"/etc/')]
    assert drop_boot_pools(EL7) == [
        "grubby --update-kernel=ALL --remove-args='hugepagesz hugepages default_hugepagesz'"]


def test_hugetlbfs_mounts_and_swap():
    assert mount_now(DEBIAN, [G], default_size=2 * M) == [
        "mkdir -p /dev/hugepages1G",
        "mountpoint -q /dev/hugepages1G || mount -t hugetlbfs -o pagesize=1G hugetlbfs /dev/hugepages1G"]
    assert mount_now(IMAGE, [G], default_size=2 * M) == []
    assert mount_at_boot(DEBIAN, [2 * M], default_size=2 * M) == [
        "grep -qsxF -- 'hugetlbfs /dev/hugepages hugetlbfs pagesize=2M 0 0' /etc/fstab"
        " || echo 'hugetlbfs /dev/hugepages hugetlbfs pagesize=2M 0 0' >> /etc/fstab"]
    assert swap_file(DEBIAN, "/swapfile-ksm", G + 1) == [
        "[[ -e /swapfile-ksm ]] || { fallocate -l 2G /swapfile-ksm; chmod 600 /swapfile-ksm; mkswap /swapfile-ksm; }",
        "swapon --show=NAME --noheadings | grep -qxF -- /swapfile-ksm || swapon /swapfile-ksm",
        "grep -qsxF -- '/swapfile-ksm none swap defaults 0 0' /etc/fstab"
        " || echo '/swapfile-ksm none swap defaults 0 0' >> /etc/fstab"]
    assert swap_file(IMAGE, "/swapfile-ksm", G)[0].startswith('[[ -e "$ROOT"/swapfile-ksm ]] || {')
    assert len(swap_file(IMAGE, "/swapfile-ksm", G)) == 2  # no swapon from outside the image


@pytest.mark.parametrize("token", ['a=$(reboot)', 'a=`id`', 'a="b', 'a=\\x', "a=b;c"])
def test_grub_defaults_never_carry_shell_syntax(token: str) -> None:
    # /etc/default/grub is sourced by grub-mkconfig inside double quotes: such a token would run
    from audit.remedy import cmdline
    from audit.remedy.target import FixTarget

    for family in ("debian", "rhel"):
        (line,) = cmdline._grub_defaults(FixTarget(family=family), f"hugepages=16 {token}", ["hugepages"], "hp")
        assert line.startswith("# not written:")
