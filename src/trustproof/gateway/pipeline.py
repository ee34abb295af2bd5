"""The gateway's decision, without I/O: one request in, one `Verdict` out.

Stages, in order, one function each; the first refusal ends the request:

1. **request** — the request as HTTP (`headers.request_problem`): only HTTP/1.0 and 1.1 request
   lines; no method- or URL-override header.
2. **tls** — the client certificate, already verified as an X.509-SVID by the server shell; a
   service whose ingress requires one refuses a caller without one.
3. **token** — the bearer token (RFC 6750), validated by the fabric's library: signature by a
   current key, `iss`, `aud` = this service, `exp`/`nbf`, revocation, certificate binding
   (RFC 8705) and subject consistent with the certificate. Workload tokens must be bound.
4. **path** — canonicalisation (`paths.py`); the decision is made on, and the upstream receives,
   the canonical path.
5. **policy** — the route template is matched and the policy engine decides.

Stages and reasons are closed vocabularies (`Stage`, `Reason`, in `decision.py` with the other
values): a reason from a library (SVID check, token check, path, policy engine) is mapped onto
one of ours, and one we do not know becomes the stage's generic refusal, never an allow.

Then the verdict carries the request-target and the headers for the upstream: caller-supplied
identity and client-address headers and credentials removed, matched on normalised names
(`headers.relayable`), the client address set by the gateway (``Forwarded``,
``X-Forwarded-For``, ``X-Forwarded-Proto``, ``X-Real-IP``), the verified identity added as
``X-Trustproof-*`` and, when the configuration holds a proof key, ``X-Trustproof-Gateway-Proof``
signed over them at the real time (`proof.py`), so that the service can refuse whatever did not
come through its gateway.

`Pipeline.decide` never raises: any exception is a refusal at stage ``internal`` (fail closed).

The stages' pure functions of the request alone (the HTTP checks, the ``Authorization`` field, the
canonical target, the route, the relayable headers) are computed once per distinct request and
remembered (`prepared.py`); the certificate's verdict, the token's validation and the policy's
answer are established again on every request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC

from trustproof.clock import Clock
from trustproof.gateway.decision import (
    REASONS,
    STAGES,
    GatewayConfig,
    Headers,
    Identity,
    InboundRequest,
    Kind,
    Peer,
    Reason,
    Stage,
    Verdict,
)
from trustproof.gateway.headers import (
    IDENTITY_HEADER_PREFIXES,
    IDENTITY_HEADERS,
    forwarding_headers,
    relayable,
    request_problem,
)
from trustproof.gateway.http1 import CONSUMED, origin_form
from trustproof.gateway.paths import BadTarget, CanonicalTarget, canonicalize
from trustproof.gateway.prepared import Prepared, PreparedCache
from trustproof.gateway.proof import PROOF_HEADER, sign_proof
from trustproof.policy import AccessRequest, Decision, PolicyEngine
from trustproof.scrub import scrubbed_traceback
from trustproof.spec.values import Route
from trustproof.tokens import TokenValidator

__all__ = [
    "IDENTITY_HEADERS",
    "IDENTITY_HEADER_PREFIXES",
    "REASONS",
    "STAGES",
    "GatewayConfig",
    "Headers",
    "Identity",
    "InboundRequest",
    "Kind",
    "Peer",
    "Pipeline",
    "Reason",
    "Stage",
    "Verdict",
]

log = logging.getLogger("trustproof.gateway")
_BY_NAME: Mapping[str, Reason] = {reason: reason for reason in REASONS}


def _reason(text: str, fallback: Reason) -> Reason:
    """`text` if it is one of ours, else `fallback` (a stage's generic refusal)."""
    return _BY_NAME.get(text, fallback)


@dataclass(frozen=True)
class _Refusal:
    status: int
    stage: Stage
    reason: Reason
    detail: str


@dataclass(slots=True)
class _Progress:
    """What one request has established so far; every refusal carries it into the audit event.
    Mutable and per request: rebuilding a frozen Verdict per stage costs more than the token
    check itself."""

    peer_identity: Identity | None = None
    principal: Identity | None = None
    subject: str | None = None
    token_roles: tuple[str, ...] = ()
    token_us: float | None = None
    canonical: CanonicalTarget | None = None
    route: Route | None = None
    decision: Decision | None = None
    policy_us: float | None = None

    def refuse(self, refusal: _Refusal) -> Verdict:
        return Verdict(
            False,
            refusal.status,
            refusal.stage,
            refusal.reason,
            refusal.detail,
            principal=self.principal,
            token_subject=self.subject,
            canonical=self.canonical,
            route=str(self.route) if self.route is not None else None,
            policy_ids=self.decision.policy_ids if self.decision is not None else (),
            token_us=self.token_us,
            policy_us=self.policy_us,
        )


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
        # The request-shape stages' results per distinct request (`prepared.py`); never the
        # token's validity, the certificate's or the policy's answer.
        self.prepared = PreparedCache()

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
        progress = _Progress()
        shape = self.prepared.entry(
            self.config, request.version, request.method, request.target, request.headers
        )
        refusal = (
            _request_stage(request, shape)
            or self._tls_stage(request, progress)
            or self._token_stage(request, progress, shape)
            or _path_stage(request, progress, shape)
            or self._policy_stage(request, progress, shape)
        )
        if refusal is not None:
            return progress.refuse(refusal)
        return self._allow(request, progress, shape)

    # -- stages: each returns a refusal, or None and what it established in `progress` ---------

    def _tls_stage(self, request: InboundRequest, progress: _Progress) -> _Refusal | None:
        config, peer = self.config, request.peer
        if peer.refusal is not None:
            return _Refusal(
                401,
                "tls",
                _reason(f"client-cert-{peer.refusal}", "client-cert-refused"),
                f"the client certificate was refused: {peer.refusal}",
            )
        if peer.spiffe_id is None:
            if config.client_cert == "required":
                return _Refusal(
                    401,
                    "tls",
                    "client-cert-required",
                    f"{config.service} requires a client certificate (mutual TLS)",
                )
            return None
        progress.peer_identity = config.identities.get(peer.spiffe_id)
        if progress.peer_identity is None:
            return _Refusal(
                401,
                "tls",
                "client-cert-unknown-identity",
                f"{peer.spiffe_id} is not an identity of this sandbox",
            )
        return None

    def _token_stage(
        self, request: InboundRequest, progress: _Progress, shape: Prepared
    ) -> _Refusal | None:
        config, peer = self.config, request.peer
        if shape.bearer is None:
            shape.bearer = _bearer(request.headers)
        token, problem = shape.bearer
        if problem:
            return _Refusal(401, "token", problem, "send one 'Authorization: Bearer' header")
        if token is None:
            if config.token == "required":  # noqa: S105 (a setting, not a secret)
                return _Refusal(
                    401, "token", "token-missing", f"{config.service} requires an access token"
                )
            progress.principal = progress.peer_identity
            if progress.principal is None:
                return _Refusal(401, "token", "anonymous", "no client certificate and no token")
            return None
        start = time.perf_counter_ns()
        check = self.validator.validate(
            token,
            audience=config.audience,
            peer_x5t_s256=peer.x5t_s256,
            peer_spiffe_id=peer.spiffe_id,
        )
        progress.token_us = _micros(start)
        if not check.ok:
            return _Refusal(
                401, "token", _reason(f"token-{check.reason}", "token-error"), check.detail
            )
        progress.subject = str(check.claims["sub"])
        principal = config.identities.get(progress.subject)
        if principal is None:
            return _Refusal(
                401,
                "token",
                "token-unknown-subject",
                "the token's subject is not an identity of this sandbox",
            )
        if principal.kind == "workload" and not check.claims.get("cnf"):
            return _Refusal(
                401,
                "token",
                "token-unbound",
                "workload tokens must be bound to the client certificate",
            )
        progress.principal = principal
        progress.token_roles = tuple(str(role) for role in check.claims.get("roles", ()))
        return None

    def _policy_stage(
        self, request: InboundRequest, progress: _Progress, shape: Prepared
    ) -> _Refusal | None:
        config, principal, canonical = self.config, progress.principal, progress.canonical
        if principal is None or canonical is None:  # the stages before establish both
            return _Refusal(500, "internal", "gateway-error", "stage order broken")
        if not shape.route_done:
            shape.route = config.routes.match(request.method, canonical.path)
            shape.route_done = True
        route = shape.route
        if route is None:
            if shape.offered is None:
                shape.offered = config.routes.methods_for(canonical.path)
            offered = shape.offered
            if offered:
                return _Refusal(
                    403,
                    "policy",
                    "method-not-allowed",
                    f"{canonical.path} offers {', '.join(offered)} only",
                )
            return _Refusal(403, "policy", "no-such-route", "no declared route matches")
        progress.route = route
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
                client_cert=request.peer.spiffe_id is not None,
                source_ip=request.source_ip,
                token_roles=progress.token_roles,
                hour_utc=now.astimezone(UTC).hour,
            )
        )
        progress.policy_us = _micros(start)
        progress.decision = decision
        if not decision.allowed:
            return _Refusal(
                403,
                "policy",
                _reason(decision.reason, "no-matching-permit"),
                "; ".join(decision.errors),
            )
        return None

    # -- the allow -----------------------------------------------------------------------------

    def _allow(self, request: InboundRequest, progress: _Progress, shape: Prepared) -> Verdict:
        principal, canonical = progress.principal, progress.canonical
        route, decision = progress.route, progress.decision
        if principal is None or canonical is None or route is None or decision is None:
            raise AssertionError("an allow without every stage's result")  # fail closed
        if shape.upstream_target is None:
            shape.upstream_target = origin_form(canonical.path, canonical.query)
        upstream_target = shape.upstream_target
        if shape.kept is None:
            kept, removed = relayable(request.headers, CONSUMED, self.config.identity_headers)
            shape.kept = (tuple(kept), removed)
        headers, stripped = _upstream_headers(request, principal, route.path, shape.kept)
        if self.config.proof_key is not None:
            proof = sign_proof(
                self.config.proof_key.reveal(),
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
            "allowed-by-policy",
            principal=principal,
            token_subject=progress.subject,
            canonical=canonical,
            route=str(route),
            policy_ids=decision.policy_ids,
            token_us=progress.token_us,
            policy_us=progress.policy_us,
            upstream_target=upstream_target,
            upstream_headers=headers,
            stripped=stripped,
        )


