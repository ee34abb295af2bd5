"""``revocation-storm``: many revocations in one burst, and how fast each reaches the gateway.

`revocations` fresh tokens (default 1,000) for one gateway-protected cell are revoked through the
token service's RFC 7009 endpoint at once (16 in flight on kept-alive connections). Every
hundredth is *tracked*: a replayer sends it to the gateway back to back (real requests through
the real gateway, on kept-alive connections) from before its revocation until the gateway
refuses it, while the token is revoked on a connection of its own during the burst.

Propagation is timed on the sandbox's own clock, not the client's: from the token service's
acceptance of the revocation (`SandboxView.revocation_time`, the `revoked_at` of its revocation
list entry) to the gateway's judgement of the first replay it refused (the ``time`` of that
request's audit event, which the gateway stamps on the same clock as it decides). Neither the
storm client's queueing before its revocation request is sent nor the wait for the refusal's
answer to be read is in it; what is in it is the gap until the next replay reaches the gateway
after the acceptance (at most one replay's cycle: ``replay_gap_p50_ms``, the gateway-side time
between the last replay it allowed and the refusal, says how fine the sampling is). The time
the client sees, from reading the revocation's answer to reading the refusal (clamped at 0 when
the refusal came first), is kept beside it as ``answer_to_refusal_*``.

Expected: every revocation answered 200, every tracked token refused with ``token-revoked``, no
replay allowed that the gateway judged after the acceptance or that was sent after the answer
was read (``accepted_after_revocation`` 0: it had propagated already), and the process's
resident memory growing by less than `MEMORY_BUDGET_KIB` over the storm (the revocation lists
are bounded by the tokens' lifetimes). The p99 against the 50 ms budget is a speed target,
judged in ``benchmarks/chaos.py`` beside a same-run reference, not here.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from trustproof.chaos.experiment import FaultResult, Run
from trustproof.chaos.scenario import (
    ScenarioEnv,
    Target,
    call,
    mint,
    presentation,
    shown,
    targets,
)
from trustproof.probes.model import Result
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
class Replay:
    """One replay of a tracked token: when the gateway judged it (its audit event's ``time``;
    None without one), whether it was allowed, and whether it was sent after the client had
    read the revocation's answer."""

    judged_at: datetime | None
    allowed: bool
    sent_after_answer: bool


@dataclass(frozen=True)
class Tracked:
    """One tracked revocation: ms from its acceptance to the gateway's refusal (-1: none), the
    client's ms from reading the answer to reading the refusal (-1: none), the gateway-side ms
    between the last replay it allowed and the refusal (-1: none allowed), and how many replays
    were allowed after the revocation (0: it had propagated already)."""

    refused_ms: float
    answer_to_refusal_ms: float
    gap_ms: float
    accepted_after: int
    requests: int = 0  # replays sent
    problems: tuple[str, ...] = ()  # what went wrong (nothing: it propagated as it should)

    @classmethod
    def failed(cls, requests: int, problem: str, *, late: int = 0) -> Tracked:
        return cls(-1.0, -1.0, -1.0, late, requests, (problem,))


def judged_at(audit: Mapping[str, Any] | None) -> datetime | None:
    """The gateway's decision time from a request's audit event (None: none or unreadable)."""
    stamp = audit.get("time") if audit else None
    try:
        return datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
    except ValueError:
        return None


