"""The policy decision point's extension point: one request in, one `Decision` out.

`PolicyEngine.decide` is the whole interface (the gateway is the enforcement point; an engine only
answers). It never raises for a request it cannot evaluate: that is a denial with a reason. The
reason codes are stable, because reports and audit events carry them:

* ``allowed-by-policy`` — the engine allowed the request, and nothing went wrong on the way;
* ``no-matching-permit`` — no permit applied (Cedar's default deny);
* ``forbidden-by-policy`` — a forbid policy applied (it overrides any permit);
* ``policy-error`` — a policy could not be evaluated; the request is refused even when another
  policy permitted it, because the policy that failed may have been a forbid;
* ``engine-error`` — the request could not be evaluated at all (malformed request, engine fault).

Fail closed: a `Decision` can only be an allow with the reason ``allowed-by-policy`` and no errors
(`Decision.__post_init__` refuses anything else), so no error can be turned into an allow further
down.

`StaticPolicyEngine` is the fake shipped next to the interface (like httpx's `MockTransport`): an
allow-table, for unit tests of the layers above.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, get_args

if TYPE_CHECKING:  # plan imports the spec package, whose loader imports this one
    from trustproof.plan import Boundary

Reason = Literal[
    "allowed-by-policy",
    "no-matching-permit",
    "forbidden-by-policy",
    "policy-error",
    "engine-error",
]
REASONS: tuple[Reason, ...] = get_args(Reason)
PrincipalKind = Literal["workload", "persona"]


@dataclass(frozen=True, kw_only=True)
class AccessRequest:
    """What the gateway asks: may this principal do this to this route, in this context?

    `route` is the canonical route template the request matched (``/orders/{id}``), never the raw
    path. `roles` are the roles the gateway attributes to the principal; an engine with its own
    directory (`CedarPolicyEngine`) takes roles from that directory instead, so that a request can
    never grant its principal a role. The context fields are the ones conditional policies read:
    `client_cert` (a verified client certificate was presented), `source_ip`, `token_roles` (the
    roles claimed in the access token) and `hour_utc` (0-23, from the injected clock).
    """

    principal_kind: PrincipalKind
    principal: str
    action: str  # the HTTP method
    service: str
    route: str
    source_ip: str
    hour_utc: int
    roles: tuple[str, ...] = ()
    client_cert: bool = False
    token_roles: tuple[str, ...] = ()

    @property
    def operation(self) -> str:
        """``GET /orders/{id}``: the access-matrix spelling of the action and route."""
        return f"{self.action} {self.route}"


@dataclass(frozen=True)
class Decision:
    """An engine's answer.

    `policy_ids` name the policies that determined it: the permits for an allow, the forbids for
    a ``forbidden-by-policy``, the failing policies (when known) for a ``policy-error``; each is
    the policy's ``@id("...")`` annotation, or the engine's own id when it has none. `errors` are
    for humans. `elapsed_us` is the evaluation time; `cached` says the answer was remembered from
    an identical earlier request (and `elapsed_us` is then that evaluation's time).
    """

    allowed: bool
    reason: Reason
    policy_ids: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    elapsed_us: float = 0.0
    cached: bool = False

    def __post_init__(self) -> None:
        if self.allowed and (self.reason != "allowed-by-policy" or self.errors):
            raise ValueError(
                f"an allow must have reason 'allowed-by-policy' and no errors, got "
                f"{self.reason!r} with {len(self.errors)} error(s)"
            )
        if self.reason not in REASONS:
            raise ValueError(f"unknown decision reason {self.reason!r}")

    @classmethod
    def deny(cls, reason: Reason, *errors: str, elapsed_us: float = 0.0) -> Decision:
        return cls(False, reason, (), tuple(errors), elapsed_us)


class PolicyEngine(Protocol):
    """Decides access requests. Must not raise: an unanswerable request is a denial."""

    def decide(self, request: AccessRequest) -> Decision: ...


AllowEntry = tuple[str, str, str, str]  # (principal name, method, service, route template)


class StaticPolicyEngine:
    """A fake engine: allows exactly the (principal, method, service, route) entries given.

    Everything else is ``no-matching-permit``. Roles and context are ignored: this is a stand-in
    for tests of the layers above the engine, not a policy language.
    """

    POLICY_ID = "static-allow-table"

    def __init__(self, allow: Iterable[AllowEntry]) -> None:
        self._allow = frozenset(allow)

    @classmethod
    def from_matrix(cls, boundaries: Iterable[Boundary]) -> StaticPolicyEngine:
        """The allowed cells of an expected matrix (`trustproof.plan.expected_matrix`) as a table.

        Handy for exercising a gateway or a probe against a perfectly-behaved engine; never use it
        to test the policies themselves (that would test the oracle against itself).
        """
        entries: list[AllowEntry] = []
        for boundary in boundaries:
            if boundary.kind != "service":
                continue
            for cell in boundary.cells:
                if cell.allowed:
                    method, _, route = cell.operation.partition(" ")
                    entries.append((cell.caller, method, boundary.name, route))
        return cls(entries)

    def decide(self, request: AccessRequest) -> Decision:
        key = (request.principal, request.action, request.service, request.route)
        if key in self._allow:
            return Decision(True, "allowed-by-policy", (self.POLICY_ID,))
        return Decision(False, "no-matching-permit")
