"""Egress proxies: how a workload calls another one without handling credentials itself.

For each allowed edge (caller → callee) the sandbox runs a plain-HTTP listener on loopback that
the caller talks to. The proxy originates mutual TLS to the callee's gateway with the caller's
X.509-SVID and attaches the caller's access token for the callee's audience, obtained from the
token service with the client-credentials grant (RFC 8705 `tls_client_auth`, so the token is bound
to the same certificate) and renewed before it expires.

Fail closed: without a token the proxy answers 503 and sends nothing to the callee.

The caller's request is held to the gateway's header rules (`headers.py`): a request line other
than HTTP/1.0 or 1.1 and method- or URL-override headers are refused with 400; identity,
client-address and hop-by-hop headers, in any spelling (``X_Trustproof_Principal``), are removed.
The listener has the gateway's connection limits (`listener.py`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from cryptography import x509

from trustproof.clock import Clock
from trustproof.errors import EgressError
from trustproof.gateway.headers import relayable, request_problem
from trustproof.gateway.http1 import CONSUMED, end_to_end
from trustproof.gateway.listener import ConnectionLimits
from trustproof.gateway.plain import serve_plain
from trustproof.identity import Svid
from trustproof.scrub import Secret, scrub
from trustproof.tls import client_context
from trustproof.tokenservice.core import TOKEN_SERVICE_NAME

log = logging.getLogger("trustproof.gateway.egress")
# aiohttp decompresses nothing here (auto_decompress=False) but frames the body itself.
CONTENT_FRAMING = frozenset({"content-length"})
RENEW_FRACTION = 0.5  # renew once half the token's lifetime has passed


def spiffe_id_of(der: bytes | None) -> str | None:
    """The single SPIFFE URI SAN of a DER certificate, or None."""
    if not der:
        return None
    try:
        certificate = x509.load_der_x509_certificate(der)
        names = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value.get_values_for_type(x509.UniformResourceIdentifier)
    except (ValueError, x509.ExtensionNotFound):
        return None
    spiffe = [name for name in names if name.startswith("spiffe://")]
    return spiffe[0] if len(spiffe) == 1 else None


class CalleeMismatch(EgressError, aiohttp.ClientConnectionError):
    """The server's certificate chains to the sandbox CA but names someone else."""


