"""TCP relays: the only doors between a service's namespace and the host's loopback.

    relay = await Relay.start(listening_sock, connect)   # each accepted connection -> connect()
    await relay.close()

Two kinds, both built by `trustproof.sandbox.isolated`:

* inward-out: listening on ``127.0.0.1:<port>`` *inside* a service namespace, forwarding to the
  same ``host:port`` on the host's loopback — one per allowed peer (its egress proxies, the token
  service, its datastores), so the addresses a service is given are the same on both backends;
* outward-in: listening on the host's loopback at a ``gateway: none`` service's ``host:port``,
  forwarding to that port inside its namespace (its port is its ingress).

A relay copies bytes both ways and passes half-closes on; it never reads what it carries.

Relays run on an event loop of their own (`RelayThread`), not the controller's: under a probe
storm the controller's loop is busy with hundreds of TLS handshakes, and a protocol with many
round trips through a relay (PostgreSQL's TLS and certificate login) would wait for that loop
at every one of them — measured on the shop: seconds instead of milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

Connect = Callable[[], Awaitable[socket.socket]]
CHUNK = 65536
T = TypeVar("T")


class RelayThread:
    """An event loop on a thread of its own for the relays; `run` awaits a coroutine there."""

    def __init__(self, name: str = "trustproof-relays") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the relay loop; await its result from another loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def close(self) -> None:
        """Stop the loop and join the thread (idempotent)."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


async def connect_host(host: str, port: int) -> socket.socket:
    """A non-blocking TCP socket in this process's (the host's) namespace connected to
    `host:port`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def listening(make: Callable[[int, int], socket.socket], host: str, port: int) -> socket.socket:
    """A TCP socket made by `make` (e.g. `NetNamespace.socket`), bound to `host:port` and
    listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = make(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, RuntimeError):
        writer.close()


class Relay:
    """One listening socket whose every connection is joined to a new one made by `connect`."""

    def __init__(self, connect: Connect, name: str = "") -> None:
        self.connect, self.name = connect, name
        self.server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def start(cls, sock: socket.socket, connect: Connect, name: str = "") -> Relay:
        relay = cls(connect, name)
        relay.server = await asyncio.start_server(relay._handle, sock=sock)
        return relay

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            try:
                sock = await self.connect()
            except OSError:
                return  # the peer is gone: the caller sees its connection closed
            up_reader, up_writer = await asyncio.open_connection(sock=sock)
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                up_writer.close()
        finally:
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def close(self) -> None:
        if self.server is None:
            return
        self.server.close()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 1.0)
