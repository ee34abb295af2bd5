"""Connection limits and header rules over real sockets on loopback: a gateway and an egress proxy
with short limits, a recording upstream, the real token service.

No timed assertions: each limit is configured short (well under a second) and the test only
asserts that the server closed the connection within a generous bound (`BOUND`), next to a
twin that completes in time and is served."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from trustproof.audit import MemorySink
from trustproof.clock import ManualClock
from trustproof.fabric import TrustFabric
from trustproof.gateway.config import gateway_config
from trustproof.gateway.egress import EgressProxy
from trustproof.gateway.listener import ConnectionLimits
from trustproof.gateway.pipeline import Pipeline
from trustproof.gateway.server import Gateway
from trustproof.identity import Svid
from trustproof.policy import CedarPolicyEngine
from trustproof.spec import load_spec
from trustproof.tls import client_context
from trustproof.tokenservice.server import bind_loopback

pytestmark = pytest.mark.integration
TD = "spiffe://shop.test"
BOUND = 15.0  # seconds: generous, for a loaded machine; the limits themselves are ~0.5 s
HITS = web.AppKey("hits", list[list[tuple[str, str]]])
SHORT = ConnectionLimits(
    handshake_timeout=0.5, header_timeout=0.5, idle_timeout=0.5, max_requests=3, max_connections=4
)


@dataclass
class World:
    fabric: TrustFabric
    gateway: Gateway
    egress: EgressProxy
    storefront: Svid
    hits: list[list[tuple[str, str]]]
    host: str
    port: int
    egress_port: int

    def tls(self) -> ssl.SSLContext:
        return client_context(self.fabric.ca.bundle_pem(), self.storefront)


async def record(request: web.Request) -> web.Response:
    raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]
    request.app[HITS].append(raw)
    return web.json_response({"method": request.method, "headers": raw})


@asynccontextmanager
async def world(shop_spec_path: Path, limits: ConnectionLimits) -> AsyncIterator[World]:
    spec = load_spec(shop_spec_path)
    clock = ManualClock(datetime.now(UTC))
    fabric = await TrustFabric.start(spec, clock=clock)
    app = web.Application()
    app[HITS] = hits = []
    app.router.add_route("*", "/{tail:.*}", record)
    upstream = web.AppRunner(app, access_log=None)
    await upstream.setup()
    upstream_sock = bind_loopback()
    await web.SockSite(upstream, upstream_sock).start()
    pipeline = Pipeline(
        gateway_config(spec, "orders"), fabric.validator(), CedarPolicyEngine.from_spec(spec), clock
    )
    gateway = Gateway(
        pipeline,
        upstream=f"http://127.0.0.1:{upstream_sock.getsockname()[1]}",
        sink=MemorySink(),
        ca=fabric.ca,
        svid=fabric.ca.issue("orders", fabric.certificate_ttl, ips=["127.0.0.1"]),
        clock=clock,
        limits=limits,
    )
    gateway_sock = bind_loopback()
    await gateway.start(gateway_sock)
    storefront = fabric.issue("storefront")
    egress = EgressProxy(
        caller="storefront",
        callee="orders",
        callee_url=gateway.url,
        token_url=f"{fabric.url}/token",
        audience=f"{TD}/orders",
        bundle_pem=fabric.ca.bundle_pem(),
        svid=storefront,
        clock=clock,
        limits=limits,
    )
    egress_sock = bind_loopback()
    await egress.start(egress_sock)
    host, port = gateway_sock.getsockname()[:2]
    try:
        yield World(
            fabric, gateway, egress, storefront, hits, host, port, egress_sock.getsockname()[1]
        )
    finally:
        await egress.close()
        await gateway.close()
        await upstream.cleanup()
        await fabric.close()


def run(
    shop_spec_path: Path,
    scenario: Callable[[World], Awaitable[None]],
    limits: ConnectionLimits = SHORT,
) -> None:
    async def main() -> None:
        async with world(shop_spec_path, limits) as w:
            await asyncio.wait_for(scenario(w), timeout=90)

    asyncio.run(main())


async def token_for(w: World) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{w.fabric.url}/token",
            ssl=w.tls(),
            data={"grant_type": "client_credentials", "audience": "orders"},
        ) as response,
    ):
        token: str = (await response.json())["access_token"]
        return token


async def closed_by_server(reader: asyncio.StreamReader) -> bytes | None:
    """Everything the server still sends, once it closes the connection within `BOUND`; None if
    it did not close in that time."""
    received = b""
    try:
        async with asyncio.timeout(BOUND):
            while chunk := await reader.read(65536):
                received += chunk
    except TimeoutError:
        return None
    except (ConnectionResetError, ssl.SSLError):
        pass
    return received


def request(target: str, token: str, *, version: str = " HTTP/1.1", extra: str = "") -> bytes:
    return (
        f"GET {target}{version}\r\nHost: orders\r\nAuthorization: Bearer {token}\r\n{extra}\r\n"
    ).encode()


# -- item 5: limits -------------------------------------------------------------------------------


def test_a_stalled_tls_handshake_is_closed_and_a_complete_one_is_served(
    shop_spec_path: Path,
) -> None:
    async def scenario(w: World) -> None:
        reader, writer = await asyncio.open_connection(w.host, w.port)
        writer.write(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03")  # 10 bytes of a ClientHello
        await writer.drain()
        assert await closed_by_server(reader) == b""
        writer.close()
        # The twin: a handshake that completes is served.
        token = await token_for(w)
        reader, writer = await asyncio.open_connection(w.host, w.port, ssl=w.tls())
        writer.write(request("/orders/1", token, extra="Connection: close\r\n"))
        answer = await closed_by_server(reader)
        assert answer is not None
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
        writer.close()

    run(shop_spec_path, scenario)


def test_many_stalled_handshakes_are_all_closed_and_forgotten(shop_spec_path: Path) -> None:
    """20 clients that each send 10 bytes of a ClientHello: every one is closed, and the
    gateway keeps no per-connection state for them (it used to keep their accept times)."""
    limits = ConnectionLimits(handshake_timeout=0.5, max_connections=64)

    async def scenario(w: World) -> None:
        stalled = [await asyncio.open_connection(w.host, w.port) for _ in range(20)]
        for _, writer in stalled:
            writer.write(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03")
        closed = await asyncio.gather(*(closed_by_server(reader) for reader, _ in stalled))
        assert closed == [b""] * 20
        for _, writer in stalled:
            writer.close()
        server = w.gateway._server
        assert server is not None
        for _ in range(50):  # bounded: the close reaches the server's bookkeeping soon after
            if not server.accepted:
                break
            await asyncio.sleep(0.1)
        assert server.accepted == {}

    run(shop_spec_path, scenario, limits)


@pytest.mark.parametrize("listener", ["gateway", "egress"])
def test_a_slowloris_head_is_closed_within_the_header_timeout(
    shop_spec_path: Path, listener: str
) -> None:
    """One header line every 0.2 s: each line is on time, the head as a whole is not. (Fewer
    lines than aiohttp's header-count limit, so only the deadline can end it.)"""
    limits = ConnectionLimits(header_timeout=0.5, idle_timeout=60.0, handshake_timeout=5.0)

    async def scenario(w: World) -> None:
        token = await token_for(w)
        if listener == "gateway":
            reader, writer = await asyncio.open_connection(w.host, w.port, ssl=w.tls())
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", w.egress_port)
        writer.write(b"GET /orders/1 HTTP/1.1\r\nHost: orders\r\n")
        closed = False
        for n in range(60):  # bounded: at most 12 s of dripping
            try:
                writer.write(f"X-Drip-{n}: {n}\r\n".encode())
                await writer.drain()
            except (ConnectionError, ssl.SSLError):
                closed = True
                break
            try:
                data = await asyncio.wait_for(reader.read(65536), 0.2)
            except TimeoutError:
                continue
            except (ConnectionError, ssl.SSLError):
                closed = True
                break
            assert data == b"", data[:200]  # never an answer to a head that never ended
            closed = True
            break
        writer.close()
        assert closed, "the server kept a dripping head open"
        assert w.hits == []
        # The twin: the same head sent at once is answered.
        if listener == "gateway":
            reader, writer = await asyncio.open_connection(w.host, w.port, ssl=w.tls())
            writer.write(request("/orders/1", token, extra="Connection: close\r\n"))
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", w.egress_port)
            writer.write(b"GET /orders/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = await closed_by_server(reader)
        assert answer is not None
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
        writer.close()

    run(shop_spec_path, scenario, limits)


def test_an_idle_keep_alive_connection_is_closed(shop_spec_path: Path) -> None:
    limits = ConnectionLimits(idle_timeout=0.5, header_timeout=30.0)

    async def scenario(w: World) -> None:
        token = await token_for(w)
        reader, writer = await asyncio.open_connection(w.host, w.port, ssl=w.tls())
        writer.write(request("/orders/1", token))
        answer = await closed_by_server(reader)  # kept alive, then closed for idling
        assert answer is not None
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
        assert b"Connection: close" not in answer  # it was kept alive: the idle timer closed it
        writer.close()

    run(shop_spec_path, scenario, limits)


def test_the_request_cap_closes_the_connection_after_its_last_request(
    shop_spec_path: Path,
) -> None:
    limits = ConnectionLimits(max_requests=3, idle_timeout=30.0, header_timeout=30.0)

    async def scenario(w: World) -> None:
        token = await token_for(w)
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1, ssl=w.tls())
        ) as session:
            answers: list[tuple[int, str | None]] = []
            for _ in range(3):
                async with session.get(
                    f"{w.gateway.url}/orders/1", headers={"Authorization": f"Bearer {token}"}
                ) as response:
                    await response.read()
                    answers.append((response.status, response.headers.get("Connection")))
        assert answers[:2] == [(200, None), (200, None)]  # kept alive
        assert answers[2][0] == 200
        assert (answers[2][1] or "").lower() == "close"  # the third is the last on it

    run(shop_spec_path, scenario, limits)


