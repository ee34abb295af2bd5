from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from trustproof.clock import ManualClock
from trustproof.identity import CertificateAuthority, Svid, SvidCheck, verify_svid

TD = "shop.test"
TTL = timedelta(minutes=5)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=[False, True], ids=["root-signs", "intermediate-signs"])
def ca(request: pytest.FixtureRequest, clock: ManualClock) -> CertificateAuthority:
    """The CA in both shapes: leaves signed by the root, or by an intermediate under it."""
    return CertificateAuthority(TD, clock, intermediate=request.param)


Check = Callable[[Svid], SvidCheck]


@pytest.fixture
def check(ca: CertificateAuthority, clock: ManualClock) -> Check:
    """verify_svid as a gateway of `ca`'s trust domain would call it, at the clock's time."""

    def run(svid: Svid) -> SvidCheck:
        return verify_svid(
            svid.certificate,
            svid.intermediates,
            bundle=ca.bundle,
            trust_domain=TD,
            now=clock.now(),
            revoked=ca.is_revoked,
        )

    return run
