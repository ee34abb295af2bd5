"""Policy slicing (`trustproof.policy.slicing`): a decision on the slice is the decision on the
whole set — proved over generated policy sets and requests, with a failing twin (a slicer that
drops an unscoped forbid is caught by the same property)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from types import MappingProxyType

import cedarpy
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from policy_support import ShopCopy

from trustproof.plan import expected_matrix
from trustproof.policy.cedar import CedarPolicyEngine
from trustproof.policy.engine import AccessRequest, Decision
from trustproof.policy.entities import (
    BUILTIN_SCHEMA_NAME,
    ENTITY_TYPES,
    Directory,
    Principal,
    builtin_schema_text,
)
from trustproof.policy.offline import representative_request
from trustproof.policy.reload import ReloadablePolicyEngine
from trustproof.policy.slicing import PolicySlicer, Uid, ancestors_of, scope_can_match
from trustproof.policy.sources import PolicyBundle, PolicySource

SCHEMA = cedarpy.Schema.from_str(builtin_schema_text())
DIRECTORY = Directory(
    MappingProxyType(
        {
            "alice": Principal("persona", "alice", ("r1",), "human"),
            "bob": Principal("persona", "bob", ("r1", "r2"), "human"),
            "carol": Principal("persona", "carol", (), "ci"),
            "api": Principal("workload", "api", ("r2",)),
            "web": Principal("workload", "web", ()),
        }
    ),
    MappingProxyType({"api": ("/a", "/b/{id}"), "web": ("/a", "/b/{id}")}),
)
PRINCIPALS = [
    'principal == Persona::"alice"',
    'principal == Workload::"api"',
    'principal == Persona::"ghost"',
    'principal in Role::"r1"',
    'principal in Role::"r2"',
    'principal in Persona::"bob"',
    "principal is Persona",
    'principal is Workload in Role::"r2"',
]
ACTIONS = ['action == Action::"GET"', 'action in [Action::"GET", Action::"POST"]']
RESOURCES = [
    'resource == Route::"api /a"',
    'resource in Service::"web"',
    'resource in Route::"web /b/{id}"',
    "resource is Route",
    'resource is Route in Service::"api"',
    'resource == Route::"api /nowhere"',
]
CONDITIONS = [
    "",
    " when { context.hour_utc > 11 }",
    " unless { context.client_cert }",
    ' when { context.token_roles.contains("r1") }',
    ' when { principal.kind == "human" }',  # an evaluation error for a workload
]
scopes = st.tuples(
    st.sampled_from(["permit", "forbid"]),
    st.one_of(st.just("principal"), st.sampled_from(PRINCIPALS)),
    st.one_of(st.just("action"), st.sampled_from(ACTIONS)),
    st.one_of(st.just("resource"), st.sampled_from(RESOURCES)),
    st.sampled_from(CONDITIONS),
)
policy_sets = st.lists(scopes, min_size=0, max_size=12)
requests = st.builds(
    lambda who, action, route, hour, cert, roles: AccessRequest(
        principal_kind=who[0],
        principal=who[1],
        action=action,
        service=route[0],
        route=route[1],
        source_ip="127.0.0.1",
        hour_utc=hour,
        client_cert=cert,
        token_roles=roles,
    ),
    st.sampled_from(
        [
            ("persona", "alice"),
            ("persona", "bob"),
            ("persona", "carol"),
            ("persona", "ghost"),
            ("workload", "api"),
            ("workload", "web"),
        ]
    ),
    st.sampled_from(["GET", "POST", "DELETE"]),
    st.sampled_from([("api", "/a"), ("api", "/b/{id}"), ("web", "/a"), ("web", "/b/{id}")]),
    st.integers(0, 23),
    st.booleans(),
    st.sampled_from([(), ("r1",), ("r2", "r1")]),
)


def bundle_of(policies: list[tuple[str, str, str, str, str]]) -> PolicyBundle:
    """A bundle as `load_policies` builds one, without the schema validation (so that policies
    may fail at evaluation, and the errors must match too)."""
    sources = []
    for n, (effect, principal, action, resource, condition) in enumerate(policies):
        text = f"{effect} ({principal}, {action}, {resource}){condition};"
        est = json.loads(cedarpy.policies_to_json_str(text))["staticPolicies"]["policy0"]
        sources.append(
            PolicySource(f"p{n}", None, "gen.cedar", "policies.files[0]", n, 1, text, est)
        )
    document = {
        "staticPolicies": {s.policy_id: s.est for s in sources},
        "templates": {},
        "templateLinks": [],
    }
    policy_set = cedarpy.PolicySet.from_json_str(json.dumps(document))
    return PolicyBundle(tuple(sources), SCHEMA, BUILTIN_SCHEMA_NAME, policy_set, ())


def same(decision: Decision) -> tuple[object, ...]:
    return (
        decision.allowed,
        decision.reason,
        sorted(decision.policy_ids),
        sorted(decision.errors),
    )


def sliced_equals_full(slicer: type[PolicySlicer], *, shrink: bool = True) -> None:
    @settings(
        max_examples=150,
        phases=tuple(Phase) if shrink else (Phase.explicit, Phase.generate),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(policies=policy_sets, request=st.lists(requests, min_size=1, max_size=4))
    def check(policies: list[tuple[str, str, str, str, str]], request: list[AccessRequest]) -> None:
        bundle = bundle_of(policies)
        full = CedarPolicyEngine(bundle, DIRECTORY, cache_size=0, slicer=None)
        sliced = CedarPolicyEngine(bundle, DIRECTORY, cache_size=0, slicer=slicer)
        for one in request:
            assert same(sliced.decide(one)) == same(full.decide(one)), (policies, one)
        together = [same(decision) for decision in sliced.decide_all(request)]
        assert together == [same(full.decide(one)) for one in request], (policies, request)

    check()


def test_the_sliced_decision_is_the_full_decision() -> None:
    sliced_equals_full(PolicySlicer)


class DropsUnscopedForbids(PolicySlicer):
    """The failing twin: leaves out forbids that name no principal (e.g. 'nobody deletes')."""

    def applicable(self, principal: Uid, action: Uid, resource: Uid) -> frozenset[int]:
        kept = super().applicable(principal, action, resource)
        return frozenset(
            i
            for i in kept
            if not (
                self._ests[i]["effect"] == "forbid" and self._ests[i]["principal"] == {"op": "All"}
            )
        )

    def __init__(self, bundle: PolicyBundle, directory: Directory) -> None:
        super().__init__(bundle, directory)
        self._ests = [source.est for source in bundle.policies]


def test_a_slicer_dropping_an_unscoped_forbid_is_caught_by_the_property() -> None:
    with pytest.raises(AssertionError, match="forbid"):
        sliced_equals_full(DropsUnscopedForbids, shrink=False)


class FirstSliceOnly(CedarPolicyEngine):
    """The failing twin of `decide_all`: a group evaluated against its first request's slice
    instead of the union of its requests' slices."""

    def _together(
        self, policies: cedarpy.PolicySet, requests: Sequence[AccessRequest]
    ) -> list[Decision]:
        first = requests[0]
        principal = (ENTITY_TYPES[first.principal_kind], first.principal)
        resource = ("Route", f"{first.service} {first.route}")
        narrow = PolicySlicer(self.bundle, self.directory)
        return super()._together(
            narrow.policy_set(principal, ("Action", first.action), resource), requests
        )


