"""Remediation: the commands that carry out what a check wants done, for the target in front of it.

- ``target``: ``FixTarget``, what a fix depends on (live, image or snapshot; distribution family and
  installer; systemd or SysV; boot loader), read once per host.
- ``cmdline``: kernel parameters on every future boot (grubby, /etc/default/grub, grub.conf,
  systemd-boot) and regenerating the boot configuration.
- ``packages``: installing a tool (hugeadm, ksmtuned, the stock kernel) by distribution family.
- ``system``: runtime writes, sysctl.d, kernel modules, service units, /etc/fstab lines and swap.
  Every command can run twice and leave the files as one run left them; on an image every path is
  under ``"$ROOT"`` (the image root the fix script is given) and nothing changes a running system.
- ``hugepages``: huge page pools now and at every boot, memory compaction, hugetlbfs mounts.
- ``ksm``: KSM on or off (its run file, ksmtuned, its units).

Checks keep all judgement (status, message, evidence) and say what they want done; this package
decides how, once: every value from the host is quoted here, and rules such as leaving runtime
writes out on an image live here rather than in every check. It sits above host access and boot
configuration (it reads the facts ``FixTarget`` needs) and below the engine and the checks, which
it never imports. The public names are re-exported here lazily (``from audit.remedy import FixTarget``).
"""

from audit import lazy_exports

_EXPORTS = {
    "FixTarget": "target",
    **dict.fromkeys(("is_regeneration", "kernel_params", "regen_command", "regenerate"), "cmdline"),
    **dict.fromkeys(("HUGEADM", "KSMTUNED", "STOCK_KERNEL", "Package", "install", "stock_kernel"), "packages"),
    **dict.fromkeys(("AFTERWARDS", "afterwards", "dedupe_lines", "disable_units", "enable_units", "ensure_line",
                     "fstab_append", "load_module", "module_options", "persist_module", "remove_file", "runtime_only",
                     "swap_file", "sysctl_persist", "unmask_unit", "write_file", "write_now"), "system"),
    **dict.fromkeys(("boot_pools", "compact_memory", "drop_boot_pools", "mount_at_boot", "mount_now",
                     "persist_pools", "reserve_pool", "set_pools_now"), "hugepages"),
    **dict.fromkeys(("ksm_off", "ksm_on", "ksm_units_off"), "ksm"),
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
