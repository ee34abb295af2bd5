"""The ``egress`` family against the in-memory `FakeView` (no sockets): cases exist only on the
isolated backend; a closed namespace passes every case; a namespace that lets one attempt out
turns exactly that probe's case on that service into an over-permission naming what got out
(the failing twins); timeouts pass for UDP only; the local backend is never read as a pass."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from trustproof.catalogue import matching
from trustproof.datastores import ADMIN_ROLE
from trustproof.probes import egress
from trustproof.probes.base import Plan
from trustproof.probes.model import Case, CaseResult, judge
from trustproof.probes.registry import generate, probe_for
from trustproof.results import record_of
from trustproof.results.advice import HOW_TO_FIX_PROBE, FailureGroup
from trustproof.spec.load import load_spec
from trustproof.spec.model import Spec
from trustproof.view import EgressAttempt, EgressResult
from trustproof.view.egress import EgressKind
from trustproof.view.fake import FakeView

SHOP = load_spec(Path(__file__).resolve().parents[3] / "examples" / "shop" / "trustproof.yaml")
CONNECTED = EgressResult("connected", "TCP connection established")


IN_NAMESPACE = {probe.id for probe in egress.PROBES}  # attempts made inside a namespace


def egress_cases(spec: Spec, backend: str = "isolated") -> list[Case]:
    """The cases of the in-namespace egress probes (`probes.egress`; not the dependency probe
    of `probes.egress_dependency` nor `egress.observed`, tested beside their modules)."""
    return [c for c in generate(spec, backend=backend) if c.probe in IN_NAMESPACE]


def run(view: FakeView, cases: list[Case]) -> list[CaseResult]:
    async def main() -> list[CaseResult]:
        done = []
        for case in cases:
            result = await probe_for(case).run(case, view)
            done.append(CaseResult(case, result, judge(case, result)))
        return done

    return asyncio.run(main())


def failing(found: list[CaseResult]) -> Counter[tuple[str, str, str]]:
    return Counter((r.case.probe, r.case.boundary, r.verdict) for r in found if not r.ok)


def test_no_egress_case_on_the_local_backend_and_the_plan_says_so_once() -> None:
    assert egress_cases(SHOP, backend="local") == []
    # (the dependency probe runs on every backend: its mock is on loopback)
    local = [c.probe for c in generate(SHOP, backend="local") if c.probe.startswith("egress.")]
    assert local == ["egress.dependency-direct"]
    assert egress.plan_note(Plan.of(SHOP)) == "egress not checked: local backend"
    assert egress.plan_note(Plan.of(SHOP, backend="isolated")) is None
    # no egress probe selected: nothing to say
    unselected = replace(SHOP, probes=replace(SHOP.probes, deselect=("egress.*",)))
    assert egress.plan_note(Plan.of(unselected)) is None


def test_one_case_per_service_per_probe_where_it_applies_on_the_isolated_backend() -> None:
    cases = egress_cases(SHOP)
    by_probe = Counter(case.probe for case in cases)
    services = len(SHOP.services)
    assert by_probe == {
        "egress.undeclared-tcp": services,
        "egress.undeclared-udp": services,
        "egress.undeclared-dns": services,
        "egress.service-port": services,
        "egress.token-admin": services,
        "egress.datastore-other-role": services,  # all three hold grants on shopdb
        "egress.dependency-undeclared": services - 1,  # payments declares card-network
    }
    assert len({case.id for case in cases}) == len(cases)
    assert all(case.caller == case.boundary for case in cases)


def test_a_closed_namespace_passes_every_egress_case() -> None:
    view = FakeView(SHOP, backend="isolated")
    found = run(view, egress_cases(SHOP))
    assert failing(found) == Counter()
    assert {r.result.outcome for r in found} == {"unreachable", "denied_authz"}
    # every attempt was made from inside the case's own service
    tried = {(service, a.kind) for service, a in view.egress_tried}
    assert ("orders", "postgres") in tried
    assert ("storefront", "http") in tried


def test_the_attempts_name_the_documentation_addresses_the_peers_and_the_roles() -> None:
    view = FakeView(SHOP, backend="isolated")
    run(view, egress_cases(SHOP))
    orders = [a for service, a in view.egress_tried if service == "orders"]
    assert EgressAttempt("tcp", "192.0.2.10", 443) in orders
    assert EgressAttempt("udp", "198.51.100.10", 123) in orders
    assert EgressAttempt("dns", "127.0.0.1", 53, name="example.com") in orders
    ports = {(a.host, a.port) for a in orders if a.kind == "tcp"}
    # the other two services' own ports, at 127.0.0.1 and at their hub addresses
    assert {("127.0.0.1", 18101), ("127.0.0.1", 18103)} <= ports
    assert {(view.hub_address("storefront"), 18101), (view.hub_address("payments"), 18103)} <= ports
    assert ("127.0.0.1", 18102) not in ports  # not its own
    roles = {a.role for a in orders if a.kind == "postgres"}
    assert roles == {"storefront", "payments", ADMIN_ROLE}
    (mint,) = [a for a in orders if a.kind == "http"]
    assert (mint.path, mint.name) == ("/admin/tokens", "orders")


# leak (service -> {attempt or kind: result}) -> the one failing case it must cause
LEAKS: dict[str, tuple[dict[EgressAttempt | EgressKind, EgressResult], str]] = {
    "tcp to 192.0.2.10": (
        {EgressAttempt("tcp", "192.0.2.10", 443): CONNECTED},
        "egress.undeclared-tcp",
    ),
    "udp answered": (
        {"udp": EgressResult("answered", "48 bytes came back")},
        "egress.undeclared-udp",
    ),
    "resolver forwards": (
        {
            EgressAttempt("dns", "127.0.0.1", 53, name="example.com"): EgressResult(
                "answered", "example.com resolved: NOERROR (93.184.215.14)"
            )
        },
        "egress.undeclared-dns",
    ),
    "payments' port reachable": (
        {EgressAttempt("tcp", "127.0.0.1", 18103): CONNECTED},
        "egress.service-port",
    ),
    "admin API mints": (
        {"http": EgressResult("connected", "HTTP 200: the admin API answered (minted)")},
        "egress.token-admin",
    ),
    "login as storefront": (
        {
            EgressAttempt(
                "postgres", "127.0.0.1", 15432, name="shop", role="storefront"
            ): EgressResult("connected", "logged in as role storefront (AuthenticationOk)")
        },
        "egress.datastore-other-role",
    ),
}


@pytest.mark.parametrize("leak", list(LEAKS))
def test_a_leaking_namespace_fails_exactly_that_probe_on_that_service(leak: str) -> None:
    table, probe_id = LEAKS[leak]
    view = FakeView(SHOP, backend="isolated", leaks={"orders": table})
    found = run(view, egress_cases(SHOP))
    assert failing(found) == Counter({(probe_id, "orders", "over-permission"): 1})
    (bad,) = [r for r in found if not r.ok]
    assert bad.result.reason == "egress-open"
    assert bad.result.evidence.detail.startswith("got through: ")
    (result,) = {r for r in table.values()}
    assert result.detail in bad.result.evidence.detail
    assert "orders's namespace" in bad.result.evidence.sent
    # the report tells what to do about it, for this probe
    group = FailureGroup(bad.verdict, "orders", probe_id, (record_of(bad),))
    assert group.how_to_fix == HOW_TO_FIX_PROBE[(probe_id, "over-permission")]


@pytest.mark.parametrize(
    ("kind", "probe_id", "verdict"),
    [
        ("udp", "egress.undeclared-udp", "pass"),  # no answer: the expected drop
        ("tcp", "egress.undeclared-tcp", "inconclusive"),  # a silent drop proves nothing
        ("dns", "egress.undeclared-dns", "inconclusive"),  # the resolver must refuse, not drop
        ("http", "egress.token-admin", "inconclusive"),
    ],
)
def test_a_timeout_passes_for_udp_only(kind: EgressKind, probe_id: str, verdict: str) -> None:
    timeout = EgressResult("timeout", "nothing came back within 1.5 s")
    view = FakeView(SHOP, backend="isolated", leaks={"payments": {kind: timeout}})
    found = run(view, [c for c in egress_cases(SHOP) if c.probe == probe_id])
    by_service = {r.case.boundary: r.verdict for r in found}
    assert by_service == {"storefront": "pass", "orders": "pass", "payments": verdict}


def test_an_attempt_that_could_not_be_made_is_an_error_never_a_pass() -> None:
    broken = EgressResult("error", "ENOBUFS: no buffer space")
    view = FakeView(SHOP, backend="isolated", leaks={"storefront": {"tcp": broken}})
    found = run(view, [c for c in egress_cases(SHOP) if c.probe == "egress.undeclared-tcp"])
    assert failing(found) == Counter({("egress.undeclared-tcp", "storefront", "error"): 1})


def test_one_attempt_out_of_several_getting_through_fails_the_case() -> None:
    # three blocked attempts and one connected: the worst decides
    view = FakeView(
        SHOP,
        backend="isolated",
        leaks={"storefront": {EgressAttempt("tcp", view_hub("orders"), 18102): CONNECTED}},
    )
    found = run(view, [c for c in egress_cases(SHOP) if c.probe == "egress.service-port"])
    assert failing(found) == Counter({("egress.service-port", "storefront", "over-permission"): 1})
    (bad,) = [r for r in found if not r.ok]
    assert f"tcp {view_hub('orders')}:18102: connected" in bad.result.evidence.detail
    assert "127.0.0.1:18102" in bad.result.evidence.sent  # every attempt is in the evidence


def view_hub(service: str) -> str:
    address = FakeView(SHOP, backend="isolated").hub_address(service)
    assert address is not None
    return address


def test_an_egress_case_run_on_the_local_backend_is_an_error_not_a_pass() -> None:
    cases = egress_cases(SHOP)  # generated for "isolated", run against a local sandbox
    found = run(FakeView(SHOP), cases)
    assert {r.verdict for r in found} == {"error"}
    assert {r.result.reason for r in found} == {"not-isolated"}


@dataclass(frozen=True)
class _Dependency:
    host: str
    port: int
    mode: str = "real"  # no mock: no `egress.dependency-direct` case


def with_dependencies(spec: Spec, **dependencies: _Dependency) -> Spec:
    """`spec` with a top-level ``dependencies:`` (issue 14 item 3: not in the model yet)."""
    copy = replace(spec)
    object.__setattr__(copy, "dependencies", dependencies)
    return copy


def test_dependency_undeclared_tries_each_dependency_a_service_does_not_call() -> None:
    spec = with_dependencies(
        SHOP,
        psp=_Dependency("psp.example", 443),
        mailer=_Dependency("192.0.2.25", 587),
    )
    cases = [c for c in egress_cases(spec) if c.probe == "egress.dependency-undeclared"]
    assert [c.boundary for c in cases] == ["storefront", "orders", "payments"]
    view = FakeView(spec, backend="isolated")
    assert failing(run(view, cases)) == Counter()
    tried = {a for service, a in view.egress_tried if service == "orders"}
    assert tried == {
        EgressAttempt("dns", "127.0.0.1", 53, name="psp.example"),
        EgressAttempt("tcp", "192.0.2.25", 587),
    }
    # the twin: the resolver answers orders a dependency it did not declare
    leak = EgressAttempt("dns", "127.0.0.1", 53, name="psp.example")
    answered = EgressResult("answered", "psp.example resolved: NOERROR (127.0.0.1)")
    found = run(FakeView(spec, backend="isolated", leaks={"orders": {leak: answered}}), cases)
    assert failing(found) == Counter(
        {("egress.dependency-undeclared", "orders", "over-permission"): 1}
    )


def test_a_declared_dependency_is_not_attempted() -> None:
    services = dict(SHOP.services)
    services["payments"] = replace(services["payments"], calls=("psp",))
    spec = with_dependencies(replace(SHOP, services=services), psp=_Dependency("psp.example", 443))
    cases = [c for c in egress_cases(spec) if c.probe == "egress.dependency-undeclared"]
    assert [c.boundary for c in cases] == ["storefront", "orders"]


def test_every_egress_probe_is_in_the_catalogue_family() -> None:
    from trustproof.probes import egress_dependency, egress_observed  # noqa: PLC0415

    family = (*egress.PROBES, *egress_dependency.PROBES, *egress_observed.PROBES)
    assert {probe.family for probe in family} == {"egress"}
    assert {probe.id for probe in family} == set(matching("egress.*"))


def test_the_undeclared_name_is_never_one_a_dependency_declares() -> None:
    assert egress.undeclared_name(SHOP) == "example.com"
    spec = with_dependencies(SHOP, web=_Dependency("Example.com.", 443))
    view = FakeView(spec, backend="isolated")
    run(view, [c for c in egress_cases(spec) if c.probe == "egress.undeclared-dns"])
    assert {a.name for _, a in view.egress_tried} == {"example.net"}


def test_another_services_other_ports_are_tried_too() -> None:
    services = dict(SHOP.services)
    services["payments"] = replace(services["payments"], other_ports=(19103,))
    spec = replace(SHOP, services=services)
    view = FakeView(spec, backend="isolated")
    run(view, [c for c in egress_cases(spec) if c.probe == "egress.service-port"])
    orders = {(a.host, a.port) for service, a in view.egress_tried if service == "orders"}
    assert {("127.0.0.1", 19103), (view.hub_address("payments"), 19103)} <= orders
