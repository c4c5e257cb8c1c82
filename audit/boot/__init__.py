"""Boot configuration: what a host boots with, and what its boot-loader generators will write.

- ``model``: what the resolver finds (the default entry, its parameters and their provenance, the
  regeneration inputs, stale parameters) and the parameter names it watches.
- ``reader``: reading boot files inside the root; GRUB paths mapped into it.
- ``inputs``: the generators' inputs (``/etc/default/grub`` and ``grub.d``, ``/etc/kernel/cmdline``,
  tuned) and whether each reaches the default entry.
- ``predict``: an image whose configuration is not generated yet: what ``grub-mkconfig`` or
  ``kernel-install`` will write, or why that is unknown.
- ``resolver``: from the files under the root to the default entry's kernel command line (GRUB 2
  with submenus, saved and next entries, EFI redirects; BLS entries; legacy GRUB; systemd-boot
  detected).
- ``facts``: the ``boot_cmdline`` fact checks read it through.

Above host access (it reads through a ``FileSource``) and the pure parsers (``audit.parsers.grub``),
below remediation, the engine and the checks.
"""
