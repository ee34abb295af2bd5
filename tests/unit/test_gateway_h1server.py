"""The gateway's HTTP/1.1 server side (`gateway.h1server`) driven with bytes on a fake transport
(no sockets): answers in order, framing, the limits, and refusals of what llhttp refuses — each
with the twin that is served."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest

from trustproof.gateway import h1server
from trustproof.gateway.connections import TimedServer
from trustproof.gateway.h1fake import FakeTransport, feed
from trustproof.gateway.h1server import GatewayConnection, Malformed, Request, Response
from trustproof.gateway.limits import ConnectionLimits


def _answer_now(request: Request) -> Response:
    body = f"{request.method} {request.raw_path} {len(request.body)}".encode()
    return Response(200, [("X-Seen", str(len(request.raw_headers)))], body)


async def _echo(request: Request) -> Response:
    return _answer_now(request)


async def _echo_later(request: Request) -> Response:
    await asyncio.sleep(0)
    return _answer_now(request)


def drive(
    chunks: list[bytes],
    *,
    handler: Callable[[Request], Any] = _echo,
    limits: ConnectionLimits | None = None,
) -> tuple[FakeTransport, list[Request], list[Malformed]]:
    seen: list[Request] = []
    refused: list[Malformed] = []

    tasks: set[asyncio.Task[None]] = set()

    def handle(request: Request, reply: Callable[[Response], None]) -> Response | None:
        seen.append(request)
        if handler is _echo:  # answered at once, as the gateway answers its refusals
            return _answer_now(request)

        async def later() -> None:
            reply(await handler(request))

        task = asyncio.get_running_loop().create_task(later())
        tasks.add(task)
        return None

    def malformed(connection: GatewayConnection, what: Malformed) -> Response:
        refused.append(what)
        return Response(what.status, [("X-Refused", what.name)], b"refused")

    async def main() -> FakeTransport:
        server = TimedServer(handle, limits=limits)
        server.on_malformed = malformed
        transport = await feed(server(), chunks, settle=5)
        assert server.connections == set()
        return transport

    return asyncio.run(main()), seen, refused


def answers(transport: FakeTransport) -> list[bytes]:
    """The response heads written, in order (no body here holds a status line)."""
    return re.findall(rb"HTTP/1\.[01] [0-9]{3} [^\r]*\r\n(?:[^\r]+\r\n)*\r\n", transport.written)


GET = b"GET /orders/1 HTTP/1.1\r\nHost: x\r\nX-A:  spaced  \r\n\r\n"


def test_pipelined_requests_are_answered_in_order_on_one_kept_alive_connection() -> None:
    transport, seen, refused = drive(
        [GET + b"POST /orders HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"]
    )
    assert [(r.method, r.raw_path, r.body) for r in seen] == [
        ("GET", "/orders/1", b""),
        ("POST", "/orders", b"abc"),
    ]
    assert ("X-A", "spaced") in seen[0].raw_headers  # the value without surrounding whitespace
    heads = answers(transport)
    assert len(heads) == 2
    assert all(h.startswith(b"HTTP/1.1 200 OK\r\n") for h in heads)
    assert all(b"Server: trustproof\r\n" in h and b"Connection: close" not in h for h in heads)
    assert b"GET /orders/1 0" in transport.written
    assert b"POST /orders 3" in transport.written
    assert not transport.closed
    assert refused == []


def test_a_chunked_body_is_dechunked_and_its_trailers_dropped() -> None:
    chunked = (
        b"POST /o HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n"
    )
    _, seen, refused = drive([chunked[:30], chunked[30:]])
    assert [r.body for r in seen] == [b"abc"]
    assert all(name != "T" for name, _ in seen[0].raw_headers)
    assert refused == []


@pytest.mark.parametrize(
    "bad",
    [
        b"GET /orders HTTP/1.1\nAuthorization: Bearer x\n\n",  # bare LF
        b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",  # obs-fold
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nabc",
        b"GET / HTTP/1.1\r\nX : a\r\n\r\n",
    ],
)
def test_what_llhttp_refuses_is_answered_after_the_request_before_it_then_closed(
    bad: bytes,
) -> None:
    transport, seen, refused = drive([GET + bad + GET])
    assert len(seen) == 1  # the good request before it; nothing after it is read
    assert [m.status for m in refused] == [400]
    heads = answers(transport)
    assert heads[0].startswith(b"HTTP/1.1 200 ")
    assert b" 400 Bad Request\r\n" in heads[1]
    assert b"Connection: close\r\n" in heads[1]
    assert b"Authorization" not in transport.written
    assert transport.closed


def test_a_bad_chunk_after_a_parsed_head_is_refused_in_that_heads_version() -> None:
    bad = b"POST /o HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"
    transport, seen, refused = drive([bad])
    assert seen == []
    assert [(m.status, m.head_complete) for m in refused] == [(400, True)]
    assert bytes(transport.written).startswith(b"HTTP/1.1 400 ")
    garbled, _, refused_too = drive([b"GET /orders HTTP/1.1\nX: y\n\n"])
    assert bytes(garbled.written).startswith(b"HTTP/1.0 400 ")  # no version was parsed
    assert [m.head_complete for m in refused_too] == [False]


def test_a_body_over_the_limit_is_refused_413(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(h1server, "MAX_BODY", 10)
    over = b"POST /o HTTP/1.1\r\nContent-Length: 11\r\n\r\n" + b"x" * 11
    transport, seen, refused = drive([over])
    assert seen == []
    assert [(m.status, m.name) for m in refused] == [(413, "BodyTooLarge")]
    assert bytes(transport.written).startswith(b"HTTP/1.1 413 ")
    at_limit = b"POST /o HTTP/1.1\r\nContent-Length: 10\r\n\r\n" + b"x" * 10
    _, served, _ = drive([at_limit])  # the twin: at the limit it is served
    assert [len(r.body) for r in served] == [10]


def test_a_header_field_over_the_limit_is_refused() -> None:
    long_field = b"GET / HTTP/1.1\r\nX: " + b"a" * h1server.MAX_FIELD + b"\r\n\r\n"
    _, seen, refused = drive([long_field])
    assert seen == []
    assert [m.name for m in refused] == ["LineTooLong"]
    _, served, _ = drive([b"GET / HTTP/1.1\r\nX: " + b"a" * 8000 + b"\r\n\r\n"])
    assert len(served) == 1


def test_the_request_cap_closes_after_its_last_answer() -> None:
    limits = ConnectionLimits(max_requests=2)
    transport, seen, _ = drive([GET, GET, GET], limits=limits)
    heads = answers(transport)
    assert len(seen) == 2
    assert len(heads) == 2
    assert b"Connection: close" not in heads[0]
    assert b"Connection: close\r\n" in heads[1]
    assert transport.closed


def test_http_1_0_closes_unless_kept_alive_and_head_gets_no_body() -> None:
    transport, _, _ = drive([b"GET / HTTP/1.0\r\n\r\n"])
    assert b"Connection: close\r\n" in transport.written
    assert transport.closed
    kept, _, _ = drive([b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"])
    assert bytes(kept.written).startswith(b"HTTP/1.0 200 ")
    assert b"Connection: keep-alive\r\n" in kept.written
    assert not kept.closed
    head, _, _ = drive([b"HEAD /x HTTP/1.1\r\n\r\n"])
    assert bytes(head.written).endswith(b"\r\n\r\n")
    assert b"Content-Length: 9\r\n" in head.written


def test_an_upgrade_request_is_answered_then_the_connection_closes() -> None:
    upgrade = b"GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
    transport, seen, _ = drive([upgrade + b"\x81\x05hello" + GET])
    assert len(seen) == 1
    assert transport.closed
    assert b"Connection: close\r\n" in transport.written


def test_a_handler_that_fails_closes_the_connection_without_an_answer() -> None:
    async def main() -> FakeTransport:
        def broken(request: Request, reply: Callable[[Response], None]) -> Response | None:
            raise RuntimeError("bug")

        connection = TimedServer(broken)()
        transport = FakeTransport()
        connection.connection_made(transport)  # type: ignore[arg-type]
        connection.data_received(GET + GET)
        return transport

    transport = asyncio.run(main())
    assert transport.written == b""
    assert transport.closed


def test_answers_that_come_later_keep_their_order() -> None:
    transport, seen, _ = drive([GET + b"GET /b HTTP/1.1\r\n\r\n", GET], handler=_echo_later)
    assert len(seen) == 3
    assert [h[:15] for h in answers(transport)] == [b"HTTP/1.1 200 OK"] * 3
    written = bytes(transport.written)
    assert written.index(b"GET /orders/1 0") < written.index(b"GET /b 0")


def test_pipelined_requests_beyond_the_queue_pause_reading() -> None:
    async def main() -> tuple[bool, bool]:
        gate = asyncio.Event()

        def slow(request: Request, reply: Callable[[Response], None]) -> Response | None:
            async def later() -> None:
                await gate.wait()
                reply(Response(200, []))

            tasks.append(asyncio.get_running_loop().create_task(later()))
            return None

        tasks: list[asyncio.Task[None]] = []
        server = TimedServer(slow)
        connection = server()
        transport = FakeTransport()
        connection.connection_made(transport)  # type: ignore[arg-type]
        connection.data_received(GET * (h1server.MAX_QUEUED + 2))
        await asyncio.sleep(0)
        paused = transport.paused
        gate.set()
        for _ in range(50):
            await asyncio.sleep(0)
        connection.connection_lost(None)
        return paused, transport.paused

    assert asyncio.run(main()) == (True, False)


def test_a_half_closed_plain_connection_still_gets_its_answers() -> None:
    async def main() -> FakeTransport:
        def later(request: Request, reply: Callable[[Response], None]) -> Response | None:
            asyncio.get_running_loop().call_soon(reply, Response(200, []))
            return None

        connection = TimedServer(later)()
        transport = FakeTransport()
        connection.connection_made(transport)  # type: ignore[arg-type]
        connection.data_received(GET + GET)
        assert connection.eof_received() is True  # keep the transport open to answer
        for _ in range(5):
            await asyncio.sleep(0)
        return transport

    transport = asyncio.run(main())
    assert len(answers(transport)) == 2
    assert b"Connection: close\r\n" in answers(transport)[1]
    assert transport.closed
