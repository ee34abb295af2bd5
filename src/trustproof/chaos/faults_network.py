"""``network-fault``: latency, connection loss or resets on a trust path. Each states what must
happen and checks it (`Run.expect`); the figures go into the result.

``link: token-service`` (the default) — between the sandbox and its token service: see
`trustproof.chaos.faults_tokens` (the gateways hold the keys and judge issued tokens as before;
an egress proxy that cannot get a token refuses with 503 and never forwards bare).

``link: service`` — between a caller's egress proxy and its callee's gateway, on every
service-to-service call of the target (all of them without a target). The view puts the fault
there (`SandboxView.service_path_fault`: a TCP fault proxy on the local backend; ``tc netem``
or nftables and a relay in the caller's namespace on the isolated one — the timeline says
which) and rolls it back whatever happens:

* ``latency`` — the calls still succeed, each slower by at least the latency (the added
  latency is a figure: the median of the calls during against the same calls before), and a
  call the callee's policy refuses is still refused;
* ``loss`` — a share of the calls fail; each one fails at the caller's egress proxy (502, 503
  or 504: it got no answer from the callee's gateway) and none is answered any other way;
* ``reset`` — every call fails so, at the egress proxy;
* under every mode, nothing the callee's gateway refuses is allowed (an egress proxy that
  "recovers" by going around the gateway — plain HTTP to the callee's port, or an answer from a
  cache — fails the experiment), no refused cell of the steady state is allowed (an allowed one
  may fail: a service whose handler calls over the degraded link fails its own callers —
  counted, not judged), and after the rollback the calls succeed again within
  ``recover_within`` (the link's recovery time is a figure).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

from trustproof.chaos.experiment import FaultResult, Run
from trustproof.chaos.faults_tokens import (
    DEFAULT_LATENCY_S,
    DEFAULT_LOSS_PERCENT,
    FETCH_POLL_S,
    Edge,
    edges,
    token_path_fault,
)
from trustproof.chaos.scenario import call, shown
from trustproof.plan import expected_matrix
from trustproof.probes.model import Result
from trustproof.view.chaos import NetFault, NetMode

EGRESS_FAILED = frozenset({502, 503, 504})  # what an egress proxy answers without an answer
ROUNDS = {"latency": 2, "loss": 4, "reset": 2}  # calls per edge while the fault holds
BEFORE_ROUNDS = 2
LOSS_HOLD_S = 0.3  # a lost connection is given up (reset) after this long


async def network_fault(run: Run) -> FaultResult:
    """``network-fault`` on the link the experiment names (default: the token service)."""
    if run.experiment.link == "service":
        return await service_link_fault(run)
    return await token_path_fault(run)


@dataclass(frozen=True)
class Refused:
    """A call through an egress proxy that the callee's policy refuses (must stay refused)."""

    edge: Edge

    def describe(self) -> str:
        return f"{self.edge.describe()} (refused by policy)"


def refused_edges(run: Run, chosen: tuple[Edge, ...]) -> tuple[Refused, ...]:
    """For each chosen edge, one operation the callee refuses to that caller (a GET if there
    is one), called through the same egress proxy."""
    matrix = {b.name: b for b in expected_matrix(run.env.spec) if b.kind == "service"}
    found = []
    for edge in chosen:
        boundary = matrix.get(edge.callee)
        cells = [
            c
            for c in (boundary.cells if boundary else ())
            if not c.allowed and c.caller == edge.caller
        ]
        if cells:
            cell = min(cells, key=lambda c: (not c.operation.startswith("GET "), c.operation))
            found.append(Refused(Edge(edge.caller, edge.callee, cell.operation)))
    return tuple(found)


def _fault(run: Run) -> tuple[NetFault, str]:
    experiment = run.experiment
    mode: NetMode = experiment.mode if experiment.mode in ("latency", "loss") else "reset"
    latency = experiment.latency.seconds if experiment.latency is not None else DEFAULT_LATENCY_S
    loss = (experiment.loss if experiment.loss is not None else DEFAULT_LOSS_PERCENT) / 100
    label = {
        "latency": f"{latency * 1000:.0f} ms latency",
        "loss": f"{loss:.0%} connection loss",
        "reset": "every connection reset",
    }[mode]
    return NetFault(mode, latency_s=latency, loss=loss, hold_s=LOSS_HOLD_S), label


async def _calls(run: Run, chosen: tuple[Edge, ...], phase: str, rounds: int) -> list[Result]:
    results = []
    for _ in range(rounds):
        for edge in chosen:
            result = await call(run.env, edge.presentation())
            run.requests += 1
            run.rec.event(f"{phase}: {edge.describe()}: {shown(result)} in "
                          f"{result.elapsed_ms:.0f} ms")  # fmt: skip
            results.append(result)
    return results


async def _refused_stay_refused(run: Run, refused: tuple[Refused, ...], phase: str) -> int:
    """Call each refused operation once; any allowed is a fail-open (counted and a problem)."""
    allowed = 0
    for cell in refused:
        result = await call(run.env, cell.edge.presentation())
        run.requests += 1
        run.rec.event(f"{phase}: {cell.describe()}: {shown(result)}")
        if result.outcome == "allowed":
            allowed += 1
            run.over += 1
            run.expect(False, f"{phase}: {cell.describe()} was allowed: fail-open")
    return allowed


