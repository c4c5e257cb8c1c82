"""Plugin manager factory: built-in check plugins from an explicit tuple, third-party ones from the
``hostaudit`` entry-point group. A fresh manager per call (no global state), so tests stay isolated.
"""

from __future__ import annotations

import importlib
import types
from typing import Any

import pluggy

from audit import hookspecs
from audit.record import Record

ENTRY_POINT_GROUP = "hostaudit"

#: Built-in plugins, registered exactly like third-party ones.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "checks.kernel",
    "checks.cpu",
    "checks.kvm",
    "checks.crypto",
    "checks.hugepages",
    "checks.thp",
    "checks.ksm",
    "checks.iommu",
    "checks.boot",
    "checks.cpumodel",
    "checks.security",
    "checks.virtfeatures",
    "checks.cgroups",
    "checks.devices",
    "checks.memtune",
    "checks.ksmusage",
)


class PluginProblem(Record):
    plugin: str
    message: str


class Plugins:
    """A plugin manager and what went wrong while loading plugins (never silently dropped)."""

    __slots__ = ("origins", "pm", "problems")

    def __init__(self, pm: pluggy.PluginManager, problems: list[PluginProblem] | None = None,
                 origins: dict[str, str] | None = None) -> None:
        self.pm = pm
        self.problems: list[PluginProblem] = [] if problems is None else problems
        self.origins: dict[str, str] = {} if origins is None else origins  # name -> "built-in" / "dist 1.2"


class _Manager(pluggy.PluginManager):
    """pluggy's manager, quicker at registering a module: pluggy looks at every name in it (its
    imports too: some 950 names for the built-in checks) with ``inspect.getattr_static``, some 10 ms
    of every run (issue #11). A module's plain function is answered here from the module's
    namespace, with pluggy's own rule (the marker's options are a dict on the function); everything
    else (classes, instances, a module's static or class methods) goes to pluggy unchanged."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        if isinstance(plugin, types.ModuleType):
            value = plugin.__dict__.get(name)
            if type(value) is types.FunctionType:
                opts = getattr(value, self._impl_attr, None)
                return opts if isinstance(opts, dict) else None
            if not isinstance(value, (staticmethod, classmethod, types.MethodType)):
                return None
        return super().parse_hookimpl_opts(plugin, name)

    @property
    def _impl_attr(self) -> str:
        return f"{self.project_name}_impl"


def new_manager() -> pluggy.PluginManager:
    pm = _Manager("hostaudit")
    pm.add_hookspecs(hookspecs)
    return pm


def make_plugins(
    *, builtins: tuple[str, ...] = DEFAULT_PLUGINS, entry_points: bool = True
) -> Plugins:
    plugins = Plugins(pm=new_manager())
    for modname in builtins:
        _register_module(plugins, modname, modname, "built-in")
    if entry_points:
        _load_entry_points(plugins)
    return plugins


def _register_module(plugins: Plugins, name: str, modname: str, origin: str) -> None:
    try:
        module = importlib.import_module(modname)
        plugins.pm.register(module, name=name)
        plugins.origins[name] = origin
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a broken plugin is a result, never a crash of the run (sys.exit too)
        plugins.problems.append(PluginProblem(name, f"failed to load: {_describe(exc)}"))


def _load_entry_points(plugins: Plugins) -> None:
    from audit.entrypoints import entry_points  # not importlib.metadata: a third of start-up

    for ep in entry_points(ENTRY_POINT_GROUP):
        dist = ep.dist
        if plugins.pm.has_plugin(ep.name):
            plugins.problems.append(
                PluginProblem(ep.name, f"entry point from {dist} uses a name already registered; ignored")
            )
            continue
        try:
            obj = ep.load()
            plugins.pm.register(obj, name=ep.name)
            plugins.origins[ep.name] = dist
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            plugins.problems.append(PluginProblem(ep.name, f"failed to load from {dist}: {_describe(exc)}"))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r}) while loading"
    return f"{type(exc).__name__}: {exc}"
