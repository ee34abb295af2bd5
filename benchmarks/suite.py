"""Zero-trust suite throughput on the shop, cold (as a user's first run) and warm, next to the
fresh-handshake reference measured in the same run.

* cold             `trustproof run` in a fresh process on a fresh copy of the source tree (no
                   bytecode caches of trustproof, as in a fresh checkout), a fresh sandbox, its
                   first suite: the cases/s its results.json records, and the command's wall time
* warm             in this process, a second suite on one sandbox (certificates, TLS contexts,
                   tokens and imports already there): cases/s
* reference        in that same sandbox, bare fresh-handshake mTLS GETs per second with the suite's
                   concurrency (one allowed call repeated, each on a new connection): what a suite
                   that opened a connection per case could not beat
* handshake        the client's TLS handshake as the TLS layer times it (`trustproof.tls.
                   handshake_us`, median over the reference's connections), next to the gateways'
                   ``handshake`` stage in the cold run's audit timings (the server side's time
                   inside OpenSSL's handshake calls, `tls.TimedSSLObject`: no event-loop waits)

Targets (issue 18): cold >= 500 cases/s, and cold >= 4x the reference. Absolute figures follow the
machine's load; the ratios are what compare across runs.
Run: `.venv/bin/python benchmarks/suite.py [--json FILE]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from trustproof.sandbox.controller import Sandbox
from trustproof.suite.runner import DEFAULT_CONCURRENCY, generate, run_suite
from trustproof.tls import TimedSSLObject, client_context, handshake_us

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "examples" / "shop" / "trustproof.yaml"
REFERENCE_REQUESTS = 600
MAX_SECONDS = 20.0
TARGET_CASES_PER_SECOND = 500.0
TARGET_RATIO = 4.0


async def reference(sandbox: Sandbox) -> tuple[float, float]:
    """Fresh-handshake mTLS GETs per second against the orders gateway (bounded), and the median
    client handshake in the TLS layer (µs)."""
    fabric = sandbox.fabric
    assert fabric is not None
    svid = fabric.issue("storefront")
    context = client_context(fabric.ca.bundle_pem(), svid)
    token = sandbox.token("storefront", "orders", cnf_x5t_s256=svid.x5t_s256)
    url = sandbox.endpoints["orders"].url + "/orders/1"
    gate = asyncio.Semaphore(DEFAULT_CONCURRENCY)
    connector = aiohttp.TCPConnector(force_close=True, limit=0)
    deadline = time.perf_counter() + MAX_SECONDS
    done = 0
    handshakes: list[float] = []

    class Noted(TimedSSLObject):
        """Notes each completed handshake's TLS-layer time (`handshake_us`)."""

        def do_handshake(self) -> None:
            super().do_handshake()
            if (spent := handshake_us(self)) is not None:
                handshakes.append(spent)

    context.sslobject_class = Noted

    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            nonlocal done
            async with gate:
                if time.perf_counter() > deadline:
                    return
                async with session.get(
                    url, ssl=context, headers={"Authorization": f"Bearer {token}"}
                ) as response:
                    await response.read()
                    assert response.status == 200, response.status
                    done += 1

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(REFERENCE_REQUESTS)))
        rate = done / (time.perf_counter() - start)
    return rate, statistics.median(handshakes) if handshakes else math.nan


async def warm_figures(run_dir: Path) -> dict[str, float]:
    """A first suite (warming this process and sandbox), a second one measured, then the
    reference in the same sandbox."""
    async with Sandbox.from_file(SHOP, run_dir=run_dir) as sandbox:
        cases = generate(sandbox.spec)
        first = await run_suite(sandbox, cases)
        second = await run_suite(sandbox, cases)
        ref, handshake = await reference(sandbox)
    verdicts = [(a.case.id, a.verdict) for a in first.results]
    return {
        "cases": len(cases),
        "failing": sum(not item.ok for item in second.results),
        "verdicts_differ": sum(
            pair != (b.case.id, b.verdict) for pair, b in zip(verdicts, second.results, strict=True)
        ),
        "in_process_first_cases_per_second": first.cases_per_second,
        "warm_cases_per_second": second.cases_per_second,
        "reference_requests_per_second": ref,
        "client_handshake_tls_layer_us": handshake,
    }