async def service_link_fault(run: Run) -> FaultResult:
    env, rec = run.env, run.rec
    chosen = edges(env, run.experiment.target)
    if not chosen:
        return FaultResult("no service-to-service call (egress edge) to degrade", skipped=True)
    fault, label = _fault(run)
    label += " between the egress proxies and their callees' gateways"
    refused = refused_edges(run, chosen)
    before = await _calls(run, chosen, "before", BEFORE_ROUNDS)
    for result in before:
        run.expect(result.outcome == "allowed", f"before the fault: {shown(result)}")
    baseline = statistics.median(r.elapsed_ms for r in before)
    rec.figure("link_baseline_ms", baseline)
    links = tuple(dict.fromkeys((e.caller, e.callee) for e in chosen))
    start = time.perf_counter()
    async with env.view.service_path_fault(links, fault) as path:
        rec.event(f"FAULT: {label} ({len(links)} link(s)); mechanism: {path.mechanism} — "
                  f"{path.detail}")  # fmt: skip
        rec.note(f"mechanism: {path.mechanism} — {path.detail}")
        during = await _calls(run, chosen, "during", ROUNDS[fault.mode])
        over = await _refused_stay_refused(run, refused, "during")
        # A service whose handler calls over a degraded link may fail its own callers: counted
        # (failed requests), not judged; a refused cell allowed is judged all the same.
        await run.steady("during (the service links degraded)", must_hold=False)
        await run.hold(start)
    rec.event("ROLLBACK: the links carry the calls unharmed again")
    rec.figure("outage_ms", (time.perf_counter() - start) * 1000)
    passed = [r for r in during if r.outcome == "allowed"]
    failed = [r for r in during if r.outcome != "allowed"]
    rec.figure("link_calls_passed", len(passed))
    rec.figure("link_calls_failed", len(failed))
    rec.figure("link_refused_allowed", over)
    parts = [label, _judge(run, fault, label, during, baseline)]
    recovered = await _link_recovery(run, chosen)
    after_over = await _refused_stay_refused(run, refused, "after")
    rec.figure("link_refused_allowed", over + after_over)
    if recovered is not None:
        parts.append(f"the calls served again {recovered:.0f} ms after the rollback")
    if refused:
        parts.append(f"{len(refused)} refused call(s) still refused")
    return FaultResult(", ".join(parts))


def _judge(run: Run, fault: NetFault, label: str, during: list[Result], baseline: float) -> str:
    """Check the calls made while the fault held; a summary of what they did."""
    for result in during:
        if result.outcome == "allowed" and result.evidence.audit is None:
            run.over += 1
            run.expect(
                False,
                f"with {label}: {shown(result)} with no decision of the callee's gateway on "
                "record: the egress proxy went around it (fail-open)",
            )
    if fault.mode == "latency":
        return _judge_latency(run, fault, label, during, baseline)
    return _judge_failing(run, fault, label, during)


def _judge_latency(
    run: Run, fault: NetFault, label: str, during: list[Result], baseline: float
) -> str:
    slowest_allowed = fault.latency_s * 1000 - 1  # each call crosses the link at least once
    for result in during:
        if result.outcome != "allowed":
            run.failed += 1
        run.expect(result.outcome == "allowed", f"with {label}: {shown(result)}")
        run.expect(
            result.outcome != "allowed" or result.elapsed_ms >= slowest_allowed,
            f"with {label} a call took {result.elapsed_ms:.0f} ms: the fault was not on its path",
        )
    median = statistics.median(r.elapsed_ms for r in during)
    run.rec.figure("link_during_ms", median)
    run.rec.figure("added_latency_ms", median - baseline)
    return f"{len(during)} call(s) served, {median - baseline:.0f} ms slower (median)"


def _judge_failing(run: Run, fault: NetFault, label: str, during: list[Result]) -> str:
    """Loss and resets: a call fails at the egress proxy (502/503/504), or — with loss — is
    served by the callee's gateway; anything else is a problem, named."""
    failed = 0
    for result in during:
        if result.outcome != "allowed" and result.evidence.status in EGRESS_FAILED:
            failed += 1
            run.failed += 1
            continue
        decided = result.evidence.audit is not None  # the callee's gateway judged it
        if result.outcome == "allowed" and (not decided or fault.mode == "loss"):
            continue  # around the gateway: judged already; or its connection was not lost
        if result.outcome != "allowed":
            run.failed += 1
        if not decided:
            why = (
                "answered, but not with the egress proxy's 502/503/504 and with no decision of "
                "the callee's gateway on record: the egress proxy went around it (fail-open)"
            )
        elif fault.mode == "reset":
            why = (
                "a call reached the callee's gateway although every connection was to be "
                "reset: the fault was not on its path"
            )
        else:
            why = "expected the call served, or 502, 503 or 504 from the egress proxy"
        run.expect(False, f"with {label}: {shown(result)} — {why}")
    if fault.mode == "reset":
        return f"{failed} call(s) failed at the egress proxy (502/503/504)"
    return f"{failed} of {len(during)} call(s) failed at the egress proxy, none answered otherwise"


async def _link_recovery(run: Run, chosen: tuple[Edge, ...]) -> float | None:
    """Milliseconds from the rollback until every chosen call is served again."""
    start = time.perf_counter()
    bound = run.experiment.recover_within.seconds
    while True:
        results = await _calls(run, chosen, "after", 1)
        elapsed = time.perf_counter() - start
        if all(r.outcome == "allowed" for r in results):
            run.rec.figure("link_recovery_ms", elapsed * 1000)
            return elapsed * 1000
        if elapsed > bound:
            run.expect(False, f"the service-to-service calls failed {bound:g} s after the rollback")
            run.rec.figure("link_recovery_ms", -1)
            return None
        await asyncio.sleep(FETCH_POLL_S)
