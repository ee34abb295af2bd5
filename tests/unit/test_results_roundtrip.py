"""The one result model: what the suite builds is what `results.json` holds is what every reader
gets back — write, read, equal (a property over generated runs), for the document and the file."""

from __future__ import annotations

import json
import stat
from collections import Counter
from pathlib import Path
from tempfile import TemporaryDirectory

from hypothesis import given, settings
from hypothesis import strategies as st

from trustproof.chaos.scenario import ScenarioResult
from trustproof.probes.model import (
    Case,
    CaseResult,
    Evidence,
    Expectation,
    Outcome,
    Result,
    judge,
)
from trustproof.results import (
    RESULTS_FILE,
    CaseRecord,
    Results,
    ScenarioRecord,
    from_json,
    load,
    record_of,
    write,
)
from trustproof.suite.runner import SuiteRun

# File text avoids what the scrubber rightly rewrites (dots of a JWT, `password=`, ...): the
# property is about the model; scrubbing has its own test below.
SAFE = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789 -_|/{}"), max_size=20)
ANY = st.text(max_size=20)
NUMBER = st.floats(allow_nan=False, allow_infinity=False, width=64)
JSON_LEAF = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | NUMBER


def evidence(text: st.SearchStrategy[str]) -> st.SearchStrategy[Evidence]:
    audit = st.dictionaries(st.sampled_from(["method", "path", "status", "timings"]), JSON_LEAF)
    return st.builds(
        Evidence,
        sent=text,
        status=st.none() | st.integers(100, 599),
        detail=text,
        request_id=st.none() | text,
        served_by=st.none() | text,
        audit=st.none() | audit,
    )


def results(text: st.SearchStrategy[str]) -> st.SearchStrategy[Results]:
    case = st.builds(
        CaseRecord,
        **{
            name: text
            for name in (
                "id",
                "probe",
                "boundary",
                "kind",
                "caller",
                "operation",
                "variant",
                "expected",
                "outcome",
                "stage",
                "reason",
                "verdict",
            )
        },
        elapsed_ms=NUMBER,
        evidence=evidence(text),
    )
    scenario = st.builds(
        ScenarioRecord,
        id=text,
        ok=st.booleans(),
        verdict=text,
        summary=text,
        elapsed_s=NUMBER,
        figures=st.dictionaries(text, NUMBER, max_size=3),
        timeline=st.lists(st.tuples(NUMBER, text), max_size=3).map(tuple),
        evidence=st.lists(text, max_size=3).map(tuple),
    )
    names = st.dictionaries(text, text, max_size=3)
    return st.builds(
        Results,
        version=st.just(1),
        started_at=text,
        elapsed_s=NUMBER,
        cases_per_second=NUMBER,
        stopped_early=st.booleans(),
        summary=st.dictionaries(text, st.integers(0, 10**6), max_size=4),
        cases=st.lists(case, max_size=4).map(tuple),
        scenarios=st.lists(scenario, max_size=2).map(tuple),
        spec=st.none() | text,
        trust_domain=st.none() | text,
        versions=st.none() | names,
        ttl=st.none() | names,
    )


@given(results(ANY))
def test_the_document_round_trips(run: Results) -> None:
    assert from_json(json.loads(json.dumps(run.to_json()))) == run


@settings(max_examples=settings.default.max_examples // 4)
@given(results(SAFE))
def test_the_file_round_trips(run: Results) -> None:
    with TemporaryDirectory() as tmp:
        path = write(run, Path(tmp))
        assert path.name == RESULTS_FILE
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert load(Path(tmp)) == run


def judged(probe: str, outcome: Outcome, *, caller: str | None = "alice") -> CaseResult:
    case = Case(probe, "orders", "gateway", caller, "GET /orders", Expectation.refuse())
    result = Result(outcome, "policy", "no-policy-permits", Evidence("GET /orders", 403))
    return CaseResult(case, result, judge(case, result))


def test_what_the_suite_builds_is_what_is_read_back(tmp_path: Path) -> None:
    items = (
        judged("authz.outside-matrix", "denied_authz"),
        judged("authz.outside-matrix", "allowed", caller=None),  # nobody: "-", as in the id
    )
    scenario = ScenarioResult(
        "lifecycle.token-expiry",
        True,
        "pass",
        "expired in time",
        {"ms": 1.23456},
        ((0.5, "start"),),
        ("line",),
        0.1234,
    )
    run = SuiteRun(
        items,
        "2026-01-01T00:00:00+00:00",
        0.123456,
        counts=Counter(item.verdict for item in items),
        scenarios=(scenario,),
    )
    built = run.to_results()
    assert load(write(built, tmp_path)) == built
    assert [c.verdict for c in built.cases] == ["pass", "over-permission"]
    assert built.cases[1].caller == "-"
    assert built.scenarios[0].figures == {"ms": 1.235}
    assert not built.ok  # the gate: one over-permission


def test_the_gate_is_results_ok() -> None:
    passing = SuiteRun((judged("authz.outside-matrix", "denied_authz"),), "t", 1.0)
    assert passing.to_results().ok
    stopped = SuiteRun(passing.results, "t", 1.0, stopped_early=True)
    assert not stopped.to_results().ok  # a run cut short never passes


def test_a_token_in_evidence_is_scrubbed_on_write(tmp_path: Path) -> None:
    token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
    item = judged("authz.outside-matrix", "denied_authz")
    leaky = CaseResult(
        item.case,
        Result("denied_authz", "policy", "x", Evidence(f"Authorization: Bearer {token}")),
        "pass",
    )
    path = write(SuiteRun((leaky,), "t", 1.0).to_results(), tmp_path)
    assert token not in path.read_text()
    assert record_of(leaky).evidence.sent.endswith(token)  # in memory it was there
