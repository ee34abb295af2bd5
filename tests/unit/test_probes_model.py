"""Verdicts and the HTTP classification, without sockets: each verdict next to its twin."""

from __future__ import annotations

import json

import pytest

from trustproof.probes.http import classify
from trustproof.probes.model import Case, Evidence, Expectation, Outcome, Result, judge


def case(expect: Expectation) -> Case:
    return Case("authz.outside-matrix", "orders", "gateway", "bob", "GET /orders", expect)


def result(outcome: Outcome, served_by: str | None = None) -> Result:
    return Result(outcome, "", "", Evidence(sent="GET /orders", served_by=served_by))


@pytest.mark.parametrize(
    ("expect", "observed", "served_by", "verdict"),
    [
        (Expectation.allow("orders"), "allowed", "orders", "pass"),
        (Expectation.allow("orders"), "denied_authz", None, "under-permission"),
        (Expectation.allow("orders"), "allowed", None, "not-served"),
        (Expectation.refuse("denied_authz"), "denied_authz", None, "pass"),
        (Expectation.refuse("denied_authz"), "allowed", "orders", "over-permission"),
        (Expectation.refuse("denied_tls"), "denied_authz", None, "wrong-stage"),
        (Expectation.refuse("denied_authz"), "error", None, "error"),
        (Expectation.refuse("denied_authn", "unreachable"), "unreachable", None, "pass"),
        (Expectation.allow("orders"), "unreachable", None, "error"),
    ],
)
def test_judge(expect: Expectation, observed: Outcome, served_by: str | None, verdict: str) -> None:
    assert judge(case(expect), result(observed, served_by)) == verdict


def body(**fields: str) -> bytes:
    return json.dumps(fields).encode()


@pytest.mark.parametrize(
    ("status", "headers", "payload", "outcome", "stage"),
    [
        (200, {"X-Served-By": "orders"}, b"{}", "allowed", ""),
        (404, {"X-Served-By": "orders"}, b"{}", "allowed", ""),  # the handler ran
        (
            401,
            {"X-Served-By": "orders"},
            body(error="not from the gateway", reason="missing"),
            "denied_authn",
            "service",
        ),
        (401, {}, body(stage="tls", reason="client-cert-required"), "denied_tls", "tls"),
        (401, {}, body(stage="token", reason="token-expired"), "denied_authn", "token"),
        (403, {}, body(stage="policy", reason="no-matching-permit"), "denied_authz", "policy"),
        (400, {}, body(stage="path", reason="bad-path"), "denied_authz", "path"),
        (400, {}, b"<html>400 No required SSL certificate was sent</html>", "denied_tls", "tls"),
        (496, {}, b"", "denied_tls", "tls"),
        # a 5xx is neither served nor refused
        (502, {}, body(stage="upstream", reason="unavailable"), "inconclusive", "upstream"),
    ],
)
def test_classify(
    status: int, headers: dict[str, str], payload: bytes, outcome: str, stage: str
) -> None:
    assert classify(status, headers, payload)[:2] == (outcome, stage)


def test_case_ids_are_stable_and_distinguish_variants() -> None:
    base = Case(
        "authz.path-traversal",
        "orders",
        "gateway",
        "storefront",
        "GET /orders/{id}",
        Expectation.allow("orders"),
        variant="dot-dot",
    )
    assert base.id == "authz.path-traversal | orders | storefront | GET /orders/{id} | dot-dot"
    other = Case(
        "authz.path-traversal",
        "orders",
        "gateway",
        "storefront",
        "GET /orders/{id}",
        Expectation.allow("orders"),
        variant="double-slash",
    )
    assert base.id != other.id


@pytest.mark.parametrize(
    ("status", "headers", "outcome"),
    [
        (403, {"X-Trustproof-Decision": "deny"}, "denied_authz"),
        (403, {}, "allowed"),  # forwarded: the service answered 403 without its marker
        (404, {}, "allowed"),
        (401, {}, "allowed"),
    ],
)
def test_behind_a_gateway_only_its_own_refusal_counts(
    status: int, headers: dict[str, str], outcome: str
) -> None:
    payload = body(stage="policy", reason="no-matching-permit")
    assert classify(status, headers, payload, from_gateway=True)[0] == outcome
