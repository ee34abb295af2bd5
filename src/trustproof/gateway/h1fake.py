"""A fake asyncio transport for the gateway's HTTP/1.1 server side (`h1server`) and upstream
connections: no socket, everything written kept in order, so tests, the fuzz targets and
`benchmarks/gateway_path.py` feed bytes to a `GatewayConnection` and read what it answered."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import cast

from trustproof.gateway.h1server import GatewayConnection

PEER = ("127.0.0.1", 50000)


class FakeSSLObject:
    """What the gateway asks a connection's TLS object: the peer's certificate (DER)."""

    def __init__(self, der: bytes) -> None:
        self.der = der

    def getpeercert(self, binary_form: bool = False) -> bytes:
        return self.der


class FakeTransport:
    """Keeps what is written (`written`: all bytes; `chunks`: each write; `log`, when given,
    gets ``("wrote", bytes)`` entries, so a test can interleave its own); refuses a write after
    `close`; answers ``peername`` and ``ssl_object``."""

    def __init__(
        self,
        *,
        ssl_object: FakeSSLObject | None = None,
        log: list[tuple[str, bytes]] | None = None,
    ) -> None:
        self.written = bytearray()
        self.chunks: list[bytes] = []
        self.log = log
        self.ssl_object = ssl_object
        self.closed = False
        self.paused = False

    def write(self, data: bytes) -> None:
        if self.closed:
            raise RuntimeError("written after close")
        chunk = bytes(data)
        self.written += chunk
        self.chunks.append(chunk)
        if self.log is not None:
            self.log.append(("wrote", chunk))

    def clear(self) -> None:
        """Forget what was written (a benchmark's loop, between requests)."""
        self.written.clear()
        self.chunks.clear()

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def get_extra_info(self, name: str, default: object = None) -> object:
        if name == "ssl_object":
            return self.ssl_object
        return PEER if name == "peername" else default


async def feed(
    connection: GatewayConnection, chunks: Iterable[bytes], *, settle: int = 0
) -> FakeTransport:
    """Give `connection` a fake transport, then `chunks` as they would arrive, until it closes
    (`settle` turns of the event loop after each, for answers given later), then lose it: the
    transport, holding everything answered."""
    transport = FakeTransport()
    connection.connection_made(cast(asyncio.BaseTransport, transport))
    for chunk in chunks:
        if transport.closed:
            break
        connection.data_received(chunk)
        for _ in range(settle):
            await asyncio.sleep(0)
    connection.connection_lost(None)
    return transport