def test_a_group_is_decided_on_the_union_of_its_slices() -> None:
    """A GET and a DELETE of one principal on one service: the DELETE's forbid is in the
    DELETE's slice only. Decided together, the union keeps it; the twin that decides the group
    on the GET's slice allows the DELETE, and the comparison with the whole set catches it."""
    bundle = bundle_of(
        [
            ("permit", "principal", "action", "resource", ""),
            ("forbid", "principal", 'action == Action::"DELETE"', "resource", ""),
        ]
    )
    get, delete = (
        AccessRequest(
            principal_kind="persona",
            principal="alice",
            action=method,
            service="api",
            route="/a",
            source_ip="127.0.0.1",
            hour_utc=12,
        )
        for method in ("GET", "DELETE")
    )
    full = CedarPolicyEngine(bundle, DIRECTORY, cache_size=0, slicer=None)
    expected = [same(full.decide(get)), same(full.decide(delete))]
    assert expected[1][:2] == (False, "forbidden-by-policy")
    grouped = CedarPolicyEngine(bundle, DIRECTORY, cache_size=0)
    assert [same(d) for d in grouped.decide_all([get, delete])] == expected
    twin = FirstSliceOnly(bundle, DIRECTORY, cache_size=0)
    assert [same(d) for d in twin.decide_all([get, delete])] != expected


@given(scope=st.one_of(st.just("principal"), st.sampled_from(PRINCIPALS)))
@settings(max_examples=50, deadline=None)
def test_the_scope_index_finds_what_testing_every_scope_finds(scope: str) -> None:
    bundle = bundle_of([("permit", scope, "action", "resource", "")] * 2)
    slicer = PolicySlicer(bundle, DIRECTORY)
    ancestors = ancestors_of(DIRECTORY.entities())
    for uid in [*ancestors, ("Persona", "ghost")]:
        expected = scope_can_match(
            bundle.policies[0].est["principal"], uid, ancestors.get(uid, frozenset({uid}))
        )
        found = slicer.applicable(uid, ("Action", "GET"), ("Route", "api /a"))
        assert found == (frozenset({0, 1}) if expected else frozenset()), (scope, uid)


