"""How `CedarPolicyEngine.decide_all` groups many requests, so that each group is one call to
Cedar against one `PolicySet`: the union of its requests' slices (`trustproof.policy.slicing`).

A union of slices holds every policy that can apply to each of its requests, so any grouping
gives every request the whole set's decision; groupings differ only in cost. Parsing a policy
into a `PolicySet` costs about as much as evaluating it `PARSE_VS_EVALUATE` times, and a policy
in a group's set is evaluated for every request of the group. A service's requests are
therefore evaluated all together (one set, parsed once, each request evaluating the whole
union) or one group per principal (smaller sets, parsed once per principal), whichever costs
less by that measure: with the 16x spec of `benchmarks/scale.py`, all together (12 sets of
about 43 policies, against 276 of about 15 per principal).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from trustproof.policy.slicing import Uid

Pending = tuple[int, frozenset[int]]  # a request's position, and its slice (policy indices)

PARSE_VS_EVALUATE = 25
"""Parsing one policy costs about as much as evaluating it 25 times (here: ~18 µs and ~0.7 µs,
from `benchmarks/scale.py` at 16x: the whole set against a slice, and slices parsed)."""


def union(group: Sequence[Pending]) -> frozenset[int]:
    """The policies any request of `group` may need."""
    return frozenset().union(*(chosen for _, chosen in group))


def cost(groups: Sequence[Sequence[Pending]]) -> int:
    """Parsing each group's union once, and evaluating it for each of its requests, in units of
    one policy's evaluation."""
    return sum(len(union(group)) * (PARSE_VS_EVALUATE + len(group)) for group in groups)


def service_groups(by_principal: Mapping[Uid, Sequence[Pending]]) -> list[Sequence[Pending]]:
    """One service's requests (by principal) as the groups to evaluate: all of them together,
    or one group per principal, whichever `cost`s less."""
    apart = list(by_principal.values())
    together = [pending for group in apart for pending in group]
    return [together] if cost([together]) <= cost(apart) else apart
