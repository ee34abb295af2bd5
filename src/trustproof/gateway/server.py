"""The gateway's sockets: a TLS listener on loopback in front of one service, forwarding allowed
requests over a keep-alive pool to the service's plain-HTTP port.

All decisions are the pipeline's (`pipeline.py`); this module measures the TLS handshake,
verifies the client's X.509-SVID, writes the audit event *before* forwarding (no audit, no
request), forwards, and answers refusals with a JSON body naming the reason and the request id.
A request the HTTP parser refuses, head or body, is refused the same way (stage http, reason
malformed-request), audited without any of its bytes, and counted in a bounded log summary
(`refusals.py`).

TLS: client certificates are requested (`CERT_OPTIONAL`), so that a caller without one gets an
HTTP 401 that says why (nginx answers "400 No required SSL certificate was sent" the same way)
instead of a silent reset. A certificate whose chain does not lead to the sandbox's CA still fails
the handshake inside OpenSSL; Python's asyncio then closes the connection without sending the TLS
alert (measured: clients see EOF, not `unknown_ca`). That is a known limitation of asyncio's TLS;
probes classify it as a transport refusal. Certificates that chain correctly but are not
acceptable SVIDs (revoked, other trust domain, two SPIFFE IDs, ...) are refused here with a reason.

Hot reload: `reload_svid()` swaps the server certificate for new handshakes and
`trust_bundle()` adds new roots; connections already open keep going. Assigning `upstream` swaps
the connection pool; requests in flight finish on the old one.

Connections: `h1server.py` is the HTTP/1.1 server side (asyncio Protocols and llhttp, not
aiohttp's server, which cost about a quarter of the gateway's CPU per request): request-head and
idle timeouts, a request cap per connection, the body limit and a neutral ``Server`` header;
`connections.py` holds each connection's TLS handshake time and verified peer; `accept.py`
accepts, with the TLS handshake timeout and the connection cap per listener (`ConnectionLimits`).

Forwarding uses `upstream.UpstreamPool` (a small HTTP/1.1 keep-alive client), not aiohttp's
client, which measured ~85 µs of latency and ~100 µs of CPU per request here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import socket
import time
from collections import OrderedDict
from datetime import UTC, datetime
from functools import partial
from urllib.parse import urlsplit

from cryptography import x509

from trustproof.audit import AuditCompletion, AuditEvent, AuditSink, AuditUnavailable, Timings
from trustproof.clock import Clock
from trustproof.gateway.accept import AcceptLoop
from trustproof.gateway.connections import (
    MAX_BODY,
    NO_CERTIFICATE,
    TimedServer,
    Verified,
)
from trustproof.gateway.h1messages import Connection
from trustproof.gateway.h1server import (
    Handler,
    Malformed,
    Reply,
    Request,
    Response,
)
from trustproof.gateway.headers import identity_claims
from trustproof.gateway.http1 import UpstreamError, end_to_end
from trustproof.gateway.limits import ConnectionLimits
from trustproof.gateway.pipeline import InboundRequest, Peer, Pipeline, Verdict
from trustproof.gateway.refusals import RefusalSummary, deny
from trustproof.gateway.upstream import Connector, UpstreamPool, UpstreamResponse
from trustproof.identity import CertificateAuthority, Svid, verify_svid, x5t_s256
from trustproof.scrub import install_scrubbing, scrubbed_traceback
from trustproof.tls import load_svid, server_context, trust

log = logging.getLogger("trustproof.gateway")
UPSTREAM_TIMEOUT = 30.0  # seconds for one forwarded request, connecting included
_NOT_RELAYED = frozenset({"content-length", "server"})
_MALFORMED = {
    413: f"the request body is larger than {MAX_BODY} bytes; nothing was forwarded",
    417: "the only expectation the gateway meets is Expect: 100-continue; nothing was forwarded",
}


class Gateway:
    """One service's policy enforcement point."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        upstream: str,
        sink: AuditSink,
        ca: CertificateAuthority,
        svid: Svid,
        clock: Clock,
        limits: ConnectionLimits | None = None,
        connector: Connector | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.connector = connector  # how upstream connections are made (None: from here)
        self.limits = limits or ConnectionLimits()
        self._pool: UpstreamPool | None = None
        self._retired: set[asyncio.Task[None]] = set()
        self.upstream = upstream
        self.sink = sink
        self.ca = ca
        self.clock = clock
        self.context = server_context(svid, ca.bundle_pem(), client_certs="optional")
        self._verified: OrderedDict[bytes, Verified] = OrderedDict()
        self._acceptor: AcceptLoop | None = None
        self._server: TimedServer | None = None
        self._malformed = RefusalSummary("gateway")
        self.url = ""

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def upstream(self) -> str:
        """The service's base URL, ``http://host:port``."""
        return self._upstream

    @upstream.setter
    def upstream(self, url: str) -> None:
        """Point the gateway at another service port. Once started (so from inside the event
        loop), this replaces the pool and closes the old one in the background."""
        self._address = _host_port(url)
        self._upstream = url.rstrip("/")
        old = self._pool
        if old is not None:
            self._pool = self._new_pool()
            task = asyncio.get_running_loop().create_task(old.close())
            self._retired.add(task)
            task.add_done_callback(self._retired.discard)

    def _new_pool(self) -> UpstreamPool:
        host, port = self._address
        return UpstreamPool(
            host, port, timeout=UPSTREAM_TIMEOUT, max_body=MAX_BODY, connector=self.connector
        )

    async def start(self, sock: socket.socket) -> None:
        """Serve on an already-bound loopback socket (closed again if serving fails)."""
        install_scrubbing()  # aiohttp's and asyncio's log records too, in whatever process hosts us
        self._malformed.what = f"gateway of {self.pipeline.config.service}"
        try:
            self._pool = self._new_pool()
            server = self._server = TimedServer(self._handle, limits=self.limits)
            server.on_malformed = self._refuse_malformed
            server.on_expect = self._decide  # Expect: 100-continue: decided on the head
            host, port = sock.getsockname()[:2]
            self._acceptor = AcceptLoop(
                sock,
                ssl_context=self.context,
                limits=self.limits,
                factory=server,
                held=lambda: len(server.connections),
                abandoned=server.abandoned,
                name=f"https://{host}:{port}",
            )
            self._acceptor.start()
        except BaseException:
            sock.close()
            await self.close()
            raise
        host, port = sock.getsockname()[:2]
        self.url = f"https://{host}:{port}"

    async def close(self) -> None:
        summary = self._malformed.flush(time.monotonic())
        if summary:
            log.warning("%s", summary)
        if self._acceptor is not None:
            acceptor, self._acceptor = self._acceptor, None
            await acceptor.stop()
        if self._server is not None:
            await self._server.shutdown()
        if self._pool is not None:
            await self._pool.close()
        if self._retired:
            await asyncio.gather(*self._retired)

    def reload_svid(self, svid: Svid) -> None:
        """Present `svid` on new handshakes (after rotation); open connections are untouched."""
        load_svid(self.context, svid)

    def trust_bundle(self, bundle_pem: bytes) -> None:
        """Add roots to the handshake's trust store (CA rotation). Removed roots are refused by
        the SVID check, which always uses the CA's current bundle."""
        trust(self.context, bundle_pem)

    # -- per request ----------------------------------------------------------------------------

    def _peer(self, connection: Connection) -> Peer:
        """The client certificate's verdict: verified once per connection (and per certificate
        across connections) until it expires; revocation is checked on every request."""
        now = self.clock.now()
        per_connection = self._server.peers if self._server is not None else {}
        known = per_connection.get(connection)
        if known is None or (known.refusal is None and known.not_after <= now):
            known = self._verify_connection(connection, now)
            per_connection[connection] = known
        if known.spiffe_id is None and known.refusal is None:
            return Peer()
        if known.refusal is None and self.ca.is_revoked(known.serial):  # never cached
            return Peer(refusal="revoked")
        return Peer(known.spiffe_id, known.x5t, known.refusal)

    def _verify_connection(self, connection: Connection, now: datetime) -> Verified:
        transport = connection.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport else None
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            return NO_CERTIFICATE
        key = hashlib.sha256(der).digest()
        known = self._verified.get(key)
        if known is None or known.not_after <= now:
            check = verify_svid(
                der,
                self.ca.intermediates,
                bundle=self.ca.bundle,
                trust_domain=self.pipeline.config.audience.split("/")[2],
                now=now,
                revoked=self.ca.is_revoked,
            )
            cert = x509.load_der_x509_certificate(der) if check.reason != "malformed" else None
            known = Verified(
                str(check.spiffe_id) if check.ok else None,
                x5t_s256(der),
                cert.serial_number if cert else 0,
                cert.not_valid_after_utc if cert and check.ok else now,
                None if check.ok else check.reason,
            )
            if check.ok:
                self._verified[key] = known
                while len(self._verified) > 4096:
                    self._verified.popitem(last=False)
        return known

    def _handle(self, request: Request, reply: Reply) -> Response | None:
        """The answer to `request` now (a refusal), or None when it is forwarded: `reply` gets
        the answer when the service's response is in."""
        decision = self._decide(request)
        return decision if isinstance(decision, Response) else decision(request, reply)

    def _decide(self, request: Request) -> Response | Handler:
        """The decision on `request`'s head, audited: a refusal, or what forwards the request
        once its body is in (at once, or after a 100 Continue: `h1server.ExpectHandler`)."""
        start = time.perf_counter_ns()
        request_id = secrets.token_hex(16)
        handshake_us = None
        if self._server is not None:
            handshake_us = self._server.handshake_us.pop(request.protocol, None)
        try:
            peer = self._peer(request.protocol)
            inbound = InboundRequest(
                request_id,
                request.method,
                request.raw_path,
                request.raw_headers,
                request.remote,
                peer,
                request.version,
            )
            verdict = self.pipeline.decide(inbound)
        except Exception as exc:  # fail closed
            log.error("gateway error, refusing:\n%s", scrubbed_traceback(exc))
            return deny(request_id, 500, "internal", "gateway-error", "internal error")
        timings = Timings(
            handshake_us=handshake_us,
            token_us=verdict.token_us,
            policy_us=verdict.policy_us,
            total_us=(time.perf_counter_ns() - start) / 1000,
        )
        try:
            self.sink.record(self._event(request_id, inbound, verdict, timings))
        except Exception as exc:  # no audit, no request
            if not isinstance(exc, AuditUnavailable):  # the sink says that once, not per request
                log.error(
                    "audit sink refused an event; refusing the request:\n%s",
                    scrubbed_traceback(exc),
                )
            return deny(
                request_id,
                503,
                "audit",
                "audit-unavailable",
                "the audit log cannot be written; nothing was forwarded",
            )
        if not verdict.allowed:
            return deny(
                request_id,
                verdict.status,
                verdict.stage,
                verdict.reason,
                verdict.detail,
                error=verdict.error,
            )
        return partial(self._forward, request_id=request_id, verdict=verdict, start=start)

    def _refuse_malformed(self, connection: Connection, malformed: Malformed) -> Response:
        """A request the HTTP parser refused: one audit event (stage http, reason
        malformed-request, no request bytes), a bounded summary in the log, and a JSON refusal."""
        request_id = secrets.token_hex(16)
        handshake_us = None
        peer = Peer()
        if self._server is not None:
            handshake_us = self._server.handshake_us.pop(connection, None)
        with contextlib.suppress(Exception):  # who sent it is worth recording, not required
            peer = self._peer(connection)
        status = malformed.status
        summary = self._malformed.note(malformed.name, time.monotonic())
        if summary:
            log.warning("%s", summary)
        event = AuditEvent(
            request_id=request_id,
            time=self.clock.now().astimezone(UTC).isoformat(),
            service=self.pipeline.config.service,
            method="-",  # nothing of the request is recorded: it may be anything
            path="-",
            route=None,
            peer_spiffe_id=peer.spiffe_id if peer.refusal is None else None,
            token_subject=None,
            principal=None,
            allowed=False,
            status=status,
            stage="http",
            reason="malformed-request",
            timings=Timings(handshake_us=handshake_us),
        )
        try:
            self.sink.record(event)
        except Exception as failure:  # refused either way; say the audit part failed
            if not isinstance(failure, AuditUnavailable):  # that one the sink said once already
                log.error("audit sink refused an event: %s", type(failure).__name__)
            return deny(
                request_id,
                503,
                "audit",
                "audit-unavailable",
                "the audit log cannot be written; nothing was forwarded",
            )
        return deny(
            request_id,
            status,
            "http",
            "malformed-request",
            _MALFORMED.get(status, "the request is not valid HTTP/1.1; nothing was forwarded"),
            error="invalid_request",
        )

    def _forward(
        self, request: Request, reply: Reply, *, request_id: str, verdict: Verdict, start: int
    ) -> Response | None:
        pool, target = self._pool, verdict.upstream_target
        if pool is None or not target:  # not started, or a bug: refuse
            return deny(request_id, 503, "upstream", "gateway-not-ready", "not serving yet")
        upstream_start = time.perf_counter_ns()

        def done(response: UpstreamResponse | None, error: UpstreamError | None) -> None:
            try:
                answer = self._forwarded(request_id, response, error, upstream_start, start)
            except Exception as exc:  # a bug: the caller still gets an answer
                log.error("gateway error after forwarding:\n%s", scrubbed_traceback(exc))
                answer = deny(request_id, 500, "internal", "gateway-error", "internal error")
            reply(answer)

        try:
            pool.submit(request.method, target, verdict.upstream_headers, request.body, done)
        except UpstreamError as exc:
            return self._forwarded(request_id, None, exc, upstream_start, start)
        return None

    def _forwarded(
        self,
        request_id: str,
        response: UpstreamResponse | None,
        error: UpstreamError | None,
        upstream_start: int,
        start: int,
    ) -> Response:
        if response is None:
            self._complete(request_id, 502, upstream_start, start, "upstream-unavailable")
            why = error.reason if error is not None else "no response"
            return deny(
                request_id,
                502,
                "upstream",
                "upstream-unavailable",
                f"the service did not answer: {why}",
                error="bad_gateway",
            )
        self._complete(request_id, response.status, upstream_start, start, "forwarded")
        headers = end_to_end(response.headers, _NOT_RELAYED)  # the Server header is ours
        dated = any(name.lower() == "date" for name, _ in headers)  # the service's Date stays
        headers.append(("X-Trustproof-Request-Id", request_id))
        return Response(response.status, headers, response.body, dated=dated)

    def _complete(
        self, request_id: str, status: int, upstream_start: int, start: int, reason: str
    ) -> None:
        now = time.perf_counter_ns()
        try:
            self.sink.complete(
                AuditCompletion(
                    request_id, status, (now - upstream_start) / 1000, (now - start) / 1000, reason
                )
            )
        except Exception as exc:
            if not isinstance(exc, AuditUnavailable):
                log.error("audit sink refused a completion:\n%s", scrubbed_traceback(exc))

    def _event(
        self, request_id: str, inbound: InboundRequest, verdict: Verdict, timings: Timings
    ) -> AuditEvent:
        return AuditEvent(
            request_id=request_id,
            time=self.clock.now().astimezone(UTC).isoformat(),
            service=self.pipeline.config.service,
            method=inbound.method,
            path=verdict.canonical.path
            if verdict.canonical
            else inbound.target.partition("?")[0][:512],  # never the query
            route=verdict.route,
            peer_spiffe_id=inbound.peer.spiffe_id,
            token_subject=verdict.token_subject,
            principal=verdict.principal.name if verdict.principal else None,
            allowed=verdict.allowed,
            status=verdict.status,
            stage=verdict.stage,
            reason=verdict.reason,
            policy_ids=verdict.policy_ids,
            timings=timings,
            stripped_headers=verdict.stripped
            if verdict.allowed
            else identity_claims(inbound.headers, self.pipeline.config.identity_headers),
        )


def _host_port(url: str) -> tuple[str, int]:
    """``http://host:port`` -> (host, port); anything else is a configuration error."""
    parts = urlsplit(url.rstrip("/"))
    try:
        port = parts.port or 80
    except ValueError as exc:
        raise ValueError(f"upstream {url!r}: bad port") from exc
    if parts.scheme != "http" or not parts.hostname or parts.path or parts.query:
        raise ValueError(f"upstream {url!r}: expected http://host:port (plain HTTP, no path)")
    return parts.hostname, port
