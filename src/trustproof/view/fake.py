"""`FakeView`: an in-memory `SandboxView` whose boundaries decide like a configurable server.

    view = FakeView(spec)                                         # well configured: refuses all
    view = FakeView(spec, FakeServer(ignore_token=frozenset({"wrong-audience"})))  # a bug

Like httpx's ``MockTransport``: nothing listens, nothing is sent, yet every attempt is decided by
the same core the real sandbox uses — a CA and `verify_svid` for client certificates, a key ring,
issuer and `TokenValidator` for tokens, a revocation list, the spec's Cedar policies — in the
order a trustproof gateway checks (tls, token, path, policy), answering as it would (401/403/400
JSON with ``X-Trustproof-Decision: deny``, ``X-Served-By`` from the handler, an audit event per
request id). `FakeServer` switches single checks off or bends them, so a probe can be shown a
server it fools (the verdict is an over-permission) and one it does not (a pass). A service
with ``gateway: none`` authorizes by its own configuration, which, well configured, allows
exactly the expected matrix.

Datastores decide from the spec's role grants (`FakeServer.db_*` bend them). The clock is the
view's (a `ManualClock` by default), so nothing here waits.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import unquote

import jwt

from trustproof.clock import Clock, ManualClock
from trustproof.identity import BrokenMaterial, CertificateAuthority, Svid
from trustproof.identity.verify import verify_svid
from trustproof.plan import expected_matrix
from trustproof.policy.cedar import CedarPolicyEngine
from trustproof.policy.engine import AccessRequest, Decision, PolicyEngine, StaticPolicyEngine
from trustproof.scrub import Secret
from trustproof.spec.model import Spec
from trustproof.tokens import (
    BrokenTokens,
    KeyRing,
    RevocationList,
    TokenIssuer,
    TokenTemplate,
    TokenValidator,
)
from trustproof.view.exchange import (
    BROKEN_CERT_MAKERS,
    CertKind,
    ClientCert,
    DbAnswer,
    DbRequest,
    Exchange,
    HttpAnswer,
    HttpRequest,
    Listener,
    TransportFailure,
)
from trustproof.view.fake_db import FakeServer, decide_db
from trustproof.view.protocol import SandboxView

ISSUER = "https://127.0.0.1:1"  # the fake token service's issuer (nothing listens there)


@dataclass
class _Channel:
    view: FakeView
    connections_opened: int = 1

    async def send(self, request: HttpRequest) -> Exchange:
        return await self.view.send(request)


@dataclass
class FakeView:
    spec: Spec
    server: FakeServer = field(default_factory=FakeServer)
    clock: Clock = field(default_factory=lambda: ManualClock(datetime(2030, 1, 1, 12, tzinfo=UTC)))
    sent: list[HttpRequest] = field(default_factory=list)  # every request, in order

    def __post_init__(self) -> None:
        self.ca = CertificateAuthority(self.spec.trust_domain, self.clock)
        self.keys = KeyRing(self.clock)
        self.issuer = TokenIssuer(ISSUER, self.keys, self.clock)
        self.revocations = RevocationList(self.clock)
        self.validator = TokenValidator(ISSUER, self.keys, self.revocations, self.clock)
        # Gateways enforce the spec's Cedar policies; a service terminating mTLS itself enforces
        # its own configuration, which, well configured, allows exactly the expected matrix.
        self.engine: PolicyEngine = CedarPolicyEngine.from_spec(self.spec)
        self.own_config: PolicyEngine = StaticPolicyEngine.from_matrix(expected_matrix(self.spec))
        self._certs: dict[tuple[CertKind, str], Svid] = {}
        self._current: dict[str, Svid] = {}
        self._tokens: dict[tuple[str, str, bool], Secret[str]] = {}
        self._audit: dict[str, dict[str, Any]] = {}

    # -- endpoints ------------------------------------------------------------------------------

    def gateways(self) -> tuple[str, ...]:
        return tuple(n for n, s in self.spec.services.items() if s.ingress.gateway != "none")

    def egress_edges(self) -> tuple[tuple[str, str], ...]:
        return tuple((n, c) for n, s in self.spec.services.items() for c in s.calls)

    def leeway(self, service: str) -> timedelta:
        return self.validator.leeway

    # -- certificates ---------------------------------------------------------------------------

    def cert(self, name: str) -> Svid:
        return self.broken_cert("valid", name)

    def broken_cert(self, kind: CertKind, name: str) -> Svid:
        if (kind, name) not in self._certs:
            if kind == "valid":
                svid = self.ca.issue(name, timedelta(minutes=5))
            else:
                svid = getattr(BrokenMaterial(self.ca, self.clock), BROKEN_CERT_MAKERS[kind])(name)
            self._certs[(kind, name)] = svid
        return self._certs[(kind, name)]

    def rotate(self, name: str) -> tuple[Svid, Svid]:
        retired = self._current.get(name) or self.cert(name)
        self._current[name] = self.ca.issue(name, timedelta(minutes=5))
        return retired, self._current[name]

    def revoke_cert(self, svid: Svid) -> None:
        self.ca.revoke(svid)

    # -- tokens ---------------------------------------------------------------------------------

    def _roles(self, name: str) -> tuple[str, ...]:
        who = self.spec.personas.get(name) or self.spec.services.get(name)
        return tuple(who.roles) if who is not None else ()

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
        key = (caller, audience, bound)
        timed = iat is not None or nbf is not None or exp is not None
        if fresh or timed or key not in self._tokens:
            issued = self.issuer.issue(
                self.spec.spiffe_id(caller),
                self.spec.spiffe_id(audience),
                roles=self._roles(caller),
                client_id=self.spec.spiffe_id(caller),
                cnf_x5t_s256=self.cert(caller).x5t_s256 if bound else None,
                iat=iat,
                nbf=nbf,
                exp=exp,
            )
            if fresh or timed:
                return issued.token
            self._tokens[key] = issued.token
        return self._tokens[key]

    def token_template(self, caller: str, audience: str, *, bound: bool) -> TokenTemplate:
        return BrokenTokens(self.issuer, self.keys, self.clock).template(
            self.spec.spiffe_id(caller),
            self.spec.spiffe_id(audience),
            roles=self._roles(caller),
            cnf_x5t_s256=self.cert(caller).x5t_s256 if bound else None,
        )

    async def revoke_token(self, token: Secret[str], *, as_caller: str) -> int:
        check = self.validator.inspect(token.reveal())
        if not check.claims:
            return 200  # RFC 7009: unknown tokens are fine
        if check.claims.get("client_id") != self.spec.spiffe_id(as_caller):
            return 403
        expires = datetime.fromtimestamp(int(check.claims["exp"]), UTC)
        self.revocations.revoke(str(check.claims["jti"]), expires)
        return 200

    def token_kid(self, token: Secret[str]) -> str:
        return str(jwt.get_unverified_header(token.reveal()).get("kid", ""))

    # -- signing keys ---------------------------------------------------------------------------

    def rotate_signing_key(self) -> None:
        self.keys.rotate()

    def prune_signing_keys(self) -> tuple[str, ...]:
        return tuple(self.keys.prune())

    async def published_kids(self) -> tuple[str, ...]:
        return self.keys.kids

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
        return decide_http(self, request)

    @asynccontextmanager
    async def channel(self) -> AsyncIterator[_Channel]:
        yield _Channel(self)

    def _answer(
        self, request: HttpRequest, status: int, stage: str, reason: str, principal: str = ""
    ) -> HttpAnswer:
        request_id = f"fake-{len(self._audit) + 1}"
        event = {"request_id": request_id, "stage": stage, "reason": reason}
        self._audit[request_id] = {**event, "principal": principal}
        headers = {"X-Trustproof-Request-Id": request_id}
        if status == 200:
            headers["X-Served-By"] = request.service
            return HttpAnswer(200, headers, b"{}", f"fake://{request.service}")
        headers["X-Trustproof-Decision"] = "deny"
        body = f'{{"stage": "{stage}", "reason": "{reason}"}}'.encode()
        return HttpAnswer(status, headers, body, f"fake://{request.service}")

    # -- datastores -----------------------------------------------------------------------------

    async def query(self, request: DbRequest) -> DbAnswer:
        return decide_db(self.spec, self.server, request)

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


def decide_http(view: FakeView, request: HttpRequest) -> Exchange:
    """A trustproof gateway's stages, bent by `view.server` (see the module docstring)."""
    arrived = _arrive(view, request)
    if not isinstance(arrived, HttpRequest):
        return arrived
    request = arrived
    who = _authenticate(view, request)  # 1. tls, 2. token
    if not isinstance(who, _Caller):
        return who
    # 3. path
    path = _canonical(request.path, view.server)
    if path is None:
        return view._answer(request, 400, "path", "ambiguous-path", who.principal)
    route = _route(view.spec, request.service, request.method, path)
    if route is None:
        return view._answer(request, 403, "policy", "no-such-route", who.principal)
    # 4. policy
    if view.server.enforce_policy:
        decision = _decide(view, request, who, route)
        if not decision.allowed:
            return view._answer(request, 403, "policy", decision.reason, who.principal)
    return view._answer(request, 200, "", "allowed", who.principal)


