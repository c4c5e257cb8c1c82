"""What a snapshot must capture: every declared fact's paths, every check's ``reads`` and the paths
of the ``hostaudit_collect_paths`` hook, gathered from the registry (never from a list kept here).
"""

from __future__ import annotations

import importlib
import re

from audit.host.collect import Patterns

#: The built-in fact modules: importing them fills the fact registry.
FACT_MODULES = ("audit.host.kernel", "audit.host.arch", "audit.host.facts", "audit.host.memory", "audit.boot.facts",
                "audit.boot.modinfo", "audit.host.virt", "audit.host.cgroups",
                "audit.host.devices", "audit.host.memtune", "audit.host.libvirtcaps")


def import_fact_modules() -> None:
    """Import every built-in fact module so FACTS holds every built-in fact."""
    for name in FACT_MODULES:
        importlib.import_module(name)


def _from_reads(read: str) -> str | None:
    """A check's ``reads`` entry as a pattern: "/boot/config-<release>" -> "/boot/config-{release}"."""
    if not read.startswith("/"):
        return None  # "boot configuration", "kernel config": descriptions, covered by facts
    return re.sub(r"<[^<>/]*>", lambda m: "{release}" if m.group(0) == "<release>" else "*", read)


def gather_patterns(*, entry_points: bool = True) -> Patterns:
    from audit.engine import collect_checks
    from audit.host.registry import FACTS
    from audit.plugins import make_plugins

    plugins = make_plugins(entry_points=entry_points)  # imports plugins, whose facts register too
    import_fact_modules()
    found: list[str] = [p for spec in FACTS.values() for p in spec.paths]
    problems = [f"{p.plugin}: {p.message}" for p in plugins.problems]
    try:
        declared, _ = collect_checks(plugins)
    except Exception as exc:  # duplicate ids etc.: collect what the facts say anyway
        declared = []
        problems.append(f"checks: {exc}")
    for d in declared:
        found += [p for r in d.check.reads if (p := _from_reads(r))]
    for impl in plugins.pm.hook.hostaudit_collect_paths.get_hookimpls():
        try:
            extra = list(impl.function() or ())
            bad = [p for p in extra if not isinstance(p, str) or not p.startswith("/")]
            if bad:
                raise TypeError(f"returned {bad[0]!r}, not an absolute path")
            found += extra
        except Exception as exc:
            problems.append(f"{impl.plugin_name}: hostaudit_collect_paths failed: {type(exc).__name__}: {exc}")
    return Patterns(paths=tuple(dict.fromkeys(found)), problems=tuple(problems))
