"""The sandbox resolver for real: on host loopback answering dnspython, and inside a network
namespace this test creates (no link to anything) answering glibc's `getent hosts` through
``/etc/netns/<ns>/resolv.conf`` — a declared name resolves, an undeclared one does not and is
recorded, and with the resolver gone the declared name does not resolve either (the answer was
ours). Loopback and the test's own namespace only."""

from __future__ import annotations

import asyncio
import ctypes
import os
import secrets
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.rcode
import pytest

from trustproof.errors import SandboxError
from trustproof.sandbox.dns_answer import DnsQuery
from trustproof.sandbox.egress_events import EgressLedger
from trustproof.sandbox.resolver import start_in_namespace, start_resolver

pytestmark = pytest.mark.integration

NAMES = {"payments.tpt.example": "127.0.0.1"}
CLONE_NEWNET = 0x40000000


def test_resolver_on_loopback_answers_declared_names_and_records_the_rest() -> None:
    seen: list[DnsQuery] = []
    ledger = EgressLedger()
    record = ledger.recorder("orders")

    def both(query: DnsQuery) -> None:
        seen.append(query)
        record(query)

    async def main() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        resolver = await start_resolver(sock, NAMES, both)
        host, port = resolver.address
        try:

            async def ask(name: str, rdtype: str = "A") -> dns.message.Message:
                query = dns.message.make_query(name, rdtype)
                return await dns.asyncquery.udp(query, host, port=port, timeout=2)

            declared = await ask("Payments.TPT.example.")
            assert declared.rcode() == dns.rcode.NOERROR
            assert [r.address for rrset in declared.answer for r in rrset] == ["127.0.0.1"]
            aaaa = await ask("payments.tpt.example", "AAAA")
            assert aaaa.rcode() == dns.rcode.NOERROR
            assert aaaa.answer == []
            refused = await ask("api.evil.example")
            assert refused.rcode() == dns.rcode.REFUSED
            # a broken packet gets FORMERR and the resolver keeps serving
            client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            client.setblocking(False)
            try:
                loop = asyncio.get_running_loop()
                await loop.sock_sendto(
                    client, b"\x12\x34\x01\x00\x00\x01" + b"\xff" * 10, (host, port)
                )
                reply = await asyncio.wait_for(loop.sock_recv(client, 512), 2)
            finally:
                client.close()
            assert dns.message.from_wire(reply).rcode() == dns.rcode.FORMERR
            again = await ask("payments.tpt.example")
            assert again.rcode() == dns.rcode.NOERROR
            assert resolver.received == 5
        finally:
            resolver.close()
        assert resolver.closed

    asyncio.run(main())
    assert seen[:3] == [
        DnsQuery("payments.tpt.example", "A", True),
        DnsQuery("payments.tpt.example", "AAAA", True),
        DnsQuery("api.evil.example", "A", False),
    ]
    assert ledger.refused() == {"orders": {"api.evil.example": 1, "(malformed query)": 1}}


# -- inside a network namespace ----------------------------------------------------------------


def _why_no_namespaces() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root (this test creates one)"
    if shutil.which("ip") is None or shutil.which("getent") is None:
        return "needs iproute2 (`ip`) and `getent`"
    return None


@pytest.fixture
def namespace() -> Iterator[str]:
    reason = _why_no_namespaces()
    if reason:
        pytest.skip(reason)
    name = f"tpt-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    etc = Path("/etc/netns") / name
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, timeout=10)
        etc.mkdir(parents=True)
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        yield name
    finally:
        shutil.rmtree(etc, ignore_errors=True)
        subprocess.run(["ip", "netns", "delete", name], check=False, timeout=10)


def socket_in(namespace: str, kind: int = socket.SOCK_DGRAM) -> socket.socket:
    """A socket made inside `namespace` by a thread that entered it (the test's own thread
    never changes namespace); the socket stays there."""
    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def enter_and_make() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns failed")
            finally:
                os.close(fd)
            made.append(socket.socket(socket.AF_INET, kind))
        except BaseException as exc:
            failed.append(exc)

    worker = threading.Thread(target=enter_and_make)
    worker.start()
    worker.join()
    if failed:
        raise failed[0]
    return made[0]


