"""`trustproof report merge`: the shards of a run joined into the one result, report and verdict a
full run gives — and a clear refusal (exit 2, which file, a hint) for anything that is not exactly
the shards of one run: a missing shard, a duplicate, an overlap, another plan, a corrupt file.

The shards here are cut from one hand-made full run with `trustproof.shard`, as `run --shard`
cuts a plan, so that "the merge equals the full run" is checked, not assumed."""

from __future__ import annotations

import json
import stat
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from trustproof.cli import cli
from trustproof.errors import ReportError
from trustproof.results import (
    AlertRecord,
    CaseRecord,
    Evidence,
    Results,
    ScenarioRecord,
    from_json,
    load,
    write,
)
from trustproof.results.merge import merge
from trustproof.shard import Shard
from trustproof.view.egress import EgressEvent

FINGERPRINT = "sha256:" + "ab" * 32
PROBES = ("authz.matrix", "token.expired", "tls.no-client-cert", "path.traversal")
SERVICES = ("storefront", "orders", "payments")
SCENARIOS = (
    "lifecycle.revocation-propagation",
    "lifecycle.token-expiry",
    "authz.role-removed",
    "policy.live-vs-offline",
    "chaos.cedar-error",
    "chaos.jwks-garbage",
)


def _case(cid: str, verdict: str = "pass") -> CaseRecord:
    probe, boundary = cid.split(" | ")[:2]
    return CaseRecord(
        id=cid,
        probe=probe,
        boundary=boundary,
        kind="gateway",
        caller="orders",
        operation="GET /x",
        variant="",
        expected="refused: denied_authz",
        outcome="denied_authz" if verdict == "pass" else "allowed",
        stage="policy" if verdict == "pass" else "",
        reason="no-matching-permit" if verdict == "pass" else "",
        verdict=verdict,
        elapsed_ms=3.0,
        evidence=Evidence(sent=f"GET /x for {cid}", status=403),
    )


def _scenario(sid: str, ok: bool = True) -> ScenarioRecord:
    return ScenarioRecord(sid, ok, "pass" if ok else "fail", "done", 1.25, {"ms": 2.0}, (), ())


CASE_IDS = tuple(
    f"{probe} | {service} | caller{i} | GET /r{i}"
    for probe in PROBES
    for service in SERVICES
    for i in range(4)
)


def full_run(failing: tuple[str, ...] = (), failed_scenarios: tuple[str, ...] = ()) -> Results:
    cases = tuple(_case(cid, "over-permission" if cid in failing else "pass") for cid in CASE_IDS)
    return Results(
        version=1,
        started_at="2026-12-02T06:00:00+00:00",
        elapsed_s=6.0,
        cases_per_second=8.0,
        stopped_early=False,
        summary=dict(Counter(c.verdict for c in cases)),
        cases=cases,
        scenarios=tuple(_scenario(s, s not in failed_scenarios) for s in SCENARIOS),
        spec="/ci/trustproof.yaml",
        trust_domain="shop.test",
        context={"commit": "0123abcd"},
        fingerprint=FINGERPRINT,
    )


def cut(full: Results, n: int) -> list[Results]:
    """The shards `run --shard K/N` would have written for `full`."""
    shards = []
    for k in range(1, n + 1):
        shard = Shard(k, n)
        cases = tuple(c for c in full.cases if shard.owns(c.id))
        shards.append(
            replace(
                full,
                started_at=f"2026-12-02T06:00:0{k}+00:00",
                elapsed_s=1.0 + k,
                cases_per_second=len(cases) / (1.0 + k),
                summary=dict(Counter(c.verdict for c in cases)),
                cases=cases,
                scenarios=tuple(s for s in full.scenarios if shard.owns(s.id)),
                shard=shard,
            )
        )
    return shards


def named(shards: list[Results]) -> list[tuple[str, Results]]:
    return [(f"shard-{s.shard}.json", s) for s in shards]


def _verdicts(results: Results) -> dict[str, str]:
    return {c.id: c.verdict for c in results.cases} | {s.id: s.verdict for s in results.scenarios}


