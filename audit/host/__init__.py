"""Host access: the one way to read an audited machine.

- ``fs``: confined file sources (``RootFS`` for ``/`` or an image root), the path walker, gzip reads.
- ``registry``: ``@fact(paths=...)`` and the registry of declared facts (what snapshots capture).
- ``kernel``: the CPU, kernel and OS facts a ``Host`` exposes as properties.
- ``core``: the ``Host`` class.
- ``facts``, ``memory``: the other built-in facts (modules, crypto, host name; memory, mounts,
  sysctl, services, IOMMU).
- ``snapshot``: the snapshot formats and the file source answering from one.
- ``collect``: capturing what the facts read into a snapshot, and the POSIX sh collector.

Imports go downwards only: this layer sees the data model, the errors and the pure parsers, never
the engine, the checks, the reports or the command line. ``Host`` and ``fact`` are re-exported here
lazily (``from audit.host import Host, fact``).
"""

from audit import lazy_exports

_EXPORTS = {
    "Host": "core",
    **dict.fromkeys(("FACTS", "FactSpec", "HostReader", "fact", "parse_text"), "registry"),
    **dict.fromkeys(("FileSource", "RootFS", "MAX_READ"), "fs"),
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
