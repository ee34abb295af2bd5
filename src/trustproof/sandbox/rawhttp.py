"""A raw HTTP/1.1 client for requests that must leave exactly as written (path and request tricks).

aiohttp (through yarl) normalises a URL before sending it: ``/./x``, ``/a/../x`` and ``/%2e/x``
leave as ``/x`` and ``/%61dmin`` as ``/admin``, so a trick would never reach the server as
written. Here the request line and the header lines are written byte for byte as given (only
``Host``, ``Connection: close`` and ``Content-Length`` are added, in that order), over TLS or
plain TCP, and the answer is read by a real parser (`http.client.HTTPResponse`, which frames it by
``Content-Length``, chunked encoding or the close of the connection).

`send_raw`: one connection per request, closed after it, on the event loop (asyncio streams):
the answer is read until its own framing says it is complete (or the connection closes), the
whole exchange bounded by a timeout. Failures come back as `TransportFailure` kinds classified
like the aiohttp path of `trustproof.sandbox.view` (a handshake refusal, a reset, an EOF before
any answer, a refused connection, a timeout).

`RawPool`: the same exchange on kept-alive connections (one pool per address and TLS context,
that is per presented identity), for requests that do not touch the connection itself: no body,
no framing or connection header (`reusable_request`). Such a request is written without
``Connection: close``; its connection goes back to the pool only when the answer was framed by
``Content-Length`` (or has no body), said nothing of closing and nothing followed it
(`_reusable_answer`) — anything else is closed, so a request can never see bytes that belong to
another. A kept-alive connection that fails before any answer (the server closed it meanwhile)
says nothing of the request: it is sent once more on a new connection.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO, NamedTuple, cast

from multidict import CIMultiDict

from trustproof.scrub import scrub
from trustproof.view import Exchange, FailureKind, HostVariant, HttpAnswer, TransportFailure

MAX_BODY = 1 << 20  # bytes of an answer's body kept (the rest is not read)
OTHER_HOST = "trustproof-other-host.invalid"  # RFC 2606: never resolves, never anyone's name
_FORBIDDEN = frozenset("\r\n\x00")


@dataclass(frozen=True)
class RawTarget:
    """Where a raw request goes: host and port to connect to, TLS context (None: plain TCP)."""

    host: str
    port: int
    context: ssl.SSLContext | None = None
    timeout_s: float = 10.0

    @property
    def url(self) -> str:
        return f"{'https' if self.context is not None else 'http'}://{self.authority}"

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def host_header(variant: HostVariant, host: str, port: int) -> str:
    """The ``Host`` value of `variant` for a server reached at `host`:`port`."""
    name = f"[{host}]" if ":" in host else host
    if variant == "other-host":
        return f"{OTHER_HOST}:{port}"
    if variant == "other-port":
        return f"{name}:{1 if port != 1 else 2}"
    if variant == "no-port":
        return name
    if variant == "upper-case":
        # an IP address has no case: the same machine by a name that has one
        upper = name.upper()
        return f"{upper if upper != name else 'LOCALHOST'}:{port}"
    if variant == "trailing-dot":
        return f"{name}.:{port}"
    return f"{name}:{port}"


def encode_request(
    method: str,
    target: str,
    host: str,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes | None = None,
    *,
    keep_alive: bool = False,
) -> bytes:
    """The request bytes: the request line and `headers` exactly as given (no normalisation, no
    re-encoding), then ``Host``, ``Connection: close`` (left out with `keep_alive`: HTTP/1.1's
    default keeps the connection) and, with a body, ``Content-Length``.

    ValueError for a CR, LF or NUL anywhere (that would be a request-smuggling bug of ours, not a
    trick) and for a target or header value that is not ASCII/latin-1."""
    for part in (method, target, host, *(x for pair in headers for x in pair)):
        if _FORBIDDEN.intersection(part):
            raise ValueError(f"a raw request part contains CR, LF or NUL: {part!r}")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if not keep_alive:
        lines.append("Connection: close")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + (body or b"")


async def send_raw(where: RawTarget, request: bytes, *, method: str) -> Exchange:
    """Send `request` (from `encode_request`) on a new connection and read one answer to
    `method`; the whole exchange is bounded by `where.timeout_s`."""
    try:
        async with asyncio.timeout(where.timeout_s):
            return await _exchange(where, request, method)
    except TimeoutError as exc:
        return _failed(where, "timeout", exc)


def _failed(where: RawTarget, kind: FailureKind, exc: BaseException) -> TransportFailure:
    return TransportFailure(kind, scrub(f"{type(exc).__name__}: {exc}")[:300], where.url)


async def _exchange(where: RawTarget, request: bytes, method: str) -> Exchange:
    opened = await connect(where)
    if isinstance(opened, TransportFailure):
        return opened
    reader, writer = opened
    try:
        answer, _, _ = await talk(where, reader, writer, request, method)
    finally:
        writer.close()
    return answer


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def connect(where: RawTarget) -> Stream | TransportFailure:
    """A new connection to `where` (TLS with its context), or why there is none."""
    tls = where.context
    try:
        return await asyncio.open_connection(
            where.host, where.port, ssl=tls, server_hostname=where.host if tls else None
        )
    except ssl.SSLCertVerificationError as exc:
        return _failed(where, "server-cert-refused", exc)
    except ssl.SSLError as exc:
        return _failed(where, "handshake-failed", exc)
    except ConnectionRefusedError as exc:
        return _failed(where, "connection-refused", exc)
    except (ConnectionResetError, BrokenPipeError) as exc:
        return _failed(where, "connection-failed", exc)
    except OSError as exc:
        return _failed(where, "connection-refused", exc)


async def talk(
    where: RawTarget,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    request: bytes,
    method: str,
) -> tuple[Exchange, bytes, bool]:
    """Write `request` on an open connection and read one answer: the answer (or the failure),
    the bytes read (empty on a failure) and whether the connection may carry another request
    (`keeps_connection`). The caller closes the connection or keeps it."""
    try:
        writer.write(request)
        await writer.drain()
        data, parsed = await _read_answer(reader, method)
    except ssl.SSLError as exc:  # e.g. TLS 1.3: the server's alert arrives after the handshake
        return _failed(where, "connection-reset", exc), b"", False
    except (ConnectionResetError, BrokenPipeError) as exc:
        return _failed(where, "connection-reset", exc), b"", False
    except OSError as exc:
        return _failed(where, "client-error", exc), b"", False
    if not data:
        closed = TransportFailure("connection-closed", "closed before any answer", where.url)
        return closed, b"", False
    try:
        status, headers, body, keeps = parsed or _parse(data, method)
    except (http.client.HTTPException, ValueError) as exc:
        return _failed(where, "client-error", exc), data, False
    return HttpAnswer(status, headers, body, where.url), data, keeps


async def _read_answer(reader: asyncio.StreamReader, method: str) -> tuple[bytes, _Parsed | None]:
    """The answer's bytes: until its framing says it is complete, or the connection closes; and
    the answer parsed when the check that found it complete parsed it already (one parse)."""
    data = b""
    while len(data) <= MAX_BODY:
        chunk = await reader.read(65536)
        if not chunk:
            return data, None
        data += chunk
        complete, parsed = _completed(data, method)
        if complete:
            return data, parsed
    return data, None


def _complete(data: bytes, method: str) -> bool:
    """Whether `data` holds a whole answer by its own framing (the parser's reading of
    ``Content-Length``, chunked encoding, HEAD and bodiless statuses). An answer framed by the
    close of the connection is complete only at EOF."""
    return _completed(data, method)[0]


def _completed(data: bytes, method: str) -> tuple[bool, _Parsed | None]:
    """`_complete`, and for an answer framed by its length that answer parsed (`_parse`'s
    result from the same parse: an answer is parsed once, not once more after the check)."""
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return False, None
    response = http.client.HTTPResponse(cast(socket.socket, bytes_socket(data)), method=method)
    try:
        response.begin()
    except (http.client.HTTPException, ValueError):
        return True, None  # a whole head that does not parse: stop reading, the parse says why
    if response.chunked:
        try:
            response.read()
        except (http.client.HTTPException, ValueError):
            return False, None  # the last chunk has not arrived yet
        return True, None
    if response.length is None:
        return False, None
    if len(data) - (head_end + 4) < response.length:
        return False, None
    try:
        return True, _answer(response, data, method)
    except (http.client.HTTPException, ValueError):
        return True, None  # the parse in `talk` says why


def parse_response(data: bytes, *, method: str = "GET") -> tuple[int, CIMultiDict[str], bytes]:
    """Parse a complete answer held in memory with the same parser (tests, diagnostics)."""
    status, headers, body, _ = _parse(data, method)
    return status, headers, body


def keeps_connection(data: bytes, method: str) -> bool:
    """Whether `data` is exactly one complete answer to `method` after which the connection
    stays open: framed by its ``Content-Length``, not chunked, no ``Connection: close`` (nor
    HTTP/1.0 without keep-alive), and no byte after it. Never after a HEAD, 1xx, 204 or 304:
    a server that sends a body where there must be none would leave it for the next request."""
    try:
        return _parse(data, method)[3]
    except (http.client.HTTPException, ValueError):
        return False


class _Parsed(NamedTuple):
    status: int
    headers: CIMultiDict[str]
    body: bytes
    keeps: bool  # `keeps_connection`


def _parse(data: bytes, method: str) -> _Parsed:
    """Status, headers, body, and `keeps_connection` — one parse."""
    response = http.client.HTTPResponse(cast(socket.socket, bytes_socket(data)), method=method)
    response.begin()
    return _answer(response, data, method)


def _answer(response: http.client.HTTPResponse, data: bytes, method: str) -> _Parsed:
    """What `_parse` returns, from `response` begun on `data` (its body not read yet)."""
    bodiless = method == "HEAD" or response.status in {204, 304} or response.status < 200
    framed = (
        not bodiless
        and not response.will_close
        and not response.chunked
        and response.length is not None
    )
    length = response.length or 0
    body = response.read(MAX_BODY)
    head_end = data.find(b"\r\n\r\n")
    keeps = framed and head_end >= 0 and len(data) == head_end + 4 + length
    return _Parsed(response.status, CIMultiDict(response.getheaders()), body, keeps)


def bytes_socket(data: bytes) -> _Bytes:
    """`data` as enough of a socket for `http.client.HTTPResponse` to parse."""
    return _Bytes(data)


class _Bytes:
    """Enough of a socket for `http.client.HTTPResponse` to read `data`."""

    def __init__(self, data: bytes) -> None:
        self._file = io.BytesIO(data)

    def makefile(self, mode: str, *args: object, **kwargs: object) -> BinaryIO:
        return self._file
