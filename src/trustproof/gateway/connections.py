"""The gateway's side of each connection, below `Gateway`: the connections of its HTTP/1.1 server
side (`h1server.GatewayConnection`) with the listener's limits, timing each TLS handshake and
holding each connection's verified peer until it ends.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from trustproof.gateway.h1messages import Connection, MalformedHandler
from trustproof.gateway.h1server import (
    MAX_BODY,
    ExpectHandler,
    GatewayConnection,
    Handler,
    Malformed,
    Request,
    Response,
)
from trustproof.gateway.limits import ConnectionLimits
from trustproof.tls import handshake_us

__all__ = ["MAX_BODY", "NO_CERTIFICATE", "TimedServer", "Verified"]


def _no_malformed_handler(connection: Connection, malformed: Malformed) -> Response:
    return Response(malformed.status, [], close=True)


class TimedServer:
    """Makes the gateway's connections (`h1server.GatewayConnection`) and keeps what is known of
    each while it lasts: its TLS handshake time — the TLS layer's own (`tls.handshake_us`), else
    from accept (asyncio creates the protocol at accept, and calls connection_made after the
    handshake) — and its verified peer."""

    def __init__(self, handler: Handler, *, limits: ConnectionLimits | None = None) -> None:
        self.handler = handler
        self.limits = limits or ConnectionLimits()
        self.connections: set[GatewayConnection] = set()
        self.accepted: dict[Connection, int] = {}
        self.handshake_us: dict[Connection, float] = {}
        self.peers: dict[Connection, Verified] = {}
        self.on_malformed: MalformedHandler = _no_malformed_handler
        self.on_expect: ExpectHandler | None = None  # None: every 100-continue is met
        self._lost: asyncio.Event | None = None

    def __call__(self) -> GatewayConnection:
        handler = GatewayConnection(self, self.handler, self._malformed, self._expect)
        self.accepted[handler] = time.perf_counter_ns()
        return handler

    def _malformed(self, connection: Connection, malformed: Malformed) -> Response:
        return self.on_malformed(connection, malformed)

    def _expect(self, head: Request) -> Response | Handler:
        return self.handler if self.on_expect is None else self.on_expect(head)

    def connection_made(self, handler: GatewayConnection, transport: asyncio.BaseTransport) -> None:
        self.connections.add(handler)
        start = self.accepted.pop(handler, None)
        # The TLS layer's own time (OpenSSL's handshake calls, `tls.TimedSSLObject`), not the
        # waits between them for a busy event loop; accept-to-ready only for a context not
        # made by `tls.server_context`.
        timed = handshake_us(transport.get_extra_info("ssl_object"))
        if timed is not None:
            self.handshake_us[handler] = timed
        elif start is not None:
            self.handshake_us[handler] = (time.perf_counter_ns() - start) / 1000

    def abandoned(self, handler: Any) -> None:
        """`handler` never got its connection (the TLS handshake failed or timed out)."""
        self.accepted.pop(handler, None)

    def connection_lost(self, handler: GatewayConnection, exc: BaseException | None = None) -> None:
        self.connections.discard(handler)
        self.accepted.pop(handler, None)
        self.handshake_us.pop(handler, None)
        self.peers.pop(handler, None)
        if self._lost is not None and not self.connections:
            self._lost.set()

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Close idle connections now and the busy ones once their answer is written (at most
        `timeout` seconds, then they are closed too)."""
        for connection in list(self.connections):
            if connection.busy:
                connection.finish()
            else:
                connection.close()
        if self.connections:
            self._lost = asyncio.Event()
            try:
                await asyncio.wait_for(self._lost.wait(), timeout)
            except TimeoutError:
                for connection in list(self.connections):
                    connection.close()


@dataclass(frozen=True)
class Verified:
    spiffe_id: str | None
    x5t: str
    serial: int
    not_after: datetime
    refusal: str | None


NO_CERTIFICATE = Verified(None, "", 0, datetime.max.replace(tzinfo=UTC), None)
