"""`trustproof.sandbox.egress_attempts` in real network namespaces the test creates itself.

Two namespaces, ``tpt-<rand>-a`` (where the attempts are made, like a service's) and
``tpt-<rand>-b`` (the far side, like the hub), joined by one veth pair; b holds the documentation
addresses 192.0.2.10 and 198.51.100.10 and whatever listens there: a TCP canary, a UDP echo, a
DNS resolver (one that answers everything, one that refuses), the real token service and a relay
to a real PostgreSQL. Nothing is attached to the host's network namespace (the relay's far end
is the host's loopback). Every attempt kind is shown getting through when the path is open (the
fooled case) and ``blocked`` once an nftables reject (or drop) rule is loaded in namespace a;
the servers that refuse show ``refused``. The egress probes then run on the same namespaces
through a minimal view: a canary that answers fails `egress.undeclared-tcp`, a reject passes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import secrets
import shutil
import socket
import subprocess
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import dns.message
import dns.rcode
import dns.rrset
import pytest

from trustproof.clock import ManualClock, SystemClock
from trustproof.datastores import ADMIN_ROLE, PostgresServer
from trustproof.fabric import TrustFabric
from trustproof.identity import CertificateAuthority, Svid
from trustproof.probes.base import Plan
from trustproof.probes.egress import PROBES
from trustproof.probes.model import Case, judge
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.egress_attempts import attempt
from trustproof.sandbox.view_egress import EgressClient
from trustproof.spec import Spec, load_spec
from trustproof.tls import client_context
from trustproof.view import EgressAttempt, EgressResult, SandboxView

pytestmark = pytest.mark.integration

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop" / "trustproof.yaml"
CLONE_NEWNET = 0x40000000
TCP_CANARY = ("192.0.2.10", 443)
UDP_CANARY = ("198.51.100.10", 123)
RESOLVER = ("198.51.100.10", 53)
TOKEN_SERVICE = ("192.0.2.10", 8443)
POSTGRES = ("192.0.2.10", 5432)
TIMEOUT = 1.0
STREAM, DATAGRAM = socket.SOCK_STREAM, socket.SOCK_DGRAM

REJECT = """
table inet tpt_egress {
  chain output {
    type filter hook output priority 0; policy accept;
    oif "lo" accept
    meta l4proto tcp reject with tcp reset
    reject
  }
}
"""
DROP = REJECT.replace("reject with tcp reset", "drop").replace("    reject\n", "    drop\n")


def why_not() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root (this machine's CI runs as root)"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (scripts/bootstrap.sh installs it)"
    return None


@dataclass(frozen=True)
class Netns:
    name: str

    def socket(self, family: int, kind: int) -> socket.socket:
        """A socket made in this namespace (a short-lived thread enters it with setns)."""
        made: list[socket.socket] = []
        failed: list[BaseException] = []

        def inside() -> None:
            libc = ctypes.CDLL(None, use_errno=True)
            try:
                fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
                try:
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        code = ctypes.get_errno()
                        raise OSError(code, os.strerror(code))
                finally:
                    os.close(fd)
                made.append(socket.socket(family, kind))
            except BaseException as exc:
                failed.append(exc)

        thread = threading.Thread(target=inside)
        thread.start()
        thread.join()
        if failed:
            raise failed[0]
        return made[0]

    def run(self, *command: str, stdin: str | None = None) -> None:
        subprocess.run(
            ["ip", "netns", "exec", self.name, *command],
            check=True,
            input=stdin,
            text=True,
            capture_output=True,
            timeout=10,
        )

    def firewall(self, ruleset: str) -> None:
        self.run("nft", "-f", "-", stdin="flush ruleset\n" + ruleset)

    def listening(self, address: tuple[str, int], kind: int = STREAM) -> socket.socket:
        sock = self.socket(socket.AF_INET, kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        if kind == socket.SOCK_STREAM:
            sock.listen(16)
        sock.setblocking(False)
        return sock


@dataclass(frozen=True)
class Pair:
    a: Netns  # where the attempts are made
    b: Netns  # the far side, holding the documentation addresses


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    reason = why_not()
    if reason:
        pytest.skip(reason)
    tag = secrets.token_hex(3)
    a, b = Netns(f"tpt-{tag}-a"), Netns(f"tpt-{tag}-b")
    veth_a, veth_b = f"tpa{tag}", f"tpb{tag}"
    try:
        ip("netns", "add", a.name)
        ip("netns", "add", b.name)
        # the veth is created inside a, its peer inside b: it never exists in the host namespace
        ip(
            "-n",
            a.name,
            "link",
            "add",
            veth_a,
            "type",
            "veth",
            "peer",
            "name",
            veth_b,
            "netns",
            b.name,
        )
        for ns, veth, address in ((a, veth_a, "10.199.0.1/24"), (b, veth_b, "10.199.0.2/24")):
            ip("-n", ns.name, "link", "set", "lo", "up")
            ip("-n", ns.name, "addr", "add", address, "dev", veth)
            ip("-n", ns.name, "link", "set", veth, "up")
        for documentation in ("192.0.2.10/32", "198.51.100.10/32"):
            ip("-n", b.name, "addr", "add", documentation, "dev", veth_b)
        for prefix in ("192.0.2.0/24", "198.51.100.0/24"):
            ip("-n", a.name, "route", "add", prefix, "via", "10.199.0.2")
        yield Pair(a, b)
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns.name], capture_output=True, check=False)


@pytest.fixture
def open_pair(pair: Pair) -> Pair:
    """The pair with no rule in namespace a (each test loads the rules it needs)."""
    pair.a.run("nft", "flush", "ruleset")
    return pair


def go(coroutine: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coroutine(), timeout=60))


async def attempt_in(pair: Pair, a: EgressAttempt, **kwargs: object) -> EgressResult:
    return await attempt(pair.a.socket, a, TIMEOUT, **kwargs)  # type: ignore[arg-type]


# -- tcp and udp --------------------------------------------------------------------------------


@asynccontextmanager
async def tcp_canary(pair: Pair) -> AsyncIterator[list[str]]:
    hits: list[str] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hits.append(str(writer.get_extra_info("peername")[0]))
        writer.close()

    server = await asyncio.start_server(record, sock=pair.b.listening(TCP_CANARY))
    async with server:
        yield hits


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)


@asynccontextmanager
async def udp_server(
    pair: Pair, address: tuple[str, int], protocol: Callable[[], asyncio.DatagramProtocol]
) -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    sock = pair.b.listening(address, socket.SOCK_DGRAM)
    transport, _ = await loop.create_datagram_endpoint(protocol, sock=sock)
    try:
        yield
    finally:
        transport.close()


def test_tcp_connects_when_open_and_is_blocked_by_a_reject_rule(open_pair: Pair) -> None:
    tcp = EgressAttempt("tcp", *TCP_CANARY)

    async def main() -> None:
        async with tcp_canary(open_pair) as hits:
            opened = await attempt_in(open_pair, tcp)
            assert opened.outcome == "connected", opened
            await asyncio.sleep(0.05)
            assert hits == ["10.199.0.1"]  # the canary saw it come from namespace a
            open_pair.a.firewall(REJECT)
            rejected = await attempt_in(open_pair, tcp)
            assert rejected == EgressResult(
                "blocked", "ECONNREFUSED: connection refused (a reject rule, or nothing there)"
            )
            # a drop says nothing back: a timeout (the probe calls it inconclusive for TCP)
            open_pair.a.firewall(DROP)
            dropped = await attempt_in(open_pair, tcp)
            assert dropped.outcome == "timeout"
            assert hits == ["10.199.0.1"]

    go(main)


def test_udp_gets_an_answer_when_open_and_is_blocked_by_reject_or_drop(open_pair: Pair) -> None:
    udp = EgressAttempt("udp", *UDP_CANARY)

    async def main() -> None:
        async with udp_server(open_pair, UDP_CANARY, Echo):
            answered = await attempt_in(open_pair, udp)
            assert answered == EgressResult("answered", "48 bytes came back")  # the NTP request
            for ruleset in (REJECT, DROP):
                open_pair.a.firewall(ruleset)
                blocked = await attempt_in(open_pair, udp)
                assert blocked.outcome == "blocked", blocked
                assert blocked.detail.startswith("EPERM")  # refused to leave namespace a

    go(main)


# -- dns ----------------------------------------------------------------------------------------


class Resolver(asyncio.DatagramProtocol):
    """Answers every ``A`` query with 192.0.2.10 (`leaky`), or refuses every query."""

    def __init__(self, leaky: bool) -> None:
        self.leaky = leaky
        self.names: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        self.names.append(query.question[0].name.to_text())
        response = dns.message.make_response(query)
        if self.leaky:
            name = query.question[0].name.to_text()
            response.answer.append(dns.rrset.from_text(name, 60, "IN", "A", "192.0.2.10"))
        else:
            response.set_rcode(dns.rcode.REFUSED)
        self.transport.sendto(response.to_wire(), addr)


def test_dns_answered_by_a_forwarding_resolver_refused_by_ours_blocked_by_a_rule(
    open_pair: Pair,
) -> None:
    query = EgressAttempt("dns", *RESOLVER, name="example.com")

    async def main() -> None:
        leaky = Resolver(leaky=True)
        async with udp_server(open_pair, RESOLVER, lambda: leaky):
            answered = await attempt_in(open_pair, query)
            assert answered == EgressResult(
                "answered", "example.com resolved: NOERROR (192.0.2.10)"
            )
        assert leaky.names == ["example.com."]
        async with udp_server(open_pair, RESOLVER, lambda: Resolver(leaky=False)):
            refused = await attempt_in(open_pair, query)
            assert refused == EgressResult("refused", "example.com: REFUSED")
            open_pair.a.firewall(REJECT)
            blocked = await attempt_in(open_pair, query)
            assert blocked.outcome == "blocked", blocked

    go(main)


# -- https: the real token service's admin API --------------------------------------------------


def test_admin_mint_with_the_admin_identity_connects_with_a_workloads_is_refused(
    open_pair: Pair,
) -> None:
    mint = EgressAttempt("http", *TOKEN_SERVICE, name="orders", path="/admin/tokens")

    async def main() -> None:
        clock = ManualClock(datetime.now(UTC))  # OpenSSL checks dates with the real clock
        sock = open_pair.b.listening(TOKEN_SERVICE)
        fabric = await TrustFabric.start(load_spec(SHOP), clock=clock, sock=sock)
        try:
            bundle = fabric.ca.bundle_pem()
            admin = client_context(bundle, fabric.admin)
            workload = client_context(bundle, fabric.issue("orders"))
            minted = await attempt_in(open_pair, mint, tls=admin)
            assert minted == EgressResult("connected", "HTTP 200: the admin API answered (minted)")
            assert "eyJ" not in minted.detail  # the token is never read into the detail
            refused = await attempt_in(open_pair, mint, tls=workload)
            assert refused == EgressResult("refused", "HTTP 403 access_denied")
            # a certificate from a CA the token service does not trust: refused by TLS itself
            stranger = CertificateAuthority(fabric.ca.trust_domain, clock)
            foreign = client_context(bundle, stranger.issue("orders", timedelta(minutes=5)))
            handshake = await attempt_in(open_pair, mint, tls=foreign)
            assert handshake.outcome == "refused", handshake
            assert "TLS" in handshake.detail, handshake
            open_pair.a.firewall(REJECT)
            blocked = await attempt_in(open_pair, mint, tls=admin)
            assert blocked.outcome == "blocked", blocked
        finally:
            await fabric.close()

    go(main)


def test_the_live_views_client_presents_the_services_own_svid_from_its_namespace(
    open_pair: Pair,
) -> None:
    """`EgressClient` (behind `LiveView.egress_attempt`): the namespace the sandbox has for the
    service, the service's own SVID, the token service's address from its URL; a service with
    no namespace is an error, never a pass."""

    async def main() -> None:
        clock = ManualClock(datetime.now(UTC))
        sock = open_pair.b.listening(TOKEN_SERVICE)
        fabric = await TrustFabric.start(load_spec(SHOP), clock=clock, sock=sock)
        try:
            sandbox = SimpleNamespace(
                fabric=fabric, backend_kind="isolated", namespaces={"orders": open_pair.a}
            )
            client = EgressClient(
                cast(Sandbox, sandbox), fabric.issue, timeout=TIMEOUT, udp_timeout=TIMEOUT
            )
            assert client.backend_kind() == "isolated"
            host, port = client.token_service_address()
            assert (host, port) == TOKEN_SERVICE
            mint = EgressAttempt("http", host, port, name="orders", path="/admin/tokens")
            refused = await client.attempt("orders", mint)
            assert refused == EgressResult("refused", "HTTP 403 access_denied")
            assert await client.attempt("payments", mint) == EgressResult("error", "not isolated")
        finally:
            await fabric.close()
        local = EgressClient(cast(Sandbox, SimpleNamespace(fabric=None)), fabric.issue)
        assert local.backend_kind() == "local"

    go(main)


@dataclass(frozen=True)
class Hit:  # what the isolated backend's canary records (sandbox.hub.CanaryHit)
    proto: str
    address: str
    port: int
    source: str


class SilentCanary(asyncio.DatagramProtocol):
    """Records every datagram and never answers, like the hub's canary."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.hits.append(Hit("udp", UDP_CANARY[0], UDP_CANARY[1], addr[0]))


