"""The suite's scenarios against the real shop sandbox — every one passes — and their failing
twins: the same scenario against a deliberately broken component fails, naming the failure.

The live-vs-offline comparison and the scenario plumbing are also tested as pure functions (no
sockets; not marked `integration`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from trustproof.chaos.scenario import Recorder, ScenarioEnv, ScenarioResult
from trustproof.clock import ManualClock
from trustproof.consistency.live_offline import diff_live_offline
from trustproof.gateway.egress import EgressProxy
from trustproof.gateway.pipeline import Pipeline
from trustproof.identity import Svid
from trustproof.policy.engine import Decision
from trustproof.policy.offline import CellCheck, MatrixReport
from trustproof.probes.model import Case, CaseResult, Evidence, Expectation, Result, judge
from trustproof.results import from_json
from trustproof.sandbox.controller import Sandbox
from trustproof.spec import load_spec
from trustproof.suite.command import suite_on, summary_lines
from trustproof.suite.scenarios import SCENARIO_IDS, choose_scenarios, run_one, run_scenarios
from trustproof.tokens import KeyRing, TokenValidator

integration = pytest.mark.integration
SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop" / "trustproof.yaml"


def on_shop(
    tmp_path: Path, body: Callable[[Sandbox], Awaitable[Any]], *, timeout: float = 60
) -> Any:
    async def main() -> Any:
        async with Sandbox.from_file(SHOP, run_dir=tmp_path / "run") as sandbox:
            return await asyncio.wait_for(body(sandbox), timeout)

    return asyncio.run(main())


async def only(sandbox: Sandbox, scenario_id: str) -> ScenarioResult:
    (result,) = await run_scenarios(sandbox, (), ids=[scenario_id])
    return result


# -- every scenario passes on the shop -----------------------------------------------------------


ON_THE_SHOP = [sid for sid in SCENARIO_IDS if not sid.startswith("consistency.")]
"""Every scenario but the comparison of two environments (the shop has one)."""


@integration
def test_every_scenario_passes_and_lands_in_results_json(tmp_path: Path) -> None:
    select = ("authz.inside-matrix", "authz.outside-matrix", *SCENARIO_IDS)

    async def body(sandbox: Sandbox) -> Path:
        _, path = await suite_on(sandbox, select=select)
        return path

    data = json.loads(on_shop(tmp_path, body).read_text())
    scenarios = {s["id"]: s for s in data["scenarios"]}
    assert list(scenarios) == ON_THE_SHOP
    failed = {sid: s["summary"] for sid, s in scenarios.items() if s["verdict"] != "pass"}
    assert failed == {}
    propagation = scenarios["lifecycle.revocation-propagation"]["figures"]
    for gateway in ("storefront", "orders", "payments"):
        assert propagation[f"propagation_ms.{gateway}"] > 0  # the budget: benchmarks/chaos.py
        assert propagation[f"accepted_after_revoke.{gateway}"] == 0
    rotation = scenarios["lifecycle.cert-rotation"]["figures"]
    assert rotation["failed_requests"] == 0
    assert rotation["total_requests"] > 50
    assert rotation["rotations"] == 10
    assert rotation["revoked_certificates"] == 5
    expiry = scenarios["lifecycle.token-expiry"]["figures"]
    assert expiry["connections_opened"] == 1
    assert 0 <= expiry["refused_after_expiry_ms"] < 1000
    assert scenarios["policy.live-vs-offline"]["figures"]["compared"] == 60
    assert all(s["timeline"] for s in scenarios.values())
    text = "\n".join(summary_lines(from_json(data)))
    assert "PASS  lifecycle.revocation-propagation" in text
    assert "eyJ" not in json.dumps(data)  # no token in the results


# -- failing twins -------------------------------------------------------------------------------


@integration
def test_a_gateway_that_ignores_revocations_fails_propagation(tmp_path: Path) -> None:
    async def body(sandbox: Sandbox) -> ScenarioResult:
        fabric = sandbox.fabric
        assert fabric is not None
        # orders' gateway validates tokens without a revocation list: it never hears of one.
        deaf = TokenValidator(fabric.issuer.issuer, fabric.keys, None, sandbox.clock)
        sandbox.gateways["orders"].pipeline.validator = deaf
        return await only(sandbox, "lifecycle.revocation-propagation")

    result = on_shop(tmp_path, body)
    assert result.verdict == "fail"
    assert result.summary.startswith("orders: still accepted the revoked token after")
    assert result.figures["accepted_after_revoke.orders"] > 100
    assert "propagation_ms.orders" not in result.figures
    assert result.figures["accepted_after_revoke.storefront"] == 0  # the others still pass
    assert result.figures["accepted_after_revoke.payments"] == 0


@integration
def test_gateways_that_keep_the_old_engine_fail_role_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(sandbox: Sandbox) -> ScenarioResult:
        # From now on a pipeline ignores a new engine: it keeps deciding with the one it has.
        monkeypatch.setattr(
            Pipeline,
            "engine",
            property(lambda self: self.__dict__["engine"], lambda self, _: None),
            raising=False,
        )
        return await only(sandbox, "authz.role-removed")

    result = on_shop(tmp_path, body)
    assert result.verdict == "fail"
    assert result.summary.startswith("not refused by the policy once the role was gone: HTTP 200")


@integration
def test_an_egress_proxy_deaf_to_rotation_fails_cert_rotation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The egress proxies are never told about rotations, so storefront's keeps presenting its
    first certificate; the scenario revokes each retired certificate one interval after it was
    replaced, and from then on the orders gateway refuses every request the proxy makes."""

    def ignore(self: EgressProxy, svid: Svid) -> None:
        return None

    monkeypatch.setattr(EgressProxy, "reload_svid", ignore)
    result = on_shop(tmp_path, lambda sandbox: only(sandbox, "lifecycle.cert-rotation"))
    assert result.verdict == "fail"
    assert result.figures["failed_requests"] > 0
    assert result.figures["failed.egress"] == result.figures["failed_requests"]
    assert result.figures["failed.direct"] == 0
    assert any("client-cert-revoked" in line for line in result.evidence)


