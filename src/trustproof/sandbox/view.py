"""`LiveView`: the `SandboxView` of a running `Sandbox` — the adapter exercisers drive it through.

    async with LiveView.open(sandbox) as view:
        request = HttpRequest("orders", "GET", "/orders", cert=ClientCert("storefront"))
        answer = await view.send(request)

It owns the HTTP clients (a fresh connection per attempt where the handshake matters, kept-alive
ones elsewhere, pooled per presented identity), caches what probes present many times (client
certificates, TLS contexts, valid tokens), and is the one place that touches sandbox internals:
the policy swap of `override_policy()` and the leeway read of `leeway()` are here and nowhere
else. Datastore attempts are in
`trustproof.sandbox.view_db`.
"""

from __future__ import annotations

import asyncio
import ssl
import warnings
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Self

import aiohttp
import jwt

from trustproof.clock import Clock
from trustproof.errors import SandboxError
from trustproof.fabric import TrustFabric
from trustproof.identity import BrokenMaterial, Svid
from trustproof.policy.engine import PolicyEngine
from trustproof.policy.reload import ReloadablePolicyEngine
from trustproof.sandbox import surface
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.view_db import DatastoreClient
from trustproof.scrub import Secret, scrub
from trustproof.spec.model import Spec
from trustproof.tls import client_context
from trustproof.tokens import BrokenTokens, TokenTemplate
from trustproof.view import (
    BROKEN_CERT_MAKERS,
    CertKind,
    ClientCert,
    DbAnswer,
    DbRequest,
    Exchange,
    HttpAnswer,
    HttpRequest,
    Listener,
    TlsOffer,
    TransportFailure,
)