@pytest.mark.parametrize("listener", ["gateway", "egress"])
def test_connections_over_the_cap_are_closed_at_accept(shop_spec_path: Path, listener: str) -> None:
    limits = ConnectionLimits(max_connections=4, handshake_timeout=30.0, header_timeout=30.0)

    async def scenario(w: World) -> None:
        port = w.port if listener == "gateway" else w.egress_port
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(4)]
        await asyncio.sleep(0.2)  # let the listener accept them (not an assertion on time)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await closed_by_server(reader) == b""  # the fifth: closed, nothing sent
        writer.close()
        for _, held_writer in held:  # the twin: once they are gone, a caller is served
            held_writer.close()
        answer = None
        for _ in range(50):  # bounded: the listener notices the closes asynchronously
            await asyncio.sleep(0.1)
            if listener == "gateway":
                token = await token_for(w)
                reader, writer = await asyncio.open_connection(w.host, w.port, ssl=w.tls())
                writer.write(request("/orders/1", token, extra="Connection: close\r\n"))
            else:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"GET /orders/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            try:
                answer = await closed_by_server(reader)
            except ssl.SSLError:
                answer = None
            writer.close()
            if answer:
                break
        assert answer is not None
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]

    run(shop_spec_path, scenario, limits)


# -- item 6: what the upstream receives ----------------------------------------------------------


