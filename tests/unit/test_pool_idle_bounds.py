"""The client pools keep a bounded number of idle connections, whatever the number of identities
and servers a suite talks to: `RawPool` at most `max_idle` in all, `BoundedIdleConnector` (the
view's aiohttp pool) idle connections of at most `idle_keys` keys — each time the one unused
longest goes. Fakes stand for connections (no sockets in unit tests); the connector test runs
aiohttp's own pool code, so it also holds `BoundedIdleConnector` to the pinned aiohttp."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from trustproof.sandbox import rawpool
from trustproof.sandbox.http_client import BoundedIdleConnector
from trustproof.sandbox.rawhttp import RawTarget
from trustproof.sandbox.rawpool import RawPool
from trustproof.view import HttpAnswer

KEPT = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno"


class FakeTransport:
    def __init__(self) -> None:
        self.closed = False

    def is_closing(self) -> bool:
        return self.closed


class FakeWriter:
    def __init__(self) -> None:
        self.transport = FakeTransport()

    def close(self) -> None:
        self.transport.closed = True


class FakeReader:
    _buffer = b""

    def at_eof(self) -> bool:
        return False


def test_the_raw_pool_keeps_at_most_max_idle_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[FakeWriter] = []

    async def connect(where: RawTarget) -> tuple[FakeReader, FakeWriter]:
        opened.append(FakeWriter())
        return FakeReader(), opened[-1]

    async def talk(where: RawTarget, *_: Any) -> tuple[HttpAnswer, bytes, bool]:
        return HttpAnswer(403, {}, b"no", where.url), KEPT, True

    monkeypatch.setattr(rawpool, "connect", connect)
    monkeypatch.setattr(rawpool, "talk", talk)
    pool = RawPool(max_idle=3)

    async def main() -> None:
        for port in range(1, 6):  # five servers, one request each
            await pool.send(RawTarget("127.0.0.1", port), "GET", "/", "h", (), None)
        # the server used last again: its kept connection, no new one
        await pool.send(RawTarget("127.0.0.1", 5), "GET", "/", "h", (), None)

    asyncio.run(main())
    assert len(opened) == 5
    assert [w.transport.closed for w in opened] == [True, True, False, False, False]
    assert sum(len(kept) for kept in pool.idle.values()) == 3


class FakeProtocol:
    should_close = False

    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def is_connected(self) -> bool:
        return not self.closed


def release(connector: BoundedIdleConnector, key: Any, protocol: Any) -> None:
    connector._release(key, protocol)


def test_the_connector_keeps_idle_connections_of_at_most_idle_keys_keys() -> None:
    async def main() -> list[list[FakeProtocol]]:
        connector = BoundedIdleConnector(idle_keys=2, limit_per_host=3)
        released: list[list[FakeProtocol]] = []
        try:
            for key in ("a", "b", "c"):
                protocols = [FakeProtocol(), FakeProtocol()]
                for protocol in protocols:
                    release(connector, key, protocol)
                released.append(protocols)
            release(connector, "b", FakeProtocol())  # b used again
            release(connector, "d", FakeProtocol())  # c goes, not b
            assert {str(key) for key in connector._conns} == {"b", "d"}
            assert connector.idle_connections == 4
        finally:
            connector._conns.clear()  # fakes: nothing for aiohttp to close
            await connector.close()
        return released

    a, b, c = asyncio.run(main())
    assert all(p.closed for p in a + c)
    assert not any(p.closed for p in b)
