"""The gateway proof for real: the shop sandbox, its gateways signing, its services checking.

On one loopback any local process can reach a service's own port and forge
``X-Trustproof-Principal`` (what the ``bypass.direct-port`` probe does). A request through
storefront's gateway is served; the same request sent straight to the service's port with forged
identity headers is refused by the service itself (401, ``X-Served-By`` set, no handler run).
"""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from trustproof.gateway.proof import PROOF_HEADER, sign_proof
from trustproof.sandbox.backend import FakeBackend
from trustproof.sandbox.controller import Sandbox
from trustproof.tls import client_context

pytestmark = pytest.mark.integration

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop" / "trustproof.yaml"
FORGED = {  # everything storefront's gateway would add for alice, except the proof
    "X-Trustproof-Principal": "alice",
    "X-Trustproof-Principal-Kind": "persona",
    "X-Trustproof-Roles": "customer",
    "X-Trustproof-Route": "/products/{id}",
    "X-Trustproof-Request-Id": "0123456789abcdef0123456789abcdef",
}
NOT_FROM_THE_GATEWAY = "not from the gateway"
Answer = tuple[int, dict[str, Any], dict[str, str]]


async def through_gateway(
    sandbox: Sandbox, persona: str, method: str, path: str, body: Any = None
) -> Answer:
    assert sandbox.fabric is not None
    service = "storefront"
    headers = {"Authorization": f"Bearer {sandbox.token(persona, service)}"}
    url = sandbox.endpoints[service].url + path
    context = client_context(sandbox.fabric.ca.bundle_pem())
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, headers=headers, json=body, ssl=context) as response,
    ):
        return response.status, await response.json(), dict(response.headers)


async def direct(sandbox: Sandbox, service: str, path: str, headers: dict[str, str]) -> Answer:
    """What any local process can do: plain HTTP to the service's own port."""
    url = sandbox.endpoints[service].direct_url + path
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, await response.json(), dict(response.headers)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(scenario: Any, tmp_path: Path) -> None:
    async def main() -> None:
        async with Sandbox.from_file(SHOP, run_dir=tmp_path / "run") as sandbox:
            await asyncio.wait_for(scenario(sandbox), timeout=60)

    asyncio.run(main())


def test_through_the_gateway_served_straight_to_the_port_refused(tmp_path: Path) -> None:
    async def scenario(sandbox: Sandbox) -> None:
        status, body, headers = await through_gateway(sandbox, "alice", "GET", "/products/1")
        assert status == 200, body
        assert headers["X-Served-By"] == "storefront"
        assert body["caller"] == "alice"

        status, body, headers = await direct(sandbox, "storefront", "/products/1", FORGED)
        assert status == 401, body
        assert headers["X-Served-By"] == "storefront"  # the service itself refused
        assert headers["X-Trustproof-Handler"] == "none"  # no handler, no database
        assert (body["error"], body["reason"], body["caller"]) == (
            NOT_FROM_THE_GATEWAY,
            "missing",
            None,
        )

        guessed = {**FORGED, PROOF_HEADER: "v1;t=1700000000;sig=" + "A" * 43}
        status, body, _ = await direct(sandbox, "storefront", "/products/1", guessed)
        assert (status, body["reason"]) == (401, "bad-signature")

        status, body, _ = await direct(sandbox, "storefront", "/healthz", {})
        assert (status, body["ok"]) == (200, True)  # the controller's health checks come direct

    run(scenario, tmp_path)


def test_every_gateway_fronted_service_refuses_the_bypass(tmp_path: Path) -> None:
    async def scenario(sandbox: Sandbox) -> None:
        workload = {**FORGED, "X-Trustproof-Principal": "storefront"}
        for service, path in [
            ("storefront", "/admin/version"),
            ("orders", "/orders"),
            ("payments", "/payments/1"),
        ]:
            status, body, headers = await direct(sandbox, service, path, workload)
            assert (status, body["error"], headers["X-Served-By"]) == (
                401,
                NOT_FROM_THE_GATEWAY,
                service,
            )

    run(scenario, tmp_path)


