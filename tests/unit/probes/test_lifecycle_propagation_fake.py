"""``lifecycle.revocation-propagation`` against the in-memory `FakeView`: a gateway that has the
revocation before it judges the first replay passes even when that replay's round trip is slow
(a loaded machine), and one that accepts replays after the revocation and refuses only later than
the budget fails — slow round trips too."""

from __future__ import annotations

import asyncio
from pathlib import Path

from trustproof.chaos.lifecycle import revocation_propagation
from trustproof.chaos.scenario import Recorder, ScenarioEnv, ScenarioResult
from trustproof.scrub import Secret
from trustproof.spec.load import load_spec
from trustproof.spec.model import Spec
from trustproof.view.exchange import Exchange, HttpRequest
from trustproof.view.fake import FakeView

SHOP_FILE = Path(__file__).resolve().parents[3] / "examples" / "shop" / "trustproof.yaml"


def shop() -> Spec:
    return load_spec(SHOP_FILE)


class SlowRoundTrips(FakeView):
    """Pushes a revocation at once; every request after it takes `delay` seconds to be answered
    (over the 50 ms budget)."""

    revoked = False
    delay = 0.06

    async def revoke_token(self, token: Secret[str], *, as_caller: str) -> int:
        self.revoked = True
        return await super().revoke_token(token, as_caller=as_caller)

    async def send(self, request: HttpRequest) -> Exchange:
        if self.revoked:
            await asyncio.sleep(self.delay)
        return await super().send(request)


class LatePush(SlowRoundTrips):
    """Round trips of 30 ms (two over the budget), and the revocation reaches the gateways only
    after two of them: replays are accepted after the revocation was answered."""

    delay = 0.03

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        self.pushes: set[asyncio.Task[int]] = set()

    async def revoke_token(self, token: Secret[str], *, as_caller: str) -> int:
        self.revoked = True

        async def later() -> int:
            await asyncio.sleep(2 * self.delay + 0.005)
            return await FakeView.revoke_token(self, token, as_caller=as_caller)

        self.pushes.add(asyncio.get_running_loop().create_task(later()))
        return 200


def run(view: FakeView) -> ScenarioResult:
    return asyncio.run(
        revocation_propagation(ScenarioEnv(view), Recorder("lifecycle.revocation-propagation"))
    )


def test_the_first_replay_refused_passes_however_slow_its_round_trip() -> None:
    result = run(SlowRoundTrips(shop()))
    assert (result.verdict, result.ok) == ("pass", True), result.summary
    for gateway in ("storefront", "orders", "payments"):
        assert result.figures[f"accepted_after_revoke.{gateway}"] == 0
        assert result.figures[f"propagation_ms.{gateway}"] > 50  # the slow round trip, noted
    assert any("round trip alone took" in note for note in result.evidence)


def test_replays_accepted_after_the_revocation_and_refused_late_fail() -> None:
    result = run(LatePush(shop()))
    assert result.verdict == "fail"
    assert result.summary.startswith("storefront: took")
    assert "budget 50 ms" in result.summary
    assert result.figures["accepted_after_revoke.storefront"] >= 1
