"""How `decide_all` groups a service's requests: whichever grouping parses and evaluates less."""

from __future__ import annotations

from trustproof.policy.batching import PARSE_VS_EVALUATE, cost, service_groups, union

ALICE, BOB = ("Persona", "alice"), ("Persona", "bob")


def test_principals_sharing_their_policies_are_evaluated_together() -> None:
    shared = frozenset(range(10))
    alice, bob = [(0, shared), (1, shared)], [(2, shared), (3, shared | {10})]
    assert service_groups({ALICE: alice, BOB: bob}) == [alice + bob]


def test_principals_with_policies_of_their_own_are_evaluated_apart() -> None:
    mine, yours = frozenset(range(0, 40)), frozenset(range(40, 80))
    alice = [(n, mine) for n in range(30)]
    bob = [(n, yours) for n in range(30, 60)]
    groups = service_groups({ALICE: alice, BOB: bob})
    assert groups == [alice, bob]
    assert cost(groups) < cost([alice + bob])  # the other grouping: twice the policies each


def test_cost_counts_one_parse_and_one_evaluation_per_request() -> None:
    group = [(0, frozenset({1, 2})), (1, frozenset({2, 3}))]
    assert union(group) == frozenset({1, 2, 3})
    assert cost([group]) == 3 * (PARSE_VS_EVALUATE + 2)
