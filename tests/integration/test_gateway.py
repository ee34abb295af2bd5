"""The gateway over real sockets: TLS on loopback, the real token service, real Cedar, a real
upstream process-local HTTP service, egress proxies, audit, rotation under traffic."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from trustproof.audit import AuditCompletion, AuditEvent, MemorySink
from trustproof.clock import ManualClock
from trustproof.fabric import TrustFabric
from trustproof.gateway.config import gateway_config
from trustproof.gateway.egress import EgressProxy
from trustproof.gateway.pipeline import Pipeline
from trustproof.gateway.server import Gateway
from trustproof.identity import BrokenMaterial, Svid
from trustproof.policy import CedarPolicyEngine
from trustproof.spec import load_spec
from trustproof.tls import client_context
from trustproof.tokenservice.server import bind_loopback

pytestmark = pytest.mark.integration
TD = "spiffe://shop.test"
HITS = web.AppKey("hits", list[dict[str, Any]])


@dataclass
class World:
    fabric: TrustFabric
    clock: ManualClock
    gateway: Gateway
    sink: MemorySink
    upstream_hits: list[dict[str, Any]]
    storefront: Svid
    egress: EgressProxy


async def echo(request: web.Request) -> web.Response:
    hits = request.app[HITS]
    seen = {"method": request.method, "path": request.raw_path, "headers": dict(request.headers)}
    hits.append(seen)
    return web.json_response(seen, headers={"X-Served-By": "upstream"})


@asynccontextmanager
async def world(shop_spec_path: Path) -> AsyncIterator[World]:
    spec = load_spec(shop_spec_path)
    clock = ManualClock(datetime.now(UTC))
    fabric = await TrustFabric.start(spec, clock=clock)
    app = web.Application()
    hits: list[dict[str, Any]] = []
    app[HITS] = hits
    app.router.add_route("*", "/{tail:.*}", echo)
    upstream = web.AppRunner(app, access_log=None)
    await upstream.setup()
    upstream_sock = bind_loopback()
    await web.SockSite(upstream, upstream_sock).start()
    upstream_port = upstream_sock.getsockname()[1]
    sink = MemorySink()
    pipeline = Pipeline(
        gateway_config(spec, "orders"), fabric.validator(), CedarPolicyEngine.from_spec(spec), clock
    )
    gateway = Gateway(
        pipeline,
        upstream=f"http://127.0.0.1:{upstream_port}",
        sink=sink,
        ca=fabric.ca,
        svid=fabric.ca.issue("orders", fabric.certificate_ttl, ips=["127.0.0.1"]),
        clock=clock,
    )
    await gateway.start(bind_loopback())
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
    )
    await egress.start(bind_loopback())
    try:
        yield World(fabric, clock, gateway, sink, hits, storefront, egress)
    finally:
        await egress.close()
        await gateway.close()
        await upstream.cleanup()
        await fabric.close()


def run(shop_spec_path: Path, scenario: Callable[[World], Awaitable[None]]) -> None:
    async def main() -> None:
        async with world(shop_spec_path) as w:
            await asyncio.wait_for(scenario(w), timeout=60)

    asyncio.run(main())


async def call(
    w: World,
    method: str,
    path: str,
    *,
    svid: Svid | None = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    via: str | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    base = via or w.gateway.url
    ssl_arg: Any = None if via else client_context(w.fabric.ca.bundle_pem(), svid)
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, base + path, headers=all_headers, ssl=ssl_arg) as response,
    ):
        return response.status, await response.json(), dict(response.headers)


async def workload_token(w: World, svid: Svid, audience: str = "orders") -> str:
    context = client_context(w.fabric.ca.bundle_pem(), svid)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{w.fabric.url}/token",
            ssl=context,
            data={"grant_type": "client_credentials", "audience": audience},
        ) as response,
    ):
        body = await response.json()
        token: str = body["access_token"]
        return token


def test_allowed_call_reaches_the_service_with_verified_identity(shop_spec_path: Path) -> None:
    async def scenario(w: World) -> None:
        token = await workload_token(w, w.storefront)
        status, body, headers = await call(
            w,
            "GET",
            "/orders/./7//",
            svid=w.storefront,
            token=token,
            headers={"X-Trustproof-Principal": "admin"},
        )
        assert status == 200, body
        assert headers["X-Served-By"] == "upstream"  # the handler really ran
        assert body["path"] == "/orders/7"  # the canonical path was forwarded
        assert body["headers"]["X-Trustproof-Principal"] == "storefront"  # not the forged one
        assert "Authorization" not in body["headers"]  # tokens stop at the gateway
        event = w.sink.get(headers["X-Trustproof-Request-Id"])
        assert event is not None
        assert (event.allowed, event.stage, event.status) == (True, "done", 200)
        assert event.policy_ids == ("storefront-reads-orders",)
        assert event.timings.handshake_us is not None
        assert event.timings.handshake_us > 0
        assert event.timings.upstream_us is not None

    run(shop_spec_path, scenario)


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("no-client-cert", 401, "client-cert-required"),
        ("wrong-trust-domain", 401, "client-cert-wrong-trust-domain"),
        ("no-token", 401, "token-missing"),
        ("outside-matrix", 403, "no-matching-permit"),  # payments may not call orders
        ("method-swap", 403, "method-not-allowed"),
        ("encoded-slash", 400, "bad-path"),
    ],
)
def test_each_denial_class_over_real_sockets(
    shop_spec_path: Path, case: str, status: int, reason: str
) -> None:
    async def scenario(w: World) -> None:
        token = await workload_token(w, w.storefront)
        if case == "no-client-cert":
            result = await call(w, "GET", "/orders/1", token=token)
        elif case == "wrong-trust-domain":
            foreign = BrokenMaterial(w.fabric.ca, w.clock).wrong_trust_domain("storefront")
            result = await call(w, "GET", "/orders/1", svid=foreign, token=token)
        elif case == "no-token":
            result = await call(w, "GET", "/orders/1", svid=w.storefront)
        elif case == "outside-matrix":
            payments = w.fabric.issue("payments")
            minted = await mint(w, "payments", "orders", payments.x5t_s256)
            result = await call(w, "GET", "/orders/1", svid=payments, token=minted)
        elif case == "method-swap":
            result = await call(w, "PUT", "/orders/1", svid=w.storefront, token=token)
        else:
            result = await call(w, "GET", "/orders%2F1", svid=w.storefront, token=token)
        got_status, body, headers = result
        assert (got_status, body["reason"]) == (status, reason), body
        assert headers["X-Trustproof-Decision"] == "deny"
        assert w.upstream_hits == []  # nothing reached the service
        event = w.sink.get(body["request_id"])
        assert event is not None
        assert not event.allowed
        assert event.reason == reason

    run(shop_spec_path, scenario)


async def mint(w: World, subject: str, audience: str, thumb: str | None) -> str:
    context = client_context(w.fabric.ca.bundle_pem(), w.fabric.admin)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{w.fabric.url}/admin/tokens",
            ssl=context,
            json={"subject": subject, "audience": audience, "cnf_x5t_s256": thumb},
        ) as response,
    ):
        token: str = (await response.json())["access_token"]
        return token


def test_untrusted_certificate_fails_the_handshake(shop_spec_path: Path) -> None:
    async def scenario(w: World) -> None:
        forged = BrokenMaterial(w.fabric.ca, w.clock).untrusted_ca("storefront")
        with pytest.raises(aiohttp.ClientConnectionError):
            await call(w, "GET", "/orders/1", svid=forged)
        assert w.upstream_hits == []

    run(shop_spec_path, scenario)


def test_revocation_takes_effect_on_the_next_request(shop_spec_path: Path) -> None:
    async def scenario(w: World) -> None:
        token = await workload_token(w, w.storefront)
        assert (await call(w, "GET", "/orders/1", svid=w.storefront, token=token))[0] == 200
        context = client_context(w.fabric.ca.bundle_pem(), w.storefront)
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{w.fabric.url}/revoke", ssl=context, data={"token": token}) as response,
        ):
            assert response.status == 200
        status, body, _ = await call(w, "GET", "/orders/1", svid=w.storefront, token=token)
        assert (status, body["reason"]) == (401, "token-revoked")

    run(shop_spec_path, scenario)


def test_a_repeated_request_on_one_open_connection_is_refused_after_each_revocation(
    shop_spec_path: Path,
) -> None:
    """The same request, again and again on one kept-alive connection (the gateway remembers
    its shape, `gateway/prepared.py`): allowed until the token is revoked, then refused; with a
    new token allowed again until the client certificate is revoked, then refused."""

    async def scenario(w: World) -> None:
        context = client_context(w.fabric.ca.bundle_pem(), w.storefront)
        connector = aiohttp.TCPConnector(limit_per_host=1, ssl=context)  # kept alive
        async with aiohttp.ClientSession(connector=connector) as session:

            async def same(token: str) -> tuple[int, str]:
                headers = {"Authorization": f"Bearer {token}"}
                async with session.get(w.gateway.url + "/orders/1", headers=headers) as response:
                    body = await response.json()
                    return response.status, str(body.get("reason", "served"))

            token = await workload_token(w, w.storefront)
            assert [await same(token) for _ in range(3)] == [(200, "served")] * 3
            async with (
                aiohttp.ClientSession() as other,
                other.post(f"{w.fabric.url}/revoke", ssl=context, data={"token": token}) as answer,
            ):
                assert answer.status == 200
            assert await same(token) == (401, "token-revoked")

            fresh = await workload_token(w, w.storefront)
            assert [await same(fresh) for _ in range(2)] == [(200, "served")] * 2
            w.fabric.ca.revoke(w.storefront)
            assert await same(fresh) == (401, "client-cert-revoked")
        assert len(w.gateway.pipeline.prepared) == 2  # one shape per token: both repeated
        handshakes = [e for e in w.sink.events() if e.timings.handshake_us is not None]
        assert len(handshakes) == 1  # every request went over the one connection

    run(shop_spec_path, scenario)


def test_egress_proxy_adds_mtls_and_a_bound_token(shop_spec_path: Path) -> None:
    async def scenario(w: World) -> None:
        status, body, _ = await call(
            w,
            "POST",
            "/orders",
            via=w.egress.url,
            headers={"Authorization": "Bearer caller-supplied"},
        )
        assert status == 200, body
        assert body["headers"]["X-Trustproof-Principal"] == "storefront"
        assert body["headers"]["X-Trustproof-Client-Spiffe-Id"] == f"{TD}/storefront"
        status, body, _ = await call(w, "DELETE", "/orders/3", via=w.egress.url)
        assert (status, body["reason"]) == (403, "no-matching-permit")  # declared, not granted

    run(shop_spec_path, scenario)


def test_upstream_down_is_502_never_an_allow_through(shop_spec_path: Path) -> None:
    async def scenario(w: World) -> None:
        dead = socket.socket()
        dead.bind(("127.0.0.1", 0))
        port = dead.getsockname()[1]
        dead.close()  # nothing listens there now
        w.gateway.upstream = f"http://127.0.0.1:{port}"
        token = await workload_token(w, w.storefront)
        status, body, _ = await call(w, "GET", "/orders/1", svid=w.storefront, token=token)
        assert (status, body["reason"], body["stage"]) == (502, "upstream-unavailable", "upstream")

    run(shop_spec_path, scenario)


class BrokenSink(MemorySink):
    def record(self, event: AuditEvent) -> None:
        raise OSError("disk full")

    def complete(self, completion: AuditCompletion) -> None:
        raise AssertionError("never reached")


def test_unwritable_audit_refuses_before_forwarding(shop_spec_path: Path) -> None:
    async def scenario(w: World) -> None:
        w.gateway.sink = BrokenSink()
        token = await workload_token(w, w.storefront)
        status, body, _ = await call(w, "GET", "/orders/1", svid=w.storefront, token=token)
        assert (status, body["reason"]) == (503, "audit-unavailable")
        assert w.upstream_hits == []

    run(shop_spec_path, scenario)


def test_certificate_rotation_under_traffic_drops_nothing(shop_spec_path: Path) -> None:
    """Continuous calls through the egress proxy while both sides rotate their SVIDs."""

    async def scenario(w: World) -> None:
        results: list[int] = []
        stop = asyncio.Event()

        async def traffic() -> None:
            async with aiohttp.ClientSession() as session:
                for _ in range(2000):  # bounded
                    if stop.is_set():
                        return
                    async with session.get(w.egress.url + "/orders/5") as response:
                        results.append(response.status)

        async def answered(count: int) -> None:
            # Counted in requests, not in time: a loaded machine answers fewer per second.
            goal = len(results) + count
            async with asyncio.timeout(30):
                while len(results) < goal and not task.done():
                    await asyncio.sleep(0.01)

        task = asyncio.create_task(traffic())
        for _ in range(5):
            await answered(5)
            w.gateway.reload_svid(
                w.fabric.ca.issue("orders", w.fabric.certificate_ttl, ips=["127.0.0.1"])
            )
            w.egress.reload_svid(w.fabric.issue("storefront"))
        await answered(5)
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        assert len(results) >= 30  # five requests before each rotation and after the last
        assert set(results) == {200}, {s: results.count(s) for s in set(results)}

    run(shop_spec_path, scenario)


def test_a_fault_while_verifying_the_peer_denies(shop_spec_path: Path) -> None:
    async def scenario(w: World) -> None:
        def explode(_: object) -> None:
            raise RuntimeError("CRL store unreadable")

        w.gateway._peer = explode  # type: ignore[method-assign,assignment]
        token = await workload_token(w, w.storefront)
        status, body, _ = await call(w, "GET", "/orders/1", svid=w.storefront, token=token)
        assert (status, body["reason"], body["stage"]) == (500, "gateway-error", "internal")
        assert w.upstream_hits == []

    run(shop_spec_path, scenario)


def test_egress_refuses_a_server_that_is_not_the_callee(shop_spec_path: Path) -> None:
    """Any SVID of the sandbox CA passes the TLS check; only the callee's is accepted."""

    async def scenario(w: World) -> None:
        impostor = EgressProxy(
            caller="storefront",
            callee="payments",
            callee_url=w.gateway.url,
            token_url=f"{w.fabric.url}/token",
            audience=f"{TD}/payments",
            bundle_pem=w.fabric.ca.bundle_pem(),
            svid=w.storefront,
            clock=w.clock,
        )  # payments' address answered by orders' gateway
        await impostor.start(bind_loopback())
        try:
            status, body, _ = await call(w, "POST", "/payments", via=impostor.url)
        finally:
            await impostor.close()
        assert (status, body["reason"]) == (502, "callee-identity-mismatch")
        assert w.upstream_hits == []  # nothing was sent to the wrong server
        twin_status, _, _ = await call(w, "POST", "/orders", via=w.egress.url)
        assert twin_status == 200

    run(shop_spec_path, scenario)


