"""``revocation-storm``: many revocations in one burst, and how fast each reaches the gateway.

`revocations` fresh tokens (default 1,000) for one gateway-protected cell are revoked through the
token service's RFC 7009 endpoint at once (16 in flight on kept-alive connections). Every
hundredth is *tracked*: revoked on its own connection during the burst and replayed at the
gateway until refused — the time from the revocation's answer to the refusal is its propagation
(an upper bound: it includes one request's round trip, under the storm's load). Expected:
every revocation answered 200, every tracked token refused with ``token-revoked`` on the first
replay after its revocation was answered (no replay accepted: it had propagated already), and
the process's resident memory growing by less than `MEMORY_BUDGET_KIB` over the storm (the
revocation lists are bounded by the tokens' lifetimes). The p99 time against the 50 ms budget is
a speed target, judged in ``benchmarks/chaos.py`` beside a same-run reference, not here.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

from trustproof.chaos.experiment import FaultResult, Run
from trustproof.chaos.scenario import Target, call, mint, presentation, shown, targets
from trustproof.scrub import Secret

DEFAULT_REVOCATIONS = 1000
TRACK_EVERY = 100
TRACKERS_IN_FLIGHT = 4
BURST_IN_FLIGHT = 16
PROPAGATION_BUDGET_MS = 50.0
MEMORY_BUDGET_KIB = 64 * 1024
GIVE_UP_S = 2.0
REVOKED = "token-revoked"


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (`fraction` in 0-1) of `values` (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass(frozen=True)
class Tracked:
    """One tracked revocation: ms from its answer to the gateway's refusal (-1: none), and how
    many replays the gateway accepted after the answer (0: it had propagated already)."""

    refused_ms: float
    accepted_after: int


async def _track(run: Run, target: Target, token: Secret[str], gate: asyncio.Semaphore) -> Tracked:
    """Revoke one token and replay it until refused."""
    env = run.env
    async with gate:
        status = await env.view.revoke_token(token, as_caller=target.caller)
        start = time.perf_counter()
        if status != 200:
            run.expect(False, f"a tracked revocation was answered HTTP {status}")
            return Tracked(-1.0, 0)
        accepted = 0
        while time.perf_counter() - start < GIVE_UP_S:
            result = await call(env, presentation(target, token))
            run.requests += 1
            if result.outcome != "allowed":
                elapsed = (time.perf_counter() - start) * 1000
                run.expect(result.reason == REVOKED, f"a revoked token refused: {shown(result)}")
                return Tracked(elapsed, accepted)
            accepted += 1
            await asyncio.sleep(0.001)
        run.expect(False, f"a revoked token was still accepted after {GIVE_UP_S:g} s")
        return Tracked(-1.0, accepted)


async def revocation_storm(run: Run) -> FaultResult:
    env, rec, view = run.env, run.rec, run.env.view
    chosen = targets(env.spec, view.gateways())
    name = run.experiment.target or next(iter(chosen), None)
    if name is None or name not in chosen:
        return FaultResult("no service behind a gateway to revoke tokens at", skipped=True)
    target = chosen[name]
    count = int(run.experiment.revocations or DEFAULT_REVOCATIONS)
    tokens = [mint(env, target) for _ in range(count)]
    tracked = tokens[::TRACK_EVERY]
    burst = [t for i, t in enumerate(tokens) if i % TRACK_EVERY]
    rec.event(f"{count} fresh tokens for {target.describe()} ({len(tracked)} tracked)")
    memory_before = view.memory_kib()
    gate = asyncio.Semaphore(TRACKERS_IN_FLIGHT)
    start = time.perf_counter()
    rec.event(f"FAULT: {count} revocations in one burst")
    storm = asyncio.ensure_future(
        view.revoke_tokens(burst, as_caller=target.caller, concurrency=BURST_IN_FLIGHT)
    )
    timings = await asyncio.gather(*(_track(run, target, token, gate) for token in tracked))
    statuses = await storm
    burst_ms = (time.perf_counter() - start) * 1000
    memory_after = view.memory_kib()
    propagation = [t.refused_ms for t in timings if t.refused_ms >= 0]
    late = sum(t.accepted_after for t in timings)
    failed = sum(1 for s in statuses if s != 200)
    growth = max(0, memory_after - memory_before)
    rec.event(f"burst done in {burst_ms:.0f} ms; {failed} revocation(s) not answered 200")
    figures = {
        "revocations": float(count),
        "burst_ms": burst_ms,
        "revocations_per_s": count / (burst_ms / 1000) if burst_ms else 0.0,
        "failed_revocations": float(failed),
        "tracked": float(len(tracked)),
        "propagation_p50_ms": percentile(propagation, 0.50),
        "propagation_p99_ms": percentile(propagation, 0.99),
        "propagation_max_ms": max(propagation, default=0.0),
        "rss_growth_kib": float(growth),
    }
    for key, value in figures.items():
        rec.figure(key, value)
    run.expect(failed == 0, f"{failed} of {len(burst)} revocations were not answered 200")
    p99 = figures["propagation_p99_ms"]
    rec.figure("accepted_after_revocation", late)
    run.expect(
        late == 0,
        f"{late} replay(s) of revoked tokens were accepted after the revocation was answered",
    )
    rec.event(
        f"propagation p99 {p99:.1f} ms (answer to refusal, one request's round trip under the "
        f"storm included; budget {PROPAGATION_BUDGET_MS:.0f} ms, judged in benchmarks/chaos.py)"
    )
    run.expect(
        growth <= MEMORY_BUDGET_KIB,
        f"resident memory grew by {growth / 1024:.1f} MiB over the storm "
        f"(budget {MEMORY_BUDGET_KIB / 1024:.0f} MiB)",
    )
    rec.event("ROLLBACK: nothing to undo (the revoked tokens were minted for the storm)")
    await run.steady("after the storm (other tokens unaffected)")
    await run.hold(start)
    return FaultResult(
        f"{count} revocations in {burst_ms:.0f} ms, each tracked token refused on the first "
        f"replay after its revocation (p99 {p99:.1f} ms to the refusal), memory "
        f"+{growth / 1024:.1f} MiB"
    )