def no_cert(name: str) -> Svid:
    raise AssertionError(f"a UDP attempt needs no certificate ({name})")


def test_a_datagram_the_silent_canary_received_is_no_drop(open_pair: Pair) -> None:
    """The hub's canary never answers: a UDP timeout alone would pass a missing firewall rule,
    so the live view's client reads what the canary received from the service meanwhile."""
    udp = EgressAttempt("udp", *UDP_CANARY)

    async def main() -> None:
        canary = SilentCanary()
        network = SimpleNamespace(
            hub=SimpleNamespace(hits=lambda: tuple(canary.hits)),
            addresses={"orders": "10.199.0.1", "payments": "10.199.0.9"},
        )
        sandbox = SimpleNamespace(
            backend_kind="isolated",
            namespaces={"orders": open_pair.a, "payments": open_pair.a},
            network=network,
        )
        client = EgressClient(cast(Sandbox, sandbox), no_cert, timeout=TIMEOUT, udp_timeout=TIMEOUT)
        async with udp_server(open_pair, UDP_CANARY, lambda: canary):
            assert (await attempt_in(open_pair, udp)).outcome == "timeout"  # silence alone
            got = await client.attempt("orders", udp)
            assert got == EgressResult(
                "answered", "the sandbox's canary at 198.51.100.10:123 received it"
            )
            # a hit from another address is not this service's
            assert (await client.attempt("payments", udp)).outcome == "timeout"
            assert client.hub_address("orders") == "10.199.0.1"
            open_pair.a.firewall(REJECT)
            assert (await client.attempt("orders", udp)).outcome == "blocked"
            assert len(canary.hits) == 3  # the rejected one never arrived

    go(main)


