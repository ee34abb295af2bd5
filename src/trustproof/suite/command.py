"""What `trustproof run` and `trustproof probe` do with a sandbox: choose the cases (an empty
selection is a usage error), run them, then the scenarios, and write the one result model
(`trustproof.results`) into the run directory; plus the terminal summary. The command line exits
on `Results.ok`."""

from __future__ import annotations

import contextlib
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from trustproof.alerts import raise_alerts
from trustproof.audit import AuditUnavailable
from trustproof.errors import UsageError
from trustproof.probes.model import Case, CaseResult
from trustproof.results import CaseRecord, Results, write
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.view_egress import backend_of
from trustproof.scrub import scrub
from trustproof.shard import Shard
from trustproof.spec.chaos import Experiment
from trustproof.spec.model import Spec
from trustproof.suite.chaos_audit import started
from trustproof.suite.runner import SuiteRun, choose, generate, run_suite
from trustproof.suite.scenarios import (
    choose_experiments,
    choose_scenarios,
    run_experiments,
    run_scenarios,
)
from trustproof.suite.sharding import plan_fingerprint, shard_cases, shard_items


class NothingToRun(UsageError):
    """The selection matched no case: a usage error (exit 2), never a pass."""


def check_selection(
    spec: Spec,
    select: Sequence[str],
    deselect: Sequence[str],
    *,
    thorough: bool = False,
    backend: str = "local",
) -> list[Case]:
    """The chosen cases; `NothingToRun` when none (a typo must not turn the gate green)."""
    cases = choose(generate(spec, thorough=thorough, backend=backend), select, deselect)
    if not cases:
        chosen = [*(f"--select {p}" for p in select), *(f"--deselect {p}" for p in deselect)]
        raise NothingToRun(
            f"no case matches the selection ({', '.join(chosen) or 'the spec: probes'})",
            "see `trustproof probes` for the probe ids; boundaries are service and datastore names",
        )
    return cases


