"""The sandbox-private network: one hub namespace with a bridge every service namespace has one
veth into, and a canary at documentation addresses that records whatever reaches it.

    hub = Hub(NetNamespace.create("tp-1a2b3c4d-hub"))
    hub.build()                          # bridge br0 10.77.0.1/16, 192.0.2.10, 198.51.100.10
    hub.attach([orders_ns, payments_ns]) # eth0 10.77.0.2/16, 10.77.0.3/16, default via hub
    await hub.start_canary()             # TCP 80/443, UDP 53/123 on both addresses
    hub.hits()                           # -> (CanaryHit("tcp", "192.0.2.10", 443, ...), ...)

Nothing here is attached to the host's network namespace: each veth is created inside the hub
with its other end created directly inside the service namespace.

The documentation addresses sit on the hub's bridge rather than on a ``dummy`` interface: some
kernels (this project's CI machines among them) are built without the dummy driver, and an
address on any interface of the hub is delivered locally the same way. With the service
namespaces' firewall in place nothing ever reaches the canary; without it (the tests' failing
twin) a service's connection to 192.0.2.10:443 does, and the canary proves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from trustproof.sandbox.netns import NetNamespace, run_ip

SUBNET = ipaddress.ip_network("10.77.0.0/16")
HUB_ADDRESS = SUBNET.network_address + 1
CANARY_ADDRESSES = ("192.0.2.10", "198.51.100.10")
CANARY_TCP_PORTS = (80, 443)
CANARY_UDP_PORTS = (53, 123)
BRIDGE = "br0"
SERVICE_LINK = "eth0"


def service_address(index: int) -> str:
    """The address of the `index`-th service namespace (0-based) on the hub: 10.77.0.2, ..."""
    address = HUB_ADDRESS + 1 + index
    if address not in SUBNET or address == SUBNET.broadcast_address:
        raise ValueError(f"no address left on {SUBNET} for service #{index}")
    return str(address)


def hub_commands() -> str:
    """The ``ip -batch`` input that builds the hub's bridge and canary addresses."""
    lines = [
        "link set lo up",
        f"link add {BRIDGE} type bridge",
        f"addr add {HUB_ADDRESS}/{SUBNET.prefixlen} dev {BRIDGE}",
        *(f"addr add {address}/32 dev {BRIDGE}" for address in CANARY_ADDRESSES),
        f"link set {BRIDGE} up",
    ]
    return "\n".join(lines) + "\n"


def veth_commands(namespaces: Sequence[str]) -> str:
    """The hub's ``ip -batch`` input adding one veth per service namespace (hub end ``v<i>`` on
    the bridge, service end ``eth0`` created inside the service namespace)."""
    lines = []
    for index, ns in enumerate(namespaces):
        hub_end = f"v{index}"
        lines += [
            f"link add {hub_end} type veth peer name {SERVICE_LINK} netns {ns}",
            f"link set {hub_end} master {BRIDGE}",
            f"link set {hub_end} up",
        ]
    return "\n".join(lines) + "\n"


def service_commands(index: int) -> str:
    """A service namespace's ``ip -batch`` input: its hub address and the default route."""
    return (
        "link set lo up\n"
        f"addr add {service_address(index)}/{SUBNET.prefixlen} dev {SERVICE_LINK}\n"
        f"link set {SERVICE_LINK} up\n"
        f"route add default via {HUB_ADDRESS}\n"
    )


@dataclass(frozen=True)
class CanaryHit:
    """Something that reached the canary: it should never happen while the firewall holds."""

    proto: str  # "tcp" | "udp"
    address: str
    port: int
    source: str


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, hub: Hub, address: str, port: int) -> None:
        self.hub, self.address, self.port = hub, address, port

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.hub.record(CanaryHit("udp", self.address, self.port, str(addr[0])))


class Hub:
    def __init__(self, ns: NetNamespace) -> None:
        self.ns = ns
        self._hits: list[CanaryHit] = []
        self._servers: list[asyncio.Server] = []
        self._transports: list[asyncio.BaseTransport] = []

    def build(self) -> None:
        run_ip(["-n", self.ns.name, "-batch", "-"], stdin=hub_commands(), what="cannot build hub")

    def attach(self, namespaces: Sequence[NetNamespace]) -> dict[str, str]:
        """One veth per namespace into the hub; namespace name -> its address on the hub."""
        names = [ns.name for ns in namespaces]
        if not names:
            return {}
        run_ip(
            ["-n", self.ns.name, "-batch", "-"],
            stdin=veth_commands(names),
            what="cannot link the service namespaces to the hub",
        )
        with ThreadPoolExecutor(max_workers=8) as pool:  # one `ip` each, at once
            list(
                pool.map(
                    lambda item: run_ip(
                        ["-n", item[1], "-batch", "-"],
                        stdin=service_commands(item[0]),
                        what=f"cannot address {item[1]}",
                    ),
                    enumerate(names),
                )
            )
        return {name: service_address(index) for index, name in enumerate(names)}

    def record(self, hit: CanaryHit) -> None:
        self._hits.append(hit)

    def hits(self) -> tuple[CanaryHit, ...]:
        return tuple(self._hits)

    async def start_canary(self) -> None:
        loop = asyncio.get_running_loop()
        for address in CANARY_ADDRESSES:
            for port in CANARY_TCP_PORTS:
                sock = self.ns.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((address, port))
                sock.listen(64)
                sock.setblocking(False)
                server = await asyncio.start_server(self._tcp(address, port), sock=sock)
                self._servers.append(server)
            for port in CANARY_UDP_PORTS:
                udp = self.ns.socket(socket.AF_INET, socket.SOCK_DGRAM)
                udp.bind((address, port))
                udp.setblocking(False)
                transport, _ = await loop.create_datagram_endpoint(
                    functools.partial(_Datagrams, self, address, port), sock=udp
                )
                self._transports.append(transport)

    def _tcp(
        self, address: str, port: int
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def arrived(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = writer.get_extra_info("peername") or ("?",)
            self.record(CanaryHit("tcp", address, port, str(peer[0])))
            writer.close()

        return arrived

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for transport in self._transports:
            transport.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        self._servers.clear()
        self._transports.clear()
