"""The zero-trust suite: every case generated from the spec by the probe registry
(`trustproof.probes.registry`), run concurrently against a running sandbox through its
`SandboxView`, each judged, in a deterministic order. The multi-step scenarios
(`trustproof.chaos`, `trustproof.consistency`) run after the cases and their results ride along in
the same `SuiteRun`.

The cases of `RUNS_LAST` (``egress.observed``: what the services themselves tried to reach) are
generated last and run after every other case has finished, so that the whole suite's traffic is
behind them; what the services tried (`SandboxView.egress_events`) is then read once more into
the run (`SuiteRun.egress_events`, ``results.json``) and written to the audit log as
``egress.drop``/``dns.refused`` records where the sandbox has that hook. (Traffic of the
scenarios, which run after the cases, is not in it.)

Concurrency is bounded (`concurrency` attempts in flight, and beside them up to
`DATASTORE_CONCURRENCY` datastore cases in a lane of their own: they wait on the database server
and libpq's threads rather than on this process, so they run from the start alongside the HTTP
cases instead of as a tail after them); results come back in generation order whatever order
they finish in. `--fail-fast` stops starting new cases after the first verdict
that is not ``pass`` (cases already in flight finish).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import os
import platform
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from trustproof import __version__
from trustproof.audit import AuditUnavailable
from trustproof.chaos.scenario import ScenarioResult
from trustproof.probes.egress_observed import RUNS_LAST, last
from trustproof.probes.model import Case, CaseResult, Evidence, Result, judge
from trustproof.probes.registry import generate as generate_cases
from trustproof.probes.registry import probe_for
from trustproof.results import RESULTS_VERSION, Results, ScenarioRecord, record_of
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.egress_events import audit_records
from trustproof.sandbox.view import LiveView
from trustproof.scrub import scrubbed_traceback
from trustproof.spec.model import Spec
from trustproof.suite.context import run_context
from trustproof.view import EgressEvent, SandboxView

DEFAULT_CONCURRENCY = 16  # cases in flight; 16 beat 32 and 64 on the shop (fewer connections)
DATASTORE_CONCURRENCY = 4  # datastore cases in flight beside them (libpq runs in threads)
log = logging.getLogger(__name__)


def generate(spec: Spec, *, thorough: bool = False, backend: str = "local") -> list[Case]:
    """Every case the spec implies (services, then datastores), in a stable order, limited to
    the probes the spec's `probes.select`/`deselect` choose (`thorough`: every cell where a
    probe samples by default; `backend` ``"isolated"``: the egress cases too)."""
    return last(generate_cases(spec, thorough=thorough, backend=backend))


def choose(
    cases: Sequence[Case], select: Sequence[str] = (), deselect: Sequence[str] = ()
) -> list[Case]:
    """Cases whose probe id or boundary matches a `select` pattern (all when none) and no
    `deselect` pattern (globs: ``token.*``, ``orders``)."""

    def hit(case: Case, patterns: Sequence[str]) -> bool:
        return any(
            fnmatch.fnmatchcase(case.probe, p) or fnmatch.fnmatchcase(case.boundary, p)
            for p in patterns
        )

    return [c for c in cases if (not select or hit(c, select)) and not hit(c, deselect)]


@dataclass(frozen=True)
class SuiteRun:
    """A run as it happened, in memory (the scenarios read its `CaseResult`s); `to_results`
    makes the one result model that is written, reported and gated on."""

    results: tuple[CaseResult, ...]
    started_at: str
    elapsed_s: float
    stopped_early: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    scenarios: tuple[ScenarioResult, ...] = ()
    egress_events: tuple[EgressEvent, ...] = ()  # what the services themselves tried

    @property
    def cases_per_second(self) -> float:
        return len(self.results) / self.elapsed_s if self.elapsed_s else 0.0

    def to_results(self, spec: Spec | None = None) -> Results:
        """The result model of this run (times rounded as written); with `spec`, the run's
        context too (spec path, trust domain, TTLs, versions) for the reports."""
        return Results(
            version=RESULTS_VERSION,
            started_at=self.started_at,
            elapsed_s=round(self.elapsed_s, 3),
            cases_per_second=round(self.cases_per_second, 1),
            stopped_early=self.stopped_early,
            summary=dict(self.counts),
            cases=tuple(record_of(item) for item in self.results),
            scenarios=tuple(_scenario_record(s) for s in self.scenarios),
            spec=None if spec is None else str(spec.path),
            trust_domain=None if spec is None else spec.trust_domain,
            versions=(
                None
                if spec is None
                else {"trustproof": __version__, "python": platform.python_version()}
            ),
            ttl=(
                None
                if spec is None
                else {"certificate": str(spec.ttl.certificate), "token": str(spec.ttl.token)}
            ),
            context=None if spec is None else run_context(os.environ, spec.base_dir),
            egress_events=self.egress_events,
        )


def _scenario_record(s: ScenarioResult) -> ScenarioRecord:
    return ScenarioRecord(
        id=s.id,
        ok=s.ok,
        verdict=s.verdict,
        summary=s.summary,
        elapsed_s=round(s.elapsed_s, 3),
        figures={name: round(value, 3) for name, value in s.figures.items()},
        timeline=tuple((round(ms, 3), text) for ms, text in s.timeline),
        evidence=tuple(s.evidence),
    )


async def run_suite(
    sandbox: Sandbox,
    cases: Sequence[Case],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    fail_fast: bool = False,
    on_result: Callable[[CaseResult], None] | None = None,
) -> SuiteRun:
    started_at = datetime.now(UTC).isoformat()
    start = time.perf_counter()
    gate = asyncio.Semaphore(max(1, concurrency))
    datastore_gate = asyncio.Semaphore(max(1, min(concurrency, DATASTORE_CONCURRENCY)))
    stop = asyncio.Event()
    slots: list[CaseResult | None] = [None] * len(cases)

    async def one(index: int, case: Case, view: SandboxView) -> None:
        async with datastore_gate if case.kind == "datastore" else gate:
            if stop.is_set():
                return
            started_ms = (time.perf_counter() - start) * 1000
            result = await execute(case, view)
            item = CaseResult(case, result, judge(case, result), started_ms)
            slots[index] = item
            audit_case(sandbox, item)
            if on_result is not None:
                on_result(item)
            if fail_fast and not item.ok:
                stop.set()

    async with LiveView.open(sandbox) as view:
        for group in (False, True):  # RUNS_LAST after everything else
            await asyncio.gather(
                *(
                    one(i, case, view)
                    for i, case in enumerate(cases)
                    if (case.probe in RUNS_LAST) == group
                )
            )
        events = observed_egress(sandbox, view)
    results = tuple(item for item in slots if item is not None)
    counts: Counter[str] = Counter(item.verdict for item in results)
    return SuiteRun(
        results,
        started_at,
        time.perf_counter() - start,
        stopped_early=len(results) < len(cases),
        counts=counts,
        egress_events=events,
    )


def observed_egress(sandbox: Sandbox, view: SandboxView) -> tuple[EgressEvent, ...]:
    """What the services tried (never raises: unreadable counters are logged, and the
    ``egress.observed`` cases that read them are errors), each event also an audit record."""
    try:
        events = view.egress_events()
    except Exception as exc:
        last_line = scrubbed_traceback(exc).splitlines()[-1]
        log.warning("what the services tried cannot be read: %s", last_line)
        return ()
    emit = getattr(sandbox, "audit_event", None)  # the audit log's hook, where there is one
    if callable(emit):
        try:
            for kind, fields in audit_records(events):
                emit(kind, **fields)
        except Exception as exc:  # the events are in the results either way
            last_line = scrubbed_traceback(exc).splitlines()[-1]
            log.warning("egress events not written to the audit log: %s", last_line)
    return events


def audit_case(sandbox: Sandbox, item: CaseResult) -> None:
    """One ``probe`` record in the run's audit log (the gateway's own decision record carries the
    same request id); a log that refuses it has already made the gateways fail closed."""
    result = item.result
    with contextlib.suppress(AuditUnavailable):
        sandbox.audit_event(
            "probe",
            case=item.case.id,
            probe=item.case.probe,
            verdict=item.verdict,
            outcome=result.outcome,
            stage=result.stage,
            reason=result.reason,
            request_id=result.evidence.request_id,
        )


async def execute(case: Case, view: SandboxView) -> Result:
    """One case; a probe that crashes is an ``error`` result, never a pass."""
    try:
        return await probe_for(case).run(case, view)
    except Exception as exc:
        detail = scrubbed_traceback(exc).splitlines()[-1]
        return Result("error", "probe", "probe-crashed", Evidence(sent=case.id, detail=detail))
