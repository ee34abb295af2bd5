"""`ClientCache`: a client certificate's successful check is kept, and given back only while it
still holds (inside the validity, not revoked); every other case is checked in full again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from trustproof.tokenservice.clients import ClientCache, Proved
from trustproof.tokenservice.core import Client

START = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
ORDERS = Client("spiffe://shop.test/orders", "x5t-orders")


def proved(serial: int = 7) -> Proved:
    return Proved(ORDERS, serial, START, START + timedelta(minutes=10))


def test_a_certificate_checked_once_is_known_until_it_expires() -> None:
    cache = ClientCache(lambda serial: False)
    cache.put(b"der", proved())
    assert cache.get(b"der", START + timedelta(minutes=5)) == ORDERS
    assert cache.get(b"other der", START) is None  # another certificate: checked in full
    assert cache.get(b"der", START + timedelta(minutes=10, seconds=1)) is None
    assert len(cache) == 0  # dropped: the full check says why


def test_a_clock_moved_back_before_the_validity_is_not_answered_from_the_cache() -> None:
    cache = ClientCache(lambda serial: False)
    cache.put(b"der", proved())
    assert cache.get(b"der", START - timedelta(seconds=1)) is None


def test_a_revocation_after_the_check_is_seen_at_the_next_request() -> None:
    revoked: set[int] = set()
    cache = ClientCache(revoked.__contains__)
    cache.put(b"der", proved(serial=7))
    assert cache.get(b"der", START) == ORDERS
    revoked.add(7)
    assert cache.get(b"der", START) is None


def test_a_revocation_check_that_fails_is_a_miss_fail_closed() -> None:
    def broken(serial: int) -> bool:
        raise RuntimeError("CRL unavailable")

    cache = ClientCache(broken)
    cache.put(b"der", proved())
    assert cache.get(b"der", START) is None


@pytest.mark.parametrize("size", [1, 3])
def test_the_cache_is_bounded_least_recently_used_first(size: int) -> None:
    cache = ClientCache(lambda serial: False, size=size)
    for n in range(size + 2):
        cache.put(f"der{n}".encode(), proved(serial=n))
    assert len(cache) == size
    assert cache.get(b"der0", START) is None
    assert cache.get(f"der{size + 1}".encode(), START) == ORDERS
    assert "x5t-orders" not in repr(cache)
