"""The gateway pipeline as a table: each refusal reason next to its passing twin, no sockets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from trustproof.clock import ManualClock
from trustproof.gateway.config import gateway_config
from trustproof.gateway.pipeline import InboundRequest, Peer, Pipeline, Verdict
from trustproof.gateway.prepared import PreparedCache
from trustproof.gateway.proof import PROOF_HEADER, ProofCheck, verify_proof
from trustproof.policy import AccessRequest, Decision, StaticPolicyEngine
from trustproof.scrub import Secret
from trustproof.spec import load_spec
from trustproof.tokens import BrokenTokens, KeyRing, RevocationList, TokenIssuer, TokenValidator
from trustproof.tokens.issuer import sign

ISSUER = "https://127.0.0.1:9443"
TD = "spiffe://shop.test"
ORDERS_AUD = f"{TD}/orders"
STOREFRONT = Peer(f"{TD}/storefront", "thumb-storefront")


class Fabric:
    def __init__(self, shop_spec_path: Path) -> None:
        self.clock = ManualClock(datetime(2030, 1, 1, tzinfo=UTC))
        self.keys = KeyRing(self.clock)
        self.revocations = RevocationList(self.clock)
        self.issuer = TokenIssuer(ISSUER, self.keys, self.clock)
        self.validator = TokenValidator(ISSUER, self.keys, self.revocations, self.clock)
        self.spec = load_spec(shop_spec_path)
        self.engine = StaticPolicyEngine(
            {
                ("storefront", "GET", "orders", "/orders/{id}"),
                ("storefront", "POST", "orders", "/orders"),
            }
        )
        self.pipeline = Pipeline(
            gateway_config(self.spec, "orders"), self.validator, self.engine, self.clock
        )

    def token(
        self, subject: str = "storefront", thumb: str | None = "thumb-storefront", **kwargs: object
    ) -> str:
        issued = self.issuer.issue(
            f"{TD}/{subject}", ORDERS_AUD, cnf_x5t_s256=thumb, client_id=f"{TD}/{subject}", **kwargs
        )  # type: ignore[arg-type]
        return issued.token.reveal()

    def decide(
        self,
        *,
        token: str | None = None,
        peer: Peer = STOREFRONT,
        method: str = "GET",
        target: str = "/orders/42",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> Verdict:
        all_headers = (("Authorization", f"Bearer {token}"),) if token else ()
        return self.pipeline.decide(
            InboundRequest("rid-1", method, target, all_headers + headers, "127.0.0.1", peer)
        )


@pytest.fixture
def fabric(shop_spec_path: Path) -> Fabric:
    return Fabric(shop_spec_path)


def test_valid_call_is_allowed_with_canonical_path_and_verified_identity(fabric: Fabric) -> None:
    verdict = fabric.decide(token=fabric.token(), target="/orders//x/../42/")
    assert verdict.allowed, verdict
    assert verdict.route == "GET /orders/{id}"
    assert verdict.canonical is not None
    assert verdict.canonical.target == "/orders/42"
    headers = dict(verdict.upstream_headers)
    assert headers["X-Trustproof-Principal"] == "storefront"
    assert headers["X-Trustproof-Principal-Kind"] == "workload"
    assert headers["X-Trustproof-Client-Spiffe-Id"] == f"{TD}/storefront"
    assert "Authorization" not in headers
    assert verdict.token_us is not None
    assert verdict.policy_us is not None


@pytest.mark.parametrize(
    ("case", "status", "stage", "reason"),
    [
        ("no-client-cert", 401, "tls", "client-cert-required"),
        ("refused-cert", 401, "tls", "client-cert-revoked"),
        ("unknown-peer", 401, "tls", "client-cert-unknown-identity"),
        ("no-token", 401, "token", "token-missing"),
        ("basic-auth", 401, "token", "token-wrong-scheme"),
        ("two-tokens", 401, "token", "token-ambiguous"),
        ("expired", 401, "token", "token-expired"),
        ("wrong-audience", 401, "token", "token-wrong-audience"),
        ("alg-none", 401, "token", "token-alg-not-allowed"),
        ("revoked", 401, "token", "token-revoked"),
        ("stolen", 401, "token", "token-cnf-mismatch"),
        ("other-subject", 401, "token", "token-subject-mismatch"),
        ("unbound-workload-token", 401, "token", "token-unbound"),
        ("encoded-slash", 400, "path", "bad-path"),
        ("no-route", 403, "policy", "no-such-route"),
        ("method-swap", 403, "policy", "method-not-allowed"),
        ("outside-matrix", 403, "policy", "no-matching-permit"),
    ],
)
def test_each_refusal(fabric: Fabric, case: str, status: int, stage: str, reason: str) -> None:
    good = fabric.token()
    broken = BrokenTokens(fabric.issuer, fabric.keys, fabric.clock)
    args: dict[str, Callable[[], Verdict]] = {
        "no-client-cert": lambda: fabric.decide(token=good, peer=Peer()),
        "refused-cert": lambda: fabric.decide(token=good, peer=Peer(refusal="revoked")),
        "unknown-peer": lambda: fabric.decide(token=good, peer=Peer(f"{TD}/mallory", "t")),
        "no-token": fabric.decide,
        "basic-auth": lambda: fabric.decide(headers=(("Authorization", "Basic dXNlcjpwYXNz"),)),
        "two-tokens": lambda: fabric.decide(
            token=good, headers=(("authorization", f"Bearer {good}"),)
        ),
        "expired": lambda: fabric.decide(
            token=broken.template(f"{TD}/storefront", ORDERS_AUD, cnf_x5t_s256="thumb-storefront")
            .expired()
            .token.reveal()
        ),
        "wrong-audience": lambda: fabric.decide(
            token=broken.template(f"{TD}/storefront", ORDERS_AUD, cnf_x5t_s256="thumb-storefront")
            .wrong_audience()
            .token.reveal()
        ),
        "alg-none": lambda: fabric.decide(
            token=broken.template(f"{TD}/storefront", ORDERS_AUD, cnf_x5t_s256="thumb-storefront")
            .alg_none()
            .token.reveal()
        ),
        "revoked": lambda: _revoked(fabric),
        "stolen": lambda: fabric.decide(token=fabric.token(thumb="thumb-of-someone-else")),
        "other-subject": lambda: fabric.decide(token=fabric.token("payments")),
        "unbound-workload-token": lambda: fabric.decide(token=fabric.token(thumb=None)),
        "unknown-subject": lambda: (
            fabric.decide(token=fabric.token("mallory"), peer=Peer(f"{TD}/mallory", "x"))
            if False
            else fabric.decide(token=fabric.token("mallory", thumb=None), peer=Peer())
        ),
        "encoded-slash": lambda: fabric.decide(token=good, target="/orders%2F42"),
        "no-route": lambda: fabric.decide(token=good, target="/admin"),
        "method-swap": lambda: fabric.decide(token=good, method="PUT"),
        "outside-matrix": lambda: fabric.decide(token=good, target="/orders"),
    }
    verdict = args[case]()
    assert not verdict.allowed
    assert (verdict.status, verdict.stage, verdict.reason) == (status, stage, reason), verdict
    assert verdict.upstream_headers == ()


def _revoked(fabric: Fabric) -> Verdict:
    token = fabric.token()
    jti = str(fabric.validator.inspect(token).claims["jti"])
    fabric.revocations.revoke(jti, fabric.clock.now() + timedelta(minutes=5))
    return fabric.decide(token=token)


def test_forged_identity_headers_are_stripped_and_replaced(fabric: Fabric) -> None:
    verdict = fabric.decide(
        token=fabric.token(),
        headers=(
            ("X-Trustproof-Principal", "admin"),
            ("X-Forwarded-Client-Cert", "By=spiffe://x"),
            ("x-remote-user", "root"),
            ("X-Request-Color", "blue"),
        ),
    )
    assert verdict.allowed
    headers = verdict.upstream_headers
    assert ("X-Trustproof-Principal", "admin") not in headers
    assert ("X-Trustproof-Principal", "storefront") in headers
    assert ("X-Request-Color", "blue") in headers  # ordinary headers pass through
    assert not any(
        name.lower() in ("x-forwarded-client-cert", "x-remote-user") for name, _ in headers
    )
    assert set(verdict.stripped) == {
        "x-trustproof-principal",
        "x-forwarded-client-cert",
        "x-remote-user",
    }


class ExplodingEngine:
    def decide(self, request: AccessRequest) -> Decision:
        raise RuntimeError("policy store corrupted")


class ExplodingValidator(TokenValidator):
    def validate(self, *args: object, **kwargs: object) -> object:  # type: ignore[override]
        raise RuntimeError("jwks fetch failed")


@pytest.mark.parametrize("stage", ["token", "policy", "path"])
def test_a_fault_at_any_stage_denies(
    fabric: Fabric, stage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if stage == "token":
        fabric.pipeline.validator = ExplodingValidator(ISSUER, fabric.keys, None, fabric.clock)
    elif stage == "policy":
        fabric.pipeline.engine = ExplodingEngine()
    else:

        def boom(_: str) -> None:
            raise ValueError("parser bug")

        monkeypatch.setattr("trustproof.gateway.pipeline.canonicalize", boom)
    verdict = fabric.decide(token=fabric.token())
    assert not verdict.allowed
    assert (verdict.status, verdict.stage, verdict.reason) == (500, "internal", "gateway-error")


def test_token_of_an_unknown_subject_is_refused(fabric: Fabric) -> None:
    fabric.pipeline.config = replace(gateway_config(fabric.spec, "orders"), client_cert="optional")
    verdict = fabric.decide(token=fabric.token("mallory", thumb=None), peer=Peer())
    assert (verdict.stage, verdict.reason) == ("token", "token-unknown-subject")
    assert verdict.token_subject == f"{TD}/mallory"


def test_optional_token_uses_the_certificate_identity(fabric: Fabric) -> None:
    config = gateway_config(fabric.spec, "orders")
    fabric.pipeline.config = replace(config, token="optional")
    assert fabric.decide().allowed  # storefront's certificate alone
    anonymous = fabric.decide(peer=Peer())
    assert (anonymous.stage, anonymous.reason) == ("tls", "client-cert-required")
    fabric.pipeline.config = replace(config, token="optional", client_cert="optional")
    anonymous = fabric.decide(peer=Peer())
    assert (anonymous.stage, anonymous.reason) == ("token", "anonymous")


PROOF_KEY = bytes(range(32))


def test_the_gateway_proof_signs_what_is_forwarded_at_the_real_time(fabric: Fabric) -> None:
    """Stamped with wall time (the service checks it against its own clock), not the injected
    clock that lifecycle scenarios move."""
    config = gateway_config(fabric.spec, "orders", proof_key=Secret(PROOF_KEY))
    fabric.pipeline.config = config
    wall = 1_900_000_000.0
    fabric.pipeline.wall_time = lambda: wall
    fabric.clock.advance(timedelta(hours=3))  # must not matter
    verdict = fabric.decide(
        token=fabric.token(),
        target="/orders//x/../42/",
        headers=((PROOF_HEADER, "v1;t=1;sig=" + "A" * 43), ("X-Trustproof-Principal", "admin")),
    )
    assert verdict.allowed, verdict
    assert verdict.upstream_target == "/orders/42"
    proofs = [value for name, value in verdict.upstream_headers if name == PROOF_HEADER]
    assert len(proofs) == 1  # the caller's copy was stripped, the gateway's added
    assert proofs[0].startswith(f"v1;t={int(wall)};sig=")
    assert PROOF_HEADER.lower() in verdict.stripped
    now = wall
    headers = verdict.upstream_headers
    assert verify_proof(PROOF_KEY, "GET", "/orders/42", headers, now) == ProofCheck(True, "ok")
    # The twin: the same proof does not fit the path the caller sent, nor another key.
    raw = verify_proof(PROOF_KEY, "GET", "/orders//x/../42/", headers, now)
    assert raw == ProofCheck(False, "bad-signature")
    other = verify_proof(bytes(32), "GET", "/orders/42", headers, now)
    assert other == ProofCheck(False, "bad-signature")
    assert verify_proof(PROOF_KEY, "GET", "/orders/42", headers, wall + 31).reason == "stale"


def test_without_a_proof_key_nothing_is_signed(fabric: Fabric) -> None:
    verdict = fabric.decide(token=fabric.token(), headers=((PROOF_HEADER, "v1;t=1;sig=x"),))
    assert verdict.allowed
    assert verdict.upstream_target == "/orders/42"
    assert PROOF_HEADER not in dict(verdict.upstream_headers)  # and a caller's copy is stripped


def test_the_proof_key_never_shows_in_a_repr(fabric: Fabric) -> None:
    config = gateway_config(fabric.spec, "orders", proof_key=Secret(PROOF_KEY))
    assert "proof_key=Secret(" in repr(config)
    assert repr(PROOF_KEY) not in repr(config)
    assert PROOF_KEY.hex() not in repr(config)


def test_a_workload_token_with_cnf_null_is_refused(fabric: Fabric) -> None:
    """`"cnf": null` must not pass for a bound token (it would skip the binding check)."""
    fabric.pipeline.config = replace(gateway_config(fabric.spec, "orders"), client_cert="optional")
    claims = fabric.issuer.claims_for(f"{TD}/storefront", ORDERS_AUD, client_id=f"{TD}/storefront")
    claims["cnf"] = None
    token = sign(claims, fabric.keys.active)
    verdict = fabric.decide(token=token, peer=Peer())
    assert (verdict.stage, verdict.reason) == ("token", "token-malformed")
    twin = fabric.decide(token=fabric.token(thumb=None), peer=Peer())  # no cnf at all
    assert (twin.stage, twin.reason) == ("token", "token-unbound")


# -- the prepared-request cache (`gateway/prepared.py`): request shape only, never trust ----------


def test_a_repeated_request_is_refused_once_its_token_is_revoked(fabric: Fabric) -> None:
    token = fabric.token()
    assert fabric.decide(token=token).allowed  # the twin: the same request, not yet revoked
    assert fabric.decide(token=token).allowed
    assert len(fabric.pipeline.prepared) == 1  # the second one came from the cache
    jti = str(fabric.validator.inspect(token).claims["jti"])
    fabric.revocations.revoke(jti, fabric.clock.now() + timedelta(minutes=5))
    verdict = fabric.decide(token=token)
    assert (verdict.allowed, verdict.stage, verdict.reason) == (False, "token", "token-revoked")
    assert verdict.upstream_headers == ()


def test_a_repeated_request_is_refused_once_its_certificate_is_revoked(fabric: Fabric) -> None:
    token = fabric.token()
    assert fabric.decide(token=token).allowed
    revoked = replace(STOREFRONT, refusal="revoked")  # what the server shell says from now on
    verdict = fabric.decide(token=token, peer=revoked)
    assert (verdict.allowed, verdict.stage, verdict.reason) == (
        False,
        "tls",
        "client-cert-revoked",
    )
    assert len(fabric.pipeline.prepared) == 1


def test_a_repeated_request_is_refused_once_its_token_expires(fabric: Fabric) -> None:
    token = fabric.token(ttl=timedelta(minutes=1))
    assert fabric.decide(token=token).allowed
    fabric.clock.advance(timedelta(minutes=5))
    verdict = fabric.decide(token=token)
    assert (verdict.allowed, verdict.reason) == (False, "token-expired")


def test_a_repeated_request_follows_a_policy_swap(fabric: Fabric) -> None:
    token = fabric.token()
    assert fabric.decide(token=token).allowed
    fabric.pipeline.engine = StaticPolicyEngine(set())  # a reload that removed the permit
    verdict = fabric.decide(token=token)
    assert (verdict.allowed, verdict.stage, verdict.reason) == (
        False,
        "policy",
        "no-matching-permit",
    )


def test_a_repeated_request_follows_a_configuration_swap(fabric: Fabric) -> None:
    config = gateway_config(fabric.spec, "orders")
    fabric.pipeline.config = replace(config, token="optional")
    assert fabric.decide().allowed
    fabric.pipeline.config = config  # token required again: the cached shape is dropped
    verdict = fabric.decide()
    assert (verdict.allowed, verdict.reason) == (False, "token-missing")


def test_a_cached_shape_keeps_each_refusal_of_the_request_stages(fabric: Fabric) -> None:
    token = fabric.token()
    for _ in range(2):
        override = fabric.decide(token=token, headers=(("X-HTTP-Method-Override", "DELETE"),))
        assert (override.stage, override.reason) == ("request", "method-override")
        bad = fabric.decide(token=token, target="/orders%2F42")
        assert (bad.stage, bad.reason) == ("path", "bad-path")
        route = fabric.decide(token=token, method="PUT")
        assert (route.stage, route.reason) == ("policy", "method-not-allowed")
    assert len(fabric.pipeline.prepared) == 3


def test_the_prepared_cache_is_bounded_and_never_shows_a_token(fabric: Fabric) -> None:
    fabric.pipeline.prepared = PreparedCache(size=2)
    token = fabric.token()
    for n in range(5):
        assert fabric.decide(token=token, target=f"/orders/{n}").allowed
    assert len(fabric.pipeline.prepared) == 2
    assert token not in repr(fabric.pipeline.prepared)
    with pytest.raises(ValueError, match="at least one"):
        PreparedCache(size=0)
