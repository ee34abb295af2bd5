"""Shared fixtures for the token unit tests: one manual clock and the objects that read it."""

from __future__ import annotations

import pytest
from tokens_support import ISSUER, START

from trustproof.clock import ManualClock
from trustproof.tokens import BrokenTokens, KeyRing, RevocationList, TokenIssuer, TokenValidator


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def ring(clock: ManualClock) -> KeyRing:
    return KeyRing(clock)


@pytest.fixture
def issuer(ring: KeyRing, clock: ManualClock) -> TokenIssuer:
    return TokenIssuer(ISSUER, ring, clock)


@pytest.fixture
def revocations(clock: ManualClock) -> RevocationList:
    return RevocationList(clock)


@pytest.fixture
def validator(ring: KeyRing, revocations: RevocationList, clock: ManualClock) -> TokenValidator:
    return TokenValidator(ISSUER, ring, revocations, clock)


@pytest.fixture
def broken(issuer: TokenIssuer, ring: KeyRing, clock: ManualClock) -> BrokenTokens:
    return BrokenTokens(issuer, ring, clock)