@dataclass(frozen=True)
class _Caller:
    principal: str
    token_roles: tuple[str, ...]
    with_cert: bool


def _arrive(view: FakeView, request: HttpRequest) -> Exchange | HttpRequest:
    """The door and the transport: a direct call to the service, the caller's egress proxy
    (which presents its valid credentials), plaintext or legacy TLS."""
    server = view.server
    where = f"fake://{request.service}"
    if request.door == "direct":
        if server.direct_port_checks_proof:
            body = b'{"error": "not from the gateway", "reason": "no-gateway-proof"}'
            return HttpAnswer(401, {"X-Served-By": request.service}, body, where)
        return HttpAnswer(200, {"X-Served-By": request.service}, b"{}", where)
    if request.door == "egress":
        token = view.token(request.caller, request.service, bound=True)
        request = HttpRequest(
            request.service, request.method, request.path, cert=ClientCert(request.caller),
            token=token, headers=request.headers, body=request.body,
        )  # fmt: skip
    if request.tls == "plaintext" and not server.accept_plaintext:
        return TransportFailure("connection-closed", "plain HTTP to a TLS port", where)
    if request.tls == "legacy" and not server.accept_legacy_tls:
        return TransportFailure("handshake-failed", "alert protocol_version", where)
    return request


def _peer(view: FakeView, request: HttpRequest) -> Exchange | Svid | None:
    """Stage 1, tls: the verified client certificate, None without one, or the refusal."""
    server, spec = view.server, view.spec
    if request.cert is None:
        if spec.services[request.service].ingress.client_cert == "required" and (
            server.require_client_cert
        ):
            return view._answer(request, 401, "tls", "client-cert-required")
        return None
    peer = view.broken_cert(request.cert.kind, request.cert.name)
    check = verify_svid(
        peer.certificate,
        peer.intermediates,
        bundle=view.ca.bundle,
        trust_domain=spec.trust_domain,
        now=view.clock.now(),
        revoked=view.ca.is_revoked,
    )
    if not check.ok and check.reason not in server.ignore_cert:
        return view._answer(request, 401, "tls", f"client-cert-{check.reason}")
    return peer


