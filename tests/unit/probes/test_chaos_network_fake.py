"""``network-fault`` on service-to-service links (``link: service``) against the in-memory
`FakeView`: passes where the egress proxies fail closed when their callee's gateway cannot be
reached, and fails — naming the call and the fail-open — on a fake whose egress proxy then sends
the call straight to the callee's port (``egress-retries-plaintext``), or where the fault never
reaches the path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from trustproof.chaos.scenario import ScenarioEnv, ScenarioResult
from trustproof.spec.chaos import Chaos, Experiment, chaos_problems
from trustproof.spec.load import load_spec
from trustproof.spec.values import Count, Duration, Name
from trustproof.suite.scenarios import run_experiment_safely
from trustproof.view.chaos import NetFault, NetPath
from trustproof.view.fake import FakeView
from trustproof.view.fake_db import FakeServer

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
SHOP = load_spec(EXAMPLES / "shop" / "trustproof.yaml")
RESET = Experiment(Name("links-reset"), "network-fault", mode="reset", link="service")
LATENCY = Experiment(
    Name("links-slow"), "network-fault", mode="latency", latency=Duration(0.02), link="service"
)
LOSS = Experiment(Name("links-lossy"), "network-fault", mode="loss", loss=Count(50), link="service")


def run(view: FakeView, experiment: Experiment) -> ScenarioResult:
    return asyncio.run(run_experiment_safely("chaos.network-fault", experiment, ScenarioEnv(view)))


def plaintext_retry() -> FakeView:
    return FakeView(SHOP, FakeServer(chaos_flaws=frozenset({"egress-retries-plaintext"})))


def timeline(result: ScenarioResult) -> str:
    return "\n".join(text for _, text in result.timeline)


def test_resets_on_the_service_links_fail_the_calls_at_the_egress_proxy() -> None:
    result = run(FakeView(SHOP), RESET)
    assert result.verdict == "pass", result.summary
    assert "every connection reset between the egress proxies and their callees' gateways" in (
        result.summary
    )
    assert "4 call(s) failed at the egress proxy (502/503/504)" in result.summary
    assert result.figures["link_calls_failed"] == 4  # 2 edges, 2 rounds
    assert result.figures["link_calls_passed"] == 0
    assert result.figures["link_refused_allowed"] == 0
    assert result.figures["over_permissions"] == 0
    assert result.figures["link_recovery_ms"] >= 0
    assert "mechanism: fault-proxy" in timeline(result)
    assert "ROLLBACK" in timeline(result)


def test_an_egress_proxy_going_around_the_gateway_on_resets_fails_the_experiment() -> None:
    result = run(plaintext_retry(), RESET)
    assert result.verdict == "fail"
    assert "with every connection reset between the egress proxies" in result.summary
    assert "the egress proxy went around it (fail-open)" in result.summary
    assert result.figures["over_permissions"] > 0


def test_latency_on_the_service_links_slows_the_calls_and_they_are_served() -> None:
    result = run(FakeView(SHOP), LATENCY)
    assert result.verdict == "pass", result.summary
    assert "20 ms latency between the egress proxies" in result.summary
    assert "4 call(s) served" in result.summary
    assert result.figures["link_calls_failed"] == 0
    for figure in ("link_baseline_ms", "link_during_ms", "added_latency_ms", "link_recovery_ms"):
        assert figure in result.figures
    assert "refused call(s) still refused" in result.summary


def test_loss_on_the_service_links_fails_some_calls_and_the_flawed_proxy_allows_refused() -> None:
    good = run(FakeView(SHOP), LOSS)
    assert good.verdict == "pass", good.summary
    assert good.figures["link_calls_failed"] > 0
    assert good.figures["link_calls_passed"] > 0
    assert "none answered otherwise" in good.summary
    bad = run(plaintext_retry(), LOSS)
    assert bad.verdict == "fail"
    assert "fail-open" in bad.summary


class MissedPath(FakeView):
    """A fault that never reaches the calls' path (e.g. put on the wrong port)."""

    @asynccontextmanager
    async def _missed(self) -> AsyncIterator[NetPath]:
        yield NetPath("fault-proxy", "nowhere")

    def service_path_fault(self, links: tuple[tuple[str, str], ...], fault: NetFault) -> object:
        return self._missed()


def test_a_fault_that_misses_the_path_is_caught_not_passed() -> None:
    reset = run(MissedPath(SHOP), RESET)
    assert reset.verdict == "fail"
    assert "the fault was not on its path" in reset.summary
    slow = Experiment(
        Name("l"), "network-fault", mode="latency", latency=Duration(0.5), link="service"
    )
    latency = run(MissedPath(SHOP), slow)
    assert latency.verdict == "fail"
    assert "the fault was not on its path" in latency.summary


def test_link_is_taken_by_network_fault_only() -> None:
    wrong = Experiment(Name("x"), "idp-outage", mode="stopped", link="service")
    problems = list(chaos_problems(Chaos(experiments=(RESET, wrong)), {"orders": True}))
    assert [(path[-1], message) for path, message, _ in problems] == [
        ("link", "idp-outage takes no link")
    ]


def test_the_default_link_is_the_token_service() -> None:
    default = Experiment(Name("t"), "network-fault", mode="reset")
    result = run(FakeView(SHOP), default)
    assert result.verdict == "pass", result.summary
    assert "on the way to the token service" in result.summary
