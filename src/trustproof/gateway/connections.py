"""The gateway's side of each connection, below `Gateway`: aiohttp's low-level server with the
listener's limits (`listener.py`) and the gateway's body limit, timing each TLS handshake
(accept to ``connection_made``) and holding each connection's verified peer, and the
per-connection protocol that turns a request aiohttp's HTTP parser refuses into an audited
denial (`Gateway._refuse_malformed`) instead of a traceback quoting the raw request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from trustproof.gateway.listener import ConnectionLimits, GuardedHandler, GuardedServer
from trustproof.tls import handshake_us

MAX_BODY = 8 * 1024 * 1024


class BoundedServer(GuardedServer):
    """aiohttp's low-level server with the gateway's body limit and connection limits
    (`listener.py`)."""

    def __init__(self, handler: Any, *, limits: ConnectionLimits | None = None) -> None:
        super().__init__(handler, limits=limits, max_body=MAX_BODY)


MalformedHandler = Callable[[web.BaseRequest, int, HttpProcessingError], web.StreamResponse]


class GatewayProtocol(GuardedHandler):
    """The listener's per-connection protocol (`listener.GuardedHandler`: timeouts and caps),
    except that a request its HTTP parser refused becomes an audited denial
    (`Gateway._refuse_malformed`) instead of a logged traceback quoting the raw request bytes,
    and an answer echoing them."""

    def data_received(self, data: bytes) -> None:
        """A body the parser refuses (say, a bad chunk size) after the head was handed over: aiohttp
        (3.14, C parser) queues the error as a *next* request and never tells the body's reader,
        so the request in progress would wait for its body until the client leaves. Hand the error
        to that reader instead (`Gateway._forward` answers 400 malformed-request)."""
        queued = len(self._messages)
        super().data_received(data)
        request = self._current_request
        if request is None or len(self._messages) != queued + 1 or request.content.is_eof():
            return
        error = getattr(self._messages[-1][0], "exc", None)
        if isinstance(error, HttpProcessingError):
            self._messages.pop()
            request.content.set_exception(error)
            self._lingering_time = 0.0  # no reading the rest after the answer: close instead

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        manager = self._manager
        refuse = manager.on_malformed if isinstance(manager, TimedServer) else None
        if not isinstance(exc, HttpProcessingError) or refuse is None:
            return super().handle_error(request, status, exc, message)
        if request.writer.output_size > 0:  # as aiohttp does: an answer is already under way
            raise ConnectionError("a response was sent already; closing the connection")
        response = refuse(request, status if 400 <= status < 500 else 400, exc)
        response.force_close()
        return response


class TimedServer(BoundedServer):
    """aiohttp's low-level server, noting each connection's TLS handshake time: the TLS layer's
    own (`tls.handshake_us`), else from accept (asyncio creates the protocol at accept, and calls
    connection_made after the handshake)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.accepted: dict[RequestHandler, int] = {}
        self.handshake_us: dict[RequestHandler, float] = {}
        self.peers: dict[RequestHandler, Verified] = {}
        self.on_malformed: MalformedHandler | None = None

    def __call__(self) -> RequestHandler:
        handler = GatewayProtocol(self, limits=self.limits, loop=self._loop, **self._kwargs)
        self.accepted[handler] = time.perf_counter_ns()
        return handler

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        start = self.accepted.pop(handler, None)
        # The TLS layer's own time (OpenSSL's handshake calls, `tls.TimedSSLObject`), not the
        # waits between them for a busy event loop; accept-to-ready only for a context not
        # made by `tls.server_context`.
        timed = handshake_us(transport.get_extra_info("ssl_object"))
        if timed is not None:
            self.handshake_us[handler] = timed
        elif start is not None:
            self.handshake_us[handler] = (time.perf_counter_ns() - start) / 1000

    def abandoned(self, handler: RequestHandler) -> None:
        self.accepted.pop(handler, None)

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        super().connection_lost(handler, exc)
        self.accepted.pop(handler, None)
        self.handshake_us.pop(handler, None)
        self.peers.pop(handler, None)


@dataclass(frozen=True)
class Verified:
    spiffe_id: str | None
    x5t: str
    serial: int
    not_after: datetime
    refusal: str | None


NO_CERTIFICATE = Verified(None, "", 0, datetime.max.replace(tzinfo=UTC), None)