async def getent(namespace: str, name: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "ip",
        "netns",
        "exec",
        namespace,
        "getent",
        "hosts",
        name,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode or 0, out.decode()


def test_resolver_in_a_namespace_answers_glibc_for_declared_names_only(namespace: str) -> None:
    ledger = EgressLedger()

    async def main() -> None:
        sock = socket_in(namespace)
        sock.bind(("127.0.0.1", 53))  # port 53 of the namespace's own loopback
        resolver = await start_resolver(sock, NAMES, ledger.recorder("orders"))
        try:
            code, out = await getent(namespace, "payments.tpt.example")
            assert (code, out.split()) == (0, ["127.0.0.1", "payments.tpt.example"])
            code, out = await getent(namespace, "api.evil.example")
            assert (code, out) == (2, "")  # not found
        finally:
            resolver.close()
        # the failing twin: without our resolver the declared name does not resolve at all
        code, out = await getent(namespace, "payments.tpt.example")
        assert (code, out) == (2, "")

    asyncio.run(main())
    refused = ledger.refused()["orders"]
    assert set(refused) == {"api.evil.example"}
    assert refused["api.evil.example"] >= 1  # glibc asks A (and AAAA), maybe twice each


def test_resolver_refuses_to_start_on_what_it_cannot_serve() -> None:
    async def main() -> None:
        with (
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
            pytest.raises(SandboxError, match="needs a UDP socket"),
        ):
            await start_resolver(tcp, NAMES, print)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            with pytest.raises(SandboxError, match=r"payments.tpt.example: '::1' is not an IPv4"):
                await start_resolver(udp, {"payments.tpt.example": "::1"}, print)

    asyncio.run(main())


def udp_and_tcp_on_one_port() -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on the same loopback port, as a resolver listens; a port free for
    UDP may be taken for TCP by another test: try another (bounded)."""
    for _ in range(20):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            tcp.bind(("127.0.0.1", udp.getsockname()[1]))
        except OSError:
            udp.close()
            tcp.close()
            continue
        return udp, tcp
    raise AssertionError("no loopback port free for both UDP and TCP in 20 tries")


def test_resolver_over_tcp_answers_and_stays_bounded() -> None:
    seen: list[DnsQuery] = []

    async def main() -> None:
        udp, tcp = udp_and_tcp_on_one_port()
        resolver = await start_resolver(udp, NAMES, seen.append, tcp=tcp)
        host, port = resolver.address
        try:
            query = dns.message.make_query("payments.tpt.example", "A")
            declared = await dns.asyncquery.tcp(query, host, port=port, timeout=2)
            assert [r.address for rrset in declared.answer for r in rrset] == ["127.0.0.1"]
            query = dns.message.make_query("api.evil.example", "A")
            refused = await dns.asyncquery.tcp(query, host, port=port, timeout=2)
            assert refused.rcode() == dns.rcode.REFUSED
            # a message longer than any query: recorded as malformed, the connection closed
            reader, writer = await asyncio.open_connection(host, port)
            writer.write((60000).to_bytes(2, "big") + b"x" * 100)
            assert await asyncio.wait_for(reader.read(), 2) == b""
            writer.close()
            assert (resolver.received, resolver.received_tcp) == (3, 3)
        finally:
            resolver.close()

    asyncio.run(main())
    assert seen == [
        DnsQuery("payments.tpt.example", "A", True),
        DnsQuery("api.evil.example", "A", False),
        DnsQuery("", "malformed", False),
    ]


def test_resolver_in_a_namespace_answers_glibc_over_tcp(namespace: str) -> None:
    (Path("/etc/netns") / namespace / "resolv.conf").write_text(
        "nameserver 127.0.0.1\noptions use-vc\n"
    )
    ledger = EgressLedger()

    async def main() -> None:
        resolver = await start_in_namespace(
            lambda family, kind: socket_in(namespace, kind), NAMES, ledger.recorder("orders")
        )
        # a second resolver on the same namespace's port 53: a clear error, nothing left open
        with pytest.raises(SandboxError, match=r"cannot bind 127.0.0.1:53 in the namespace"):
            await start_in_namespace(lambda family, kind: socket_in(namespace, kind), NAMES, print)
        try:
            code, out = await getent(namespace, "payments.tpt.example")
            assert (code, out.split()) == (0, ["127.0.0.1", "payments.tpt.example"])
            code, out = await getent(namespace, "api.evil.example")
            assert (code, out) == (2, "")
        finally:
            resolver.close()
        assert resolver.received >= 3
        assert resolver.received_tcp == resolver.received  # UDP was never asked

    asyncio.run(main())
    assert set(ledger.refused()["orders"]) == {"api.evil.example"}
