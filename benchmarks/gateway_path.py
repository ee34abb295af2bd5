"""The gateway's Python work per forwarded request, in process and without I/O: where the CPU of
`benchmarks/gateway.py`'s gateway row goes once the sockets, TLS and the kernel are taken out.

Fake transports on both sides (no sockets, nothing sent anywhere): the bytes of the benchmark's
request (``GET /orders/7`` with a certificate-bound token, from storefront's SVID) go into the
gateway's HTTP/1.1 server side, and a fixed upstream response goes into its upstream connection.
Three rows, each CPU time per request, best of 5 rounds (every round bounded in count and time):

* floor       the HTTP/1.1 server side answering at once (no decision): the same-run reference
* decision    the gateway's handler with the upstream left out: peer, pipeline (token, Cedar,
              proof), audit event into a `MemorySink`
* whole path  request bytes in, upstream request written, upstream response parsed, audit
              completion, answer written

Run: `.venv/bin/python benchmarks/gateway_path.py [--profile N]` (cProfile of the whole path,
top N functions by own time).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from trustproof.audit import MemorySink
from trustproof.clock import ManualClock
from trustproof.gateway import upstream
from trustproof.gateway.config import gateway_config
from trustproof.gateway.connections import TimedServer
from trustproof.gateway.h1fake import FakeSSLObject, FakeTransport
from trustproof.gateway.h1server import Reply, Request, Response
from trustproof.gateway.limits import ConnectionLimits
from trustproof.gateway.pipeline import Pipeline
from trustproof.gateway.proof import new_key
from trustproof.gateway.server import Gateway
from trustproof.identity import CertificateAuthority
from trustproof.policy import CedarPolicyEngine
from trustproof.scrub import Secret
from trustproof.spec import load_spec
from trustproof.tokens import KeyRing, RevocationList, TokenIssuer, TokenValidator

SPEC = Path(__file__).resolve().parent.parent / "examples" / "shop" / "trustproof.yaml"
ISSUER = "https://127.0.0.1:9443"
COUNT, ROUNDS, MAX_SECONDS = 5000, 5, 10.0
BODY = b'{"order": 7, "status": "ok"}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
    b"Date: Wed, 02 Dec 2026 10:00:00 GMT\r\nServer: upstream\r\n\r\n%s" % (len(BODY), BODY)
)


def best_micros(step: Callable[[], None], reset: Callable[[], None]) -> float:
    for _ in range(COUNT // 10):
        step()
    best, deadline = float("inf"), time.monotonic() + MAX_SECONDS
    for _ in range(ROUNDS):
        reset()
        start = time.process_time()
        for _ in range(COUNT):
            step()
        best = min(best, (time.process_time() - start) / COUNT * 1e6)
        if time.monotonic() > deadline:
            break
    return best


async def measure(profile: int) -> dict[str, float]:
    spec = load_spec(SPEC)
    clock = ManualClock(datetime.now(UTC))
    keys, revocations = KeyRing(clock), RevocationList(clock)
    validator = TokenValidator(ISSUER, keys, revocations, clock)
    ca = CertificateAuthority(spec.trust_domain, clock)
    caller = ca.issue("storefront", timedelta(hours=1))
    audience = spec.spiffe_id("orders")
    token = (
        TokenIssuer(ISSUER, keys, clock)
        .issue(
            spec.spiffe_id("storefront"),
            audience,
            cnf_x5t_s256=caller.x5t_s256,
            client_id=spec.spiffe_id("storefront"),
        )
        .token.reveal()
    )
    request = (
        f"GET /orders/7 HTTP/1.1\r\nHost: 127.0.0.1:8443\r\nAuthorization: Bearer {token}\r\n"
        "Accept: */*\r\n\r\n"
    ).encode()
    pipeline = Pipeline(
        gateway_config(spec, "orders", proof_key=Secret(new_key())),
        validator,
        CedarPolicyEngine.from_spec(spec),
        clock,
    )
    gateway = Gateway(
        pipeline,
        upstream="http://127.0.0.1:9",  # never connected to: its one connection is a fake
        sink=MemorySink(),
        ca=ca,
        svid=ca.issue("orders", timedelta(hours=1)),
        clock=clock,
        limits=ConnectionLimits(max_requests=1_000_000),
    )
    pool = gateway._pool = gateway._new_pool()
    server = gateway._server = TimedServer(gateway._handle, limits=gateway.limits)
    server.on_malformed = gateway._refuse_malformed
    client, client_side = server(), FakeTransport(ssl_object=FakeSSLObject(caller.der))
    client.connection_made(client_side)  # type: ignore[arg-type]
    service, service_side = upstream._Connection(), FakeTransport()
    service.connection_made(service_side)  # type: ignore[arg-type]
    pool._idle.append(service)

    def whole() -> None:
        client.data_received(request)
        service_side.clear()
        service.data_received(RESPONSE)
        if not client_side.chunks[-1].startswith(b"HTTP/1.1 200 "):
            raise RuntimeError(client_side.chunks[-1][:300].decode("latin-1"))
        client_side.clear()

    def fresh_sink() -> None:
        gateway.sink = MemorySink()

    def floor_handler(request: Request, reply: Reply) -> Response:
        return Response(200, [("Content-Type", "application/json")], b'{"floor": true}')

    floor_server = TimedServer(floor_handler, limits=gateway.limits)
    floor, floor_side = floor_server(), FakeTransport(ssl_object=FakeSSLObject(caller.der))
    floor.connection_made(floor_side)  # type: ignore[arg-type]

    def floor_step() -> None:
        floor.data_received(request)
        floor_side.clear()

    parsed: list[Request] = []

    def keep(request: Request, reply: Reply) -> None:
        parsed.append(request)

    capture = TimedServer(keep, limits=gateway.limits)
    grab = capture()
    grab.connection_made(FakeTransport(ssl_object=FakeSSLObject(caller.der)))  # type: ignore[arg-type]
    grab.data_received(request)
    template = parsed[0]

    def decision() -> None:
        copy = Request(
            template.method,
            template.raw_path,
            list(template.raw_headers),
            template.version,
            b"",
            True,
            client,
        )
        gateway._handle(copy, lambda response: None)

    real_submit = pool.submit
    gc.freeze()  # the set-up's objects: not the per-request cost
    figures = {"floor": best_micros(floor_step, lambda: None)}
    pool.submit = lambda *args: None  # type: ignore[method-assign]
    figures["decision"] = best_micros(decision, fresh_sink)
    pool.submit = real_submit  # type: ignore[method-assign]
    figures["whole path"] = best_micros(whole, fresh_sink)
    if profile:
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for _ in range(COUNT):
            whole()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(profile)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    args = parser.parse_args()
    try:
        import uvloop  # noqa: PLC0415 (optional, as in the gateway's process)

        figures = uvloop.run(measure(args.profile))
    except ImportError:
        figures = asyncio.run(measure(args.profile))
    floor = figures["floor"]
    print(f"gateway's Python work per forwarded request, CPU, best of {ROUNDS} x {COUNT}:")
    for name, value in figures.items():
        print(f"  {name:11} {value:7.1f} µs  ({value / floor:4.1f}x the floor)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
