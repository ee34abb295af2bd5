"""Route template conflicts (`trustproof.spec.routes`): the trie finds exactly what comparing every
pair finds, and a service whose templates would take too long to check is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustproof.errors import SpecError
from trustproof.spec import crossref, parse_spec
from trustproof.spec.routes import TooManyRoutes, conflicts
from trustproof.spec.values import Route


def _is_param(segment: str) -> bool:
    return segment.startswith("{")


def _ambiguous(first: str, second: str) -> bool:
    """The pairwise definition the trie replaces: some path matches both templates, and neither
    template is at least as specific as the other."""
    a = [] if first == "/" else first.strip("/").split("/")
    b = [] if second == "/" else second.strip("/").split("/")
    if len(a) != len(b):
        return False
    pairs = list(zip(a, b, strict=True))
    if any(not _is_param(x) and not _is_param(y) and x != y for x, y in pairs):
        return False
    a_covers_b = all(_is_param(y) or x == y for x, y in pairs)
    b_covers_a = all(_is_param(x) or x == y for x, y in pairs)
    return not a_covers_b and not b_covers_a


def pairwise(routes: list[Route]) -> list[tuple[int, str, int]]:
    found: list[tuple[int, str, int]] = []
    for i, route in enumerate(routes):
        same = [j for j in range(i) if routes[j] == route]
        if same:
            found.append((i, "duplicate", same[0]))
            continue
        overlaps = [
            j
            for j in range(i)
            if routes[j].method == route.method and _ambiguous(routes[j].path, route.path)
        ]
        if overlaps:
            found.append((i, "overlap", overlaps[0]))
    return found


segment = st.sampled_from(["a", "b", "c", "{x}", "{y}"])
route = st.builds(
    lambda method, parts: Route(method, "/" + "/".join(parts)),
    st.sampled_from(["GET", "POST"]),
    st.lists(segment, max_size=4),
)


@given(st.lists(route, max_size=25))
def test_the_trie_reports_what_comparing_every_pair_reports(routes: list[Route]) -> None:
    assert list(conflicts(routes, 1_000_000)) == pairwise(routes)


def test_routes_with_many_placeholders_against_many_literals_exhaust_the_budget() -> None:
    routes = [Route("GET", f"/l{i}/{{q}}") for i in range(200)]
    routes += [Route("GET", f"/{{p}}/{{q}}/x{i}") for i in range(5)]  # cheap: other length
    routes += [Route("GET", f"/{{p}}/n{i}") for i in range(200)]  # each walks all 200 literals
    with pytest.raises(TooManyRoutes):
        list(conflicts(routes, 10_000))
    assert len(list(conflicts(routes, 1_000_000))) == 200  # /{p}/n_i overlaps every /l_j/{q}


def test_a_service_over_the_budget_is_a_spec_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crossref, "LIMITS", crossref.LIMITS.__class__(route_checks=500))
    routes = [f"GET /l{i}/m{i}" for i in range(100)] + [f"'GET /{{p}}/n{i}'" for i in range(100)]
    text = (
        "trust_domain: a.test\nservices:\n  s:\n    command: x\n    port: 1\n"
        f"    routes: [{', '.join(routes)}]\n"
    )
    with pytest.raises(SpecError) as info:
        parse_spec(text, tmp_path / "trustproof.yaml")
    (problem,) = info.value.problems
    assert problem.render().startswith(
        f"{tmp_path / 'trustproof.yaml'}:6:13: services.s.routes: checking these 200 routes "
        "for overlaps takes more than 500 steps"
    )


def test_a_path_of_thousands_of_segments_is_checked_without_recursion() -> None:
    long = "/" + "/".join(["{p}"] * 5000)
    routes = [Route("GET", long), Route("GET", "/" + "/".join(["a"] * 4999 + ["{p}"]))]
    assert list(conflicts(routes, 1_000_000)) == []
