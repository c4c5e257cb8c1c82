"""Huge page pools and hugetlbfs: reserve a pool now and at every boot, put several pools on the boot
command line at once, set pools at runtime, compact memory, mount hugetlbfs now and from /etc/fstab."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from audit.parsers.hugepages import format_size
from audit.remedy.cmdline import kernel_params
from audit.remedy.system import fstab_append, q, sysctl_persist, write_now
from audit.remedy.target import FixTarget

GIB = 1 << 30  # gigantic pages: reserved on the kernel command line, memory fragments too soon after boot
SYSFS_POOL = "/sys/kernel/mm/hugepages/hugepages-{kb}kB/nr_hugepages"
SYSCTL_CONF = "/etc/sysctl.d/80-hugepages.conf"
COMPACT_MEMORY = "/proc/sys/vm/compact_memory"
#: The parameters that reserve pools at boot (and choose the default size).
BOOT_POOL_PARAMS = ("hugepagesz", "hugepages", "default_hugepagesz")


def pool_path(size: int) -> str:
    """The sysfs file that holds the number of ``size``-byte pages the kernel has reserved."""
    return SYSFS_POOL.format(kb=size // 1024)


def set_pools_now(pools: Mapping[int, int]) -> list[str]:
    """Ask the running kernel for ``pools`` (size -> pages), in the order given."""
    return [write_now(pool_path(size), n) for size, n in pools.items()]


def compact_memory() -> list[str]:
    """Defragment memory so a pool set at runtime can find contiguous pages."""
    return [write_now(COMPACT_MEMORY, 1)]


def _example_count(size: int) -> int:
    return 4 if size >= GIB else 512  # 4 GiB or 1 GiB: an example to adjust, said so in the notes


def _boot_pool(size: int, n: int) -> dict[str, str | None]:
    return {"hugepagesz": format_size(size), "hugepages": str(n)}


def reserve_pool(target: FixTarget, size: int, count: int | None, *, default_size: int) -> tuple[list[str], str, bool]:
    """(commands, notes, reboot) that reserve ``count`` pages of ``size`` bytes (None: an example
    count) now and at every boot: runtime first, then what makes it persistent. The default size
    persists through sysctl.d, other sizes and gigantic pages on the kernel command line."""
    n = count if count is not None else _example_count(size)
    note = "" if count is not None else f" {n} pages is an example: size the pool for your guests' memory."
    runtime = write_now(pool_path(size), n)
    if size >= GIB:
        cmds = [runtime + "   # may fall short at runtime: gigantic pages need contiguous memory",
                *kernel_params(target, add=_boot_pool(size, n))]
        return cmds, "Gigantic pages are reliably reserved only at boot." + note, True
    if size != default_size:
        cmds = [runtime, *kernel_params(target, add=_boot_pool(size, n))]
        return cmds, "vm.nr_hugepages only sets the default size; other sizes are reserved at boot." + note, True
    return [runtime, *sysctl_persist(SYSCTL_CONF, "vm.nr_hugepages", n)], \
        "Applies now and at every boot (systemd-sysctl)." + note, False


def persist_pools(target: FixTarget, pools: Mapping[int, int], *, default_size: int) -> list[str]:
    """Make every pool in ``pools`` persistent at once: the default size through sysctl.d, the
    other sizes as ordered hugepagesz=/hugepages= pairs in one command-line change."""
    cmds: list[str] = []
    pairs: list[tuple[str, str | None]] = []
    for size, n in sorted(pools.items()):
        if size == default_size and size < GIB:
            cmds += sysctl_persist(SYSCTL_CONF, "vm.nr_hugepages", n)
        else:
            pairs += list(_boot_pool(size, n).items())
    return cmds + kernel_params(target, add=pairs)


def drop_boot_pools(target: FixTarget) -> list[str]:
    """Take every boot-time pool (and the default size choice) off the kernel command line."""
    return kernel_params(target, remove=BOOT_POOL_PARAMS)


def mount_point(size: int, default_size: int) -> str:
    return "/dev/hugepages" if size == default_size else f"/dev/hugepages{format_size(size)}"


def mount_now(sizes: Iterable[int], *, default_size: int) -> list[str]:
    """Mount hugetlbfs for each page size in ``sizes`` now."""
    cmds = []
    for size in sizes:
        mp = q(mount_point(size, default_size))
        cmds.append(f"mkdir -p {mp} && mount -t hugetlbfs -o pagesize={format_size(size)} hugetlbfs {mp}")
    return cmds


def mount_at_boot(sizes: Iterable[int], *, default_size: int) -> list[str]:
    """An /etc/fstab line mounting hugetlbfs for each page size in ``sizes`` at every boot."""
    return [fstab_append(f"hugetlbfs {mount_point(size, default_size)} hugetlbfs pagesize={format_size(size)} 0 0")
            for size in sizes]
