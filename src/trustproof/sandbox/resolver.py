"""The sandbox resolver: a DNS server on a UDP socket the caller bound (inside a service's network
namespace, on ``127.0.0.1:53``), answering the declared names only and recording every query.

    sock = ns.socket(socket.AF_INET, socket.SOCK_DGRAM); sock.bind(("127.0.0.1", 53))
    resolver = await start_resolver(sock, {"payments.example": "127.0.0.1"}, ledger.recorder(svc))
    ...
    resolver.close()

    # or both sockets made in the namespace and bound to its 127.0.0.1:53 in one call:
    resolver = await start_in_namespace(ns.socket, names, ledger.recorder(svc))

The decisions are `trustproof.sandbox.dns_answer.answer`'s (REFUSED for an undeclared name, and
why); this module owns the socket: one `asyncio.DatagramProtocol` on the event loop the sandbox
runs, one reply per query, nothing kept per client. `record` is called with the `DnsQuery` of
every query received, answered or not, in the event loop's thread. Nothing a client sends can
stop the resolver: a query that cannot be decided is logged (scrubbed) and dropped, a `record`
that raises is logged and the reply still goes out.

UDP always; TCP too when a listening-ready socket is passed as `tcp` (DNS over TCP, RFC 7766:
each message behind a two-byte length). Stub resolvers use TCP when a reply is truncated — these
replies (one question, at most one A record) never are — or when told to (``options use-vc``,
``dig +tcp``), and a lookup over TCP is an egress attempt like any other. TCP is bounded:
`MAX_TCP_CONNECTIONS` at a time (more are closed at once), `MAX_TCP_QUERIES` per connection,
`TCP_IDLE_S` to send each message; a message longer than `MAX_QUERY_BYTES` is recorded as
malformed and ends the connection.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Mapping
from typing import Any, cast

from trustproof.errors import SandboxError
from trustproof.sandbox.dns_answer import MALFORMED, MAX_QUERY_BYTES, DnsQuery, answer, check_names
from trustproof.scrub import scrub

log = logging.getLogger(__name__)

Record = Callable[[DnsQuery], None]
MAX_TCP_CONNECTIONS = 16
MAX_TCP_QUERIES = 64
TCP_IDLE_S = 5.0


class _Handler:
    """One query in, the reply out (empty: send nothing), recorded; never raises."""

    def __init__(self, names: Mapping[str, str], record: Record) -> None:
        self.names = names
        self.record = record
        self.received = 0

    def reply(self, data: bytes) -> bytes:
        self.received += 1
        try:
            reply, query = answer(data, self.names)
        except Exception as exc:  # a bug in the decision must not stop the resolver
            log.warning("resolver: query of %d bytes dropped: %s", len(data), scrub(repr(exc)))
            return b""
        self.note(query)
        return reply

    def note(self, query: DnsQuery) -> None:
        try:
            self.record(query)
        except Exception as exc:
            log.warning("resolver: recording a query failed: %s", scrub(repr(exc)))


class _DnsProtocol(asyncio.DatagramProtocol):
    def __init__(self, handler: _Handler) -> None:
        self.handler = handler
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's own datagram transports are not `DatagramTransport` subclasses on every
        # Python (3.11's selector one is not): trust the loop, which made a datagram endpoint
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        reply = self.handler.reply(data)
        if reply and self.transport is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        # e.g. ICMP port unreachable for a reply to a client that went away: nothing to do
        log.debug("resolver: %s", exc)


class _TcpDns:
    """DNS over TCP (RFC 7766 framing), bounded in connections, messages and time."""

    def __init__(self, handler: _Handler) -> None:
        self.handler = handler
        self.writers: set[asyncio.StreamWriter] = set()
        self.messages = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.writers) >= MAX_TCP_CONNECTIONS:
            writer.close()
            return
        self.writers.add(writer)
        try:
            for _ in range(MAX_TCP_QUERIES):
                reply = await self._one(reader)
                if not reply:
                    break
                writer.write(len(reply).to_bytes(2, "big") + reply)
                await asyncio.wait_for(writer.drain(), TCP_IDLE_S)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went quiet or away: nothing to answer
        finally:
            self.writers.discard(writer)
            writer.close()

    async def _one(self, reader: asyncio.StreamReader) -> bytes:
        head = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_S)
        length = int.from_bytes(head, "big")
        self.messages += 1
        if length > MAX_QUERY_BYTES or length == 0:
            self.handler.received += 1
            self.handler.note(DnsQuery("", MALFORMED, False))
            return b""
        return self.handler.reply(await asyncio.wait_for(reader.readexactly(length), TCP_IDLE_S))

    def close(self) -> None:
        for writer in list(self.writers):
            writer.close()


class Resolver:
    """A running resolver; `close()` stops it and closes its sockets."""

    def __init__(
        self,
        transport: asyncio.DatagramTransport,
        handler: _Handler,
        tcp: tuple[asyncio.Server, _TcpDns] | None = None,
    ) -> None:
        self._transport = transport
        self._handler = handler
        self._tcp = tcp
        self.address: tuple[str, int] = transport.get_extra_info("sockname")[:2]

    @property
    def received(self) -> int:
        """Messages received so far over UDP and TCP (answered, refused, malformed or dropped)."""
        return self._handler.received

    @property
    def received_tcp(self) -> int:
        """Of which over TCP."""
        return 0 if self._tcp is None else self._tcp[1].messages

    @property
    def closed(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self._transport.close()
        if self._tcp is not None:
            server, connections = self._tcp
            server.close()
            connections.close()


async def start_resolver(
    sock: socket.socket,
    names: Mapping[str, str],
    record: Record,
    *,
    tcp: socket.socket | None = None,
) -> Resolver:
    """Serve DNS on `sock` (a bound UDP socket, in whatever namespace it was made in) and, if
    given, on `tcp` (a bound TCP socket there, listened on here): `names` (name -> IPv4 address)
    are answered, every query is passed to `record`."""
    if sock.type != socket.SOCK_DGRAM:
        raise SandboxError(
            "the sandbox resolver needs a UDP socket", "bind a SOCK_DGRAM socket and pass it"
        )
    if tcp is not None and tcp.type != socket.SOCK_STREAM:
        raise SandboxError(
            "the sandbox resolver's `tcp` must be a TCP socket",
            "bind a SOCK_STREAM socket on the same address and pass it",
        )
    try:
        checked = check_names(names)
    except ValueError as exc:
        raise SandboxError(
            f"the sandbox resolver cannot answer {exc}",
            "declared names resolve to IPv4 addresses inside the namespace (127.0.0.1)",
        ) from None
    handler = _Handler(checked, record)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _DnsProtocol(handler), sock=sock)
    served = None
    if tcp is not None:
        connections = _TcpDns(handler)
        try:
            server = await asyncio.start_server(connections.serve, sock=tcp)
        except OSError as exc:
            transport.close()
            raise SandboxError(
                f"the sandbox resolver cannot listen on TCP: {exc}",
                "pass a bound TCP socket nothing else listens on",
            ) from exc
        served = (server, connections)
    return Resolver(transport, handler, served)


async def start_in_namespace(
    make_socket: Callable[[int, int], socket.socket],
    names: Mapping[str, str],
    record: Record,
    *,
    port: int = 53,
) -> Resolver:
    """The resolver of one service namespace: UDP and TCP on its ``127.0.0.1:port``, the sockets
    made by `make_socket(family, type)` (`NetNamespace.socket`: made inside the namespace)."""
    made: list[socket.socket] = []
    try:
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            sock = make_socket(socket.AF_INET, kind)
            made.append(sock)
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
    except OSError as exc:
        for sock in made:
            sock.close()
        raise SandboxError(
            f"the sandbox resolver cannot bind 127.0.0.1:{port} in the namespace: {exc}",
            "nothing else may listen on the namespace's port 53 (and binding it needs root)",
        ) from None
    try:
        return await start_resolver(made[0], names, record, tcp=made[1])
    except BaseException:
        for sock in made:
            sock.close()
        raise
