"""One tracked revocation of the revocation storm: its token replayed at the gateway from before
the revocation until the gateway refuses it, and when that happened on the sandbox's clock.

Two streams replay the token back to back, each on a kept-alive connection of its own
(`SandboxView.channel`), so that neither waits for another's connection:

* **served** — the target cell's own request, which the gateway forwards while the token is
  good: proof end to end that the token was served before and is refused after. Each of its
  cycles is the whole cell's round trip behind the gateway (on the shop: storefront, its egress
  proxy, the orders gateway, orders and PostgreSQL), tens of ms while the storm loads the machine;
* **probe** — the same token, method and identity to a path the service does not declare
  (`PROBE_PATH`): the gateway judges the token (stage 3) before it looks for a route (stages 4
  and 5), so while the token is good it refuses the probe at ``path`` or ``policy`` (the token
  passed), and once revoked at ``token``. Nothing is forwarded, so it samples the gateway's
  judgement at the gateway's own round trip. (A spec whose routes match the probe's path, say
  ``GET /{name}``, has it served: it still counts as let through, only sampled more coarsely.)

Propagation is from the token service's acceptance of the revocation (`revoked_at`) to the
gateway's first refusal of the token judged at or after it, in either stream (the audit event's
``time``, on the same clock). A replay judged after the acceptance, or sent after the answer was
read, that the gateway let through — served, or a probe past the token stage — is a revoked
token accepted (``accepted_after``); both streams must end refused as ``token-revoked``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from trustproof.chaos.scenario import ScenarioEnv, Target, call, presentation, shown
from trustproof.probes.model import Result
from trustproof.probes.presentation import Presentation
from trustproof.scrub import Secret
from trustproof.view import Channel

GIVE_UP_S = 2.0
MAX_REPLAYS = 10_000  # per stream, beside the time bound
REVOKED = "token-revoked"
PROBE_PATH = "/.trustproof-revocation-probe"  # no route of the shop matches (one that does: served)
PAST_TOKEN = frozenset({"path", "policy", "audit", "upstream", "done"})  # the gateway's stages


@dataclass(frozen=True)
class Replay:
    """One replay of a tracked token: when the gateway judged it (its audit event's ``time``;
    None without one), whether the gateway let the token through (served it; for a probe:
    judged it past the token stage), and whether it was sent after the client had read the
    revocation's answer."""

    judged_at: datetime | None
    allowed: bool
    sent_after_answer: bool
    upstream_ms: float | None = None  # a served replay's time behind the gateway (its audit)


@dataclass(frozen=True)
class Tracked:
    """One tracked revocation: ms from its acceptance to the gateway's first refusal in either
    stream (-1: none), the client's ms from reading the answer to reading that refusal (-1:
    none), the gateway-side ms between the last served replay and the served stream's refusal
    (-1: none served), and how many replays were let through after the revocation (0: it had
    propagated already)."""

    refused_ms: float
    answer_to_refusal_ms: float
    gap_ms: float
    accepted_after: int
    requests: int = 0  # replays sent, both streams
    problems: tuple[str, ...] = ()  # what went wrong (nothing: it propagated as it should)
    upstream_ms: tuple[float, ...] = ()  # each served replay's time behind the gateway
    served_refused_ms: float = -1.0  # the served stream's own first refusal (-1: none)
    probe_gap_ms: float = -1.0  # the probe stream's last pass to its refusal (-1: none)

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


def upstream_of(audit: Mapping[str, Any] | None) -> float | None:
    """The ms the gateway spent on the upstream exchange (its audit event's timings; None:
    none recorded, e.g. a refusal)."""
    timings = audit.get("timings") if audit else None
    value = timings.get("upstream_us") if isinstance(timings, Mapping) else None
    return value / 1000 if isinstance(value, int | float) and value >= 0 else None


def served(result: Result) -> bool:
    return result.outcome == "allowed"


def past_token(result: Result) -> bool:
    """Whether the gateway let the token through: served, or refused only at a stage after the
    token's (positive evidence: its audit event says so)."""
    audit = result.evidence.audit
    return served(result) or (audit is not None and audit.get("stage") in PAST_TOKEN)


