"""The registry is the catalogue: every check that can fail a run has exactly one catalogue entry
and one implementation (a probe of its family module, or a scenario of chaos/consistency)."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from trustproof import chaos, consistency
from trustproof.catalogue import (
    CATALOGUE,
    PROBE_IDS,
    Family,
    ProbeInfo,
    markdown_table,
    selected,
)
from trustproof.probes import registry
from trustproof.suite.scenarios import SCENARIO_IDS


def test_every_case_entry_has_one_probe_of_its_family_and_nothing_else() -> None:
    assert registry.check() == []
    cases = [info.id for info in CATALOGUE if not info.is_scenario]
    assert list(registry.registry()) == cases  # in catalogue order


def test_every_scenario_entry_is_a_scenario_of_its_family() -> None:
    by_family = {
        "chaos": [sid for sid, _ in chaos.SCENARIOS],
        "consistency": [sid for sid, _ in consistency.SCENARIOS],
    }
    for family, ids in by_family.items():
        assert sorted(ids) == sorted(i.id for i in CATALOGUE if i.family == family)
    assert sorted(SCENARIO_IDS) == sorted(i.id for i in CATALOGUE if i.is_scenario)


def test_the_live_vs_offline_check_can_be_selected_and_deselected() -> None:
    assert "policy.live-vs-offline" in PROBE_IDS
    assert "policy.live-vs-offline" not in selected(("*",), ("policy.*",))


FAMILIES = get_args(Family)


def test_each_probe_module_is_named_after_its_family() -> None:
    for probe in registry.registry().values():
        layer = probe.id.split(".", 1)[0]  # a layer of its own (surface.*) may have its module
        # ... or a module of one check of its family, named after both (egress_observed)
        check = probe.id.split(".", 1)[1].replace("-", "_")
        assert type(probe).__module__ in (
            f"trustproof.probes.{probe.family}",
            f"trustproof.probes.{layer}" if layer not in FAMILIES else "",
            f"trustproof.probes.{probe.family}_{check}",
        )


def test_check_names_a_probe_missing_from_the_catalogue_and_an_entry_without_probe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    by_id = dict(registry.BY_ID)
    del by_id["token.expired"]
    monkeypatch.setattr(registry, "BY_ID", by_id)
    extra = ProbeInfo("token.not-implemented", "a probe nobody wrote", "token")
    monkeypatch.setattr(registry, "CATALOGUE", (*CATALOGUE, extra))
    assert registry.check() == [
        "token.expired: registered but not in the catalogue",
        "token.not-implemented: in the catalogue but no probe implements it",
    ]


def test_the_docs_table_is_the_catalogue() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "probes.md"
    text = docs.read_text(encoding="utf-8")
    assert text.endswith(markdown_table())
    assert text.count("\n| `") == len(CATALOGUE)
