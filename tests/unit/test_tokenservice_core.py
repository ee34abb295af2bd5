"""The token service's decisions without sockets: each endpoint's passing case and its twins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from trustproof.clock import ManualClock
from trustproof.spec import load_spec
from trustproof.tokens import KeyRing, RevocationList, TokenIssuer, TokenValidator
from trustproof.tokenservice.core import Client, Registry, Reply, TokenService
from trustproof.tokenservice.server import _App

ISSUER = "https://127.0.0.1:9443"
ORDERS = Client("spiffe://shop.test/orders", "thumb-orders")
STOREFRONT = Client("spiffe://shop.test/storefront", "thumb-storefront")
ADMIN = Client("spiffe://shop.test/trustproof-admin", "thumb-admin")
PAYMENTS_AUD = "spiffe://shop.test/payments"
PAYMENTS = Client(PAYMENTS_AUD, "thumb-payments")
ALICE = Client("spiffe://shop.test/alice", "thumb-alice")
TOKEN_SERVICE = Client("spiffe://shop.test/trustproof-token-service", "thumb-ts")
STRANGER = Client("spiffe://shop.test/mallory", "thumb-mallory")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2030, 1, 1, tzinfo=UTC))


@pytest.fixture
def service(shop_spec_path: Path, clock: ManualClock) -> TokenService:
    keys, revocations = KeyRing(clock), RevocationList(clock)
    issuer = TokenIssuer(ISSUER, keys, clock)
    validator = TokenValidator(ISSUER, keys, revocations, clock)
    return TokenService(
        Registry.from_spec(load_spec(shop_spec_path)),
        keys=keys,
        issuer=issuer,
        validator=validator,
        revocations=revocations,
        clock=clock,
    )


def grant(service: TokenService, client: Client | None = ORDERS, **form: str) -> Reply:
    return service.token({"grant_type": "client_credentials", **form}, client, "why")


def test_registry_derives_audiences_from_calls(service: TokenService) -> None:
    orders = service.registry.workloads["spiffe://shop.test/orders"]
    assert orders.audiences == frozenset({PAYMENTS_AUD})
    assert service.registry.personas["spiffe://shop.test/alice"] == ("customer",)


def test_token_is_bound_to_the_client_certificate(service: TokenService) -> None:
    reply = grant(service, audience="payments")
    assert reply.status == 200
    assert reply.headers["Cache-Control"] == "no-store"
    claims = service.validator.inspect(reply.body["access_token"]).claims
    assert claims["cnf"] == {"x5t#S256": "thumb-orders"}
    assert claims["aud"] == PAYMENTS_AUD
    assert claims["client_id"] == ORDERS.spiffe_id
    assert reply.body["expires_in"] == 120


def test_resource_parameter_is_accepted_like_audience(service: TokenService) -> None:
    assert grant(service, resource=PAYMENTS_AUD).status == 200


@pytest.mark.parametrize(
    ("client", "form", "status", "error"),
    [
        (None, {"audience": "payments"}, 401, "invalid_client"),
        (ORDERS, {"audience": "storefront"}, 400, "invalid_target"),
        (ORDERS, {"audience": "payments", "resource": "payments"}, 400, "invalid_target"),
        (ORDERS, {}, 400, "invalid_request"),
        (ADMIN, {"audience": "payments"}, 401, "invalid_client"),  # not a workload
    ],
)
def test_token_refusals(
    service: TokenService, client: Client | None, form: dict[str, str], status: int, error: str
) -> None:
    reply = grant(service, client, **form)
    assert (reply.status, reply.body["error"]) == (status, error)
    assert "access_token" not in reply.body


def test_revoke_own_token_then_introspection_is_inactive(service: TokenService) -> None:
    token = grant(service, audience="payments").body["access_token"]
    assert service.introspect({"token": token}, PAYMENTS).body["active"] is True
    assert service.revoke({"token": token}, ORDERS).status == 200
    assert service.introspect({"token": token}, PAYMENTS).body == {"active": False}


def test_admin_may_revoke_any_token_and_others_may_not(service: TokenService) -> None:
    token = grant(service, audience="payments").body["access_token"]
    assert service.revoke({"token": token}, STOREFRONT).status == 403
    assert service.introspect({"token": token}, ORDERS).body["active"] is True
    assert service.revoke({"token": token}, ADMIN).status == 200
    assert service.introspect({"token": token}, ORDERS).body == {"active": False}


def test_who_may_introspect(service: TokenService) -> None:
    """The admin and the workloads (resource servers) may introspect."""
    token = grant(service, audience="payments").body["access_token"]
    for caller in (ADMIN, ORDERS, PAYMENTS):
        reply = service.introspect({"token": token}, caller)
        assert (reply.status, reply.body["active"]) == (200, True), caller
        assert reply.body["aud"] == PAYMENTS_AUD


def test_a_workload_is_answered_about_tokens_for_another_audience(service: TokenService) -> None:
    """The audience is the resource server's own check: introspection must not do it for it,
    or a service that skips it would look correct (examples/pyjwt-mtls relies on this)."""
    token = grant(service, audience="payments").body["access_token"]
    reply = service.introspect({"token": token}, STOREFRONT)
    assert (reply.status, reply.body["active"], reply.body["aud"]) == (200, True, PAYMENTS_AUD)


@pytest.mark.parametrize("caller", [ALICE, TOKEN_SERVICE, STRANGER])
def test_personas_and_strangers_may_not_introspect(service: TokenService, caller: Client) -> None:
    token = grant(service, audience="payments").body["access_token"]
    reply = service.introspect({"token": token}, caller)
    assert (reply.status, reply.body["error"]) == (403, "unauthorized_client")
    assert "active" not in reply.body
    assert service.introspect({"token": token}, None, "no certificate").status == 401


def test_mint_with_chosen_times(service: TokenService, clock: ManualClock) -> None:
    iat = int((clock.now() + timedelta(minutes=5)).timestamp())
    reply = service.mint(
        {"subject": "bob", "audience": "storefront", "iat": iat, "nbf": iat, "exp": iat + 60}, ADMIN
    )
    assert reply.status == 200
    check = service.validator.validate(
        reply.body["access_token"], audience="spiffe://shop.test/storefront"
    )
    assert check.reason == "not-yet-valid"
    assert check.claims["roles"] == ("visitor",)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"audience": "storefront"}, "`subject` is required"),
        ({"subject": "mallory", "audience": "storefront"}, "unknown subject"),
        ({"subject": "bob", "audience": "storefront", "ttl": -1}, "`ttl` must be a positive"),
        ({"subject": "bob", "audience": "storefront", "roles": "admin"}, "`roles` must be a list"),
        ({"subject": "bob", "audience": "storefront", "exp": "soon"}, "`exp` must be a number"),
    ],
)
def test_mint_rejects_bad_requests(
    service: TokenService, body: dict[str, object], fragment: str
) -> None:
    reply = service.mint(body, ADMIN)
    assert reply.status == 400
    assert fragment in reply.body["error_description"]


def test_an_exception_in_a_handler_grants_nothing(
    service: TokenService, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(*_: object) -> Reply:
        raise RuntimeError("key store unavailable, password=hunter2")

    app = _App(service, None, service.clock)  # type: ignore[arg-type]
    reply = app.guard(explode, {}, ORDERS, "")
    assert reply.status == 500
    assert reply.body == {
        "error": "server_error",
        "error_description": "internal error; nothing was issued",
    }
