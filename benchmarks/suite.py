"""Zero-trust suite throughput on the shop, and the wall time of `trustproof run`.

* suite            generated cases per second (each HTTP case a fresh mTLS handshake)
* reference        in the same sandbox, bare fresh-handshake mTLS requests per second with the same
                   concurrency (one allowed call repeated): the floor a case cannot beat
* trustproof run   wall time of the whole command (start, suite, stop) as a user runs it

Target (issue 6): >= 500 cases/s. Run: `.venv/bin/python benchmarks/suite.py [--json FILE]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from trustproof.sandbox.controller import Sandbox
from trustproof.suite.runner import DEFAULT_CONCURRENCY, generate, run_suite
from trustproof.tls import client_context

SHOP = Path(__file__).resolve().parent.parent / "examples" / "shop" / "trustproof.yaml"
REFERENCE_REQUESTS = 600
MAX_SECONDS = 20.0


async def reference(sandbox: Sandbox) -> float:
    """Fresh-handshake mTLS GETs per second against the orders gateway (bounded)."""
    fabric = sandbox.fabric
    assert fabric is not None
    svid = fabric.issue("storefront")
    context = client_context(fabric.ca.bundle_pem(), svid)
    token = sandbox.token("storefront", "orders", cnf_x5t_s256=svid.x5t_s256)
    url = sandbox.endpoints["orders"].url + "/orders/1"
    gate = asyncio.Semaphore(DEFAULT_CONCURRENCY)
    connector = aiohttp.TCPConnector(force_close=True, limit=0)
    deadline = time.perf_counter() + MAX_SECONDS

    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            async with gate:
                if time.perf_counter() > deadline:
                    return
                async with session.get(
                    url, ssl=context, headers={"Authorization": f"Bearer {token}"}
                ) as response:
                    await response.read()
                    assert response.status == 200, response.status

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(REFERENCE_REQUESTS)))
        return REFERENCE_REQUESTS / (time.perf_counter() - start)


async def suite_figures(run_dir: Path) -> dict[str, float]:
    async with Sandbox.from_file(SHOP, run_dir=run_dir) as sandbox:
        cases = generate(sandbox.spec)
        run = await run_suite(sandbox, cases)
        bad = [item for item in run.results if not item.ok]
        ref = await reference(sandbox)
    return {
        "cases": len(cases),
        "failing": len(bad),
        "cases_per_second": run.cases_per_second,
        "suite_seconds": run.elapsed_s,
        "reference_requests_per_second": ref,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trustproof-bench-") as tmp:
        figures = asyncio.run(suite_figures(Path(tmp) / "suite"))
        start = time.perf_counter()
        command = subprocess.run(
            [
                sys.executable,
                "-m",
                "trustproof",
                "run",
                str(SHOP),
                "--run-dir",
                str(Path(tmp) / "run"),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        figures["trustproof_run_seconds"] = time.perf_counter() - start
        figures["trustproof_run_exit_code"] = command.returncode
    print(f"{'figure':34} {'value':>12}")
    print(f"{'cases generated (shop)':34} {figures['cases']:>12.0f}")
    print(f"{'cases failing':34} {figures['failing']:>12.0f}")
    print(f"{'suite throughput':34} {figures['cases_per_second']:>10.0f}/s   (target 500/s)")
    print(f"{'reference: fresh mTLS GETs':34} {figures['reference_requests_per_second']:>10.0f}/s")
    print(
        f"{'trustproof run, wall time':34} {figures['trustproof_run_seconds']:>11.2f}s   "
        f"(exit {figures['trustproof_run_exit_code']:.0f})"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
