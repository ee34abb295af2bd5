"""``lifecycle.cert-rotation``: certificate rotation under traffic, with zero failed requests.

Two streams of requests run through seven intervals (each at least a quarter of a second and four
requests of each stream), bounded in count and time:

* **egress** — plain HTTP into the caller's egress proxy, which originates mTLS with the
  caller's rotating X.509-SVID and a token bound to it (the way the caller's service calls);
* **direct** — straight to the callee's gateway with a fresh TLS handshake per request, so that
  every rotation of the gateway's own SVID is met by new handshakes.

Meanwhile the callee's and the caller's SVIDs rotate `ROTATIONS` times (`SandboxView.rotate`:
the sandbox's rotators, which tell their subscribers — the gateway, the egress proxies, the
services' files).

"Nothing failed" alone would also hold for a component that ignored the rotation: the old
certificate is valid for minutes. So each certificate the caller retires is revoked on the CA one
rotation interval after it was replaced (time compressed: in production it would merely expire).
The gateway checks revocation on every request, even on an open connection, so whatever still
presents a retired certificate is refused from then on (``client-cert-revoked``) and counted as a
failure. An interval is far longer than a request, so none is still in flight with it.

Services terminating TLS themselves (``gateway: none``) are rotated too
(`chaos.own_rotation`): under traffic, each must present its new certificate on new handshakes
once reloaded, with no failed request. The scenario passes when every part does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace

from trustproof.chaos import own_rotation
from trustproof.chaos.scenario import (
    Part,
    Recorder,
    ScenarioEnv,
    ScenarioResult,
    Target,
    call,
    combine,
    presentation,
    shown,
    targets,
)
from trustproof.identity import Svid
from trustproof.probes.presentation import Presentation
from trustproof.view import SandboxView

ROTATIONS = 5
INTERVAL_S = 0.25
PER_INTERVAL = 4  # requests each stream completes in every interval, at least (a loaded machine
# answers fewer per second: an interval lasts until they are done, within STREAM_TIMEOUT_S)
MAX_REQUESTS = 2000  # per stream
STREAM_TIMEOUT_S = 15.0
MAX_FAILURES_SHOWN = 5


@dataclass
class _Stream:
    name: str
    total: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)


def _edge(env: ScenarioEnv) -> Target | None:
    """The first egress edge (caller -> callee behind a gateway) with an allowed operation,
    reads first (the streams repeat it hundreds of times)."""
    spec, gateways = env.spec, env.view.gateways()
    for caller, callee in env.view.egress_edges():
        if callee not in gateways:
            continue
        granted = spec.access.services.get(callee, {}).get(caller, ())
        operations = [str(route) for route in spec.services[callee].routes]
        allowed = [op for op in operations if op in granted or "*" in granted]
        if allowed:
            operation = min(allowed, key=lambda op: (not op.startswith("GET "), op))
            return Target(callee, caller, operation, with_cert=True)
    return None


async def cert_rotation(env: ScenarioEnv, rec: Recorder) -> ScenarioResult:
    """See the module docstring. Passes with zero failed requests on both streams."""
    target = _edge(env)
    spec = env.spec
    terminating = targets(
        spec, [n for n, s in spec.services.items() if s.ingress.gateway == "none"]
    )
    if target is None and not terminating:
        return rec.finish(
            "skip", "no egress edge to a service behind a gateway, and no service terminating TLS"
        )
    parts = [await _rotation_at_gateways(env, rec, target)] if target is not None else []
    for own_target in terminating.values():
        parts.append(await own_rotation.cert_rotation(env, rec, own_target))
    return combine(rec, parts)


async def _rotation_at_gateways(env: ScenarioEnv, rec: Recorder, target: Target) -> Part:
    caller, callee = target.caller, target.service
    token = env.view.token(caller, callee, bound=True)
    direct = presentation(target, token, fresh=True)
    # Plain HTTP into the caller's egress proxy: it adds the certificate and the token.
    via_egress = replace(direct, door="egress", cert=None, token=None, fresh=False)
    rec.note(
        f"traffic: {target.describe()} via {caller}'s egress proxy and directly (fresh handshakes)"
    )
    stop = asyncio.Event()
    streams = [_Stream("egress"), _Stream("direct")]

    async def run(stream: _Stream, what: Presentation) -> None:
        for _ in range(MAX_REQUESTS):
            if stop.is_set():
                return
            result = await call(env, what)
            stream.total += 1
            if result.outcome != "allowed" or result.evidence.served_by != callee:
                stream.failed += 1
                if len(stream.failures) < MAX_FAILURES_SHOWN:
                    stream.failures.append(f"{stream.name}: {shown(result)}")
                    rec.event(f"{stream.name} request failed: {shown(result)}")
            await asyncio.sleep(0)

    tasks = [
        asyncio.create_task(run(streams[0], via_egress)),
        asyncio.create_task(run(streams[1], direct)),
    ]
    try:
        revoked, rotations = await _rotate(env, rec, caller, callee, tasks, streams=streams)
    finally:
        stop.set()
        done, pending = await asyncio.wait(tasks, timeout=STREAM_TIMEOUT_S)
        for task in pending:
            task.cancel()
    for task in done:
        task.result()  # a stream that crashed makes the scenario an error, never a pass
    return _judge(rec, target, streams, rotations, revoked, stuck=bool(pending))


def _judge(
    rec: Recorder,
    target: Target,
    streams: list[_Stream],
    rotations: int,
    revoked: int,
    *,
    stuck: bool,
) -> Part:
    caller, callee = target.caller, target.service
    total = sum(s.total for s in streams)
    failed = sum(s.failed for s in streams)
    for stream in streams:
        rec.figure(f"requests.{stream.name}", stream.total)
        rec.figure(f"failed.{stream.name}", stream.failed)
        for failure in stream.failures:
            rec.note(failure)
    rec.figure("total_requests", total)
    rec.figure("failed_requests", failed)
    rec.figure("rotations", 2 * rotations)
    rec.figure(f"rotations.{caller}", rotations)
    rec.figure(f"rotations.{callee}", rotations)
    rec.figure("revoked_certificates", revoked)
    starved = [s.name for s in streams if s.total < ROTATIONS]
    if rotations < ROTATIONS:
        starved.append(f"only {rotations} rotations")
    if failed or starved or stuck:
        why = f"{failed} of {total} requests failed"
        if starved:
            why += f"; too little traffic: {', '.join(starved)}"
        if stuck:
            why += "; a traffic stream did not finish"
        return Part(False, why + f" while {caller} and {callee} rotated {rotations} times")
    return Part(
        True,
        f"0 of {total} requests failed while {caller} and {callee} rotated their SVIDs "
        f"{rotations} times each ({revoked} retired certificates revoked)",
    )


async def _rotate(
    env: ScenarioEnv,
    rec: Recorder,
    caller: str,
    callee: str,
    tasks: list[asyncio.Task[None]],
    *,
    streams: list[_Stream],
) -> tuple[int, int]:
    """Rotate both SVIDs every interval, `ROTATIONS` times (fewer if the traffic ends first),
    revoking each retired caller certificate one interval later; then one more interval of
    traffic. An interval is `INTERVAL_S` and `PER_INTERVAL` requests of each stream, whichever
    is later — counted, so a slow machine gets the same traffic around each rotation. Returns
    (certificates revoked, rotations)."""
    view = env.view
    revoked = rotations = 0
    retired: list[Svid] = []
    deadline = asyncio.get_running_loop().time() + STREAM_TIMEOUT_S
    for round_ in range(1, ROTATIONS + 2):
        await _interval(streams, tasks, deadline)
        revoked += _revoke_retired(rec, view, retired)
        if round_ > ROTATIONS or all(task.done() for task in tasks):
            continue
        _, new_callee = view.rotate(callee)
        old_caller, new_caller = view.rotate(caller)
        retired.append(old_caller)
        rotations += 1
        rec.event(
            f"rotation {round_}: {callee} gateway SVID serial {new_callee.serial:x}, "
            f"{caller} SVID serial {new_caller.serial:x}"
        )
    await _interval(streams, tasks, deadline)  # traffic with every retired certificate revoked
    return revoked, rotations


async def _interval(
    streams: list[_Stream], tasks: list[asyncio.Task[None]], deadline: float
) -> None:
    """Wait `INTERVAL_S`, then until each running stream has `PER_INTERVAL` more requests done
    (or `deadline`: a stream that stalls is judged as starved, not waited for)."""
    loop = asyncio.get_running_loop()
    goals = [stream.total + PER_INTERVAL for stream in streams]
    await asyncio.sleep(INTERVAL_S)
    while loop.time() < deadline and any(
        stream.total < goal and not task.done()
        for stream, goal, task in zip(streams, goals, tasks, strict=True)
    ):
        await asyncio.sleep(0.01)


def _revoke_retired(rec: Recorder, view: SandboxView, retired: list[Svid]) -> int:
    """Revoke every certificate retired at least one interval ago; how many were revoked."""
    count = len(retired)
    for svid in retired:
        view.revoke_cert(svid)
        rec.event(f"revoked the retired certificate {svid.spiffe_id} serial {svid.serial:x}")
    retired.clear()
    return count
