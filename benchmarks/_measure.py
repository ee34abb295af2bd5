"""Bounded timing loops shared by the benchmarks: every loop stops at a count and at a time."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

MAX_SECONDS = 2.0
MAX_COUNT = 20_000


def per_second(func: Callable[[int], object], *, warmup: int = 20) -> tuple[float, int]:
    """Calls per second of `func(i)`, bounded by MAX_COUNT calls and MAX_SECONDS."""
    for warm in range(warmup):
        func(warm)
    count, start = 0, time.perf_counter()
    while count < MAX_COUNT and time.perf_counter() - start < MAX_SECONDS:
        func(count)
        count += 1
    return count / (time.perf_counter() - start), count


def micros(func: Callable[[int], object], count: int = 2000) -> float:
    """Median microseconds per call over `count` calls (bounded by MAX_SECONDS)."""
    samples: list[float] = []
    deadline = time.perf_counter() + MAX_SECONDS
    for i in range(count):
        start = time.perf_counter_ns()
        func(i)
        samples.append((time.perf_counter_ns() - start) / 1000)
        if time.perf_counter() > deadline:
            break
    return statistics.median(samples)
