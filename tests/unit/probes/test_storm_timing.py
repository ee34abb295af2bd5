"""How the revocation storm times propagation: from the token service's acceptance to the
gateway's first refusal, on the sandbox's clock (`trustproof.chaos.storm_tracking.propagation`),
and where the acceptance time comes from (`trustproof.tokens.revocation_time`)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from trustproof.chaos import storm_tracking
from trustproof.chaos.scenario import ScenarioEnv, call, mint, presentation, targets
from trustproof.chaos.storm_tracking import (
    PROBE_PATH,
    Replay,
    judged_at,
    past_token,
    propagation,
    upstream_of,
)
from trustproof.clock import ManualClock
from trustproof.scrub import Secret
from trustproof.spec import load_spec
from trustproof.tokens import RevocationList
from trustproof.tokens.revocation_time import accepted_at
from trustproof.view.fake import FakeServer, FakeView

SHOP = load_spec(Path(__file__).resolve().parents[3] / "examples" / "shop" / "trustproof.yaml")
T0 = datetime(2030, 1, 1, 12, tzinfo=UTC)


def at(ms: float) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def test_propagation_is_acceptance_to_the_gateways_first_refusal() -> None:
    replays = [
        Replay(at(-3), True, False),
        Replay(at(-1), True, False),  # judged before the acceptance: fine
        Replay(at(2.5), False, False),
        Replay(at(4), False, True),
    ]
    refused_ms, gap_ms, late = propagation(at(0), replays)
    assert refused_ms == 2.5
    assert gap_ms == 3.5  # the replays' spacing at the gateway: the sampling's resolution
    assert late == 0


def test_a_replay_allowed_after_the_acceptance_is_counted() -> None:
    replays = [Replay(at(-1), True, False), Replay(at(1), True, False), Replay(at(9), False, True)]
    refused_ms, gap_ms, late = propagation(at(0), replays)
    assert late == 1  # judged after the token service accepted the revocation, and let through
    assert (refused_ms, gap_ms) == (9.0, 8.0)


def test_a_replay_allowed_after_the_answer_is_counted_whatever_its_time() -> None:
    # a gateway whose clock lags must not hide a revoked token let through after the answer
    replays = [Replay(at(-5), True, True), Replay(at(1), False, True)]
    assert propagation(at(0), replays)[2] == 1


def test_no_refusal_or_no_time_is_no_figure() -> None:
    assert propagation(at(0), [Replay(at(1), True, True)]) == (-1.0, -1.0, 1)
    assert propagation(at(0), [Replay(None, False, True)]) == (-1.0, -1.0, 0)
    assert propagation(at(0), [Replay(at(-1), False, False)]) == (-1.0, -1.0, 0)  # before it


def test_judged_at_reads_the_audit_events_time() -> None:
    assert judged_at({"time": at(1).isoformat()}) == at(1)
    assert judged_at({"time": "yesterday"}) is None
    assert judged_at({}) is None
    assert judged_at(None) is None


def test_accepted_at_is_the_revocation_lists_own_time() -> None:
    view = FakeView(SHOP)
    target = next(iter(targets(view.spec, view.gateways()).values()))
    token = mint(ScenarioEnv(view), target)
    assert view.revocation_time(token) is None  # not revoked
    assert asyncio.run(view.revoke_token(token, as_caller=target.caller)) == 200
    accepted = view.revocation_time(token)
    assert accepted == view.clock.now()
    result = asyncio.run(call(ScenarioEnv(view), presentation(target, token)))
    assert result.outcome != "allowed"
    assert judged_at(result.evidence.audit) == accepted  # the fake's gateway: the same clock


def test_accepted_at_needs_a_jti_the_list_holds() -> None:
    revocations = RevocationList(ManualClock(T0))
    assert accepted_at(revocations, Secret("not-a-jwt")) is None


class _SlowToRevoke(FakeView):
    """A token service that answers a revocation only after the replayer has given up."""

    async def revoke_token(self, token: Secret[str], *, as_caller: str) -> int:
        await asyncio.sleep(5 * storm_tracking.GIVE_UP_S)
        return await super().revoke_token(token, as_caller=as_caller)


def test_no_refusal_seen_and_none_accepted_is_not_proven(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storm_tracking, "GIVE_UP_S", 0.02)
    view = _SlowToRevoke(SHOP)
    env = ScenarioEnv(view)
    target = next(iter(targets(view.spec, view.gateways()).values()))
    tracked = asyncio.run(storm_tracking.track(env, target, mint(env, target)))
    assert tracked.accepted_after == 0
    assert tracked.refused_ms == -1
    assert tracked.problems == (
        "no replay of a revoked token was judged within 0.02 s of its revocation's answer "
        "(none was accepted; the gateway or the client too slow to tell)",
    )
    fine = ScenarioEnv(FakeView(SHOP))
    good = asyncio.run(storm_tracking.track(fine, target, mint(fine, target)))
    assert good.problems == ()
    assert good.refused_ms == 0  # the fake's clock stands still: refused at the acceptance


def test_an_allowed_replays_upstream_time_comes_from_its_audit_timings() -> None:
    assert upstream_of({"timings": {"upstream_us": 2500}}) == 2.5
    for unreadable in (None, {}, {"timings": None}, {"timings": {"upstream_us": None}},
                       {"timings": {"upstream_us": "2500"}}, {"timings": {"upstream_us": -1}},
                       {"timings": "2500"}):  # fmt: skip
        assert upstream_of(unreadable) is None


def test_a_probe_passes_when_the_gateway_judged_it_past_the_token_stage() -> None:
    view = FakeView(SHOP)
    env = ScenarioEnv(view)
    target = next(iter(targets(view.spec, view.gateways()).values()))
    token = mint(env, target)
    probe = replace(presentation(target, token), path=PROBE_PATH)
    before = asyncio.run(call(env, probe))
    assert before.outcome != "allowed"  # no route: refused, but only after the token passed
    assert (before.evidence.audit or {}).get("stage") == "policy"
    assert past_token(before)
    assert asyncio.run(view.revoke_token(token, as_caller=target.caller)) == 200
    after = asyncio.run(call(env, probe))
    assert after.reason == "token-revoked"
    assert not past_token(after)
    served = asyncio.run(call(env, presentation(target, mint(env, target))))
    assert served.outcome == "allowed"
    assert past_token(served)


def test_both_streams_are_replayed_and_refused_as_revoked() -> None:
    view = FakeView(SHOP)
    env = ScenarioEnv(view)
    target = next(iter(targets(view.spec, view.gateways()).values()))
    tracked = asyncio.run(storm_tracking.track(env, target, mint(env, target)))
    assert tracked.problems == ()
    assert tracked.accepted_after == 0
    assert tracked.served_refused_ms == 0
    assert tracked.refused_ms == 0
    paths = {request.path for request in view.sent}
    assert PROBE_PATH in paths
    assert len(paths) == 2
    assert tracked.requests >= 4  # each stream: judged once before, refused once after


def test_a_gateway_that_misses_revocations_is_caught_by_both_streams(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(storm_tracking, "GIVE_UP_S", 0.05)
    view = FakeView(SHOP, FakeServer(ignore_token=frozenset({"revoked"})))
    env = ScenarioEnv(view)
    target = next(iter(targets(view.spec, view.gateways()).values()))
    tracked = asyncio.run(storm_tracking.track(env, target, mint(env, target)))
    assert tracked.problems == ("a revoked token was still accepted after 0.05 s",)
    assert tracked.refused_ms == -1
    late = [r for r in view.sent if r.path == PROBE_PATH][-1]  # a probe after the revocation
    assert late.path == PROBE_PATH
    assert tracked.accepted_after >= 2  # at least one late replay in each stream
