"""Signing-key rotation with overlap, end to end through issuer, key ring and validator."""

from __future__ import annotations

from datetime import timedelta

import jwt
from tokens_support import AUDIENCE, SUBJECT

from trustproof.clock import ManualClock
from trustproof.tokens import KeyRing, TokenIssuer, TokenValidator


def test_rotation_keeps_old_tokens_valid_until_they_expire_then_drops_the_key(
    ring: KeyRing, issuer: TokenIssuer, validator: TokenValidator, clock: ManualClock
) -> None:
    old = issuer.issue(SUBJECT, AUDIENCE, ttl=timedelta(minutes=2))
    old_kid = ring.active.kid
    assert validator.validate(old.token.reveal(), audience=AUDIENCE).ok

    new_key = ring.rotate()
    new = issuer.issue(SUBJECT, AUDIENCE, ttl=timedelta(minutes=2))
    assert jwt.get_unverified_header(new.token.reveal())["kid"] == new_key.kid != old_kid
    assert list(ring.kids) == [new_key.kid, old_kid]  # both published during the overlap

    clock.advance(timedelta(minutes=1))
    assert validator.validate(old.token.reveal(), audience=AUDIENCE).ok  # in flight: still good
    assert validator.validate(new.token.reveal(), audience=AUDIENCE).ok

    clock.advance(timedelta(minutes=1))  # the old key's last token has just expired
    assert ring.prune() == [old_kid]
    assert list(ring.kids) == [new_key.kid]
    assert validator.validate(old.token.reveal(), audience=AUDIENCE).reason == "unknown-kid"
    assert validator.validate(new.token.reveal(), audience=AUDIENCE).ok


def test_the_key_stays_for_the_longest_lived_token(
    ring: KeyRing, issuer: TokenIssuer, validator: TokenValidator, clock: ManualClock
) -> None:
    long = issuer.issue(SUBJECT, AUDIENCE, ttl=timedelta(minutes=10))
    issuer.issue(SUBJECT, AUDIENCE, ttl=timedelta(minutes=1))
    ring.rotate()
    clock.advance(timedelta(minutes=5))
    assert ring.prune() == []
    assert validator.validate(long.token.reveal(), audience=AUDIENCE).ok
