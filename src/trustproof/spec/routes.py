"""Which route templates of one service collide: the same route twice, or two templates some request
matches and neither is more specific (the gateway decides on one, the service's router might run the
other's handler).

Comparing every pair is quadratic (8,000 routes took minutes). Templates go into a trie keyed by
method and segments, where every ``{param}`` is one wildcard edge; a new template only walks the
branches it is compatible with. Walks are counted, and a service whose templates need more than
`budget` steps is refused (`TooManyRoutes`) rather than checked for minutes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from trustproof.errors import TrustproofError
from trustproof.spec.values import Route

Conflict = Literal["duplicate", "overlap"]


class TooManyRoutes(TrustproofError):
    """Checking the templates for overlaps would take more than the budget."""


def _is_param(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def _segments(path: str) -> list[str]:
    return [] if path == "/" else path.strip("/").split("/")


@dataclass
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    wild: _Node | None = None
    first: int | None = None  # the earliest route ending here (all share one shape)


def _earliest_overlap(root: _Node, query: list[str], budget: list[int]) -> int | None:
    """The earliest template ambiguous with `query`, visiting only compatible ones (iteratively:
    paths may have thousands of segments). `budget[0]` counts down the steps taken."""
    found: int | None = None
    # (node, depth, template has a literal where the query has a placeholder, or the reverse)
    stack: list[tuple[_Node, int, bool, bool]] = [(root, 0, False, False)]
    while stack:
        node, depth, more_literal, less_literal = stack.pop()
        budget[0] -= 1
        if budget[0] < 0:
            raise TooManyRoutes
        if depth == len(query):
            if node.first is not None and more_literal and less_literal:
                found = node.first if found is None else min(found, node.first)
            continue
        segment = query[depth]
        param = _is_param(segment)
        if param:
            stack.extend((child, depth + 1, True, less_literal) for child in node.literal.values())
        elif (child := node.literal.get(segment)) is not None:
            stack.append((child, depth + 1, more_literal, less_literal))
        if node.wild is not None:
            stack.append((node.wild, depth + 1, more_literal, less_literal or not param))
    return found


def conflicts(routes: Sequence[Route], budget: int) -> Iterator[tuple[int, Conflict, int]]:
    """(index, kind, earlier index) for each route that repeats or overlaps an earlier one; at
    most one of each kind per route, naming the earliest. Raises `TooManyRoutes`."""
    roots: dict[str, _Node] = {}
    steps = [budget]
    seen: dict[Route, int] = {}
    for index, route in enumerate(routes):
        earlier = seen.setdefault(route, index)
        if earlier != index:
            yield index, "duplicate", earlier
            continue
        segments = _segments(route.path)
        root = roots.setdefault(route.method, _Node())
        found = _earliest_overlap(root, segments, steps)
        if found is not None:
            yield index, "overlap", found
        node = root
        for segment in segments:
            if _is_param(segment):
                node.wild = node.wild or _Node()
                node = node.wild
            else:
                node = node.literal.setdefault(segment, _Node())
        if node.first is None:
            node.first = index
