"""The TLS layer's own handshake time (`trustproof.tls.TimedSSLObject`), checked by handshakes in
memory (no sockets) on a fake clock: the time inside OpenSSL's handshake calls is counted, the
waits between the flights (the peer, a busy event loop) are not."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from trustproof import tls
from trustproof.clock import ManualClock
from trustproof.gateway.connections import TimedServer
from trustproof.identity import CertificateAuthority
from trustproof.tls import TimedSSLObject, client_context, handshake_us, server_context

WAIT_NS = 10**9  # between two flights, one second "passes" outside the TLS layer
STEP_NS = 1_000  # each clock read inside the TLS layer: one microsecond later


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority("shop.test", ManualClock(datetime.now(UTC)))


@pytest.fixture(scope="module")
def contexts(ca: CertificateAuthority) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    svid = ca.issue("orders", timedelta(minutes=5), ips=["127.0.0.1"])
    server = server_context(svid, ca.bundle_pem(), client_certs="optional")
    client = client_context(ca.bundle_pem(), ca.issue("storefront", timedelta(minutes=5)))
    return server, client


class FakeClock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        self.now += STEP_NS
        return self.now


def flights(
    server: ssl.SSLContext, client: ssl.SSLContext, clock: FakeClock, *, rounds: int = 20
) -> Iterator[tuple[ssl.SSLObject, ssl.SSLObject, dict[str, int]]]:
    """A handshake in memory, flight by flight, a long wait between flights; yields both ends
    and how many handshake calls each made."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client_side = client.wrap_bio(c_in, c_out, server_side=False)
    server_side = server.wrap_bio(s_in, s_out, server_side=True)
    calls = {"client": 0, "server": 0}
    done = {"client": False, "server": False}
    for _ in range(rounds):
        for name, side in (("client", client_side), ("server", server_side)):
            if done[name]:
                continue
            calls[name] += 1
            try:
                side.do_handshake()
                done[name] = True
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        clock.now += WAIT_NS  # the peer and the loop take their time: not the TLS layer's
        yield client_side, server_side, calls
        if all(done.values()):
            return


def test_the_handshake_time_is_the_tls_layers_own(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(tls.time, "perf_counter_ns", clock)
    server, client = contexts
    *_, (client_side, server_side, calls) = flights(server, client, clock)
    assert isinstance(client_side, TimedSSLObject)
    assert isinstance(server_side, TimedSSLObject)
    # one microsecond per handshake call, none of the seconds between the flights
    assert handshake_us(client_side) == calls["client"] * STEP_NS / 1000
    assert handshake_us(server_side) == calls["server"] * STEP_NS / 1000
    assert clock.now > WAIT_NS  # what an accept-to-ready figure would have counted


def test_an_unfinished_handshake_has_no_time(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server, client = contexts
    client_side, server_side, _ = next(flights(server, client, FakeClock()))
    assert handshake_us(client_side) is None
    assert handshake_us(server_side) is None


def test_a_context_made_elsewhere_is_not_timed() -> None:
    plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    side = plain.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_side=False)
    assert not isinstance(side, TimedSSLObject)
    assert handshake_us(side) is None
    assert handshake_us(None) is None


class _Transport:
    """What the gateway's server asks a TLS transport for: its ssl object."""

    def __init__(self, ssl_object: ssl.SSLObject) -> None:
        self.ssl_object = ssl_object

    def get_extra_info(self, name: str, default: object = None) -> object:
        return self.ssl_object if name == "ssl_object" else default


def test_the_gateways_handshake_stage_is_the_tls_layers_time_not_the_wait_since_accept(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reports' handshake stage: a connection accepted at 0 whose flights waited a second
    each for a busy loop took seconds from accept to ready, and microseconds in the TLS layer —
    the stage says the latter (it said the former, queueing included)."""
    clock = FakeClock()
    monkeypatch.setattr(tls.time, "perf_counter_ns", clock)  # the one `time` module: both clocks
    server, client = contexts

    async def main() -> tuple[float, int]:
        gateway_server = TimedServer(lambda request: None)
        handler = object()
        gateway_server.accepted[handler] = 0  # type: ignore[index]
        *_, (_, server_side, calls) = flights(server, client, clock)
        gateway_server.connection_made(handler, _Transport(server_side))  # type: ignore[arg-type]
        return gateway_server.handshake_us[handler], calls["server"]  # type: ignore[index]

    stage_us, calls = asyncio.run(main())
    assert stage_us == calls * STEP_NS / 1000
