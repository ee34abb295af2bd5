"""`FakeView`: an in-memory `SandboxView` whose boundaries decide like a configurable server.

    view = FakeView(spec)                                         # well configured: refuses all
    view = FakeView(spec, FakeServer(ignore_token=frozenset({"wrong-audience"})))  # a bug

Like httpx's ``MockTransport``: nothing listens, nothing is sent, yet every attempt is decided by
the same core the real sandbox uses — a CA and `verify_svid` for client certificates, a key ring,
issuer and `TokenValidator` for tokens, a revocation list, the spec's Cedar policies — in the
order a trustproof gateway checks (tls, token, path, policy), answering as it would (401/403/400
JSON with ``X-Trustproof-Decision: deny``, ``X-Served-By`` from the handler, an audit event per
request id). `FakeServer` switches single checks off or bends them, so a probe can be shown a
server it fools (the verdict is an over-permission) and one it does not (a pass); its
``token_flaws`` give the token validator the classic mistakes of the JWT literature
(`trustproof.view.fake_jwt`), and `attacker_origin()` names an attacker key server that is never
contacted (a ``trusts-jku`` fake reads the attacker's documents from memory). A service
with ``gateway: none`` authorizes by its own configuration, which, well configured, allows
exactly the expected matrix.

The view's state — fabric, certificates, tokens, the answer a boundary gives — is
`trustproof.view.fake_state.FakeState`, which `FakeView` extends with the rest of the
`SandboxView` surface. How one HTTP attempt is decided lives in `trustproof.view.fake_http`, the
trust faults in `fake_chaos` and `fake_ca`; datastores decide from the spec's role grants
(`trustproof.view.fake_db`; `FakeServer.db_*` bend them). The clock is the view's (a
`ManualClock` by default), so nothing here waits. What the services themselves tried to reach
(`egress_events`) is whatever `service_egress` says: nothing by default.

``FakeView(spec, backend="isolated")`` stands for the isolated backend: every service's
namespace is closed (TCP and UDP blocked, DNS, the admin API and other roles' logins refused)
unless ``leaks`` opens one attempt — or every attempt of one kind — for a service, with the
result it then gets; ``egress_tried`` records each attempt. On the default ``"local"`` every
egress attempt is an ``error`` ("not isolated").
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from trustproof.identity import Svid
from trustproof.identity.material import common_name
from trustproof.policy.engine import PolicyEngine
from trustproof.scrub import Secret
from trustproof.spec.mock_table import decide
from trustproof.tokens.revocation_time import accepted_at
from trustproof.view import fake_ca, fake_chaos
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
    rss_kib,
)
from trustproof.view.db_catalog import DbCatalog
from trustproof.view.dependency import DependencyAnswer, DependencyCall
from trustproof.view.egress import EgressAttempt, EgressEvent, EgressKind, EgressResult
from trustproof.view.exchange import (
    AdvertisedCas,
    CaNames,
    CaScan,
    DbAnswer,
    DbRequest,
    Exchange,
    HttpRequest,
    Listener,
    TransportFailure,
)
from trustproof.view.fake_db import FakeServer, decide_db, fake_catalog
from trustproof.view.fake_http import decide_http
from trustproof.view.fake_state import FakeState
from trustproof.view.protocol import SandboxView

ATTACKER = "http://127.0.0.1:9"  # the fake attacker's key server (nothing listens; never sent to)
__all__ = ["CLOSED", "FakeServer", "FakeView"]  # FakeServer: where users import it from

UNRELATED_CA = common_name("Unrelated Corp Root CA", organization="Unrelated Corp")


@dataclass
class _Channel:
    view: FakeView
    connections_opened: int = 1

    async def send(self, request: HttpRequest) -> Exchange:
        return await self.view.send(request)


@dataclass
class FakeView(FakeState):
    """An in-memory `SandboxView` (see the module docstring); constructed as `FakeState`."""

    # -- endpoints ------------------------------------------------------------------------------

    def egress_edges(self) -> tuple[tuple[str, str], ...]:
        services = self.spec.services
        return tuple((n, c) for n, s in services.items() for c in s.calls if c in services)

    def leeway(self, service: str) -> timedelta:
        return self.validator.leeway

    # -- signing keys ---------------------------------------------------------------------------

    def rotate_signing_key(self) -> None:
        self.keys.rotate()

    def prune_signing_keys(self) -> tuple[str, ...]:
        return tuple(self.keys.prune())

    async def published_kids(self) -> tuple[str, ...]:
        wrong = self.chaos_state.wrong_keys  # the token service publishing keys it does not hold
        return wrong.kids if wrong is not None else self.keys.kids

    # -- policy and audit -----------------------------------------------------------------------

    def policy(self) -> PolicyEngine:
        return self.engine

    @contextmanager
    def override_policy(self, engine: PolicyEngine) -> Iterator[None]:
        previous, self.engine = self.engine, engine
        try:
            yield
        finally:
            self.engine = previous

    def audit_event(self, request_id: str) -> Mapping[str, Any] | None:
        return self._audit.get(request_id)

    # -- HTTP -----------------------------------------------------------------------------------

    async def send(self, request: HttpRequest) -> Exchange:
        self.sent.append(request)
        linked = await fake_chaos.on_service_link(self, request)  # network-fault, link: service
        return linked or fake_chaos.intercept(self, request) or decide_http(self, request)

    @asynccontextmanager
    async def channel(self) -> AsyncIterator[_Channel]:
        yield _Channel(self)

    # -- datastores -----------------------------------------------------------------------------

    async def query(self, request: DbRequest) -> DbAnswer:
        return decide_db(self.spec, self.server, request)

    async def db_catalog(self, datastore: str, roles: Sequence[str]) -> DbCatalog:
        return fake_catalog(self.spec, self.server, datastore, roles)

    # -- handshake scans ------------------------------------------------------------------------

    async def advertised_cas(self, service: str) -> CaScan:
        where = f"fake://{service}"
        if not self.server.speaks_tls12:
            return TransportFailure("handshake-failed", "alert protocol_version", where)
        names = self.ca_names()
        advertised = dict(names.own)
        if self.server.trust_foreign_cas:
            advertised.update(names.foreign)
        if self.server.advertise_unrelated_ca:
            advertised[UNRELATED_CA.public_bytes()] = UNRELATED_CA.rfc4514_string()
        return AdvertisedCas(tuple(advertised.values()), tuple(advertised), True, where)

    def ca_names(self) -> CaNames:
        own = {c.subject.public_bytes(): c.subject.rfc4514_string() for c in self.ca.bundle}
        foreign = {f.subject_der: f"foreign CA {f.label}" for f in self._foreign_cas()}
        return CaNames(own, foreign)

    # -- surface --------------------------------------------------------------------------------

    async def listeners(self, service: str) -> tuple[Listener, ...]:
        """The service's own port (TLS with ``gateway: none``), plus the server's extras."""
        declared = self.spec.services[service]
        own_tls = declared.ingress.gateway == "none"
        pid = 4000 + list(self.spec.services).index(service)
        found = [Listener(service, declared.port, declared.host, "tcp", pid, service, own_tls)]
        for name, port in sorted(self.server.extra_listeners):
            if name == service:
                found.append(Listener(service, port, "0.0.0.0", "tcp", pid, service, False))  # noqa: S104
        return tuple(found)

    # -- trust faults (`trustproof.view.fake_chaos`) --------------------------------------------

    def token_service_fault(self, fault: IdpFault) -> AbstractAsyncContextManager[None]:
        return fake_chaos.token_service_fault(self, fault)

    def token_path_fault(self, fault: NetFault) -> AbstractAsyncContextManager[None]:
        return fake_chaos.token_path_fault(self, fault)

    async def fetch_token(self, caller: str, audience: str) -> TokenFetch:
        return fake_chaos.fetch_token(self)

    def drop_cached_tokens(self) -> int:
        self.chaos_state.egress_cache_empty = True
        return len(self.egress_edges())

    def compromise_signing_key(self) -> tuple[str, str]:
        self._tokens.clear()
        return fake_chaos.compromise(self)

    def skew_clock(self, service: str, offset: timedelta) -> AbstractContextManager[None]:
        return fake_chaos.skew_clock(self, offset)

    def skew_process_clock(
        self, service: str, offset: timedelta
    ) -> AbstractAsyncContextManager[None]:
        return fake_chaos.skew_process_clock(self, service, offset)

    def jwks_garbage(self, services: tuple[str, ...]) -> AbstractAsyncContextManager[None]:
        return fake_chaos.jwks_garbage(self, services)

    async def revoke_tokens(
        self, tokens: Sequence[Secret[str]], *, as_caller: str, concurrency: int = 16
    ) -> tuple[int, ...]:
        return tuple([await self.revoke_token(token, as_caller=as_caller) for token in tokens])

    def hot_reload(self, replacement: str) -> AbstractAsyncContextManager[PolicyReload]:
        return fake_chaos.hot_reload(self, replacement)

    def policy_with(self, extra: str) -> PolicyEngine:
        return fake_chaos.policy_with(self, extra)

    def audit_sink_fault(self) -> AbstractContextManager[None]:
        return fake_chaos.audit_sink_fault(self)

    def memory_kib(self) -> int:
        return rss_kib()

    # -- external dependencies --------------------------------------------------------------------

    async def dependency_call(self, call: DependencyCall) -> DependencyAnswer:
        """The mock decides by the spec's response table (`spec.mock_table`); the egress proxy
        presents the credentials, a direct call none (unless the mock ignores them)."""
        dependency = self.spec.dependencies[call.dependency]
        mock, credentials = dependency.mock, dependency.credentials
        if dependency.mode != "mock" or mock is None or credentials is None:
            return DependencyAnswer(None, detail=f"{call.dependency} is not mocked")
        if call.through_proxy and call.dependency not in self.spec.services[call.service].calls:
            return DependencyAnswer(None, detail=f"{call.service} has no proxy for it")
        key = "fake-dependency-credentials"
        ignored = self.server.mock_ignores_credentials
        decision = decide(
            call.dependency,
            mock.responses,
            credentials.header,
            call.method,
            call.path,
            presented=(key,) if call.through_proxy or ignored else (),
            expected=Secret(key),
        )
        detail = decision.body[:200].decode("utf-8", "replace")
        return DependencyAnswer(decision.status, call.dependency, detail)

    # -- isolation (egress) ---------------------------------------------------------------------

    def backend_kind(self) -> str:
        return self.backend

    async def egress_attempt(self, service: str, attempt: EgressAttempt) -> EgressResult:
        self.egress_tried.append((service, attempt))
        if self.backend != "isolated" or service not in self.spec.services:
            return EgressResult("error", "not isolated")
        table = self.leaks.get(service, {})
        leaked = table.get(attempt) or table.get(attempt.kind)
        return leaked if leaked is not None else CLOSED[attempt.kind]

    def token_service_address(self) -> tuple[str, int]:
        return "127.0.0.1", 1  # the fake issuer's (`fake_state.ISSUER`)

    def datastore_address(self, datastore: str) -> tuple[str, int]:
        store = self.spec.datastores[datastore]
        port = store.port or 15432 + list(self.spec.datastores).index(datastore)
        return str(store.host), int(port)

    def hub_address(self, service: str) -> str | None:
        if self.backend != "isolated" or service not in self.spec.services:
            return None
        return f"10.77.0.{list(self.spec.services).index(service) + 2}"

    # -- what the services themselves tried -----------------------------------------------------

    def egress_events(self) -> tuple[EgressEvent, ...]:
        return self.service_egress

    def service_path_fault(
        self, links: tuple[tuple[str, str], ...], fault: NetFault
    ) -> AbstractAsyncContextManager[NetPath]:
        return fake_chaos.service_path_fault(self, links, fault)

    # -- third-party trust faults (`trustproof.view.fake_chaos`) -------------------------------

    def jwks_wrong_keys(
        self, services: tuple[str, ...], keys: WrongKeys
    ) -> AbstractAsyncContextManager[None]:
        return fake_chaos.jwks_wrong_keys(self, services, keys)

    def crl_fault(
        self, services: tuple[str, ...], mode: CrlMode
    ) -> AbstractAsyncContextManager[None]:
        return fake_chaos.crl_fault(self, services, mode)

    # -- certificate-authority faults (`trustproof.view.fake_ca`) -------------------------------

    def use_cert(self, name: str, svid: Svid | None) -> None:
        fake_ca.use_cert(self, name, svid)

    def short_lived_cert(self, name: str, ttl: timedelta) -> Svid:
        return fake_ca.short_lived_cert(self, name, ttl)

    async def wait_until(self, when: datetime) -> None:
        await fake_ca.wait_until(self, when)

    def hold_cert(self, name: str, svid: Svid) -> AbstractAsyncContextManager[None]:
        return fake_ca.hold_cert(self, name, svid)

    def root_serials(self) -> tuple[int, ...]:
        return tuple(c.serial_number for c in self.ca.bundle)

    def ca_rotation(self) -> AbstractAsyncContextManager[None]:
        return fake_ca.ca_rotation(self)

    async def add_root(self) -> BundleChange:
        return await fake_ca.add_root(self)

    def newest_root_cert(self, name: str) -> Svid:
        return self.ca.issue_under(self.ca.bundle[-1], name, timedelta(minutes=5))

    async def issue_from_newest_root(self) -> tuple[str, ...]:
        return await fake_ca.issue_from_newest_root(self)

    async def retire_root(self, serial: int) -> BundleChange:
        return await fake_ca.retire_root(self, serial)

    def temporary_intermediate(self) -> AbstractAsyncContextManager[TemporaryCa]:
        return fake_ca.temporary_intermediate(self)

    def issue_under(self, ca: TemporaryCa, name: str) -> Svid:
        return fake_ca.issue_under(self, ca, name)

    async def revoke_intermediate(self, ca: TemporaryCa) -> BundleChange:
        return await fake_ca.revoke_intermediate(self, ca)

    def revocation_time(self, token: Secret[str]) -> datetime | None:
        return accepted_at(self.revocations, token)


# What a closed namespace answers each kind of attempt (the fake's default on "isolated").
CLOSED: Mapping[EgressKind, EgressResult] = {
    "tcp": EgressResult("blocked", "ECONNREFUSED: connection refused (a reject rule)"),
    "udp": EgressResult("blocked", "ECONNREFUSED: connection refused (a reject rule)"),
    "dns": EgressResult("refused", "REFUSED"),
    "http": EgressResult("refused", "HTTP 403 access_denied"),
    "postgres": EgressResult("refused", "28000: certificate authentication failed"),
}


def _conforms(view: FakeView) -> SandboxView:
    """Never called: makes mypy hold `FakeView` to the `SandboxView` protocol."""
    return view
