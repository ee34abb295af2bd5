"""The path and request tricks (`trustproof.probes.paths`) against the in-memory `FakeView`: a
strict server keeps every refused variant refused (pass); naive servers — whose check looks at
something other than what their handler serves — are fooled, and the over-permission names the
variant. The allowed-cell tricks use the lenient oracle: refused or served both pass."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from trustproof.cli import cli
from trustproof.probes.authz import PathTrickProbe, RefusedPathTrickProbe, RefusedRequestTrickProbe
from trustproof.probes.base import Plan
from trustproof.probes.model import Case, Evidence, Expectation, Result, Verdict, judge
from trustproof.probes.params import PathTrick, RequestTrick
from trustproof.probes.paths import (
    encoded_letter,
    semicolon_param,
    swapped_case,
)
from trustproof.probes.registry import generate, probe_for
from trustproof.spec.load import load_spec
from trustproof.suite.command import check_selection
from trustproof.view.fake import FakeServer, FakeView
from trustproof.view.fake_http import handler_path

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
SHOP = load_spec(EXAMPLES / "shop" / "trustproof.yaml")
TRICKS = ("authz.path-traversal", "authz.refused-path-tricks", "authz.refused-request-tricks")


def run(server: FakeServer, probes: tuple[str, ...] = TRICKS) -> dict[Case, tuple[Verdict, Result]]:
    view = FakeView(SHOP, server)

    async def main() -> dict[Case, tuple[Verdict, Result]]:
        found = {}
        for case in generate(SHOP, probes):
            result = await probe_for(case).run(case, view)
            found[case] = (judge(case, result), result)
        return found

    return asyncio.run(main())


def failed(found: dict[Case, tuple[Verdict, Result]]) -> set[tuple[str, str, str]]:
    return {(c.probe, c.variant, v) for c, (v, _) in found.items() if v != "pass"}


def test_the_transforms_write_the_classic_tricks() -> None:
    assert encoded_letter("/admin/version") == "/%61dmin/version"
    assert semicolon_param("/admin/version") == "/admin;x=1/version"
    assert semicolon_param("/payments") == "/payments;x=1"
    assert swapped_case("/orders/1") == "/Orders/1"
    assert swapped_case("/admin/version") == "/admin/Version"


def test_a_naive_handler_serves_what_each_trick_hides() -> None:
    for tricked in (
        "//admin/version",
        "/./admin/version",
        "/%61dmin/version",
        "/admin;x=1/version",
        "/zz/..;/admin/version",
        "/admin/version.",
        "/admin/version?",
        "/admin/version#x",
        "/admin%2Fversion",
        "https://h:1/admin/version",
    ):
        assert handler_path(tricked) == "/admin/version", tricked


def test_a_strict_server_keeps_every_variant_refused_and_serves_or_refuses_the_allowed() -> None:
    found = run(FakeServer())
    assert failed(found) == set()
    refused = {c.variant for c in found if c.probe == "authz.refused-path-tricks"}
    assert refused == {
        "double-slash",
        "dot-segment",
        "trailing-slash",
        "upper-case",
        "swapped-case",
        "encoded-dot",
        "encoded-letter",
        "encoded-slash",
        "semicolon-param",
        "dot-dot-semicolon",
        "trailing-dot",
        "empty-query",
        "fragment",
    }
    requests = {c.variant for c in found if c.probe == "authz.refused-request-tricks"}
    assert {
        "absolute-form",
        "host-other-host",
        "host-other-port",
        "host-no-port",
        "host-upper-case",
        "host-trailing-dot",
        "head-for-get",
        "x-original-url",
        "x-rewrite-url",
    } <= requests
    assert any(v.startswith("method-override-") for v in requests)
    # allowed cells: the strict server refuses %2F and upper case (safe), serves the rest
    reasons = {
        c.variant: r.reason for c, (_, r) in found.items() if c.probe == "authz.path-traversal"
    }
    assert reasons["encoded-slash"].startswith("refused, which is safe")
    assert reasons["dot-dot"].startswith("served as written")


def test_every_trick_leaves_as_an_exact_request() -> None:
    view = FakeView(SHOP)
    case = next(
        c for c in generate(SHOP, ("authz.refused-path-tricks",)) if c.variant == "dot-segment"
    )
    asyncio.run(probe_for(case).run(case, view))
    (sent,) = view.sent
    assert sent.exact
    assert not sent.fresh  # a kept-alive connection: the trick is in the request, not the handshake
    assert isinstance(case.params, PathTrick)
    assert sent.path == case.params.path
    assert sent.path.startswith("/./")


# naive server -> the variants it is fooled by (each an over-permission on refused cells)
NAIVE: dict[str, tuple[FakeServer, set[str], set[str]]] = {
    "checks the raw path, normalises in the handler": (
        FakeServer(check_raw_path=True),
        {
            "double-slash",
            "dot-segment",
            "trailing-slash",
            "encoded-dot",
            "encoded-letter",
            "semicolon-param",
            "dot-dot-semicolon",
            "trailing-dot",
            "empty-query",
            "fragment",
            "encoded-slash",
        },
        {"absolute-form", "head-for-get"},  # a HEAD matches no (method, path) rule
    ),
    "checks the raw path, case-insensitive handler": (
        FakeServer(check_raw_path=True, case_insensitive_paths=True),
        {
            "double-slash",
            "dot-segment",
            "trailing-slash",
            "encoded-dot",
            "encoded-letter",
            "semicolon-param",
            "dot-dot-semicolon",
            "trailing-dot",
            "empty-query",
            "fragment",
            "upper-case",
            "swapped-case",
            "encoded-slash",
        },
        {"absolute-form", "head-for-get"},  # a HEAD matches no (method, path) rule
    ),
    "decides on override headers": (
        FakeServer(honour_override_headers=True),
        set(),
        {"x-original-url", "x-rewrite-url", "method-override-GET", "method-override-POST"},
    ),
    "checks GET only": (FakeServer(unchecked_head=True), set(), {"head-for-get"}),
    "default virtual host without the check": (
        FakeServer(unchecked_other_hosts=True),
        set(),
        {
            "host-other-host",
            "host-other-port",
            "host-no-port",
            "host-upper-case",
            "host-trailing-dot",
        },
    ),
}


@pytest.mark.parametrize("bug", sorted(NAIVE))
def test_a_naive_server_is_fooled_and_the_over_permission_names_the_variant(bug: str) -> None:
    server, paths, requests = NAIVE[bug]
    found = failed(run(server))
    assert {v for p, v, _ in found if p == "authz.refused-path-tricks"} == paths
    over_requests = {v for p, v, _ in found if p == "authz.refused-request-tricks"}
    assert over_requests
    assert over_requests <= requests
    assert requests - over_requests <= {"method-override-GET", "method-override-POST"}
    assert {verdict for _, _, verdict in found} == {"over-permission"}
    assert not any(p == "authz.path-traversal" for p, _, _ in found)  # allowed: never fails


def test_the_lenient_oracle_passes_refused_and_served_and_fails_the_rest() -> None:
    case = Case(
        "authz.path-traversal",
        "orders",
        "gateway",
        "storefront",
        "GET /orders",
        Expectation(True, (), "orders", either=True),
        "dot-dot",
        PathTrick("/zz/../orders"),
    )

    def verdict(outcome: str, served_by: str | None = None) -> Verdict:
        evidence = Evidence(sent="GET", status=200, served_by=served_by)
        return judge(case, Result(outcome, "", "", evidence))  # type: ignore[arg-type]

    assert verdict("allowed", "orders") == "pass"
    assert verdict("denied_authz") == "pass"
    assert verdict("denied_tls") == "pass"
    assert verdict("allowed", "payments") == "not-served"
    assert verdict("error") == "error"
    assert verdict("unreachable") == "error"
    assert verdict("inconclusive") != "pass"


def test_default_sizing_is_one_refused_cell_per_route_and_caller_class() -> None:
    plan, thorough = Plan.of(SHOP), Plan.of(SHOP, thorough=True)
    for probe in (RefusedPathTrickProbe(), RefusedRequestTrickProbe()):
        default = list(probe.cases(plan))
        every = list(probe.cases(thorough))
        assert len(default) < len(every)
        groups = {(c.boundary, c.operation, c.caller in SHOP.services) for c in default}
        cells = {(c.boundary, c.operation, c.caller) for c in default}
        assert len(groups) == len(cells)  # one representative per (route, caller class)
        assert {(c.boundary, c.operation) for c in every} == {
            (c.boundary, c.operation) for c in default
        }
    assert list(PathTrickProbe().cases(plan)) == list(PathTrickProbe().cases(thorough))


def test_override_headers_name_an_operation_the_caller_is_allowed() -> None:
    plan = Plan.of(SHOP, thorough=True)
    by_boundary = {b.name: b for b in plan.services()}
    for case in RefusedRequestTrickProbe().cases(plan):
        trick = case.params
        assert isinstance(trick, RequestTrick)
        boundary = by_boundary[case.boundary]
        assert not boundary.allowed(case.caller or "", case.operation)
        for name, value in trick.headers:
            method, _, template = case.operation.partition(" ")
            named = [op for op in boundary.operations if boundary.allowed(case.caller or "", op)]
            if name == "X-HTTP-Method-Override":
                assert f"{value} {template}" in named
            else:
                assert any(op.startswith(method + " ") for op in named)


def test_thorough_reaches_the_selection_and_the_command_line() -> None:
    chosen = ("authz.refused-*",)
    default = check_selection(SHOP, chosen, ())
    every = check_selection(SHOP, chosen, (), thorough=True)
    assert (len(default), len(every)) == (479, 953)  # the shop: 24 of its 48 refused cells
    help_text = CliRunner().invoke(cli, ["run", "--help"]).output
    assert "--thorough" in help_text
