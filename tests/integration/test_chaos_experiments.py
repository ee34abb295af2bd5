"""The trust-chaos experiments against real sandboxes: the shop (gateways, egress proxies, the
in-process token service) passes every fault, and each fault is undone afterwards; the PyJWT
example (a ``gateway: none`` service asking the token service about every token) passes the
identity-provider outage, and its deliberate twin — failing open when the introspection call
fails — fails it, naming the service."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from trustproof.chaos.experiments import DEFAULTS
from trustproof.chaos.scenario import ScenarioResult
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.view import LiveView
from trustproof.spec.chaos import Experiment
from trustproof.spec.values import Count, Duration, Name
from trustproof.suite.scenarios import run_experiments

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SHOP = EXAMPLES / "shop" / "trustproof.yaml"
PYJWT = EXAMPLES / "pyjwt-mtls"


def shop_experiments() -> list[tuple[str, Experiment]]:
    chosen = []
    for default in DEFAULTS:
        experiment = default
        if default.fault == "revocation-storm":  # the default 1,000 is for the benchmark
            experiment = Experiment(default.name, default.fault, revocations=Count(300))
        chosen.append((f"chaos.{default.fault}", experiment))
    chosen.append(("chaos.idp-outage:error", Experiment(Name("e"), "idp-outage", mode="error")))
    slow = Experiment(Name("s"), "idp-outage", mode="slow", delay=Duration(0.3))
    chosen.append(("chaos.idp-outage:slow", slow))
    latency = Experiment(Name("l"), "network-fault", mode="latency", latency=Duration(0.05))
    chosen.append(("chaos.network-fault:latency", latency))
    loss = Experiment(Name("p"), "network-fault", mode="loss", loss=Count(50))
    chosen.append(("chaos.network-fault:loss", loss))
    return chosen


def test_the_shop_passes_every_fault_and_each_is_undone(tmp_path: Path) -> None:
    async def main() -> tuple[dict[str, ScenarioResult], dict[str, object]]:
        async with Sandbox.from_file(SHOP, run_dir=tmp_path / "run") as sandbox:
            results = await asyncio.wait_for(run_experiments(sandbox, shop_experiments()), 300)
            assert sandbox.policy_watch is not None
            async with LiveView.open(sandbox) as view:
                fetched = await view.fetch_token("storefront", "orders")
            after = {
                "token_status": fetched.status,
                "policy_version": sandbox.policy_watch.holder.version,
                "reload_events": [
                    e.reason
                    for e in sandbox.audit.events()
                    if e.request_id.startswith("policy-reload-")
                ],
                "sinks": {type(g.sink).__name__ for g in sandbox.gateways.values()},
            }
            return {r.id: r for r in results}, after

    results, after = asyncio.run(main())
    skipped = results.pop("chaos.jwks-garbage")  # the gateways hold the keys in memory
    assert skipped.verdict == "skip"
    no_crl = results.pop("chaos.crl-fault")  # and the revocations: no service reads a CRL file
    assert no_crl.verdict == "skip"
    verdicts = {sid: (r.verdict, r.summary) for sid, r in results.items()}
    assert all(v == "pass" for v, _ in verdicts.values()), verdicts
    outage = results["chaos.idp-outage"]
    assert "new tokens refused" in outage.summary
    assert "egress call(s) without a cached token refused (503)" in outage.summary
    assert outage.figures["token_service_recovery_ms"] >= 0
    assert "new tokens came late" in results["chaos.idp-outage:slow"].summary
    assert results["chaos.idp-outage:slow"].figures["token_request_ms_during"] >= 300
    reset = results["chaos.network-fault"]
    assert reset.summary.startswith(
        "token-path-reset: every connection reset on the way to the token service, new tokens "
        "refused"
    )
    assert results["chaos.network-fault:latency"].figures["egress_uncached_allowed"] == 2
    assert "50% connection loss" in results["chaos.network-fault:loss"].summary
    compromise = results["chaos.key-compromise"]
    assert compromise.figures["refused_after_ms.orders"] >= 0
    skew = results["chaos.clock-skew"]
    assert "5/5 as expected with a 5 s leeway" in skew.summary
    storm = results["chaos.revocation-storm"]
    assert storm.figures["revocations"] == 300
    assert storm.figures["failed_revocations"] == 0
    assert storm.figures["accepted_after_revocation"] == 0
    assert storm.figures["propagation_p99_ms"] > 0
    for result in results.values():
        assert result.figures["over_permissions"] == 0
        assert result.figures["recovery_ms"] >= 0
    # undone: the token service serves, the policy in force is the spec's (the rejected reloads
    # were recorded in the audit log), the gateways audit again
    assert after["token_status"] == 200
    reasons = after["reload_events"]
    assert isinstance(reasons, list)
    assert len(reasons) == 3
    assert all(str(r).startswith("policy-reload-rejected") for r in reasons)
    assert after["policy_version"] == 1
    assert after["sinks"] == {"FanOutSink"}


def copy_pyjwt(tmp_path: Path, *, fail_open: bool = False, skip_iat: bool = False) -> Path:
    target = tmp_path / "pyjwt-mtls"
    shutil.copytree(PYJWT, target, ignore=shutil.ignore_patterns("__pycache__", ".trustproof"))
    if fail_open:  # the deliberate twin: no answer from the token service reads as "active"
        service = target / "inventory.py"
        text = service.read_text()
        closed = (
            '        raise Refused(503, f"introspection unavailable: {type(exc).__name__}")'
            " from None"
        )
        assert text.count(closed) == 1
        service.write_text(text.replace(closed, "        return True  # fail open (the bug)"))
    if skip_iat:  # the twin: a token issued "in the future" for this clock is taken
        service = target / "inventory.py"
        text = service.read_text()
        checks = '"sub", "jti"]}'
        assert text.count(checks) == 1
        loose = '"sub", "jti"], "verify_iat": False, "verify_nbf": False}'
        service.write_text(text.replace(checks, loose))
    return target / "trustproof.yaml"


def outage_on(spec: Path, run_dir: Path, fault: str = "idp-outage") -> ScenarioResult:
    async def main() -> ScenarioResult:
        async with Sandbox.from_file(spec, run_dir=run_dir) as sandbox:
            experiment = Experiment(Name("idp-down"), "idp-outage", mode="stopped")
            if fault == "clock-skew":
                experiment = Experiment(Name("skew"), "clock-skew")
            if fault == "jwks-garbage":
                experiment = Experiment(Name("garbage"), "jwks-garbage")
            chosen = [(f"chaos.{fault}", experiment)]
            (result,) = await asyncio.wait_for(run_experiments(sandbox, chosen), 120)
            return result

    return asyncio.run(main())


def test_an_introspecting_service_refuses_what_it_cannot_check(tmp_path: Path) -> None:
    result = outage_on(copy_pyjwt(tmp_path, fail_open=False), tmp_path / "run")
    assert result.verdict == "pass", result.summary
    assert "1 introspecting service(s) refused" in result.summary
    timeline = "\n".join(text for _, text in result.timeline)
    assert "during: alice -> inventory" in timeline
    assert "(introspection): HTTP 503" in timeline


def test_its_twin_failing_open_on_a_token_service_error_fails_the_outage(tmp_path: Path) -> None:
    result = outage_on(copy_pyjwt(tmp_path, fail_open=True), tmp_path / "run")
    assert result.verdict == "fail"
    assert result.summary == (
        "idp-down: inventory allowed a token it could not introspect (token service stopped): "
        "it fails open"
    )


def test_the_service_judges_tokens_by_its_own_skewed_clock(tmp_path: Path) -> None:
    """libfaketime moves the PyJWT service's own clock (restarted under it): a minute ahead it
    accepts a fresh token, 10 s behind it refuses it (issued in its future), an hour ahead it
    refuses the certificate."""
    result = outage_on(copy_pyjwt(tmp_path), tmp_path / "run", "clock-skew")
    assert result.verdict == "pass", result.summary
    assert result.summary.startswith(
        "skew: inventory's own clock skewed +1m, -10s, +1h (libfaketime): 3/3"
    )
    timeline = "\n".join(text for _, text in result.timeline)
    assert "inventory's clock -10s: HTTP 401" in timeline


def test_its_twin_not_checking_iat_fails_the_clock_skew(tmp_path: Path) -> None:
    result = outage_on(copy_pyjwt(tmp_path, skip_iat=True), tmp_path / "run", "clock-skew")
    assert result.verdict == "fail"
    assert result.summary.startswith(
        "skew: inventory with its clock -10s: HTTP 200 allowed (served by inventory"
    )
    assert result.summary.endswith("expected refused")


def test_garbage_key_files_leave_the_service_closed(tmp_path: Path) -> None:
    """The PyJWT service's JWKS file replaced by garbage (and SIGHUP): forged tokens refused,
    and it takes valid tokens again once the real file is back."""
    result = outage_on(copy_pyjwt(tmp_path), tmp_path / "run", "jwks-garbage")
    assert result.verdict == "pass", result.summary
    assert result.summary.startswith(
        "garbage: 1 service(s) refused forged tokens while their key files held garbage"
    )
    # it keeps its last good keys (before, garbage made its SIGHUP handler raise and the
    # service died: closed, but never back)
    assert "kept their last good keys: inventory" in result.summary
    assert result.figures["accepted_again_ms.inventory"] >= 0
