"""CPU models for pre-migration checks.

- ``models``: the CPU model table (derived from libvirt's cpu_map by ``tools/gen_cpu_models.py``,
  shipped in ``data/``) and the pure functions on flag sets: guest-visible flags, supported
  models, compare two hosts, the baseline of a pool, libvirt XML and QEMU ``-cpu`` for it.
- ``sources``: where a CPU's flags come from (this host, a snapshot, a cpuinfo file).
"""
