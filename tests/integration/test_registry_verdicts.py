"""The probe-registry refactor (issue 11) keeps every verdict: a real run of the shop — as shipped,
and with a policy that lets visitors buy — gives each case and each scenario the verdict captured
on the code before it (`tests/data/registry_baseline.json`)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from trustproof.sandbox.controller import Sandbox
from trustproof.suite.command import suite_on

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples" / "shop" / "trustproof.yaml"
BASELINE = json.loads((ROOT / "tests" / "data" / "registry_baseline.json").read_text())
# Issue 12 gives these one case per identity header (and adds the surface probe): held to their
# own tests (tests/integration/test_identity_headers.py), not to the issue-11 baseline.
RESHAPED = ("token.forged-headers", "bypass.direct-port", "surface.undeclared-listener")
OVER_PERMISSIVE = (
    '\n@id("oops-visitors-buy")\npermit (principal in Role::"visitor", action == Action::"POST", '
    'resource == Route::"storefront /checkout");\n'
)


def verdicts(spec: Path, run_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
    async def main() -> tuple[dict[str, str], dict[str, str]]:
        async with Sandbox.from_file(spec, run_dir=run_dir) as sandbox:
            run, _ = await suite_on(sandbox, chaos=False)  # the baseline predates chaos
        known = {cid.split(" | ", 1)[0] for cid in BASELINE["shop_verdicts"]}
        cases = {  # probes added since the baseline are held by their own tests
            item.id: item.verdict
            for item in run.cases
            if item.id.split(" | ", 1)[0] in known - set(RESHAPED)
        }
        return cases, {item.id: item.verdict for item in run.scenarios}

    return asyncio.run(main())


def assert_same_as_before(cases: dict[str, str], before: dict[str, str]) -> None:
    """The baseline's cases keep their verdicts; cases new since then (the token probes of
    issue 12, and the alg-none spellings as variants) all pass."""
    assert {case: verdict for case, verdict in cases.items() if case in before} == before
    new = {case: verdict for case, verdict in cases.items() if case not in before}
    known = {case.split(" | ")[0] for case in before}
    assert [c for c in new if c.split(" | ")[0] in known - {"token.alg-none"}] == []
    assert [c for c in new if not c.startswith("token.")] == []
    assert set(new.values()) <= {"pass"}


def kept(baseline: dict[str, str]) -> dict[str, str]:
    return {i: v for i, v in baseline.items() if i.split(" | ", 1)[0] not in RESHAPED}


def test_the_shop_gets_the_same_verdicts_as_before(tmp_path: Path) -> None:
    cases, scenarios = verdicts(SHOP, tmp_path / "run")
    assert_same_as_before(cases, kept(BASELINE["shop_verdicts"]))
    assert scenarios == BASELINE["shop_scenario_verdicts"]


def test_the_over_permissive_shop_gets_the_same_verdicts_as_before(tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    shutil.copytree(SHOP.parent, shop, ignore=shutil.ignore_patterns("__pycache__", ".trustproof"))
    policy = shop / "policies" / "shop.cedar"
    policy.write_text(policy.read_text(encoding="utf-8") + OVER_PERMISSIVE, encoding="utf-8")
    cases, scenarios = verdicts(shop / "trustproof.yaml", tmp_path / "run")
    assert_same_as_before(cases, kept(BASELINE["broken_shop_verdicts"]))
    assert "over-permission" in cases.values()  # the comparison covers a failing verdict
    assert scenarios == BASELINE["broken_shop_scenario_verdicts"]
