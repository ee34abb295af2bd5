"""How the answer to an HTTP attempt (or a failed handshake) is classified, and `attempt()`, which
sends a `Presentation` through a `SandboxView` and returns the `Result` — never raises for a
refusal.

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
400 from its HTTP parser (a head too large);
404/405 not from the service's handler (no
``X-Served-By``): nothing served the request
the service's own refusal of a request that did   ``denied_authn``
not come through its gateway (proof missing)
any other answer from the service's handler       ``allowed``
502/503/5xx from the gateway                      ``error``
connection refused, timeout                       ``unreachable``
our client refused the server's certificate       ``error`` (nothing learned)
==============================================  ============================================

nginx (1.22, ``ssl_verify_client on``) completes the handshake whatever certificate it gets and
refuses afterwards, with its own status codes sent as 400 pages: 496 no certificate, 495 a
certificate that failed verification (untrusted CA, self-signed, expired, not yet valid, revoked
on ``ssl_crl``, no clientAuth usage), 497 plain HTTP on the TLS port. Only a TLS version outside
``ssl_protocols`` fails the handshake itself (alert ``protocol_version``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from trustproof.probes.model import Evidence, Outcome, Result
from trustproof.probes.presentation import Presentation
from trustproof.scrub import scrub
from trustproof.view import (
    Channel,
    Exchange,
    FailureKind,
    HttpRequest,
    SandboxView,
    TransportFailure,
)

# nginx's transport refusals: status code and the text of its 400 page -> reason.
NGINX_TLS_REFUSALS = {
    496: ("no required ssl certificate was sent", "client-cert-required"),
    495: ("the ssl certificate error", "client-cert-refused"),
    497: ("the plain http request was sent to https port", "plaintext-to-tls-port"),
}


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
    if status == 403 or (status == 400 and stage in ("path", "request", "http")):
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


FAILURES: Mapping[FailureKind, tuple[Outcome, str]] = {
    "server-cert-refused": ("error", "transport"),  # we gave up: nothing learned
    "handshake-failed": ("denied_tls", "tls"),
    "connection-closed": ("denied_tls", "tls"),
    "connection-failed": ("denied_tls", "tls"),
    "connection-reset": ("denied_tls", "tls"),
    "connection-refused": ("unreachable", "transport"),
    "timeout": ("unreachable", "transport"),
    "client-error": ("error", "transport"),
}
"""Transport failure -> (outcome, stage); the reason is the failure's kind."""


def result_of(exchange: Exchange, sent: str, elapsed_ms: float, *, from_gateway: bool) -> Result:
    """The classified `Result` of one exchange (see the table above)."""
    if isinstance(exchange, TransportFailure):
        outcome, stage = FAILURES[exchange.kind]
        reason: str = exchange.kind
        if exchange.kind == "server-cert-refused":
            reason = "server-certificate-refused"
        evidence = Evidence(sent=sent, detail=scrub(exchange.detail)[:300])
        return Result(outcome, stage, reason, evidence, elapsed_ms)
    status, headers, body = exchange.status, exchange.headers, exchange.body
    outcome, stage, reason = classify(status, headers, body, from_gateway=from_gateway)
    data = _json(body)
    detail = scrub(str(data.get("detail") or data.get("error") or "")[:300]) if data else ""
    evidence = Evidence(
        sent=sent,
        status=status,
        detail=detail,
        request_id=headers.get("X-Trustproof-Request-Id"),
        served_by=headers.get("X-Served-By"),
    )
    return Result(outcome, stage, reason, evidence, elapsed_ms)


def sent_text(request: HttpRequest, where: str, describe: str) -> str:
    return f"{request.method} {request.path} to {where or request.service} {describe}".strip()


async def attempt(
    view: SandboxView, presentation: Presentation, *, from_gateway: bool = False
) -> Result:
    """Send `presentation`; the classified result, with the gateway's audit event attached."""
    return await exchange(
        view, presentation.request(), presentation.describe(), from_gateway=from_gateway
    )


async def exchange(
    view: SandboxView,
    request: HttpRequest,
    describe: str,
    *,
    from_gateway: bool = False,
    channel: Channel | None = None,
) -> Result:
    """Send `request` (on `channel` if given); the classified result with its audit event."""
    start = time.perf_counter()
    answer = await (channel.send(request) if channel is not None else view.send(request))
    elapsed = (time.perf_counter() - start) * 1000
    sent = sent_text(request, answer.url, describe)
    result = result_of(answer, sent, elapsed, from_gateway=from_gateway)
    request_id = result.evidence.request_id
    if request_id:
        event = view.audit_event(request_id)
        if event is not None:
            result = replace(result, evidence=replace(result.evidence, audit=dict(event)))
    return result
