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

On the isolated backend (`backend_kind`), it also makes egress attempts from inside a service's
network namespace (`egress_attempt`, `trustproof.view.egress`), and names the addresses a
service reaches its peers at (`token_service_address`, `datastore_address`, `hub_address`).
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
from trustproof.view.chaos import (
    BundleChange,
    CrlMode,
    IdpFault,
    NetFault,
    NetPath,
    PolicyReload,
    TemporaryCa,
    TokenFetch,
    WrongKeys,
)
from trustproof.view.db_catalog import DbCatalog
from trustproof.view.dependency import DependencyAnswer, DependencyCall
from trustproof.view.egress import EgressAttempt, EgressEvent, EgressResult
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

    # -- trust faults (issue 15: `trustproof.chaos.experiment`) -------------------------------

    def token_service_fault(self, fault: IdpFault) -> AbstractAsyncContextManager[None]:
        """Inside the block the token service fails as `fault` says (stopped, HTTP 500, slow),
        on its own address; after it, it serves again as before, whatever happened inside."""
        ...

    def token_path_fault(self, fault: NetFault) -> AbstractAsyncContextManager[None]:
        """Inside the block everything reaching the token service (egress proxies, services,
        the view itself) passes a TCP fault proxy on its address (latency, loss, reset), the
        service itself moved behind it; as before after it, whatever happened inside."""
        ...

    async def fetch_token(self, caller: str, audience: str) -> TokenFetch:
        """One client-credentials grant at the token service over mTLS with `caller`'s
        certificate, as an egress proxy asks for a token (what came back, never the token)."""
        ...

    def drop_cached_tokens(self) -> int:
        """Every egress proxy forgets the token it holds, as if it were due for renewal (the
        next call through it asks the token service); how many proxies."""
        ...

    def compromise_signing_key(self) -> tuple[str, str]:
        """Emergency rotation: a fresh key signs from now on and the active one is removed at
        once, without overlap; (the removed kid, the new kid)."""
        ...

    def skew_clock(self, service: str, offset: timedelta) -> AbstractContextManager[None]:
        """Inside the block `service`'s gateway reads the time `offset` away from the sandbox
        clock (certificates, tokens, policy); its own clock after it."""
        ...

    def skew_process_clock(
        self, service: str, offset: timedelta
    ) -> AbstractAsyncContextManager[None]:
        """Inside the block the team's process for `service` runs under libfaketime with its
        clock `offset` away (restarted; `SandboxError` without libfaketime); restarted with the
        real clock after it."""
        ...

    def jwks_garbage(self, services: tuple[str, ...]) -> AbstractAsyncContextManager[None]:
        """Inside the block the key files the `services` read (they validate tokens themselves)
        hold garbage and the services are told (reload); the real files after it, told again."""
        ...

    async def revoke_tokens(
        self, tokens: Sequence[Secret[str]], *, as_caller: str, concurrency: int = 16
    ) -> tuple[int, ...]:
        """RFC 7009 for each of `tokens` (as `revoke_token`), `concurrency` at a time on
        kept-alive connections; the HTTP status of each answer (0: none came)."""
        ...

    def hot_reload(self, replacement: str) -> AbstractAsyncContextManager[PolicyReload]:
        """Offer the gateways' policy hot reload the spec's policies with the first policy
        file's text replaced by `replacement`: the reload keeps the set in force or swaps, and
        records the attempt; inside the block, what it did. After the block the set that was in
        force before is back."""
        ...

    def policy_with(self, extra: str) -> PolicyEngine:
        """An engine enforcing the spec's policies plus the Cedar policies in `extra` (parsed
        and validated against the schema like a policy file; `SpecError` when they are not)."""
        ...

    def audit_sink_fault(self) -> AbstractContextManager[None]:
        """Inside the block every gateway's audit sink refuses to record; restored after."""
        ...

    def memory_kib(self) -> int:
        """Resident memory of the process serving the token service and gateways, in KiB."""

    # -- external dependencies ------------------------------------------------------------------

    async def dependency_call(self, call: DependencyCall) -> DependencyAnswer:
        """Call a mocked dependency through `call.service`'s egress proxy for it, or straight to
        its mock without credentials; never raises for a refusal or a transport failure."""

    # -- isolation (egress) ---------------------------------------------------------------------

    def backend_kind(self) -> str:
        """Where the services run: ``"isolated"`` (each in its own network namespace) or
        ``"local"`` (plain host processes: egress cannot be checked)."""
        ...

    async def egress_attempt(self, service: str, attempt: EgressAttempt) -> EgressResult:
        """Try `attempt` from inside `service`'s network namespace; an ``error`` result ("not
        isolated") when the service has none. Never raises for a refusal or a drop."""
        ...

    def token_service_address(self) -> tuple[str, int]:
        """The token service's (IP address, port) as a service reaches it."""
        ...

    def datastore_address(self, datastore: str) -> tuple[str, int]:
        """`datastore`'s (IP address, port) as a service reaches it."""
        ...

    def hub_address(self, service: str) -> str | None:
        """`service`'s address on the sandbox-private network (the hub), None without one."""

    # -- what the services themselves tried -----------------------------------------------------

    def egress_events(self) -> tuple[EgressEvent, ...]:
        """Every destination a service's own processes tried and the sandbox stopped, so far:
        connections its namespace's firewall dropped, DNS queries the sandbox resolver refused
        (the egress probes' own attempts left out), counted, by service. Empty on the local
        backend, where nothing is observed."""
        ...

    # -- network faults on service-to-service links (issue 15: ``link: service``) ---------------

    def service_path_fault(
        self, links: tuple[tuple[str, str], ...], fault: NetFault
    ) -> AbstractAsyncContextManager[NetPath]:
        """Inside the block, each (caller, callee) link is degraded between the caller's egress
        proxy and the callee's gateway (latency, connection loss, resets); restored after. What
        it yields says which mechanism did it (a TCP fault proxy on loopback; on the isolated
        backend ``tc netem``, or nftables and a relay in the caller's namespace)."""
        ...

    # -- third-party trust faults (`trustproof.chaos.faults_thirdparty`) ----------------------

    def jwks_wrong_keys(
        self, services: tuple[str, ...], keys: WrongKeys
    ) -> AbstractAsyncContextManager[None]:
        """Inside the block the token service publishes `keys` (well-formed keys it does not
        hold) at its JWKS address, and the key files the `services` read hold them too (the
        services told: reload); the real keys after it, the services told again. The gateways
        hold the signing keys in memory: they are not affected."""
        ...

    def crl_fault(
        self, services: tuple[str, ...], mode: CrlMode
    ) -> AbstractAsyncContextManager[None]:
        """Inside the block the CRL file the `services` read is stale (`mode` ``stale``: signed
        by the CA, listing what is revoked, its nextUpdate passed) or removed (``missing``), and
        the services are told (reload); the real CRL after it, told again."""
        ...

    # -- certificate-authority faults (`trustproof.chaos.faults_ca`) ---------------------------

    def use_cert(self, name: str, svid: Svid | None) -> None:
        """Present `svid` as `name`'s valid certificate from now on (tokens the view mints are
        bound to it); None forgets it: the next attempt presents a fresh one from the issuing
        root."""
        ...

    def short_lived_cert(self, name: str, ttl: timedelta) -> Svid:
        """A valid SVID for `name` from the issuing root whose validity ends on the first whole
        second at least `ttl` from now (X.509 times have second precision)."""
        ...

    async def wait_until(self, when: datetime) -> None:
        """Return once the sandbox's clock is past `when` (the fake moves its manual clock)."""
        ...

    def hold_cert(self, name: str, svid: Svid) -> AbstractAsyncContextManager[None]:
        """Inside the block `name` presents `svid` everywhere — its egress proxies and the
        view — and nothing renews it; `name`'s current SVID is presented again after."""
        ...

    def root_serials(self) -> tuple[int, ...]:
        """The serials of the roots every trust bundle holds, oldest first."""
        ...

    def ca_rotation(self) -> AbstractAsyncContextManager[None]:
        """Root rotation happens inside (`add_root`, `issue_from_newest_root`, `retire_root`);
        on exit, whatever happened, every bundle is published again, every SVID not from the
        issuing root reissued, and the view presents fresh certificates."""
        ...

    async def add_root(self) -> BundleChange:
        """A new root, trusted in every bundle (gateways, egress proxies, the token service,
        datastores, every service's files, with a reload), that issues nothing yet."""
        ...

    def newest_root_cert(self, name: str) -> Svid:
        """A valid SVID for `name` under the newest root, even one that issues nothing yet (to
        test who trusts it); not presented until `use_cert` says so."""
        ...

    async def issue_from_newest_root(self) -> tuple[str, ...]:
        """The newest root issues from now on; every SVID (workloads, gateways, the token
        service, datastores) is reissued from it now. The names reissued."""
        ...

    async def retire_root(self, serial: int) -> BundleChange:
        """Remove the root `serial` from every bundle (its leaves are refused from now on)."""
        ...

    def temporary_intermediate(self) -> AbstractAsyncContextManager[TemporaryCa]:
        """Inside the block a temporary root with an intermediate CA under it is trusted in
        every bundle (and has its CRLs in every CRL file); removed from all after."""
        ...

    def issue_under(self, ca: TemporaryCa, name: str) -> Svid:
        """A valid SVID for `name` signed by the temporary intermediate (and sent with it)."""
        ...

    async def revoke_intermediate(self, ca: TemporaryCa) -> BundleChange:
        """Put the temporary intermediate on its root's CRL, rewrite every CRL file and tell
        the services that reload."""
        ...

    def revocation_time(self, token: Secret[str]) -> datetime | None:
        """When the token service accepted the revocation of `token`, on its own clock (the one
        the gateways stamp their audit events' ``time`` with); None when it holds none."""
        ...