@integration
def test_a_gateway_with_a_stopped_clock_fails_token_expiry(tmp_path: Path) -> None:
    async def body(sandbox: Sandbox) -> ScenarioResult:
        fabric = sandbox.fabric
        assert fabric is not None
        frozen = ManualClock(datetime.now(UTC))  # orders' gateway's clock stops now
        validator = TokenValidator(fabric.issuer.issuer, fabric.keys, fabric.revocations, frozen)
        sandbox.gateways["orders"].pipeline.validator = validator
        return await only(sandbox, "lifecycle.token-expiry")

    result = on_shop(tmp_path, body)
    assert result.verdict == "fail"
    assert result.summary == "the gateway accepted the token after exp + leeway"


class HoardingKeys:
    """A key source that never forgets a key it once saw (a JWKS cache that never expires)."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self.seen: dict[str, ec.EllipticCurvePublicKey] = {}

    def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        key = self.ring.public_key(kid)
        if key is not None:
            self.seen[kid] = key
        return self.seen.get(kid)


@integration
def test_a_gateway_that_hoards_keys_fails_key_rotation(tmp_path: Path) -> None:
    async def body(sandbox: Sandbox) -> ScenarioResult:
        fabric = sandbox.fabric
        assert fabric is not None
        keys = HoardingKeys(fabric.keys)
        validator = TokenValidator(fabric.issuer.issuer, keys, fabric.revocations, sandbox.clock)
        sandbox.gateways["orders"].pipeline.validator = validator
        return await only(sandbox, "lifecycle.key-rotation")

    result = on_shop(tmp_path, body)
    assert result.verdict == "fail"
    assert (
        result.summary
        == "the old token after pruning: HTTP 200 allowed (served by orders (HTTP 200))"
    )


# -- pure: the live/offline diff, choosing scenarios, crashes ------------------------------------


def matrix_result(
    service: str, caller: str, operation: str, expected: bool, outcome: str
) -> CaseResult:
    probe = "authz.inside-matrix" if expected else "authz.outside-matrix"
    expect = Expectation.allow(service) if expected else Expectation.refuse("denied_authz")
    case = Case(probe, service, "gateway", caller, operation, expect)
    allowed = outcome == "allowed"
    result = Result(
        outcome,  # type: ignore[arg-type]
        "" if allowed else "policy",
        f"served by {service}" if allowed else "no-matching-permit",
        Evidence(sent="...", served_by=service if allowed else None),
    )
    return CaseResult(case, result, judge(case, result))


def report(*cells: tuple[str, str, str, bool, bool]) -> MatrixReport:
    checks = tuple(
        CellCheck(
            caller,
            service,
            operation,
            expected,
            Decision(True, "allowed-by-policy", ("p1",))
            if decided
            else Decision.deny("no-matching-permit"),
        )
        for service, caller, operation, expected, decided in cells
    )
    return MatrixReport("spec", (), "built-in", 1, checks, (), {})


def test_live_and_offline_agreeing_is_no_disagreement() -> None:
    live = [
        matrix_result("orders", "storefront", "GET /orders", True, "allowed"),
        matrix_result("orders", "payments", "GET /orders", False, "denied_authz"),
    ]
    offline = report(
        ("orders", "storefront", "GET /orders", True, True),
        ("orders", "payments", "GET /orders", False, False),
    )
    diff = diff_live_offline(live, offline)
    assert (diff.compared, diff.disagreements, diff.undetermined) == (2, (), ())


def test_a_gateway_deciding_unlike_its_policies_is_listed() -> None:
    live = [
        matrix_result("orders", "storefront", "GET /orders", True, "allowed"),
        matrix_result("orders", "payments", "GET /orders", False, "allowed"),  # the gateway let it
        matrix_result("orders", "bob", "POST /orders", False, "unreachable"),
    ]
    offline = report(
        ("orders", "storefront", "GET /orders", True, True),
        ("orders", "payments", "GET /orders", False, False),
        ("orders", "bob", "POST /orders", False, False),
    )
    diff = diff_live_offline(live, offline)
    assert diff.compared == 2
    (only_one,) = diff.disagreements
    assert (only_one.service, only_one.caller, only_one.operation) == (
        "orders",
        "payments",
        "GET /orders",
    )
    assert only_one.describe() == (
        "payments -> orders GET /orders: live allowed; offline refused: no-matching-permit "
        "(the matrix says refused)"
    )
    assert len(diff.undetermined) == 1


def test_policies_unlike_the_live_gateway_are_listed_the_other_way() -> None:
    live = [matrix_result("orders", "storefront", "POST /orders", True, "denied_authz")]
    offline = report(("orders", "storefront", "POST /orders", True, True))
    (only_one,) = diff_live_offline(live, offline).disagreements
    assert only_one.live == "refused (denied_authz at policy: no-matching-permit)"
    assert only_one.offline == "allowed by p1"


def test_scenarios_follow_select_and_deselect() -> None:
    spec = load_spec(SHOP)
    matrix = [matrix_result("orders", "storefront", "GET /orders", True, "allowed")]
    assert choose_scenarios(spec, case_results=matrix) == ON_THE_SHOP
    assert "policy.live-vs-offline" not in choose_scenarios(spec)  # no matrix case ran
    assert choose_scenarios(spec, select=("authz.outside-matrix",), case_results=matrix) == []
    assert choose_scenarios(spec, select=("lifecycle.*",), deselect=("*expiry",)) == [
        "lifecycle.revocation-propagation",
        "lifecycle.key-rotation",
        "lifecycle.cert-rotation",
    ]


def test_a_crashing_scenario_is_an_error_never_a_pass() -> None:
    async def crashes(env: ScenarioEnv, rec: Recorder) -> ScenarioResult:
        rec.event("about to fail")
        raise RuntimeError("Authorization: Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")

    env = ScenarioEnv(None)  # type: ignore[arg-type]
    result = asyncio.run(run_one("lifecycle.demo", crashes, env))
    assert (result.verdict, result.ok) == ("error", False)
    assert result.summary.startswith("the scenario crashed: RuntimeError")
    assert "eyJ" not in result.summary
    assert result.timeline[0][1] == "about to fail"


def test_a_scenario_result_serialises_with_rounded_figures() -> None:
    rec = Recorder("lifecycle.demo")
    rec.figure("propagation_ms.orders", 1.23456)
    rec.event("revoked")
    data = rec.verdict(True, "fine").to_json()
    assert data["figures"] == {"propagation_ms.orders": 1.235}
    assert data["verdict"] == "pass"
    assert data["timeline"][0][1] == "revoked"
    assert timedelta(seconds=data["elapsed_s"]) < timedelta(seconds=1)
