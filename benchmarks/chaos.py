"""Trust-chaos experiments on the shop: each experiment's duration and figures, and the
revocation storm's propagation against a same-run reference.

* every default experiment (`trustproof.chaos.experiments.DEFAULTS`, the storm at 1,000
  revocations), then those that run only when declared (`DECLARED_ONLY`): verdict, wall time,
  recovery time
* revocation storm   1,000 revocations in one burst: revocations/s, propagation p50/p99/max
                     (from the token service's acceptance of a tracked revocation to the
                     gateway's first refusal of a replay, both on the sandbox's clock: the
                     revocation list's `revoked_at` and the refused request's audit `time`;
                     replays run back to back from before the revocation in two streams, the
                     cell's served request and a probe the gateway judges without forwarding
                     (`trustproof.chaos.storm_tracking`); their spacing at the gateway bounds
                     the resolution), the served stream alone (the measure before the probes),
                     what the client saw (reading the answer to reading the refusal), the
                     event loop's lag (a 1 ms sleep's lateness), resident memory growth
* reference          in the same sandbox, one revocation at a time with nothing else running:
                     the same two times (median and p99 of `REFERENCE_SAMPLES`), the loop's lag

* service links     ``network-fault`` with ``link: service`` (50 ms latency, resets, 50% loss
                     between each egress proxy and its callee's gateway): the calls' median
                     before (the same-run reference) and during, the added latency, calls
                     failed at the egress proxy, refused calls allowed (must be 0), recovery

Target (issue 15): storm propagation p99 <= 50 ms. Run:
`.venv/bin/python benchmarks/chaos.py [--json FILE] [--backend isolated] [--storm-only]
[--loop auto|uvloop|asyncio]` (the event loop, as `TRUSTPROOF_LOOP`: `trustproof.loop`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

from trustproof.chaos.experiments import DECLARED_ONLY, DEFAULTS, experiment_ids
from trustproof.chaos.faults_storm import PROPAGATION_BUDGET_MS, percentile
from trustproof.chaos.scenario import ScenarioEnv, mint, targets
from trustproof.chaos.storm_tracking import track
from trustproof.loop import ENV as LOOP_ENV
from trustproof.loop import choose
from trustproof.loop import run as run_loop
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.view import LiveView
from trustproof.spec.chaos import Experiment
from trustproof.spec.values import Count, Duration, Name
from trustproof.suite.scenarios import run_experiments

T = TypeVar("T")
SHOP = Path(__file__).resolve().parent.parent / "examples" / "shop" / "trustproof.yaml"
REFERENCE_SAMPLES = 50
MAX_SECONDS = 20.0  # the reference loop's bound
LAG_TICK_S = 0.001


async def loop_lag(stop: asyncio.Event, lags: list[float]) -> None:
    """How late the sandbox's event loop wakes a 1 ms sleep, in ms, until `stop` (what every
    request the gateways handle in the meantime also waits, once per wake-up)."""
    while not stop.is_set():
        begun = time.perf_counter()
        await asyncio.sleep(LAG_TICK_S)
        lags.append((time.perf_counter() - begun - LAG_TICK_S) * 1000)


async def lagged(work: Awaitable[T]) -> tuple[T, list[float]]:
    """`work`'s result, and the event loop's lag (ms per wake-up) while it ran."""
    stop, lags = asyncio.Event(), list[float]()
    monitor = asyncio.ensure_future(loop_lag(stop, lags))
    try:
        return await work, lags
    finally:
        stop.set()
        await monitor


async def reference(sandbox: Sandbox) -> tuple[list[float], list[float]]:
    """Acceptance-to-refusal and answer-to-refusal ms of single revocations, one at a time, as
    the storm times its tracked ones (bounded in count and time)."""
    samples: list[float] = []
    client: list[float] = []
    async with LiveView.open(sandbox) as view:
        env = ScenarioEnv(view)
        target = next(iter(targets(sandbox.spec, view.gateways()).values()))
        deadline = time.perf_counter() + MAX_SECONDS
        for _ in range(REFERENCE_SAMPLES):
            if time.perf_counter() > deadline:
                break
            tracked = await track(env, target, mint(env, target))
            assert not tracked.problems, tracked
            assert tracked.accepted_after == 0, tracked
            samples.append(tracked.refused_ms)
            client.append(tracked.answer_to_refusal_ms)
    return samples, client


async def figures(
    run_dir: Path, backend: str | None = None, *, storm_only: bool = False
) -> dict[str, object]:
    every = (*DEFAULTS, *DECLARED_ONLY)  # the slower ones too: each one's duration is shown
    if storm_only:
        every = tuple(e for e in DEFAULTS if e.fault == "revocation-storm")
    chosen = list(zip(experiment_ids(every), every, strict=True))
    async with Sandbox.from_file(SHOP, run_dir=run_dir, backend_choice=backend) as sandbox:
        start = time.perf_counter()
        results, lags = await lagged(run_experiments(sandbox, chosen))
        total = time.perf_counter() - start
        (ref, ref_client), ref_lags = await lagged(reference(sandbox))
        links = [] if storm_only else await run_experiments(sandbox, list(LINKS))
    return {
        "loop": choose()[0],
        "links": {
            r.id: {"verdict": r.verdict, "summary": r.summary, "figures": dict(r.figures)}
            for r in links
        },
        "experiments_seconds": total,
        "experiments": {
            r.id: {
                "verdict": r.verdict,
                "seconds": r.elapsed_s,
                "summary": r.summary,
                "figures": dict(r.figures),
            }
            for r in results
        },
        "reference_p50_ms": percentile(ref, 0.5),
        "reference_p99_ms": percentile(ref, 0.99),
        "reference_client_p50_ms": percentile(ref_client, 0.5),
        "reference_client_p99_ms": percentile(ref_client, 0.99),
        "reference_samples": len(ref),
        # the loop's lag over the experiments (the storm alone with --storm-only) / the reference
        "loop_lag_p50_ms": percentile(lags, 0.5),
        "loop_lag_p99_ms": percentile(lags, 0.99),
        "reference_loop_lag_p50_ms": percentile(ref_lags, 0.5),
        "reference_loop_lag_p99_ms": percentile(ref_lags, 0.99),
    }


LINKS = tuple(
    (f"chaos.network-fault:{name}", Experiment(Name(name), "network-fault", link="service", **how))
    for name, how in (
        ("links-slow", {"mode": "latency", "latency": Duration(0.05)}),
        ("links-reset", {"mode": "reset"}),
        ("links-lossy", {"mode": "loss", "loss": Count(50)}),
    )
)


def print_links(links: object) -> None:
    """The service-link figures: the calls' median before (reference) and during the fault."""
    assert isinstance(links, dict)
    print()
    print(
        f"{'service links (egress -> gateway)':34} {'verdict':>8} {'before ms':>10} "
        f"{'during ms':>10} {'added ms':>9} {'failed':>7} {'over':>5} {'recovery ms':>12}"
    )
    for sid, item in links.items():
        f = item["figures"]
        during = f.get("link_during_ms")
        added = f.get("added_latency_ms")
        print(
            f"{sid.removeprefix('chaos.network-fault:'):34} {item['verdict']:>8} "
            f"{f.get('link_baseline_ms', -1):>10.1f} "
            f"{during if during is not None else float('nan'):>10.1f} "
            f"{added if added is not None else float('nan'):>9.1f} "
            f"{f.get('link_calls_failed', -1):>7.0f} {f.get('link_refused_allowed', -1):>5.0f} "
            f"{f.get('link_recovery_ms', -1):>12.0f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--backend", choices=("local", "isolated"), help="default: local")
    parser.add_argument("--storm-only", action="store_true", help="the storm and its reference")
    parser.add_argument(
        "--loop", choices=("auto", "uvloop", "asyncio"), help="the event loop (default: auto)"
    )
    args = parser.parse_args()
    if args.loop:
        os.environ[LOOP_ENV] = args.loop
    with tempfile.TemporaryDirectory(prefix="trustproof-bench-") as tmp:
        found = run_loop(figures(Path(tmp) / "chaos", args.backend, storm_only=args.storm_only))
    print(f"event loop: {found['loop']}")
    experiments = found["experiments"]
    assert isinstance(experiments, dict)
    print(f"{'experiment':28} {'verdict':>8} {'seconds':>8} {'recovery ms':>12}")
    for sid, item in experiments.items():
        recovery = item["figures"].get("recovery_ms", -1)
        print(f"{sid:28} {item['verdict']:>8} {item['seconds']:>8.2f} {recovery:>12.0f}")
    print(f"{'all experiments':28} {'':>8} {found['experiments_seconds']:>8.2f}")
    storm = experiments.get("chaos.revocation-storm", {}).get("figures", {})
    if storm:
        print()
        print(f"{'revocation storm':34} {'value':>12}")
        print(f"{'revocations':34} {storm['revocations']:>12.0f}")
        print(f"{'revocations per second':34} {storm['revocations_per_s']:>10.0f}/s")
        print(
            f"{'replays accepted after revocation':34} {storm['accepted_after_revocation']:>12.0f}"
        )
        print(f"{'propagation p50':34} {storm['propagation_p50_ms']:>10.1f}ms")
        print(
            f"{'propagation p99':34} {storm['propagation_p99_ms']:>10.1f}ms   "
            f"(target <= {PROPAGATION_BUDGET_MS:.0f} ms)"
        )
        print(f"{'propagation max':34} {storm['propagation_max_ms']:>10.1f}ms")
        print(
            f"{'probe spacing at the gateway':34} {storm['probe_gap_p50_ms']:>10.1f}ms   "
            "(median: the sampling's resolution)"
        )
        print(
            f"{'served stream alone p50/p99':34} {storm['served_refusal_p50_ms']:>6.1f}/"
            f"{storm['served_refusal_p99_ms']:.1f}ms   (the measure before the probes)"
        )
        print(
            f"{'served replay spacing at the gateway':34} {storm['replay_gap_p50_ms']:>10.1f}ms   "
            "(median)"
        )
        print(
            f"{'  of which upstream (allowed replay)':34} "
            f"{storm.get('replay_upstream_p50_ms', float('nan')):>10.1f}ms   "
            "(median: the gateway's upstream exchange)"
        )
        print(
            f"{'event loop lag p50/p99':34} {found['loop_lag_p50_ms']:>6.1f}/"
            f"{found['loop_lag_p99_ms']:.1f}ms   (a 1 ms sleep's lateness, over the experiments)"
        )
        print(
            f"{'client: answer to refusal p50/p99':34} "
            f"{storm['answer_to_refusal_p50_ms']:>6.1f}/{storm['answer_to_refusal_p99_ms']:.1f}ms"
        )
        print(f"{'resident memory growth':34} {storm['rss_growth_kib'] / 1024:>9.1f}MiB")
        print(
            f"{'reference: one revocation, p50':34} {found['reference_p50_ms']:>10.1f}ms   "
            f"({found['reference_samples']} samples, nothing else running)"
        )
        print(f"{'reference: one revocation, p99':34} {found['reference_p99_ms']:>10.1f}ms")
        print(
            f"{'reference: client p50/p99':34} {found['reference_client_p50_ms']:>6.1f}/"
            f"{found['reference_client_p99_ms']:.1f}ms"
        )
        print(
            f"{'reference: event loop lag p50/p99':34} {found['reference_loop_lag_p50_ms']:>6.1f}/"
            f"{found['reference_loop_lag_p99_ms']:.1f}ms"
        )
    if found["links"]:
        print_links(found["links"])
    if args.json:
        args.json.write_text(json.dumps(found, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
