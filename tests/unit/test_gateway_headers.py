"""Header variants and request lines at the pipeline level (no sockets): what a caller sends that
the service must never see, and what is refused outright — each with its passing twin."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from trustproof.clock import ManualClock
from trustproof.gateway.config import gateway_config
from trustproof.gateway.headers import (
    IDENTITY_HEADER_TABLE,
    forwarding_headers,
    identity_claims,
    normalised,
    relayable,
    request_problem,
)
from trustproof.gateway.http1 import CONSUMED
from trustproof.gateway.pipeline import REASONS, STAGES, InboundRequest, Peer, Pipeline, Verdict
from trustproof.policy import StaticPolicyEngine
from trustproof.spec import load_spec
from trustproof.spec.values import HeaderName
from trustproof.tokens import KeyRing, RevocationList, TokenIssuer, TokenValidator

ISSUER = "https://127.0.0.1:9443"
TD = "spiffe://shop.test"
STOREFRONT = Peer(f"{TD}/storefront", "thumb-storefront")


class Fabric:
    def __init__(self, shop_spec_path: Path) -> None:
        clock = ManualClock(datetime(2030, 1, 1, tzinfo=UTC))
        keys = KeyRing(clock)
        self.issuer = TokenIssuer(ISSUER, keys, clock)
        validator = TokenValidator(ISSUER, keys, RevocationList(clock), clock)
        engine = StaticPolicyEngine({("storefront", "GET", "orders", "/orders/{id}")})
        config = gateway_config(load_spec(shop_spec_path), "orders")
        self.pipeline = Pipeline(config, validator, engine, clock)

    def token(self) -> str:
        subject = f"{TD}/storefront"
        issued = self.issuer.issue(
            subject, f"{TD}/orders", cnf_x5t_s256="thumb-storefront", client_id=subject
        )
        return issued.token.reveal()

    def decide(
        self, *, token: str | None = None, method: str = "GET", target: str = "/"
    ) -> Verdict:
        headers = (("Authorization", f"Bearer {token}"),) if token else ()
        return self.pipeline.decide(
            InboundRequest("rid-1", method, target, headers, "127.0.0.1", STOREFRONT)
        )


@pytest.fixture
def fabric(shop_spec_path: Path) -> Fabric:
    return Fabric(shop_spec_path)


def decide(
    fabric: Fabric,
    headers: tuple[tuple[str, str], ...] = (),
    *,
    version: tuple[int, int] = (1, 1),
    source_ip: str = "127.0.0.1",
) -> Verdict:
    all_headers = (("Authorization", f"Bearer {fabric.token()}"), *headers)
    request = InboundRequest(
        "rid-1", "GET", "/orders/42", all_headers, source_ip, STOREFRONT, version=version
    )
    return fabric.pipeline.decide(request)


def names(verdict: Verdict) -> list[str]:
    return [normalised(name) for name, _ in verdict.upstream_headers]


@pytest.mark.parametrize(
    "name",
    [
        "X_Trustproof_Principal",
        "x_trustproof_roles",
        "X-TRUSTPROOF-PRINCIPAL",
        "X_Forwarded_Client_Cert",
        "x_remote_user",
        "Remote_User",
        "X_SSL_Client_S_DN",
    ],
)
def test_identity_header_variants_never_reach_the_service(fabric: Fabric, name: str) -> None:
    verdict = decide(fabric, ((name, "admin"), ("X-Request-Color", "blue")))
    assert verdict.allowed, verdict
    assert (name, "admin") not in verdict.upstream_headers
    assert ("X-Request-Color", "blue") in verdict.upstream_headers  # the passing twin
    assert normalised(name) in verdict.stripped
    assert names(verdict).count("x-trustproof-principal") == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Forwarded", "for=10.0.0.1;proto=http"),
        ("X-Real-IP", "10.0.0.1"),
        ("X_Real_IP", "10.0.0.1"),
        ("X-Forwarded-For", "10.0.0.1"),
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Host", "admin.internal"),
        ("X_Forwarded_For", "10.0.0.1"),
        ("True-Client-IP", "10.0.0.1"),
    ],
)
def test_client_address_headers_are_set_by_the_gateway_never_relayed(
    fabric: Fabric, name: str, value: str
) -> None:
    verdict = decide(fabric, ((name, value),), source_ip="127.0.0.7")
    assert verdict.allowed, verdict
    assert (name, value) not in verdict.upstream_headers
    headers = verdict.upstream_headers
    assert ("Forwarded", "for=127.0.0.7;proto=https") in headers
    assert ("X-Forwarded-For", "127.0.0.7") in headers
    assert ("X-Real-IP", "127.0.0.7") in headers
    assert ("X-Forwarded-Proto", "https") in headers
    assert names(verdict).count("x-forwarded-for") == 1
    assert "x-forwarded-host" not in names(verdict)


def test_hop_by_hop_variants_and_fields_named_by_connection_are_dropped(fabric: Fabric) -> None:
    verdict = decide(
        fabric,
        (
            ("Connection", "X-Secret-Hop, keep_alive"),
            ("X-Secret-Hop", "1"),
            ("X_Secret_Hop", "1"),
            ("Transfer_Encoding", "chunked"),
            ("Content_Length", "5"),
            ("Keep-Alive", "timeout=5"),
            ("X-Kept", "1"),
        ),
    )
    assert verdict.allowed, verdict
    kept = names(verdict)
    for dropped in ("connection", "x-secret-hop", "transfer-encoding", "content-length"):
        assert dropped not in kept
    assert "keep-alive" not in kept
    assert "x-kept" in kept


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("X-HTTP-Method-Override", "method-override"),
        ("X-HTTP-Method", "method-override"),
        ("X-Method-Override", "method-override"),
        ("x_http_method_override", "method-override"),
        ("X-Original-URL", "url-override"),
        ("X-Rewrite-URL", "url-override"),
    ],
)
def test_override_headers_are_refused_with_a_clear_denial(
    fabric: Fabric, name: str, reason: str
) -> None:
    verdict = decide(fabric, ((name, "DELETE"),))
    assert (verdict.allowed, verdict.status, verdict.stage, verdict.reason) == (
        False,
        400,
        "request",
        reason,
    )
    assert name in verdict.detail
    assert verdict.upstream_headers == ()
    assert decide(fabric, (("X-Method", "DELETE"),)).allowed  # a look-alike is no override


@pytest.mark.parametrize("version", [(0, 9), (2, 0), (1, 2), (3, 0)])
def test_only_http_1_0_and_1_1_request_lines_are_accepted(
    fabric: Fabric, version: tuple[int, int]
) -> None:
    verdict = decide(fabric, version=version)
    assert (verdict.allowed, verdict.status, verdict.stage, verdict.reason) == (
        False,
        400,
        "request",
        "http-version",
    )
    assert "only HTTP/1.0 and 1.1" in verdict.detail


@pytest.mark.parametrize("version", [(1, 0), (1, 1)])
def test_http_1_0_and_1_1_pass(fabric: Fabric, version: tuple[int, int]) -> None:
    assert decide(fabric, version=version).allowed


def test_stages_and_reasons_are_closed_vocabularies(fabric: Fabric) -> None:
    verdicts = [
        decide(fabric),
        decide(fabric, version=(0, 9)),
        decide(fabric, (("X-HTTP-Method", "PUT"),)),
        fabric.decide(),
        fabric.decide(target="/orders/%2F"),
        fabric.decide(token=fabric.token(), method="DELETE"),
    ]
    for verdict in verdicts:
        assert verdict.stage in STAGES
        assert verdict.reason in REASONS


def test_relayable_and_request_problem_directly() -> None:
    kept, stripped = relayable(
        [("X_User", "root"), ("Authorization", "Bearer x"), ("Accept", "*/*")], CONSUMED
    )
    assert kept == [("Accept", "*/*")]
    assert stripped == ("x-user",)
    assert request_problem((1, 1), [("Accept", "*/*")]) is None
    problem = request_problem((0, 9), [])
    assert problem is not None
    assert "HTTP/0.9" in problem.detail
    assert ("Forwarded", 'for="[::1]";proto=https') in forwarding_headers("::1", "https")


# -- the real-world table: every header, every spelling, duplicates --------------------------

TABLE_NAMES = [header.name for header in IDENTITY_HEADER_TABLE]


def _spellings(name: str) -> list[str]:
    return [
        name,
        name.lower(),
        name.upper(),
        name.replace("-", "_"),
        name.lower().replace("-", "_"),
    ]


def test_the_table_names_each_header_once_with_a_source() -> None:
    lowered = [name.lower() for name in TABLE_NAMES]
    assert len(lowered) == len(set(lowered))
    assert all(header.source for header in IDENTITY_HEADER_TABLE)
    for wanted in (
        "X-Forwarded-User",
        "X-Authenticated-User",
        "X-Remote-User",
        "Remote-User",
        "X-Auth-Request-Preferred-Username",
        "X-Consumer-Custom-Id",
        "X-Goog-Authenticated-User-Email",
        "X-Amzn-Oidc-Data",
        "X-MS-CLIENT-PRINCIPAL",
        "X-SSL-Client-Cert",
        "X-Forwarded-Client-Cert",
        "X-SPIFFE-ID",
        "X-Webauth-User",
        "X-Forwarded-Preferred-Username",
    ):
        assert wanted.lower() in lowered, wanted
    companions = {c for header in IDENTITY_HEADER_TABLE for c in header.companions}
    assert companions <= set(TABLE_NAMES)


@pytest.mark.parametrize("name", TABLE_NAMES)
def test_every_table_header_in_every_spelling_and_duplicated_is_stripped(name: str) -> None:
    sent = [(spelling, "storefront") for spelling in _spellings(name)]
    sent += [(name, "second"), ("Accept", "*/*")]
    kept, stripped = relayable(sent, CONSUMED)
    assert kept == [("Accept", "*/*")]  # the passing twin: an ordinary header is relayed
    assert stripped == (normalised(name),) * (len(sent) - 1)
    assert identity_claims(sent) == stripped


@pytest.mark.parametrize("name", TABLE_NAMES)
def test_every_table_header_is_stripped_by_the_gateway(fabric: Fabric, name: str) -> None:
    forged = "spiffe://shop.test/orders"
    verdict = decide(fabric, ((name, forged), (name.replace("-", "_"), forged)))
    assert verdict.allowed, verdict
    assert (name, forged) not in verdict.upstream_headers
    assert forged not in [value for _, value in verdict.upstream_headers]
    assert verdict.stripped.count(normalised(name)) == 2
    assert names(verdict).count("x-trustproof-principal") == 1  # the gateway's own


OVERRIDES = ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "X-Original-URL"]


@pytest.mark.parametrize("name", [*OVERRIDES, "X_Rewrite_URL"])
def test_override_headers_are_also_stripped_should_the_refusal_be_skipped(name: str) -> None:
    kept, stripped = relayable([(name, "DELETE"), ("X-Method", "DELETE")], CONSUMED)
    assert kept == [("X-Method", "DELETE")]
    assert stripped == (normalised(name),)


def test_the_specs_own_identity_headers_are_stripped_too() -> None:
    sent = [("X-My-User", "admin"), ("x_my_user", "admin"), ("X-My-Userx", "kept")]
    assert relayable(sent, CONSUMED) == (sent, ())  # unknown to the table: relayed
    kept, stripped = relayable(sent, CONSUMED, frozenset({"x-my-user"}))
    assert kept == [("X-My-Userx", "kept")]
    assert stripped == ("x-my-user", "x-my-user")


def test_the_gateway_strips_the_specs_identity_headers(shop_spec_path: Path) -> None:
    spec = replace(load_spec(shop_spec_path), identity_headers=(HeaderName("X-My-User"),))
    config = gateway_config(spec, "orders")
    assert config.identity_headers == frozenset({"x-my-user"})
    fabric = Fabric(shop_spec_path)
    fabric.pipeline.config = config
    verdict = decide(fabric, (("X_MY_USER", "admin"), ("X-Other", "1")))
    assert verdict.allowed, verdict
    assert "x-my-user" not in names(verdict)
    assert "x-other" in names(verdict)
    assert verdict.stripped == ("x-my-user",)
