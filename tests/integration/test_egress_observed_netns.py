"""``egress.observed`` end to end with real pieces: a namespace this test creates (loopback and a
veth pair whose both ends stay inside it — no link to the host), an nftables ruleset counting
every rejected destination in a dynamic set (TCP rejected with a reset: one connect, one packet —
an ICMP reject makes a connect in progress send its SYN again), read back with ``nft -j`` (the
test's stand-in for the isolated backend's `firewall.read_drops`), the sandbox resolver on the
namespace's 127.0.0.1:53, and a "service" process started with ``ip netns exec`` that calls an
undeclared address and looks up an undeclared name. Its case fails listing both attempts; the
probe's own attempt from the same namespace is not counted; a service that only uses declared
names passes.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from trustproof.probes.base import Plan
from trustproof.probes.egress_observed import ObservedEgressProbe
from trustproof.probes.model import CaseResult, judge
from trustproof.report import render
from trustproof.sandbox.egress_events import EgressLedger
from trustproof.sandbox.resolver import start_resolver
from trustproof.spec.load import load_spec
from trustproof.suite.runner import SuiteRun
from trustproof.view import EgressAttempt, EgressEvent
from trustproof.view.fake import FakeView

pytestmark = pytest.mark.integration

SHOP = load_spec(Path(__file__).resolve().parents[2] / "examples" / "shop" / "trustproof.yaml")
NAMES = {"payments.tpt.example": "127.0.0.1"}
CLONE_NEWNET = 0x40000000
RULES = """
table inet tpt {
  set drops {
    type ipv4_addr . inet_proto . inet_service
    flags dynamic
    counter
  }
  chain output {
    type filter hook output priority 0; policy accept;
    oif "lo" accept
    meta l4proto tcp add @drops { ip daddr . meta l4proto . th dport } reject with tcp reset
    meta l4proto udp add @drops { ip daddr . meta l4proto . th dport } reject
    reject
  }
}
"""
# What "orders" does once started: one declared look-up, one undeclared, three connects to an
# undeclared address (each refused at once by the reject rule).
ORDERS = """
import socket
socket.getaddrinfo("payments.tpt.example", 443, socket.AF_INET)
try:
    socket.getaddrinfo("api.evil.example", 443, socket.AF_INET)
except socket.gaierror:
    pass
for _ in range(3):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("192.0.2.10", 443))
    except OSError:
        pass
    s.close()
