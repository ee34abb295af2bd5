"""`trustproof run` and `trustproof probe`: the suite against a sandbox (the cases, then the
scenarios), results to JSON, a terminal summary, and the exit code (0 every verdict passed, 1 trust
violations)."""

from __future__ import annotations

import json
import os
import platform
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from trustproof import __version__
from trustproof.errors import SandboxError
from trustproof.probes.model import Case, CaseResult
from trustproof.sandbox.controller import Sandbox
from trustproof.scrub import scrub
from trustproof.spec.model import Spec
from trustproof.suite.runner import SuiteRun, choose, generate, run_suite
from trustproof.suite.scenarios import choose_scenarios, run_scenarios

RESULTS_FILE = "results.json"


class NothingToRun(SandboxError):
    """The selection matched no case: a usage error (exit 2), never a pass."""

    exit_code = 2


def check_selection(spec: Spec, select: Sequence[str], deselect: Sequence[str]) -> list[Case]:
    """The chosen cases; `NothingToRun` when none (a typo must not turn the gate green)."""
    cases = choose(generate(spec), select, deselect)
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
) -> tuple[SuiteRun, Path]:
    """Generate, choose and run the cases, then the chosen scenarios (not after a --fail-fast
    stop); write the results into the run directory."""
    cases = choose(generate(sandbox.spec), select, deselect)
    if not cases:  # a typo in a pattern must not turn the gate green
        raise NothingToRun(
            "no case matches the selection ("
            + ", ".join(
                [*(f"--select {p}" for p in select), *(f"--deselect {p}" for p in deselect)]
                or ["the spec's probes.select/deselect"]
            )
            + ")",
            "see `trustproof probes` for the probe ids; boundaries are service and datastore names",
        )
    if on_total is not None:
        on_total(len(cases))
    run = await run_suite(sandbox, cases, fail_fast=fail_fast, on_result=on_result)
    if scenarios and not run.stopped_early:
        ids = choose_scenarios(sandbox.spec, select, deselect, run.results)
        done = await run_scenarios(sandbox, run.results, ids=ids, on_start=on_scenario)
        run = replace(run, scenarios=tuple(done))
    path = sandbox.run.path / RESULTS_FILE
    data = run.to_json()
    data["spec"] = str(sandbox.spec.path)
    data["versions"] = {"trustproof": __version__, "python": platform.python_version()}
    data["ttl"] = {
        "certificate": str(sandbox.spec.ttl.certificate),
        "token": str(sandbox.spec.ttl.token),
    }
    data["trust_domain"] = sandbox.spec.trust_domain
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(scrub(json.dumps(data, indent=1)))  # evidence quotes what servers said
    os.replace(tmp, path)
    return run, path


STAGES = ("handshake", "token", "policy", "upstream")


def stage_medians(cases: list[dict[str, Any]]) -> dict[str, float]:
    """Median microseconds per verification stage, from the gateways' audit events."""
    samples: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for case in cases:
        audit = (case.get("evidence") or {}).get("audit") or {}
        timings = audit.get("timings") or {}
        for stage in STAGES:
            value = timings.get(f"{stage}_us")
            if isinstance(value, int | float):
                samples[stage].append(float(value))
    return {stage: statistics.median(values) for stage, values in samples.items() if values}


def summary_lines(data: dict[str, Any]) -> list[str]:
    """A short text summary of a results document (also what `probe` prints)."""
    cases = data["cases"]
    bad = [c for c in cases if c["verdict"] != "pass"]
    lines = [
        f"{len(cases)} cases in {data['elapsed_s']:.2f} s ({data['cases_per_second']:.0f}/s): "
        + ", ".join(f"{count} {verdict}" for verdict, count in sorted(data["summary"].items()))
    ]
    for case in bad:
        lines.append(f"  {case['verdict'].upper():17} {case['id']}")
        lines.append(
            f"      expected {case['expected']}; observed {case['outcome']}"
            f"{' at ' + case['stage'] if case['stage'] else ''} ({case['reason']})"
        )
        lines.append(f"      sent: {case['evidence']['sent']}")
    if bad:
        by_probe = Counter(case["probe"] for case in bad)
        lines.append(
            "  failures by probe: "
            + ", ".join(f"{probe} {count}" for probe, count in by_probe.most_common())
        )
    if data.get("stopped_early"):
        lines.append("  stopped early (--fail-fast)")
    stages = stage_medians(cases)
    if stages:
        slowest = max(stages, key=stages.__getitem__)
        lines.append(
            "gateway time per stage (median): "
            + ", ".join(f"{stage} {us:.0f} µs" for stage, us in stages.items())
            + f"; slowest: {slowest}"
        )
    scenarios = data.get("scenarios", [])
    if scenarios:
        lines.append(f"{len(scenarios)} scenarios:")
    for scenario in scenarios:
        lines.append(
            f"  {scenario['verdict'].upper():5} {scenario['id']} ({scenario['elapsed_s']:.2f} s):"
            f" {scenario['summary']}"
        )
        if not scenario["ok"]:
            lines += [f"      {line}" for line in scenario["evidence"][:3]]
    return lines
