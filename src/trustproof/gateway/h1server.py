"""The gateway's HTTP/1.1 server side: one `asyncio.Protocol` per connection, request heads and
bodies parsed by llhttp (`httptools`, the parser family of aiohttp's C parser), one request
answered at a time, in order.

Why not aiohttp's server: behind the gateway its request and response objects, its task per
request and its writer cost about a quarter of the gateway's CPU per request; this side does only
what the gateway needs. The bytes go straight from `data_received` into the parser, a complete
request (head and body, at most `MAX_BODY`) goes to the gateway's handler, and the handler's
`Response` is written as one buffer.

What it enforces, as the aiohttp listeners do (`listener.py`), with `ConnectionLimits`:

* the whole head of each request within `header_timeout` of its first byte (of the connection
  being ready, for the first request), so a slowloris head is closed;
* an idle keep-alive connection closed after `idle_timeout`;
* the `max_requests`-th response carries ``Connection: close`` and ends the connection;
* a neutral ``Server`` header on every response (and aiohttp's head limits: a request line or a
  header field of at most `MAX_FIELD` bytes, and the head at most `MAX_HEAD`).

Bytes llhttp refuses — a bare LF, obs-fold, ``Content-Length`` with ``Transfer-Encoding``, two
lengths, a bad chunk, a transfer coding other than chunked last, a head or body over its limit —
never reach the handler: the connection's manager answers them (`MalformedHandler`: the gateway
audits a refusal without any of the request's bytes), after the responses to the requests before
them, and the connection closes. An ``Upgrade`` or ``CONNECT`` request is answered like any other
request and then the connection closes: nothing after it is read. Trailer fields are dropped.
Requests pipelined behind the one being answered are parsed ahead, at most `MAX_QUEUED` of them
(reading pauses beyond that), and a client that does not read its answers pauses the serving.

``Expect: 100-continue`` (RFC 9110 §10.1.1), on an HTTP/1.1 request whose body has not all
arrived with its head: once the requests before it are answered, the connection's manager decides
on the head alone (`ExpectHandler`). A refusal is written at once, without waiting for the body,
with ``Connection: close``, and the connection closes (nothing after the head is read); an allowed
request gets ``HTTP/1.1 100 Continue`` before its body is read, and when the body is in, it goes
to the continuation the decision returned (not decided twice). A client that sent its body without
waiting is simply served. Any other expectation is answered 417 as a malformed request, and an
HTTP/1.0 request's ``Expect`` is ignored (§10.1.1: an HTTP/1.0 client cannot expect a 100).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, cast

import httptools

from trustproof.gateway.h1messages import (
    ExpectHandler,
    Handler,
    Malformed,
    MalformedHandler,
    Reply,
    Request,
    RequestTooLarge,
    Response,
)
from trustproof.gateway.limits import ConnectionLimits
from trustproof.scrub import scrubbed_traceback

__all__ = [  # the values live in h1messages; imported from here too
    "MAX_BODY",
    "ExpectHandler",
    "GatewayConnection",
    "Handler",
    "Malformed",
    "MalformedHandler",
    "Reply",
    "Request",
    "RequestTooLarge",
    "Response",
]

log = logging.getLogger("trustproof.gateway")

SERVER_NAME = "trustproof"
MAX_BODY = 8 * 1024 * 1024
MAX_FIELD = 8190  # a request-target, or a header field (name and value): aiohttp's limit
MAX_HEAD = 64 * 1024
MAX_QUEUED = 8
_NO_BODY = frozenset({204, 304})
_REASONS = {status.value: status.phrase for status in HTTPStatus}


class GatewayConnection(asyncio.Protocol):
    """One client connection (module docstring). `manager` is the server holding it
    (`connections.TimedServer`): told when it is ready and when it ends."""

    def __init__(
        self,
        manager: Any,
        handler: Handler,
        on_malformed: MalformedHandler,
        on_expect: ExpectHandler | None = None,
    ) -> None:
        self._manager = manager
        self._limits: ConnectionLimits = manager.limits
        self._handler = handler
        self._on_malformed = on_malformed
        self._on_expect = on_expect  # None: every expectation is met (100, then the handler)
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.remote = ""
        self._tls = False
        self._parser = httptools.HttpRequestParser(self)
        self._queue: deque[Request | Malformed] = deque()
        self._pending: Request | None = None  # the request whose answer is awaited
        self._head_timer: asyncio.TimerHandle | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._writable = True  # the transport takes more (pause_writing / resume_writing)
        self._reading = True
        self._stopped = False  # nothing more is parsed (malformed, upgrade, closing)
        self._closed = False
        self._responses = 0
        # the message being parsed
        self._in_message = False
        self._head_done = False
        self._url: list[bytes] = []
        self._headers: list[tuple[str, str]] = []
        self._head_size = 0
        self._body: list[bytes] = []
        self._body_size = 0
        self._version = (1, 1)
        self._keep_alive = True
        self._head: Request | None = None  # the request whose body is being read
        self._expect: list[bytes] = []  # the members of its Expect fields, lower case

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        peer = transport.get_extra_info("peername")
        self.remote = str(peer[0]) if peer else ""
        self._tls = transport.get_extra_info("ssl_object") is not None
        self._manager.connection_made(self, transport)
        self._arm_head_timer()  # the first head is due from now

    def data_received(self, data: bytes) -> None:
        if self._stopped:
            return
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if not self._in_message and self._head_timer is None:
            self._arm_head_timer()  # the first byte of the next request's head
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # the request before it is queued; nothing after it
            self._stop()
        except httptools.HttpParserError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, RequestTooLarge):
                self._refuse(cause.status, cause.name)
            else:
                self._refuse(400, type(exc).__name__)
        except RequestTooLarge as exc:
            self._refuse(exc.status, exc.name)
        self._serve_next()

    def eof_received(self) -> bool | None:
        self._stop()
        if self._tls or (self._pending is None and not self._queue):
            return None  # let the transport close (TLS cannot stay half-open in asyncio)
        return True  # answer what was asked, then close

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = self._stopped = True
        self._cancel_timers()
        self._queue.clear()
        self._manager.connection_lost(self, exc)

    def pause_writing(self) -> None:
        self._writable = False

    def resume_writing(self) -> None:
        self._writable = True
        self._serve_next()

    # -- llhttp callbacks ------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_message, self._head_done = True, False
        self._url, self._headers, self._body, self._expect = [], [], [], []
        self._head_size = self._body_size = 0

    def on_url(self, url: bytes) -> None:
        self._url.append(url)
        self._head_size += len(url)
        if self._head_size > MAX_FIELD:
            raise RequestTooLarge(400, "LineTooLong")

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._head_done:  # a trailer field: dropped
            return
        size = len(name) + len(value)
        self._head_size += size
        if size > MAX_FIELD or self._head_size > MAX_HEAD:
            raise RequestTooLarge(400, "LineTooLong")
        self._headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
        if len(name) == 6 and name.lower() == b"expect":  # the length first: once per field
            self._expect += [member.strip(b" \t").lower() for member in value.split(b",")]

    def on_headers_complete(self) -> None:
        self._head_done = True
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        parser = self._parser
        major, _, minor = parser.get_http_version().partition(".")
        self._version = (int(major or 0), int(minor or 0))
        self._keep_alive = parser.should_keep_alive()
        expects = bool(self._expect) and self._version >= (1, 1)  # HTTP/1.0's is ignored
        if expects and any(member != b"100-continue" for member in self._expect):
            raise RequestTooLarge(417, "ExpectationFailed")
        self._head = Request(
            parser.get_method().decode("ascii"),
            b"".join(self._url).decode("latin-1"),
            self._headers,
            self._version,
            b"",
            self._keep_alive,
            self,
            expects,
        )

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > MAX_BODY:
            raise RequestTooLarge(413, "BodyTooLarge")
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._in_message = False
        request, self._head = self._head, None
        if request is None:  # no head: cannot happen with llhttp
            raise RequestTooLarge(400, "NoHead")
        request.body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._queue.append(request)
        self._url, self._headers, self._body = [], [], []
        if len(self._queue) >= MAX_QUEUED and self._reading and self.transport is not None:
            self._reading = False
            self.transport.pause_reading()

    # -- serving ---------------------------------------------------------------------------------

    def _refuse(self, status: int, name: str) -> None:
        self._queue.append(Malformed(status, name, self._head_done))
        self._stop()

    def _stop(self) -> None:
        """Parse nothing more on this connection."""
        self._stopped = True
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _serve_next(self) -> None:
        """Answer the queued requests in order, one at a time; stops at a request whose answer
        comes later (`_reply` resumes) and while the client is not reading its answers."""
        while self._queue and self._pending is None and self._writable and not self._closed:
            item = self._queue.popleft()
            if not self._reading and len(self._queue) < MAX_QUEUED and not self._stopped:
                self._reading = True
                if self.transport is not None:
                    self.transport.resume_reading()
            if isinstance(item, Malformed):
                refusal = self._on_malformed(self, item)
                self._write(refusal, (1, 1) if item.head_complete else (1, 0), "", True)
                break
            self._pending = item
            try:
                response = (item.then or self._handler)(item, self._reply)
            except Exception as exc:  # a bug in the handler: no answer can be trusted, close
                log.error(
                    "the gateway's request handler failed; closing the connection:\n%s",
                    scrubbed_traceback(exc),
                )
                self._pending = None
                self.close()
                return
            if response is None:
                return  # `_reply` goes on
            self._pending = None
            if self._answer(item, response):
                break
        if self._pending is None:
            self._expectation()
            self._after_serving()

    def _expectation(self) -> None:
        """Decide on the head of a request that expects 100-continue, once every request before
        it is answered and while none of its body has arrived (module docstring)."""
        head = self._head
        if (
            head is None
            or not head.expects_continue
            or head.then is not None
            or self._queue
            or self._stopped
            or self._body_size
            or not self._writable
            or self.transport is None
        ):
            return
        if self._on_expect is None:
            decision: Response | Handler = self._handler
        else:
            try:
                decision = self._on_expect(head)
            except Exception as exc:  # a bug in the manager: no answer can be trusted, close
                log.error(
                    "the gateway's expectation handler failed; closing the connection:\n%s",
                    scrubbed_traceback(exc),
                )
                self.close()
                return
        if isinstance(decision, Response):  # refused on its head: the body is never read
            self._head = None
            self._responses += 1
            self._write(decision, head.version, head.method, True)
            return
        head.then = decision
        self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _reply(self, response: Response) -> None:
        request, self._pending = self._pending, None
        if request is None or self._closed:  # the connection ended meanwhile
            return
        if self._answer(request, response):
            self._after_serving()
        else:
            self._serve_next()

    def _answer(self, request: Request, response: Response) -> bool:
        """Write the answer to `request`; True when the connection ends after it."""
        self._responses += 1
        close = (
            response.close
            or not request.keep_alive
            or self._responses >= self._limits.max_requests
            or (self._stopped and not self._queue)
        )
        self._write(response, request.version, request.method, close)
        return close

    def _after_serving(self) -> None:
        if self._closed or self.transport is None:
            return
        if self._stopped and not self._queue:  # answered what was asked: close
            self.transport.close()
        elif not self._queue and not self._in_message:  # idle from now
            if self._idle_timer is not None:
                self._idle_timer.cancel()
            self._idle_timer = self._loop.call_later(self._limits.idle_timeout, self._idle_late)

    def _write(
        self, response: Response, version: tuple[int, int], method: str, close: bool
    ) -> None:
        transport = self.transport
        if transport is None or self._closed:
            return
        if close:
            self._stopped = True
            self._queue.clear()
        status = response.status
        http = "HTTP/1.0" if version == (1, 0) else "HTTP/1.1"
        lines = [f"{http} {status} {_REASONS.get(status, 'Unknown')}\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in response.headers]
        body = response.body
        if status not in _NO_BODY and not 100 <= status < 200:
            lines.append(f"Content-Length: {len(body)}\r\n")
        if method == "HEAD" or status in _NO_BODY:
            body = b""
        if not response.dated:
            lines.append(f"Date: {_date()}\r\n")
        lines.append(f"Server: {SERVER_NAME}\r\n")
        if close:
            lines.append("Connection: close\r\n")
        elif version == (1, 0):
            lines.append("Connection: keep-alive\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1")
        transport.write(head + body if len(body) <= 65536 else head)
        if len(body) > 65536:
            transport.write(body)

    # -- timers ----------------------------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self._loop.call_later(self._limits.header_timeout, self._head_late)

    def _head_late(self) -> None:
        self._head_timer = None
        log.debug("closing a connection: no complete request head within the header timeout")
        self.close()

    def _idle_late(self) -> None:
        self._idle_timer = None
        if self._pending is None and not self._in_message:
            self.close()

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._idle_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._idle_timer = None

    def close(self) -> None:
        """End the connection now (a request in progress gets no answer)."""
        self._stopped = True
        self._cancel_timers()
        if self.transport is not None:
            self.transport.close()

    def finish(self) -> None:
        """Answer the request in progress, then close; read nothing more."""
        self._stop()
        self._queue.clear()

    @property
    def busy(self) -> bool:
        return self._pending is not None


_date_cache: dict[int, str] = {}


def _date() -> str:
    """The ``Date`` header (RFC 9110 §6.6.1), formatted once per second."""
    now = int(time.time())
    text = _date_cache.get(now)
    if text is None:
        _date_cache.clear()
        text = _date_cache[now] = formatdate(now, usegmt=True)
    return text
