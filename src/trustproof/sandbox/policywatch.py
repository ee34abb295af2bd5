"""The running sandbox's policy watcher: the spec's Cedar files polled, new sets swapped in live.

Every `POLL_SECONDS` the watcher compares the (inode, mtime, size) of each policy file and of the
schema with what the policies in force were built from. On a change it reads, parses and validates
the whole set in a worker thread — off the request path: gateways keep deciding with the old
engine meanwhile — then, back on the event loop, either swaps the new engine into the
`ReloadablePolicyEngine` every gateway holds (one assignment; see `trustproof.policy.reload`) or
keeps the old one. Replacing the file (write a new one, then rename it over the old) is the safe
way to edit it; an in-place write caught half-way is refused and picked up whole at the next poll.

Each attempt is:

* logged — a warning for a refusal (scrubbed problems, ``FILE:LINE:COL``), info for a swap;
* recorded in the audit log, as an event with ``method: "RELOAD"``, ``service: "*"``, ``stage:
  "policy"`` and ``reason`` ``policy-reload-accepted`` or ``policy-reload-rejected: <why>``
  (``allowed`` is always false: no request was allowed);
* counted in the sandbox state (``policy_reloads`` in ``trustproof status --json``).

`reload("request")` is the same path on demand (`Sandbox.reload_policies()`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Callable, Hashable
from uuid import uuid4

from trustproof.audit import AuditEvent, AuditSink
from trustproof.clock import Clock
from trustproof.policy import CedarPolicyEngine, Directory, load_policies
from trustproof.policy.reload import PolicyReload, PolicyReloader, ReloadablePolicyEngine, Trigger
from trustproof.scrub import scrubbed_traceback
from trustproof.spec import Spec

POLL_SECONDS = 0.5
log = logging.getLogger("trustproof.sandbox.policies")


def policy_paths(spec: Spec) -> tuple[str, ...]:
    """The files a policy set is built from: every policy file, then the schema if named."""
    named = (*spec.policies.files, *((spec.policies.schema,) if spec.policies.schema else ()))
    return tuple(str(spec.resolve(relative)) for relative in named)


def fingerprint(paths: tuple[str, ...]) -> Hashable:
    """(inode, mtime, size) of each file; a missing or unreadable file is its error number."""
    found: list[tuple[object, ...]] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError as exc:
            found.append((path, "error", exc.errno))
        else:
            found.append((path, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(found)


class PolicyWatch:
    """Owns the sandbox's `ReloadablePolicyEngine` and keeps it in step with the policy files."""

    def __init__(
        self,
        spec: Spec,
        clock: Clock,
        sink: AuditSink,
        on_event: Callable[[PolicyReload], None] = lambda _: None,
    ) -> None:
        """Reads and checks the policies now; raises `SpecError` like `CedarPolicyEngine`."""
        paths = policy_paths(spec)
        seen = fingerprint(paths)
        self.holder = ReloadablePolicyEngine(CedarPolicyEngine.from_spec(spec))
        self.files = paths
        self.reloader = PolicyReloader(
            self.holder,
            Directory.from_spec(spec),
            fingerprint=functools.partial(fingerprint, paths),
            load=functools.partial(load_policies, spec),
            clock=clock,
        )
        # What the first engine was read from (taken before reading: a change during the first
        # read is seen as a change at the first poll).
        self.reloader.seen = seen
        self.sink = sink
        self.on_event = on_event
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._poll())

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def reload(self, trigger: Trigger) -> PolicyReload | None:
        """Prepare in a worker thread, commit on the loop; None when a watch had nothing to do."""
        async with self._lock:
            candidate = await asyncio.to_thread(self.reloader.prepare, trigger)
            if candidate is None:
                return None
            event = self.reloader.commit(candidate)
        self.record(event)
        return event

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                if self.reloader.changed():
                    await self.reload("watch")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the watcher must outlive any one bad attempt
                log.error("policy watch failed; policies unchanged:\n%s", scrubbed_traceback(exc))

    def record(self, event: PolicyReload) -> None:
        """Log, audit and report one attempt (a failure to audit or report undoes nothing)."""
        if event.outcome == "accepted":
            log.info("policies reloaded: version %d, %d policies", event.version, event.policies)
        else:
            log.warning(
                "new policies refused, version %d stays in force: %s", event.version, event.reason
            )
        reason = f"policy-reload-{event.outcome}"
        try:
            self.sink.record(
                AuditEvent(
                    request_id=f"policy-reload-{uuid4().hex}",
                    time=event.time,
                    service="*",
                    method="RELOAD",
                    path=";".join(self.files),
                    route=None,
                    peer_spiffe_id=None,
                    token_subject=None,
                    principal=None,
                    allowed=False,
                    status=0,
                    stage="policy",
                    reason=f"{reason}: {event.reason}" if event.reason else reason,
                )
            )
        except Exception as exc:  # the swap stands; the log and the state still say it
            log.error("policy reload not audited:\n%s", scrubbed_traceback(exc))
        try:
            self.on_event(event)
        except Exception as exc:
            log.error("policy reload not recorded in the state:\n%s", scrubbed_traceback(exc))
