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

Datastores decide from the spec's role grants (`FakeServer.db_*` bend them). The clock is the
view's (a `ManualClock` by default), so nothing here waits.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import unquote

import jwt
from multidict import CIMultiDict

from trustproof.clock import Clock, ManualClock
from trustproof.identity import BrokenMaterial, CertificateAuthority, Svid
from trustproof.identity.foreign import ForeignAuthority, load_foreign_cas, signing_authority
from trustproof.identity.material import common_name
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
from trustproof.tokens.forged import AttackerKeys, AttackerOrigin
from trustproof.view.db_catalog import DbCatalog
from trustproof.view.exchange import (
    BROKEN_CERT_MAKERS,
    AdvertisedCas,
    CaNames,
    CaScan,
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
from trustproof.view.fake_db import FakeServer, decide_db, fake_catalog
from trustproof.view.fake_jwt import flawed_accepts
from trustproof.view.protocol import SandboxView

ISSUER = "https://127.0.0.1:1"  # the fake token service's issuer (nothing listens there)
ATTACKER = "http://127.0.0.1:9"  # the fake attacker's key server (nothing listens; never sent to)
UNRELATED_CA = common_name("Unrelated Corp Root CA", organization="Unrelated Corp")


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
        self._foreign: tuple[ForeignAuthority, ...] | None = None
        self._attacker: AttackerOrigin | None = None

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

    async def presented_serial(self, service: str, *, as_caller: str) -> int | None:
        return (self._current.get(service) or self.cert(service)).serial

    def presented(self, cert: ClientCert) -> Svid:
        """The certificate `cert` names; a foreign CA's signs the caller's SPIFFE ID."""
        if cert.kind != "foreign-ca":
            return self.broken_cert(cert.kind, cert.name)
        key: tuple[CertKind, str] = ("foreign-ca", f"{cert.foreign_ca} {cert.name}")
        if key not in self._certs:
            authority = signing_authority(self._foreign_cas(), cert.foreign_ca)
            material = BrokenMaterial(self.ca, self.clock)
            self._certs[key] = material.foreign_ca(cert.name, *authority)
        return self._certs[key]

    def _foreign_cas(self) -> tuple[ForeignAuthority, ...]:
        if self._foreign is None:
            self._foreign = load_foreign_cas(self.spec)
        return self._foreign

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

    async def attacker_origin(self) -> AttackerOrigin:
        if self._attacker is None:
            keys = AttackerKeys.generate(self.clock)
            self._attacker = AttackerOrigin(keys, f"{ATTACKER}/jwks.json", f"{ATTACKER}/cert.pem")
        return self._attacker

    def attacker_document(self, url: str) -> bytes | None:
        """What a fake server fetching `url` gets: the attacker's documents, nothing else."""
        origin = self._attacker
        if origin is None:
            return None
        documents = {
            origin.jwks_url: origin.keys.jwks_json,
            origin.x5u_url: origin.keys.certificate_pem,
        }
        return documents.get(url)

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
        headers = CIMultiDict({"X-Trustproof-Request-Id": request_id})
        if status == 200:
            headers["X-Served-By"] = request.service
            return HttpAnswer(200, headers, b"{}", f"fake://{request.service}")
        headers["X-Trustproof-Decision"] = "deny"
        body = f'{{"stage": "{stage}", "reason": "{reason}"}}'.encode()
        return HttpAnswer(status, headers, body, f"fake://{request.service}")

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


def decide_http(view: FakeView, request: HttpRequest) -> Exchange:
    """A trustproof gateway's stages, bent by `view.server` (see the module docstring)."""
    arrived = _arrive(view, request)
    if not isinstance(arrived, HttpRequest):
        return arrived
    request = arrived
    who = _authenticate(view, request)  # 1. tls, 2. token
    if not isinstance(who, _Caller):
        return who
    if naive_bypass(view, request, who):  # a naive server's check missed what its handler serves
        return view._answer(request, 200, "", "allowed", who.principal)
    # 3. path
    if request.absolute_form:
        return view._answer(request, 400, "path", "bad-target", who.principal)
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
            return HttpAnswer(401, CIMultiDict({"X-Served-By": request.service}), body, where)
        return HttpAnswer(200, CIMultiDict({"X-Served-By": request.service}), b"{}", where)
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
    if request.tls in ("tls1.0", "tls1.1") and not (
        server.accept_legacy_tls or request.tls in server.accept_tls_versions
    ):
        return TransportFailure("handshake-failed", "alert protocol_version", where)
    if request.tls == "weak-ciphers" and not server.accept_weak_ciphers:
        return TransportFailure("handshake-failed", "alert handshake_failure", where)
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
    peer = view.presented(request.cert)
    if request.cert.kind == "foreign-ca" and server.trust_foreign_cas:
        return peer
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
    token = _read_token(request, server)
    if token is not None:
        result = view.validator.validate(
            token,
            audience=spec.spiffe_id(request.service),
            peer_x5t_s256=peer.x5t_s256 if peer is not None else None,
            peer_spiffe_id=str(peer.spiffe_id) if peer is not None else None,
        )
        if not result.ok and result.reason not in server.ignore_token:
            lenient = _flawed_claims(view, token, request.service, peer)
            if lenient is None:
                return view._answer(request, 401, "token", f"token-{result.reason}")
            result = replace(result, claims=lenient)
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


def _read_token(request: HttpRequest, server: FakeServer) -> str | None:
    """The token as the server reads it: from the Authorization header, or where its flaws
    make it look when no header is sent (the query string, a cookie)."""
    if request.token is None:
        return None
    if request.token_in == "header":  # noqa: S105 (a placement)
        return request.token.reveal()
    if f"token-from-{request.token_in}" in server.token_flaws:
        return request.token.reveal()
    return None


def _flawed_claims(
    view: FakeView, token: str, service: str, peer: Svid | None
) -> Mapping[str, Any] | None:
    """The claims the server's flawed validator (`FakeServer.token_flaws`) takes, if any: its
    one mistake, and otherwise the checks of a careful server (binding, subject, revocation)."""
    flaws = view.server.token_flaws
    if not flaws:
        return None
    claims = flawed_accepts(
        token,
        flaws,
        keys=view.keys,
        issuer=ISSUER,
        audience=view.spec.spiffe_id(service),
        now=view.clock.now().timestamp(),
        fetch=view.attacker_document,
    )
    if claims is None or view.revocations.is_revoked(str(claims.get("jti"))):
        return None
    cnf = claims.get("cnf")
    if isinstance(cnf, Mapping) and (peer is None or cnf.get("x5t#S256") != peer.x5t_s256):
        return None
    subject = str(claims.get("sub", ""))
    if peer is not None and subject.startswith("spiffe://") and subject != str(peer.spiffe_id):
        return None
    return claims


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
    decoded = unquote(path.partition("?")[0])
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


def _route(
    spec: Spec, service: str, method: str, path: str, *, any_case: bool = False
) -> str | None:
    """The route template of `service` matching `method path`."""
    for route in spec.services[service].routes:
        route_method, _, template = str(route).partition(" ")
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if route_method == method and re.match(pattern, path, re.IGNORECASE if any_case else 0):
            return template
    return None


OVERRIDE_METHOD = "X-HTTP-Method-Override"
OVERRIDE_URLS = ("X-Original-URL", "X-Rewrite-URL")


def naive_bypass(view: FakeView, request: HttpRequest, who: _Caller) -> bool:
    """Whether a naive server (`view.server`'s ``check_raw_path``, ``honour_override_headers``,
    ``unchecked_head``, ``unchecked_other_hosts``) serves `request` without its check refusing
    it: its handler finds a route for what it serves, and its check looked at something else."""
    server, spec = view.server, view.spec
    method = "GET" if request.method == "HEAD" else request.method
    served = _route(
        spec,
        request.service,
        method,
        handler_path(request.path),
        any_case=server.case_insensitive_paths,
    )
    if served is None:
        return False
    if server.unchecked_head and request.method == "HEAD":
        return True
    if server.unchecked_other_hosts and request.host != "as-is":
        return True
    if server.check_raw_path and not request.absolute_form:
        raw = _route(spec, request.service, request.method, request.path)
        if raw is None:  # the check's rules name no such path: nothing to refuse
            return True
    if server.check_raw_path and request.absolute_form:
        return True  # "https://..." matches no rule of the check
    if server.honour_override_headers:
        headers = {name.lower(): value for name, value in request.headers}
        checked_method = headers.get(OVERRIDE_METHOD.lower(), request.method)
        checked_path = next(
            (headers[h.lower()] for h in OVERRIDE_URLS if h.lower() in headers), request.path
        )
        if (checked_method, checked_path) != (request.method, request.path):
            route = _route(spec, request.service, checked_method, checked_path)
            if route is not None:
                checked = HttpRequest(request.service, checked_method, checked_path)
                return _decide(view, checked, who, route).allowed
    return False


def handler_path(target: str) -> str:
    """The path a naive handler serves for `target`: scheme and authority, query and fragment
    cut; percent-escapes (``%2f`` too) decoded; ``;params`` dropped; empty, ``.`` and ``..``
    segments resolved; trailing dots of segments dropped."""
    if "://" in target:
        target = "/" + target.split("://", 1)[1].partition("/")[2]
    decoded = unquote(target.partition("#")[0].partition("?")[0])
    segments: list[str] = []
    for part in decoded.split("/"):
        segment = part.partition(";")[0]
        if segment not in ("", ".", ".."):
            segment = segment.rstrip(".")
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    return "/" + "/".join(segments)


def _conforms(view: FakeView) -> SandboxView:
    """Never called: makes mypy hold `FakeView` to the `SandboxView` protocol."""
    return view