def test_an_unscoped_forbid_is_in_every_slice() -> None:
    bundle = bundle_of(
        [
            ("forbid", "principal", 'action == Action::"DELETE"', "resource", ""),
            (
                "permit",
                'principal == Persona::"alice"',
                "action",
                'resource == Route::"api /a"',
                "",
            ),
        ]
    )
    slicer = PolicySlicer(bundle, DIRECTORY)
    for who in [("Persona", "alice"), ("Workload", "web"), ("Persona", "ghost")]:
        for route in ["api /a", "web /b/{id}", "api /nowhere"]:
            assert "p0" in slicer.policy_ids(who, ("Action", "DELETE"), ("Route", route))
    assert slicer.policy_ids(("Workload", "web"), ("Action", "GET"), ("Route", "api /a")) == ()
    assert slicer.policy_ids(("Persona", "alice"), ("Action", "GET"), ("Route", "api /a")) == (
        "p1",
    )


def test_role_and_service_scopes_follow_the_directory() -> None:
    bundle = bundle_of(
        [
            ("permit", 'principal in Role::"r2"', "action", 'resource in Service::"web"', ""),
            ("permit", 'principal is Workload in Role::"r2"', "action", "resource is Route", ""),
        ]
    )
    slicer = PolicySlicer(bundle, DIRECTORY)
    get = ("Action", "GET")
    assert slicer.policy_ids(("Persona", "bob"), get, ("Route", "web /a")) == ("p0",)
    assert slicer.policy_ids(("Persona", "alice"), get, ("Route", "web /a")) == ()
    assert slicer.policy_ids(("Workload", "api"), get, ("Route", "web /a")) == ("p0", "p1")
    assert slicer.policy_ids(("Workload", "api"), get, ("Route", "api /a")) == ("p1",)


def test_a_role_change_reaches_the_slices_of_the_new_engine() -> None:
    bundle = bundle_of([("permit", 'principal in Role::"r2"', "action", "resource", "")])
    engine = CedarPolicyEngine(bundle, DIRECTORY)
    request = AccessRequest(
        principal_kind="persona",
        principal="alice",
        action="GET",
        service="api",
        route="/a",
        source_ip="127.0.0.1",
        hour_utc=12,
    )
    assert not engine.decide(request).allowed
    assert engine.with_roles("alice", ("r2",)).decide(request).allowed
    bob = replace(request, principal="bob")
    assert engine.decide(bob).allowed
    assert not engine.with_roles("bob", ()).decide(bob).allowed


def test_the_shop_matrix_decides_the_same_sliced_and_whole(shop: ShopCopy) -> None:
    spec = shop.spec()
    sliced = CedarPolicyEngine.from_spec(spec, cache_size=0)
    full = CedarPolicyEngine.from_spec(spec, cache_size=0, slicer=None)
    cells = [
        representative_request(spec, cell.caller, boundary.name, cell.operation)
        for boundary in expected_matrix(spec)
        if boundary.kind == "service"
        for cell in boundary.cells
    ]
    assert any(full.decide(r).allowed for r in cells)
    for request in cells:
        assert same(sliced.decide(request)) == same(full.decide(request)), request


def test_slices_do_not_outlive_a_reload() -> None:
    permit_alice = ("permit", 'principal == Persona::"alice"', "action", "resource", "")
    holder = ReloadablePolicyEngine(CedarPolicyEngine(bundle_of([permit_alice]), DIRECTORY))
    request = AccessRequest(
        principal_kind="persona",
        principal="alice",
        action="GET",
        service="api",
        route="/a",
        source_ip="127.0.0.1",
        hour_utc=12,
    )
    assert holder.decide(request).allowed
    assert holder.decide(request).cached
    everyone_out = ("forbid", "principal", "action", "resource", "")
    holder.swap(CedarPolicyEngine(bundle_of([permit_alice, everyone_out]), DIRECTORY))
    decision = holder.decide(request)
    assert (decision.allowed, decision.reason, decision.policy_ids) == (
        False,
        "forbidden-by-policy",
        ("p1",),
    )


def test_the_slice_caches_are_bounded_and_still_decide() -> None:
    bundle = bundle_of([("permit", "principal", 'action == Action::"GET"', "resource", "")])
    slicer = PolicySlicer(bundle, DIRECTORY, max_slices=2)
    routes = [("Route", f"api /r{n}") for n in range(5)]
    for route in routes:
        assert slicer.policy_ids(("Persona", "alice"), ("Action", "GET"), route) == ("p0",)
        slicer.policy_set(("Persona", "alice"), ("Action", "GET"), route)
    assert len(slicer._slices) <= 2
    assert len(slicer._resources) <= 2
