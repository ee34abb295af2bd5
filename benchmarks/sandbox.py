"""Sandbox cold start and teardown for the shop example, and the controller's peak memory.

* cold start   `Sandbox.start()` to everything ready (fabric, PostgreSQL provisioned, gateways,
               egress proxies, three services healthy) — median of N runs, on the local backend
               and (as root, with iproute2 and nftables) on the isolated one — namespaces, hub,
               firewalls, relays — the two alternating in the same run
* teardown     `Sandbox.stop()` — median of N runs
* reference    the floor measured in the same run: the three services' own processes started
               in parallel until healthy, with nothing else (no fabric, no database)
* peak RSS     of this process (the controller) over all runs

Targets (DESIGN.md §6): cold start <= 1.5 s median, controller <= 150 MB RSS.
Run: `.venv/bin/python benchmarks/sandbox.py [--runs 5] [--json FILE]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from trustproof.sandbox.choice import isolation_missing
from trustproof.sandbox.controller import Sandbox

SHOP = Path(__file__).resolve().parent.parent / "examples" / "shop" / "trustproof.yaml"


async def one_run(run_dir: Path, backend: str = "local") -> tuple[float, float, dict[str, float]]:
    sandbox = Sandbox.from_file(SHOP, run_dir=run_dir, backend_choice=backend)
    start = time.perf_counter()
    await sandbox.start()
    started = time.perf_counter() - start
    ready = dict(sandbox.ready_seconds)
    start = time.perf_counter()
    await sandbox.stop()
    return started, time.perf_counter() - start, ready


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def healthy(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return conn.recv(12).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def reference_run() -> float:
    """The three shop services alone, started in parallel, until all answer /healthz."""
    services = SHOP.parent / "services"
    ports = {name: free_port() for name in ("storefront", "orders", "payments")}
    start = time.perf_counter()
    processes = [
        subprocess.Popen(
            [sys.executable, str(services / f"{name}.py")],
            cwd=SHOP.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={
                "PATH": os.environ.get("PATH", ""),
                "TRUSTPROOF_SERVICE": name,
                "TRUSTPROOF_SPIFFE_ID": f"spiffe://shop.test/{name}",
                "TRUSTPROOF_HOST": "127.0.0.1",
                "TRUSTPROOF_PORT": str(port),
            },
        )
        for name, port in ports.items()
    ]
    try:
        deadline = time.monotonic() + 20
        pending = set(ports.values())
        while pending and time.monotonic() < deadline:
            pending = {port for port in pending if not healthy(port)}
            time.sleep(0.005)
        if pending:
            raise RuntimeError("reference services did not become healthy")
        return time.perf_counter() - start
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    runs = max(1, min(args.runs, 20))

    starts, stops, readies = [], [], []
    iso_starts: list[float] = []
    iso_stops: list[float] = []
    missing = isolation_missing()
    with tempfile.TemporaryDirectory(prefix="trustproof-bench-") as tmp:
        for i in range(runs):
            started, stopped, ready = asyncio.run(one_run(Path(tmp) / f"run{i}"))
            starts.append(started)
            stops.append(stopped)
            readies.append(ready)
            if missing is None:
                started, stopped, _ = asyncio.run(one_run(Path(tmp) / f"iso{i}", "isolated"))
                iso_starts.append(started)
                iso_stops.append(stopped)
    references = [reference_run() for _ in range(runs)]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    results = {
        "cold_start_s": {"median": statistics.median(starts), "all": starts},
        "teardown_s": {"median": statistics.median(stops), "all": stops},
        "reference_services_alone_s": {"median": statistics.median(references), "all": references},
        "service_ready_s_last_run": readies[-1],
        "controller_peak_rss_mb": peak_mb,
    }
    if iso_starts:
        results["isolated_cold_start_s"] = {
            "median": statistics.median(iso_starts),
            "all": iso_starts,
        }
        results["isolated_teardown_s"] = {"median": statistics.median(iso_stops), "all": iso_stops}
    print(f"{'figure':34} {'median':>10} {'target':>10}   all runs")
    print(
        f"{'cold start to ready':34} {statistics.median(starts):>9.3f}s {'1.5s':>10}   "
        + " ".join(f"{s:.3f}" for s in starts)
    )
    print(
        f"{'teardown':34} {statistics.median(stops):>9.3f}s {'':>10}   "
        + " ".join(f"{s:.3f}" for s in stops)
    )
    if iso_starts:
        print(
            f"{'cold start to ready, isolated':34} {statistics.median(iso_starts):>9.3f}s "
            f"{'1.5s':>10}   " + " ".join(f"{s:.3f}" for s in iso_starts)
        )
        print(
            f"{'teardown, isolated':34} {statistics.median(iso_stops):>9.3f}s {'':>10}   "
            + " ".join(f"{s:.3f}" for s in iso_stops)
        )
    else:
        print(f"isolated backend not measured: {missing}")
    print(
        f"{'reference: services alone':34} {statistics.median(references):>9.3f}s {'':>10}   "
        + " ".join(f"{s:.3f}" for s in references)
    )
    print(f"{'controller peak RSS':34} {peak_mb:>8.1f}MB {'150MB':>10}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
