"""Injectable time.

Everything that reads the time takes a `Clock`, so that expired and not-yet-valid material can be
minted with exact timestamps and tests never sleep waiting for expiry. `SystemClock` is the real
one; `ManualClock` beside it is the fake that tests move by hand.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Wall-clock time (timezone-aware UTC) and a monotonic counter for measuring durations."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The machine's clocks."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that only moves when told to: `advance()` or `set()`.

    Both the wall clock and the monotonic counter move together, so durations measured across an
    `advance()` come out exactly.
    """

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2030, 1, 1, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time (use UTC)")
        self._now = start
        self._monotonic = 0.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, delta: timedelta | float) -> None:
        """Move forward by `delta` (a timedelta, or seconds); moving backwards is refused."""
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        if seconds < 0:
            raise ValueError("ManualClock.advance() cannot go backwards; use set() for a jump")
        self._now += timedelta(seconds=seconds)
        self._monotonic += seconds

    def set(self, when: datetime) -> None:
        """Jump the wall clock (e.g. to simulate skew); the monotonic counter does not move back."""
        if when.tzinfo is None:
            raise ValueError("ManualClock.set() needs a timezone-aware time (use UTC)")
        self._now = when

    def __repr__(self) -> str:
        return f"ManualClock({self._now.isoformat()})"


class SkewedClock:
    """Another clock's time moved by a fixed `offset` (a skewed server clock, for the trust-chaos
    experiments); its monotonic counter is the other clock's."""

    def __init__(self, base: Clock, offset: timedelta) -> None:
        self.base = base
        self.offset = offset

    def now(self) -> datetime:
        return self.base.now() + self.offset

    def monotonic(self) -> float:
        return self.base.monotonic()

    def __repr__(self) -> str:
        return f"SkewedClock({self.base!r}, {self.offset})"
