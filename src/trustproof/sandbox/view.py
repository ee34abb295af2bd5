"""`LiveView`: the `SandboxView` of a running `Sandbox` — the adapter exercisers drive it through.

    async with LiveView.open(sandbox) as view:
        request = HttpRequest("orders", "GET", "/orders", cert=ClientCert("storefront"))
        answer = await view.send(request)

It owns the HTTP clients (a fresh connection per attempt where the handshake matters, kept-alive
ones elsewhere, pooled per presented identity; requests marked `exact` — path and request tricks
— written byte-exact by `trustproof.sandbox.rawhttp` instead, as aiohttp would normalise them, and
the other kept-alive requests on the same connections where aiohttp would send them unchanged:
`rawpool.writable_as_is`),
caches what probes present many times (client certificates, TLS contexts, valid tokens), and is
the one place that touches sandbox internals: the policy swap of `override_policy()` and the
leeway read of `leeway()` are here and nowhere else. The certificates and tokens it mints are in
`trustproof.sandbox.view_material`, the trust faults in `view_faults`, datastore attempts in
`view_db`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import (
    asynccontextmanager,
    contextmanager,
)
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Self
from urllib.parse import urlsplit

import aiohttp
from cryptography import x509

from trustproof.clock import Clock
from trustproof.errors import SandboxError
from trustproof.fabric import TrustFabric
from trustproof.identity import Svid
from trustproof.identity.foreign import ForeignAuthority
from trustproof.policy.engine import PolicyEngine
from trustproof.policy.reload import ReloadablePolicyEngine
from trustproof.sandbox import surface
from trustproof.sandbox.attacker import AttackerServer
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.dependency_view import call_dependency
from trustproof.sandbox.http_client import (
    OFFERS_ONLY,
    STALE_CONNECTION,
    TIMEOUT_S,
    BoundedIdleConnector,
    aiohttp_exchange,
    offer_only,
)
from trustproof.sandbox.rawhttp import host_header
from trustproof.sandbox.rawpool import RawPool, raw_target, writable_as_is
from trustproof.sandbox.tlsscan import advertised_cas
from trustproof.sandbox.view_db import DatastoreClient
from trustproof.sandbox.view_egress import EgressClient
from trustproof.sandbox.view_faults import TrustFaults
from trustproof.sandbox.view_material import Material
from trustproof.scrub import Secret
from trustproof.spec.model import Spec
from trustproof.tls import client_context, load_svid
from trustproof.tokens.forged import AttackerOrigin
from trustproof.view import (
    CaNames,
    CaScan,
    CertKind,
    ClientCert,
    DbAnswer,
    DbRequest,
    Exchange,
    HttpRequest,
    Listener,
    TlsOffer,
    TransportFailure,
)
from trustproof.view.db_catalog import DbCatalog
from trustproof.view.dependency import DependencyAnswer, DependencyCall
from trustproof.view.egress import EgressAttempt, EgressEvent, EgressResult
from trustproof.view.exchange import placed_token

WEAK_MATERIAL: frozenset[CertKind] = frozenset({"weak-key", "sha1-signature"})


@dataclass
class _Channel:
    view: LiveView
    session: aiohttp.ClientSession
    _opened: list[int]  # [connections opened], counted by the session's trace

    @property
    def connections_opened(self) -> int:
        return self._opened[0]

    async def send(self, request: HttpRequest) -> Exchange:
        return await self.view._send_on(self.session, request)


@dataclass
class LiveView(TrustFaults, Material):
    sandbox: Sandbox
    fresh_session: aiohttp.ClientSession  # a new connection (and TLS handshake) per attempt
    pooled: aiohttp.ClientSession  # kept-alive connections, one pool per presented identity
    _certs: dict[tuple[CertKind, str], Svid] = field(default_factory=dict)
    _contexts: dict[tuple[ClientCert | None, TlsOffer], ssl.SSLContext] = field(
        default_factory=dict
    )
    _tokens: dict[tuple[str, str, bool], Secret[str]] = field(default_factory=dict, repr=False)
    _foreign_certs: dict[tuple[str, str], Svid] = field(default_factory=dict)
    _foreign: tuple[ForeignAuthority, ...] | None = None
    _db: DatastoreClient | None = None
    _attacker: AttackerServer | None = None
    _egress: EgressClient | None = None
    _raw: RawPool = field(default_factory=RawPool)  # kept-alive connections of exact requests

    @classmethod
    @asynccontextmanager
    async def open(cls, sandbox: Sandbox) -> AsyncIterator[Self]:
        if sandbox.fabric is None:
            raise SandboxError("the sandbox is not running", "start it first (`trustproof up`)")
        fresh = aiohttp.TCPConnector(force_close=True, limit=0)
        # aiohttp keys pooled connections by TLS context, and contexts are cached per identity:
        # a connection is only ever reused by the identity that made it. At most 3 per identity
        # and boundary: a few kept-alive connections beat a handshake per concurrent case
        # (measured on the shop: 255 -> 370 cases/s). Idle ones for at most 16 identity and
        # boundary pairs at a time (`BoundedIdleConnector`: a large spec's peak memory).
        pooled = BoundedIdleConnector(limit=64, limit_per_host=3, keepalive_timeout=30)
        view = cls(
            sandbox,
            aiohttp.ClientSession(connector=fresh, auto_decompress=False),
            aiohttp.ClientSession(connector=pooled, auto_decompress=False),
        )
        try:
            yield view
        finally:
            await view.fresh_session.close()
            await view.pooled.close()
            await view._raw.close()
            if view._attacker is not None:
                await view._attacker.stop()

    # -- what the sandbox is --------------------------------------------------------------------

    @property
    def spec(self) -> Spec:
        return self.sandbox.spec

    @property
    def clock(self) -> Clock:
        return self.sandbox.clock

    @property
    def fabric(self) -> TrustFabric:
        fabric = self.sandbox.fabric
        if fabric is None:
            raise SandboxError("the sandbox is not running")
        return fabric

    def gateways(self) -> tuple[str, ...]:
        return tuple(self.sandbox.gateways)

    def egress_edges(self) -> tuple[tuple[str, str], ...]:
        return tuple(self.sandbox.egress)

    def leeway(self, service: str) -> timedelta:
        return self.sandbox.gateways[service].pipeline.validator.leeway

    # -- certificates and tokens (minted and cached in `trustproof.sandbox.view_material`) ---------

    async def presented_serial(self, service: str, *, as_caller: str) -> int | None:
        url = urlsplit(self.sandbox.endpoints[service].url)
        context = self._context(ClientCert(as_caller), "modern")
        try:
            async with asyncio.timeout(TIMEOUT_S):
                _, writer = await asyncio.open_connection(url.hostname, url.port, ssl=context)
        except (OSError, ssl.SSLError, TimeoutError):
            return None
        try:
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                async with asyncio.timeout(TIMEOUT_S):
                    await writer.wait_closed()
        return x509.load_der_x509_certificate(der).serial_number if der else None

    async def revoke_token(self, token: Secret[str], *, as_caller: str) -> int:
        context = self._context(ClientCert(as_caller), "modern")
        url = f"{self.fabric.url}/revoke"
        async with self.fresh_session.post(
            url, data={"token": token.reveal()}, ssl=context
        ) as response:
            await response.read()
            return response.status

    async def attacker_origin(self) -> AttackerOrigin:
        # The attacker's key server (`trustproof.sandbox.attacker`), started on first use.
        if self._attacker is None:
            self._attacker = AttackerServer.for_clock(self.clock)
        return await self._attacker.start()

    # -- signing keys ---------------------------------------------------------------------------

    def rotate_signing_key(self) -> None:
        self.fabric.keys.rotate()

    def prune_signing_keys(self) -> tuple[str, ...]:
        return tuple(self.fabric.keys.prune())

    async def published_kids(self) -> tuple[str, ...]:
        url = f"{self.fabric.url}/jwks.json"
        async with self.fresh_session.get(url, ssl=self._context(None, "modern")) as response:
            body = await response.json()
        keys = body.get("keys", []) if isinstance(body, dict) else []
        return tuple(str(key.get("kid")) for key in keys if isinstance(key, dict))

    # -- policy and audit -----------------------------------------------------------------------

    def policy(self) -> PolicyEngine:
        gateways = list(self.sandbox.gateways.values())
        if not gateways:
            raise SandboxError("no gateway runs in this sandbox: no policy is enforced")
        engine = gateways[0].pipeline.engine
        # The hot-reload holder (`policy.reload`): the policy in force is the one it holds now.
        return engine.current if isinstance(engine, ReloadablePolicyEngine) else engine

    @contextmanager
    def override_policy(self, engine: PolicyEngine) -> Iterator[None]:
        # The one place the enforced policy is swapped: every gateway gets `engine` for the block,
        # then its own engine back — the reload holder, which kept reloading meanwhile.
        previous = {name: g.pipeline.engine for name, g in self.sandbox.gateways.items()}
        try:
            for gateway in self.sandbox.gateways.values():
                gateway.pipeline.engine = engine
            yield
        finally:
            for name, gateway in self.sandbox.gateways.items():
                gateway.pipeline.engine = previous[name]

    def audit_event(self, request_id: str) -> Mapping[str, Any] | None:
        event = self.sandbox.audit.get(request_id)
        return event.to_json() if event is not None else None

    # -- attempts -------------------------------------------------------------------------------

    async def send(self, request: HttpRequest) -> Exchange:
        if request.fresh:
            answer = await self._send_on(self.fresh_session, request)
            if isinstance(answer, TransportFailure) and answer.kind == "client-error":
                # our client failed mid-answer (a worker replaced by a reload): nothing learned
                return await self._send_on(self.fresh_session, request)
            return answer
        answer = await self._send_on(self.pooled, request)
        if isinstance(answer, TransportFailure) and answer.kind in STALE_CONNECTION:
            # A kept-alive connection the server closed meanwhile (gunicorn's sync workers,
            # keep-alive timeouts) says nothing about this request — read as a refusal it could
            # pass a case the server would have failed: once more, on a fresh connection.
            return await self._send_on(self.fresh_session, request)
        return answer

    @asynccontextmanager
    async def channel(self) -> AsyncIterator[_Channel]:
        opened = [0]

        async def on_connection(*_: object) -> None:
            opened[0] += 1

        trace = aiohttp.TraceConfig()
        trace.on_connection_create_end.append(on_connection)  # before the session freezes it
        connector = aiohttp.TCPConnector(limit=1, keepalive_timeout=30)
        async with aiohttp.ClientSession(
            connector=connector, trace_configs=[trace], auto_decompress=False
        ) as session:
            yield _Channel(self, session, opened)

    async def query(self, request: DbRequest) -> DbAnswer:
        if self._db is None:
            self._db = DatastoreClient(self.sandbox)
        return await self._db.query(request)

    async def db_catalog(self, datastore: str, roles: Sequence[str]) -> DbCatalog:
        if self._db is None:
            self._db = DatastoreClient(self.sandbox)
        return await self._db.catalog(datastore, roles)

    async def listeners(self, service: str) -> tuple[Listener, ...]:
        roots = {name: handle.pid for name, handle in self.sandbox.handles.items()}
        inside = {ns.inode(): ns.connect for ns in self.sandbox.namespaces.values()}
        return await surface.listeners(roots, service, connectors=inside)

    # -- external dependencies ------------------------------------------------------------------

    async def dependency_call(self, call: DependencyCall) -> DependencyAnswer:
        return await call_dependency(self.sandbox.dependencies, call)

    # -- what the services themselves tried: `trustproof.sandbox.egress_events` ----------------

    def egress_events(self) -> tuple[EgressEvent, ...]:
        ledger = self.sandbox.egress_ledger
        return () if ledger is None else ledger.events()

    # -- HTTP -----------------------------------------------------------------------------------

    def _base_url(self, request: HttpRequest) -> str:
        endpoint = self.sandbox.endpoints[request.service]
        if request.door == "direct":
            return endpoint.direct_url
        if request.door == "egress":
            return self.sandbox.egress[(request.caller, request.service)].url
        if request.tls == "plaintext":
            return endpoint.url.replace("https://", "http://", 1)
        return endpoint.url

    def _context(self, cert: ClientCert | None, tls: TlsOffer) -> ssl.SSLContext:
        key = (cert, tls)
        if key not in self._contexts:
            context = client_context(self.fabric.ca.bundle_pem())
            offer_only(context, tls)
            if cert is not None:
                if cert.kind in WEAK_MATERIAL and tls not in OFFERS_ONLY:
                    # OpenSSL would not even load it at its default security level
                    context.set_ciphers("DEFAULT:@SECLEVEL=0")
                load_svid(context, self._presented(cert))
            self._contexts[key] = context
        return self._contexts[key]

    # -- handshake scans ------------------------------------------------------------------------

    async def advertised_cas(self, service: str) -> CaScan:
        where = urlsplit(self.sandbox.endpoints[service].url)
        return await advertised_cas(where.hostname or "127.0.0.1", where.port or 443)

    def ca_names(self) -> CaNames:
        ca = self.fabric.ca
        own = {c.subject.public_bytes(): f"sandbox CA {c.subject.rfc4514_string()}"
               for c in (*ca.bundle, *ca.intermediates)}  # fmt: skip
        foreign = {f.subject_der: f"foreign CA {f.label}" for f in self._foreign_cas()}
        return CaNames(own, foreign)

    async def _send_on(self, session: aiohttp.ClientSession, request: HttpRequest) -> Exchange:
        if request.exact:  # byte-exact: aiohttp/yarl would normalise the path
            return await self._send_exact(request)
        base = self._base_url(request)
        plain = request.door != "ingress" or request.tls == "plaintext"
        context: ssl.SSLContext | bool = (
            False if plain else self._context(request.cert, request.tls)
        )
        target, carried = placed_token(request)  # Authorization, query or cookie
        headers = [*request.headers, *carried]
        if session is self.pooled and writable_as_is(request.method, target, headers):
            # the kept-alive connections the exact requests use (`RawPool`): one connection per
            # identity and server serves both, and the raw client costs less per request
            plain_or_tls = None if isinstance(context, bool) else context
            where = raw_target(base, plain_or_tls, TIMEOUT_S)
            host = host_header("as-is", where.host, where.port)
            return await self._raw.send(where, request.method, target, host, headers, request.body)

        return await aiohttp_exchange(
            session,
            request.method,
            base=base,
            target=target,
            headers=headers,
            body=request.body,
            context=context,
        )

    async def _send_exact(self, request: HttpRequest) -> Exchange:
        """`request` written byte-exact by `trustproof.sandbox.rawhttp` (a kept-alive connection
        unless `fresh`, or the request touches the connection: `trustproof.sandbox.rawpool`)."""
        plain = request.door != "ingress" or request.tls == "plaintext"
        context = None if plain else self._context(request.cert, request.tls)
        where = raw_target(self._base_url(request), context, TIMEOUT_S)
        headers = list(request.headers)
        if request.token is not None:
            headers.append(("Authorization", f"Bearer {request.token.reveal()}"))
        target = f"{where.url}{request.path}" if request.absolute_form else request.path
        return await self._raw.send(
            where,
            request.method,
            target,
            host_header(request.host, where.host, where.port),
            headers,
            request.body,
            fresh=request.fresh,
        )

    # -- isolation (egress): `trustproof.sandbox.view_egress` -----------------------------------

    @property
    def _egress_client(self) -> EgressClient:
        if self._egress is None:
            self._egress = EgressClient(self.sandbox, self.cert)
        return self._egress

    def backend_kind(self) -> str:
        return self._egress_client.backend_kind()

    async def egress_attempt(self, service: str, attempt: EgressAttempt) -> EgressResult:
        return await self._egress_client.attempt(service, attempt)

    def token_service_address(self) -> tuple[str, int]:
        return self._egress_client.token_service_address()

    def datastore_address(self, datastore: str) -> tuple[str, int]:
        return self._egress_client.datastore_address(datastore)

    def hub_address(self, service: str) -> str | None:
        return self._egress_client.hub_address(service)
