"""Huge page pools and hugetlbfs: reserve a pool now and at every boot, put several pools on the boot
command line at once, set pools at runtime, compact memory, mount hugetlbfs now and from /etc/fstab.

The command line's pools are always written whole: every ``hugepagesz=``/``hugepages=`` token is
taken off the inputs and the complete ordered pairs are written once (hostaudit's grub.d snippet
``90-hostaudit-hugepages.cfg``), with the pools of other sizes that are configured and not being
changed kept. A second run writes the same pairs again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from audit.parsers.hugepages import format_size
from audit.remedy.cmdline import kernel_params
from audit.remedy.system import fstab_append, q, runtime_only, sysctl_persist, write_now
from audit.remedy.target import FixTarget

GIB = 1 << 30  # gigantic pages: reserved on the kernel command line, memory fragments too soon after boot
SYSFS_POOL = "/sys/kernel/mm/hugepages/hugepages-{kb}kB/nr_hugepages"
SYSCTL_CONF = "/etc/sysctl.d/80-hugepages.conf"
COMPACT_MEMORY = "/proc/sys/vm/compact_memory"
#: The parameters that reserve pools at boot (and choose the default size).
BOOT_POOL_PARAMS = ("hugepagesz", "hugepages", "default_hugepagesz")
TOPIC = "hugepages"


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


def boot_pools(target: FixTarget, pools: Mapping[int, int]) -> list[str]:
    """The kernel command line's pools, exactly ``pools`` (size -> pages, in size order): every
    pool token the inputs hold is replaced by these ordered pairs."""
    pairs: list[tuple[str, str | None]] = []
    for size, n in sorted(pools.items()):
        pairs += [("hugepagesz", format_size(size)), ("hugepages", str(n))]
    if not pairs:
        return kernel_params(target, remove=("hugepagesz", "hugepages"), topic=TOPIC)
    return kernel_params(target, add=pairs, topic=TOPIC)


def reserve_pool(target: FixTarget, size: int, count: int | None, *, default_size: int,
                 keep: Mapping[int, int] | None = None) -> tuple[list[str], str, bool]:
    """(commands, notes, reboot) that reserve ``count`` pages of ``size`` bytes (None: an example
    count) now (where a kernel runs) and at every boot: runtime first, then what makes it persistent.
    The default size persists through sysctl.d, other sizes and gigantic pages on the kernel command
    line, beside the pools of other sizes in ``keep`` (the command line's pools, as configured)."""
    n = count if count is not None else _example_count(size)
    note = "" if count is not None else f" {n} pages is an example: size the pool for your guests' memory."
    runtime = write_now(pool_path(size), n)
    if size >= GIB or size != default_size:
        pools = {s: c for s, c in (keep or {}).items() if c and s != size}
        pools[size] = n
        if size >= GIB:
            runtime += "   # may fall short at runtime: gigantic pages need contiguous memory"
            why = "Gigantic pages are reliably reserved only at boot."
        else:
            why = "vm.nr_hugepages only sets the default size; other sizes are reserved at boot."
        return [*runtime_only(target, [runtime]), *boot_pools(target, pools)], why + note, True
    when = "now and at every boot" if target.now else "at every boot"
    return [*runtime_only(target, [runtime]), *sysctl_persist(target, SYSCTL_CONF, "vm.nr_hugepages", n)], \
        f"Applies {when} (systemd-sysctl).{note}", not target.now


def persist_pools(target: FixTarget, pools: Mapping[int, int], *, default_size: int,
                  keep: Mapping[int, int] | None = None) -> list[str]:
    """Make every pool in ``pools`` persistent at once: the default size through sysctl.d, the
    other sizes as ordered hugepagesz=/hugepages= pairs in one command-line change, beside the
    command line's other pools in ``keep``."""
    cmds: list[str] = []
    line = {s: c for s, c in (keep or {}).items() if c}
    changed = False
    for size, n in sorted(pools.items()):
        if size == default_size and size < GIB:
            cmds += sysctl_persist(target, SYSCTL_CONF, "vm.nr_hugepages", n)
        else:
            line[size], changed = n, True
    return cmds + (boot_pools(target, line) if changed else [])


def drop_boot_pools(target: FixTarget) -> list[str]:
    """Take every boot-time pool (and the default size choice) off the kernel command line."""
    return kernel_params(target, remove=BOOT_POOL_PARAMS, topic=TOPIC)


def mount_point(size: int, default_size: int) -> str:
    return "/dev/hugepages" if size == default_size else f"/dev/hugepages{format_size(size)}"


def mount_now(target: FixTarget, sizes: Iterable[int], *, default_size: int) -> list[str]:
    """Mount hugetlbfs for each page size in ``sizes`` now (where a system runs; unless mounted)."""
    cmds = []
    for size in sizes:
        mp = q(mount_point(size, default_size))
        cmds += [f"mkdir -p {mp}",
                 f"mountpoint -q {mp} || mount -t hugetlbfs -o pagesize={format_size(size)} hugetlbfs {mp}"]
    return runtime_only(target, cmds)


def mount_at_boot(target: FixTarget, sizes: Iterable[int], *, default_size: int) -> list[str]:
    """An /etc/fstab line mounting hugetlbfs for each page size in ``sizes`` at every boot (added once)."""
    return [fstab_append(target, f"hugetlbfs {mount_point(size, default_size)} hugetlbfs pagesize={format_size(size)}"
                                 " 0 0") for size in sizes]
