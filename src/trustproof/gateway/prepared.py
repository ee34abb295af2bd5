"""What the gateway pipeline derives from a request alone, remembered per distinct request.

A client on a keep-alive connection sends the same request line and the same header fields again
and again. The request-shape stages of `pipeline.Pipeline` — the HTTP checks
(`headers.request_problem`), the ``Authorization`` field (RFC 6750), the canonical target
(`paths.canonicalize`) and its origin form for the upstream, the route it matches and the
caller's headers a proxy may relay (`headers.relayable`) — are pure functions of (HTTP version,
method, request-target, header fields) and the gateway's configuration, so they are computed once
per distinct request and looked up afterwards. Measured on the benchmark's request they are about
a third of the pipeline's CPU.

Nothing that can change while a request is repeated is kept here: the client certificate's
verdict (revocation is checked on every request by the server shell), the token's validation
(signature key still current, expiry, revocation, certificate binding: `TokenValidator.validate`
runs on every request), the policy decision (the engine is asked every time; a reload swaps it),
the client address and the request id. Each entry belongs to one `GatewayConfig`: assigning
another configuration to the pipeline empties the cache.

An entry is filled lazily, stage by stage, in the pipeline's order, so that a request refused by
an early stage never runs a later stage's code (the same as without the cache, exceptions
included). The cache is bounded (least recently used first out); it holds header values, bearer
tokens among them, in this process's memory only — its repr shows the number of entries.
"""

from __future__ import annotations

from collections import OrderedDict

from trustproof.gateway.decision import GatewayConfig, Headers, Reason
from trustproof.gateway.headers import RequestProblem
from trustproof.gateway.paths import BadTarget, CanonicalTarget
from trustproof.spec.values import Route

DEFAULT_SIZE = 1024

Key = tuple[tuple[int, int], str, str, tuple[tuple[str, str], ...]]


class Prepared:
    """The request-shape results for one distinct request, each None (or its ``*_done`` flag
    False) until the stage that needs it ran: the raw results of the pure functions, which the
    pipeline turns into refusals exactly as without the cache."""

    __slots__ = (
        "bearer",
        "kept",
        "offered",
        "problem",
        "problem_done",
        "route",
        "route_done",
        "target",
        "upstream_target",
    )

    def __init__(self) -> None:
        self.problem_done = False
        self.problem: RequestProblem | None = None
        self.bearer: tuple[str | None, Reason | None] | None = None
        self.target: CanonicalTarget | BadTarget | None = None
        self.route_done = False
        self.route: Route | None = None
        self.offered: tuple[str, ...] | None = None
        self.kept: tuple[Headers, tuple[str, ...]] | None = None
        self.upstream_target: str | None = None  # the origin-form target sent upstream

    def __repr__(self) -> str:  # never the header values (a bearer token is one)
        return "Prepared(...)"


class PreparedCache:
    """`Prepared` entries by request shape, for one configuration, bounded."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        if size < 1:
            raise ValueError("a prepared-request cache holds at least one entry")
        self.size = size
        self.config: GatewayConfig | None = None
        self._entries: OrderedDict[Key, Prepared] = OrderedDict()

    def __repr__(self) -> str:
        return f"PreparedCache({len(self._entries)} of {self.size})"

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def entry(
        self,
        config: GatewayConfig,
        version: tuple[int, int],
        method: str,
        target: str,
        headers: Headers,
    ) -> Prepared:
        """The entry for this request shape under `config` (a new, empty one on a miss)."""
        if config is not self.config:
            self._entries.clear()
            self.config = config
        key = (version, method, target, tuple(headers))
        entries = self._entries
        found = entries.get(key)
        if found is not None:
            entries.move_to_end(key)
            return found
        made = entries[key] = Prepared()
        if len(entries) > self.size:
            entries.popitem(last=False)
        return made


__all__ = ["DEFAULT_SIZE", "Prepared", "PreparedCache"]