TIMEOUT_S = 10.0


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
class LiveView:
    sandbox: Sandbox
    fresh_session: aiohttp.ClientSession  # a new connection (and TLS handshake) per attempt
    pooled: aiohttp.ClientSession  # kept-alive connections, one pool per presented identity
    _certs: dict[tuple[CertKind, str], Svid] = field(default_factory=dict)
    _contexts: dict[tuple[ClientCert | None, TlsOffer], ssl.SSLContext] = field(
        default_factory=dict
    )
    _tokens: dict[tuple[str, str, bool], Secret[str]] = field(default_factory=dict, repr=False)
    _db: DatastoreClient | None = None

    @classmethod
    @asynccontextmanager
    async def open(cls, sandbox: Sandbox) -> AsyncIterator[Self]:
        if sandbox.fabric is None:
            raise SandboxError("the sandbox is not running", "start it first (`trustproof up`)")
        fresh = aiohttp.TCPConnector(force_close=True, limit=0)
        # aiohttp keys pooled connections by TLS context, and contexts are cached per identity:
        # a connection is only ever reused by the identity that made it. At most 3 per identity
        # and boundary: a few kept-alive connections beat a handshake per concurrent case
        # (measured on the shop: 255 -> 370 cases/s).
        pooled = aiohttp.TCPConnector(limit=64, limit_per_host=3, keepalive_timeout=30)
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

    # -- certificates ---------------------------------------------------------------------------

    def cert(self, name: str) -> Svid:
        return self.broken_cert("valid", name)

    def broken_cert(self, kind: CertKind, name: str) -> Svid:
        key = (kind, name)
        if key not in self._certs:
            if kind == "valid":
                self._certs[key] = self.fabric.issue(name)
            else:
                material = BrokenMaterial(self.fabric.ca, self.clock)
                self._certs[key] = getattr(material, BROKEN_CERT_MAKERS[kind])(name)
        return self._certs[key]

    def rotate(self, name: str) -> tuple[Svid, Svid]:
        rotator = self.sandbox.rotators[name]
        retired = rotator.current
        return retired, rotator.rotate()

    def revoke_cert(self, svid: Svid) -> None:
        self.fabric.ca.revoke(svid)

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
        thumb = self.cert(caller).x5t_s256 if bound else None
        if iat or nbf or exp:
            timed = self.fabric.token_for(
                caller, audience, cnf_x5t_s256=thumb, iat=iat, nbf=nbf, exp=exp
            )
            return timed.token
        key = (caller, audience, bound)
        if fresh or key not in self._tokens:
            made = Secret(self.sandbox.token(caller, audience, cnf_x5t_s256=thumb))
            if fresh:
                return made
            self._tokens[key] = made
        return self._tokens[key]

    def token_template(self, caller: str, audience: str, *, bound: bool) -> TokenTemplate:
        fabric, spec = self.fabric, self.spec
        broken = BrokenTokens(fabric.issuer, fabric.keys, self.clock)
        return broken.template(
            spec.spiffe_id(caller),
            spec.spiffe_id(audience),
            roles=_roles(spec, caller),
            cnf_x5t_s256=self.cert(caller).x5t_s256 if bound else None,
        )

    async def revoke_token(self, token: Secret[str], *, as_caller: str) -> int:
        context = self._context(ClientCert(as_caller), "modern")
        url = f"{self.fabric.url}/revoke"
        async with self.fresh_session.post(
            url, data={"token": token.reveal()}, ssl=context
        ) as response:
            await response.read()
            return response.status

    def token_kid(self, token: Secret[str]) -> str:
        return str(jwt.get_unverified_header(token.reveal()).get("kid", ""))

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
        return await self._send_on(self.fresh_session if request.fresh else self.pooled, request)

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

    async def listeners(self, service: str) -> tuple[Listener, ...]:
        roots = {name: handle.pid for name, handle in self.sandbox.handles.items()}
        return await surface.listeners(roots, service)

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
            svid = self.broken_cert(cert.kind, cert.name) if cert is not None else None
            context = client_context(self.fabric.ca.bundle_pem(), svid)
            if tls == "legacy":
                with warnings.catch_warnings():  # offering deprecated versions is the point
                    warnings.simplefilter("ignore", DeprecationWarning)
                    context.minimum_version = ssl.TLSVersion.TLSv1
                    context.maximum_version = ssl.TLSVersion.TLSv1_1
                context.set_ciphers("DEFAULT:@SECLEVEL=0")
            self._contexts[key] = context
        return self._contexts[key]

    async def _send_on(self, session: aiohttp.ClientSession, request: HttpRequest) -> Exchange:
        base = self._base_url(request)
        plain = request.door != "ingress" or request.tls == "plaintext"
        context: ssl.SSLContext | bool = (
            False if plain else self._context(request.cert, request.tls)
        )
        headers = list(request.headers)
        if request.token is not None:
            headers.append(("Authorization", f"Bearer {request.token.reveal()}"))

        def failed(kind: Any, exc: BaseException) -> TransportFailure:
            return TransportFailure(kind, scrub(f"{type(exc).__name__}: {exc}")[:300], base)

        try:
            async with (
                asyncio.timeout(TIMEOUT_S),
                session.request(
                    request.method,
                    base + request.path,
                    headers=headers,
                    data=request.body,
                    ssl=context,
                    allow_redirects=False,
                ) as response,
            ):
                body = await response.read()
                # case-insensitive, as HTTP field names are (RFC 9110 §5.1)
                return HttpAnswer(response.status, response.headers, body, base)
        except aiohttp.ClientConnectorCertificateError as exc:
            return failed("server-cert-refused", exc)
        except (aiohttp.ClientSSLError, ssl.SSLError) as exc:
            return failed("handshake-failed", exc)
        except aiohttp.ServerDisconnectedError as exc:
            return failed("connection-closed", exc)
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, ssl.SSLError | ConnectionResetError):
                return failed("connection-failed", exc)
            return failed("connection-refused", exc)
        except (aiohttp.ClientOSError, ConnectionResetError) as exc:
            return failed("connection-reset", exc)
        except TimeoutError as exc:
            return failed("timeout", exc)
        except aiohttp.ClientError as exc:
            return failed("client-error", exc)


def _roles(spec: Spec, name: str) -> tuple[str, ...]:
    who = spec.personas.get(name) or spec.services.get(name)
    return tuple(who.roles) if who is not None else ()
