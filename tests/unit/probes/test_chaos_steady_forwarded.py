"""The steady state reads an answer behind a trustproof gateway as the suite does: a 4xx the
gateway forwarded (the handler refused the body, e.g. orders answering POST /orders with `{}` 400)
is an allowed call — the cell was allowed — while the gateway's own 4xx (with its deny) is a
refusal. Before, the steady state read every answer as if no gateway stood in front, so an
experiment aimed at orders (`target: orders`) ended in `error`: "did not hold ... POST /orders
(allowed): HTTP 400 denied_authz"."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from trustproof.chaos import steady
from trustproof.chaos.scenario import ScenarioEnv
from trustproof.spec.load import load_spec
from trustproof.view.exchange import Exchange, HttpAnswer, HttpRequest
from trustproof.view.fake import FakeView

SHOP = load_spec(Path(__file__).resolve().parents[3] / "examples" / "shop" / "trustproof.yaml")
BAD_BODY = b'{"detail": "customer must be a non-empty string"}'


class HandlerRefusesBodies(FakeView):
    """The fake shop whose handlers answer 400 to a POST body they cannot use (as the real
    orders does to ``{}``), after the gateway forwarded it."""

    async def send(self, request: HttpRequest) -> Exchange:
        answer = await super().send(request)
        if request.method == "POST" and isinstance(answer, HttpAnswer) and answer.status == 200:
            return replace(answer, status=400, body=BAD_BODY)
        return answer


def held(view: FakeView, *probes: steady.Probe) -> steady.Check:
    return asyncio.run(steady.check(ScenarioEnv(view), probes))


def test_a_forwarded_400_is_an_allowed_call_and_the_steady_state_holds() -> None:
    check = held(
        HandlerRefusesBodies(SHOP),
        steady.Probe("orders", "storefront", "POST /orders", allowed=True),
        steady.Probe("orders", "payments", "POST /orders", allowed=False),
    )
    assert check.held, check.describe()
    (_, forwarded), (_, denied) = check.results
    assert (forwarded.outcome, forwarded.evidence.status) == ("allowed", 400)
    assert denied.outcome == "denied_authz"


def test_the_whole_sample_aimed_at_orders_holds() -> None:
    probes = steady.sample(SHOP, ["orders"], 3)
    assert "POST /orders" in {p.operation for p in probes if p.allowed}
    check = held(HandlerRefusesBodies(SHOP), *probes)
    assert check.held, check.describe()
