"""Running the scenarios (`trustproof.chaos`, `trustproof.consistency`) once the cases are done.

They run sequentially and after the cases because they disturb shared state (revocations, the
policy, the signing keys, the certificates); whatever a scenario changes that later traffic relies
on is restored by the scenario itself. A scenario never raises: one that crashes or overruns
`SCENARIO_TIMEOUT_S` is an ``error`` result (the scrubbed last line of the exception).
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Callable, Iterable, Sequence

from trustproof import chaos, consistency
from trustproof.catalogue import selected
from trustproof.chaos import experiments as chaos_experiments
from trustproof.chaos.scenario import Recorder, Scenario, ScenarioEnv, ScenarioResult
from trustproof.consistency.live_offline import MATRIX_PROBES
from trustproof.probes.model import CaseResult
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.view import LiveView
from trustproof.scrub import scrubbed_traceback
from trustproof.spec.chaos import Experiment
from trustproof.spec.model import Spec
from trustproof.suite import chaos_audit

SCENARIO_TIMEOUT_S = 30.0
LIVE_VS_OFFLINE = "policy.live-vs-offline"
SCENARIOS: tuple[tuple[str, Scenario], ...] = (
    *chaos.SCENARIOS,
    *consistency.SCENARIOS,
    *consistency.DATA_SCENARIOS,
)
SCENARIO_IDS = tuple(sid for sid, _ in SCENARIOS)


def choose_scenarios(
    spec: Spec,
    select: Sequence[str] = (),
    deselect: Sequence[str] = (),
    case_results: Iterable[CaseResult] = (),
) -> list[str]:
    """The scenario ids to run: chosen by the spec's ``probes`` (catalogue ids; the live/offline
    comparison only with the matrix probes it reads; ``consistency.*`` and ``data.*`` only with
    the spec sections they compare) and by the run's select/deselect globs."""
    chosen = set(selected(spec.probes.select, spec.probes.deselect))
    ran = {item.case.probe for item in case_results}
    ids = []
    for sid in SCENARIO_IDS:
        wanted = sid in chosen
        if sid == LIVE_VS_OFFLINE:
            wanted = wanted and bool(ran & set(MATRIX_PROBES))
        wanted = wanted and consistency.applies(spec, sid)
        if select and not any(fnmatch.fnmatchcase(sid, p) for p in select):
            wanted = False
        if any(fnmatch.fnmatchcase(sid, p) for p in deselect):
            wanted = False
        if wanted:
            ids.append(sid)
    return ids


async def run_scenarios(
    sandbox: Sandbox,
    case_results: Sequence[CaseResult],
    *,
    ids: Sequence[str] | None = None,
    on_start: Callable[[str], None] | None = None,
) -> list[ScenarioResult]:
    """Run the scenarios (all, or `ids`, in the table's order) one after the other."""
    results = []
    async with LiveView.open(sandbox) as view:
        env = ScenarioEnv(view, tuple(case_results))
        for sid, scenario in SCENARIOS:
            if ids is not None and sid not in ids:
                continue
            if on_start is not None:
                on_start(sid)
            results.append(await run_one(sid, scenario, env))
    return results


async def run_one(sid: str, scenario: Scenario, env: ScenarioEnv) -> ScenarioResult:
    """One scenario; a crash or an overrun is an ``error`` result with what was recorded."""
    rec = Recorder(sid)
    try:
        async with asyncio.timeout(SCENARIO_TIMEOUT_S):
            return await scenario(env, rec)
    except TimeoutError:
        rec.event(f"gave up after {SCENARIO_TIMEOUT_S:.0f} s")
        return rec.finish("error", f"the scenario did not finish within {SCENARIO_TIMEOUT_S:.0f} s")
    except Exception as exc:
        last = scrubbed_traceback(exc).splitlines()[-1]
        rec.event(f"crashed: {last}")
        return rec.finish("error", f"the scenario crashed: {last}")


# -- trust-chaos experiments (`trustproof.chaos.experiments`) ------------------------------------

EXPERIMENT_IDS = chaos_experiments.EXPERIMENT_IDS
EXPERIMENT_TIMEOUT_S = 90.0  # plus the experiment's own `duration`


def choose_experiments(
    spec: Spec, select: Sequence[str] = (), deselect: Sequence[str] = ()
) -> list[tuple[str, Experiment]]:
    """The experiments to run, with their result ids: the spec's (or the default set), limited
    by the spec's ``probes`` (the ``chaos.<fault>`` catalogue ids) and the run's globs."""
    chosen = set(selected(spec.probes.select, spec.probes.deselect))
    experiments = chaos_experiments.experiments_of(spec)
    picked = []
    for sid, experiment in zip(
        chaos_experiments.experiment_ids(experiments), experiments, strict=True
    ):
        base = f"chaos.{experiment.fault}"
        names = (sid, base)
        wanted = base in chosen
        if select and not any(fnmatch.fnmatchcase(n, p) for n in names for p in select):
            wanted = False
        if any(fnmatch.fnmatchcase(n, p) for n in names for p in deselect):
            wanted = False
        if wanted:
            picked.append((sid, experiment))
    return picked


async def run_experiments(
    sandbox: Sandbox,
    chosen: Sequence[tuple[str, Experiment]],
    *,
    case_results: Sequence[CaseResult] = (),
    on_start: Callable[[str], None] | None = None,
) -> list[ScenarioResult]:
    """Run the chosen experiments one after the other (each restores what it broke)."""
    results = []
    async with LiveView.open(sandbox) as view:
        env = ScenarioEnv(view, tuple(case_results))
        for sid, experiment in chosen:
            if on_start is not None:
                on_start(sid)
            steps = chaos_audit.steps_to(sandbox, sid)
            result = await run_experiment_safely(sid, experiment, env, on_event=steps)
            chaos_audit.record_result(sandbox, result)
            results.append(result)
    return results


async def run_experiment_safely(
    sid: str,
    experiment: Experiment,
    env: ScenarioEnv,
    *,
    on_event: Callable[[float, str], None] | None = None,
) -> ScenarioResult:
    """One experiment; a crash or an overrun is an ``error`` result with what was recorded (the
    fault's rollback has run: it is a context manager left by the exception). `on_event` is told
    each step of its timeline as it happens."""
    rec = Recorder(sid, on_event)
    limit = EXPERIMENT_TIMEOUT_S + (experiment.duration.seconds if experiment.duration else 0)
    try:
        async with asyncio.timeout(limit):
            return await chaos_experiments.run(env, rec, experiment)
    except TimeoutError:
        rec.event(f"gave up after {limit:.0f} s")
        return rec.finish("error", f"{experiment.name}: did not finish within {limit:.0f} s")
    except Exception as exc:
        last = scrubbed_traceback(exc).splitlines()[-1]
        rec.event(f"crashed: {last}")
        return rec.finish("error", f"{experiment.name}: the experiment crashed: {last}")
