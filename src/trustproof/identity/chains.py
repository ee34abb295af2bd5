"""`VerifiedChains`: chains `verify_svid` has already built and checked, to skip the verifier on
the next presentation of the same certificate to the same trust bundle.

Building and checking a chain (`cryptography.x509.verification`: path building and the
signatures) is most of what `verify_svid` costs; an in-memory view deciding thousands of
attempts with a handful of certificates repeats it for the same inputs. An entry is keyed on the
leaf, the intermediates the peer sent and the trusted bundle, all by their DER (a
`x509.Certificate` hashes and compares by it): a rotated, added or retired root is another
bundle, so another key, and the chain is built afresh. A hit is used only while every
certificate of the chain is inside its validity at ``now``; otherwise the verifier runs again and
decides. What is not about the chain is never cached: the leaf's own checks, the SPIFFE ID and
the revocation of each certificate run on every call, so a certificate revoked after it was
cached is refused the next time it is presented.

Bounded: at `max_entries` the cache starts again empty. Not thread-safe (one per view or per
event loop).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cryptography import x509

ChainKey = tuple[x509.Certificate, tuple[x509.Certificate, ...], tuple[x509.Certificate, ...]]


class VerifiedChains:
    """Verified chains (leaf first, trust anchor last) by (leaf, intermediates, bundle)."""

    def __init__(self, max_entries: int = 1024) -> None:
        self.max_entries = max_entries
        # chain, and the window every certificate in it is valid in (latest start, earliest end)
        self._chains: dict[ChainKey, tuple[tuple[x509.Certificate, ...], datetime, datetime]] = {}
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        return f"VerifiedChains({len(self._chains)} chains, {self.hits} hits, {self.misses} misses)"

    def __len__(self) -> int:
        return len(self._chains)

    @staticmethod
    def key(
        leaf: x509.Certificate,
        intermediates: Sequence[x509.Certificate],
        bundle: Sequence[x509.Certificate],
    ) -> ChainKey:
        return leaf, tuple(intermediates), tuple(bundle)

    def get(self, key: ChainKey, now: datetime) -> tuple[x509.Certificate, ...] | None:
        """The chain verified for `key`, if every certificate in it is valid at `now` (UTC)."""
        entry = self._chains.get(key)
        if entry is None or not entry[1] <= now <= entry[2]:
            self.misses += 1
            return None
        self.hits += 1
        return entry[0]

    def put(self, key: ChainKey, chain: Sequence[x509.Certificate]) -> None:
        if len(self._chains) >= self.max_entries:
            self._chains.clear()
        start = max(c.not_valid_before_utc for c in chain)
        end = min(c.not_valid_after_utc for c in chain)
        self._chains[key] = (tuple(chain), start, end)

    def clear(self) -> None:
        self._chains.clear()
