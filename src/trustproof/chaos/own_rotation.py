"""``lifecycle.cert-rotation``'s part for services terminating TLS themselves (``gateway: none``).

The service's SVID is rotated `ROTATIONS` times under traffic (fresh handshakes, one valid
caller). Its files are rewritten and it is reloaded per its ``reload:``; after each rotation it
must present the new certificate on new handshakes within `RELOAD_MAX_WAIT_S`, and no request may
fail meanwhile. A service that never reloads keeps presenting the old certificate (still valid:
nothing would fail for minutes), and the part fails naming the serial it still presents.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from trustproof.chaos.scenario import (
    Part,
    Recorder,
    ScenarioEnv,
    Target,
    call,
    presentation,
    shown,
)
from trustproof.probes.presentation import Presentation

ROTATIONS = 3
INTERVAL_S = 0.25
RELOAD_MAX_WAIT_S = 10.0  # a server re-reading its whole configuration may take seconds
POLL_S = 0.05
MAX_POLLS = 200
MAX_REQUESTS = 1000
STREAM_TIMEOUT_S = 15.0
MAX_FAILURES_SHOWN = 5


@dataclass
class _Traffic:
    """Requests sent one after the other until stopped (at most `MAX_REQUESTS`)."""

    rec: Recorder
    name: str
    total: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, env: ScenarioEnv, what: Presentation) -> None:
        for _ in range(MAX_REQUESTS):
            if self.stop.is_set():
                return
            result = await call(env, what)
            self.total += 1
            if result.outcome != "allowed":
                self.failed += 1
                if len(self.failures) < MAX_FAILURES_SHOWN:
                    self.failures.append(shown(result))
                    self.rec.event(f"{self.name}: request failed during rotation: {shown(result)}")
            await asyncio.sleep(0)


async def cert_rotation(env: ScenarioEnv, rec: Recorder, target: Target) -> Part:
    """See the module docstring."""
    name = target.service
    token = env.view.token(target.caller, name, bound=target.with_cert)
    traffic = _Traffic(rec, name)
    task = asyncio.create_task(traffic.run(env, presentation(target, token, fresh=True)))
    try:
        rotations, stale = await _rotate(env, rec, target)
        await asyncio.sleep(INTERVAL_S)
    finally:
        traffic.stop.set()
        _, pending = await asyncio.wait([task], timeout=STREAM_TIMEOUT_S)
        for left in pending:
            left.cancel()
    if not pending:
        task.result()  # a stream that crashed makes the scenario an error, never a pass
    rec.figure(f"requests.{name}", traffic.total)
    rec.figure(f"failed.{name}", traffic.failed)
    rec.figure(f"rotations.{name}", rotations)
    for failure in traffic.failures:
        rec.note(f"{name}: {failure}")
    if stale is not None:
        rec.note(stale)
        return Part(False, stale)
    if traffic.failed or pending or traffic.total < ROTATIONS:
        why = f"{name}: {traffic.failed} of {traffic.total} requests failed while it rotated"
        if pending:
            why += "; the traffic stream did not finish"
        if traffic.total < ROTATIONS:
            why += "; too little traffic"
        return Part(False, why)
    return Part(
        True,
        f"0 of {traffic.total} requests to {name} failed while it rotated its SVID {rotations} "
        "times; each new certificate was presented on new handshakes",
    )


async def _rotate(env: ScenarioEnv, rec: Recorder, target: Target) -> tuple[int, str | None]:
    """Rotate every `INTERVAL_S` and wait for the new certificate to be presented: the rotations
    done, and what went wrong (None when each new certificate was presented)."""
    name = target.service
    for round_ in range(1, ROTATIONS + 1):
        await asyncio.sleep(INTERVAL_S)
        retired, new = env.view.rotate(name)
        serial, waited = await _presented(env, target, new.serial)
        seen = f"{serial:x}" if serial is not None else "nothing (no handshake completed)"
        rec.event(
            f"{name}: rotation {round_}: serial {retired.serial:x} -> {new.serial:x}; presented "
            f"{seen} after {waited * 1000:.0f} ms"
        )
        if serial != new.serial:
            return round_, (
                f"{name} still presented {seen} {waited:.1f} s after rotating to {new.serial:x}: "
                "it did not reload its certificate files — does its `reload:` (SIGHUP or "
                "restart) make it read TRUSTPROOF_CERT_FILE again?"
            )
        rec.figure(f"presented_after_ms.{name}.{round_}", waited * 1000)
    return ROTATIONS, None


async def _presented(env: ScenarioEnv, target: Target, serial: int) -> tuple[int | None, float]:
    """Poll the serial `target.service` presents until it is `serial`, at most
    `RELOAD_MAX_WAIT_S`: the last serial seen and the seconds it took."""
    start = time.perf_counter()
    seen: int | None = None
    for _ in range(MAX_POLLS):
        seen = await env.view.presented_serial(target.service, as_caller=target.caller)
        elapsed = time.perf_counter() - start
        if seen == serial or elapsed >= RELOAD_MAX_WAIT_S:
            return seen, elapsed
        await asyncio.sleep(POLL_S)
    return seen, time.perf_counter() - start
