"""Kept-alive connections for the exact requests (`trustproof.sandbox.rawhttp`): path and request
tricks need no handshake of their own, and a TLS handshake per trick was most of the suite's time.
The view sends its other kept-alive requests here too when aiohttp would send them unchanged
(`writable_as_is`: a printable ASCII target, latin-1 header values), so one connection per
identity and server serves both (each client had its own: a handshake more per pair), and the raw
client costs less per request than aiohttp's.

One pool per address and TLS context — the view caches one context per presented identity, so a
connection is only ever reused by the identity that opened it — with at most `PER_KEY`
connections at a time (a request waits for one of them rather than opening more: a burst of
tricks would otherwise open a connection each), and at most `MAX_IDLE` idle connections in all,
whatever the number of addresses and identities (one more closes the one unused longest: a
large spec's suite kept hundreds of TLS connections open, on both sides, each with its buffers).
A request is sent on a kept-alive connection only
when it cannot touch the connection itself (`reusable_request`: no framing or connection header,
not CONNECT); it is then written without ``Connection: close``. Its connection goes back to the
pool only when the answer is exactly one complete answer framed by its length that says nothing
of closing (`rawhttp.keeps_connection`); otherwise it is closed. (A body is framed by the
``Content-Length`` the writer adds; a server must read or discard it before the next request, or
close the connection — RFC 9112 §9.3 — as the view's aiohttp pool already relies on.) So every
request starts on a clean connection, no request reads bytes that belong to another, and a
verdict cannot depend on which connection a case got. Waiting for a connection is not part of a
request's timeout.

A kept-alive connection that fails before any answer byte (the server closed it while it was idle,
or after its requests-per-connection limit) says nothing of the request: it is sent once more on a
new connection, whose answer (or failure) is the one kept.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from trustproof.sandbox.rawhttp import (
    RawTarget,
    Stream,
    connect,
    encode_request,
    send_raw,
    talk,
)
from trustproof.scrub import scrub
from trustproof.view import Exchange, TransportFailure

PER_KEY = 4  # connections at a time per address and identity
MAX_IDLE = 32  # idle connections in all: the one unused longest is closed for one more
CONNECTION_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "content-length",
        "te",
        "trailer",
        "upgrade",
        "expect",
    }
)
"""Header names that touch framing or the connection: a request carrying one gets its own
connection (``Connection: close``), as before the pool."""

Key = tuple[str, int, ssl.SSLContext | None]
_UNWRITABLE = frozenset("\r\n\x00")  # what `encode_request` refuses in any part


def raw_target(base: str, context: ssl.SSLContext | None, timeout_s: float) -> RawTarget:
    """Where a request to the base URL `base` goes (TLS with `context`, plain TCP without)."""
    url = urlsplit(base)
    port = url.port or (80 if context is None else 443)
    return RawTarget(url.hostname or "127.0.0.1", port, context, timeout_s)


def reusable_request(method: str, headers: Sequence[tuple[str, str]]) -> bool:
    """Whether a request may go on a kept-alive connection: not CONNECT, and no header that
    touches framing or the connection (names compared trimmed and case-insensitively)."""
    if method.strip().upper() == "CONNECT":
        return False
    return not any(name.strip().lower() in CONNECTION_HEADERS for name, _ in headers)


def writable_as_is(method: str, target: str, headers: Sequence[tuple[str, str]]) -> bool:
    """Whether a request aiohttp would send could go through this pool unchanged: a target of
    printable ASCII (aiohttp would percent-encode anything else), a method token, and header
    names and values `encode_request` writes (latin-1, no CR, LF or NUL)."""
    if not (method.isascii() and method.isalpha()):
        return False
    if not target.startswith("/") or not all(" " < char < "\x7f" for char in target):
        return False
    for name, value in headers:
        if _UNWRITABLE.intersection(name + value):
            return False
        try:
            (name + value).encode("latin-1")
        except UnicodeEncodeError:
            return False
    return True


@dataclass
class RawPool:
    """Idle kept-alive connections per (host, port, TLS context), at most `per_key` in use or
    idle per key and `max_idle` idle in all; `opened` counts the connections it made (tests,
    benchmarks)."""

    per_key: int = PER_KEY
    idle: dict[Key, list[Stream]] = field(default_factory=dict)
    opened: int = 0
    max_idle: int = MAX_IDLE
    _slots: dict[Key, asyncio.Semaphore] = field(default_factory=dict)
    _order: OrderedDict[asyncio.StreamWriter, Key] = field(default_factory=OrderedDict)

    async def send(  # noqa: PLR0917 (a request's parts, as `encode_request` takes them)
        self,
        where: RawTarget,
        method: str,
        target: str,
        host: str,
        headers: Sequence[tuple[str, str]],
        body: bytes | None,
        *,
        fresh: bool = False,
    ) -> Exchange:
        """Send the request `encode_request` makes of these parts: on its own new connection
        when `fresh` or when it is not `reusable_request`, else on a kept-alive one; the whole
        exchange bounded by `where.timeout_s`."""
        if fresh or not reusable_request(method, headers):
            raw = encode_request(method, target, host, headers, body)
            return await send_raw(where, raw, method=method)
        raw = encode_request(method, target, host, headers, body, keep_alive=True)
        key: Key = (where.host, where.port, where.context)
        slots = self._slots.setdefault(key, asyncio.Semaphore(self.per_key))
        async with slots:  # waiting for a connection is not the request's time
            try:
                async with asyncio.timeout(where.timeout_s):
                    return await self._kept(key, where, raw, method)
            except TimeoutError as exc:
                detail = scrub(f"{type(exc).__name__}: {exc}")[:300]
                return TransportFailure("timeout", detail, where.url)

    async def _kept(self, key: Key, where: RawTarget, raw: bytes, method: str) -> Exchange:
        stream = self._take(key)
        if stream is not None:
            answer, data = await self._talk(key, where, stream, raw, method)
            if not (isinstance(answer, TransportFailure) and not data):
                return answer
            # closed by the server while idle: nothing learned; once more, on a new connection
        opened = await connect(where)
        if isinstance(opened, TransportFailure):
            return opened
        self.opened += 1
        answer, _ = await self._talk(key, where, opened, raw, method)
        return answer

    async def _talk(
        self, key: Key, where: RawTarget, stream: Stream, raw: bytes, method: str
    ) -> tuple[Exchange, bytes]:
        reader, writer = stream
        kept = False
        try:
            answer, data, keeps = await talk(where, reader, writer, raw, method)
            if (
                keeps
                and not isinstance(answer, TransportFailure)
                and len(self.idle.setdefault(key, [])) < self.per_key
            ):
                self.idle[key].append(stream)
                self._order[writer] = key
                kept = True
                while len(self._order) > self.max_idle:
                    self._evict()
            return answer, data
        finally:
            if not kept:
                writer.close()

    def _evict(self) -> None:
        """Close the idle connection unused the longest."""
        writer, key = self._order.popitem(last=False)
        streams = self.idle.get(key, [])
        for index, (_, kept) in enumerate(streams):
            if kept is writer:
                del streams[index]
                break
        writer.close()

    def _take(self, key: Key) -> Stream | None:
        streams = self.idle.get(key)
        while streams:
            reader, writer = streams.pop()
            self._order.pop(writer, None)
            # bytes a server sent while the connection was idle (a 408 before closing, say)
            # answer no request of ours: such a connection is not used again
            idle_bytes = getattr(reader, "_buffer", None)
            if reader.at_eof() or writer.transport.is_closing() or idle_bytes:
                writer.close()
                continue
            return reader, writer
        return None

    async def close(self) -> None:
        """Close every idle connection."""
        streams = [stream for kept in self.idle.values() for stream in kept]
        self.idle.clear()
        self._order.clear()
        for _, writer in streams:
            writer.close()