# --- the merged run is the full run ------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_the_merge_of_the_shards_is_the_full_run(n: int) -> None:
    full = full_run()
    shards = cut(full, n)
    assert all(s.cases for s in shards)  # every shard has work: the cut is not trivial
    merged = merge(named(list(reversed(shards))))  # the order given does not matter
    assert _verdicts(merged) == _verdicts(full)
    assert len(merged.cases) == len(full.cases)
    assert len(merged.scenarios) == len(full.scenarios)
    assert merged.summary == full.summary
    assert merged.ok
    assert full.ok
    assert merged.shard is None
    assert merged.fingerprint == FINGERPRINT
    assert [(p.index, p.total, p.cases) for p in merged.merged_from] == [
        (s.shard.index, n, len(s.cases)) for s in shards if s.shard is not None
    ]
    # the shards ran side by side: the wall time is the longest shard's, the rate all cases over it
    assert merged.elapsed_s == 1.0 + n
    assert merged.cases_per_second == round(len(full.cases) / (1.0 + n), 1)
    assert merged.started_at == "2026-12-02T06:00:01+00:00"
    assert (merged.spec, merged.trust_domain, merged.context) == (
        full.spec,
        full.trust_domain,
        full.context,
    )


def test_a_failing_case_in_shard_2_fails_the_merged_verdict() -> None:
    bad = next(cid for cid in CASE_IDS if Shard(2, 3).owns(cid))
    full = full_run(failing=(bad,))
    shards = cut(full, 3)
    assert [s.ok for s in shards] == [True, False, True]
    merged = merge(named(shards))
    assert not merged.ok
    assert not full.ok
    assert [c.id for c in merged.failures] == [bad]
    assert merged.summary == {"pass": len(CASE_IDS) - 1, "over-permission": 1}
    assert [p.ok for p in merged.merged_from] == [True, False, True]


def test_a_failed_scenario_or_an_early_stop_in_one_shard_fails_the_merged_verdict() -> None:
    sid = "chaos.cedar-error"
    full = full_run(failed_scenarios=(sid,))
    merged = merge(named(cut(full, 3)))
    assert not merged.ok
    assert [s.id for s in merged.failed_scenarios] == [sid]
    shards = cut(full_run(), 3)
    shards[2] = replace(shards[2], stopped_early=True)
    merged = merge(named(shards))
    assert merged.stopped_early
    assert not merged.ok


def test_alerts_and_egress_events_seen_by_several_shards_are_one() -> None:
    alert = AlertRecord("r", "denial-spike", "medium", "t", "d", "orders", count=2, key="r:orders")
    event = EgressEvent("orders", "dns", "evil.example", None, 3)
    shards = cut(full_run(), 2)
    shards = [replace(s, alerts=(alert,), egress_events=(event,)) for s in shards]
    merged = merge(named(shards))
    assert merged.alerts == (replace(alert, count=4),)
    assert merged.egress_events == (replace(event, count=6),)


def test_the_merged_document_round_trips() -> None:
    merged = merge(named(cut(full_run(), 3)))
    assert from_json(json.loads(json.dumps(merged.to_json()))) == merged
    shard = cut(full_run(), 3)[1]
    document = shard.to_json()
    assert document["shard"] == {"index": 2, "total": 3}
    assert "merged_from" not in document
    assert from_json(document) == shard
    assert "shard" not in full_run().to_json()  # absent when not sharded


@pytest.mark.parametrize(
    ("shard", "says"),
    [({"index": 4, "total": 3}, "1 <= index <= total"), ({"index": "1", "total": 3}, "whole")],
)
def test_a_malformed_shard_in_a_document_is_refused(shard: object, says: str) -> None:
    document = cut(full_run(), 3)[0].to_json()
    document["shard"] = shard
    with pytest.raises(ReportError, match=says):
        from_json(document, "x.json")


# --- every refusal: what, which file, a hint ----------------------------------------------------


def _refusal(parts: list[tuple[str, Results]]) -> ReportError:
    with pytest.raises(ReportError) as raised:
        merge(parts)
    assert raised.value.hint
    return raised.value


def test_a_missing_shard_is_refused() -> None:
    shards = named(cut(full_run(), 3))
    error = _refusal([shards[0], shards[2]])
    assert error.message.startswith("shard 2/3 missing (got 1/3, 3/3)")
    assert "always" in error.hint
    assert "shards 2/3, 3/3 missing" in _refusal(shards[:1]).message