async def suite_on(
    sandbox: Sandbox,
    *,
    select: Sequence[str] = (),
    deselect: Sequence[str] = (),
    fail_fast: bool = False,
    on_result: Callable[[CaseResult], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    scenarios: bool = True,
    on_scenario: Callable[[str], None] | None = None,
    thorough: bool = False,
    chaos: bool = True,
    shard: Shard | None = None,
) -> tuple[Results, Path]:
    """Generate, choose and run the cases, then (with `scenarios`) the chosen scenarios and, with
    `chaos` and the spec's ``chaos.enabled``, the trust-chaos experiments (not after a
    --fail-fast stop); write the results into the run directory and return them with the file's
    path. With `shard`, only what that shard owns (`trustproof.suite.sharding`)."""
    backend = backend_of(sandbox)  # the egress cases run on the isolated backend only
    cases = check_selection(sandbox.spec, select, deselect, thorough=thorough, backend=backend)
    plan = plan_fingerprint(
        sandbox.spec, cases, select=select, deselect=deselect, scenarios=scenarios, chaos=chaos
    )
    cases = shard_cases(cases, shard)
    if on_total is not None:
        on_total(len(cases))
    run = await run_suite(sandbox, cases, fail_fast=fail_fast, on_result=on_result)
    if scenarios and not run.stopped_early:
        ids = choose_scenarios(sandbox.spec, select, deselect, run.results)
        ids = shard_items(ids, ids, shard)
        done = await run_scenarios(
            sandbox, run.results, ids=ids, on_start=started(sandbox, "scenario", on_scenario)
        )
        for scenario in done:
            with contextlib.suppress(AuditUnavailable):
                sandbox.audit_event(
                    "scenario", scenario=scenario.id, ok=scenario.ok, summary=scenario.summary
                )
        run = replace(run, scenarios=tuple(done))
    if chaos and scenarios and sandbox.spec.chaos.enabled and not run.stopped_early:
        chosen = choose_experiments(sandbox.spec, select, deselect)
        chosen = shard_items(chosen, [sid for sid, _ in chosen], shard)
        broke = await run_experiments(
            sandbox,
            chosen,
            case_results=run.results,
            on_start=started(sandbox, "chaos", on_scenario),
        )
        run = replace(run, scenarios=(*run.scenarios, *broke))
    results = await raise_alerts(sandbox, run.to_results(sandbox.spec))
    results = replace(results, shard=shard, fingerprint=plan)
    return results, write(results, sandbox.run.path)


def check_chaos_selection(
    spec: Spec, select: Sequence[str], deselect: Sequence[str]
) -> list[tuple[str, Experiment]]:
    """The chosen experiments; `NothingToRun` when none."""
    chosen = choose_experiments(spec, select, deselect)
    if not chosen:
        raise NothingToRun(
            "no chaos experiment matches the selection",
            "see `trustproof probes` for the chaos.* ids and the spec's `chaos.experiments`",
        )
    return chosen


async def chaos_on(
    sandbox: Sandbox,
    *,
    select: Sequence[str] = (),
    deselect: Sequence[str] = (),
    on_experiment: Callable[[str], None] | None = None,
) -> tuple[Results, Path]:
    """Only the trust-chaos experiments (`trustproof chaos`); an empty selection is a usage
    error. The results are written like a run's (no cases)."""
    chosen = check_chaos_selection(sandbox.spec, select, deselect)
    started_at = datetime.now(UTC).isoformat()
    start = time.perf_counter()
    done = await run_experiments(sandbox, chosen, on_start=started(sandbox, "chaos", on_experiment))
    run = SuiteRun((), started_at, time.perf_counter() - start, scenarios=tuple(done))
    results = await raise_alerts(sandbox, run.to_results(sandbox.spec))
    return results, write(results, sandbox.run.path)


STAGES = ("handshake", "token", "policy", "upstream")


def stage_medians(cases: Sequence[CaseRecord]) -> dict[str, float]:
    """Median microseconds per verification stage, from the gateways' audit events."""
    samples: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for case in cases:
        timings = (case.evidence.audit or {}).get("timings") or {}
        for stage in STAGES:
            value = timings.get(f"{stage}_us")
            if isinstance(value, int | float):
                samples[stage].append(float(value))
    return {stage: statistics.median(values) for stage, values in samples.items() if values}


def summary_lines(results: Results) -> list[str]:
    """A short text summary of a run (what `run` and `probe` print), scrubbed: the evidence in a
    results file is what servers said, and may quote a credential."""
    cases, bad = results.cases, results.failures
    lines = [
        f"{len(cases)} cases in {results.elapsed_s:.2f} s ({results.cases_per_second:.0f}/s): "
        + ", ".join(f"{count} {verdict}" for verdict, count in sorted(results.summary.items()))
    ]
    if not cases and results.scenarios:  # `trustproof chaos`: experiments only
        lines = [f"experiments only, in {results.elapsed_s:.2f} s"]
    for case in bad:
        lines.append(f"  {case.verdict.upper():17} {case.id}")
        lines.append(
            f"      expected {case.expected}; observed {case.outcome}"
            f"{' at ' + case.stage if case.stage else ''} ({case.reason})"
        )
        lines.append(f"      sent: {case.evidence.sent}")
    if bad:
        by_probe = Counter(case.probe for case in bad)
        lines.append(
            "  failures by probe: "
            + ", ".join(f"{probe} {count}" for probe, count in by_probe.most_common())
        )
    if results.stopped_early:
        lines.append("  stopped early (--fail-fast)")
    if results.alerts:
        lines.append(f"{len(results.alerts)} alerts:")
        lines.extend(
            f"  {a.severity.upper():8} [{a.rule}] {a.title}"
            + (f" (x{a.count})" if a.count > 1 else "")
            for a in results.alerts
        )
    stages = stage_medians(cases)
    if stages:
        slowest = max(stages, key=stages.__getitem__)
        lines.append(
            "gateway time per stage (median): "
            + ", ".join(f"{stage} {us:.0f} µs" for stage, us in stages.items())
            + f"; slowest: {slowest}"
        )
    if results.scenarios:
        lines.append(f"{len(results.scenarios)} scenarios:")
    for scenario in results.scenarios:
        lines.append(
            f"  {scenario.verdict.upper():5} {scenario.id} ({scenario.elapsed_s:.2f} s):"
            f" {scenario.summary}"
        )
        if not scenario.ok:
            lines += [f"      {line}" for line in scenario.evidence[:3]]
    return [scrub(line) for line in lines]
