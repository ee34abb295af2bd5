"""The proof's scan of case results (what reports and results.json are written from), and its
skips where it cannot prove anything."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from pathlib import Path

from trustproof.chaos.scenario import Recorder, ScenarioEnv
from trustproof.consistency.datascan import scan_results, unscrubbed_value
from trustproof.data.keyed import MaskingKey
from trustproof.data.samples import scrub_samples
from trustproof.spec import Spec, load_spec
from trustproof.spec.data import ConsistencyEnvironment, ConsistencySettings
from trustproof.spec.values import EnvName, Name
from trustproof.suite.scenarios import choose_scenarios
from trustproof.view.fake import FakeView

SHOP = Path(__file__).resolve().parents[3] / "examples" / "shop" / "trustproof.yaml"


@dataclass(frozen=True)
class Case:
    id: str


@dataclass(frozen=True)
class Item:
    case: Case
    reason: str


def test_an_original_in_a_case_result_is_found_and_shown_masked() -> None:
    spec = load_spec(SHOP)
    evidence = scrub_samples(spec, MaskingKey(b"unit-test-key-0123456789abcdef!!")).evidence
    clean = Item(Case("db.inside-grants/shopdb/orders"), "allowed: 1 row")
    leaky = Item(Case("authz.inside-matrix/orders"), "body said Tobias Lindqvist")
    env = ScenarioEnv(None, (clean, leaky))  # type: ignore[arg-type]
    found = scan_results(env, evidence)
    assert [f.describe() for f in found] == [
        "results: case authz.inside-matrix/orders: an original value of customers.full_name "
        "(T***** ********* (16 chars))"
    ]
    assert scan_results(ScenarioEnv(None, (clean,)), evidence) == []  # type: ignore[arg-type]


def test_without_the_seeding_sandbox_or_samples_it_skips() -> None:
    spec: Spec = load_spec(SHOP)
    result = asyncio.run(unscrubbed_value(ScenarioEnv(FakeView(spec)), Recorder("x")))
    assert result.verdict == "skip"
    assert "needs the sandbox that seeded the data" in result.summary


def test_the_suite_chooses_comparisons_only_for_specs_that_ask_for_them() -> None:
    spec = load_spec(SHOP)
    chosen = choose_scenarios(spec)
    assert "data.unscrubbed-value" in chosen
    assert [s for s in chosen if s.startswith("consistency.")] == []
    bare = dataclasses.replace(spec, data=None)
    assert "data.unscrubbed-value" not in choose_scenarios(bare)
    compared = dataclasses.replace(
        spec,
        consistency=ConsistencySettings(
            (
                ConsistencyEnvironment(Name("a"), datastore=Name("shopdb")),
                ConsistencyEnvironment(Name("b"), dsn_env=EnvName("OTHER_DSN")),
            )
        ),
    )
    assert [s for s in choose_scenarios(compared) if s.startswith("consistency.")] == [
        "consistency.schema",
        "consistency.grants",
        "consistency.row-counts",
        "consistency.checksums",
    ]
