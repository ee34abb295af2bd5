"""The pytest plugin on the real shop sandbox, through pytester in a subprocess (each run starts
and stops its own sandbox): the example project's fixtures work (and a wrong expectation fails
with what happened), the generated cases pass on the shop, and a deliberately broken policy
fails exactly the matching item."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from trustproof.spec import load_spec
from trustproof.suite.runner import generate

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples" / "shop" / "trustproof.yaml"
EXAMPLE = ROOT / "examples" / "pytest-plugin" / "test_shop_trust.py"
TIMEOUT = 600  # seconds: a bound on one inner pytest run, never a speed assertion

pytestmark = pytest.mark.integration


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-p",
        "no:hypothesispytest",
        "--trustproof-run-dir",
        str(pytester.path / "run"),
        *args,
        timeout=TIMEOUT,
    )


def test_the_example_project_passes_and_a_wrong_expectation_fails(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(f"[pytest]\ntrustproof_spec = {SHOP}\ntrustproof_cases = false\n")
    shutil.copy(EXAMPLE, pytester.path / EXAMPLE.name)
    pytester.makepyfile(
        test_twin=(
            "from trustproof.pytest_plugin import assert_allowed\n\n"
            "def test_bob_checks_out(trustproof_client):\n"
            "    resp = trustproof_client('bob').post('storefront', '/checkout', json_body={})\n"
            "    assert_allowed(resp)\n"
        )
    )
    result = run(pytester)
    result.assert_outcomes(passed=7, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: expected allowed; got POST /checkout to storefront as bob: "
            "denied_authz at policy*HTTP 403*",
            "FAILED test_twin.py::test_bob_checks_out*",
        ]
    )
    assert "eyJ" not in result.stdout.str()  # no token in the output


def test_the_generated_cases_are_items_and_pass_on_the_shop(pytester: pytest.Pytester) -> None:
    cases = generate(load_spec(SHOP))
    result = run(pytester, "--trustproof-spec", str(SHOP), "-v")
    result.assert_outcomes(passed=len(cases))
    result.stdout.fnmatch_lines(
        [
            "*trustproof.yaml::authz.inside-matrix | storefront | alice | GET /products PASSED*",
            "*trustproof.yaml::token.expired | orders | storefront | GET /orders PASSED*",
        ]
    )


BROKEN_RULE = """
@id("broken-visitors-see-orders")
permit (principal in Role::"visitor", action == Action::"GET",
        resource == Route::"storefront /account/orders");
"""


def test_a_broken_policy_fails_the_matching_item(pytester: pytest.Pytester) -> None:
    """Its twin is the test above: with the intact policy every one of these items passes."""
    shop = pytester.path / "shop"
    shutil.copytree(SHOP.parent, shop)
    with (shop / "policies" / "shop.cedar").open("a", encoding="utf-8") as handle:
        handle.write(BROKEN_RULE)
    spec = shop / "trustproof.yaml"
    chosen = [c.id for c in generate(load_spec(spec)) if "storefront" in c.id and "bob" in c.id]
    broken = "authz.outside-matrix | storefront | bob | GET /account/orders"
    assert broken in chosen
    result = run(pytester, "--trustproof-spec", str(spec), "-k", "storefront and bob")
    # the broken cell, and the tricks on it that the gateway canonicalises into that same
    # request (dot segments, //, a trailing slash, %2e, %61, an empty query) or does not read
    # (five Host variants): 1 + 6 + 5; the other tricks stay refused as malformed requests
    result.assert_outcomes(passed=len(chosen) - 12, failed=12)
    failed = [line for line in result.outlines if line.startswith("FAILED ")]
    assert len(failed) == 12
    assert all("storefront | bob | GET /account/orders" in line for line in failed)
    result.stdout.fnmatch_lines(
        [
            f"OVER-PERMISSION: {broken}",
            "expected refused: denied_authz; observed allowed*",
            f"FAILED *trustproof.yaml::{broken}*",
        ]
    )


def test_without_a_spec_the_plugin_loads_nothing_heavy(pytester: pytest.Pytester) -> None:
    """The project's own test run (and anyone's with trustproof installed) pays only for the
    plugin's small modules: no sandbox, suite or aiohttp until a spec is configured."""
    pytester.makepyfile(
        "import sys\n\n"
        "def test_light(pytestconfig):\n"
        "    assert pytestconfig.pluginmanager.has_plugin('trustproof')\n"
        "    heavy = ('trustproof.sandbox.controller', 'trustproof.suite.runner', 'aiohttp')\n"
        "    assert [name for name in heavy if name in sys.modules] == []\n"
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:hypothesispytest", timeout=TIMEOUT
    )
    result.assert_outcomes(passed=1)
