"""`VerifiedChains`: a chain verified once is reused for the same leaf and bundle, and the cache
never changes a verdict — revocation, a rotated-out root and time are still decided per call."""

from __future__ import annotations

from datetime import timedelta

import pytest

from trustproof.clock import ManualClock
from trustproof.identity import (
    EXPECTED_REASON,
    BrokenMaterial,
    CertificateAuthority,
    Svid,
    SvidCheck,
    verify_svid,
)
from trustproof.identity.chains import VerifiedChains

TD = "shop.test"
TTL = timedelta(minutes=5)


def _check(
    ca: CertificateAuthority,
    clock: ManualClock,
    svid: Svid,
    chains: VerifiedChains | None,
    *,
    revocation: bool = True,
) -> SvidCheck:
    return verify_svid(
        svid.certificate,
        svid.intermediates,
        bundle=ca.bundle,
        trust_domain=TD,
        now=clock.now(),
        revoked=ca.is_revoked if revocation else None,
        chains=chains,
    )


def test_the_second_check_of_a_certificate_reuses_its_chain(
    ca: CertificateAuthority, clock: ManualClock
) -> None:
    chains = VerifiedChains()
    svid = ca.issue("orders", TTL)
    first, second = (_check(ca, clock, svid, chains) for _ in range(2))
    assert first == second
    assert second.ok
    assert (chains.misses, chains.hits, len(chains)) == (1, 1, 1)


@pytest.mark.parametrize("kind", sorted(EXPECTED_REASON))
def test_every_broken_kind_gets_the_same_verdict_with_and_without_the_cache(
    ca: CertificateAuthority, clock: ManualClock, kind: str
) -> None:
    chains = VerifiedChains()
    broken = BrokenMaterial(ca, clock)
    for svid in (broken.valid("orders"), broken.make(kind, "orders")):
        plain = _check(ca, clock, svid, None)
        assert _check(ca, clock, svid, chains) == plain
        assert _check(ca, clock, svid, chains) == plain  # from the cache, when it was cached


def test_a_certificate_revoked_after_its_chain_was_cached_is_refused(
    ca: CertificateAuthority, clock: ManualClock
) -> None:
    chains = VerifiedChains()
    svid = ca.issue("orders", TTL)
    assert _check(ca, clock, svid, chains).ok
    ca.revoke(svid)
    result = _check(ca, clock, svid, chains)
    assert (result.ok, result.reason) == (False, "revoked")
    assert chains.hits == 1  # the chain came from the cache; the revocation did not


def test_an_intermediate_revoked_after_the_chain_was_cached_refuses_its_leaves(
    clock: ManualClock,
) -> None:
    ca = CertificateAuthority(TD, clock, intermediate=True)
    chains = VerifiedChains()
    svid = ca.issue("orders", TTL)
    revoked: set[int] = set()  # the intermediate alone: the CA would also list its leaves

    def check() -> SvidCheck:
        return verify_svid(
            svid.certificate,
            svid.intermediates,
            bundle=ca.bundle,
            trust_domain=TD,
            now=clock.now(),
            revoked=revoked.__contains__,
            chains=chains,
        )

    assert check().ok
    revoked.add(svid.intermediates[0].serial_number)
    result = check()
    assert (result.ok, result.reason) == (False, "revoked")
    assert "intermediate" in result.detail
    assert chains.hits == 1


def test_a_certificate_of_a_rotated_out_root_is_refused_though_its_chain_was_cached(
    clock: ManualClock,
) -> None:
    """The bundle is part of the key: without the revocation callback (which also refuses a
    retired root's leaves), only that keeps the retired root's chain from being reused."""
    ca = CertificateAuthority(TD, clock)
    chains = VerifiedChains()
    old_root = ca.root
    svid = ca.issue("orders", TTL)
    assert _check(ca, clock, svid, chains, revocation=False).ok
    ca.rotate_root()
    assert _check(ca, clock, svid, chains, revocation=False).ok  # the overlap: both trusted
    ca.retire_root(old_root)
    result = _check(ca, clock, svid, chains, revocation=False)
    assert (result.ok, result.reason) == (False, "untrusted")


def test_a_cached_chain_outside_its_validity_is_not_used(
    ca: CertificateAuthority, clock: ManualClock
) -> None:
    chains = VerifiedChains()
    svid = ca.issue("orders", TTL)
    assert _check(ca, clock, svid, chains).ok
    key = VerifiedChains.key(svid.certificate, svid.intermediates, ca.bundle)
    after = svid.certificate.not_valid_after_utc + timedelta(seconds=1)
    before = svid.certificate.not_valid_before_utc - timedelta(seconds=1)
    assert chains.get(key, clock.now()) is not None
    assert chains.get(key, after) is None
    assert chains.get(key, before) is None
    clock.advance(TTL + timedelta(minutes=1))
    assert _check(ca, clock, svid, chains).reason == "expired"


def test_the_cache_is_bounded() -> None:
    clock = ManualClock()
    ca = CertificateAuthority(TD, clock)
    chains = VerifiedChains(max_entries=2)
    for name in ("a", "b", "c"):
        assert _check(ca, clock, ca.issue(name, TTL), chains).ok
    assert len(chains) == 1
    assert "1 chains" in repr(chains)
