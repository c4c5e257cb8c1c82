"""The command line: ``main`` parses and dispatches; each sub-command is a module, imported only
when used (start-up time matters).

- ``main``: the parser, ``hostaudit [run]`` and its options, exit codes.
- ``run``: ``run`` (the audit), ``checks``, ``explain``, ``policy show``.
- ``collect``: ``collect`` (snapshots and the sh collector).
- ``cpu``: ``cpu compare|baseline|models``.
- ``diff``: ``diff`` between two JSON reports.

The top floor: it may import anything of the project; nothing imports it.
"""
