from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trustproof.clock import ManualClock, SystemClock


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(datetime(2030, 1, 1, tzinfo=UTC))
    assert clock.now() == datetime(2030, 1, 1, tzinfo=UTC)
    clock.advance(timedelta(minutes=5))
    assert clock.now() == datetime(2030, 1, 1, 0, 5, tzinfo=UTC)
    assert clock.monotonic() == 300.0


def test_manual_clock_refuses_to_go_backwards() -> None:
    clock = ManualClock()
    with pytest.raises(ValueError, match="cannot go backwards"):
        clock.advance(-1)


def test_manual_clock_skew_jump_keeps_monotonic() -> None:
    clock = ManualClock()
    clock.advance(10)
    clock.set(datetime(2029, 1, 1, tzinfo=UTC))
    assert clock.now().year == 2029
    assert clock.monotonic() == 10.0


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(datetime(2030, 1, 1))


def test_system_clock_is_utc() -> None:
    assert SystemClock().now().tzinfo is UTC
