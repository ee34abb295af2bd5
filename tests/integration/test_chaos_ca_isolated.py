"""The certificate-authority faults on the isolated backend (root: network namespaces): the
services run in namespaces of their own, reach each other through their egress proxies and the
namespaces' relays, and read their bundle and CRL files from there. The shop passes ca-rotation
(with and without overlap), intermediate-revoked and cert-expiry, and each is undone; the
failing twin: a Python server in its namespace checking the CRL of the leaf only accepts a leaf
under a revoked intermediate, and the experiment fails naming it (as on the local backend,
`test_chaos_ca.py`)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from trustproof.chaos.scenario import ScenarioResult
from trustproof.sandbox.choice import isolation_missing
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.view import LiveView
from trustproof.spec.chaos import Experiment
from trustproof.spec.values import Count, Duration, Name
from trustproof.suite.scenarios import run_experiments

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(isolation_missing() is not None, reason=f"{isolation_missing()}"),
]

ISOLATED = "isolated"  # over TRUSTPROOF_BACKEND (the suite's conftest sets local)
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SHOP = EXAMPLES / "shop" / "trustproof.yaml"
ONE = Count(1)  # one allowed and one refused cell per steady-state check: the test's budget
ROTATION = ("chaos.ca-rotation", Experiment(Name("rot"), "ca-rotation", sample=ONE))
CUT = (
    "chaos.ca-rotation:cut",
    Experiment(Name("cut"), "ca-rotation", mode="no-overlap", sample=ONE),
)
INTERMEDIATE = (
    "chaos.intermediate-revoked",
    Experiment(Name("int"), "intermediate-revoked", sample=ONE),
)
EXPIRY = ("chaos.cert-expiry", Experiment(Name("exp"), "cert-expiry", sample=ONE))


def copy_pyjwt(tmp_path: Path, old: str, new: str) -> Path:
    target = tmp_path / "pyjwt-mtls"
    shutil.copytree(
        EXAMPLES / "pyjwt-mtls", target, ignore=shutil.ignore_patterns("__pycache__", ".trustproof")
    )
    service = target / "inventory.py"
    text = service.read_text()
    assert text.count(old) == 1
    service.write_text(text.replace(old, new))
    return target / "trustproof.yaml"


def run_isolated(
    spec: Path, run_dir: Path, chosen: list[tuple[str, Experiment]]
) -> tuple[dict[str, ScenarioResult], tuple[int, int, int]]:
    async def main() -> tuple[dict[str, ScenarioResult], tuple[int, int, int]]:
        async with Sandbox.from_file(spec, run_dir=run_dir, backend_choice=ISOLATED) as sandbox:
            assert sandbox.backend_kind == ISOLATED
            results = await asyncio.wait_for(run_experiments(sandbox, chosen), 240)
            assert sandbox.fabric is not None
            async with LiveView.open(sandbox) as view:
                edges = view.egress_edges()
                fetched = await view.fetch_token(*edges[0]) if edges else None
            undone = (
                len(sandbox.fabric.ca.bundle),
                len(sandbox.fabric.ca.intermediates),
                fetched.status if fetched is not None else 200,
            )
            return {r.id: r for r in results}, undone

    return asyncio.run(main())


def test_the_isolated_shop_passes_every_ca_fault_and_each_is_undone(tmp_path: Path) -> None:
    results, undone = run_isolated(SHOP, tmp_path / "run", [ROTATION, CUT, INTERMEDIATE, EXPIRY])
    verdicts = {sid: (r.verdict, r.summary) for sid, r in results.items()}
    assert all(v == "pass" for v, _ in verdicts.values()), verdicts
    assert list(results) == [ROTATION[0], CUT[0], INTERMEDIATE[0], EXPIRY[0]]
    rotation = results["chaos.ca-rotation"]
    assert rotation.figures["rotation_failed"] == 0
    assert rotation.figures["reissued"] == 6  # as on the local backend
    assert "a retired-root certificate refused at 2 boundary(ies)" in rotation.summary
    timeline = "\n".join(text for _, text in rotation.timeline)
    assert "retired-root certificate: storefront -> orders GET /orders: HTTP 401" in timeline
    cut = results["chaos.ca-rotation:cut"]
    assert "(at once, no overlap)" in "\n".join(t for _, t in cut.timeline)
    assert "a retired-root certificate refused at 2 boundary(ies)" in cut.summary
    revoked = results["chaos.intermediate-revoked"]
    assert revoked.summary.startswith(
        "int: a leaf under a revoked intermediate refused at 2 gateway(s) on the next request, "
        "open connections too"
    )
    assert revoked.figures["connections_opened.orders"] == 1  # the same connection, refused
    expiry = results["chaos.cert-expiry"]
    assert "orders: open connection client-cert-expired" in "\n".join(expiry.evidence)
    for result in results.values():
        assert result.figures["over_permissions"] == 0
        assert result.figures["recovery_ms"] >= 0
    assert undone == (1, 0, 200)  # one root (rotated twice), no intermediate, tokens issued


def test_a_server_in_its_namespace_checking_only_the_leaf_fails_intermediate_revoked(
    tmp_path: Path,
) -> None:
    spec = copy_pyjwt(tmp_path, "ssl.VERIFY_CRL_CHECK_CHAIN", "ssl.VERIFY_CRL_CHECK_LEAF")
    quick = Experiment(Name("int"), "intermediate-revoked", recover_within=Duration(1))
    results, _ = run_isolated(spec, tmp_path / "run", [("chaos.intermediate-revoked", quick)])
    (result,) = results.values()
    assert result.verdict == "fail"
    assert result.summary.startswith(
        "int: inventory still accepted a leaf under the revoked intermediate 1 s after the CRLs "
        "were rewritten: it does not check the chain's revocation"
    )
