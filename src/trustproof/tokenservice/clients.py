"""The token service's client certificates, verified once per certificate rather than per request.

A revocation storm is a thousand requests from one client on a few kept-alive connections; each
used to verify the same X.509-SVID again (the chain, the SPIFFE ID: ~0.3 ms of the event loop per
request, a third of the token service's own work). `ClientCache` keeps what a successful check
proved — the client, the leaf's serial and validity — keyed by the certificate's digest, and on a
hit checks again what can change: the time is inside the validity (an injected clock may move
either way), and the serial is not revoked (`CertificateAuthority.is_revoked` also answers for a
revoked intermediate or a retired root, so a cached chain check still learns of a withdrawn
issuer). Refusals are not kept: a refused certificate is checked in full every time, as before.
The gateways cache their peers' checks the same way (`trustproof.gateway.server`).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from trustproof.tokenservice.core import Client

MAX_CLIENTS = 4096  # distinct certificates remembered (least recently used dropped first)


@dataclass(frozen=True)
class Proved:
    """What one successful check of a client certificate established."""

    client: Client
    serial: int
    not_before: datetime
    not_after: datetime


class ClientCache:
    """Successful client-certificate checks by the certificate's SHA-256, bounded (LRU)."""

    def __init__(self, revoked: Callable[[int], bool], *, size: int = MAX_CLIENTS) -> None:
        self._revoked = revoked
        self._size = size
        self._proved: OrderedDict[bytes, Proved] = OrderedDict()

    def get(self, der: bytes, now: datetime) -> Client | None:
        """The client `der` proved to be, if that still holds at `now`; None: check it in full
        (not seen, outside its validity, or revoked since: the full check says why)."""
        key = hashlib.sha256(der).digest()
        proved = self._proved.get(key)
        if proved is None:
            return None
        if not proved.not_before <= now <= proved.not_after or self._withdrawn(proved.serial):
            del self._proved[key]
            return None
        self._proved.move_to_end(key)
        return proved.client

    def _withdrawn(self, serial: int) -> bool:
        try:
            return self._revoked(serial)
        except Exception:  # the full check refuses, saying why (fail closed)
            return True

    def put(self, der: bytes, proved: Proved) -> None:
        self._proved[hashlib.sha256(der).digest()] = proved
        while len(self._proved) > self._size:
            self._proved.popitem(last=False)

    def __len__(self) -> int:
        return len(self._proved)

    def __repr__(self) -> str:
        return f"ClientCache(certificates={len(self._proved)})"
