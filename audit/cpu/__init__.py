"""CPU models for pre-migration checks.

- ``models``: the CPU model table (derived from libvirt's cpu_map by ``tools/gen_cpu_models.py``,
  shipped in ``data/``) with the kernel flag table merged in (every name the kernels'
  cpufeatures.h print, old and distribution-only names: ``tools/gen_cpu_flags.py``), and the pure
  functions on flag sets: guest-visible and unknown flags, supported models, compare two hosts,
  the baseline of a pool, libvirt XML and QEMU ``-cpu`` for it.
- ``arm64``: arm64 hosts, compared by CPU implementation (MIDR_EL1) before any Feature, with the
  implementer and part names of the kernel's cputype.h (``data/arm64_parts.json``).
- ``sources``: where a CPU's flags come from (this host, a snapshot, a cpuinfo file).
"""
