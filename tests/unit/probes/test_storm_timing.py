"""How the revocation storm times propagation: from the token service's acceptance to the
gateway's first refusal, on the sandbox's clock (`trustproof.chaos.faults_storm.propagation`),
and where the acceptance time comes from (`trustproof.tokens.revocation_time`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from trustproof.chaos import faults_storm
from trustproof.chaos.faults_storm import Replay, judged_at, propagation
from trustproof.chaos.scenario import ScenarioEnv, call, mint, presentation, targets
from trustproof.clock import ManualClock
from trustproof.scrub import Secret
from trustproof.spec import load_spec
from trustproof.tokens import RevocationList
from trustproof.tokens.revocation_time import accepted_at
from trustproof.view.fake import FakeView

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
        await asyncio.sleep(5 * faults_storm.GIVE_UP_S)
        return await super().revoke_token(token, as_caller=as_caller)


def test_no_refusal_seen_and_none_accepted_is_not_proven(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faults_storm, "GIVE_UP_S", 0.02)
    view = _SlowToRevoke(SHOP)
    env = ScenarioEnv(view)
    target = next(iter(targets(view.spec, view.gateways()).values()))
    tracked = asyncio.run(faults_storm.track(env, target, mint(env, target)))
    assert tracked.accepted_after == 0
    assert tracked.refused_ms == -1
    assert tracked.problems == (
        "no replay of a revoked token was judged within 0.02 s of its revocation's answer "
        "(none was accepted; the gateway or the client too slow to tell)",
    )
    fine = ScenarioEnv(FakeView(SHOP))
    good = asyncio.run(faults_storm.track(fine, target, mint(fine, target)))
    assert good.problems == ()
    assert good.refused_ms == 0  # the fake's clock stands still: refused at the acceptance