def test_forged_header_variants_never_reach_the_service(shop_spec_path: Path) -> None:
    async def scenario(w: World) -> None:
        token = await token_for(w)
        forged = (
            "X_Trustproof_Principal: admin\r\n"
            "X-Real-IP: 10.9.9.9\r\n"
            "Forwarded: for=10.9.9.9\r\n"
            "X-Forwarded-For: 10.9.9.9\r\n"
            "X-Kept: yes\r\n"
            "Connection: close\r\n"
        )
        reader, writer = await asyncio.open_connection(w.host, w.port, ssl=w.tls())
        writer.write(request("/orders/1", token, extra=forged))
        answer = await closed_by_server(reader)
        writer.close()
        assert answer is not None
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
        assert b"Server: trustproof\r\n" in answer
        assert b"aiohttp" not in answer.split(b"\r\n\r\n")[0]
        (seen,) = w.hits
        names = [name.lower().replace("_", "-") for name, _ in seen]
        assert names.count("x-trustproof-principal") == 1
        assert ("X-Trustproof-Principal", "storefront") in seen
        assert "10.9.9.9" not in str(seen)
        assert ("X-Real-IP", "127.0.0.1") in seen
        assert ("X-Forwarded-For", "127.0.0.1") in seen
        assert ("Forwarded", "for=127.0.0.1;proto=https") in seen
        assert ("X-Kept", "yes") in seen  # the twin: an ordinary header passes

    run(shop_spec_path, scenario)


@pytest.mark.parametrize(
    ("version", "extra", "reason"),
    [
        ("", "", "http-version"),  # an HTTP/0.9-style request line, no version
        (" HTTP/2.0", "", "http-version"),
        (" HTTP/1.1", "X-HTTP-Method-Override: DELETE\r\n", "method-override"),
        (" HTTP/1.1", "X_HTTP_Method_Override: DELETE\r\n", "method-override"),
        (" HTTP/1.1", "X-Original-URL: /admin\r\n", "url-override"),
    ],
)
def test_refused_request_lines_and_overrides_reach_nothing(
    shop_spec_path: Path, version: str, extra: str, reason: str
) -> None:
    async def scenario(w: World) -> None:
        token = await token_for(w)
        reader, writer = await asyncio.open_connection(w.host, w.port, ssl=w.tls())
        writer.write(request("/orders/1", token, version=version, extra=extra))
        answer = await closed_by_server(reader)
        writer.close()
        assert answer is not None
        assert b" 400 " in answer.split(b"\r\n")[0], answer[:300]
        assert f'"reason": "{reason}"'.encode() in answer
        assert w.hits == []
        # The twin: the same request as HTTP/1.1 without the override is served.
        reader, writer = await asyncio.open_connection(w.host, w.port, ssl=w.tls())
        writer.write(request("/orders/1", token, extra="Connection: close\r\n"))
        served = await closed_by_server(reader)
        writer.close()
        assert served is not None
        assert served.startswith(b"HTTP/1.1 200 ")

    run(shop_spec_path, scenario)


def test_the_egress_proxy_applies_the_same_rules(shop_spec_path: Path) -> None:
    async def scenario(w: World) -> None:
        base = f"http://127.0.0.1:{w.egress_port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(
                base + "/orders/1",
                headers={"X_Trustproof_Principal": "admin", "X-Real-IP": "10.9.9.9"},
            ) as response:
                assert response.status == 200
                body: dict[str, Any] = await response.json()
            async with session.get(
                base + "/orders/1", headers={"X-HTTP-Method-Override": "DELETE"}
            ) as refused:
                assert refused.status == 400
                assert (await refused.json())["reason"] == "method-override"
        seen = body["headers"]
        assert ["X-Trustproof-Principal", "storefront"] in seen
        assert not any(name == "X_Trustproof_Principal" for name, _ in seen)
        assert "10.9.9.9" not in str(seen)
        assert len(w.hits) == 1  # the refused one reached nothing

    run(shop_spec_path, scenario)
