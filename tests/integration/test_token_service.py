"""The token service over real TLS on loopback: each passing case next to its failing twin."""

from __future__ import annotations

import asyncio
import socket
import ssl
import warnings
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from trustproof.clock import ManualClock
from trustproof.fabric import TrustFabric
from trustproof.identity import BrokenMaterial, Svid
from trustproof.spec import load_spec
from trustproof.tls import client_context
from trustproof.tokens import RevocationEvent

pytestmark = pytest.mark.integration

Scenario = Callable[[TrustFabric, ManualClock], Awaitable[None]]


def run(shop_spec_path: Path, scenario: Scenario) -> None:
    """Start a fabric for the shop on a free loopback port, run `scenario`, always close."""

    async def main() -> None:
        # The clock starts at the real time: OpenSSL checks certificate dates with the system
        # clock, everything of ours with this one.
        clock = ManualClock(datetime.now(UTC))
        fabric = await TrustFabric.start(load_spec(shop_spec_path), clock=clock)
        try:
            await asyncio.wait_for(scenario(fabric, clock), timeout=30)
        finally:
            await fabric.close()

    asyncio.run(main())


async def call(
    fabric: TrustFabric, method: str, path: str, svid: Svid | None = None, **kwargs: Any
) -> tuple[int, dict[str, Any], dict[str, str]]:
    context = client_context(fabric.ca.bundle_pem(), svid)
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, fabric.url + path, ssl=context, **kwargs) as response,
    ):
        return response.status, await response.json(), dict(response.headers)


async def token_for(fabric: TrustFabric, svid: Svid, audience: str) -> str:
    status, body, headers = await call(
        fabric,
        "POST",
        "/token",
        svid,
        data={"grant_type": "client_credentials", "audience": audience},
    )
    assert status == 200, body
    assert headers["Cache-Control"] == "no-store"
    token: str = body["access_token"]
    return token


def test_discovery_and_jwks_need_tls_only(shop_spec_path: Path) -> None:
    async def scenario(fabric: TrustFabric, _: ManualClock) -> None:
        status, meta, _ = await call(fabric, "GET", "/.well-known/openid-configuration")
        assert status == 200
        assert meta["issuer"] == fabric.url
        assert meta["token_endpoint"] == f"{fabric.url}/token"
        assert meta["token_endpoint_auth_methods_supported"] == ["tls_client_auth"]
        assert meta["tls_client_certificate_bound_access_tokens"] is True
        status, jwks, _ = await call(fabric, "GET", "/jwks.json")
        assert status == 200
        assert [key["kid"] for key in jwks["keys"]] == [fabric.keys.active.kid]
        assert all("d" not in key for key in jwks["keys"])  # never the private part

    run(shop_spec_path, scenario)


def test_client_credentials_with_mtls_gives_a_bound_token(shop_spec_path: Path) -> None:
    async def scenario(fabric: TrustFabric, _: ManualClock) -> None:
        orders = fabric.issue("orders")
        token = await token_for(fabric, orders, "payments")
        check = fabric.validator().validate(
            token,
            audience="spiffe://shop.test/payments",
            peer_x5t_s256=orders.x5t_s256,
            peer_spiffe_id="spiffe://shop.test/orders",
            require_binding=True,
        )
        assert check.ok, check
        assert check.claims["sub"] == "spiffe://shop.test/orders"
        assert check.claims["cnf"]["x5t#S256"] == orders.x5t_s256
        # Twin: the same token presented over another certificate is a stolen token.
        stolen = fabric.validator().validate(
            token,
            audience="spiffe://shop.test/payments",
            peer_x5t_s256=fabric.issue("orders").x5t_s256,
        )
        assert stolen.reason == "cnf-mismatch"

    run(shop_spec_path, scenario)


def test_token_endpoint_without_client_certificate_is_invalid_client(shop_spec_path: Path) -> None:
    async def scenario(fabric: TrustFabric, _: ManualClock) -> None:
        status, body, headers = await call(
            fabric,
            "POST",
            "/token",
            None,
            data={"grant_type": "client_credentials", "audience": "payments"},
        )
        assert status == 401
        assert body["error"] == "invalid_client"
        assert "no client certificate" in body["error_description"]
        assert headers["WWW-Authenticate"].startswith("TLS")

    run(shop_spec_path, scenario)


def test_audience_outside_calls_is_invalid_target(shop_spec_path: Path) -> None:
    async def scenario(fabric: TrustFabric, _: ManualClock) -> None:
        payments = fabric.issue("payments")  # payments calls nobody
        status, body, _ = await call(
            fabric,
            "POST",
            "/token",
            payments,
            data={"grant_type": "client_credentials", "audience": "orders"},
        )
        assert status == 400
        assert body["error"] == "invalid_target"

    run(shop_spec_path, scenario)


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "password", "audience": "payments"}, "unsupported_grant_type"),
        ({"audience": "payments"}, "invalid_request"),
        ({"grant_type": "client_credentials"}, "invalid_request"),
        (
            {"grant_type": "client_credentials", "audience": "payments", "client_id": "storefront"},
            "invalid_client",
        ),
    ],
)
def test_token_request_errors_are_rfc6749_json(
    shop_spec_path: Path, form: dict[str, str], error: str
) -> None:
    async def scenario(fabric: TrustFabric, _: ManualClock) -> None:
        status, body, _ = await call(fabric, "POST", "/token", fabric.issue("orders"), data=form)
        assert status in (400, 401)
        assert body["error"] == error

    run(shop_spec_path, scenario)