def _ms(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() * 1000


def propagation(accepted: datetime, replays: Sequence[Replay]) -> tuple[float, float, int]:
    """From one token's replays (in the order sent) and the token service's acceptance time:
    ms from the acceptance to the gateway's first refusal judged at or after it (-1: none), ms
    from the last allowed replay to that refusal at the gateway (-1: none allowed before it),
    and the replays allowed after the revocation — judged after the acceptance, or sent after
    its answer was read (either is a revoked token let through)."""
    late = sum(
        1
        for r in replays
        if r.allowed
        and (r.sent_after_answer or (r.judged_at is not None and r.judged_at > accepted))
    )
    refusal = next(
        (
            r
            for r in replays
            if not r.allowed and r.judged_at is not None and r.judged_at >= accepted
        ),
        None,
    )
    if refusal is None or refusal.judged_at is None:
        return -1.0, -1.0, late
    allowed = [r.judged_at for r in replays if r.allowed and r.judged_at is not None]
    before = [t for t in allowed if t <= refusal.judged_at]
    gap = _ms(refusal.judged_at, max(before)) if before else -1.0
    return _ms(refusal.judged_at, accepted), gap, late


async def _replay(
    env: ScenarioEnv,
    target: Target,
    token: Secret[str],
    *,
    answered: asyncio.Event,
    replays: list[Replay],
    started: asyncio.Event,
) -> Result | None:
    """Replay `token` back to back until the gateway refuses it (that result) or `GIVE_UP_S`
    after the answer (None; twice that in all, so a revocation that never answers ends too)."""
    begun = time.perf_counter()
    give_up: float | None = None
    while time.perf_counter() - begun < 2 * GIVE_UP_S:
        after = answered.is_set()
        result = await call(env, presentation(target, token))
        allowed = result.outcome == "allowed"
        replays.append(Replay(judged_at(result.evidence.audit), allowed, after))
        started.set()
        if not allowed:
            return result
        if answered.is_set():
            give_up = give_up or time.perf_counter() + GIVE_UP_S
            if time.perf_counter() > give_up:
                return None
        await asyncio.sleep(0)
    return None


async def track(env: ScenarioEnv, target: Target, token: Secret[str]) -> Tracked:
    """Replay one token at the gateway from before its revocation until refused, revoking it
    once the replays flow; the timings, the requests sent and what went wrong."""
    replays: list[Replay] = []
    answered, started = asyncio.Event(), asyncio.Event()
    replayer = asyncio.ensure_future(
        _replay(env, target, token, answered=answered, replays=replays, started=started)
    )
    flowing = asyncio.ensure_future(started.wait())
    # the replays flow (the token was judged once) before it is revoked
    await asyncio.wait((replayer, flowing), return_when=asyncio.FIRST_COMPLETED)
    flowing.cancel()
    try:
        status = await env.view.revoke_token(token, as_caller=target.caller)
    finally:
        answer = time.perf_counter()
        answered.set()
        refused = await replayer
    read_ms = (time.perf_counter() - answer) * 1000
    sent = len(replays)
    if status != 200:
        return Tracked.failed(sent, f"a tracked revocation was answered HTTP {status}")
    accepted = env.view.revocation_time(token)
    if accepted is None:
        return Tracked.failed(sent, "the token service answered 200 but holds no revocation of it")
    refused_ms, gap_ms, late = propagation(accepted, replays)
    if refused is None and late:
        return Tracked.failed(
            sent, f"a revoked token was still accepted after {GIVE_UP_S:g} s", late=late
        )
    if refused is None:  # nothing let through, but no refusal seen either: not proven
        return Tracked.failed(
            sent,
            f"no replay of a revoked token was judged within {GIVE_UP_S:g} s of its revocation's "
            "answer (none was accepted; the gateway or the client too slow to tell)",
        )
    problems = []
    if refused.reason != REVOKED:
        problems.append(f"a revoked token refused: {shown(refused)}")
    elif refused_ms < 0:
        problems.append(
            f"the gateway's refusal has no time on the sandbox's clock: {shown(refused)}"
        )
    return Tracked(refused_ms, max(0.0, read_ms), gap_ms, late, sent, tuple(problems))


async def _track(run: Run, target: Target, token: Secret[str], gate: asyncio.Semaphore) -> Tracked:
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
    timings = await asyncio.gather(*(_track(run, target, token, gate) for token in tracked))
    statuses = await storm
    burst_ms = (time.perf_counter() - start) * 1000
    memory_after = view.memory_kib()
    times = [t.refused_ms for t in timings if t.refused_ms >= 0]
    client = [t.answer_to_refusal_ms for t in timings if t.answer_to_refusal_ms >= 0]
    gaps = [t.gap_ms for t in timings if t.gap_ms >= 0]
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
        "replay_gap_p50_ms": percentile(gaps, 0.50),
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
        f"refusal, on the sandbox's clock; replays {figures['replay_gap_p50_ms']:.1f} ms apart at "
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