def test_the_same_shard_twice_is_refused() -> None:
    shards = named(cut(full_run(), 3))
    copy = ("elsewhere/results.json", shards[1][1])
    error = _refusal([*shards, copy])
    assert error.message == "shard 2/3 given twice: shard-2/3.json and elsewhere/results.json"


def test_overlapping_shards_are_refused() -> None:
    shards = cut(full_run(), 3)
    stolen = shards[1].cases[0]
    shards[0] = replace(shards[0], cases=(*shards[0].cases, stolen))
    error = _refusal(named(shards))
    assert "shards overlap" in error.message
    assert repr(stolen.id) in error.message
    assert "shard-1/3.json" in error.message
    assert "shard-2/3.json" in error.message


def test_a_case_outside_its_shards_slice_is_refused() -> None:
    shards = cut(full_run(), 3)
    moved = shards[1].cases[0]
    shards[1] = replace(shards[1], cases=shards[1].cases[1:])
    shards[0] = replace(shards[0], cases=(*shards[0].cases, moved))
    error = _refusal(named(shards))
    assert "not in its slice" in error.message
    assert "shard-1/3.json" in error.message


def test_shards_of_different_plans_are_refused() -> None:
    shards = cut(full_run(), 3)
    shards[2] = replace(shards[2], fingerprint="sha256:" + "cd" * 32)
    error = _refusal(named(shards))
    assert "come from different plans" in error.message
    assert "shard-3/3.json" in error.message
    assert "--select" in error.hint


def test_shards_of_different_splits_or_commits_are_refused() -> None:
    two, three = cut(full_run(), 2), cut(full_run(), 3)
    error = _refusal(named([two[0], three[1], three[2]]))
    assert "shards of different splits" in error.message
    shards = cut(full_run(), 2)
    shards[1] = replace(shards[1], context={"commit": "ffff0000"})
    assert "ran commit ffff0000" in _refusal(named(shards)).message


def test_what_is_not_a_shard_is_refused() -> None:
    shards = named(cut(full_run(), 2))
    assert "not the result of a shard" in _refusal([("full.json", full_run())]).message
    unsigned = ("old.json", replace(shards[0][1], fingerprint=None))
    assert "has no plan fingerprint" in _refusal([unsigned, shards[1]]).message
    merged = ("merged.json", merge(shards))
    assert "already a merged result" in _refusal([merged]).message
    assert _refusal([]).message == "nothing to merge"


# --- the command --------------------------------------------------------------------------------


def _write_shards(root: Path, shards: list[Results]) -> list[Path]:
    dirs = []
    for results in shards:
        assert results.shard is not None
        directory = root / f"trustproof-shard-{results.shard.index}"
        directory.mkdir(parents=True)
        write(results, directory)
        dirs.append(directory)
    return dirs


