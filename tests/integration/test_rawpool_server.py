"""Exact requests on kept-alive connections (`trustproof.sandbox.rawpool`) against a real HTTP/1.1
server on 127.0.0.1 that counts connections: reused where the answer allows it, a new one where
it does not, a connection the server dropped while idle retried, never more than `PER_KEY` at a
time — and a request touching the connection (the failing twin) on its own connection as before."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from trustproof.sandbox.rawhttp import RawTarget
from trustproof.sandbox.rawpool import PER_KEY, RawPool
from trustproof.view import Exchange, HttpAnswer

pytestmark = pytest.mark.integration

Answer = Callable[[int, bytes], tuple[bytes, bool]]  # (request number, head) -> (answer, close)


class Server:
    """Answers each request head with `answer`; counts connections, requests, and the most
    connections open at once."""

    def __init__(self, answer: Answer, late: bytes = b"") -> None:
        self.answer = answer
        self.late = late  # sent a while after each answer, unasked
        self.connections = 0
        self.requests = 0
        self.open = 0
        self.most_open = 0
        self.heads: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.requests += 1
                number = self.requests
                self.heads.append(head)
                await asyncio.sleep(0.01)  # let concurrent requests pile up
                data, close = self.answer(number, head)
                writer.write(data)
                await writer.drain()
                if self.late:
                    await asyncio.sleep(0.05)
                    writer.write(self.late)
                    await writer.drain()
                if close:
                    return
        finally:
            self.open -= 1
            writer.close()


def ok(number: int) -> bytes:
    body = str(number).encode()
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


async def exchange(
    answer: Answer,
    sends: int,
    *,
    concurrent: bool = False,
    headers: tuple[tuple[str, str], ...] = (),
    late: bytes = b"",
    pause: float = 0.0,
) -> tuple[Server, RawPool, list[Exchange]]:
    server = Server(answer, late)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    pool = RawPool()
    where = RawTarget("127.0.0.1", port, None, 5.0)
    try:

        async def one() -> Exchange:
            return await pool.send(where, "GET", "/./x", f"127.0.0.1:{port}", headers, None)

        if concurrent:
            answers = list(await asyncio.gather(*(one() for _ in range(sends))))
        else:
            answers = []
            for _ in range(sends):
                answers.append(await one())
                await asyncio.sleep(pause)
    finally:
        await pool.close()
        for _ in range(100):  # bounded: the server sees each kept connection close
            if not server.open:
                break
            await asyncio.sleep(0.01)
        listener.close()
        await listener.wait_closed()
    return server, pool, answers


def bodies(answers: list[Exchange]) -> list[bytes]:
    assert all(isinstance(a, HttpAnswer) for a in answers), answers
    return sorted(a.body for a in answers if isinstance(a, HttpAnswer))


def test_answers_framed_by_their_length_share_one_connection() -> None:
    server, pool, answers = asyncio.run(exchange(lambda n, _: (ok(n), False), 3))
    assert bodies(answers) == [b"1", b"2", b"3"]
    assert (server.connections, pool.opened) == (1, 1)
    assert all(b"Connection: close" not in head for head in server.heads)


def test_an_answer_saying_close_is_the_last_on_its_connection() -> None:
    close = b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno"
    server, pool, answers = asyncio.run(exchange(lambda n, _: (close, False), 3))
    assert [a.status for a in answers if isinstance(a, HttpAnswer)] == [403, 403, 403]
    assert (server.connections, pool.opened) == (3, 3)


def test_a_connection_dropped_while_idle_is_retried_on_a_new_one() -> None:
    # the server closes after each answer without saying so: the next request finds it closed
    server, pool, answers = asyncio.run(exchange(lambda n, _: (ok(n), True), 3))
    assert bodies(answers) == [b"1", b"2", b"3"]  # never a failure: nothing was learned from it
    assert server.connections == pool.opened == 3


def test_concurrent_requests_wait_for_one_of_the_keys_connections() -> None:
    server, pool, answers = asyncio.run(
        exchange(lambda n, _: (ok(n), False), 4 * PER_KEY, concurrent=True)
    )
    assert bodies(answers) == sorted(str(n).encode() for n in range(1, 4 * PER_KEY + 1))
    assert server.most_open <= PER_KEY
    assert server.connections == pool.opened <= PER_KEY


def test_a_request_touching_the_connection_gets_its_own_as_before() -> None:
    trick = (("Connection", "X-Trustproof-Spiffe-Id"),)
    server, pool, answers = asyncio.run(exchange(lambda n, _: (ok(n), False), 3, headers=trick))
    assert bodies(answers) == [b"1", b"2", b"3"]
    assert server.connections == 3
    assert pool.opened == 0  # not the pool's: written with Connection: close, closed after
    assert all(b"Connection: close" in head for head in server.heads)


def test_bytes_sent_while_idle_are_never_read_as_an_answer() -> None:
    timeout = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n"
    server, pool, answers = asyncio.run(
        exchange(lambda n, _: (ok(n), False), 3, late=timeout, pause=0.2)
    )
    assert bodies(answers) == [b"1", b"2", b"3"]  # no 408 among them
    assert server.connections == pool.opened == 3
