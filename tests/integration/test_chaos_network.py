"""``network-fault`` on service-to-service links (``link: service``) against real sandboxes: the
shop's egress proxies, gateways and services on the local backend (a TCP fault proxy between
each egress proxy and its callee's gateway) and on the isolated backend (the path through the
caller's namespace: netem where the kernel has it, else nftables and a relay — root only).

Latency: the calls are served, slower. Resets: every call fails at the egress proxy (502) and
the calls are served again after the rollback. The deliberate twin — an egress proxy that, when
its callee's gateway cannot be reached, sends the call straight to the callee's own port in
plain HTTP (a "fallback" that skips mTLS, token and policy) — fails the experiment, named.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from trustproof.chaos.scenario import ScenarioResult
from trustproof.gateway.egress import EgressProxy
from trustproof.sandbox import firewall
from trustproof.sandbox.choice import isolation_missing
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.netem import netem_status
from trustproof.sandbox.netns import run_ip
from trustproof.spec.chaos import Experiment
from trustproof.spec.values import Duration, Name
from trustproof.suite.scenarios import run_experiments

pytestmark = pytest.mark.integration
SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop" / "trustproof.yaml"
LATENCY = Experiment(
    Name("links-slow"), "network-fault", mode="latency", latency=Duration(0.05), link="service"
)
RESET = Experiment(Name("links-reset"), "network-fault", mode="reset", link="service")
TOKEN_RESET = Experiment(Name("token-reset"), "network-fault", mode="reset")
CHOSEN = [("chaos.network-fault:links-slow", LATENCY), ("chaos.network-fault:links-reset", RESET)]


def plaintext_fallback(monkeypatch: pytest.MonkeyPatch) -> dict[str, Sandbox]:
    """The twin: once a sandbox is put in the returned dict (``"on"``), every egress proxy, on
    a 502 from its own path, retries the call in plain HTTP on the callee's own port — around
    the callee's gateway. (Patched before the proxies start: they hold their handler.)"""
    real = EgressProxy._handle
    fooled: dict[str, Sandbox] = {}

    async def handle(self: EgressProxy, request: web.BaseRequest) -> web.StreamResponse:
        answer = await real(self, request)
        sandbox = fooled.get("on")
        if answer.status != 502 or sandbox is None:
            return answer
        callee = sandbox.spec.services[self.callee]
        url = f"http://{callee.host}:{callee.port}{request.raw_path}"
        async with aiohttp.ClientSession() as session, session.get(url) as direct:
            body = await direct.read()
            return web.Response(status=direct.status, body=body, headers=direct.headers)

    monkeypatch.setattr(EgressProxy, "_handle", handle)
    return fooled


def by_id(results: list[ScenarioResult]) -> dict[str, ScenarioResult]:
    return {r.id: r for r in results}


def timeline(result: ScenarioResult) -> str:
    return "\n".join(text for _, text in result.timeline)


def test_the_shop_links_slow_then_reset_and_the_plaintext_twin_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fooled = plaintext_fallback(monkeypatch)

    async def main() -> tuple[dict[str, ScenarioResult], ScenarioResult]:
        async with Sandbox.from_file(SHOP, run_dir=tmp_path / "run") as sandbox:
            proxies = {key: proxy.callee_url for key, proxy in sandbox.egress.items()}
            good = by_id(await asyncio.wait_for(run_experiments(sandbox, CHOSEN), 120))
            assert {k: p.callee_url for k, p in sandbox.egress.items()} == proxies  # undone
            fooled["on"] = sandbox
            (bad,) = await asyncio.wait_for(run_experiments(sandbox, [CHOSEN[1]]), 60)
            return good, bad

    good, bad = asyncio.run(main())
    slow, reset = good["chaos.network-fault:links-slow"], good["chaos.network-fault:links-reset"]
    assert (slow.verdict, reset.verdict) == ("pass", "pass"), (slow.summary, reset.summary)
    assert "mechanism: fault-proxy" in timeline(slow)
    assert slow.figures["link_calls_failed"] == 0
    assert slow.figures["added_latency_ms"] == pytest.approx(
        slow.figures["link_during_ms"] - slow.figures["link_baseline_ms"]
    )
    assert "call(s) failed at the egress proxy (502/503/504)" in reset.summary
    assert reset.figures["link_calls_failed"] == 4
    assert reset.figures["link_recovery_ms"] >= 0
    for result in (slow, reset):
        assert result.figures["over_permissions"] == 0
        assert result.figures["link_refused_allowed"] == 0
    assert bad.verdict == "fail", bad.summary
    assert "the egress proxy went around it (fail-open)" in bad.summary, bad.summary


ISOLATED = pytest.mark.skipif(isolation_missing() is not None, reason=f"{isolation_missing()}")


@ISOLATED
def test_the_isolated_shop_links_slow_then_reset_in_the_callers_namespace(
    tmp_path: Path,
) -> None:
    async def main() -> tuple[dict[str, ScenarioResult], list[str]]:
        async with Sandbox.from_file(
            SHOP, run_dir=tmp_path / "run", backend_choice="isolated"
        ) as sandbox:
            chosen = [*CHOSEN, ("chaos.network-fault:token-reset", TOKEN_RESET)]
            results = by_id(await asyncio.wait_for(run_experiments(sandbox, chosen), 120))
            left = [
                run_ip(["netns", "exec", ns.name, "nft", "list", "tables"], what="list")
                for ns in sandbox.namespaces.values()
            ]
            return results, left

    results, tables = asyncio.run(main())
    slow, reset = (
        results["chaos.network-fault:links-slow"],
        results["chaos.network-fault:links-reset"],
    )
    assert (slow.verdict, reset.verdict) == ("pass", "pass"), (slow.summary, reset.summary)
    netem, _ = netem_status()
    assert f"mechanism: {'netem' if netem else 'nft+relay'}" in timeline(slow)
    if not netem:
        assert "netem unavailable (" in timeline(slow)
    assert "mechanism: nft+relay" in timeline(reset)
    assert "reject with tcp reset" in timeline(reset)
    assert reset.figures["link_calls_failed"] == 4
    assert reset.figures["over_permissions"] == 0
    assert not any(firewall.FAULT_TABLE in text for text in tables)  # undone
    token = results["chaos.network-fault:token-reset"]  # the token-service link, isolated too
    assert token.verdict == "pass", token.summary
    assert "every connection reset on the way to the token service, new tokens refused" in (
        token.summary
    )
