"""The extension point: `Decision` cannot be an allow with errors, and the static fake."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustproof.plan import expected_matrix
from trustproof.policy import REASONS, AccessRequest, Decision, StaticPolicyEngine
from trustproof.spec import load_spec


def request(
    principal: str = "storefront", method: str = "GET", route: str = "/orders"
) -> AccessRequest:
    return AccessRequest(
        principal_kind="workload",
        principal=principal,
        action=method,
        service="orders",
        route=route,
        source_ip="127.0.0.1",
        hour_utc=12,
    )


def test_a_clean_allow_is_a_decision() -> None:
    decision = Decision(True, "allowed-by-policy", ("p",))
    assert decision.allowed
    assert decision.policy_ids == ("p",)


def test_an_allow_with_errors_cannot_exist() -> None:
    with pytest.raises(ValueError, match="no errors"):
        Decision(True, "allowed-by-policy", (), ("policy `p` failed",))


@pytest.mark.parametrize("reason", [r for r in REASONS if r != "allowed-by-policy"])
def test_an_allow_for_another_reason_cannot_exist(reason: str) -> None:
    with pytest.raises(ValueError, match="allowed-by-policy"):
        Decision(True, reason)  # type: ignore[arg-type]


def test_an_unknown_reason_cannot_exist() -> None:
    with pytest.raises(ValueError, match="unknown decision reason 'maybe'"):
        Decision(False, "maybe")  # type: ignore[arg-type]


def test_deny_helper_carries_errors() -> None:
    decision = Decision.deny("engine-error", "boom", elapsed_us=3.0)
    assert (decision.allowed, decision.reason, decision.errors) == (
        False,
        "engine-error",
        ("boom",),
    )
    assert decision.elapsed_us == 3.0


def test_operation_is_the_matrix_spelling() -> None:
    assert request(route="/orders/{id}").operation == "GET /orders/{id}"


def test_static_engine_allows_a_listed_entry() -> None:
    engine = StaticPolicyEngine({("storefront", "GET", "orders", "/orders")})
    decision = engine.decide(request())
    assert decision.allowed
    assert decision.reason == "allowed-by-policy"
    assert decision.policy_ids == (StaticPolicyEngine.POLICY_ID,)


@pytest.mark.parametrize(
    "other",
    [request(principal="payments"), request(method="POST"), request(route="/orders/{id}")],
)
def test_static_engine_denies_anything_else(other: AccessRequest) -> None:
    engine = StaticPolicyEngine({("storefront", "GET", "orders", "/orders")})
    decision = engine.decide(other)
    assert not decision.allowed
    assert decision.reason == "no-matching-permit"


def test_static_engine_from_the_matrix(shop_spec_path: Path) -> None:
    engine = StaticPolicyEngine.from_matrix(expected_matrix(load_spec(shop_spec_path)))
    assert engine.decide(request(route="/orders/{id}")).allowed
    assert not engine.decide(request(method="DELETE", route="/orders/{id}")).allowed
    # datastore cells ("select products") never become entries
    assert not engine.decide(
        request(principal="storefront", method="select", route="products")
    ).allowed
