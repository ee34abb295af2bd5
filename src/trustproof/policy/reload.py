"""Policy hot reload, without I/O: a swappable engine and the rules for accepting a new policy set.

`ReloadablePolicyEngine` is what every gateway of a sandbox holds: a `PolicyEngine` whose Cedar
engine is replaced by ONE reference assignment, so every gateway switches at the same instant and a
decision is made wholly by the old policies or wholly by the new ones. Each accepted set is a new
`CedarPolicyEngine` with its own, empty decision cache: no answer of the old policies survives
the swap (the cache is, in effect, keyed by policy version).

`PolicyReloader` decides whether a changed policy set goes live. It is given the file source as
two functions — `fingerprint()` (what identifies the files' current contents: inode, mtime, size,
for the real source) and `load()` (parse and validate them into a `PolicyBundle`) — and a clock,
so it runs in unit tests with fakes. Its work is split in two so the I/O shell can keep parsing off
the request path: `prepare()` (reads, parses, validates, builds the engine; any thread) and
`commit()` (the swap and the record; the event loop). A set is refused, and the old one kept,
when:

* any file cannot be read, does not parse, or does not validate against the schema (the same
  checks as ``trustproof validate``, located ``FILE:LINE:COL``);
* it contains no policy at all. Cedar would read an empty set as deny-all, but an empty policy
  file is far more often a file caught while being rewritten than an intent; a deliberate
  deny-all is written ``forbid (principal, action, resource);``, which is accepted;
* the files changed while they were being read (the next poll tries again).

Nothing here ever installs an allow-all or an empty set: a refusal changes nothing but the record.
Every attempt is recorded as a `PolicyReload` (version in force, accepted or rejected, why).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Literal

from trustproof.clock import Clock
from trustproof.policy.cedar import CedarPolicyEngine
from trustproof.policy.engine import AccessRequest, Decision
from trustproof.policy.entities import Directory
from trustproof.policy.sources import PolicyBundle
from trustproof.scrub import scrub

Outcome = Literal["accepted", "rejected"]
Trigger = Literal["watch", "request"]
MAX_REASON = 500
MAX_EVENTS = 100  # attempts kept in memory
SHOWN_EVENTS = 20  # attempts the status shows


@dataclass(frozen=True)
class PolicyReload:
    """One attempt to reload the policies: what happened, and which version is in force after it."""

    time: str  # RFC 3339, UTC
    trigger: Trigger  # the file watcher saw a change, or someone called reload_policies()
    outcome: Outcome
    version: int  # the policy version in force after this attempt
    policies: int  # how many policies the new set has (0 when rejected)
    reason: str  # why it was rejected ("" when accepted); scrubbed

    def to_json(self) -> dict[str, object]:
        return {
            "time": self.time,
            "trigger": self.trigger,
            "outcome": self.outcome,
            "version": self.version,
            "policies": self.policies,
            "reason": self.reason,
        }


class ReloadablePolicyEngine:
    """A `PolicyEngine` whose Cedar engine can be replaced while gateways use it.

    `decide` reads the current engine once and asks it; `swap` replaces it with one assignment.
    Roles changed at run time (`with_roles`) are a different mechanism: they return an engine, and
    whoever installs it holds it (see `authz.role-removed`).
    """

    def __init__(self, engine: CedarPolicyEngine) -> None:
        self._live: tuple[int, CedarPolicyEngine] = (1, engine)

    @property
    def version(self) -> int:
        return self._live[0]

    @property
    def current(self) -> CedarPolicyEngine:
        return self._live[1]

    def decide(self, request: AccessRequest) -> Decision:
        return self._live[1].decide(request)

    def swap(self, engine: CedarPolicyEngine) -> int:
        """Put `engine` in force for every holder of this object at once; the new version."""
        version = self._live[0] + 1
        self._live = (version, engine)  # the one reference assignment
        return version


@dataclass(frozen=True)
class Candidate:
    """A prepared reload: the new engine, or why there is none."""

    trigger: Trigger
    fingerprint: Hashable
    engine: CedarPolicyEngine | None
    policies: int
    reason: str


class PolicyReloader:
    """Watches a policy source (`fingerprint`, `load`); swaps accepted sets into `holder`."""

    def __init__(
        self,
        holder: ReloadablePolicyEngine,
        directory: Directory,
        *,
        fingerprint: Callable[[], Hashable],
        load: Callable[[], PolicyBundle],
        clock: Clock,
    ) -> None:
        self.holder = holder
        self.directory = directory
        self._fingerprint = fingerprint
        self._load = load
        self.clock = clock
        self.seen = fingerprint()  # the files the holder's current engine was built from
        self.events: deque[PolicyReload] = deque(maxlen=MAX_EVENTS)  # the latest attempts
        self.counts: dict[Outcome, int] = {"accepted": 0, "rejected": 0}

    def changed(self) -> bool:
        return self._fingerprint() != self.seen

    def prepare(self, trigger: Trigger = "watch") -> Candidate | None:
        """Read and check the files (slow: call it off the request path).

        None when a watch has nothing to do: no change, or the files changed while they were read
        (they are being written; the next poll sees them whole). A requested reload always gets
        a candidate, if only a refusal.
        """
        before = self._fingerprint()
        if trigger == "watch" and before == self.seen:
            return None
        try:
            bundle = self._load()
        except Exception as exc:  # load_policies reports problems; anything else is one too
            return Candidate(trigger, before, None, 0, f"{type(exc).__name__}: {exc}")
        if self._fingerprint() != before:
            if trigger == "watch":
                return None
            return Candidate(
                trigger, before, None, 0, "the policy files changed while being read; try again"
            )
        if bundle.problems:
            shown = "; ".join(
                f"{p.file}:{p.line}:{p.column}: {p.message}" for p in bundle.problems[:5]
            )
            more = len(bundle.problems) - 5
            reason = shown + (f" (and {more} more)" if more > 0 else "")
            return Candidate(trigger, before, None, 0, reason)
        if not bundle.policies:
            return Candidate(
                trigger,
                before,
                None,
                0,
                "the new policy set is empty; an empty file is taken for one caught mid-write "
                "(write `forbid (principal, action, resource);` to deny everything)",
            )
        try:
            cache_size = self.holder.current.cache_size
            engine = CedarPolicyEngine(bundle, self.directory, cache_size=cache_size)
        except Exception as exc:  # e.g. entities the new schema refuses: a refusal, never a gap
            return Candidate(trigger, before, None, 0, f"{type(exc).__name__}: {exc}")
        return Candidate(trigger, before, engine, len(bundle.policies), "")

    def commit(self, candidate: Candidate) -> PolicyReload:
        """Swap an accepted candidate in (or keep the old set) and record the attempt."""
        self.seen = candidate.fingerprint
        if candidate.engine is not None:
            version = self.holder.swap(candidate.engine)
            event = PolicyReload(
                self._now(), candidate.trigger, "accepted", version, candidate.policies, ""
            )
        else:
            reason = scrub(candidate.reason)
            if len(reason) > MAX_REASON:
                reason = reason[:MAX_REASON] + "..."
            event = PolicyReload(
                self._now(), candidate.trigger, "rejected", self.holder.version, 0, reason
            )
        self.events.append(event)
        self.counts[event.outcome] += 1
        return event

    def check(self, trigger: Trigger = "watch") -> PolicyReload | None:
        """`prepare` then `commit`, in the caller's thread (tests, and `trigger="request"`)."""
        candidate = self.prepare(trigger)
        return None if candidate is None else self.commit(candidate)

    def summary(self) -> dict[str, object]:
        """What the sandbox's status shows: the version in force and every attempt."""
        return {
            "version": self.holder.version,
            "accepted": self.counts["accepted"],
            "rejected": self.counts["rejected"],
            "events": [e.to_json() for e in list(self.events)[-SHOWN_EVENTS:]],
        }

    def _now(self) -> str:
        return self.clock.now().isoformat().replace("+00:00", "Z")
