"""`trustproof.chaos.polling.until`: asking again until the wanted answer holds, bounded in time
and count."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from trustproof.chaos import polling


def answers(*given: str) -> tuple[list[str], Callable[[], Awaitable[str]]]:
    """A server answering `given`, one after the other; what it was asked so far."""
    asked: list[str] = []
    left = iter(given)

    async def ask() -> str:
        asked.append(next(left))
        return asked[-1]

    return asked, ask


def is_(wanted: str) -> Callable[[str], bool]:
    return lambda answer: answer == wanted


def test_one_wanted_answer_is_enough_by_default() -> None:
    asked, ask = answers("no", "no", "yes", "no")
    polled = asyncio.run(polling.until(ask, is_("yes"), within_s=10, every_s=0))
    assert (polled.answer, polled.reached, asked) == ("yes", True, ["no", "no", "yes"])
    assert polled.elapsed_s >= 0


def test_in_a_row_starts_over_on_any_other_answer() -> None:
    """A reload resetting one handshake is not the refusal: three refusals in a row are."""
    asked, ask = answers("refused", "reset", "refused", "refused", "refused", "allowed")
    polled = asyncio.run(polling.until(ask, is_("refused"), within_s=10, in_a_row=3, every_s=0))
    assert polled.reached
    assert len(asked) == 5


def test_past_the_time_the_last_answer_is_given_back_not_reached() -> None:
    asked, ask = answers("no", "no", "no")
    polled = asyncio.run(polling.until(ask, is_("yes"), within_s=0, every_s=0))
    assert (polled.answer, polled.reached, asked) == ("no", False, ["no"])


def test_bounded_in_count_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(polling, "MAX_POLLS", 4)
    asked, ask = answers(*["no"] * 10)
    polled = asyncio.run(polling.until(ask, is_("yes"), within_s=3600, every_s=0))
    assert not polled.reached
    assert len(asked) == 4
