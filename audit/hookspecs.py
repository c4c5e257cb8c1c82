"""Hook specifications: the whole plugin contract of hostaudit.

Built-in checks use exactly these hooks, like third-party plugins do. Implementations may accept
fewer arguments than a spec names (pluggy's opt-in arguments), so hooks can grow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from audit.model import Check

hookspec = pluggy.HookspecMarker("hostaudit")
#: The one marker plugins use (``from audit import hookimpl`` loads it from here, with pluggy).
hookimpl = pluggy.HookimplMarker("hostaudit")


@hookspec
def hostaudit_checks() -> Sequence[Check]:
    """Return the checks this plugin declares.

    Declaring reads nothing from the host: the engine selects, orders, times and runs the
    checks, each in isolation, so ``hostaudit checks`` and ``hostaudit explain`` work anywhere.
    """


@hookspec
def hostaudit_reporters() -> dict[str, object]:
    """Return extra report formats as ``{suffix_or_name: reporter}``.

    A reporter is a callable ``reporter(report: Report) -> str``. The key is the file suffix
    (``".prom"``) that ``-o`` maps to it; it is also accepted by ``--format`` without the dot.
    """


@hookspec
def hostaudit_collect_paths() -> Sequence[str]:
    """Return extra paths (inside the root) that a snapshot must capture for this plugin's facts.

    Facts declared with ``audit.host.fact(paths=...)`` are captured automatically; this hook is
    for plugins that read files through ``host.read_text`` directly.
    """
