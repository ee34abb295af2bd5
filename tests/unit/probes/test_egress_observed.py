"""``egress.observed`` against the `FakeView` (no sockets): a service whose own processes tried
undeclared destinations fails with every attempt in the evidence; a quiet one passes; the cases
exist on the isolated backend only and run after every other case."""

from __future__ import annotations

import asyncio
from pathlib import Path

from trustproof.probes.base import Plan
from trustproof.probes.egress_observed import ObservedEgressProbe, describe, last
from trustproof.probes.model import Case, Expectation, Result, judge
from trustproof.probes.registry import generate
from trustproof.spec.load import load_spec
from trustproof.view import EgressEvent
from trustproof.view.fake import FakeView

SHOP = load_spec(Path(__file__).resolve().parents[3] / "examples" / "shop" / "trustproof.yaml")
PROBE = ObservedEgressProbe()
TRIED = (
    EgressEvent("orders", "tcp", "192.0.2.10", 443, 3),
    EgressEvent("orders", "dns", "api.evil.example", None, 2),
    EgressEvent("payments", "udp", "198.51.100.10", 123, 1),
)


def run_all(view: FakeView) -> dict[str, tuple[Result, str]]:
    cases = list(PROBE.cases(Plan.of(SHOP, backend="isolated")))

    async def main() -> dict[str, tuple[Result, str]]:
        found = {}
        for case in cases:
            result = await PROBE.run(case, view)
            found[case.boundary] = (result, judge(case, result))
        return found

    return asyncio.run(main())


def test_one_case_per_service_on_the_isolated_backend_only() -> None:
    isolated = list(PROBE.cases(Plan.of(SHOP, backend="isolated")))
    assert [c.boundary for c in isolated] == list(SHOP.services)
    assert {c.id for c in isolated} == {
        f"egress.observed | {s} | - | outbound" for s in SHOP.services
    }
    assert list(PROBE.cases(Plan.of(SHOP))) == []  # local: nothing is watched, nothing claimed
    assert "egress.observed" not in {c.probe for c in generate(SHOP)}


def test_a_service_that_tried_undeclared_destinations_fails_listing_each() -> None:
    found = run_all(FakeView(SHOP, service_egress=TRIED))
    result, verdict = found["orders"]
    assert verdict == "over-permission"
    assert (result.outcome, result.stage, result.reason) == (
        "allowed",
        "egress",
        "undeclared-egress-attempted",
    )
    assert result.evidence.detail == (
        "orders tried 192.0.2.10:443 (tcp) 3 times — blocked; "
        "orders looked up api.evil.example 2 times — refused"
    )
    assert found["payments"][1] == "over-permission"
    assert found["payments"][0].evidence.detail == (
        "payments tried 198.51.100.10:123 (udp) once — blocked"
    )
    assert found["storefront"][1] == "pass"


def test_services_that_tried_nothing_pass() -> None:
    found = run_all(FakeView(SHOP))
    assert {name: verdict for name, (_, verdict) in found.items()} == dict.fromkeys(
        SHOP.services, "pass"
    )
    result = found["orders"][0]
    assert (result.outcome, result.reason) == ("denied_authz", "nothing-undeclared-attempted")


def test_long_lists_are_capped_in_the_evidence() -> None:
    many = tuple(EgressEvent("orders", "dns", f"n{i}.evil.example", None, 1) for i in range(30))
    result, verdict = run_all(FakeView(SHOP, service_egress=many))["orders"]
    assert verdict == "over-permission"
    assert result.evidence.detail.endswith("... and 10 more destinations")
    assert result.evidence.detail.count("looked up") == 20


def test_describe_reads_as_a_sentence() -> None:
    assert describe(EgressEvent("orders", "tcp", "2001:db8::1", 443, 1)) == (
        "orders tried [2001:db8::1]:443 (tcp) once — blocked"
    )


def test_the_observed_cases_go_last_each_group_in_order() -> None:
    def case(probe: str, boundary: str) -> Case:
        return Case(probe, boundary, "gateway", None, "x", Expectation.refuse())

    cases = [
        case("egress.observed", "a"),
        case("token.expired", "a"),
        case("egress.observed", "b"),
        case("tls.plaintext", "b"),
    ]
    assert [(c.probe, c.boundary) for c in last(cases)] == [
        ("token.expired", "a"),
        ("tls.plaintext", "b"),
        ("egress.observed", "a"),
        ("egress.observed", "b"),
    ]
