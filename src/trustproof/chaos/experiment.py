"""A trust-chaos experiment run against the sandbox, through its `SandboxView` only.

One experiment, one `ScenarioResult` with the id ``chaos.<fault>``:

1. **steady state before** — a sample of the access matrix (`chaos.steady`) must hold; if it
   does not, nothing can be learned from the fault (an ``error`` result);
2. **the fault** — each fault (`chaos.faults_*`) breaks one thing inside a context manager of
   the view, so its **rollback always runs**, on an error or a timeout too; while it holds it
   checks what must happen (new tokens fail, the old key's tokens are refused, the old policy is
   kept, ...) and, where the fault says so, that the steady state still holds;
3. **steady state after** — polled until it holds again: the recovery time. With
   ``expect: recover`` (the default) it must hold within ``recover_within``; with
   ``expect: fail-closed`` it is measured and reported only.

Whatever the fault, a cell that must be refused and is allowed fails the experiment: no fault
excuses a boundary failing open. The timeline (ms since the start, what happened) and the figures
(durations, requests, failures, recovery time) go into the result, so into results.json and every
report.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from trustproof.chaos.scenario import Recorder, ScenarioEnv, ScenarioResult
from trustproof.chaos.steady import Check, Probe, check, sample
from trustproof.spec.chaos import Experiment

RECOVERY_POLL_S = 0.05
MAX_RECOVERY_POLLS = 400


@dataclass
class Run:
    """What a fault gets: the environment, the recorder, its experiment and the sample."""

    env: ScenarioEnv
    rec: Recorder
    experiment: Experiment
    probes: tuple[Probe, ...]
    problems: list[str] = field(default_factory=list)
    requests: int = 0
    failed: int = 0  # requests of allowed cells refused while the fault held
    over: int = 0  # requests of refused cells allowed (at any time): fail-open

    def expect(self, ok: bool, problem: str) -> bool:
        """Record `problem` unless `ok`; `ok` back."""
        if not ok:
            self.problems.append(problem)
            self.rec.event(f"UNEXPECTED: {problem}")
        return ok

    async def steady(
        self, phase: str, *, must_hold: bool = True, probes: tuple[Probe, ...] | None = None
    ) -> Check:
        """Check the sample (or `probes`) now; with `must_hold`, a cell refused is a problem
        too, else it is counted as a failed request."""
        found = await check(self.env, self.probes if probes is None else probes)
        self.requests += found.requests
        self.over += len(found.over)
        self.rec.event(f"steady state {phase}: {found.describe()}")
        for text in found.over:
            self.expect(False, f"{phase}: a refused cell was allowed: {text}")
        if must_hold:
            for text in found.refused:
                self.expect(False, f"{phase}: {text}")
        else:
            self.failed += len(found.refused)
        return found

    async def hold(self, since: float) -> None:
        """Keep the fault in force until the experiment's `duration` has passed."""
        if self.experiment.duration is None:
            return
        left = self.experiment.duration.seconds - (time.perf_counter() - since)
        if left > 0:
            await asyncio.sleep(left)


@dataclass(frozen=True)
class FaultResult:
    """What a fault says it did, for the summary (its problems are in the `Run`)."""

    summary: str
    skipped: bool = False


Fault = Callable[[Run], Awaitable[FaultResult]]


def experiment_services(env: ScenarioEnv, experiment: Experiment) -> tuple[str, ...]:
    """The services the sample is drawn from: the target, else every service that checks
    tokens (behind a gateway or validating them itself)."""
    if experiment.target is not None:
        return (experiment.target,)
    return tuple(env.spec.services)


async def run_experiment(
    env: ScenarioEnv, rec: Recorder, experiment: Experiment, fault: Fault
) -> ScenarioResult:
    """Steady state, fault (with its rollback), recovery; never raises for a failure."""
    probes = sample(env.spec, experiment_services(env, experiment), int(experiment.sample))
    run = Run(env, rec, experiment, probes)
    rec.note(f"experiment {experiment.name}: fault {experiment.fault}, expect {experiment.expect}")
    rec.note("steady state: " + "; ".join(p.describe() for p in probes) if probes else "(none)")
    before = await run.steady("before")
    if not before.held:
        return rec.finish("error", f"{experiment.name}: the steady state did not hold before the "
                          f"fault, so the fault proves nothing: {before.describe()}")  # fmt: skip
    start = time.perf_counter()
    done = await fault(run)
    rec.figure("fault_ms", (time.perf_counter() - start) * 1000)
    if done.skipped:
        return rec.finish("skip", f"{experiment.name}: {done.summary}")
    recovered_ms = await _recovery(run)
    rec.figure("requests", run.requests)
    rec.figure("failed_requests", run.failed)
    rec.figure("over_permissions", run.over)
    if recovered_ms is None:
        rec.figure("recovery_ms", -1)
        bound = experiment.recover_within.seconds
        if experiment.expect == "recover":
            run.expect(False, f"the steady state did not hold again within {bound:g} s")
        else:
            rec.event(f"not recovered within {bound:g} s (expect: fail-closed, reported only)")
    else:
        rec.figure("recovery_ms", recovered_ms)
    for problem in run.problems:
        rec.note(problem)
    if run.problems:
        shown = "; ".join(run.problems[:3])
        more = len(run.problems) - 3
        return rec.verdict(
            False, f"{experiment.name}: {shown}" + (f" (+{more})" if more > 0 else "")
        )
    recovery = f"recovered in {recovered_ms:.0f} ms" if recovered_ms is not None else "closed"
    return rec.verdict(True, f"{experiment.name}: {done.summary}; {recovery}")


async def _recovery(run: Run) -> float | None:
    """Milliseconds from the rollback until the sample holds again (None: not in time)."""
    start = time.perf_counter()
    bound = run.experiment.recover_within.seconds
    for _ in range(MAX_RECOVERY_POLLS):
        found = await check(run.env, run.probes)
        run.requests += found.requests
        run.over += len(found.over)
        for text in found.over:
            run.expect(False, f"after the rollback: a refused cell was allowed: {text}")
        elapsed = time.perf_counter() - start
        if found.held:
            run.rec.event(f"steady state after: {found.describe()}, {elapsed * 1000:.0f} ms")
            return elapsed * 1000
        if elapsed > bound:
            run.rec.event(f"steady state after: {found.describe()}; gave up after {bound:g} s")
            return None
        await asyncio.sleep(RECOVERY_POLL_S)
    return None