def test_an_unreachable_callee_is_502_and_one_log_line(
    shop_spec_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A callee that cannot be reached is an answer (502 callee-unavailable) and one warning
    line naming the error — not a traceback per request (a network fault repeats it)."""

    async def scenario(w: World) -> None:
        closed = bind_loopback()
        address = closed.getsockname()
        closed.close()  # nothing listens there any more
        proxy = EgressProxy(
            caller="storefront",
            callee="orders",
            callee_url=f"https://{address[0]}:{address[1]}",
            token_url=f"{w.fabric.url}/token",
            audience=f"{TD}/orders",
            bundle_pem=w.fabric.ca.bundle_pem(),
            svid=w.storefront,
            clock=w.clock,
        )
        await proxy.start(bind_loopback())
        try:
            with caplog.at_level(logging.WARNING, logger="trustproof.gateway"):
                status, body, _ = await call(w, "GET", "/orders/1", via=proxy.url)
        finally:
            await proxy.close()
        assert (status, body["reason"]) == (502, "callee-unavailable")
        lines = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
        assert len(lines) == 1, lines
        assert "\n" not in lines[0], lines[0]
        assert "Traceback" not in lines[0], lines[0]
        assert "Error" in lines[0], lines[0]  # the exception's type: what went wrong

    run(shop_spec_path, scenario)
