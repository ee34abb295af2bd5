"""One HTTP attempt through aiohttp, and what its failures mean (`TransportFailure` kinds): the
live view's client side, without the view's caches. Also how a client TLS context is made to
offer only legacy versions or weak suites (the TLS probes)."""

from __future__ import annotations

import asyncio
import ssl
import warnings
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from trustproof.scrub import scrub
from trustproof.view import Exchange, HttpAnswer, TlsOffer, TransportFailure
from trustproof.view.exchange import WEAK_CIPHERS

TIMEOUT_S = 10.0
STALE_CONNECTION = frozenset({"connection-closed", "connection-reset", "client-error"})
"""How a request on a reused connection fails when the server had closed it (not a refusal)."""
IDLE_KEYS = 16
"""Addresses and identities (aiohttp's connection keys) that keep idle connections at a time."""


class BoundedIdleConnector(aiohttp.TCPConnector):
    """aiohttp's connector keeping idle connections for at most `idle_keys` keys (address and
    TLS context: one presented identity to one server) at a time: when a connection going back
    to the pool makes one key more, the idle connections of the key that went longest without
    one coming back are closed. aiohttp bounds idle connections by time only (its keep-alive
    timeout), so a suite across many identities and services kept hundreds of TLS connections
    open on both sides, each with its buffers (the peak memory of a large spec).

    It reads aiohttp's pool (``_conns``: key -> idle connections), which aiohttp's own
    `_release` fills and its `_get` and `_cleanup` empty; ``tests/unit/test_http_client_idle.py``
    holds it to the pinned aiohttp."""

    def __init__(self, *, idle_keys: int = IDLE_KEYS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._idle_keys = max(1, idle_keys)
        self._released: OrderedDict[Any, None] = OrderedDict()  # keys, least recent first

    def _release(self, key: Any, protocol: Any, *, should_close: bool = False) -> None:
        super()._release(key, protocol, should_close=should_close)
        pool = self._conns
        if key in pool:
            self._released[key] = None
            self._released.move_to_end(key)
        while len(pool) > self._idle_keys and self._released:
            oldest, _ = self._released.popitem(last=False)
            for idle, _ in pool.pop(oldest, ()):
                idle.close()

    @property
    def idle_connections(self) -> int:
        """Idle kept-alive connections in the pool now (tests, benchmarks)."""
        return sum(len(idle) for idle in self._conns.values())


async def aiohttp_exchange(
    session: aiohttp.ClientSession,
    method: str,
    *,
    base: str,
    target: str,
    headers: Sequence[tuple[str, str]],
    body: bytes | None,
    context: ssl.SSLContext | bool,
) -> Exchange:
    """Send `method base+target` on `session`; the answer (headers case-insensitive, as HTTP
    field names are: RFC 9110 §5.1), or the failure classified — never raises for either."""

    def failed(kind: Any, exc: BaseException) -> TransportFailure:
        return TransportFailure(kind, scrub(f"{type(exc).__name__}: {exc}")[:300], base)

    try:
        async with (
            asyncio.timeout(TIMEOUT_S),
            session.request(
                method,
                base + target,
                headers=list(headers),
                data=body,
                ssl=context,
                allow_redirects=False,
            ) as response,
        ):
            return HttpAnswer(response.status, response.headers, await response.read(), base)
    except aiohttp.ClientConnectorCertificateError as exc:
        return failed("server-cert-refused", exc)
    except (aiohttp.ClientSSLError, ssl.SSLError) as exc:
        return failed("handshake-failed", exc)
    except aiohttp.ServerDisconnectedError as exc:
        return failed("connection-closed", exc)
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, ssl.SSLError | ConnectionResetError):
            return failed("connection-failed", exc)
        return failed("connection-refused", exc)
    except (aiohttp.ClientOSError, ConnectionResetError) as exc:
        return failed("connection-reset", exc)
    except TimeoutError as exc:
        return failed("timeout", exc)
    except aiohttp.ClientError as exc:
        return failed("client-error", exc)


OFFERS_ONLY: Mapping[TlsOffer, tuple[ssl.TLSVersion, ssl.TLSVersion]] = {
    "legacy": (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1),
    "tls1.0": (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1),
    "tls1.1": (ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1),
    "weak-ciphers": (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2),
}


def offer_only(context: ssl.SSLContext, tls: TlsOffer) -> None:
    """Make a client context offer only what `tls` says: legacy versions (with every suite
    OpenSSL still has for them, at SECLEVEL=0) or TLS 1.2 with only `WEAK_CIPHERS`."""
    if tls not in OFFERS_ONLY:
        return
    lowest, highest = OFFERS_ONLY[tls]
    with warnings.catch_warnings():  # offering deprecated versions is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = lowest
        context.maximum_version = highest
    context.set_ciphers(WEAK_CIPHERS if tls == "weak-ciphers" else "DEFAULT:@SECLEVEL=0")