# -- postgresql: a real server, through a relay in namespace b -----------------------------------


@asynccontextmanager
async def relay(pair: Pair, listen: tuple[str, int], to: tuple[str, int]) -> AsyncIterator[None]:
    """Forward connections made to `listen` (in namespace b) to `to` on the host's loopback."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            far_reader, far_writer = await asyncio.open_connection(*to)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, far_writer), pipe(far_reader, writer))

    server = await asyncio.start_server(forward, sock=pair.b.listening(listen))
    async with server:
        yield


@pytest.fixture(scope="module")
def shopdb(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Spec, CertificateAuthority, PostgresServer]]:
    if why_not():
        pytest.skip(why_not() or "")
    spec = load_spec(SHOP)
    ca = CertificateAuthority(spec.trust_domain, SystemClock())
    server = PostgresServer(spec, "shopdb", ca, tmp_path_factory.mktemp("egress-pg") / "run")
    try:
        server.start()
        yield spec, ca, server
    finally:
        server.stop()


def test_postgres_as_its_own_role_connects_as_another_is_refused(
    open_pair: Pair, shopdb: tuple[Spec, CertificateAuthority, PostgresServer]
) -> None:
    _, ca, server = shopdb
    assert server.port is not None
    tls = client_context(ca.bundle_pem(), ca.issue("orders", timedelta(minutes=5)))

    def login(role: str) -> EgressAttempt:
        return EgressAttempt("postgres", *POSTGRES, name="shop", role=role)

    async def main() -> None:
        async with relay(open_pair, POSTGRES, (server.host, server.port or 0)):
            own = await attempt_in(open_pair, login("orders"), tls=tls)
            assert own == EgressResult("connected", "logged in as role orders (AuthenticationOk)")
            other = await attempt_in(open_pair, login("payments"), tls=tls)
            assert other.outcome == "refused", other
            assert other.detail.startswith("28000: certificate authentication failed"), other
            admin = await attempt_in(open_pair, login(ADMIN_ROLE), tls=tls)
            assert admin.outcome == "refused", admin
            assert admin.detail.startswith("28000"), admin
            stranger = CertificateAuthority(ca.trust_domain, SystemClock())
            untrusted = stranger.issue("orders", timedelta(minutes=5))
            foreign = client_context(ca.bundle_pem(), untrusted)
            handshake = await attempt_in(open_pair, login("orders"), tls=foreign)
            assert handshake.outcome == "refused", handshake  # by TLS, before any login
            open_pair.a.firewall(REJECT)
            blocked = await attempt_in(open_pair, login("payments"), tls=tls)
            assert blocked.outcome == "blocked", blocked

    go(main)


# -- the probes on real namespaces ---------------------------------------------------------------


@dataclass
class NamespaceView:
    """What the egress probes use of a `SandboxView`, over namespace a (every service's)."""

    spec: Spec
    ns: Netns

    def backend_kind(self) -> str:
        return "isolated"

    async def egress_attempt(self, service: str, a: EgressAttempt) -> EgressResult:
        return await attempt(self.ns.socket, a, TIMEOUT)


def run_probe(pair: Pair, probe_id: str) -> str:
    spec = load_spec(SHOP)
    (probe,) = [p for p in PROBES if p.id == probe_id]
    case: Case = next(iter(probe.cases(Plan.of(spec, backend="isolated"))))
    view = cast(SandboxView, NamespaceView(spec, pair.a))

    async def main() -> str:
        return judge(case, await probe.run(case, view))

    return asyncio.run(main())


def test_the_undeclared_tcp_probe_fails_on_an_open_path_and_passes_behind_a_reject(
    open_pair: Pair,
) -> None:
    async def main() -> None:
        async with tcp_canary(open_pair):
            verdict = await asyncio.to_thread(run_probe, open_pair, "egress.undeclared-tcp")
            assert verdict == "over-permission"
            open_pair.a.firewall(REJECT)
            verdict = await asyncio.to_thread(run_probe, open_pair, "egress.undeclared-tcp")
            assert verdict == "pass"

    go(main)


def test_the_undeclared_udp_probe_fails_on_an_answer_and_passes_on_a_drop(open_pair: Pair) -> None:
    async def main() -> None:
        async with udp_server(open_pair, UDP_CANARY, Echo):
            verdict = await asyncio.to_thread(run_probe, open_pair, "egress.undeclared-udp")
            assert verdict == "over-permission"
            open_pair.a.firewall(DROP)
            verdict = await asyncio.to_thread(run_probe, open_pair, "egress.undeclared-udp")
            assert verdict == "pass"

    go(main)
