"""`SandboxView`: the only surface probes and scenarios touch (DESIGN.md §3).

Exercisers drive a sandbox like an attacker or a client would, through this protocol and nothing
else: they never reach into gateways, pipelines or the token service's internals. Two
implementations:

* `trustproof.sandbox.view.LiveView` — the adapter over a running `Sandbox` (real TLS, real HTTP,
  real PostgreSQL);
* `trustproof.view.fake.FakeView` — in memory, a boundary that decides like a configurable
  server (well-configured, or broken in a chosen way), so every probe has unit tests: a server the
  probe fools gives an over-permission, one it does not gives a pass.

What it offers: the spec and the sandbox clock; endpoints (which services have a gateway, egress
edges); certificates (valid, broken by kind; rotate, revoke); tokens (valid, bound or not, with
chosen timestamps; broken from a template; revoked through RFC 7009; the attacker's key server
for ``jku``/``x5u``); the signing keys (rotate, prune, the published JWKS); the policy the
gateways enforce and `override_policy()`; the audit event of a request; each gateway's token
leeway; sending attempts (`send`, `channel`, `query`); handshake scans (the CA names a server
advertises, next to the sandbox's own and the spec's foreign ones); and the listening sockets of
the team's service processes (`listeners`).

On the isolated backend it also says what the services themselves tried to reach outside their
declared peers (`egress_events`: dropped connections and refused DNS queries, counted).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, Protocol

from trustproof.clock import Clock
from trustproof.identity import Svid
from trustproof.policy.engine import PolicyEngine
from trustproof.scrub import Secret
from trustproof.spec.model import Spec
from trustproof.tokens import TokenTemplate
from trustproof.tokens.forged import AttackerOrigin
from trustproof.view.db_catalog import DbCatalog
from trustproof.view.egress import EgressEvent
from trustproof.view.exchange import (
    CaNames,
    CaScan,
    CertKind,
    DbAnswer,
    DbRequest,
    Exchange,
    HttpRequest,
    Listener,
)


class Channel(Protocol):
    """One kept-alive connection (at most): requests reuse it while the server keeps it open."""

    @property
    def connections_opened(self) -> int: ...

    async def send(self, request: HttpRequest) -> Exchange: ...


class SandboxView(Protocol):
    @property
    def spec(self) -> Spec: ...

    @property
    def clock(self) -> Clock: ...

    # -- endpoints ------------------------------------------------------------------------------

    def gateways(self) -> tuple[str, ...]:
        """Services behind a trustproof gateway, in spec order."""
        ...

    def egress_edges(self) -> tuple[tuple[str, str], ...]:
        """(caller, callee) pairs with an egress proxy, in spec order."""
        ...

    def leeway(self, service: str) -> timedelta:
        """How long after ``exp`` the service's gateway still accepts a token."""
        ...

    # -- certificates ---------------------------------------------------------------------------

    def cert(self, name: str) -> Svid:
        """`name`'s valid SVID for probes (one per run, renewed before half-life)."""
        ...

    def broken_cert(self, kind: CertKind, name: str) -> Svid:
        """`name`'s SVID broken in one way (`kind` "valid" gives `cert(name)`)."""
        ...

    def rotate(self, name: str) -> tuple[Svid, Svid]:
        """Rotate the SVID the workload `name` (its service, gateway, egress) presents now;
        (retired, new)."""
        ...

    def revoke_cert(self, svid: Svid) -> None:
        """Put `svid` on its CA's revocation list (every boundary sees it at once)."""
        ...

    async def presented_serial(self, service: str, *, as_caller: str) -> int | None:
        """The serial of the certificate `service`'s ingress presents on a fresh TLS handshake
        (`as_caller`'s certificate offered); None when the handshake fails."""
        ...

    # -- tokens ---------------------------------------------------------------------------------

    def token(
        self,
        caller: str,
        audience: str,
        *,
        bound: bool,
        fresh: bool = False,
        iat: datetime | None = None,
        nbf: datetime | None = None,
        exp: datetime | None = None,
    ) -> Secret[str]:
        """A valid token for `caller` to call `audience` (bound to `cert(caller)` if asked), with
        the token service's timestamps unless given. The same token each time unless `fresh` or
        timestamps are given (revoke only fresh ones)."""
        ...

    def token_template(self, caller: str, audience: str, *, bound: bool) -> TokenTemplate:
        """The template of `caller`'s valid token for `audience`, to break in one way."""
        ...

    async def revoke_token(self, token: Secret[str], *, as_caller: str) -> int:
        """RFC 7009: revoke `token` at the token service, authenticated by `as_caller`'s
        certificate; the HTTP status of the answer."""
        ...

    def token_kid(self, token: Secret[str]) -> str:
        """The ``kid`` in the token's header (no validation)."""
        ...

    async def attacker_origin(self) -> AttackerOrigin:
        """The attacker's key pair and the loopback URLs serving its JWK Set and certificate
        (``token.jku``/``token.x5u``); started on first use, stopped with the view."""
        ...

    # -- signing keys ---------------------------------------------------------------------------

    def rotate_signing_key(self) -> None: ...

    def prune_signing_keys(self) -> tuple[str, ...]:
        """Drop retired keys no live token needs; the kids dropped."""
        ...

    async def published_kids(self) -> tuple[str, ...]:
        """The ``kid`` of every key in the token service's JWKS (fetched, not read)."""
        ...

    # -- policy and audit -----------------------------------------------------------------------

    def policy(self) -> PolicyEngine:
        """The engine the gateways enforce right now."""
        ...

    def override_policy(self, engine: PolicyEngine) -> AbstractContextManager[None]:
        """Every gateway enforces `engine` inside the block; the previous engines after it,
        whatever happens inside."""
        ...

    def audit_event(self, request_id: str) -> Mapping[str, Any] | None:
        """The gateway's audit event of a request (None when it has none)."""
        ...

    # -- attempts -------------------------------------------------------------------------------

    async def send(self, request: HttpRequest) -> Exchange:
        """Perform one HTTP attempt; never raises for a refusal or a transport failure."""
        ...

    def channel(self) -> AbstractAsyncContextManager[Channel]:
        """A client with at most one kept-alive connection, counting the ones it opens."""
        ...

    async def query(self, request: DbRequest) -> DbAnswer:
        """Perform one datastore attempt (fresh connection, always rolled back)."""
        ...

    async def db_catalog(self, datastore: str, roles: Sequence[str]) -> DbCatalog:
        """What the catalogs of `datastore` say `roles` and PUBLIC hold, and its effective
        ``pg_hba.conf`` and settings (read as the admin; ``cannot-run`` when it cannot be)."""
        ...

    # -- handshake scans ------------------------------------------------------------------------

    async def advertised_cas(self, service: str) -> CaScan:
        """The CA names `service`'s ingress advertises in its TLS 1.2 CertificateRequest (a
        handshake stopped before any certificate is sent); a `TransportFailure` if it cannot
        be read (e.g. a server speaking only TLS 1.3)."""
        ...

    def ca_names(self) -> CaNames:
        """The sandbox's own CA names and the foreign ones the spec declares."""
        ...

    # -- surface --------------------------------------------------------------------------------

    async def listeners(self, service: str) -> tuple[Listener, ...]:
        """Every listening TCP socket and bound UDP socket (IPv4 and IPv6) of the processes the
        sandbox started for `service` and their children; raises `SandboxError` when they
        cannot be read."""
        ...

    # -- what the services themselves tried -----------------------------------------------------

    def egress_events(self) -> tuple[EgressEvent, ...]:
        """Every destination a service's own processes tried and the sandbox stopped, so far:
        connections its namespace's firewall dropped, DNS queries the sandbox resolver refused
        (the egress probes' own attempts left out), counted, by service. Empty on the local
        backend, where nothing is observed."""
        ...
