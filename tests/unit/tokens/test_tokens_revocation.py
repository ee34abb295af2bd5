from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from tokens_support import ISSUER

from trustproof.clock import ManualClock
from trustproof.tokens import KeyRing, RevocationEvent, RevocationList, TokenValidator


def test_revoke_is_recorded_once(revocations: RevocationList, clock: ManualClock) -> None:
    exp = clock.now() + timedelta(minutes=2)
    assert not revocations.is_revoked("jti-1")
    assert revocations.revoke("jti-1", exp) is True
    assert revocations.is_revoked("jti-1")
    assert revocations.revoke("jti-1", exp) is False
    assert len(revocations) == 1
    assert "jti-1" in revocations


def test_revocation_is_pushed_synchronously_with_its_timing(
    revocations: RevocationList, clock: ManualClock
) -> None:
    seen: list[RevocationEvent] = []
    revocations.subscribe(seen.append)
    clock.advance(7)
    exp = clock.now() + timedelta(minutes=2)
    revocations.revoke("jti-1", exp)
    assert seen == [RevocationEvent("jti-1", exp, clock.now(), 7.0)]  # before revoke() returned
    revocations.revoke("jti-1", exp)
    assert len(seen) == 1  # a repeat is not pushed again


def test_a_failing_subscriber_does_not_stop_the_others(
    revocations: RevocationList, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    def explode(event: RevocationEvent) -> None:
        raise RuntimeError("gateway gone")

    revocations.subscribe(lambda event: seen.append("first"))
    revocations.subscribe(explode)
    revocations.subscribe(lambda event: seen.append("last"))
    with caplog.at_level(logging.ERROR, logger="trustproof.tokens"):
        assert revocations.revoke("jti-1", clock.now()) is True
    assert seen == ["first", "last"]
    assert [r.name for r in caplog.records] == ["trustproof.tokens"]
    assert "jti-1" in caplog.records[0].getMessage()
    assert revocations.is_revoked("jti-1")


def test_unsubscribe_stops_pushes_and_is_idempotent(
    revocations: RevocationList, clock: ManualClock
) -> None:
    seen: list[RevocationEvent] = []
    unsubscribe = revocations.subscribe(seen.append)
    unsubscribe()
    unsubscribe()
    revocations.revoke("jti-1", clock.now())
    assert seen == []


def test_a_mirror_takes_past_and_future_revocations_with_their_timestamps(
    revocations: RevocationList, clock: ManualClock
) -> None:
    exp = clock.now() + timedelta(minutes=2)
    revocations.revoke("before", exp)
    gateway = RevocationList(clock)
    pushed: list[RevocationEvent] = []
    gateway.subscribe(pushed.append)
    stop = gateway.follow(revocations)
    assert gateway.is_revoked("before")
    clock.advance(3)
    revocations.revoke("after", exp)
    assert gateway.is_revoked("after")
    assert [e.jti for e in pushed] == ["before", "after"]
    assert gateway.events() == revocations.events()  # same events, same origin timestamps
    assert clock.monotonic() - pushed[-1].monotonic == 0.0  # pushed within the same instant
    stop()
    revocations.revoke("later", exp)
    assert not gateway.is_revoked("later")


def test_mirrors_following_each_other_do_not_loop(clock: ManualClock) -> None:
    a, b = RevocationList(clock), RevocationList(clock)
    a.follow(b)
    b.follow(a)
    assert a.revoke("jti-1", clock.now()) is True
    assert b.is_revoked("jti-1")
    assert a.apply(b.events()[0]) is False


def test_prune_waits_for_expiry_plus_grace(clock: ManualClock) -> None:
    revocations = RevocationList(clock, grace=timedelta(seconds=30))
    revocations.revoke("short", clock.now() + timedelta(seconds=10))
    revocations.revoke("long", clock.now() + timedelta(minutes=5))
    clock.advance(39)
    assert revocations.prune() == []
    clock.advance(1)
    assert revocations.prune() == ["short"]
    assert not revocations.is_revoked("short")
    assert revocations.is_revoked("long")


def test_grace_must_cover_the_validator_leeway(ring: KeyRing, clock: ManualClock) -> None:
    short = RevocationList(clock, grace=timedelta(seconds=1))
    with pytest.raises(ValueError, match="revoked tokens would come back"):
        TokenValidator(ISSUER, ring, short, clock, leeway=timedelta(seconds=5))
    TokenValidator(ISSUER, ring, short, clock, leeway=timedelta(seconds=1))


@pytest.mark.parametrize("jti", ["", None])
def test_revoke_needs_a_jti(revocations: RevocationList, clock: ManualClock, jti: object) -> None:
    with pytest.raises(ValueError, match="jti"):
        revocations.revoke(jti, clock.now())  # type: ignore[arg-type]


def test_revoke_needs_an_aware_expiry(revocations: RevocationList, clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        revocations.revoke("jti-1", clock.now().replace(tzinfo=None))


def test_negative_grace_is_refused(clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="negative"):
        RevocationList(clock, grace=timedelta(seconds=-1))
