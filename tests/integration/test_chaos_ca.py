"""The certificate-authority faults against real sandboxes: the shop (gateways, egress proxies,
the in-process token service, PostgreSQL with certificate auth) passes each, and nginx
terminating mTLS itself (the nginx-mtls example: ``ssl_crl``, reloaded by SIGHUP) passes them
too; nginx configured to skip a check is fooled, and the experiment fails naming it:

* without ``ssl_crl`` it accepts a leaf under a revoked intermediate;
* with ``reload: none`` it never rereads its bundle: it never trusts the new root (and keeps
  the retired one);

and a Python server (the PyJWT example) checking the CRL of the leaf only accepts a leaf under a
revoked intermediate, and told not to check certificate dates accepts an expired certificate.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from trustproof.chaos.scenario import ScenarioResult
from trustproof.sandbox import reloads
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.procinfo import group_members
from trustproof.sandbox.view import LiveView
from trustproof.spec.chaos import Experiment
from trustproof.spec.values import Duration, Name
from trustproof.suite.scenarios import run_experiments

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SHOP = EXAMPLES / "shop" / "trustproof.yaml"
NGINX = EXAMPLES / "nginx-mtls"
PYJWT = EXAMPLES / "pyjwt-mtls"
REQUIRED = "    context.verify_mode = ssl.CERT_REQUIRED\n"
NO_CHECK_TIME = "    context.verify_flags |= 0x200000  # X509_V_FLAG_NO_CHECK_TIME (the bug)\n"

ROTATION = ("chaos.ca-rotation", Experiment(Name("rot"), "ca-rotation"))
CUT = ("chaos.ca-rotation:cut", Experiment(Name("cut"), "ca-rotation", mode="no-overlap"))
INTERMEDIATE = ("chaos.intermediate-revoked", Experiment(Name("int"), "intermediate-revoked"))
EXPIRY = ("chaos.cert-expiry", Experiment(Name("exp"), "cert-expiry"))

needs_nginx = pytest.mark.skipif(
    shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
    reason="nginx is not installed (Debian: apt-get install nginx-light)",
)


def run_on(spec: Path, run_dir: Path, chosen: list[tuple[str, Experiment]]) -> dict[str, object]:
    async def main() -> dict[str, object]:
        async with Sandbox.from_file(spec, run_dir=run_dir) as sandbox:
            results = await asyncio.wait_for(run_experiments(sandbox, chosen), 240)
            assert sandbox.fabric is not None
            async with LiveView.open(sandbox) as view:
                edges = view.egress_edges()
                fetched = await view.fetch_token(*edges[0]) if edges else None
            return {
                "results": {r.id: r for r in results},
                "roots": len(sandbox.fabric.ca.bundle),
                "intermediates": len(sandbox.fabric.ca.intermediates),
                "token_status": fetched.status if fetched is not None else 200,
            }

    return asyncio.run(main())


def results_of(found: dict[str, object]) -> dict[str, ScenarioResult]:
    results = found["results"]
    assert isinstance(results, dict)
    return results


def test_the_shop_passes_every_ca_fault_and_each_is_undone(tmp_path: Path) -> None:
    found = run_on(SHOP, tmp_path / "run", [ROTATION, CUT, INTERMEDIATE, EXPIRY])
    results = results_of(found)
    verdicts = {sid: (r.verdict, r.summary) for sid, r in results.items()}
    assert all(v == "pass" for v, _ in verdicts.values()), verdicts
    rotation = results["chaos.ca-rotation"]
    assert rotation.figures["rotation_failed"] == 0
    assert rotation.figures["rotation_requests"] >= 4 * 5  # 4 rounds of 3 cells, 2 edges
    assert "a retired-root certificate refused at 2 boundary(ies)" in rotation.summary
    timeline = "\n".join(text for _, text in rotation.timeline)
    assert "retired-root certificate: storefront -> orders GET /orders: HTTP 401" in timeline
    assert "(at once, no overlap)" in "\n".join(
        t for _, t in results["chaos.ca-rotation:cut"].timeline
    )
    revoked = results["chaos.intermediate-revoked"]
    assert revoked.summary.startswith(
        "int: a leaf under a revoked intermediate refused at 2 gateway(s) on the next request, "
        "open connections too"
    )
    assert revoked.figures["connections_opened.orders"] == 1  # the same connection, refused
    assert "orders: open connection client-cert-revoked" in "\n".join(revoked.evidence)
    expiry = results["chaos.cert-expiry"]
    assert "orders: open connection client-cert-expired" in "\n".join(expiry.evidence)
    for result in results.values():
        assert result.figures["over_permissions"] == 0
        assert result.figures["recovery_ms"] >= 0
    # undone: one root (rotated twice), no temporary intermediate, tokens issued
    assert (found["roots"], found["intermediates"], found["token_status"]) == (1, 0, 200)


def copy_nginx(tmp_path: Path, *, config: tuple[str, str] | None = None, spec: tuple[str, str]
               | None = None) -> Path:  # fmt: skip
    target = tmp_path / "nginx-mtls"
    shutil.copytree(NGINX, target)
    for name, change in (("nginx.conf.j2", config), ("trustproof.yaml", spec)):
        if change is not None:
            path = target / name
            text = path.read_text()
            assert text.count(change[0]) == 1
            path.write_text(text.replace(*change))
    return target / "trustproof.yaml"


@needs_nginx
def test_nginx_passes_every_ca_fault(tmp_path: Path) -> None:
    chosen = [ROTATION, INTERMEDIATE, EXPIRY]
    results = results_of(run_on(copy_nginx(tmp_path), tmp_path / "run", chosen))
    verdicts = {sid: (r.verdict, r.summary) for sid, r in results.items()}
    assert all(v == "pass" for v, _ in verdicts.values()), verdicts
    rotation = results["chaos.ca-rotation"]
    assert rotation.figures["rotation_failed"] == 0
    assert rotation.figures["accepted_ms.edge"] >= 0  # the new root trusted once reloaded
    assert rotation.figures["refused_ms.edge"] >= 0  # the retired one refused once reloaded
    assert results["chaos.intermediate-revoked"].summary.startswith(
        "int: a leaf under a revoked intermediate by 1 server(s) reading the CRL file (edge)"
    )
    assert results["chaos.cert-expiry"].summary.startswith(
        "exp: expired client certificates refused by edge (terminating TLS itself)"
    )


@needs_nginx
def test_nginx_without_ssl_crl_is_fooled_by_the_revoked_intermediate(tmp_path: Path) -> None:
    spec = copy_nginx(tmp_path, config=("        ssl_crl {{ crl_file }};\n", ""))
    quick = Experiment(Name("int"), "intermediate-revoked", recover_within=Duration(1))
    chosen = [("chaos.intermediate-revoked", quick)]
    (result,) = results_of(run_on(spec, tmp_path / "run", chosen)).values()
    assert result.verdict == "fail", (result.summary, result.evidence)
    assert result.summary.startswith(
        "int: edge still accepted a leaf under the revoked intermediate 1 s after the CRLs were "
        "rewritten: it does not check the chain's revocation"
    )


def copy_pyjwt(tmp_path: Path, *changes: tuple[str, str]) -> Path:
    target = tmp_path / "pyjwt-mtls"
    shutil.copytree(PYJWT, target, ignore=shutil.ignore_patterns("__pycache__", ".trustproof"))
    service = target / "inventory.py"
    text = service.read_text()
    for old, new in changes:
        assert text.count(old) == 1
        text = text.replace(old, new)
    service.write_text(text)
    return target / "trustproof.yaml"


def test_the_pyjwt_service_checks_the_whole_chain_against_the_crls(tmp_path: Path) -> None:
    (result,) = results_of(run_on(copy_pyjwt(tmp_path), tmp_path / "run", [INTERMEDIATE])).values()
    assert result.verdict == "pass", result.summary
    assert result.summary.startswith(
        "int: a leaf under a revoked intermediate by 1 server(s) reading the CRL file (inventory)"
    )


def test_a_python_server_checking_only_the_leaf_or_no_dates_is_fooled(tmp_path: Path) -> None:
    """The PyJWT example (Python's ssl) as it was — the CRL checked for the leaf only
    (VERIFY_CRL_CHECK_LEAF) — accepts a leaf under a revoked intermediate; told not to check
    certificate dates (OpenSSL's X509_V_FLAG_NO_CHECK_TIME, as a server "tolerating clock skew"
    might be), it accepts an expired certificate. (nginx cannot be fooled so: even
    `ssl_verify_client optional_no_ca` refuses an expired certificate.)"""
    spec = copy_pyjwt(
        tmp_path,
        ("ssl.VERIFY_CRL_CHECK_CHAIN", "ssl.VERIFY_CRL_CHECK_LEAF"),
        (REQUIRED, REQUIRED + NO_CHECK_TIME),
    )
    quick = Experiment(Name("int"), "intermediate-revoked", recover_within=Duration(1))
    chosen = [("chaos.intermediate-revoked", quick), EXPIRY]
    results = results_of(run_on(spec, tmp_path / "run", chosen))
    revoked, expired = results["chaos.intermediate-revoked"], results["chaos.cert-expiry"]
    assert (revoked.verdict, expired.verdict) == ("fail", "fail")
    assert revoked.summary.startswith(
        "int: inventory still accepted a leaf under the revoked intermediate 1 s after the CRLs "
        "were rewritten: it does not check the chain's revocation"
    )
    assert expired.summary.startswith(
        "exp: inventory accepted an expired client certificate: HTTP 200 allowed"
    )


@needs_nginx
def test_nginx_never_reloading_its_bundle_fails_the_rotation(tmp_path: Path) -> None:
    stale = copy_nginx(tmp_path, spec=("reload: sighup", "reload: none"))
    quick = Experiment(Name("rot"), "ca-rotation", recover_within=Duration(1))
    (result,) = results_of(run_on(stale, tmp_path / "run", [("chaos.ca-rotation", quick)])).values()
    assert result.verdict == "fail"
    assert result.summary.startswith(
        "rot: edge did not trust the new root 1 s after its bundle was rewritten"
    )


@needs_nginx
def test_a_reload_of_nginx_is_awaited_until_its_old_workers_are_gone(tmp_path: Path) -> None:
    """What the CA steps wait for (`trustproof.sandbox.reloads`): nginx's master starts new
    workers, sleeps 100 ms and only then tells the old ones to quit, so right after its SIGHUP an
    old worker still serves the old files (the twin); awaited, none is left."""

    async def main() -> tuple[frozenset[int], frozenset[int], frozenset[int]]:
        async with Sandbox.from_file(copy_nginx(tmp_path), run_dir=tmp_path / "run") as sandbox:
            pid = sandbox.handles["edge"].pid
            before = group_members(pid)
            sandbox._reload("edge")
            right_after = group_members(pid)  # not awaited
            async with reloads.awaited(sandbox, ["edge"]):
                sandbox._reload("edge")
            return before, right_after, group_members(pid)

    before, right_after, awaited = asyncio.run(main())
    assert before & right_after  # an old worker still serves
    assert awaited
    assert not (before | right_after) & awaited