class CalleeConnector(aiohttp.TCPConnector):
    """A connector that accepts a TLS connection only if the server's SVID names the identity
    expected at that address (`expected`: "host:port" -> SPIFFE ID).

    The TLS layer only checks that the certificate chains to the sandbox CA (any SVID does, a
    persona's included), and Python's ssl cannot match URI SANs; this check runs right after the
    handshake, before a request — and its token — is written on the connection.
    """

    def __init__(self, expected: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.expected = dict(expected)

    async def _wrap_create_connection(self, *args: Any, **kwargs: Any) -> Any:
        transport, protocol = await super()._wrap_create_connection(*args, **kwargs)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:  # plain HTTP has no peer certificate to check
            url = kwargs["req"].url
            wanted = self.expected.get(f"{url.host}:{url.port}")
            peer = spiffe_id_of(ssl_object.getpeercert(binary_form=True))
            if wanted is None or peer != wanted:
                transport.close()
                raise CalleeMismatch(
                    f"the server presented {peer or 'no SPIFFE ID'}, "
                    f"not {wanted or 'an identity expected at this address'}"
                )
        return transport, protocol


def _address(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


class TokenUnavailable(EgressError):
    """The token service did not give a token; the message says why (never the token)."""


@dataclass(frozen=True)
class _Token:
    value: Secret[str]
    renew_at: float  # monotonic


class WorkloadTokenSource:
    """The caller's token for one audience, fetched over mTLS and renewed before expiry."""

    def __init__(
        self, token_url: str, audience: str, bundle_pem: bytes, svid: Svid, clock: Clock
    ) -> None:
        self.token_url = token_url
        self.audience = audience
        self.clock = clock
        self._context = client_context(bundle_pem, svid)
        self._token: _Token | None = None
        self._lock = asyncio.Lock()

    @property
    def context(self) -> ssl.SSLContext:
        """The TLS client context presenting the certificate this source's tokens are bound to."""
        return self._context

    async def get(self, session: aiohttp.ClientSession) -> str:
        current = self._token
        if current is not None and time.monotonic() < current.renew_at:
            return current.value.reveal()
        async with self._lock:  # one fetch at a time; the others reuse its result
            current = self._token
            if current is None or time.monotonic() >= current.renew_at:
                current = await self._fetch(session)
                self._token = current
            return current.value.reveal()

    async def _fetch(self, session: aiohttp.ClientSession) -> _Token:
        form = {"grant_type": "client_credentials", "audience": self.audience}
        try:
            async with session.post(self.token_url, data=form, ssl=self._context) as response:
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            raise TokenUnavailable(f"token service unreachable: {type(exc).__name__}") from None
        if response.status != 200 or not isinstance(body, dict) or "access_token" not in body:
            error = body.get("error", "?") if isinstance(body, dict) else "?"
            raise TokenUnavailable(f"token service refused: HTTP {response.status} {error}")
        lifetime = float(body.get("expires_in", 60))
        return _Token(
            Secret(str(body["access_token"])), time.monotonic() + lifetime * RENEW_FRACTION
        )


class EgressProxy:
    """Plain HTTP in (loopback, from the caller), mTLS + token out (to the callee's gateway)."""

    def __init__(
        self,
        *,
        caller: str,
        callee: str,
        callee_url: str,
        token_url: str,
        audience: str,
        bundle_pem: bytes,
        svid: Svid,
        clock: Clock,
        limits: ConnectionLimits | None = None,
    ) -> None:
        self.caller = caller
        self.limits = limits or ConnectionLimits()
        self.callee = callee
        self.callee_url = callee_url.rstrip("/")
        self._source_args = (token_url, audience, bundle_pem)
        self._clock = clock
        # The certificate and the tokens bound to it change together, as one object: a request
        # never pairs a token with a certificate it is not bound to.
        self.tokens = WorkloadTokenSource(token_url, audience, bundle_pem, svid, clock)
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.ServerRunner | None = None
        self.url = ""

    async def start(self, sock: socket.socket) -> None:
        trust_domain = self.tokens.audience.removeprefix("spiffe://").split("/")[0]
        expected = {
            _address(self.callee_url): self.tokens.audience,
            _address(self.tokens.token_url): f"spiffe://{trust_domain}/{TOKEN_SERVICE_NAME}",
        }
        connector = CalleeConnector(expected, limit=128, keepalive_timeout=30)
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, timeout=aiohttp.ClientTimeout(total=30)
        )
        try:
            self._runner, self.url = await serve_plain(self._handle, sock, self.limits)
        except BaseException:  # nothing half-started may stay behind (the socket is closed)
            await self.close()
            raise

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def reload_svid(self, svid: Svid) -> None:
        """New requests present the rotated certificate with tokens bound to it. Pooled
        connections are keyed by TLS context, so none made with the old certificate is reused."""
        self.tokens = WorkloadTokenSource(*self._source_args, svid, self._clock)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if self._session is None:
            return egress_failure(503, "not-ready", "the egress proxy is not serving yet")
        problem = request_problem(
            (request.version.major, request.version.minor), list(request.headers.items())
        )
        if problem is not None:
            return egress_failure(400, problem.reason, f"{problem.detail}; nothing was sent")
        tokens = self.tokens
        try:
            token = await tokens.get(self._session)
        except TokenUnavailable as exc:
            return egress_failure(
                503,
                "token-unavailable",
                f"{self.caller} has no token for {self.callee}: {exc}; nothing was sent",
            )
        headers, _ = relayable(request.headers.items(), CONSUMED)
        headers.append(("Authorization", f"Bearer {token}"))
        try:
            body = await request.read()
            async with self._session.request(
                request.method,
                self.callee_url + request.raw_path,
                headers=headers,
                data=body or None,
                ssl=tokens.context,
                allow_redirects=False,
            ) as response:
                payload = await response.read()
                out = end_to_end(response.headers.items(), CONTENT_FRAMING)
                return web.Response(status=response.status, body=payload, headers=out)
        except CalleeMismatch as exc:
            log.error("egress %s -> %s refused the server: %s", self.caller, self.callee, exc)
            return egress_failure(
                502,
                "callee-identity-mismatch",
                f"the server at {self.callee}'s address is not {self.callee} ({exc}); "
                "nothing was sent",
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # An answer (502), not a bug: one line, scrubbed; a network fault repeats it.
            log.warning(
                "egress %s -> %s failed: %s: %s",
                self.caller,
                self.callee,
                type(exc).__name__,
                scrub(str(exc))[:300],
            )
            return egress_failure(
                502,
                "callee-unavailable",
                f"{self.callee} could not be reached: {type(exc).__name__}",
            )


def egress_failure(status: int, reason: str, detail: str) -> web.Response:
    """The answer of an egress or dependency proxy that sent nothing on, or got nothing back."""
    return web.json_response(
        {"error": "egress_failed", "reason": reason, "detail": detail},
        status=status,
        headers={"X-Trustproof-Decision": "egress-error"},
    )
