"""The certificate-authority faults (`trustproof.chaos.faults_ca`) against the in-memory
`FakeView`: each passes on boundaries that behave, and fails — naming the boundary and what it
accepted — on a fake server that keeps a retired root, ignores an intermediate's revocation or
accepts an expired certificate (`FakeServer.chaos_flaws`)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from trustproof.chaos.scenario import ScenarioEnv, ScenarioResult
from trustproof.identity import Svid
from trustproof.spec.chaos import Experiment
from trustproof.spec.load import load_spec
from trustproof.spec.values import Duration, Name
from trustproof.suite.scenarios import run_experiment_safely
from trustproof.view.chaos import ChaosFlaw
from trustproof.view.fake import FakeView
from trustproof.view.fake_db import FakeServer

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
SHOP = load_spec(EXAMPLES / "shop" / "trustproof.yaml")
NGINX = load_spec(EXAMPLES / "nginx-mtls" / "trustproof.yaml")
QUICK = Duration(0.2)  # a flawed server is asked again until then (real time) before it fails


def run(view: FakeView, experiment: Experiment) -> ScenarioResult:
    sid = f"chaos.{experiment.fault}"
    return asyncio.run(run_experiment_safely(sid, experiment, ScenarioEnv(view)))


def flawed(*flaws: ChaosFlaw, spec: object = SHOP) -> FakeView:
    return FakeView(spec, FakeServer(chaos_flaws=frozenset(flaws)))  # type: ignore[arg-type]


def timeline(result: ScenarioResult) -> str:
    return "\n".join(text for _, text in result.timeline)


def test_a_root_rotated_with_overlap_fails_no_request() -> None:
    view = FakeView(SHOP)
    roots_before = view.root_serials()
    result = run(view, Experiment(Name("rot"), "ca-rotation"))
    assert result.verdict == "pass", result.summary
    assert result.summary.startswith("rot: root rotated with overlap: 0 of ")
    assert "a retired-root certificate refused at 2 boundary(ies)" in result.summary
    assert result.figures["rotation_failed"] == 0
    assert result.figures["rotation_requests"] >= 4 * 5  # 4 rounds of 3 cells, 2 edges
    text = timeline(result)
    assert "with the new root only trusted" in text
    assert "FAULT: the old root retired: removed from every bundle (after the overlap)" in text
    assert "retired-root certificate: storefront -> orders GET /orders: HTTP 401" in text
    # rolled forward: one root, a new one, and the callers present leaves of it
    after = view.root_serials()
    assert len(after) == 1
    assert after[0] not in roots_before
    assert view.cert("storefront").certificate.issuer == view.ca.root.subject


def test_a_server_keeping_the_retired_root_fails_the_rotation() -> None:
    result = run(flawed("keeps-retired-root"), Experiment(Name("rot"), "ca-rotation"))
    assert result.verdict == "fail"
    assert result.summary.startswith(
        "rot: orders accepted a certificate of the retired root (storefront -> orders GET "
        "/orders): HTTP 200 allowed"
    )


def test_a_root_rotated_without_overlap_refuses_the_old_certificates() -> None:
    experiment = Experiment(Name("cut"), "ca-rotation", mode="no-overlap")
    result = run(FakeView(SHOP), experiment)
    assert result.verdict == "pass", result.summary
    assert result.summary.startswith("cut: root rotated without overlap: ")
    assert "(at once, no overlap)" in timeline(result)
    bad = run(flawed("keeps-retired-root"), experiment)
    assert bad.verdict == "fail"
    assert "payments accepted a certificate of the retired root" in bad.summary


@pytest.mark.parametrize("spec", [SHOP, NGINX], ids=["gateways", "nginx-own-tls"])
def test_a_leaf_under_a_revoked_intermediate_is_refused(spec: object) -> None:
    result = run(FakeView(spec), Experiment(Name("int"), "intermediate-revoked"))  # type: ignore[arg-type]
    assert result.verdict == "pass", result.summary
    assert result.summary.startswith("int: a leaf under a revoked intermediate ")
    text = timeline(result)
    assert "FAULT: intermediate CN=temporary intermediate CA 2" in text
    assert "ROLLBACK: the temporary root and intermediate removed" in text


def test_the_gateways_refuse_it_on_open_connections_too() -> None:
    result = run(FakeView(SHOP), Experiment(Name("int"), "intermediate-revoked"))
    assert result.summary.startswith(
        "int: a leaf under a revoked intermediate refused at 2 gateway(s) on the next request, "
        "open connections too; recovered in "
    )
    assert "after, open connection: storefront -> orders GET /orders: HTTP 401" in timeline(result)


def test_ignoring_the_intermediates_revocation_fails_it() -> None:
    experiment = Experiment(Name("int"), "intermediate-revoked")
    result = run(flawed("ignores-intermediate-revocation"), experiment)
    assert result.verdict == "fail"
    assert result.summary.startswith(
        "int: orders accepted a leaf under the revoked intermediate on the connection opened "
        "before: HTTP 200 allowed"
    )
    quick = Experiment(Name("int"), "intermediate-revoked", recover_within=QUICK)
    own = run(flawed("ignores-intermediate-revocation", spec=NGINX), quick)
    assert own.verdict == "fail"
    assert own.summary.startswith(
        "int: edge still accepted a leaf under the revoked intermediate 0.2 s after the CRLs were "
        "rewritten: it does not check the chain's revocation"
    )


@pytest.mark.parametrize("spec", [SHOP, NGINX], ids=["gateways", "nginx-own-tls"])
def test_an_expired_certificate_is_refused_once_it_expired(spec: object) -> None:
    result = run(FakeView(spec), Experiment(Name("exp"), "cert-expiry"))  # type: ignore[arg-type]
    assert result.verdict == "pass", result.summary
    assert "accepted before expiry" in result.summary
    text = timeline(result)
    assert "FAULT: the leaves expired (rotation stopped)" in text
    assert "before expiry: " in text
    assert "HTTP 200" in text


def test_accepting_an_expired_certificate_fails_cert_expiry() -> None:
    experiment = Experiment(Name("exp"), "cert-expiry")
    result = run(flawed("accepts-expired-cert"), experiment)
    assert result.verdict == "fail"
    assert result.summary.startswith(
        "exp: orders accepted an expired client certificate on an open connection: HTTP 200"
    )
    own = run(flawed("accepts-expired-cert", spec=NGINX), experiment)
    assert own.verdict == "fail"
    assert own.summary.startswith("exp: edge accepted an expired client certificate: HTTP 200")


def test_a_server_terminating_tls_itself_is_rotated_too() -> None:
    experiment = Experiment(Name("rot"), "ca-rotation")
    result = run(FakeView(NGINX), experiment)
    assert result.verdict == "pass", result.summary
    assert "a retired-root certificate refused at 1 boundary(ies)" in result.summary
    assert result.figures["accepted_ms.edge"] >= 0  # it trusted the new root before use
    assert result.figures["reissued_served_ms.edge"] >= 0  # and served its reissued certificate
    quick = Experiment(Name("rot"), "ca-rotation", recover_within=QUICK)
    bad = run(flawed("keeps-retired-root", spec=NGINX), quick)
    assert bad.verdict == "fail"
    assert bad.summary.startswith(
        "rot: edge accepted a certificate of the retired root (admin -> edge GET /hello): "
        "HTTP 200 allowed"
    )


def test_leaves_ending_before_they_were_shown_make_an_error_not_a_verdict() -> None:
    """A machine so slow that the short-lived leaves end before the first request: nothing is
    learned, so neither a pass nor a fail."""
    view = FakeView(SHOP)
    issue = view.short_lived_cert

    def slow(name: str, ttl: timedelta) -> Svid:
        svid = issue(name, ttl)
        view.clock.advance(timedelta(seconds=10))  # type: ignore[attr-defined]
        return svid

    view.short_lived_cert = slow  # type: ignore[method-assign]
    result = run(view, Experiment(Name("exp"), "cert-expiry"))
    assert result.verdict == "error"
    assert "the short-lived leaves ended before orders could be shown once" in result.summary
    assert "nothing learned" in result.summary
