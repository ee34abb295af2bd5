"""``revocation-storm``: many revocations in one burst, and how fast each reaches the gateway.

`revocations` fresh tokens (default 1,000) for one gateway-protected cell are revoked through the
token service's RFC 7009 endpoint at once (16 requests outstanding, over the view's kept-alive
connections: at most 3 per identity and server). Every hundredth is *tracked*
(`trustproof.chaos.storm_tracking`): replayed at the gateway back to back from before its
revocation until the gateway refuses it, in two streams on connections of their own — the
cell's own request (*served* while the token is good: the proof end to end) and a *probe* to an
undeclared path, which the gateway judges without forwarding (the token stage comes before the
route) — while the token is revoked during the burst.

Propagation is timed on the sandbox's own clock, not the client's: from the token service's
acceptance of the revocation (`SandboxView.revocation_time`, the `revoked_at` of its revocation
list entry) to the gateway's judgement of the first replay it refused as revoked, in either
stream (the ``time`` of that request's audit event, which the gateway stamps on the same clock
as it decides). Neither the storm client's queueing before its revocation request is sent nor
the wait for the refusal's answer to be read is in it; what is in it is the gap until the next
replay reaches the gateway after the acceptance: at most one probe's round trip to the gateway
(``probe_gap_p50_ms``: the gateway-side time from the last probe it let past the token stage to
its refusal). The served stream alone, sampled at the cell's whole round trip behind the
gateway (``replay_upstream_p50_ms``), gives ``served_refusal_*`` (the figure before the probes
were added: ``replay_gap_p50_ms`` says how coarse its sampling is). The time the client sees,
from reading the revocation's answer to reading the first refusal (clamped at 0 when the refusal
came first), is kept beside it as ``answer_to_refusal_*``.

Expected: every revocation answered 200, every tracked token refused with ``token-revoked`` in
both streams, no replay let through (served, or a probe past the token stage) that the gateway
judged after the acceptance or that was sent after the answer was read
(``accepted_after_revocation`` 0: it had propagated already), and the process's resident memory
growing by less than `MEMORY_BUDGET_KIB` over the storm (the revocation lists are bounded by the
tokens' lifetimes). The p99 against the 50 ms budget is a speed target, judged in
``benchmarks/chaos.py`` beside a same-run reference, not here.
"""

from __future__ import annotations

import asyncio
import math
import time

from trustproof.chaos.experiment import FaultResult, Run
from trustproof.chaos.scenario import Target, mint, targets
from trustproof.chaos.storm_tracking import Tracked, track
from trustproof.scrub import Secret

DEFAULT_REVOCATIONS = 1000
TRACK_EVERY = 100
TRACKERS_IN_FLIGHT = 4
BURST_IN_FLIGHT = 16
PROPAGATION_BUDGET_MS = 50.0
MEMORY_BUDGET_KIB = 64 * 1024


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (`fraction` in 0-1) of `values` (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


async def _tracked(
    run: Run, target: Target, token: Secret[str], gate: asyncio.Semaphore
) -> Tracked:
    async with gate:
        tracked = await track(run.env, target, token)
    run.requests += tracked.requests
    for problem in tracked.problems:
        run.expect(False, problem)
    return tracked


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
    timings = await asyncio.gather(*(_tracked(run, target, token, gate) for token in tracked))
    statuses = await storm
    burst_ms = (time.perf_counter() - start) * 1000
    memory_after = view.memory_kib()
    times = [t.refused_ms for t in timings if t.refused_ms >= 0]
    client = [t.answer_to_refusal_ms for t in timings if t.answer_to_refusal_ms >= 0]
    gaps = [t.gap_ms for t in timings if t.gap_ms >= 0]
    upstream = [ms for t in timings for ms in t.upstream_ms]
    served_times = [t.served_refused_ms for t in timings if t.served_refused_ms >= 0]
    probe_gaps = [t.probe_gap_ms for t in timings if t.probe_gap_ms >= 0]
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
        "propagation_p50_ms": percentile(times, 0.50),
        "propagation_p99_ms": percentile(times, 0.99),
        "propagation_max_ms": max(times, default=0.0),
        "probe_gap_p50_ms": percentile(probe_gaps, 0.50),
        "served_refusal_p50_ms": percentile(served_times, 0.50),
        "served_refusal_p99_ms": percentile(served_times, 0.99),
        "replay_gap_p50_ms": percentile(gaps, 0.50),
        "replay_upstream_p50_ms": percentile(upstream, 0.50),
        "answer_to_refusal_p50_ms": percentile(client, 0.50),
        "answer_to_refusal_p99_ms": percentile(client, 0.99),
        "rss_growth_kib": float(growth),
    }
    for key, value in figures.items():
        rec.figure(key, value)
    run.expect(failed == 0, f"{failed} of {len(burst)} revocations were not answered 200")
    p99 = figures["propagation_p99_ms"]
    rec.figure("accepted_after_revocation", late)
    run.expect(
        late == 0,
        f"{late} replay(s) of revoked tokens were accepted after the revocation (judged by the "
        "gateway after the token service accepted it, or sent after its answer was read)",
    )
    rec.event(
        f"propagation p99 {p99:.1f} ms (the token service's acceptance to the gateway's first "
        f"refusal, on the sandbox's clock; probes {figures['probe_gap_p50_ms']:.1f} ms and served "
        f"replays {figures['replay_gap_p50_ms']:.1f} ms apart at "
        f"the gateway; the client saw p99 {figures['answer_to_refusal_p99_ms']:.1f} ms from the "
        f"answer to the refusal; budget {PROPAGATION_BUDGET_MS:.0f} ms, judged in "
        "benchmarks/chaos.py)"
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
        f"{count} revocations in {burst_ms:.0f} ms, each tracked token refused by the first "
        f"replay the gateway judged after its revocation (p99 {p99:.1f} ms from the token "
        "service's acceptance to the gateway's refusal), memory "
        f"+{growth / 1024:.1f} MiB"
    )
