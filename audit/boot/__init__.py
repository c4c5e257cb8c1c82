"""Boot configuration: what a host boots with, and what its boot-loader generators will write.

- ``resolver``: from the files under the root to the default entry's kernel command line (GRUB 2
  with submenus, saved and next entries, EFI redirects; BLS entries; legacy GRUB; systemd-boot
  detected), the regeneration inputs (``/etc/default/grub``, ``/etc/kernel/cmdline``) and what
  they would change.
- ``facts``: the ``boot_cmdline`` fact checks read it through.

Above host access (it reads through a ``FileSource``) and the pure parsers (``audit.parsers.grub``),
below the engine and the checks.
"""
