"""How fast this machine runs Python just now, printed beside the figures of the benchmarks."""

from __future__ import annotations

import time


def pace() -> str:
    """How fast this machine runs Python just now: a fixed loop, best of three. A shared VM's pace
    moves by half from one hour to the next, and every figure here with it."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        x = 0
        for i in range(3_000_000):
            x += i
        best = min(best, time.perf_counter() - t0)
    return f"pace: 3,000,000 additions in a Python loop take {best * 1000:.0f} ms"