def _authenticate(view: FakeView, request: HttpRequest) -> Exchange | _Caller:
    """Stages 1 and 2: who calls, from the certificate, then the token (or forged headers on a
    server that trusts them)."""
    server, spec = view.server, view.spec
    peer = _peer(view, request)
    if peer is not None and not isinstance(peer, Svid):
        return peer
    principal = peer.spiffe_id.name if peer is not None else ""
    token_roles: tuple[str, ...] = ()
    if request.token is not None:
        result = view.validator.validate(
            request.token.reveal(),
            audience=spec.spiffe_id(request.service),
            peer_x5t_s256=peer.x5t_s256 if peer is not None else None,
            peer_spiffe_id=str(peer.spiffe_id) if peer is not None else None,
        )
        if not result.ok and result.reason not in server.ignore_token:
            return view._answer(request, 401, "token", f"token-{result.reason}")
        subject = str(result.claims.get("sub", ""))
        principal = subject.rsplit("/", 1)[-1] if subject else principal
        token_roles = tuple(str(r) for r in result.claims.get("roles", ()))
    elif spec.services[request.service].ingress.token == "required" and server.require_token:  # noqa: S105 (a setting)
        return view._answer(request, 401, "token", "token-missing")
    headers = dict(request.headers)
    if server.trust_identity_headers and "X-Trustproof-Principal" in headers:
        principal = headers["X-Trustproof-Principal"]
    principal = _honoured_principal(view, request) or principal
    if not principal:
        return view._answer(request, 401, "token", "anonymous")
    return _Caller(principal, token_roles, peer is not None)


def _honoured_principal(view: FakeView, request: HttpRequest) -> str:
    """The caller a service honouring `FakeServer.honoured_identity_header` takes from it, if
    the header reaches it (a gateway in front strips it unless bent) and names a caller."""
    server, spec = view.server, view.spec
    wanted = server.honoured_identity_header.lower().replace("_", "-")
    if not wanted:
        return ""
    if request.service in view.gateways() and server.gateway_strips_identity_headers:
        return ""
    values = [v for n, v in request.headers if n.lower().replace("_", "-") == wanted]
    if not values:
        return ""
    text = unquote(values[0]).rpartition("URI=")[2]  # Envoy's XFCC names the client in URI=
    named = [c for c in spec.callers if c in text or spec.spiffe_id(c) in text]
    return max(named, key=len, default="")


def _decide(view: FakeView, request: HttpRequest, who: _Caller, route: str) -> Decision:
    """Stage 4: the gateway's policy, or the service's own configuration without a gateway."""
    spec = view.spec
    kind: Literal["workload", "persona"] = (
        "workload" if who.principal in spec.services else "persona"
    )
    enforced = view.engine if request.service in view.gateways() else view.own_config
    return enforced.decide(
        AccessRequest(
            principal_kind=kind,
            principal=who.principal,
            roles=view._roles(who.principal),
            action=request.method,
            service=request.service,
            route=route,
            client_cert=who.with_cert,
            source_ip="127.0.0.1",
            token_roles=who.token_roles,
            hour_utc=view.clock.now().astimezone(UTC).hour,
        )
    )


def _canonical(path: str, server: FakeServer) -> str | None:
    """The path the decision is made on; None for an ambiguous one (refused)."""
    if "%2f" in path.lower() and not server.decode_encoded_slash:
        return None
    decoded = unquote(path)
    segments: list[str] = []
    for segment in decoded.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    canonical = "/" + "/".join(segments)
    return canonical.lower() if server.case_insensitive_paths else canonical


def _route(spec: Spec, service: str, method: str, path: str) -> str | None:
    """The route template of `service` matching `method path`."""
    for route in spec.services[service].routes:
        route_method, _, template = str(route).partition(" ")
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if route_method == method and re.match(pattern, path):
            return template
    return None


def _conforms(view: FakeView) -> SandboxView:
    """Never called: makes mypy hold `FakeView` to the `SandboxView` protocol."""
    return view
