"""hostaudit: a compliance auditor for KVM virtualization hosts.

The names a plugin author needs are importable from here (``from audit import hookimpl, check,
Evidence, Host, fact``) as well as from the modules that define them; they are loaded on first use
(``hookimpl`` with pluggy, from ``audit.hookspecs``), so importing any module of the project loads
nothing above it, and ``hostaudit --version`` loads no plugin machinery.
"""

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__version__ = "0.1.0"


def lazy_exports(package: str, table: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``; ``table`` maps a name to the module (relative
    to the package, e.g. ``"core"`` or ``"host.core"``) that defines it."""

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__


_EXPORTS = {
    **dict.fromkeys(("Check", "Evidence", "Outcome", "Remediation", "Report", "Result", "Severity", "Status",
                     "TargetMode", "check", "errored", "failed", "passed", "skipped", "warned"), "model"),
    **dict.fromkeys(("FactError", "FactUnavailable", "HostauditError", "UsageError"), "errors"),
    **dict.fromkeys(("Host", "fact"), "host"),
    "Policy": "policy",
    "hookimpl": "hookspecs",  # the one marker plugins use: from audit import hookimpl
}
__all__ = ["__version__", *sorted(_EXPORTS)]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
