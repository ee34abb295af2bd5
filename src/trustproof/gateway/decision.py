"""The values the gateway's pipeline decides with and on: who may call (`GatewayConfig`,
`Identity`), what arrived (`InboundRequest`, `Peer`), what was decided (`Verdict`), and the closed
vocabularies of its stages and reasons (`Stage`, `Reason`). No logic beyond the values'."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

from trustproof.gateway.paths import CanonicalTarget, RouteTable
from trustproof.scrub import Secret

Headers = Sequence[tuple[str, str]]
Kind = Literal["workload", "persona"]
Stage = Literal["request", "tls", "token", "path", "policy", "internal"]
Reason = Literal[
    # request
    "http-version",
    "method-override",
    "url-override",
    # tls
    "client-cert-required",
    "client-cert-unknown-identity",
    "client-cert-malformed",
    "client-cert-untrusted",
    "client-cert-expired",
    "client-cert-not-yet-valid",
    "client-cert-missing-client-auth",
    "client-cert-no-spiffe-id",
    "client-cert-multiple-spiffe-ids",
    "client-cert-wrong-trust-domain",
    "client-cert-revoked",
    "client-cert-weak-key",
    "client-cert-ca-certificate",
    "client-cert-weak-signature",
    "client-cert-refused",
    # token
    "token-missing",
    "token-ambiguous",
    "token-wrong-scheme",
    "token-malformed",
    "token-alg-not-allowed",
    "token-wrong-type",
    "token-unknown-kid",
    "token-bad-signature",
    "token-missing-claim",
    "token-wrong-issuer",
    "token-wrong-audience",
    "token-expired",
    "token-not-yet-valid",
    "token-issued-in-future",
    "token-revoked",
    "token-cnf-mismatch",
    "token-unbound",
    "token-subject-mismatch",
    "token-error",
    "token-unknown-subject",
    "anonymous",
    # path
    "bad-target",
    "bad-path",
    # policy
    "method-not-allowed",
    "no-such-route",
    "allowed-by-policy",
    "no-matching-permit",
    "forbidden-by-policy",
    "policy-error",
    "engine-error",
    # internal
    "gateway-error",
]
STAGES: tuple[Stage, ...] = get_args(Stage)
REASONS: tuple[Reason, ...] = get_args(Reason)


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
    # The spec's own identity headers (normalised names), stripped like the built-in ones.
    identity_headers: frozenset[str] = frozenset()


@dataclass(frozen=True)
class InboundRequest:
    request_id: str
    method: str
    target: str
    headers: Headers = field(repr=False)  # may carry the Authorization header
    source_ip: str
    peer: Peer = field(default_factory=Peer)
    version: tuple[int, int] = (1, 1)  # from the request line; (0, 9) when it named none


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    status: int
    stage: Stage
    reason: Reason
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