def test_merge_writes_every_report_and_exits_0_when_the_full_run_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    dirs = _write_shards(tmp_path / "in", cut(full_run(), 3))
    out = tmp_path / "merged"
    result = CliRunner().invoke(cli, ["report", "merge", *map(str, dirs), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "merged 3 shards: 48 cases, 6 scenarios" in result.output
    assert "every boundary behaved as the spec says" in result.output
    names = {"results.json", "report.junit.xml", "report.md", "report.html", "codequality.json"}
    assert {p.name for p in out.iterdir()} == names
    assert stat.S_IMODE((out / "results.json").stat().st_mode) == 0o600
    merged = load(out)
    assert _verdicts(merged) == _verdicts(full_run())
    assert len(merged.merged_from) == 3
    assert 'tests="54"' in (out / "report.junit.xml").read_text()
    assert "Merged from 3 shards (1/3 ✅" in (out / "report.md").read_text()
    assert summary.read_text().startswith("## ✅")


def test_merge_exits_1_when_a_shard_holds_a_violation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    bad = next(cid for cid in CASE_IDS if Shard(2, 3).owns(cid))
    # artifacts downloaded side by side: the directory holding them is enough
    _write_shards(tmp_path / "artifacts", cut(full_run(failing=(bad,)), 3))
    out = tmp_path / "merged"
    result = CliRunner().invoke(
        cli, ["report", "merge", str(tmp_path / "artifacts"), "-o", str(out)]
    )
    assert result.exit_code == 1, result.output
    assert "shard 2/3: " in result.output
    assert "FAIL" in result.output
    assert bad in result.output
    assert "trust is broken: 1 case(s) disagree with the spec" in result.output
    assert "::error" not in result.output  # the shard's own run annotated it, once
    assert not load(out).ok
    assert (out / "report.md").read_text().startswith("## ❌")


def test_merge_refuses_a_missing_shard_with_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    dirs = _write_shards(tmp_path / "in", cut(full_run(), 3))
    out = tmp_path / "merged"
    result = CliRunner().invoke(
        cli, ["report", "merge", str(dirs[0]), str(dirs[2]), "-o", str(out)]
    )
    assert result.exit_code == 2
    assert "shard 2/3 missing" in result.output
    assert "hint:" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_merge_refuses_a_corrupt_file_naming_it(tmp_path: Path) -> None:
    dirs = _write_shards(tmp_path / "in", cut(full_run(), 2))
    broken = dirs[1] / "results.json"
    broken.write_text('{"version": 1, "cases": [')
    result = CliRunner().invoke(
        cli, ["report", "merge", *map(str, dirs), "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert f"{broken}: not JSON" in result.output
    broken.write_text(json.dumps({"version": 1, "cases": "no"}))
    result = CliRunner().invoke(
        cli, ["report", "merge", *map(str, dirs), "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "is this a trustproof results.json?" in result.output
    empty = tmp_path / "nothing"
    empty.mkdir()
    result = CliRunner().invoke(cli, ["report", "merge", str(empty)])
    assert result.exit_code == 2
    assert "no results here" in result.output


def test_report_still_renders_a_run_as_before(tmp_path: Path) -> None:
    """`report` became a group with `merge`: `report RUN_DIR --format F` is unchanged."""
    write(full_run(), tmp_path)
    result = CliRunner().invoke(cli, ["report", str(tmp_path), "--format", "md"])
    assert result.exit_code == 0
    assert result.output.startswith("## ✅")
    result = CliRunner().invoke(cli, ["report", "--format", "junit", str(tmp_path)])
    assert result.exit_code == 0
    assert 'tests="54"' in result.output
    result = CliRunner().invoke(cli, ["report", "--help"])
    assert result.exit_code == 0
    assert "report merge RESULTS_OR_DIRS" in result.output


def test_the_rendering_command_keeps_its_name(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", str(tmp_path), "--help"])
    assert result.exit_code == 0
    assert result.output.startswith("Usage: cli report [OPTIONS] RUN_DIR\n")  # CliRunner: "cli"
    result = CliRunner().invoke(cli, ["report", "--format", "pdf"])
    assert result.exit_code == 2
    assert "Try 'cli report --help' for help." in result.output


def test_every_report_says_shard_or_merged() -> None:
    from trustproof.report import render  # noqa: PLC0415

    shard = cut(full_run(), 3)[1]
    merged = merge(named(cut(full_run(), 3)))
    assert "Shard 2/3</strong>" in render(shard, "html")
    assert '<property name="shard" value="2/3"' in render(shard, "junit")
    assert "**Shard 2/3**" in render(shard, "md")
    html = render(merged, "html")
    assert "Merged from 3 shards" in html
    assert "1/3 pass" in html
    assert '<property name="merged_shards" value="3"' in render(merged, "junit")
    plain = full_run()
    assert "Shard" not in render(plain, "md")
    assert "Merged from" not in render(plain, "md")
    assert 'id="shard' not in render(plain, "html")  # neither #shard nor #shards
    assert 'name="shard"' not in render(plain, "junit")


def test_shards_with_nothing_to_run_merge_too() -> None:
    """More shards than a hash fills: an empty shard is a shard (it passes), not a missing one."""
    shards = cut(full_run(), 64)
    assert any(not s.cases and not s.scenarios for s in shards)
    merged = merge(named(shards))
    assert _verdicts(merged) == _verdicts(full_run())
    assert merged.ok
    assert len(merged.merged_from) == 64
