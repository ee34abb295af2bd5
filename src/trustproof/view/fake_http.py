"""How the fake server decides one HTTP attempt (`FakeView.send`): where it arrives (gateway,
service port, egress proxy), the peer certificate, the token as the server reads it (with the
`FakeServer`'s flaws), the path and route, the policy — and the naive servers' bypasses. Split
from `trustproof.view.fake`, which keeps the view itself; no sockets, like the rest of the fake.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC
from typing import Any, Literal
from urllib.parse import unquote

from multidict import CIMultiDict

from trustproof.identity import Svid
from trustproof.identity.verify import verify_svid
from trustproof.policy.engine import AccessRequest, Decision
from trustproof.spec.model import Spec
from trustproof.view.exchange import (
    ClientCert,
    Exchange,
    HttpAnswer,
    HttpRequest,
    TransportFailure,
)
from trustproof.view.fake_ca import cert_flaw_accepts
from trustproof.view.fake_db import FakeServer
from trustproof.view.fake_jwt import flawed_accepts
from trustproof.view.fake_state import ISSUER, FakeState


def decide_http(view: FakeState, request: HttpRequest) -> Exchange:
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


def _arrive(view: FakeState, request: HttpRequest) -> Exchange | HttpRequest:
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


def _peer(view: FakeState, request: HttpRequest) -> Exchange | Svid | None:
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
        chains=view.chains,
    )
    if (
        not check.ok
        and check.reason not in server.ignore_cert
        and not cert_flaw_accepts(view, peer, check.reason)
    ):
        return view._answer(request, 401, "tls", f"client-cert-{check.reason}")
    return peer


def _authenticate(view: FakeState, request: HttpRequest) -> Exchange | _Caller:
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
    view: FakeState, token: str, service: str, peer: Svid | None
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


def _honoured_principal(view: FakeState, request: HttpRequest) -> str:
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


def _decide(view: FakeState, request: HttpRequest, who: _Caller, route: str) -> Decision:
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


def naive_bypass(view: FakeState, request: HttpRequest, who: _Caller) -> bool:
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
