"""Helpers shared by the built-in checks: optional facts, quoting (remedies are audit.remedy's)."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import TypeVar

from audit.errors import FactError, FactUnavailable
from audit.host.core import Host

T = TypeVar("T")

q = shlex.quote  # every value from the audited host goes through this before it enters a command


def maybe(host: Host, fn: Callable[[Host], T]) -> T | None:
    """A fact that is one source among several: absent is None (malformed still raises)."""
    try:
        return host.fact(fn)
    except FactUnavailable:
        return None


def maybe_value(get: Callable[[], T]) -> T | None:
    try:
        return get()
    except FactUnavailable:
        return None


def hint(get: Callable[[], T]) -> T | None:
    """A fact used only as a hint (the CPU vendor for a message or a module name): unknown or
    unusable both mean None, so a broken /proc/cpuinfo cannot turn a /dev/kvm check into an error."""
    try:
        return get()
    except (FactUnavailable, FactError):
        return None
