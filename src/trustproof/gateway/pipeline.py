"""The gateway's decision, without I/O: one request in, one `Verdict` out.

Stages, in order; the first refusal ends the request:

1. **tls** — the client certificate, already verified as an X.509-SVID by the server shell; a
   service whose ingress requires one refuses a caller without one.
2. **token** — the bearer token (RFC 6750), validated by the fabric's library: signature by a
   current key, `iss`, `aud` = this service, `exp`/`nbf`, revocation, certificate binding
   (RFC 8705) and subject consistent with the certificate. Workload tokens must be bound.
3. **path** — canonicalisation (`paths.py`); the decision is made on, and the upstream receives,
   the canonical path.
4. **policy** — the route template is matched and the policy engine decides.

Then the verdict carries the request-target and the headers for the upstream: caller-supplied
identity headers and credentials removed, the verified identity added as ``X-Trustproof-*`` and,
when the configuration holds a proof key, ``X-Trustproof-Gateway-Proof`` signed over them at the
real time (`proof.py`), so that the service can refuse whatever did not come through
its gateway.

`Pipeline.decide` never raises: any exception is a refusal at stage ``internal`` (fail closed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import Literal

from trustproof.clock import Clock
from trustproof.gateway.http1 import CONSUMED, end_to_end, origin_form
from trustproof.gateway.paths import BadTarget, CanonicalTarget, RouteTable, canonicalize
from trustproof.gateway.proof import PROOF_HEADER, sign_proof
from trustproof.policy import AccessRequest, PolicyEngine
from trustproof.scrub import Secret, scrubbed_traceback
from trustproof.tokens import TokenValidator

log = logging.getLogger("trustproof.gateway")
Headers = Sequence[tuple[str, str]]
Kind = Literal["workload", "persona"]

# Headers a caller must never be able to set: identity assertions other proxies use, and our own.
IDENTITY_HEADER_PREFIXES = ("x-trustproof-", "x-ssl-client-", "x-auth-request-")
IDENTITY_HEADERS = frozenset(
    {
        "x-forwarded-client-cert",
        "x-client-cert",
        "x-client-verify",
        "x-client-dn",
        "x-forwarded-user",
        "x-forwarded-email",
        "x-forwarded-groups",
        "x-remote-user",
        "x-remote-group",
        "x-user",
        "x-user-id",
        "x-principal",
        "remote-user",
        "x-spiffe-id",
    }
)


@dataclass(frozen=True)
class Peer:
    """What the TLS layer established about the client certificate."""

    spiffe_id: str | None = None  # set when an SVID was presented and verified
    x5t_s256: str | None = None
    refusal: str | None = None  # why a presented certificate was refused (e.g. "revoked")


@dataclass(frozen=True)
class Identity:
    name: str
    kind: Kind
    roles: tuple[str, ...]


@dataclass(frozen=True)
class GatewayConfig:
    service: str
    audience: str  # the service's SPIFFE ID
    client_cert: Literal["required", "optional"]
    token: Literal["required", "optional"]
    routes: RouteTable
    identities: Mapping[str, Identity]  # SPIFFE ID -> who it is
    # Signs X-Trustproof-Gateway-Proof on every forwarded request; None: forward without a proof.
    proof_key: Secret[bytes] | None = None


@dataclass(frozen=True)
class InboundRequest:
    request_id: str
    method: str
    target: str
    headers: Headers = field(repr=False)  # may carry the Authorization header
    source_ip: str
    peer: Peer = field(default_factory=Peer)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    status: int
    stage: str
    reason: str
    detail: str = ""
    principal: Identity | None = None
    token_subject: str | None = None
    canonical: CanonicalTarget | None = None
    route: str | None = None
    policy_ids: tuple[str, ...] = ()
    token_us: float | None = None
    policy_us: float | None = None
    upstream_target: str = ""  # the origin-form request-target sent upstream (allowed only)
    upstream_headers: Headers = ()
    stripped: tuple[str, ...] = ()

    @property
    def error(self) -> str:
        """The RFC 6750 / generic error code for the response body."""
        if self.status == 401:
            return "invalid_token" if self.stage == "token" else "unauthorized"
        return {400: "invalid_request", 403: "access_denied"}.get(self.status, "server_error")


def _micros(start_ns: int) -> float:
    return (time.perf_counter_ns() - start_ns) / 1000


class Pipeline:
    def __init__(
        self,
        config: GatewayConfig,
        validator: TokenValidator,
        engine: PolicyEngine,
        clock: Clock,
        *,
        wall_time: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.validator = validator
        self.engine = engine
        self.clock = clock
        # The gateway proof is checked by the service against its own real clock, so it is
        # stamped with real time — not the injected clock, which lifecycle scenarios move.
        self.wall_time = wall_time

    def decide(self, request: InboundRequest) -> Verdict:
        try:
            return self._decide(request)
        except Exception as exc:  # fail closed; the caller learns nothing of the internals
            log.error(
                "gateway pipeline failed; refusing request %s:\n%s",
                request.request_id,
                scrubbed_traceback(exc),
            )
            return Verdict(
                False,
                500,
                "internal",
                "gateway-error",
                f"internal error; see the gateway log for request {request.request_id}",
            )

    def _decide(self, request: InboundRequest) -> Verdict:
        config, peer = self.config, request.peer
        # What is known so far; every refusal carries it into the audit event. Plain locals
        # (read by `refuse` when it is called): rebuilding a frozen Verdict per stage costs more
        # than the token check itself.
        token_us: float | None = None
        policy_us: float | None = None
        subject: str | None = None
        resolved: Identity | None = None
        canonical: CanonicalTarget | None = None
        route_text: str | None = None
        policy_ids: tuple[str, ...] = ()

        def refuse(status: int, stage: str, reason: str, detail: str) -> Verdict:
            return Verdict(
                False,
                status,
                stage,
                reason,
                detail,
                principal=resolved,
                token_subject=subject,
                canonical=canonical,
                route=route_text,
                policy_ids=policy_ids,
                token_us=token_us,
                policy_us=policy_us,
            )

        # 1. tls
        if peer.refusal is not None:
            return refuse(
                401,
                "tls",
                f"client-cert-{peer.refusal}",
                f"the client certificate was refused: {peer.refusal}",
            )
        if config.client_cert == "required" and peer.spiffe_id is None:
            return refuse(
                401,
                "tls",
                "client-cert-required",
                f"{config.service} requires a client certificate (mutual TLS)",
            )
        peer_identity = config.identities.get(peer.spiffe_id) if peer.spiffe_id else None
        if peer.spiffe_id is not None and peer_identity is None:
            return refuse(
                401,
                "tls",
                "client-cert-unknown-identity",
                f"{peer.spiffe_id} is not an identity of this sandbox",
            )
        # 2. token
        token, problem = _bearer(request.headers)
        if problem:
            return refuse(401, "token", problem, "send one 'Authorization: Bearer' header")
        principal: Identity | None = peer_identity
        token_roles: tuple[str, ...] = ()
        if token is not None:
            start = time.perf_counter_ns()
            check = self.validator.validate(
                token,
                audience=config.audience,
                peer_x5t_s256=peer.x5t_s256,
                peer_spiffe_id=peer.spiffe_id,
            )
            token_us = _micros(start)
            if not check.ok:
                return refuse(401, "token", f"token-{check.reason}", check.detail)
            subject = str(check.claims["sub"])
            principal = config.identities.get(subject)
            if principal is None:
                return refuse(
                    401,
                    "token",
                    "token-unknown-subject",
                    "the token's subject is not an identity of this sandbox",
                )
            if principal.kind == "workload" and not check.claims.get("cnf"):
                return refuse(
                    401,
                    "token",
                    "token-unbound",
                    "workload tokens must be bound to the client certificate",
                )
            token_roles = tuple(str(role) for role in check.claims.get("roles", ()))
        elif config.token == "required":  # noqa: S105 (a setting, not a secret)
            return refuse(
                401, "token", "token-missing", f"{config.service} requires an access token"
            )
        if principal is None:
            return refuse(401, "token", "anonymous", "no client certificate and no token")
        resolved = principal
        # 3. path
        target = canonicalize(request.target)
        if isinstance(target, BadTarget):
            return refuse(400, "path", target.reason, target.detail)
        canonical = target
        # 4. policy
        route = config.routes.match(request.method, canonical.path)
        if route is None:
            offered = config.routes.methods_for(canonical.path)
            if offered:
                return refuse(
                    403,
                    "policy",
                    "method-not-allowed",
                    f"{canonical.path} offers {', '.join(offered)} only",
                )
            return refuse(403, "policy", "no-such-route", "no declared route matches")
        route_text = str(route)
        now = self.clock.now()
        start = time.perf_counter_ns()
        decision = self.engine.decide(
            AccessRequest(
                principal_kind=principal.kind,
                principal=principal.name,
                roles=principal.roles,
                action=route.method,
                service=config.service,
                route=route.path,
                client_cert=peer.spiffe_id is not None,
                source_ip=request.source_ip,
                token_roles=token_roles,
                hour_utc=now.astimezone(UTC).hour,
            )
        )
        policy_us = _micros(start)
        policy_ids = decision.policy_ids
        if not decision.allowed:
            return refuse(403, "policy", decision.reason, "; ".join(decision.errors))
        upstream_target = origin_form(canonical.path, canonical.query)
        headers, stripped = _upstream_headers(request, principal, peer, route.path)
        if config.proof_key is not None:
            proof = sign_proof(
                config.proof_key.reveal(),
                request.method,
                upstream_target,
                headers,
                self.wall_time(),
            )
            headers = (*headers, (PROOF_HEADER, proof))
        return Verdict(
            True,
            200,
            "policy",
            decision.reason,
            principal=principal,
            token_subject=subject,
            canonical=canonical,
            route=route_text,
            policy_ids=policy_ids,
            token_us=token_us,
            policy_us=policy_us,
            upstream_target=upstream_target,
            upstream_headers=headers,
            stripped=stripped,
        )


def _bearer(headers: Headers) -> tuple[str | None, str]:
    """The bearer token, or a problem code when the Authorization headers are unusable."""
    values = [value for name, value in headers if name.lower() == "authorization"]
    if not values:
        return None, ""
    if len(values) > 1:
        return None, "token-ambiguous"
    scheme, _, token = values[0].strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None, "token-wrong-scheme"
    return token.strip(), ""


def _upstream_headers(
    request: InboundRequest, principal: Identity, peer: Peer, route: str
) -> tuple[Headers, tuple[str, ...]]:
    kept: list[tuple[str, str]] = []
    stripped: list[str] = []
    for name, value in request.headers:
        lower = name.lower()
        if lower in IDENTITY_HEADERS or lower.startswith(IDENTITY_HEADER_PREFIXES):
            stripped.append(lower)
        else:
            kept.append((name, value))
    kept = end_to_end(kept, CONSUMED)
    kept += [
        ("X-Trustproof-Request-Id", request.request_id),
        ("X-Trustproof-Principal", principal.name),
        ("X-Trustproof-Principal-Kind", principal.kind),
        ("X-Trustproof-Roles", ",".join(principal.roles)),
        ("X-Trustproof-Route", route),
    ]
    if peer.spiffe_id:
        kept.append(("X-Trustproof-Client-Spiffe-Id", peer.spiffe_id))
    return tuple(kept), tuple(stripped)