def test_a_checkout_crosses_three_gateways_each_proving_itself(tmp_path: Path) -> None:
    """storefront -> orders -> payments: every hop arrives through a gateway, with its proof."""

    async def scenario(sandbox: Sandbox) -> None:
        items = {"items": [{"product_id": 2, "quantity": 1}]}
        status, body, _ = await through_gateway(sandbox, "alice", "POST", "/checkout", items)
        assert status == 201, body
        assert isinstance(body["order_id"], int)
        assert isinstance(body["payment_id"], int)

    run(scenario, tmp_path)


def test_the_key_is_per_service_private_given_to_the_service_and_removed(tmp_path: Path) -> None:
    identities = tmp_path / "run" / "identities"

    async def scenario(sandbox: Sandbox) -> None:
        keys = {}
        for name in ("storefront", "orders", "payments"):
            path = identities / name / "gateway-proof.key"
            assert sandbox.proof_key_files[name] == path
            assert oct(path.stat().st_mode & 0o777) == "0o600"
            assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
            keys[name] = path.read_bytes()
            assert len(keys[name]) == 32
            pid = sandbox.endpoints[name].pid
            assert pid is not None
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            assert f"TRUSTPROOF_GATEWAY_PROOF_KEY_FILE={path}".encode() in environ
        assert len(set(keys.values())) == 3  # one key per service

        # The file is the service's key: a proof made with it is accepted on the direct port
        # (whoever can read the file can pass as the gateway, hence 0600 in a 0700 directory),
        # while storefront's key does not open orders.
        target = "/orders"
        headers = {**FORGED, "X-Trustproof-Principal": "storefront"}
        now = time.time()
        with_orders_key = {
            **headers,
            PROOF_HEADER: sign_proof(keys["orders"], "GET", target, headers.items(), now),
        }
        with_storefront_key = {
            **headers,
            PROOF_HEADER: sign_proof(keys["storefront"], "GET", target, headers.items(), now),
        }
        status, body, _ = await direct(sandbox, "orders", target, with_storefront_key)
        assert (status, body["reason"]) == (401, "bad-signature")
        status, body, _ = await direct(sandbox, "orders", target, with_orders_key)
        assert status == 200, body  # past the proof: the handler ran and read its table
        assert (body["route"], body["caller"]) == ("GET /orders", "storefront")

    run(scenario, tmp_path)
    assert not identities.exists()  # removed at teardown with the other key material


def test_a_service_without_a_gateway_gets_no_key(tmp_path: Path) -> None:
    """`gateway: none`: the service terminates mTLS itself; there is no gateway to prove."""
    (tmp_path / "app.cedar").write_text("")
    spec = tmp_path / "trustproof.yaml"
    spec.write_text(
        "trust_domain: t.test\n"
        "services:\n"
        f"  api: {{command: [x], port: {free_port()}, routes: [GET /]}}\n"
        f"  edge: {{command: [x], port: {free_port()}, routes: [GET /],"
        " ingress: {gateway: none}}\n"
        "policies: {files: [app.cedar]}\n"
    )
    backend = FakeBackend(listen=True)

    async def scenario() -> None:
        async with Sandbox.from_file(spec, run_dir=tmp_path / "run", backend=backend) as sandbox:
            assert set(sandbox.proof_key_files) == {"api"}
            env = {started.name: started.env for started in backend.started}
            assert env["api"]["TRUSTPROOF_GATEWAY_PROOF_KEY_FILE"] == str(
                sandbox.run.gateway_proof_key("api")
            )
            assert "TRUSTPROOF_GATEWAY_PROOF_KEY_FILE" not in env["edge"]
            assert not sandbox.run.gateway_proof_key("edge").exists()

    asyncio.run(scenario())
