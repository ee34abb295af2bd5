"""Traffic for the certificate-authority faults: a stream of real requests run while the CA
changes under it, counted, with phases advanced by request counts — never by time windows,
which are flaky under load.

The stream goes round and round the allowed cells of the experiment's sample (each a fresh TLS
handshake, so every change of certificate or bundle is met by new handshakes) and the egress
edges (plain HTTP into a caller's egress proxy, which presents the caller's certificate and a
token bound to it). Each request counts; a refused one is a failure, with its first few shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace

from trustproof.chaos.experiment import Run
from trustproof.chaos.faults_tokens import edges
from trustproof.chaos.scenario import call, shown
from trustproof.probes.presentation import Presentation
from trustproof.view import SandboxView

MAX_REQUESTS = 5000  # per experiment: the stream is bounded in count ...
PHASE_TIMEOUT_S = 30.0  # ... and each phase in time (a stalled stream is a problem, not a hang)
POLL_S = 0.005
MAX_FAILURES_SHOWN = 5


@dataclass
class Traffic:
    """What the stream did so far."""

    per_round: int = 1  # requests to send each cell and edge once
    total: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    go: asyncio.Event = field(default_factory=asyncio.Event)  # cleared: paused
    busy: bool = False  # a request is in flight
    task: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """No request in flight inside the block: the experiment presents other certificates
        as the same callers meanwhile (the view's identities are shared)."""
        self.go.clear()
        try:
            while self.busy:
                await asyncio.sleep(POLL_S)
            yield
        finally:
            self.go.set()

    async def more(self, count: int) -> bool:
        """Wait until `count` more requests were answered; False if the stream stalled."""
        target = self.total + count
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PHASE_TIMEOUT_S
        while self.total < target:
            if self.task is None or self.task.done() or loop.time() > deadline:
                return False
            await asyncio.sleep(POLL_S)
        return True


def _requests(run: Run) -> list[Callable[[], Presentation]]:
    """What the stream sends, in turn: built anew each time, so the view's current certificate
    and token are used."""
    view = run.env.view
    made: list[Callable[[], Presentation]] = []
    for probe in run.probes:
        if probe.allowed:
            made.append(
                functools.partial(_fresh, view, probe.caller, probe.service, probe.operation)
            )
    for edge in edges(run.env, run.experiment.target):
        made.append(edge.presentation)
    return made


def _fresh(view: SandboxView, caller: str, service: str, operation: str) -> Presentation:
    return replace(Presentation.valid(view, caller, service, operation), fresh=True)


async def _stream(run: Run, traffic: Traffic, made: list[Callable[[], Presentation]]) -> None:
    for index in range(MAX_REQUESTS):
        await traffic.go.wait()
        if traffic.stop.is_set():
            return
        traffic.busy = True
        try:
            result = await call(run.env, made[index % len(made)]())
        finally:
            traffic.busy = False
        traffic.total += 1
        if result.outcome != "allowed":
            traffic.failed += 1
            if len(traffic.failures) < MAX_FAILURES_SHOWN:
                what = f"{made[index % len(made)]().describe()}: {shown(result)}"
                traffic.failures.append(what)
                run.rec.event(f"request failed: {what}")
        await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def traffic(run: Run) -> AsyncIterator[Traffic | None]:
    """The stream, running inside the block (None when the sample has no allowed cell and
    there is no egress edge); stopped and awaited on exit."""
    made = _requests(run)
    if not made:
        yield None
        return
    running = Traffic(per_round=len(made))
    running.go.set()
    running.task = asyncio.create_task(_stream(run, running, made))
    try:
        yield running
    finally:
        running.stop.set()
        running.go.set()
        done, pending = await asyncio.wait([running.task], timeout=PHASE_TIMEOUT_S)
        for task in pending:
            task.cancel()
        run.requests += running.total
        for task in done:
            task.result()  # a stream that crashed makes the experiment an error, never a pass
        if pending:
            run.expect(False, "the traffic stream did not finish")


def phase(run: Run, traffic: Traffic | None, name: str) -> None:
    """A timeline line with the stream's counts so far."""
    if traffic is not None:
        run.rec.event(f"{name}: {traffic.total} requests, {traffic.failed} failed so far")
    else:
        run.rec.event(name)


async def advance(run: Run, traffic: Traffic | None, name: str) -> None:
    """Let one more round of requests through — every cell and edge once more — (a problem if
    the stream stalls), then log `name`."""
    if traffic is not None and not await traffic.more(traffic.per_round):
        run.expect(False, f"the traffic stalled before {name}")
    phase(run, traffic, name)


@contextlib.asynccontextmanager
async def paused(traffic: Traffic | None) -> AsyncIterator[None]:
    """`Traffic.paused`, or nothing without a stream."""
    if traffic is None:
        yield
        return
    async with traffic.paused():
        yield
