"""The gateway's upstream pool against tiny asyncio servers on 127.0.0.1 that send exact bytes:
framing, keep-alive reuse, the stale keep-alive race (retried for GET, never for POST), timeouts
and every error reason the gateway turns into a 502."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from trustproof.gateway.upstream import UpstreamError, UpstreamPool, UpstreamResponse

pytestmark = pytest.mark.integration


def ok(body: bytes = b"hello", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\n" + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body


@dataclass(frozen=True)
class Reply:
    data: bytes = b""
    close: bool = False  # close the connection after sending `data`
    hang: bool = False  # after sending `data`, never say anything again
    delay: float = 0.0


# What to answer to request `nth` (0-based) on connection `conn` (0-based); None: close unanswered.
Answer = Callable[[int, int, bytes], Reply | None]


@dataclass
class Server:
    answer: Answer
    port: int = 0
    connections: int = 0
    closed_by_client: int = 0
    requests: list[bytes] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = self.connections
        self.connections += 1
        try:
            for nth in range(100):
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    self.closed_by_client += 1
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                reply = self.answer(conn, nth, request)
                if reply is None:
                    return
                await asyncio.sleep(reply.delay)
                writer.write(reply.data)
                await writer.drain()
                if reply.hang:
                    await asyncio.sleep(60)
                if reply.close:
                    return
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            writer.close()


@asynccontextmanager
async def serving(answer: Answer) -> AsyncIterator[Server]:
    server = Server(answer)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(scenario(), timeout=20)

    asyncio.run(bounded())


def always(data: bytes, **kwargs: bool) -> Answer:
    return lambda conn, nth, request: Reply(data, **kwargs)


async def get(pool: UpstreamPool, method: str = "GET", body: bytes = b"") -> UpstreamResponse:
    return await pool.request(method, "/orders/7", [("Accept", "*/*")], body)


async def reason_of(request: Awaitable[UpstreamResponse]) -> str:
    with pytest.raises(UpstreamError) as caught:
        await request
    return caught.value.reason


# -- framing -----------------------------------------------------------------------------------


def test_content_length_body_and_exact_request_bytes() -> None:
    async def scenario() -> None:
        async with serving(always(ok(extra=b"X-Served-By: upstream\r\n"))) as server:
            pool = UpstreamPool("127.0.0.1", server.port)
            response = await get(pool, "POST")
            await pool.close()
        assert response == UpstreamResponse(
            200, (("X-Served-By", "upstream"), ("Content-Length", "5")), b"hello"
        )
        host = f"127.0.0.1:{server.port}".encode()
        assert server.requests == [
            b"POST /orders/7 HTTP/1.1\r\nHost: " + host + b"\r\n"
            b"Accept: */*\r\nContent-Length: 0\r\n\r\n"
        ]

    run(scenario)


def test_chunked_body_with_trailers() -> None:
    data = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: 1\r\n\r\n"
    )

    async def scenario() -> None:
        async with serving(always(data)) as server:
            pool = UpstreamPool("127.0.0.1", server.port)
            first, second = await get(pool), await get(pool)
            await pool.close()
        assert first.body == second.body == b"hello world"
        assert [name for name, _ in first.headers] == ["Transfer-Encoding"]  # trailer dropped
        assert server.connections == 1  # fully read, so reused

    run(scenario)


def test_100_continue_then_200() -> None:
    async def scenario() -> None:
        async with serving(always(b"HTTP/1.1 100 Continue\r\n\r\n" + ok())) as server:
            pool = UpstreamPool("127.0.0.1", server.port)
            response = await get(pool, "PUT", b"{}")
            await pool.close()
        assert (response.status, response.body) == (200, b"hello")

    run(scenario)


@pytest.mark.parametrize(
    ("method", "data"),
    [
        ("GET", b"HTTP/1.1 204 No Content\r\n\r\n"),
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
    ],
)
def test_responses_without_body_keep_the_connection(method: str, data: bytes) -> None:
    async def scenario() -> None:
        async with serving(always(data)) as server:
            pool = UpstreamPool("127.0.0.1", server.port)
            first = await get(pool, method)
            second = await get(pool, method)
            await pool.close()
        assert first.body == second.body == b""
        assert server.connections == 1  # no body was waited for, and none was left unread

    run(scenario)


def test_close_delimited_body_is_read_to_the_end_and_not_reused() -> None:
    async def scenario() -> None:
        data = b"HTTP/1.1 200 OK\r\n\r\nuntil close"
        async with serving(always(data, close=True)) as server:
            pool = UpstreamPool("127.0.0.1", server.port)
            first, second = await get(pool), await get(pool)
            await pool.close()
        assert first.body == second.body == b"until close"
        assert server.connections == 2

    run(scenario)


# -- keep-alive --------------------------------------------------------------------------------


def test_keep_alive_reuses_one_connection() -> None:
    async def scenario() -> None:
        async with serving(always(ok())) as server:
            pool = UpstreamPool("127.0.0.1", server.port)
            for _ in range(3):
                assert (await get(pool)).status == 200
            await pool.close()
        assert (server.connections, len(server.requests)) == (1, 3)

    run(scenario)


def test_connection_close_is_not_reused() -> None:  # twin of the one above
    async def scenario() -> None:
        async with serving(always(ok(extra=b"Connection: close\r\n"), close=True)) as server:
            pool = UpstreamPool("127.0.0.1", server.port)
            for _ in range(3):
                assert (await get(pool)).status == 200
            await pool.close()
        assert (server.connections, len(server.requests)) == (3, 3)

    run(scenario)


def test_concurrent_requests_each_take_a_connection_and_max_idle_are_kept() -> None:
    async def scenario() -> None:
        async with serving(lambda conn, nth, request: Reply(ok(), delay=0.05)) as server:
            pool = UpstreamPool("127.0.0.1", server.port, max_idle=4)
            first = await asyncio.gather(*(get(pool) for _ in range(10)))
            for _ in range(100):  # let the server see the surplus connections close
                if server.closed_by_client >= 6:
                    break
                await asyncio.sleep(0.01)
            assert (server.connections, server.closed_by_client) == (10, 6)
            second = await asyncio.gather(*(get(pool) for _ in range(4)))
            await pool.close()
        assert [r.body for r in first + second] == [b"hello"] * 14
        assert server.connections == 10  # the second wave ran on the four kept idle

    run(scenario)


def stale_second_request(conn: int, nth: int, request: bytes) -> Reply | None:
    """Connection 0 closes when its second request arrives, as a server whose keep-alive timeout
    fired just as the request went out would; every other request is answered."""
    return None if (conn, nth) == (0, 1) else Reply(ok())


def test_stale_pooled_connection_is_retried_once_for_get() -> None:
    async def scenario() -> None:
        async with serving(stale_second_request) as server:
            pool = UpstreamPool("127.0.0.1", server.port)
            await get(pool)
            response = await get(pool)  # hits the stale connection, then a new one
            await pool.close()
        assert (response.status, response.body) == (200, b"hello")
        assert (server.connections, len(server.requests)) == (2, 3)

    run(scenario)


def test_stale_pooled_connection_is_not_retried_for_post() -> None:  # twin: never send twice
    async def scenario() -> None:
        async with serving(stale_second_request) as server:
            pool = UpstreamPool("127.0.0.1", server.port)
            await get(pool)
            assert await reason_of(get(pool, "POST", b"{}")) == "closed-before-response"
            await pool.close()
        assert (server.connections, len(server.requests)) == (1, 2)

    run(scenario)


def test_fresh_connection_closed_before_response_is_not_retried() -> None:
    async def scenario() -> None:
        async with serving(lambda conn, nth, request: None) as server:
            pool = UpstreamPool("127.0.0.1", server.port)
            assert await reason_of(get(pool)) == "closed-before-response"
            await pool.close()
        assert server.connections == 1  # only a reused connection can be stale

    run(scenario)


def test_cancelled_request_does_not_leave_its_connection_in_the_pool() -> None:
    async def scenario() -> None:
        answers = iter([Reply(hang=True), Reply(ok())])
        async with serving(lambda conn, nth, request: next(answers)) as server:
            pool = UpstreamPool("127.0.0.1", server.port)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(get(pool), timeout=0.1)
            assert (await get(pool)).body == b"hello"
            await pool.close()
        assert server.connections == 2

    run(scenario)


# -- errors ------------------------------------------------------------------------------------


def test_malformed_status_line() -> None:
    async def scenario() -> None:
        async with serving(always(b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n")) as server:
            pool = UpstreamPool("127.0.0.1", server.port)
            assert await reason_of(get(pool)) == "malformed-response"
            await pool.close()

    run(scenario)


@pytest.mark.parametrize(("max_body", "reason"), [(4, "body-too-large"), (5, None)])
def test_body_larger_than_max_body(max_body: int, reason: str | None) -> None:
    async def scenario() -> None:
        async with serving(always(ok(b"hello"))) as server:
            pool = UpstreamPool("127.0.0.1", server.port, max_body=max_body)
            if reason is None:
                assert (await get(pool)).body == b"hello"
            else:
                assert await reason_of(get(pool)) == reason
            await pool.close()

    run(scenario)


@pytest.mark.parametrize(("reply", "reason"), [(Reply(hang=True), "timeout"), (Reply(ok()), None)])
def test_server_that_never_answers_times_out(reply: Reply, reason: str | None) -> None:
    async def scenario() -> None:
        async with serving(lambda conn, nth, request: reply) as server:
            pool = UpstreamPool("127.0.0.1", server.port, timeout=0.2)
            if reason is None:
                assert (await get(pool)).status == 200
            else:
                assert await reason_of(get(pool)) == reason
            await pool.close()

    run(scenario)


def test_connect_refused() -> None:
    async def scenario() -> None:
        with socket.socket() as dead:
            dead.bind(("127.0.0.1", 0))
            port = dead.getsockname()[1]  # closed below: nothing listens there
        pool = UpstreamPool("127.0.0.1", port)
        assert await reason_of(get(pool)) == "connect-failed"
        await pool.close()

    run(scenario)


def test_closed_pool_refuses_new_requests() -> None:
    async def scenario() -> None:
        async with serving(always(ok())) as server:
            pool = UpstreamPool("127.0.0.1", server.port)
            await get(pool)
            await pool.close()
            assert await reason_of(get(pool)) == "connect-failed"
            for _ in range(100):
                if server.closed_by_client:
                    break
                await asyncio.sleep(0.01)
        assert server.closed_by_client == 1  # the idle connection was closed

    run(scenario)
