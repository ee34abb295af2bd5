"""Capture the baseline the probe-registry refactor (issue 11) is held to: the case ids every
example spec generates, and the verdicts of real runs of the shop (cases and scenarios).

Run once on the code *before* the refactor, from the repository root:

    .venv/bin/python tests/data/capture_registry_baseline.py

The shop is run twice: as shipped, and with a policy that lets visitors buy (so that the
comparison also covers failing verdicts). It writes ``tests/data/registry_baseline.json``;
`tests/unit/test_registry_case_ids.py` (ids) and `tests/integration/test_registry_verdicts.py`
(verdicts) assert that the code after the refactor yields the same.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
from pathlib import Path

from trustproof.sandbox.controller import Sandbox
from trustproof.spec.load import load_spec
from trustproof.suite.command import suite_on
from trustproof.suite.runner import generate

ROOT = Path(__file__).resolve().parents[2]
SPECS = ("shop", "nginx-mtls", "pyjwt-mtls")
OUT = Path(__file__).with_name("registry_baseline.json")


# A policy that lets visitors buy: the broken shop whose verdicts are compared too (not all pass).
OVER_PERMISSIVE = (
    '\n@id("oops-visitors-buy")\npermit (principal in Role::"visitor", action == Action::"POST", '
    'resource == Route::"storefront /checkout");\n'
)


def broken_shop(tmp: Path) -> Path:
    """A copy of the shop whose policy also lets visitors buy."""
    target = tmp / "shop"
    shutil.copytree(
        ROOT / "examples" / "shop",
        target,
        ignore=shutil.ignore_patterns("__pycache__", ".trustproof"),
    )
    policy = target / "policies" / "shop.cedar"
    policy.write_text(policy.read_text(encoding="utf-8") + OVER_PERMISSIVE, encoding="utf-8")
    return target / "trustproof.yaml"


async def shop_verdicts(spec: Path, run_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
    async with Sandbox.from_file(spec, run_dir=run_dir) as sandbox:
        run, _ = await suite_on(sandbox)
    cases = {item.case.id: item.verdict for item in run.results}
    scenarios = {item.id: item.verdict for item in run.scenarios}
    return cases, scenarios


def main() -> int:
    ids = {
        name: [
            case.id for case in generate(load_spec(ROOT / "examples" / name / "trustproof.yaml"))
        ]
        for name in SPECS
    }
    shop = ROOT / "examples" / "shop" / "trustproof.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        cases, scenarios = asyncio.run(shop_verdicts(shop, Path(tmp) / "run"))
        spec = broken_shop(Path(tmp))
        bad_cases, bad_scenarios = asyncio.run(shop_verdicts(spec, Path(tmp) / "run-broken"))
    data = {
        "case_ids": ids,
        "shop_verdicts": cases,
        "shop_scenario_verdicts": scenarios,
        "broken_shop_verdicts": bad_cases,
        "broken_shop_scenario_verdicts": bad_scenarios,
    }
    OUT.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{OUT}: {sum(len(v) for v in ids.values())} ids, {len(cases)} shop verdicts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
