"""`CedarPolicyEngine` on the shop: reasons, policy ids, context, failing closed, role changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cedarpy
import pytest
from policy_support import ShopCopy

from trustproof.errors import SpecError
from trustproof.policy import AccessRequest, CedarPolicyEngine
from trustproof.spec import load_spec


def alice(**changes: Any) -> AccessRequest:
    fields: dict[str, Any] = {
        "principal_kind": "persona",
        "principal": "alice",
        "roles": ("customer",),
        "action": "POST",
        "service": "storefront",
        "route": "/checkout",
        "client_cert": False,
        "source_ip": "127.0.0.1",
        "token_roles": ("customer",),
        "hour_utc": 12,
    }
    fields.update(changes)
    return AccessRequest(**fields)


@pytest.fixture
def engine(shop_spec_path: Path) -> CedarPolicyEngine:
    return CedarPolicyEngine.from_spec(load_spec(shop_spec_path))


def test_allowed_by_the_policy_named_by_its_id(engine: CedarPolicyEngine) -> None:
    decision = engine.decide(alice())
    assert decision.allowed
    assert decision.reason == "allowed-by-policy"
    assert decision.policy_ids == ("customers-checkout",)
    assert decision.errors == ()
    assert decision.elapsed_us > 0


def test_no_permit_is_the_default_deny(engine: CedarPolicyEngine) -> None:
    decision = engine.decide(alice(principal="bob", roles=("visitor",)))
    assert not decision.allowed
    assert decision.reason == "no-matching-permit"
    assert decision.policy_ids == ()


def test_roles_come_from_the_directory_not_the_request(engine: CedarPolicyEngine) -> None:
    claimed = alice(principal="bob", roles=("customer",), token_roles=("customer",))
    assert engine.decide(claimed).reason == "no-matching-permit"


def test_workload_principal(engine: CedarPolicyEngine) -> None:
    storefront = alice(
        principal_kind="workload",
        principal="storefront",
        roles=(),
        service="orders",
        route="/orders/{id}",
        action="GET",
        client_cert=True,
        token_roles=(),
    )
    assert engine.decide(storefront).policy_ids == ("storefront-reads-orders",)
    assert engine.decide(
        storefront.__class__(**{**storefront.__dict__, "action": "DELETE"})
    ).reason == ("no-matching-permit")


def test_a_forbid_wins_and_is_named(shop: ShopCopy) -> None:
    shop.add_policy(
        '@id("no-checkout-at-night")\n'
        'forbid (principal, action == Action::"POST", resource == Route::"storefront /checkout")\n'
        "when { context.hour_utc < 6 };\n"
    )
    engine = CedarPolicyEngine.from_spec(shop.spec())
    night = engine.decide(alice(hour_utc=3))
    assert (night.allowed, night.reason) == (False, "forbidden-by-policy")
    assert night.policy_ids == ("no-checkout-at-night",)
    assert engine.decide(alice(hour_utc=12)).allowed  # the twin: daytime is still allowed


def test_a_policy_without_id_is_named_by_file_and_line(shop: ShopCopy) -> None:
    line = shop.add_policy(
        'forbid (principal, action, resource == Route::"storefront /checkout")\n'
        "unless { context.client_cert };\n"
    )
    decision = CedarPolicyEngine.from_spec(shop.spec()).decide(alice(client_cert=False))
    assert decision.reason == "forbidden-by-policy"
    assert decision.policy_ids == (f"policies/shop.cedar:{line}",)


def test_a_failing_forbid_refuses_although_cedar_allows(shop: ShopCopy) -> None:
    # Cedar skips a policy that fails to evaluate, so an erroring forbid would let the permit
    # through. trustproof refuses instead: any evaluation error is a denial.
    shop.add_policy(
        '@id("overflowing-forbid")\n'
        'forbid (principal, action, resource == Route::"storefront /checkout")\n'
        "when { context.hour_utc * 9223372036854775807 > 100 };\n"
    )
    engine = CedarPolicyEngine.from_spec(shop.spec())
    decision = engine.decide(alice(hour_utc=2))
    assert not decision.allowed
    assert decision.reason == "policy-error"
    assert decision.policy_ids == ("overflowing-forbid",)
    assert any("overflowing-forbid" in error and "overflow" in error for error in decision.errors)
    # The twin: without the overflow (hour 0) the same forbid evaluates cleanly, and the permit
    # stands.
    assert engine.decide(alice(hour_utc=0)).allowed


@pytest.mark.parametrize(
    ("condition", "good", "bad"),
    [
        ("context.client_cert", {"client_cert": True}, {"client_cert": False}),
        (
            'context.source_ip.isInRange(ip("10.0.0.0/8"))',
            {"source_ip": "10.1.2.3"},
            {"source_ip": "192.168.0.1"},
        ),
        ('context.token_roles.contains("customer")', {}, {"token_roles": ("visitor",)}),
        ("context.hour_utc >= 9 && context.hour_utc < 17", {"hour_utc": 9}, {"hour_utc": 17}),
    ],
)
def test_each_context_field_reaches_the_policies(
    shop: ShopCopy, condition: str, good: dict[str, Any], bad: dict[str, Any]
) -> None:
    shop.edit_policies(
        lambda text: text.replace(
            'resource == Route::"storefront /checkout");',
            f'resource == Route::"storefront /checkout")\nwhen {{ {condition} }};',
        )
    )
    engine = CedarPolicyEngine.from_spec(shop.spec())
    assert engine.decide(alice(**good)).allowed
    refused = engine.decide(alice(**bad))
    assert (refused.allowed, refused.reason) == (False, "no-matching-permit")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"source_ip": "not-an-address"}, "invalid IP address"),
        ({"action": "TRACE"}, 'Action::"TRACE"'),
        ({"principal_kind": "robot"}, "unknown principal kind 'robot'"),
        ({"hour_utc": 24}, "hour_utc 24 is not 0-23"),
        ({"hour_utc": True}, "hour_utc True is not 0-23"),
        ({"client_cert": "yes"}, "client_cert"),
    ],
)
def test_a_malformed_request_is_an_engine_error(
    engine: CedarPolicyEngine, change: dict[str, Any], fragment: str
) -> None:
    decision = engine.decide(alice(**change))
    assert (decision.allowed, decision.reason) == (False, "engine-error")
    assert any(fragment in error for error in decision.errors), decision.errors


def test_an_exception_inside_cedar_is_an_engine_error(
    engine: CedarPolicyEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: object, **kwargs: object) -> object:
        raise RuntimeError("cedar fell over")

    monkeypatch.setattr(cedarpy, "is_authorized", explode)
    decision = engine.decide(alice())
    assert (decision.allowed, decision.reason) == (False, "engine-error")
    assert decision.errors == ("RuntimeError: cedar fell over",)


def test_an_unknown_cedar_answer_is_not_an_allow(
    engine: CedarPolicyEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Allow needs result.allowed to be True; an answer that is neither Allow nor Deny refuses.
    unknown = cedarpy.AuthzResult({"decision": "NoDecision", "diagnostics": {}})
    monkeypatch.setattr(cedarpy, "is_authorized", lambda *a, **k: unknown)
    decision = engine.decide(alice())
    assert (decision.allowed, decision.reason) == (False, "engine-error")
    assert "NoDecision" in decision.errors[0]


def test_repeated_requests_come_from_the_cache(engine: CedarPolicyEngine) -> None:
    first = engine.decide(alice())
    again = engine.decide(alice())
    assert not first.cached
    assert again.cached
    assert (again.allowed, again.reason, again.policy_ids) == (
        True,
        "allowed-by-policy",
        first.policy_ids,
    )


def test_errors_are_never_cached(engine: CedarPolicyEngine) -> None:
    bad = alice(source_ip="nowhere")
    engine.decide(bad)
    assert not engine.decide(bad).cached


def test_no_cache_when_disabled(shop_spec_path: Path) -> None:
    engine = CedarPolicyEngine.from_spec(load_spec(shop_spec_path), cache_size=0)
    engine.decide(alice())
    assert not engine.decide(alice()).cached


def test_the_cache_is_bounded(shop_spec_path: Path) -> None:
    engine = CedarPolicyEngine.from_spec(load_spec(shop_spec_path), cache_size=2)
    for hour in range(5):
        engine.decide(alice(hour_utc=hour))
    assert engine.decide(alice(hour_utc=4)).cached
    assert not engine.decide(alice(hour_utc=0)).cached  # evicted, oldest first


def test_a_removed_role_is_refused_by_the_new_engine(engine: CedarPolicyEngine) -> None:
    assert engine.decide(alice()).allowed
    demoted = engine.with_roles("alice", ())
    decision = demoted.decide(alice())  # the token still claims the role: the directory decides
    assert (decision.allowed, decision.reason) == (False, "no-matching-permit")
    assert demoted.roles_of("alice") == ()
    assert engine.decide(alice()).allowed  # the original engine is unchanged
    assert demoted.bundle.policy_set is engine.bundle.policy_set  # policies not re-parsed


def test_an_added_role_is_honoured(engine: CedarPolicyEngine) -> None:
    version = alice(action="GET", route="/admin/version")
    assert not engine.decide(version).allowed
    promoted = engine.with_roles("alice", ("customer", "deployer"))
    assert promoted.decide(version).policy_ids == ("deployer-version",)


def test_roles_of_an_unknown_principal_cannot_change(engine: CedarPolicyEngine) -> None:
    with pytest.raises(KeyError, match="'mallory' is not a persona or workload"):
        engine.with_roles("mallory", ("customer",))


def test_workload_roles_are_parents(shop: ShopCopy) -> None:
    shop.edit(
        shop.spec_file,
        lambda t: t.replace(
            "    calls: [payments]\n", "    calls: [payments]\n    roles: [auditor]\n"
        ),
    )
    shop.add_policy(
        '@id("auditors-read")\n'
        'permit (principal in Role::"auditor", action == Action::"GET",\n'
        '        resource == Route::"payments /payments/{id}");\n'
    )
    engine = CedarPolicyEngine.from_spec(shop.spec())
    orders = alice(
        principal_kind="workload",
        principal="orders",
        service="payments",
        route="/payments/{id}",
        action="GET",
        client_cert=True,
    )
    assert set(engine.decide(orders).policy_ids) == {"orders-checks-payments", "auditors-read"}
    assert engine.with_roles("orders", ()).decide(orders).policy_ids == ("orders-checks-payments",)


def test_broken_policies_build_no_engine(shop: ShopCopy) -> None:
    shop.edit_policies(lambda t: t.replace('Action::"GET"', 'Action::"FETCH"', 1))
    with pytest.raises(SpecError) as caught:
        CedarPolicyEngine.from_spec(shop.spec())
    assert 'unrecognized action `Action::"FETCH"`' in caught.value.render()


def test_determining_policies_are_named_in_file_order(shop: ShopCopy) -> None:
    """Cedar gives the determining policies as a set (no stable order); decisions, reports and
    audit records name them in the order of the policy files, every time."""
    shop.add_policy(
        '@id("a-second-permit")\n'
        'permit (principal == Persona::"alice", action == Action::"POST",\n'
        '        resource == Route::"storefront /checkout");\n'
        '@id("a-third-permit")\n'
        'permit (principal in Role::"customer", action,\n'
        '        resource == Route::"storefront /checkout");\n'
    )
    spec = shop.spec()
    seen = {
        CedarPolicyEngine.from_spec(spec, cache_size=0).decide(alice()).policy_ids
        for _ in range(20)
    }
    assert seen == {("customers-checkout", "a-second-permit", "a-third-permit")}


def test_a_context_is_never_answered_as_an_equal_one_of_another_type(shop: ShopCopy) -> None:
    """The context's JSON is kept per distinct context; 1 == True in Python, but a client_cert
    of 1 is not a Bool to Cedar: refused, even right after the same request with True."""
    engine = CedarPolicyEngine.from_spec(shop.spec(), cache_size=0)
    assert engine.decide(alice(client_cert=True)).allowed
    refused = engine.decide(alice(client_cert=1))
    assert (refused.allowed, refused.reason) == (False, "engine-error")


def test_a_remembered_decision_is_never_given_to_an_equal_request_of_another_type(
    shop: ShopCopy,
) -> None:
    """The decision cache is keyed by the request, and 1 == True: a client_cert of 1 (or an
    hour of True) is refused, even right after the same request with True (or 1) was allowed."""
    engine = CedarPolicyEngine.from_spec(shop.spec())
    assert engine.decide(alice(client_cert=True)).allowed
    assert engine.decide(alice(client_cert=True)).cached
    refused = engine.decide(alice(client_cert=1))
    assert (refused.allowed, refused.reason) == (False, "engine-error")
    assert engine.decide(alice(hour_utc=1)).allowed
    assert engine.decide(alice(hour_utc=True)).reason == "engine-error"
