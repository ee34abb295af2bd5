"""The benchmark's trustproof gateway, in its own process: the trust fabric and the gateway for
service ``orders`` of a spec, in front of a given upstream, assembled as the integration tests do
(`tests/integration/test_gateway.py`): real CA, token validator fed by the token service, Cedar
policies from the spec, audit to a `MemorySink`.

It writes into `--dir` (0700):

* ``storefront/{cert,key,bundle}.pem``  the caller's X.509-SVID and the trust bundle
* ``token``                           a certificate-bound access token storefront -> orders (0600)
* ``nginx/{cert,key,bundle}.pem``      a server SVID for the nginx reference

It also serves a floor reference on another port (``floor_url``): the same TLS context and the
same HTTP/1.1 server side (`h1server.py`), answering every request at once with a small JSON body
— no decision, no audit, no upstream: what one Python process on this TLS stack costs per request
before the gateway does any work.

Then it prints ``{"url": ..., "floor_url": ..., "loop": ...}`` on stdout and serves until SIGTERM
or SIGINT. On the way out it writes `--summary`: a JSON list with, per phase, the number of audit
events and the median per-stage timings the gateway recorded in them; SIGHUP ends a phase (and
starts a new sink). SIGUSR1 starts cProfile and SIGUSR2 stops it and writes the stats to
`--profile` (so that only the measured phase is profiled).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import signal
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

from trustproof.audit import MemorySink
from trustproof.clock import SystemClock
from trustproof.fabric import TrustFabric
from trustproof.gateway.accept import AcceptLoop
from trustproof.gateway.config import gateway_config
from trustproof.gateway.connections import TimedServer
from trustproof.gateway.h1server import Reply, Request, Response
from trustproof.gateway.listener import ConnectionLimits
from trustproof.gateway.pipeline import Pipeline
from trustproof.gateway.proof import new_key
from trustproof.gateway.server import Gateway
from trustproof.identity import write_svid_files
from trustproof.policy import CedarPolicyEngine
from trustproof.scrub import Secret
from trustproof.spec import load_spec
from trustproof.tokenservice.server import bind_loopback

SERVICE, CALLER = "orders", "storefront"
# Longer than the spec's 5m/2m, so that repeated runs never see material expire mid-measurement.
TTL = timedelta(minutes=30)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _answer_at_once(request: Request, reply: Reply) -> Response:
    return Response(200, [("Content-Type", "application/json")], b'{"floor": true}')


def summarize(sink: MemorySink) -> dict[str, object]:
    events = sink.events()
    done = [e for e in events if e.stage == "done" and e.status == 200]
    timings = [e.timings for e in done]
    in_gateway = [
        t.total_us - t.upstream_us
        for t in timings
        if t.total_us is not None and t.upstream_us is not None
    ]
    return {
        "events": len(events),
        "allowed_and_done": len(done),
        "refused": sum(not e.allowed for e in events),
        "median_us": {
            "token": _median([t.token_us for t in timings if t.token_us is not None]),
            "policy": _median([t.policy_us for t in timings if t.policy_us is not None]),
            "upstream": _median([t.upstream_us for t in timings if t.upstream_us is not None]),
            "handler_total": _median([t.total_us for t in timings if t.total_us is not None]),
            "handler_minus_upstream": _median(in_gateway),
        },
    }


async def serve(args: argparse.Namespace, loop_name: str) -> None:
    spec = load_spec(args.spec)
    clock = SystemClock()
    fabric = await TrustFabric.start(spec, clock=clock)
    gateway: Gateway | None = None
    sink = MemorySink()
    phases: list[dict[str, object]] = []
    try:
        pipeline = Pipeline(
            gateway_config(spec, SERVICE, proof_key=Secret(new_key())),  # signs, as in a sandbox
            fabric.validator(),
            CedarPolicyEngine.from_spec(spec),
            clock,
        )
        gateway = Gateway(
            pipeline,
            upstream=args.upstream,
            sink=sink,
            ca=fabric.ca,
            svid=fabric.ca.issue(SERVICE, TTL, ips=["127.0.0.1"]),
            clock=clock,
            # As the nginx reference (`keepalive_requests 1000000`): the load keeps its connections.
            limits=ConnectionLimits(max_requests=1_000_000),
        )
        await gateway.start(bind_loopback())
        limits = ConnectionLimits(max_requests=1_000_000)
        floor = TimedServer(_answer_at_once, limits=limits)
        floor_sock = bind_loopback()
        floor_host, floor_port = floor_sock.getsockname()[:2]
        floor_loop = AcceptLoop(
            floor_sock,
            ssl_context=gateway.context,
            limits=limits,
            factory=floor,
            held=lambda: len(floor.connections),
            abandoned=floor.abandoned,
            name="floor",
        )
        floor_loop.start()

        bundle = fabric.ca.bundle_pem()
        caller = fabric.issue(CALLER, ttl=TTL)
        write_svid_files(args.dir / CALLER, caller, bundle)
        write_svid_files(
            args.dir / "nginx", fabric.ca.issue(SERVICE, TTL, ips=["127.0.0.1"]), bundle
        )
        # What the token service's client-credentials grant mints for this caller, with TTL.
        caller_id, audience = spec.spiffe_id(CALLER), spec.spiffe_id(SERVICE)
        issued = fabric.issuer.issue(
            caller_id,
            audience,
            roles=fabric.registry.workloads[caller_id].roles,
            cnf_x5t_s256=caller.x5t_s256,
            client_id=caller_id,
            ttl=TTL,
        )
        fd = os.open(args.dir / "token", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(issued.token.reveal())

        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        profiler = cProfile.Profile(time.process_time)  # CPU, not wall: the machine is shared

        def end_phase() -> None:  # the audit events so far are one phase; a new sink for the next
            nonlocal sink
            assert gateway is not None
            phases.append(summarize(sink))
            sink = MemorySink()
            gateway.sink = sink
            if args.summary:
                args.summary.write_text(json.dumps(phases))

        def stop_profile() -> None:
            profiler.disable()
            if args.profile:
                profiler.dump_stats(args.profile)

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, profiler.enable)
        loop.add_signal_handler(signal.SIGUSR2, stop_profile)
        loop.add_signal_handler(signal.SIGHUP, end_phase)
        floor_url = f"https://{floor_host}:{floor_port}"
        print(
            json.dumps({"url": gateway.url, "floor_url": floor_url, "loop": loop_name}), flush=True
        )
        await stop.wait()
        await floor_loop.stop()
        await floor.shutdown()
    finally:
        if gateway is not None:
            await gateway.close()
        await fabric.close()
        if args.summary:
            args.summary.write_text(json.dumps([*phases, summarize(sink)]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--upstream", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--dir", type=Path, required=True, help="where to write the material")
    parser.add_argument("--summary", type=Path)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    args = parser.parse_args()
    if not args.upstream.startswith("http://127.0.0.1:"):
        raise SystemExit("the upstream must be on 127.0.0.1")
    if args.loop == "uvloop":
        try:
            import uvloop  # noqa: PLC0415 (optional)
        except ImportError:
            asyncio.run(serve(args, "asyncio (uvloop is not installed)"))
            return 0
        version = getattr(uvloop, "__version__", "")
        uvloop.run(serve(args, f"uvloop {version}".strip()))
        return 0
    asyncio.run(serve(args, "asyncio"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