def test_untrusted_client_certificate_fails_the_handshake(shop_spec_path: Path) -> None:
    async def scenario(fabric: TrustFabric, clock: ManualClock) -> None:
        forged = BrokenMaterial(fabric.ca, clock).untrusted_ca("orders")
        with pytest.raises(aiohttp.ClientConnectionError) as info:
            await call(
                fabric,
                "POST",
                "/token",
                forged,
                data={"grant_type": "client_credentials", "audience": "payments"},
            )
        assert isinstance(info.value, aiohttp.ClientOSError | aiohttp.ServerDisconnectedError)

    run(shop_spec_path, scenario)


def test_revoked_or_foreign_certificates_are_refused_at_the_application(
    shop_spec_path: Path,
) -> None:
    """OpenSSL accepts these chains; the SVID check at the injected clock does not."""

    async def scenario(fabric: TrustFabric, clock: ManualClock) -> None:
        broken = BrokenMaterial(fabric.ca, clock)
        for svid, reason in [
            (broken.revoked("orders"), "revoked"),
            (broken.wrong_trust_domain("orders"), "wrong-trust-domain"),
        ]:
            status, body, _ = await call(
                fabric,
                "POST",
                "/token",
                svid,
                data={"grant_type": "client_credentials", "audience": "payments"},
            )
            assert status == 401
            assert f"client certificate refused: {reason}" in body["error_description"]

    run(shop_spec_path, scenario)


def test_a_client_certificate_checked_once_is_still_refused_once_revoked_or_expired(
    shop_spec_path: Path,
) -> None:
    """The token service keeps a certificate's successful check (`tokenservice.clients`); on
    the same kept-alive connection, its revocation and the clock leaving its validity (either
    way) are refused at the next request, as without the cache."""

    async def scenario(fabric: TrustFabric, clock: ManualClock) -> None:
        orders = fabric.issue("orders")
        context = client_context(fabric.ca.bundle_pem(), orders)
        form = {"grant_type": "client_credentials", "audience": "payments"}
        connector = aiohttp.TCPConnector(limit=1)  # one connection: every request reuses it
        async with aiohttp.ClientSession(connector=connector) as session:

            async def ask() -> tuple[int, str]:
                async with session.post(f"{fabric.url}/token", data=form, ssl=context) as answer:
                    body = await answer.json()
                    return answer.status, str(body.get("error_description", ""))

            assert (await ask())[0] == 200
            assert (await ask())[0] == 200  # the cached check
            start = clock.now()
            clock.set(orders.not_before - timedelta(seconds=1))
            status, why = await ask()
            assert status == 401
            assert "client certificate refused: not-yet-valid" in why
            clock.set(orders.not_after + timedelta(seconds=1))
            status, why = await ask()
            assert status == 401
            assert "client certificate refused: expired" in why
            clock.set(start)
            assert (await ask())[0] == 200
            fabric.ca.revoke(orders)
            status, why = await ask()
            assert status == 401
            assert "client certificate refused: revoked" in why
            assert (await ask())[0] == 401  # refusals are never cached as passes

    run(shop_spec_path, scenario)


def test_revocation_is_pushed_and_introspection_turns_inactive(shop_spec_path: Path) -> None:
    async def scenario(fabric: TrustFabric, _: ManualClock) -> None:
        orders = fabric.issue("orders")
        gateway = fabric.validator()
        seen: list[RevocationEvent] = []
        fabric.revocations.subscribe(seen.append)
        token = await token_for(fabric, orders, "payments")
        status, active, _ = await call(fabric, "POST", "/introspect", orders, data={"token": token})
        assert status == 200
        assert active["active"] is True
        assert active["sub"] == "spiffe://shop.test/orders"
        assert active["cnf"] == {"x5t#S256": orders.x5t_s256}

        status, body, _ = await call(fabric, "POST", "/revoke", orders, data={"token": token})
        assert (status, body) == (200, {})
        assert len(seen) == 1
        check = gateway.validate(
            token, audience="spiffe://shop.test/payments", peer_x5t_s256=orders.x5t_s256
        )
        assert check.reason == "revoked"
        status, inactive, _ = await call(
            fabric, "POST", "/introspect", orders, data={"token": token}
        )
        assert inactive == {"active": False}

    run(shop_spec_path, scenario)