"""
QUIET = 'import socket; socket.getaddrinfo("payments.tpt.example", 443, socket.AF_INET)'


@dataclass(frozen=True)
class Drop:
    proto: str
    address: str
    port: int | None
    packets: int


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces and nftables need root (this test creates them)"
    if not all(shutil.which(tool) for tool in ("ip", "nft")):
        return "needs iproute2 (`ip`) and nftables (`nft`)"
    return None


@pytest.fixture
def namespace() -> Iterator[str]:
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    name = f"tpt-{secrets.token_hex(4)}"
    etc = Path("/etc/netns") / name

    def ip(*args: str) -> None:
        subprocess.run(["ip", "-n", name, *args], check=True, timeout=10)

    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        ip("link", "set", "lo", "up")
        ip("link", "add", "tp0", "type", "veth", "peer", "name", "tp1")  # both ends in here
        ip("link", "set", "tp0", "up")
        ip("link", "set", "tp1", "up")
        ip("addr", "add", "10.99.0.1/24", "dev", "tp0")
        ip("route", "add", "default", "dev", "tp0")
        subprocess.run(
            ["ip", "netns", "exec", name, "nft", "-f", "-"], input=RULES, text=True, check=True
        )
        etc.mkdir(parents=True)
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        yield name
    finally:
        shutil.rmtree(etc, ignore_errors=True)
        subprocess.run(["ip", "netns", "delete", name], check=False, timeout=10)


def read_drops(namespace: str) -> tuple[Drop, ...]:
    out = subprocess.run(
        ["ip", "netns", "exec", namespace, "nft", "-j", "list", "set", "inet", "tpt", "drops"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    found = []
    for item in json.loads(out)["nftables"]:
        for elem in item.get("set", {}).get("elem", []):
            address, proto, port = elem["elem"]["val"]["concat"]
            found.append(Drop(proto, address, port, elem["elem"]["counter"]["packets"]))
    return tuple(found)


def socket_in(namespace: str, kind: int) -> socket.socket:
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


class LedgerView(FakeView):
    """The fake for everything else; what the services tried comes from the real ledger."""

    ledger: EgressLedger

    def egress_events(self) -> tuple[EgressEvent, ...]:
        return self.ledger.events()


def run_service(namespace: str, ledger: EgressLedger, service: str, script: str) -> None:
    """Start the namespace's resolver, run `service`'s `script` in the namespace to the end,
    then make the egress probe's own attempt from there (noted in the ledger)."""

    async def main() -> None:
        sock = socket_in(namespace, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 53))
        resolver = await start_resolver(sock, NAMES, ledger.recorder(service))
        try:
            process = await asyncio.create_subprocess_exec(
                "ip", "netns", "exec", namespace, sys.executable, "-c", script
            )
            assert await asyncio.wait_for(process.wait(), 60) == 0
            # the egress probe's own attempt from the same namespace: noted, not the service's
            probe = socket_in(namespace, socket.SOCK_STREAM)
            with probe, pytest.raises(ConnectionRefusedError):
                probe.connect(("192.0.2.10", 443))
            ledger.note_own(service, EgressAttempt("tcp", "192.0.2.10", 443))
        finally:
            resolver.close()

    asyncio.run(main())


def verdicts(ledger: EgressLedger) -> tuple[dict[str, CaseResult], str]:
    """Every service's ``egress.observed`` case judged, and the Markdown report of the run."""
    view = LedgerView(SHOP)
    view.ledger = ledger
    probe = ObservedEgressProbe()
    cases = list(probe.cases(Plan.of(SHOP, backend="isolated")))

    async def main() -> dict[str, CaseResult]:
        found = {}
        for case in cases:
            result = await probe.run(case, view)
            found[case.boundary] = CaseResult(case, result, judge(case, result))
        return found

    found = asyncio.run(main())
    run = SuiteRun(
        tuple(found.values()),
        "2030-01-01T12:00:00+00:00",
        1.0,
        counts=Counter(item.verdict for item in found.values()),
        egress_events=ledger.events(),
    )
    return found, render(run.to_results(), "md")


def test_a_service_calling_an_undeclared_address_fails_with_the_attempts(namespace: str) -> None:
    ledger = EgressLedger(read_drops=lambda: {"orders": read_drops(namespace)})
    run_service(namespace, ledger, "orders", ORDERS)
    found, md = verdicts(ledger)
    orders = found["orders"]
    assert orders.verdict == "over-permission"
    detail = orders.result.evidence.detail
    assert "orders tried 192.0.2.10:443 (tcp) 3 times — blocked" in detail  # 4 drops, 1 ours
    assert "orders looked up api.evil.example" in detail
    assert "payments.tpt.example" not in detail  # declared: answered, not an attempt
    assert found["payments"].verdict == "pass"
    assert "- orders tried 192.0.2.10:443 (tcp) 3 times — blocked" in md
    tcp = [d for d in read_drops(namespace) if d.proto == "tcp"]
    assert [(d.address, d.port, d.packets) for d in tcp] == [("192.0.2.10", 443, 4)]


def test_a_service_using_declared_names_only_passes(namespace: str) -> None:
    ledger = EgressLedger(read_drops=lambda: {"orders": read_drops(namespace)})
    run_service(namespace, ledger, "orders", QUIET)
    found, md = verdicts(ledger)
    assert {name: item.verdict for name, item in found.items()} == dict.fromkeys(
        SHOP.services, "pass"
    )
    assert "None: no service tried" in md
