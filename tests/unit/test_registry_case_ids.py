"""The probe-registry refactor (issue 11) keeps every case id: each example spec generates exactly
the ids captured on the code before it (`tests/data/registry_baseline.json`, written by
`tests/data/capture_registry_baseline.py`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trustproof.spec.load import load_spec
from trustproof.suite.runner import generate

ROOT = Path(__file__).resolve().parents[2]
BASELINE = json.loads((ROOT / "tests" / "data" / "registry_baseline.json").read_text())
SPLIT = frozenset(
    {"tls.legacy-version", "token.alg-none", "token.forged-headers", "bypass.direct-port"}
)
"""Probes issue 12 gave one case per variant (version, spelling, header): their ids changed."""
PER_ROUTE = frozenset({"tls.no-client-cert", "token.missing"})
"""Probes issue 12 runs on every route of a server trustproof did not write (`gateway: none`)."""
RESHAPED = SPLIT | PER_ROUTE


@pytest.mark.parametrize("example", sorted(BASELINE["case_ids"]))
def test_each_example_generates_the_same_case_ids_as_before(example: str) -> None:
    cases = generate(load_spec(ROOT / "examples" / example / "trustproof.yaml"))
    ids = [case.id for case in cases]
    assert len(ids) == len(set(ids))  # ids are keys: no duplicates
    before = BASELINE["case_ids"][example]

    def probe(case_id: str) -> str:
        return case_id.split(" | ", 1)[0]

    known = {probe(cid) for cid in before}  # probes added since are held by their own tests
    kept = [cid for cid in ids if probe(cid) in known and probe(cid) not in RESHAPED]
    assert sorted(set(kept) - set(before)) == []  # nothing new
    lost = {cid for cid in before if probe(cid) not in RESHAPED} - set(ids)
    assert sorted(lost) == []  # nothing lost
    # probes issue 12 split into one case per variant: every new case of theirs names its variant
    assert all(c.variant for c in cases if c.probe in SPLIT and c.id not in set(before))
    assert all(c.kind == "self" for c in cases if c.probe in PER_ROUTE and c.id not in before)
