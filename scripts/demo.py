"""`make demo`, the part after validation: bring up the shop sandbox for real and make a handful of
real calls across its boundaries, printing what was expected and what happened.

This is not the zero-trust suite (that generates every case from the spec, and arrives with the
next issue); it is a few hand-picked calls so a newcomer sees the real thing working: mTLS, bound
tokens, Cedar decisions at the gateways, PostgreSQL refusing what the role was not granted.
Exit code 1 if any observed outcome differs from the expectation.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import psycopg

from trustproof.identity import write_svid_files
from trustproof.sandbox.controller import Sandbox
from trustproof.tls import client_context

SHOP = Path(__file__).resolve().parent.parent / "examples" / "shop" / "trustproof.yaml"


async def http(
    sb: Sandbox,
    caller: str | None,
    method: str,
    service: str,
    path: str,
    *,
    cert: bool = False,
    body: Any = None,
    direct: bool = False,
) -> tuple[int, str]:
    fabric = sb.fabric
    if fabric is None:
        raise RuntimeError("the sandbox is not running")
    endpoint = sb.endpoints[service]
    svid = sb.cert(caller) if cert and caller else None
    thumbprint = svid.x5t_s256 if svid else None
    headers = (
        {"Authorization": f"Bearer {sb.token(caller, service, cnf_x5t_s256=thumbprint)}"}
        if caller
        else {}
    )
    url = (endpoint.direct_url if direct else endpoint.url) + path
    ssl = None if direct else client_context(fabric.ca.bundle_pem(), svid)
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, headers=headers, json=body, ssl=ssl) as response,
    ):
        data = await response.json(content_type=None)
        who = response.headers.get("X-Served-By") or f"gateway: {data.get('reason')}"
        return response.status, who


def sql(sb: Sandbox, workload: str, statement: str, tmp: Path) -> tuple[str, str]:
    if sb.fabric is None:
        raise RuntimeError("the sandbox is not running")
    svid = sb.cert(workload)
    files = write_svid_files(tmp / workload, svid, sb.fabric.ca.bundle_pem())
    dsn = sb.datastores.dsns_for(workload, files.cert, files.key, files.bundle)["shopdb"]
    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            conn.execute(statement)
        return "ok", "postgresql"
    except psycopg.Error as exc:
        return "refused", f"postgresql: {exc.sqlstate} {str(exc).splitlines()[0]}"


async def main() -> int:
    run_dir = Path(".trustproof") / "demo-run"
    started = time.perf_counter()
    async with Sandbox.from_file(SHOP, run_dir=run_dir) as sb:
        print(
            f"sandbox ready in {time.perf_counter() - started:.2f} s "
            f"(run directory {sb.run.path})\n"
        )
        checks: list[tuple[str, bool, tuple[int, str] | tuple[str, str]]] = [
            (
                "alice browses the catalogue",
                True,
                await http(sb, "alice", "GET", "storefront", "/products"),
            ),
            (
                "alice checks out (storefront -> orders -> payments -> PostgreSQL)",
                True,
                await http(
                    sb,
                    "alice",
                    "POST",
                    "storefront",
                    "/checkout",
                    body={"items": [{"product_id": 2, "quantity": 1}]},
                ),
            ),
            (
                "bob (a visitor) tries to check out",
                False,
                await http(sb, "bob", "POST", "storefront", "/checkout", body={"items": []}),
            ),
            (
                "nobody calls orders without a client certificate",
                False,
                await http(sb, "storefront", "GET", "orders", "/orders"),
            ),
            (
                "storefront (mTLS + bound token) lists orders",
                True,
                await http(sb, "storefront", "GET", "orders", "/orders", cert=True),
            ),
            (
                "storefront tries DELETE on orders (not in the matrix)",
                False,
                await http(sb, "storefront", "DELETE", "orders", "/orders/1", cert=True),
            ),
        ]
        tmp = sb.run.path / "demo-identities"
        checks += [
            (
                "orders reads its table in PostgreSQL",
                True,
                sql(sb, "orders", "SELECT count(*) FROM orders", tmp),
            ),
            (
                "storefront reads orders in PostgreSQL (only products granted)",
                False,
                sql(sb, "storefront", "SELECT count(*) FROM orders", tmp),
            ),
        ]
    failures = 0
    print(f"{'':3}{'call':66} {'expected':9} {'observed'}")
    for title, allowed, (status, who) in checks:
        observed = status == "ok" or (isinstance(status, int) and status < 400)
        ok = observed == allowed
        failures += not ok
        mark = "ok " if ok else "BAD"
        print(f"{mark}{title:66} {'allow' if allowed else 'refuse':9} {status} {who}")
    print(
        f"\n{len(checks) - failures} of {len(checks)} calls behaved as the spec says; "
        "the sandbox is stopped and its keys removed."
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
