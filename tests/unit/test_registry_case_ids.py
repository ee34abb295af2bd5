"""The probe-registry refactor (issue 11) keeps every case id: each example spec generates exactly
the ids captured on the code before it (`tests/data/registry_baseline.json`, written by
`tests/data/capture_registry_baseline.py`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trustproof.catalogue import CATALOGUE
from trustproof.spec.load import load_spec
from trustproof.suite.runner import generate

ROOT = Path(__file__).resolve().parents[2]
BASELINE = json.loads((ROOT / "tests" / "data" / "registry_baseline.json").read_text())
ISSUE_12_TOKEN = {info.id for info in CATALOGUE if info.family == "token"} - {
    probe for ids in BASELINE["case_ids"].values() for probe in (i.split(" | ")[0] for i in ids)
}


@pytest.mark.parametrize("example", sorted(BASELINE["case_ids"]))
def test_each_example_generates_the_same_case_ids_as_before(example: str) -> None:
    cases = generate(load_spec(ROOT / "examples" / example / "trustproof.yaml"))
    ids = [case.id for case in cases]
    assert len(ids) == len(set(ids))  # ids are keys: no duplicates
    before = BASELINE["case_ids"][example]
    # nothing new but the token probes of issue 12 (and the alg-none spellings as variants)
    new = [case for case in cases if case.id not in set(before)]
    assert [
        c.id for c in new if c.probe not in ISSUE_12_TOKEN and c.probe != "token.alg-none"
    ] == []
    assert all(case.variant for case in new if case.probe == "token.alg-none")
    assert sorted(set(before) - set(ids)) == []  # nothing lost
