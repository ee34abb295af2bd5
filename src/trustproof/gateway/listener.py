"""The gateway's and egress proxy's listeners, with the limits that keep slow or numerous
clients from holding a listener open (`ConnectionLimits`).

aiohttp alone bounds none of this usefully: its keep-alive timer defaults to about an hour, it
has no header-read deadline, and asyncio's TLS handshake timeout is a minute. Here:

* **TLS handshake timeout** — asyncio's ``ssl_handshake_timeout``: a client that sends ten bytes
  of a ClientHello and waits is cut off.
* **Header-read timeout** — the *whole* head (request line and headers) of a request must
  arrive within `header_timeout` of its first byte (for the first request: of the connection
  being ready). A deadline per head, not per line, so a slowloris client sending one header line
  every few seconds is closed all the same.
* **Idle keep-alive timeout** — a connection with no request in progress is closed after
  `idle_timeout` (aiohttp's keep-alive timer, set from here).
* **Requests per connection** — the response to the `max_requests`-th request carries
  ``Connection: close`` and the connection ends after it.
* **Connections per listener** — at most `max_connections` at once, TLS handshakes in progress
  included; a connection over the cap is closed as soon as it is accepted, before any TLS.

So `GuardedSite` runs its own accept loop (`accept.AcceptLoop`) instead of aiohttp's `SockSite`:
asyncio's server cannot refuse a connection before its handshake. Every response also gets a
neutral ``Server`` header in place of aiohttp's ``Python/x.y aiohttp/x.y.z`` banner (and of the
service's own). `ConnectionLimits` lives in `limits.py`: the gateway's own server side
(`h1server.py`) applies the same limits.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from trustproof.gateway.accept import AcceptLoop
from trustproof.gateway.limits import ConnectionLimits

__all__ = [
    "SERVER_NAME",
    "BoundedServer",
    "ConnectionLimits",
    "GuardedHandler",
    "GuardedServer",
    "GuardedSite",
    "neutral_server_header",
]

log = logging.getLogger("trustproof.gateway")
SERVER_NAME = "trustproof"
_MAX_DEFAULT_BODY = 8 * 1024 * 1024


class GuardedHandler(RequestHandler):
    """aiohttp's connection protocol with a deadline on each request head, a request cap and a
    neutral ``Server`` header."""

    def __init__(self, manager: GuardedServer, *, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(manager, keepalive_timeout=limits.idle_timeout, **kwargs)
        self._limits = limits
        self._head_timer: asyncio.TimerHandle | None = None
        self._last_payload: Any = None  # the body of the last parsed request
        self._responses = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm_head_timer()  # the first head is due from now

    def data_received(self, data: bytes) -> None:
        last = self._last_payload
        if data and self._head_timer is None and (last is None or last.is_eof()):
            self._arm_head_timer()  # the first byte of the next request's head
        count = self._request_count
        super().data_received(data)
        if self._request_count != count:  # a whole head was parsed
            self._cancel_head_timer()
            if self._messages:
                self._last_payload = self._messages[-1][1]

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        self._responses += 1
        if not resp.prepared:
            resp.headers["Server"] = SERVER_NAME
            if self._responses >= self._limits.max_requests:
                resp.force_close()  # Connection: close, then the connection ends
        return await super().finish_response(request, resp, start_time)

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self._loop.call_later(self._limits.header_timeout, self._head_late)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        log.debug("closing a connection: no complete request head within the header timeout")
        self.force_close()


async def neutral_server_header(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """An `Application.on_response_prepare` hook for aiohttp applications (the token service):
    ``Server: trustproof`` instead of the version banner."""
    response.headers["Server"] = SERVER_NAME


class GuardedServer(web.Server):
    """aiohttp's low-level server making `GuardedHandler` connections, with a request-body
    limit (aiohttp's default is 1 MiB)."""

    def __init__(
        self,
        handler: Any,
        *,
        limits: ConnectionLimits | None = None,
        max_body: int = _MAX_DEFAULT_BODY,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self.limits = limits or ConnectionLimits()
        self.max_body = max_body

    def __call__(self) -> RequestHandler:
        return GuardedHandler(self, limits=self.limits, loop=self._loop, **self._kwargs)

    def _make_request(
        self, message: Any, payload: Any, protocol: Any, writer: Any, task: Any
    ) -> web.BaseRequest:
        return web.BaseRequest(
            message, payload, protocol, writer, task, self._loop, client_max_size=self.max_body
        )

    def abandoned(self, handler: RequestHandler) -> None:
        """`handler` never got its connection (the TLS handshake failed or timed out)."""


class BoundedServer(GuardedServer):
    """`GuardedServer` with the gateway's body limit (8 MiB): the egress proxy's and the mocks'."""

    def __init__(self, handler: Any, *, limits: ConnectionLimits | None = None) -> None:
        super().__init__(handler, limits=limits, max_body=_MAX_DEFAULT_BODY)


class GuardedSite(web.BaseSite):
    """A listener on an already-bound socket, accepting at most `max_connections` at once and
    bounding each TLS handshake (`accept.AcceptLoop`); the runner's server must be a
    `GuardedServer`."""

    def __init__(
        self, runner: web.BaseRunner, sock: socket.socket, *, ssl_context: ssl.SSLContext | None
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        server = runner.server
        if not isinstance(server, GuardedServer):
            raise TypeError("GuardedSite needs a runner whose server is a GuardedServer")
        self._guarded = server
        host, port = sock.getsockname()[:2]
        self._name = f"{'https' if ssl_context else 'http'}://{host}:{port}"
        self._loop_ = AcceptLoop(
            sock,
            ssl_context=ssl_context,
            limits=server.limits,
            factory=server,
            held=lambda: len(server.connections),
            abandoned=server.abandoned,
            name=self._name,
            backlog=self._backlog,
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def refused(self) -> int:
        """Connections closed at accept because the listener was full."""
        return self._loop_.refused

    @property
    def active(self) -> int:
        """Connections held now: TLS handshakes in progress and established connections."""
        return self._loop_.active

    async def start(self) -> None:
        await super().start()
        self._loop_.start()

    async def stop(self) -> None:
        self._runner._check_site(self)
        await self._loop_.stop()
        self._runner._unreg_site(self)
