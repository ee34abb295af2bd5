"""Audit records: what a gateway writes for every request it sees, and the sink protocol.

A gateway writes the *decision* (`AuditEvent`) before anything reaches the service: if the sink
cannot take it, the request is refused (fail closed). For allowed requests a *completion* with the
upstream status and time follows. Other parts of the sandbox add records of their own kinds
(`EVENT_KINDS`) to the durable log (`trustproof.audit.store`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, get_args

EventKind = Literal[
    "decision",
    "completion",
    "token.issue",
    "token.revoke",
    "token.introspect",
    "token.admin-mint",
    "probe",
    "scenario",
    "chaos",
    "egress.drop",
    "dns.refused",
    "alert",
]
"""The kinds of record in a run's audit log (the names other parts emit are pinned)."""

EVENT_KINDS: tuple[str, ...] = get_args(EventKind)


@dataclass(frozen=True)
class Timings:
    """Microseconds spent in each stage; None where the stage did not run."""

    handshake_us: float | None = None
    token_us: float | None = None
    policy_us: float | None = None
    upstream_us: float | None = None
    total_us: float | None = None


@dataclass(frozen=True)
class AuditEvent:
    request_id: str
    time: str  # RFC 3339, UTC
    service: str
    method: str
    path: str  # canonical path, or the raw target when it could not be canonicalised
    route: str | None  # matched route template
    peer_spiffe_id: str | None  # verified client certificate identity
    token_subject: str | None  # verified token subject
    principal: str | None  # who the policy was asked about
    allowed: bool
    status: int
    stage: str  # http | tls | token | path | policy | audit | upstream | done
    reason: str
    policy_ids: tuple[str, ...] = ()
    timings: Timings = field(default_factory=Timings)
    stripped_headers: tuple[str, ...] = ()  # identity and client-address headers sent: names only

    def to_json(self) -> dict[str, object]:
        # Written out by hand: dataclasses.asdict deep-copies every field, and this runs for
        # every request a gateway sees.
        t = self.timings
        return {
            "request_id": self.request_id,
            "time": self.time,
            "service": self.service,
            "method": self.method,
            "path": self.path,
            "route": self.route,
            "peer_spiffe_id": self.peer_spiffe_id,
            "token_subject": self.token_subject,
            "principal": self.principal,
            "allowed": self.allowed,
            "status": self.status,
            "stage": self.stage,
            "reason": self.reason,
            "policy_ids": list(self.policy_ids),
            "timings": {
                "handshake_us": t.handshake_us,
                "token_us": t.token_us,
                "policy_us": t.policy_us,
                "upstream_us": t.upstream_us,
                "total_us": t.total_us,
            },
            "stripped_headers": list(self.stripped_headers),
        }


@dataclass(frozen=True)
class AuditCompletion:
    """What happened after an allowed request was forwarded."""

    request_id: str
    status: int
    upstream_us: float
    total_us: float
    reason: str = "forwarded"


class AuditSink(Protocol):
    """Where gateways record events. A raising `record` makes the gateway refuse the request."""

    def record(self, event: AuditEvent) -> None: ...

    def complete(self, completion: AuditCompletion) -> None: ...
