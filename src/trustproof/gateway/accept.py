"""A listener's accept loop on an already-bound socket: at most `max_connections` at once (TLS
handshakes in progress included), a connection over the cap closed as soon as it is accepted
(before any TLS), and each TLS handshake bounded (`ConnectionLimits.handshake_timeout`).

asyncio's own server cannot refuse a connection before its handshake, so this loop accepts and
hands each socket to ``connect_accepted_socket`` (which asyncio and uvloop both offer). Used by
the aiohttp listeners (`listener.GuardedSite`) and the gateway's own HTTP/1.1 server side
(`h1server.py`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any

from trustproof.gateway.limits import ConnectionLimits
from trustproof.scrub import scrubbed_traceback

log = logging.getLogger("trustproof.gateway")


class AcceptLoop:
    """Accepts on `sock` and serves each connection with a protocol from `factory`.

    `held` counts the established connections the server holds (the cap counts those and the
    handshakes in progress); `abandoned` is told of each protocol that never got its connection
    (the TLS handshake failed or timed out)."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        ssl_context: ssl.SSLContext | None,
        limits: ConnectionLimits,
        factory: Callable[[], asyncio.BaseProtocol],
        held: Callable[[], int],
        abandoned: Callable[[Any], None],
        name: str,
        backlog: int = 128,
    ) -> None:
        self._sock = sock
        self._ssl_context = ssl_context
        self._limits = limits
        self._factory = factory
        self._held = held
        self._abandoned = abandoned
        self.name = name
        self._backlog = backlog
        self._accepting: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self.refused = 0  # connections closed at accept because the listener was full
        self._full = False

    @property
    def active(self) -> int:
        """Connections held now: TLS handshakes in progress and established connections."""
        return len(self._pending) + self._held()

    def start(self) -> None:
        self._sock.setblocking(False)
        self._accepting = asyncio.get_running_loop().create_task(self._accept())

    async def stop(self) -> None:
        """Stop accepting, abandon the handshakes in progress and close the listening socket."""
        tasks = [*self._pending, *([self._accepting] if self._accepting else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._sock.close()

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(self._sock)
            except OSError as exc:  # e.g. EMFILE: wait instead of spinning
                log.warning("accept failed on %s: %s", self.name, exc.strerror or exc)
                await asyncio.sleep(0.1)
                continue
            self._admit(loop, conn)
            for _ in range(self._backlog):  # whatever else is queued, without a loop turn each
                try:
                    conn, _ = self._sock.accept()
                except OSError:  # BlockingIOError: the queue is empty
                    break
                self._admit(loop, conn)

    def _admit(self, loop: asyncio.AbstractEventLoop, conn: socket.socket) -> None:
        """Serve `conn`, or close it at once when the listener holds its cap."""
        limits = self._limits
        if self.active >= limits.max_connections:
            self.refused += 1
            if not self._full:  # once per episode, not once per connection
                log.warning(
                    "%s holds %d connections (its cap): closing new ones until one ends",
                    self.name,
                    limits.max_connections,
                )
            self._full = True
            conn.close()
            return
        self._full = False
        conn.setblocking(False)
        task = loop.create_task(self._serve(conn))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _serve(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        made: list[asyncio.BaseProtocol] = []

        def factory() -> asyncio.BaseProtocol:
            made.append(self._factory())
            return made[-1]

        tls: dict[str, Any] = {}
        if self._ssl_context is not None:
            tls = {
                "ssl": self._ssl_context,
                "ssl_handshake_timeout": self._limits.handshake_timeout,
            }
        try:
            await loop.connect_accepted_socket(factory, conn, **tls)
        except (OSError, EOFError) as exc:  # ssl.SSLError and the handshake timeout are OSErrors
            log.debug("connection closed before it was ready: %s", type(exc).__name__)
            self._forget(conn, made)
        except asyncio.CancelledError:
            self._forget(conn, made)
            raise
        except Exception as exc:  # a bug: refuse this connection, keep listening
            log.error(
                "could not set up a connection on %s; closed it:\n%s",
                self.name,
                scrubbed_traceback(exc),
            )
            self._forget(conn, made)

    def _forget(self, conn: socket.socket, made: list[asyncio.BaseProtocol]) -> None:
        conn.close()
        for handler in made:
            self._abandoned(handler)