def test_revocation_of_unknown_token_is_200_and_of_anothers_token_is_refused(
    shop_spec_path: Path,
) -> None:
    async def scenario(fabric: TrustFabric, _: ManualClock) -> None:
        orders, storefront = fabric.issue("orders"), fabric.issue("storefront")
        status, _, _ = await call(fabric, "POST", "/revoke", orders, data={"token": "not-a-jwt"})
        assert status == 200
        token = await token_for(fabric, orders, "payments")
        status, body, _ = await call(fabric, "POST", "/revoke", storefront, data={"token": token})
        assert status == 403
        assert body["error"] == "unauthorized_client"
        assert not fabric.revocations.is_revoked(fabric.validator().inspect(token).claims["jti"])

    run(shop_spec_path, scenario)


def test_admin_mints_persona_tokens_and_nobody_else_may(shop_spec_path: Path) -> None:
    async def scenario(fabric: TrustFabric, clock: ManualClock) -> None:
        request = {"subject": "alice", "audience": "storefront", "ttl": 30}
        status, body, _ = await call(fabric, "POST", "/admin/tokens", fabric.admin, json=request)
        assert status == 200, body
        check = fabric.validator().validate(
            body["access_token"], audience="spiffe://shop.test/storefront"
        )
        assert check.ok, check
        assert check.claims["roles"] == ("customer",)
        assert 29 <= body["expires_in"] <= 30  # whole seconds, counted from now
        # Chosen timestamps: already expired, for lifecycle probes.
        past = int((clock.now() - timedelta(minutes=10)).timestamp())
        status, body, _ = await call(
            fabric,
            "POST",
            "/admin/tokens",
            fabric.admin,
            json={**request, "iat": past, "nbf": past, "exp": past + 60},
        )
        assert status == 200
        assert (
            fabric.validator()
            .validate(body["access_token"], audience="spiffe://shop.test/storefront")
            .reason
            == "expired"
        )
        # Twin: a workload certificate is not the admin.
        status, body, _ = await call(
            fabric, "POST", "/admin/tokens", fabric.issue("storefront"), json=request
        )
        assert status == 403
        assert body["error"] == "access_denied"

    run(shop_spec_path, scenario)


def test_signing_key_rotation_with_overlap(shop_spec_path: Path) -> None:
    async def scenario(fabric: TrustFabric, clock: ManualClock) -> None:
        orders = fabric.issue("orders")
        audience = "spiffe://shop.test/payments"
        old_kid = fabric.keys.active.kid
        old = await token_for(fabric, orders, "payments")
        fabric.keys.rotate()
        new = await token_for(fabric, orders, "payments")
        gateway = fabric.validator()
        assert gateway.validate(old, audience=audience, peer_x5t_s256=orders.x5t_s256).ok
        assert gateway.inspect(new).claims["exp"]
        _, jwks, _ = await call(fabric, "GET", "/jwks.json")
        assert old_kid in [k["kid"] for k in jwks["keys"]]  # retired, still verifying
        clock.advance(timedelta(minutes=2, seconds=10))  # past the old token's exp
        _, jwks, _ = await call(fabric, "GET", "/jwks.json")
        assert [k["kid"] for k in jwks["keys"]] == [fabric.keys.active.kid]
        assert old_kid != fabric.keys.active.kid
        fresh = await token_for(fabric, orders, "payments")
        assert gateway.validate(fresh, audience=audience, peer_x5t_s256=orders.x5t_s256).ok
        assert (
            gateway.validate(old, audience=audience, peer_x5t_s256=orders.x5t_s256).reason
            == "unknown-kid"
        )

    run(shop_spec_path, scenario)


def test_plaintext_http_to_the_tls_port_is_refused(shop_spec_path: Path) -> None:
    async def get(url: str) -> int:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status

    async def scenario(fabric: TrustFabric, _: ManualClock) -> None:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await get(fabric.url.replace("https://", "http://") + "/jwks.json")

    run(shop_spec_path, scenario)


def handshake(fabric: TrustFabric, lowest: ssl.TLSVersion, highest: ssl.TLSVersion) -> str:
    """Blocking handshake; the client offers old versions for real (SECLEVEL=0 lets it)."""
    context = client_context(fabric.ca.bundle_pem())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version, context.maximum_version = lowest, highest
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    host, port = fabric.url.removeprefix("https://").rsplit(":", 1)
    try:
        with (
            socket.create_connection((host, int(port)), timeout=5) as raw,
            context.wrap_socket(raw) as tls,
        ):
            return str(tls.version())
    except ssl.SSLError as exc:
        return f"refused: {exc.reason}"


def test_tls_1_0_and_1_1_are_refused_and_1_2_accepted(shop_spec_path: Path) -> None:
    async def scenario(fabric: TrustFabric, _: ManualClock) -> None:
        loop = asyncio.get_running_loop()
        old = await loop.run_in_executor(
            None, handshake, fabric, ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1
        )
        assert old.startswith("refused")
        assert "NO_CIPHERS" not in old  # the client really offered TLS 1.0/1.1
        twin = await loop.run_in_executor(
            None, handshake, fabric, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2
        )
        assert twin == "TLSv1.2"

    run(shop_spec_path, scenario)
