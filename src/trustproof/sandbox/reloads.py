"""Waiting until a reload has taken effect.

A service told to reload (``reload: sighup``) does it on its own time, and a server that replaces
its worker processes keeps the old ones serving for a while after the new ones started: nginx's
master starts the new workers, sleeps 100 ms ("allow new processes to start"), and only then tells
the old ones to quit — longer on a loaded machine. A handshake meanwhile may meet either
configuration, so one answer from the new one proves nothing about the next: a certificate of a
new root refused, a retired root's server certificate shown, by a worker about to exit.

`awaited` watches the worker processes of the services told inside its block (the members of
each one's process group other than its leader) and, on the way out, waits until the reload is
over — `settled` decides, without I/O, from what it saw:

* a service with no worker processes (one process, like the PyJWT example) reloads in place:
  nothing to wait for;
* workers replaced: every worker of before has exited, and no worker started or ended for
  `QUIET_S` (a reload signalled while another was still starting replaces them twice);
* no worker replaced `UNCHANGED_S` after the signal: none will be (the server refused the new
  files — nginx keeps its configuration when its CRL file is missing — or reloads in place).

Each wait is bounded by `BOUND_S`, then logged and given up: the experiment's own checks judge
what the service does. Container services are not watched (their processes are the engine's).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.procinfo import group_members

log = logging.getLogger(__name__)

QUIET_S = 0.25  # no worker started or ended for this long: the replacement is complete
UNCHANGED_S = 1.0  # no worker replaced this long after the signal: the server did not replace them
BOUND_S = 10.0  # at most this long per reload, then given up (logged)
POLL_S = 0.02


def settled(
    before: frozenset[int], now: frozenset[int], since_signal_s: float, quiet_s: float
) -> bool:
    """Is the reload over, given the workers `before` the signal and `now`, the seconds since the
    signal and since the workers last changed?"""
    if not before and not now:
        return True  # one process reloading in place: nothing to watch
    if now == before:
        return since_signal_s >= UNCHANGED_S
    return not (before & now) and quiet_s >= QUIET_S


def _watched(sandbox: Sandbox, names: Iterable[str]) -> dict[str, int]:
    """Process-group ids of the `names` that reload by SIGHUP as local processes."""
    found = {}
    for name in names:
        handle = sandbox.handles.get(name)
        service = sandbox.spec.services.get(name)
        if handle is None or service is None or service.reload != "sighup":
            continue
        if handle.container_id is None:
            found[name] = handle.pid
    return found


async def _settle(name: str, pgid: int, before: frozenset[int], signalled: float) -> None:
    seen, changed = before, signalled
    while True:
        now = time.perf_counter()
        workers = await asyncio.to_thread(group_members, pgid)
        if workers != seen:
            seen, changed = workers, now
        if settled(before, workers, now - signalled, now - changed):
            return
        if now - signalled > BOUND_S:
            log.warning("%s: its reload did not settle within %g s; going on", name, BOUND_S)
            return
        await asyncio.sleep(POLL_S)


@asynccontextmanager
async def awaited(sandbox: Sandbox, names: Iterable[str]) -> AsyncIterator[None]:
    """Reloads of `names` sent inside the block are over when it is left (module docstring)."""
    watched = _watched(sandbox, names)
    before = {name: await asyncio.to_thread(group_members, pgid) for name, pgid in watched.items()}
    yield
    signalled = time.perf_counter()
    await asyncio.gather(
        *(_settle(name, pgid, before[name], signalled) for name, pgid in watched.items())
    )
