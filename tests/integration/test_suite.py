"""The zero-trust suite end to end: the shop passes fully, and misconfigured copies of it are
caught with the right probe ids and verdicts."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trustproof.sandbox.controller import Sandbox
from trustproof.suite.runner import SuiteRun, choose, generate, run_suite

pytestmark = pytest.mark.integration


def run_on(spec: Path, run_dir: Path, select: tuple[str, ...] = ()) -> SuiteRun:
    async def main() -> SuiteRun:
        async with Sandbox.from_file(spec, run_dir=run_dir) as sandbox:
            return await run_suite(sandbox, choose(generate(sandbox.spec), select))

    return asyncio.run(main())


def verdicts(run: SuiteRun) -> dict[str, str]:
    return {item.case.id: item.verdict for item in run.results}


def shop_copy(tmp_path: Path, shop_spec_path: Path) -> Path:
    target = tmp_path / "shop"
    shutil.copytree(
        shop_spec_path.parent, target, ignore=shutil.ignore_patterns("__pycache__", ".trustproof")
    )
    return target


def test_the_shop_passes_every_case(shop_spec_path: Path, tmp_path: Path) -> None:
    run = run_on(shop_spec_path, tmp_path / "run")
    failures = [
        f"{item.verdict}: {item.case.id} -> {item.result.outcome} {item.result.reason}"
        for item in run.results
        if not item.ok
    ]
    assert failures == []
    probes = {item.case.probe for item in run.results}
    assert {
        "authz.inside-matrix",
        "authz.outside-matrix",
        "token.alg-none",
        "tls.untrusted-ca",
        "bypass.direct-port",
        "db.outside-grants",
        "db.no-client-cert",
    } <= probes
    inside = [item for item in run.results if item.case.probe == "authz.inside-matrix"]
    assert all(item.result.evidence.served_by == item.case.boundary for item in inside)
    assert all(item.result.evidence.audit for item in inside)  # the gateway's own record


def test_an_over_permissive_policy_is_caught(shop_spec_path: Path, tmp_path: Path) -> None:
    shop = shop_copy(tmp_path, shop_spec_path)
    policy = shop / "policies" / "shop.cedar"
    policy.write_text(
        policy.read_text() + '\n@id("oops-visitors-buy")\npermit (principal in '
        'Role::"visitor", action == Action::"POST", '
        'resource == Route::"storefront /checkout");\n'
    )
    run = run_on(shop / "trustproof.yaml", tmp_path / "run", select=("authz.*",))
    found = verdicts(run)
    assert found["authz.outside-matrix | storefront | bob | POST /checkout"] == "over-permission"
    bad = [item for item in run.results if not item.ok]
    assert {item.case.caller for item in bad} == {"bob"}
    evidence = next(item for item in bad if item.case.probe == "authz.outside-matrix")
    assert evidence.result.evidence.audit is not None
    assert evidence.result.evidence.audit["policy_ids"] == ["oops-visitors-buy"]


def test_an_under_permissive_policy_is_caught(shop_spec_path: Path, tmp_path: Path) -> None:
    shop = shop_copy(tmp_path, shop_spec_path)
    policy = shop / "policies" / "shop.cedar"
    text = policy.read_text()
    start = text.index('@id("storefront-pays")')
    end = text.index(";", start) + 1
    policy.write_text(text[:start] + text[end:])
    run = run_on(shop / "trustproof.yaml", tmp_path / "run", select=("authz.inside-matrix",))
    found = verdicts(run)
    assert found["authz.inside-matrix | payments | storefront | POST /payments"] == (
        "under-permission"
    )


def test_trustproof_run_exits_1_and_names_the_violation(
    shop_spec_path: Path, tmp_path: Path
) -> None:
    shop = shop_copy(tmp_path, shop_spec_path)
    policy = shop / "policies" / "shop.cedar"
    policy.write_text(
        policy.read_text() + '\n@id("oops")\npermit (principal == Persona::"bob", '
        'action == Action::"GET", resource == Route::"storefront /admin/version");\n'
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "trustproof",
            "run",
            str(shop / "trustproof.yaml"),
            "--run-dir",
            str(tmp_path / "run"),
            "--select",
            "authz.outside-matrix",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "OVER-PERMISSION" in result.stdout
    assert "authz.outside-matrix | storefront | bob | GET /admin/version" in result.stdout
    data = json.loads((tmp_path / "run" / "results.json").read_text())
    assert data["version"] == 1
    assert data["summary"]["over-permission"] == 1


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trustproof", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_probe_runs_the_suite_against_a_running_sandbox(
    shop_spec_path: Path, tmp_path: Path
) -> None:
    up = cli("up", str(shop_spec_path), "--detach", "--run-dir", "run", cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    try:
        probe = cli(
            "probe",
            "--run-dir",
            "run",
            "--select",
            "authz.inside-matrix",
            "--select",
            "db.inside-grants",
            "--no-scenarios",
            cwd=tmp_path,
        )
        assert probe.returncode == 0, probe.stdout + probe.stderr
        assert "every boundary behaved as the spec says" in probe.stdout
        data = json.loads((tmp_path / "run" / "results.json").read_text())
        assert {case["probe"] for case in data["cases"]} == {
            "authz.inside-matrix",
            "db.inside-grants",
        }
        assert data["summary"] == {"pass": len(data["cases"])}
    finally:
        down = cli("down", "--run-dir", "run", cwd=tmp_path)
    assert down.returncode == 0, down.stderr


def test_fail_fast_stops_after_the_first_violation(shop_spec_path: Path, tmp_path: Path) -> None:
    shop = shop_copy(tmp_path, shop_spec_path)
    policy = shop / "policies" / "shop.cedar"
    policy.write_text(
        policy.read_text() + '\n@id("oops-open")\npermit (principal, action, '
        'resource in Service::"storefront");\n'
    )
    result = cli(
        "run",
        str(shop / "trustproof.yaml"),
        "--run-dir",
        "run",
        "--fail-fast",
        "--select",
        "authz.*",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    data = json.loads((tmp_path / "run" / "results.json").read_text())
    assert data["stopped_early"] is True
    assert len(data["cases"]) < 156
    assert "stopped early (--fail-fast)" in result.stdout
