"""`attempt()`, which sends a `Presentation` through a `SandboxView` and returns the classified
`Result` — never raises for a refusal — and how a failed handshake or an HTTP answer becomes one.

HTTP answers are read by `trustproof.probes.answers` (the full table is there): allowed only on
positive evidence that the handler ran, a refusal only when it looks like one from any server,
``inconclusive`` otherwise. Transport failures:

==============================================  ============================================
what happened                                   outcome
==============================================  ============================================
handshake failure, reset, EOF before a response  ``denied_tls`` (the server refused the
                                                 client's certificate or transport)
connection refused, timeout                      ``unreachable``
our client refused the server's certificate      ``error`` (nothing learned)
a bug in our client                              ``error``
==============================================  ============================================

nginx (1.22, ``ssl_verify_client on``) completes the handshake whatever certificate it gets and
refuses afterwards, with its own status codes sent as 400 pages: 496 no certificate, 495 a
certificate that failed verification (untrusted CA, self-signed, expired, not yet valid, revoked
on ``ssl_crl``, no clientAuth usage), 497 plain HTTP on the TLS port. Only a TLS version outside
``ssl_protocols`` fails the handshake itself (alert ``protocol_version``).

Whether the refusing *stage* is part of the verdict is decided here too
(`Result.stage_is_verdict`): behind a trustproof gateway, or where a ``gateway: none`` service
declares ``refuses``; elsewhere the stage is evidence only (`trustproof.probes.model.judge`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace

from trustproof.probes.answers import (
    MARKER,
    REQUEST_ID,
    Classified,
    Context,
    body_json,
    header,
    read_answer,
)
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


def classify(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    from_gateway: bool = False,
    context: Context | None = None,
) -> Classified:
    """(outcome, stage, reason) for an HTTP answer (`trustproof.probes.answers`).

    With `from_gateway` (a trustproof gateway stands in front), only the gateway's own refusal
    (``X-Trustproof-Decision: deny``) counts as a refusal: anything else was forwarded, whatever
    its status and body say — reading a forwarded 403 as a refusal would hide an over-permission.
    `context` says more (whose marker counts, the service's declared ``expect``/``refuses``).
    """
    ctx = context or Context(from_gateway=from_gateway)
    if from_gateway and not ctx.from_gateway:
        ctx = replace(ctx, from_gateway=True)
    return read_answer(status, headers, body, ctx)


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


def result_of(
    exchange: Exchange,
    sent: str,
    elapsed_ms: float,
    *,
    from_gateway: bool,
    context: Context | None = None,
) -> Result:
    """The classified `Result` of one exchange (see the tables above)."""
    ctx = context or Context(from_gateway=from_gateway)
    if from_gateway and not ctx.from_gateway:
        ctx = replace(ctx, from_gateway=True)
    if isinstance(exchange, TransportFailure):
        outcome, stage = FAILURES[exchange.kind]
        reason: str = exchange.kind
        if exchange.kind == "server-cert-refused":
            reason = "server-certificate-refused"
        evidence = Evidence(sent=sent, detail=scrub(exchange.detail)[:300])
        return Result(outcome, stage, reason, evidence, elapsed_ms, ctx.stage_is_verdict)
    status, headers, body = exchange.status, exchange.headers, exchange.body
    outcome, stage, reason = read_answer(status, headers, body, ctx)
    data = body_json(body)
    detail = str(data.get("detail") or data.get("error") or "") if data else ""
    if not detail and outcome == "inconclusive":  # the answer itself is the evidence
        detail = " ".join(body[:300].decode("utf-8", "replace").split())
    evidence = Evidence(
        sent=sent,
        status=status,
        detail=scrub(detail[:300]),
        request_id=header(headers, REQUEST_ID),
        served_by=header(headers, MARKER),
    )
    return Result(outcome, stage, scrub(reason), evidence, elapsed_ms, ctx.stage_is_verdict)


def sent_text(request: HttpRequest, where: str, describe: str) -> str:
    return f"{request.method} {request.path} to {where or request.service} {describe}".strip()


async def attempt(
    view: SandboxView,
    presentation: Presentation,
    *,
    from_gateway: bool = False,
    context: Context | None = None,
) -> Result:
    """Send `presentation`; the classified result, with the gateway's audit event attached."""
    return await exchange(
        view,
        presentation.request(),
        presentation.describe(),
        from_gateway=from_gateway,
        context=context,
    )


async def exchange(
    view: SandboxView,
    request: HttpRequest,
    describe: str,
    *,
    from_gateway: bool = False,
    channel: Channel | None = None,
    context: Context | None = None,
) -> Result:
    """Send `request` (on `channel` if given); the classified result with its audit event."""
    start = time.perf_counter()
    answer = await (channel.send(request) if channel is not None else view.send(request))
    elapsed = (time.perf_counter() - start) * 1000
    sent = sent_text(request, answer.url, describe)
    result = result_of(answer, sent, elapsed, from_gateway=from_gateway, context=context)
    request_id = result.evidence.request_id
    if request_id:
        event = view.audit_event(request_id)
        if event is not None:
            result = replace(result, evidence=replace(result.evidence, audit=dict(event)))
    return result
