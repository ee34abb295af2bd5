"""Asking a server again until it answers as wanted: how the chaos experiments wait for a change
to reach a server that reads its files (a reload is asynchronous), bounded in time and count.

`until` asks, judges each answer, and stops once the wanted answer came `in_a_row` times in a row
or `within_s` has passed (or `MAX_POLLS` answers were had); it says which, with the last answer
and the time it took. The experiments decide what a wanted answer is (accepted, refused, the
reissued certificate shown) and what to record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

POLL_S = 0.05  # between two questions
MAX_POLLS = 1000  # the bound in count, whatever `within_s` says


@dataclass(frozen=True)
class Polled(Generic[T]):
    """The last answer; whether the wanted one came (`in_a_row` times in a row) in time; the
    seconds from the first question to the last answer."""

    answer: T
    reached: bool
    elapsed_s: float


async def until(
    ask: Callable[[], Awaitable[T]],
    wanted: Callable[[T], bool],
    *,
    within_s: float,
    in_a_row: int = 1,
    every_s: float = POLL_S,
) -> Polled[T]:
    """Ask until `wanted` holds for `in_a_row` answers in a row, or `within_s` has passed (at
    least one answer is had, however short `within_s`)."""
    start, streak, count = time.perf_counter(), 0, 0
    while True:
        answer = await ask()
        count += 1
        streak = streak + 1 if wanted(answer) else 0
        elapsed = time.perf_counter() - start
        if streak >= in_a_row or elapsed > within_s or count >= MAX_POLLS:
            return Polled(answer, streak >= in_a_row, elapsed)
        await asyncio.sleep(every_s)
