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

So `GuardedSite` runs its own accept loop (``connect_accepted_socket`` per connection, which
asyncio and uvloop both offer) instead of aiohttp's `SockSite`: asyncio's server cannot refuse a
connection before its handshake. Every response also gets a neutral ``Server`` header in place
of aiohttp's ``Python/x.y aiohttp/x.y.z`` banner (and of the service's own).
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import ssl
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("trustproof.gateway")
SERVER_NAME = "trustproof"
_MAX_DEFAULT_BODY = 8 * 1024 * 1024


@dataclass(frozen=True)
class ConnectionLimits:
    """How long and how much one listener gives its clients; seconds and counts, all positive.

    The defaults suit a sandbox on one machine (and are documented in the README)."""

    handshake_timeout: float = 10.0
    header_timeout: float = 10.0
    idle_timeout: float = 60.0
    max_requests: int = 1000
    max_connections: int = 512

    def __post_init__(self) -> None:
        for name in ("handshake_timeout", "header_timeout", "idle_timeout"):
            value = getattr(self, name)
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not 0 < value < math.inf
            ):
                raise ValueError(
                    f"ConnectionLimits.{name} must be a positive, finite number of seconds"
                )
        for name in ("max_requests", "max_connections"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ConnectionLimits.{name} must be a whole number >= 1")


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


class GuardedSite(web.BaseSite):
    """A listener on an already-bound socket, accepting at most `max_connections` at once and
    bounding each TLS handshake; the runner's server must be a `GuardedServer`."""

    def __init__(
        self, runner: web.BaseRunner, sock: socket.socket, *, ssl_context: ssl.SSLContext | None
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        server = runner.server
        if not isinstance(server, GuardedServer):
            raise TypeError("GuardedSite needs a runner whose server is a GuardedServer")
        self._guarded = server
        self._sock = sock
        host, port = sock.getsockname()[:2]
        self._name = f"{'https' if ssl_context else 'http'}://{host}:{port}"
        self._accepting: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self.refused = 0  # connections closed at accept because the listener was full
        self._full = False

    @property
    def name(self) -> str:
        return self._name

    @property
    def active(self) -> int:
        """Connections held now: TLS handshakes in progress and established connections."""
        return len(self._pending) + len(self._guarded.connections)

    async def start(self) -> None:
        await super().start()
        self._sock.setblocking(False)
        self._accepting = asyncio.get_running_loop().create_task(self._accept())

    async def stop(self) -> None:
        self._runner._check_site(self)
        tasks = [*self._pending, *([self._accepting] if self._accepting else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._sock.close()
        self._runner._unreg_site(self)

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(self._sock)
            except OSError as exc:  # e.g. EMFILE: wait instead of spinning
                log.warning("accept failed on %s: %s", self._name, exc.strerror or exc)
                await asyncio.sleep(0.1)
                continue
            self._admit(loop, conn)
            for _ in range(self._backlog):  # whatever else is queued, without a loop turn each
                try:
                    conn, _ = self._sock.accept()
                except OSError:  # BlockingIOError: the queue is empty
                    break
                self._admit(loop, conn)

    def _admit(self, loop: asyncio.AbstractEventLoop, conn: socket.socket) -> None:
        """Serve `conn`, or close it at once when the listener holds its cap."""
        limits = self._guarded.limits
        if self.active >= limits.max_connections:
            self.refused += 1
            if not self._full:  # once per episode, not once per connection
                log.warning(
                    "%s holds %d connections (its cap): closing new ones until one ends",
                    self._name,
                    limits.max_connections,
                )
            self._full = True
            conn.close()
            return
        self._full = False
        conn.setblocking(False)
        task = loop.create_task(self._serve(conn))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _serve(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        made: list[RequestHandler] = []

        def factory() -> RequestHandler:
            made.append(self._guarded())
            return made[-1]

        tls: dict[str, Any] = {}
        if self._ssl_context is not None:
            tls = {
                "ssl": self._ssl_context,
                "ssl_handshake_timeout": self._guarded.limits.handshake_timeout,
            }
        try:
            await loop.connect_accepted_socket(factory, conn, **tls)
        except (OSError, EOFError) as exc:  # ssl.SSLError and the handshake timeout are OSErrors
            log.debug("connection closed before it was ready: %s", type(exc).__name__)
            conn.close()
            for handler in made:
                self._guarded.abandoned(handler)
        except asyncio.CancelledError:
            conn.close()
            for handler in made:
                self._guarded.abandoned(handler)
            raise
        except Exception:  # a bug: refuse this connection, keep listening
            log.exception("could not set up a connection on %s; closed it", self._name)
            conn.close()
            for handler in made:
                self._guarded.abandoned(handler)