def _ms(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() * 1000


def propagation(accepted: datetime, replays: Sequence[Replay]) -> tuple[float, float, int]:
    """From one stream's replays (in the order sent) and the token service's acceptance time:
    ms from the acceptance to the gateway's first refusal judged at or after it (-1: none), ms
    from the last replay let through to that refusal at the gateway (-1: none before it), and
    the replays let through after the revocation — judged after the acceptance, or sent after
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


@dataclass
class Stream:
    """One stream of replays: what it sends, how a pass is told, what the gateway judged."""

    how: Presentation
    passed: Callable[[Result], bool]
    replays: list[Replay] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    refusal_read: float | None = None  # perf_counter when its refusal's answer was read


async def _replay(
    env: ScenarioEnv, stream: Stream, channel: Channel, answered: asyncio.Event
) -> Result | None:
    """Replay back to back until the gateway refuses the token (that result) or `GIVE_UP_S`
    after the answer (None; twice that in all, so a revocation that never answers ends too)."""
    begun = time.perf_counter()
    give_up: float | None = None
    while time.perf_counter() - begun < 2 * GIVE_UP_S and len(stream.replays) < MAX_REPLAYS:
        after = answered.is_set()
        result = await call(env, stream.how, channel=channel)
        passed = stream.passed(result)
        audit = result.evidence.audit
        upstream = upstream_of(audit) if served(result) else None
        stream.replays.append(Replay(judged_at(audit), passed, after, upstream))
        stream.started.set()
        if not passed:
            stream.refusal_read = time.perf_counter()
            return result
        if answered.is_set():
            give_up = give_up or time.perf_counter() + GIVE_UP_S
            if time.perf_counter() > give_up:
                return None
        await asyncio.sleep(0)
    return None


async def track(env: ScenarioEnv, target: Target, token: Secret[str]) -> Tracked:
    """Replay one token at the gateway (both streams) from before its revocation until
    refused, revoking it once both flow; the timings, the requests sent and what went wrong."""
    how = presentation(target, token)
    streams = (Stream(how, served), Stream(replace(how, path=PROBE_PATH), past_token))
    answered = asyncio.Event()
    async with env.view.channel() as first, env.view.channel() as second:
        replayers = [
            asyncio.ensure_future(_replay(env, stream, channel, answered))
            for stream, channel in zip(streams, (first, second), strict=True)
        ]
        flowing = [asyncio.ensure_future(s.started.wait()) for s in streams]
        try:
            # both streams flow (the token was judged once in each) before it is revoked
            await asyncio.wait(flowing, return_when=asyncio.ALL_COMPLETED, timeout=GIVE_UP_S)
            status = await env.view.revoke_token(token, as_caller=target.caller)
        finally:
            answer = time.perf_counter()
            answered.set()
            for waiting in flowing:
                waiting.cancel()
            ends = await asyncio.gather(*replayers)
    return _judged(env, token, status, streams=streams, ends=(ends[0], ends[1]), answer=answer)


def _judged(
    env: ScenarioEnv,
    token: Secret[str],
    status: int,
    *,
    streams: tuple[Stream, Stream],
    ends: tuple[Result | None, Result | None],
    answer: float,
) -> Tracked:
    sent = sum(len(s.replays) for s in streams)
    if status != 200:
        return Tracked.failed(sent, f"a tracked revocation was answered HTTP {status}")
    accepted = env.view.revocation_time(token)
    if accepted is None:
        return Tracked.failed(sent, "the token service answered 200 but holds no revocation of it")
    (served_ms, gap_ms, late), (probe_ms, probe_gap, probe_late) = (
        propagation(accepted, s.replays) for s in streams
    )
    late += probe_late
    unended = any(end is None for end in ends)
    if unended and late:
        return Tracked.failed(
            sent, f"a revoked token was still accepted after {GIVE_UP_S:g} s", late=late
        )
    if unended:  # nothing let through, but no refusal seen either: not proven
        return Tracked.failed(
            sent,
            f"no replay of a revoked token was judged within {GIVE_UP_S:g} s of its revocation's "
            "answer (none was accepted; the gateway or the client too slow to tell)",
        )
    problems = []
    for refused, ms in ((ends[0], served_ms), (ends[1], probe_ms)):
        if refused is None:
            continue
        if refused.reason != REVOKED:
            problems.append(f"a revoked token refused: {shown(refused)}")
        elif ms < 0:
            problems.append(
                f"the gateway's refusal has no time on the sandbox's clock: {shown(refused)}"
            )
    first = min((ms for ms in (served_ms, probe_ms) if ms >= 0), default=-1.0)
    read = min(s.refusal_read for s in streams if s.refusal_read is not None)
    upstream = tuple(r.upstream_ms for r in streams[0].replays if r.upstream_ms is not None)
    return Tracked(
        first,
        max(0.0, (read - answer) * 1000),
        gap_ms,
        late,
        sent,
        tuple(problems),
        upstream,
        served_ms,
        probe_gap,
    )
