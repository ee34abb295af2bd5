"""A TCP fault proxy on loopback (what Toxiproxy does, for the trust paths of the local backend):
it listens on a socket it is given, forwards each connection to an upstream address, and degrades
what passes — ``latency`` (each chunk held `latency_s` before it is forwarded, both ways),
``loss`` (a `loss` fraction of the connections, chosen by a seeded generator so runs repeat, is
accepted and then blackholed: nothing forwarded, reset after `hold_s`), ``reset`` (every
connection reset at once, RST).

Bytes are forwarded as they are: TLS passes through end to end, so the peers still authenticate
each other and the proxy learns nothing. Connections are bounded in time by the peers and by
`hold_s`; `close()` ends every one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from dataclasses import dataclass, field

from trustproof.view.chaos import NetFault

CHUNK = 65536


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0) instead of FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()


@dataclass
class FaultProxy:
    upstream: tuple[str, int]
    fault: NetFault
    seed: int = 15
    connections: int = 0
    dropped: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)  # noqa: S311 (a fault pattern, not a secret)

    async def start(self, sock: socket.socket) -> None:
        self._server = await asyncio.start_server(self._accept, sock=sock)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        except asyncio.CancelledError:  # close(): the connection ends with the proxy
            _reset(writer)
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        mode = self.fault.mode
        if mode == "reset":
            _reset(writer)
            return
        if mode == "loss" and self._random.random() < self.fault.loss:
            self.dropped += 1
            try:
                await asyncio.sleep(self.fault.hold_s)
            finally:
                _reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            _reset(writer)
            return
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for end in (writer, up_writer):
                end.close()

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(CHUNK):
                if self.fault.mode == "latency":
                    await asyncio.sleep(self.fault.latency_s)
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                if sink.can_write_eof():
                    sink.write_eof()
