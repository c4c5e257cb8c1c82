"""Counting the work a call does, for linearity tests that never time anything: the Python and C
function calls it makes (``sys.setprofile``) and its peak allocation (``tracemalloc``)."""

from __future__ import annotations

import gc
import sys
import tracemalloc
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def count_work(fn: Callable[[], T]) -> tuple[T, int, int]:
    """(what ``fn()`` returned, calls made, peak bytes allocated)."""
    calls = 0

    def count(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    gc.collect()  # garbage of earlier tests must not be collected inside the measured call
    tracemalloc.start()
    sys.setprofile(count)
    try:
        value = fn()
    finally:
        sys.setprofile(None)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return value, calls, peak
