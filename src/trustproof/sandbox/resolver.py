"""The sandbox resolver: a DNS server on a UDP socket the caller bound (inside a service's network
namespace, on ``127.0.0.1:53``), answering the declared names only and recording every query.

    sock = ns.socket(socket.AF_INET, socket.SOCK_DGRAM); sock.bind(("127.0.0.1", 53))
    resolver = await start_resolver(sock, {"payments.example": "127.0.0.1"}, ledger.dns(svc))
    ...
    resolver.close()

The decisions are `trustproof.sandbox.dns_answer.answer`'s (REFUSED for an undeclared name, and
why); this module owns the socket: one `asyncio.DatagramProtocol` on the event loop the sandbox
runs, one reply per query, nothing kept per client. `record` is called with the `DnsQuery` of
every query received, answered or not, in the event loop's thread. Nothing a client sends can
stop the resolver: a query that cannot be decided is logged (scrubbed) and dropped, a `record`
that raises is logged and the reply still goes out.

Only UDP: glibc and the common stub resolvers fall back to TCP when a reply is truncated, and these
replies (one question, at most one A record) never are. A service that opens TCP to port 53
finds nothing listening there (refused at once, inside its namespace).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Mapping
from typing import Any, cast

from trustproof.errors import SandboxError
from trustproof.sandbox.dns_answer import DnsQuery, answer, check_names
from trustproof.scrub import scrub

log = logging.getLogger(__name__)

Record = Callable[[DnsQuery], None]


class _DnsProtocol(asyncio.DatagramProtocol):
    def __init__(self, names: Mapping[str, str], record: Record) -> None:
        self.names = names
        self.record = record
        self.transport: asyncio.DatagramTransport | None = None
        self.received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's own datagram transports are not `DatagramTransport` subclasses on every
        # Python (3.11's selector one is not): trust the loop, which made a datagram endpoint
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received += 1
        try:
            reply, query = answer(data, self.names)
        except Exception as exc:  # a bug in the decision must not stop the resolver
            log.warning("resolver: query of %d bytes dropped: %s", len(data), scrub(repr(exc)))
            return
        try:
            self.record(query)
        except Exception as exc:
            log.warning("resolver: recording a query failed: %s", scrub(repr(exc)))
        if reply and self.transport is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        # e.g. ICMP port unreachable for a reply to a client that went away: nothing to do
        log.debug("resolver: %s", exc)


class Resolver:
    """A running resolver; `close()` stops it and closes its socket."""

    def __init__(self, transport: asyncio.DatagramTransport, protocol: _DnsProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self.address: tuple[str, int] = transport.get_extra_info("sockname")[:2]

    @property
    def received(self) -> int:
        """Datagrams received so far (answered, refused, malformed or dropped)."""
        return self._protocol.received

    @property
    def closed(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self._transport.close()


async def start_resolver(sock: socket.socket, names: Mapping[str, str], record: Record) -> Resolver:
    """Serve DNS on `sock` (a bound UDP socket, in whatever namespace it was made in): `names`
    (name -> IPv4 address) are answered, every query is passed to `record`."""
    if sock.type != socket.SOCK_DGRAM:
        raise SandboxError(
            "the sandbox resolver needs a UDP socket", "bind a SOCK_DGRAM socket and pass it"
        )
    try:
        checked = check_names(names)
    except ValueError as exc:
        raise SandboxError(
            f"the sandbox resolver cannot answer {exc}",
            "declared names resolve to IPv4 addresses inside the namespace (127.0.0.1)",
        ) from None
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _DnsProtocol(checked, record), sock=sock
    )
    return Resolver(transport, protocol)
