"""HTTP attempts against a boundary, and how a response (or a failed handshake) is classified.

An `HttpAttempt` is everything one probe sends: where, which certificate (or a broken one, or
none), which token (or a broken one), which headers, which TLS versions, and whether to reuse a
kept-alive connection. `send()` performs it and returns a `Result` — never raises for a refusal.

Classification works for trustproof's gateways and for servers trustproof did not build (nginx,
a service terminating mTLS itself):

==============================================  ============================================
what came back                                  outcome
==============================================  ============================================
handshake failure, reset, EOF before a response  ``denied_tls``
401 naming the tls stage; nginx 400 "No required  ``denied_tls``
SSL certificate" / "The SSL certificate error" /
"The plain HTTP request was sent to HTTPS port";
nginx 495/496/497
other 401 (token refused)                        ``denied_authn``
403; 400 from the gateway's path check;           ``denied_authz``
404/405 not from the service's handler (no
``X-Served-By``): nothing served the request
the service's own refusal of a request that did   ``denied_authn``
not come through its gateway (proof missing)
any other answer from the service's handler       ``allowed``
502/503/5xx from the gateway                      ``error``
connection refused, timeout                       ``unreachable``
==============================================  ============================================

nginx (1.22, ``ssl_verify_client on``) completes the handshake whatever certificate it gets and
refuses afterwards, with its own status codes sent as 400 pages: 496 no certificate, 495 a
certificate that failed verification (untrusted CA, self-signed, expired, not yet valid, revoked
on ``ssl_crl``, no clientAuth usage), 497 plain HTTP on the TLS port. Only a TLS version outside
``ssl_protocols`` fails the handshake itself (alert ``protocol_version``).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

from trustproof.probes.model import Evidence, Outcome, Result
from trustproof.scrub import scrub

TlsMode = Literal["default", "legacy", "plaintext"]
# nginx's transport refusals: status code and the text of its 400 page -> reason.
NGINX_TLS_REFUSALS = {
    496: ("no required ssl certificate was sent", "client-cert-required"),
    495: ("the ssl certificate error", "client-cert-refused"),
    497: ("the plain http request was sent to https port", "plaintext-to-tls-port"),
}


@dataclass(frozen=True)
class HttpAttempt:
    base_url: str  # https://host:port (or http:// for plaintext and bypass attempts)
    method: str
    path: str
    context: ssl.SSLContext | None  # None: plain HTTP
    token: str | None = field(default=None, repr=False)  # a bearer token: never shown
    headers: Sequence[tuple[str, str]] = ()
    body: bytes | None = None
    describe: str = ""  # for the evidence: who, with what (never the token itself)


def classify(
    status: int, headers: Mapping[str, str], body: bytes, *, from_gateway: bool = False
) -> tuple[Outcome, str, str]:
    """(outcome, stage, reason) for an HTTP answer.

    With `from_gateway` (a trustproof gateway stands in front), only the gateway's own refusal
    (``X-Trustproof-Decision: deny``) counts as a refusal: anything else was forwarded, whatever
    its status and body say — reading a forwarded 403 as a refusal would hide an over-permission.
    """
    served_by = headers.get("X-Served-By")
    data = _json(body)
    if served_by:
        if status == 401 and data.get("error") == "not from the gateway":
            return "denied_authn", "service", str(data.get("reason", "no-gateway-proof"))
        return "allowed", "", f"served by {served_by} (HTTP {status})"
    if from_gateway and headers.get("X-Trustproof-Decision") != "deny" and status < 500:
        return "allowed", "", f"forwarded by the gateway (HTTP {status}, no service marker)"
    stage = str(data.get("stage", ""))
    reason = str(data.get("reason", "")) or f"HTTP {status}"
    text = body[:300].decode("utf-8", "replace").lower()
    for code, (page, why) in NGINX_TLS_REFUSALS.items():
        if status == code or (status == 400 and page in text):
            return "denied_tls", "tls", reason if data else why
    if status == 401:
        return ("denied_tls" if stage == "tls" else "denied_authn"), stage or "token", reason
    if status == 403 or (status == 400 and stage in ("path", "request")):
        return "denied_authz", stage or "policy", reason
    if status >= 500:
        return "error", stage or "upstream", reason
    if status in (404, 405):  # nothing served it: no handler for that path or method
        return "denied_authz", stage or "route", f"no handler (HTTP {status})"
    # An answer that came from neither a trustproof gateway nor a known service marker: the
    # request got through something; count it as allowed (the verdict checks who served it).
    return "allowed", "", f"HTTP {status} (no service marker)"


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


async def send(
    attempt: HttpAttempt,
    session: aiohttp.ClientSession,
    *,
    timeout: float = 10.0,
    from_gateway: bool = False,
) -> Result:
    """Perform one attempt; every failure mode becomes a classified `Result`."""
    headers = list(attempt.headers)
    if attempt.token is not None:
        headers.append(("Authorization", f"Bearer {attempt.token}"))
    sent = f"{attempt.method} {attempt.path} to {attempt.base_url} {attempt.describe}".strip()
    start = time.perf_counter()

    def failed(outcome: Outcome, stage: str, reason: str, exc: BaseException) -> Result:
        detail = scrub(f"{type(exc).__name__}: {exc}")[:300]
        return Result(
            outcome,
            stage,
            reason,
            Evidence(sent=sent, detail=detail),
            (time.perf_counter() - start) * 1000,
        )

    try:
        async with (
            asyncio.timeout(timeout),
            session.request(
                attempt.method,
                attempt.base_url + attempt.path,
                headers=headers,
                data=attempt.body,
                ssl=attempt.context if attempt.context is not None else False,
                allow_redirects=False,
            ) as response,
        ):
            body = await response.read()
            status, response_headers = response.status, dict(response.headers)
    except aiohttp.ClientConnectorCertificateError as exc:
        # Our client refused the server's certificate: the probe learned nothing about the
        # boundary's own decision.
        return failed("error", "transport", "server-certificate-refused", exc)
    except (aiohttp.ClientSSLError, ssl.SSLError) as exc:
        return failed("denied_tls", "tls", "handshake-failed", exc)
    except aiohttp.ServerDisconnectedError as exc:
        return failed("denied_tls", "tls", "connection-closed", exc)
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, ssl.SSLError | ConnectionResetError):
            return failed("denied_tls", "tls", "connection-failed", exc)
        return failed("unreachable", "transport", "connection-refused", exc)
    except (aiohttp.ClientOSError, ConnectionResetError) as exc:
        return failed("denied_tls", "tls", "connection-reset", exc)
    except TimeoutError as exc:
        return failed("unreachable", "transport", "timeout", exc)
    except aiohttp.ClientError as exc:
        return failed("error", "transport", type(exc).__name__, exc)
    outcome, stage, reason = classify(status, response_headers, body, from_gateway=from_gateway)
    data = _json(body)
    detail = scrub(str(data.get("detail") or data.get("error") or "")[:300]) if data else ""
    evidence = Evidence(
        sent=sent,
        status=status,
        detail=detail,
        request_id=response_headers.get("X-Trustproof-Request-Id"),
        served_by=response_headers.get("X-Served-By"),
    )
    return Result(outcome, stage, reason, evidence, (time.perf_counter() - start) * 1000)
