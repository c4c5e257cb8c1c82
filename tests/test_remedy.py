"""audit.remedy: the target read from a host, and the commands built for it (quoted, per family,
per boot loader, per init system, with runtime writes left out where no kernel runs)."""

from __future__ import annotations

import pytest

from audit.host.core import Host
from audit.model import TargetMode
from audit.remedy.cmdline import kernel_params, regen_command, regenerate
from audit.remedy.hugepages import drop_boot_pools, mount_at_boot, mount_now, persist_pools, reserve_pool
from audit.remedy.ksm import ksm_off, ksm_on, ksm_units_off
from audit.remedy.packages import HUGEADM, KSMTUNED, install, stock_kernel
from audit.remedy.system import persist_module, swap_file, write_now
from audit.remedy.target import FixTarget
from tests import trees

M, G = 1 << 20, 1 << 30
DEBIAN = FixTarget(family="debian", installer="apt-get", loader="grub2", family_hint="update-grub")
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


def test_kernel_params_follow_the_boot_loader():
    assert kernel_params(DEBIAN, add={"iommu": "pt"}, remove=["iommu"]) == [
        "sed -i -E -e :a -e 's/(^|[[:space:]\"])iommu(=[^[:space:]\"]*)?([[:space:]\"]|$)/\\1\\3/' -e ta "
        "/etc/default/grub",
        "mkdir -p /etc/default/grub.d",
        "echo 'GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX iommu=pt\"' >> /etc/default/grub.d/90-hostaudit.cfg",
        "update-grub",
    ]
    assert kernel_params(EL7, add=[("hugepagesz", "1G"), ("hugepages", "4")]) == [
        "grubby --update-kernel=ALL --args='hugepagesz=1G hugepages=4'"]
    assert kernel_params(FixTarget(loader="systemd-boot"), add={"quiet": None}) == [
        "# add 'quiet' to /etc/kernel/cmdline and to the options line of each $ESP/loader/entries/*.conf"]
    assert kernel_params(FixTarget(), add={"iommu": "pt"}) == [
        "# add 'iommu=pt' to the kernel command line in your boot loader's configuration"]
    assert kernel_params(DEBIAN) == []


def test_host_values_are_quoted():
    assert regen_command("grub2-mkconfig -o /boot/efi/EFI/x y/grub.cfg") == \
        "grub2-mkconfig -o '/boot/efi/EFI/x y/grub.cfg'"
    assert kernel_params(FixTarget(loader="grub-legacy", config_path="/boot/a b.conf"), add={"x": "$(id)"}) == [
        "sed -i '/^[[:space:]]*kernel /s/$/ x=$(id)/' '/boot/a b.conf'"]
    assert write_now("/sys/x", "a;b") == "echo 'a;b' > /sys/x"
    assert persist_module("kvm_intel") == ["modprobe kvm_intel", "echo kvm_intel > /etc/modules-load.d/kvm_intel.conf"]


def test_regenerate_uses_grubby_for_bls_and_the_generator_otherwise():
    assert regenerate(IMAGE, ["hugepages=8"]) == ["grubby --update-kernel=ALL --args=hugepages=8"]
    assert regenerate(EL7, ["hugepages=8"]) == ["grub2-mkconfig -o /boot/grub2/grub.cfg"]
    assert regenerate(FixTarget(loader="grub2"), []) == [
        "# regenerate the boot loader configuration from /etc/default/grub"]


def test_packages_per_family():
    assert install(EL7, HUGEADM) == ["yum install libhugetlbfs-utils"]
    assert install(FixTarget(family="suse", installer="zypper"), HUGEADM) == ["zypper install libhugetlbfs"]
    assert install(FixTarget(), HUGEADM) == ["# install your distribution's libhugetlbfs tools"]
    assert install(FixTarget(family="suse", installer="zypper"), KSMTUNED) == []
    # the stock kernel advice names dnf (and says "yum on EL7") whatever the release
    assert stock_kernel(EL7) == ["dnf install kernel   # the distribution's stock kernel (yum on EL7)"]


def test_runtime_writes_are_left_out_where_no_kernel_runs():
    assert ksm_on(IMAGE) == ["dnf install ksmtuned   # ksm.service: qemu-kvm-common",
                             "systemctl enable --now ksmtuned.service ksm.service"]
    assert ksm_on(DEBIAN)[0] == "echo 1 > /sys/kernel/mm/ksm/run"
    assert ksm_on(DEBIAN, now=False) == ["apt-get install ksmtuned", "systemctl enable --now ksmtuned.service"]
    assert ksm_off(IMAGE) == ["systemctl disable --now ksm.service ksmtuned.service",
                              "systemctl mask ksm.service ksmtuned.service"]


def test_sysv_units():
    assert ksm_on(EL6) == ["echo 1 > /sys/kernel/mm/ksm/run",
                           "yum install qemu-kvm   # ships the ksm and ksmtuned init scripts",
                           "chkconfig ksm on", "chkconfig ksmtuned on", "service ksm start", "service ksmtuned start"]
    assert ksm_off(EL6)[1:] == ["service ksmtuned stop; service ksm stop", "chkconfig ksmtuned off; chkconfig ksm off"]
    assert ksm_units_off(EL6) == ["chkconfig ksmtuned off; chkconfig ksm off"]
    assert ksm_units_off(DEBIAN) == ["systemctl disable --now ksmtuned.service ksm.service"]


def test_huge_page_pools():
    assert reserve_pool(EL7, 2 * M, None, default_size=2 * M) == (
        ["echo 512 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
         "echo 'vm.nr_hugepages = 512' > /etc/sysctl.d/80-hugepages.conf"],
        "Applies now and at every boot (systemd-sysctl). 512 pages is an example: size the pool for your guests' "
        "memory.", False)
    cmds, notes, reboot = reserve_pool(EL7, G, 16, default_size=2 * M)
    assert cmds == ["echo 16 > /sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages   # may fall short at "
                    "runtime: gigantic pages need contiguous memory",
                    "grubby --update-kernel=ALL --args='hugepagesz=1G hugepages=16'"]
    assert reboot and notes == "Gigantic pages are reliably reserved only at boot."
    assert persist_pools(EL7, {G: 4, 2 * M: 256}, default_size=2 * M) == [
        "echo 'vm.nr_hugepages = 256' > /etc/sysctl.d/80-hugepages.conf",
        "grubby --update-kernel=ALL --args='hugepagesz=1G hugepages=4'"]
    assert drop_boot_pools(EL7) == [
        "grubby --update-kernel=ALL --remove-args='hugepagesz hugepages default_hugepagesz'"]


def test_hugetlbfs_mounts_and_swap():
    assert mount_now([G], default_size=2 * M) == [
        "mkdir -p /dev/hugepages1G && mount -t hugetlbfs -o pagesize=1G hugetlbfs /dev/hugepages1G"]
    assert mount_at_boot([2 * M], default_size=2 * M) == [
        "echo 'hugetlbfs /dev/hugepages hugetlbfs pagesize=2M 0 0' >> /etc/fstab"]
    assert swap_file("/swapfile-ksm", G + 1) == [
        "fallocate -l 2G /swapfile-ksm && chmod 600 /swapfile-ksm && mkswap /swapfile-ksm",
        "swapon /swapfile-ksm", "echo '/swapfile-ksm none swap defaults 0 0' >> /etc/fstab"]