def cold_figures(tmp: Path) -> dict[str, float]:
    """`trustproof run` as a user's first run: a fresh process importing a fresh copy of the
    source (no __pycache__), a fresh sandbox and run directory."""
    source = tmp / "checkout" / "src"
    shutil.copytree(ROOT / "src", source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    run_dir = tmp / "run"
    environ = {**os.environ, "PYTHONPATH": str(source)}
    environ.pop("PYTHONDONTWRITEBYTECODE", None)
    start = time.perf_counter()
    command = subprocess.run(
        [
            sys.executable,
            "-m",
            "trustproof",
            "run",
            str(SHOP),
            "--run-dir",
            str(run_dir),
            "--report-dir",
            str(tmp / "reports"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=environ,
    )
    wall = time.perf_counter() - start
    results_file = run_dir / "results.json"
    if not results_file.is_file():
        sys.stderr.write(command.stderr[-2000:])
        raise SystemExit(f"trustproof run wrote no results (exit {command.returncode})")
    results = json.loads(results_file.read_text())
    stage = [
        float(value)
        for case in results["cases"]
        if isinstance(
            value := ((case["evidence"].get("audit") or {}).get("timings") or {}).get(
                "handshake_us"
            ),
            int | float,
        )
    ]
    return {
        "gateway_handshake_stage_median_us": statistics.median(stage) if stage else math.nan,
        "cold_cases": len(results["cases"]),
        "cold_cases_per_second": float(results["cases_per_second"]),
        "cold_suite_seconds": float(results["elapsed_s"]),
        "trustproof_run_seconds": wall,
        "trustproof_run_exit_code": command.returncode,
    }


def verdict(value: float, target: float, unit: str) -> str:
    if value >= target:
        return f"met (target {target:g}{unit})"
    return f"MISSED by {target - value:.1f}{unit} (target {target:g}{unit})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trustproof-bench-") as tmp:
        figures: dict[str, float] = cold_figures(Path(tmp))
        figures |= asyncio.run(warm_figures(Path(tmp) / "warm"))
    ref = figures["reference_requests_per_second"]
    cold, warm = figures["cold_cases_per_second"], figures["warm_cases_per_second"]
    figures["cold_ratio"] = cold / ref
    figures["warm_ratio"] = warm / ref
    print(f"{'figure':40} {'value':>12}")
    print(f"{'cases generated (shop)':40} {figures['cases']:>12.0f}")
    print(f"{'cases failing (warm run)':40} {figures['failing']:>12.0f}")
    print(f"{'verdicts differing, first vs second':40} {figures['verdicts_differ']:>12.0f}")
    print(
        f"{'suite, cold (first trustproof run)':40} {cold:>10.0f}/s   "
        f"{verdict(cold, TARGET_CASES_PER_SECOND, '/s')}"
    )
    print(f"{'suite, warm (second suite, one process)':40} {warm:>10.0f}/s")
    print(f"{'reference: fresh-handshake mTLS GETs':40} {ref:>10.0f}/s   (same run)")
    print(
        f"{'cold / reference':40} {figures['cold_ratio']:>11.2f}x   "
        f"{verdict(figures['cold_ratio'], TARGET_RATIO, 'x')}"
    )
    print(f"{'warm / reference':40} {figures['warm_ratio']:>11.2f}x")
    print(
        f"{'TLS handshake, TLS layer (client)':40} "
        f"{figures['client_handshake_tls_layer_us']:>10.0f}us   (median, reference connections)"
    )
    print(
        f"{'gateway handshake stage (cold run)':40} "
        f"{figures['gateway_handshake_stage_median_us']:>10.0f}us   "
        "(median; the server's TLS layer, no loop waits)"
    )
    print(
        f"{'trustproof run (cold), wall time':40} {figures['trustproof_run_seconds']:>11.2f}s   "
        f"(exit {figures['trustproof_run_exit_code']:.0f}; start, cases, scenarios, stop)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