def _request_stage(request: InboundRequest, shape: Prepared) -> _Refusal | None:
    if not shape.problem_done:
        shape.problem = request_problem(request.version, request.headers)
        shape.problem_done = True
    problem = shape.problem
    if problem is None:
        return None
    return _Refusal(400, "request", problem.reason, problem.detail)


def _path_stage(request: InboundRequest, progress: _Progress, shape: Prepared) -> _Refusal | None:
    if shape.target is None:
        shape.target = canonicalize(request.target)
    target = shape.target
    if isinstance(target, BadTarget):
        return _Refusal(400, "path", _reason(target.reason, "bad-path"), target.detail)
    progress.canonical = target
    return None


def _bearer(headers: Headers) -> tuple[str | None, Reason | None]:
    """The bearer token, or a problem code when the Authorization headers are unusable."""
    values = [value for name, value in headers if name.lower() == "authorization"]
    if not values:
        return None, None
    if len(values) > 1:
        return None, "token-ambiguous"
    scheme, _, token = values[0].strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None, "token-wrong-scheme"
    return token.strip(), None


def _upstream_headers(
    request: InboundRequest,
    principal: Identity,
    route: str,
    relayed: tuple[Headers, tuple[str, ...]],
) -> tuple[Headers, tuple[str, ...]]:
    """The relayed caller headers (`headers.relayable`, computed once per request shape), the
    client-address headers and the verified identity."""
    kept, stripped = list(relayed[0]), relayed[1]
    kept += forwarding_headers(request.source_ip, "https")
    kept += [
        ("X-Trustproof-Request-Id", request.request_id),
        ("X-Trustproof-Principal", principal.name),
        ("X-Trustproof-Principal-Kind", principal.kind),
        ("X-Trustproof-Roles", ",".join(principal.roles)),
        ("X-Trustproof-Route", route),
    ]
    if request.peer.spiffe_id:
        kept.append(("X-Trustproof-Client-Spiffe-Id", request.peer.spiffe_id))
    return tuple(kept), stripped
