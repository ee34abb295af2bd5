"""Soak: the shop sandbox with a short certificate lifetime serves calls for several lifetimes.

The issue's bar: "a sandbox with a 1-minute certificate TTL serves calls for 5 minutes without a
failure". This starts the shop example (its services on free ports instead of 18101-18103, so a
parallel test run cannot collide; everything else as in the example) with `--ttl` seconds of
certificate lifetime and, every `--interval` seconds for `--minutes`, makes:

* ``checkout``  alice's ``POST /checkout`` at the storefront's gateway: storefront → its egress
                proxies (fresh tokens from the token service, bound to the rotated certificates)
                → the orders and payments gateways → the services → PostgreSQL (certificate auth
                with the rotated files, server certificate verified)
* ``products``  alice's ``GET /products`` at the storefront's gateway, on a new TLS connection
* ``admin``     a token minted at the token service's admin API with the files in
                ``<run>/admin``, as a user of the sandbox would
* ``served``    a new TLS handshake with the token service and the orders gateway, recording
                the serial of the certificate each presents

It prints the calls and failures of each kind, how many distinct certificates each identity had
(rotations + 1) and the latency percentiles of the checkout path. Exit 1 on any failure.
Loopback only; bounded in count (minutes * 60 / interval rounds) and in time.

Run: `.venv/bin/python benchmarks/soak_rotation.py [--ttl 60] [--minutes 5] [--json FILE]`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import socket
import ssl
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from cryptography import x509

from trustproof.sandbox.controller import Sandbox
from trustproof.spec import load_spec
from trustproof.spec.model import Spec, Ttl
from trustproof.spec.values import Duration
from trustproof.tls import client_context
from trustproof.tokenservice.core import ADMIN_NAME, TOKEN_SERVICE_NAME

SHOP = Path(__file__).resolve().parent.parent / "examples" / "shop" / "trustproof.yaml"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def soak_spec(ttl: float) -> Spec:
    spec = load_spec(SHOP)
    services = {
        name: dataclasses.replace(service, port=free_port())
        for name, service in spec.services.items()
    }
    lifetimes = Ttl(certificate=Duration(ttl), token=Duration(min(ttl, spec.ttl.token.seconds)))
    return dataclasses.replace(spec, services=services, ttl=lifetimes)


async def served_serial(url: str, bundle: bytes) -> int:
    host, port = url.removeprefix("https://").split("/")[0].rsplit(":", 1)
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(host, int(port), ssl=client_context(bundle)), 5
    )
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    return x509.load_der_x509_certificate(der).serial_number


class Soak:
    def __init__(self, sandbox: Sandbox) -> None:
        assert sandbox.fabric is not None
        self.sandbox = sandbox
        self.fabric = sandbox.fabric
        self.bundle = sandbox.fabric.ca.bundle_pem()
        self.ok: Counter[str] = Counter()
        self.failures: list[str] = []
        self.serials: dict[str, set[int]] = {}
        self.checkout_ms: list[float] = []

    def saw(self, who: str, serial: int) -> None:
        self.serials.setdefault(who, set()).add(serial)

    async def _request(
        self, method: str, url: str, context: ssl.SSLContext, **kwargs: Any
    ) -> tuple[int, str]:
        connector = aiohttp.TCPConnector(force_close=True)
        async with (
            aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=10)
            ) as session,
            session.request(method, url, ssl=context, **kwargs) as response,
        ):
            return response.status, await response.text()

    async def storefront(self, method: str, path: str, body: Any = None) -> None:
        token = self.sandbox.token("alice", "storefront")
        status, text = await self._request(
            method,
            self.sandbox.endpoints["storefront"].url + path,
            client_context(self.bundle),
            headers={"Authorization": f"Bearer {token}"},
            json=body,
        )
        if status not in (200, 201):
            raise RuntimeError(f"HTTP {status}: {text[:300]}")

    async def checkout(self) -> None:
        start = time.perf_counter()
        await self.storefront("POST", "/checkout", {"items": [{"product_id": 1, "quantity": 1}]})
        self.checkout_ms.append((time.perf_counter() - start) * 1000)

    async def products(self) -> None:
        await self.storefront("GET", "/products")

    async def admin(self) -> None:
        files = self.sandbox.run.path / "admin"
        context = ssl.create_default_context(cafile=files / "bundle.pem")
        context.check_hostname = False
        context.load_cert_chain(files / "cert.pem", files / "key.pem")
        status, text = await self._request(
            "POST",
            f"{self.fabric.url}/admin/tokens",
            context,
            json={"subject": "alice", "audience": "storefront"},
        )
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {text[:300]}")

    async def served(self) -> None:
        self.saw(TOKEN_SERVICE_NAME, await served_serial(self.fabric.url, self.bundle))
        self.saw(
            "orders-gateway", await served_serial(self.sandbox.endpoints["orders"].url, self.bundle)
        )

    async def round(self) -> None:
        for name, call in (
            ("checkout", self.checkout),
            ("products", self.products),
            ("admin", self.admin),
            ("served", self.served),
        ):
            try:
                await call()
            except Exception as exc:  # the failure is the finding
                self.failures.append(
                    f"{time.strftime('%H:%M:%S')} {name}: {type(exc).__name__}: {exc}"
                )
            else:
                self.ok[name] += 1
        for name, rotator in self.sandbox.rotators.items():
            self.saw(name, rotator.current.serial)
        self.saw(ADMIN_NAME, self.fabric.rotators[ADMIN_NAME].current.serial)
        for name, server in self.sandbox.datastores.servers.items():
            if server.server_svid is not None:
                self.saw(f"postgres:{name}", server.server_svid.serial)


async def soak(ttl: float, minutes: float, interval: float) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(prefix="trustproof-soak-"))
    sandbox = Sandbox(soak_spec(ttl), run_dir=run_dir)
    await sandbox.start()
    try:
        runner = Soak(sandbox)
        started = time.monotonic()
        rounds = 0
        for _ in range(int(minutes * 60 / interval) + 1):  # bounded in count...
            if time.monotonic() - started >= minutes * 60:  # ...and in time
                break
            await runner.round()
            rounds += 1
            await asyncio.sleep(interval)
        elapsed = time.monotonic() - started
    finally:
        await sandbox.stop()
    latencies = sorted(runner.checkout_ms)
    return {
        "ttl_seconds": ttl,
        "seconds": round(elapsed, 1),
        "lifetimes": round(elapsed / ttl, 1),
        "rounds": rounds,
        "ok": dict(runner.ok),
        "failures": len(runner.failures),
        "first_failures": runner.failures[:10],
        "certificates_per_identity": {k: len(v) for k, v in sorted(runner.serials.items())},
        "checkout_ms": {
            "p50": round(statistics.median(latencies), 1) if latencies else None,
            "p99": round(latencies[int(0.99 * (len(latencies) - 1))], 1) if latencies else None,
            "max": round(latencies[-1], 1) if latencies else None,
        },
        "run_dir": str(run_dir),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ttl", type=float, default=60.0, help="certificate lifetime, seconds")
    parser.add_argument("--minutes", type=float, default=5.0, help="how long to keep calling")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between rounds")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    result = asyncio.run(soak(args.ttl, args.minutes, args.interval))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
