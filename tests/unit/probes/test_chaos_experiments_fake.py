"""The trust-chaos experiments against the in-memory `FakeView`: each passes on a boundary that
behaves, and fails — naming the fault and what went wrong — on a fake that gets it wrong
(`FakeServer.chaos_flaws`, or a token check switched off)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from trustproof.chaos import experiments
from trustproof.chaos.scenario import ScenarioEnv, ScenarioResult
from trustproof.spec.chaos import Experiment, Skew
from trustproof.spec.load import load_spec
from trustproof.spec.values import Count, Duration, Name
from trustproof.suite.scenarios import run_experiment_safely
from trustproof.view.chaos import ChaosFlaw
from trustproof.view.fake import FakeView
from trustproof.view.fake_db import FakeServer

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
SHOP = load_spec(EXAMPLES / "shop" / "trustproof.yaml")
PYJWT = load_spec(EXAMPLES / "pyjwt-mtls" / "trustproof.yaml")


def run(view: FakeView, experiment: Experiment) -> ScenarioResult:
    sid = f"chaos.{experiment.fault}"
    return asyncio.run(run_experiment_safely(sid, experiment, ScenarioEnv(view)))


def flawed(*flaws: ChaosFlaw, spec: object = SHOP) -> FakeView:
    return FakeView(spec, FakeServer(chaos_flaws=frozenset(flaws)))  # type: ignore[arg-type]


def test_every_default_experiment_passes_on_a_boundary_that_behaves() -> None:
    for default in experiments.DEFAULTS:
        experiment = default
        if default.fault == "revocation-storm":
            experiment = Experiment(default.name, default.fault, revocations=Count(200))
        result = run(FakeView(SHOP), experiment)
        if default.fault == "jwks-garbage":  # the shop's gateways hold the keys in memory
            assert result.verdict == "skip"
            continue
        if default.fault == "crl-fault":  # and the revocations: no service reads a CRL file
            assert result.verdict == "skip"
            continue
        assert (result.id, result.verdict) == (f"chaos.{experiment.fault}", "pass"), result.summary
        assert result.figures["over_permissions"] == 0
        assert result.figures["recovery_ms"] >= 0
        assert any("FAULT" in text for _, text in result.timeline)
        assert any("ROLLBACK" in text for _, text in result.timeline)


def test_every_experiment_the_shop_declares_passes_on_a_boundary_that_behaves() -> None:
    declared = experiments.experiments_of(SHOP)
    ids = experiments.experiment_ids(declared)
    verdicts = {}
    for sid, declared_one in zip(ids, declared, strict=True):
        experiment = declared_one
        if experiment.fault == "revocation-storm":
            experiment = Experiment(experiment.name, experiment.fault, revocations=Count(200))
        view = FakeView(SHOP)
        result = asyncio.run(run_experiment_safely(sid, experiment, ScenarioEnv(view)))
        verdicts[result.id] = result.verdict
        if result.verdict == "pass":
            assert result.figures["over_permissions"] == 0, sid
    skipped = {"chaos.jwks-garbage", "chaos.crl-fault"}  # no service reads key or CRL files
    assert verdicts == {sid: "skip" if sid in skipped else "pass" for sid in ids}
    assert len(verdicts) == 19


def test_idp_outage_new_tokens_fail_and_egress_refuses_without_a_token() -> None:
    result = run(FakeView(SHOP), Experiment(Name("down"), "idp-outage", mode="error"))
    assert result.verdict == "pass"
    assert "new tokens refused" in result.summary
    assert "2 egress call(s) without a cached token refused (503)" in result.summary
    timeline = "\n".join(text for _, text in result.timeline)
    assert "during: token request for storefront -> orders: 500 server_error" in timeline


def test_a_slow_token_service_serves_late_but_serves() -> None:
    slow = Experiment(Name("slow"), "idp-outage", mode="slow", delay=Duration(0.3))
    result = run(FakeView(SHOP), slow)
    assert result.verdict == "pass", result.summary
    assert "new tokens came late" in result.summary
    assert result.figures["token_request_ms_during"] >= 300


def test_an_introspecting_service_that_fails_open_fails_the_idp_outage() -> None:
    outage = Experiment(Name("down"), "idp-outage", mode="stopped")
    good = run(FakeView(PYJWT), outage)
    assert good.verdict == "pass", good.summary
    assert "1 introspecting service(s) refused" in good.summary
    bad = run(flawed("idp-fail-open", spec=PYJWT), outage)
    assert bad.verdict == "fail"
    assert bad.summary == (
        "down: inventory allowed a token it could not introspect (token service stopped): "
        "it fails open"
    )


def test_a_gateway_keeping_the_compromised_key_fails_key_compromise() -> None:
    result = run(flawed("keeps-compromised-key"), Experiment(Name("k"), "key-compromise"))
    assert result.verdict == "fail"
    assert result.summary.startswith(
        "k: storefront: the removed key's token on the first request after: HTTP 200 allowed"
    )
    assert "the removed key is still in the JWKS" in result.evidence


def test_a_gateway_ignoring_nbf_and_iat_fails_clock_skew_behind_the_leeway() -> None:
    ignored = frozenset({"not-yet-valid", "issued-in-future"})
    view = FakeView(SHOP, FakeServer(ignore_token=ignored))
    result = run(view, Experiment(Name("s"), "clock-skew"))
    assert result.verdict == "fail"
    assert result.summary.startswith(
        "s: storefront with its clock -15s: HTTP 200 allowed (served by storefront (HTTP 200)), "
        "expected refused"
    )


def test_one_skew_from_the_spec_is_judged_against_the_leeway() -> None:
    within = run(FakeView(SHOP), Experiment(Name("s"), "clock-skew", skew=Skew(-4)))
    assert within.verdict == "pass", within.summary
    assert (
        "storefront's gateway clock skewed -4s: 1/1 as expected with a 5 s leeway" in within.summary
    )


def test_a_gateway_that_misses_revocations_fails_the_storm() -> None:
    storm = Experiment(Name("storm"), "revocation-storm", revocations=Count(100))
    view = FakeView(SHOP, FakeServer(ignore_token=frozenset({"revoked"})))
    result = run(view, storm)
    assert result.verdict == "fail"
    assert "a revoked token was still accepted after 2 s" in result.summary
    good = run(FakeView(SHOP), storm)
    assert good.verdict == "pass"
    assert good.figures["revocations"] == 100
    assert good.figures["failed_revocations"] == 0
    assert good.figures["accepted_after_revocation"] == 0


def test_a_reload_falling_back_to_allow_all_fails_policy_corruption() -> None:
    result = run(flawed("reload-allows-all"), Experiment(Name("p"), "policy-corruption"))
    assert result.verdict == "fail"
    assert result.summary.startswith(
        "p: during (garbage policy offered): a refused cell was allowed:"
    )
    assert result.figures["over_permissions"] > 0


def test_an_evaluation_error_read_as_allow_fails_cedar_error() -> None:
    result = run(flawed("policy-error-allows"), Experiment(Name("c"), "cedar-error"))
    assert result.verdict == "fail"
    assert result.summary.startswith("c: during (evaluation error): a refused cell was allowed:")
    assert any("allowed despite a policy evaluation error" in text for text in result.evidence)


def test_a_gateway_forwarding_without_audit_fails_audit_sink_down() -> None:
    result = run(flawed("audit-fail-open"), Experiment(Name("a"), "audit-sink-down"))
    assert result.verdict == "fail"
    assert "allowed despite the audit sink down" in result.summary


def test_a_steady_state_broken_before_the_fault_is_an_error_not_a_verdict() -> None:
    view = FakeView(SHOP, FakeServer(enforce_policy=False))
    result = run(view, Experiment(Name("k"), "key-compromise"))
    assert result.verdict == "error"
    assert "the steady state did not hold before the fault" in result.summary


class CrashingView(FakeView):
    def drop_cached_tokens(self) -> int:
        raise RuntimeError("boom")


def test_the_rollback_runs_when_the_experiment_crashes_mid_fault() -> None:
    view = CrashingView(SHOP)
    result = run(view, Experiment(Name("down"), "idp-outage"))
    assert result.verdict == "error"
    assert result.summary == "down: the experiment crashed: RuntimeError: boom"
    assert view.chaos_state.idp is None  # the token service serves again
    assert any("FAULT: token service stopped" in text for _, text in result.timeline)


def test_network_faults_on_the_token_path_keep_everything_closed() -> None:
    reset = run(FakeView(SHOP), Experiment(Name("r"), "network-fault", mode="reset"))
    assert reset.verdict == "pass", reset.summary
    assert "every connection reset on the way to the token service" in reset.summary
    assert reset.figures["egress_uncached_allowed"] == 0
    latency = Experiment(Name("l"), "network-fault", mode="latency", latency=Duration(0.1))
    late = run(FakeView(SHOP), latency)
    assert late.verdict == "pass", late.summary
    assert late.figures["egress_uncached_allowed"] == 2
    loss = run(FakeView(SHOP), Experiment(Name("p"), "network-fault", mode="loss"))
    assert loss.verdict == "pass", loss.summary
    assert "50% connection loss" in loss.summary


def test_an_introspecting_service_failing_open_on_resets_fails_the_network_fault() -> None:
    reset = Experiment(Name("r"), "network-fault", mode="reset")
    result = run(flawed("idp-fail-open", spec=PYJWT), reset)
    assert result.verdict == "fail"
    assert result.summary == (
        "r: inventory allowed a token it could not introspect (every connection reset on the way "
        "to the token service): it fails open"
    )


def test_a_service_without_gateway_is_skewed_in_its_own_process() -> None:
    good = run(FakeView(PYJWT), Experiment(Name("s"), "clock-skew"))
    assert good.verdict == "pass", good.summary
    assert "inventory's own clock skewed +1m, -10s, +1h (libfaketime): 3/3" in good.summary
    ignored = frozenset({"not-yet-valid", "issued-in-future"})
    bad = run(
        FakeView(PYJWT, FakeServer(ignore_token=ignored)), Experiment(Name("s"), "clock-skew")
    )
    assert bad.verdict == "fail"
    assert bad.summary.startswith("s: inventory with its clock -10s: HTTP 200 allowed")


def test_garbage_key_files_must_not_let_forged_tokens_in() -> None:
    garbage = Experiment(Name("g"), "jwks-garbage")
    good = run(FakeView(PYJWT), garbage)
    assert good.verdict == "pass", good.summary
    assert good.summary.startswith(
        "g: 1 service(s) refused forged tokens while their key files held garbage; refused every "
        "token (fail closed): inventory"
    )
    bad = run(flawed("garbage-keys-skip-verify", spec=PYJWT), garbage)
    assert bad.verdict == "fail"
    assert bad.summary.startswith(
        "g: inventory accepted a token with bad signature while its key files held garbage: "
        "it fails open"
    )


def test_garbage_key_files_skip_where_the_gateways_hold_the_keys() -> None:
    result = run(FakeView(SHOP), Experiment(Name("g"), "jwks-garbage"))
    assert result.verdict == "skip"
    assert "the gateways hold the keys in memory" in result.summary
