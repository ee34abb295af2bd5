"""The token service's decisions, without sockets: every endpoint is a method from an
authenticated request to a `Reply` (status, JSON body, headers).

Standards followed, endpoint by endpoint:

* discovery — OpenID Connect Discovery 1.0 §3 plus RFC 8414 metadata, advertising
  `tls_client_auth` (RFC 8705 §2.1) and certificate-bound tokens (RFC 8705 §3.3);
* token — RFC 6749 §4.4 client credentials; the client is authenticated by its mTLS certificate
  (RFC 8705 §2.1: the SPIFFE ID is the client id); the target is named with `audience` or
  RFC 8707 `resource`; errors are RFC 6749 §5.2 JSON (`invalid_target` from RFC 8707 §2);
  successful responses carry `Cache-Control: no-store`;
* revocation — RFC 7009: 200 for tokens that are unknown or already invalid, refusal when a client
  revokes a token issued to another client;
* introspection — RFC 7662, `{"active": false}` and nothing else for anything not active. The
  endpoint authorises its callers (§2.1): the sandbox's own components — the admin identity, and
  the workloads, which are the resource servers (a gateway presents its workload's X.509-SVID;
  a service checking revocation itself calls with its own) — may introspect; a persona, or
  any other identity, is refused with 403 `unauthorized_client`. A workload is answered about
  any token, not only those for its audience, as common authorization servers do: answering
  `{"active": false}` for the others would enforce the audience on the service's behalf and
  hide the very bug a `token.wrong-audience` probe is there to find;
* admin — a test-only endpoint that only the sandbox's admin identity may call: it mints persona
  tokens and tokens with chosen timestamps for lifecycle probes.

The server module (`server.py`) owns TLS and HTTP; it verifies the peer certificate and hands a
`Client` (or the reason there is none) to these methods.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from trustproof.clock import Clock
from trustproof.spec.model import Spec
from trustproof.tokens import KeyRing, RevocationList, TokenIssuer, TokenValidator, introspect

ADMIN_NAME = "trustproof-admin"
TOKEN_SERVICE_NAME = "trustproof-token-service"  # noqa: S105 (a SPIFFE name)
CLIENT_CREDENTIALS = "client_credentials"
NO_STORE = MappingProxyType({"Cache-Control": "no-store", "Pragma": "no-cache"})


@dataclass(frozen=True)
class Client:
    """A caller authenticated by its verified X.509-SVID."""

    spiffe_id: str
    x5t_s256: str


@dataclass(frozen=True)
class Reply:
    status: int
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=lambda: NO_STORE)


@dataclass(frozen=True)
class Workload:
    spiffe_id: str
    roles: tuple[str, ...]
    audiences: frozenset[str]


@dataclass(frozen=True)
class Registry:
    """Who exists and what each may ask for, taken from the spec."""

    trust_domain: str
    workloads: Mapping[str, Workload]
    personas: Mapping[str, tuple[str, ...]]
    token_ttl: timedelta

    @classmethod
    def from_spec(cls, spec: Spec) -> Registry:
        td = spec.trust_domain
        workloads = {
            spec.spiffe_id(name): Workload(
                spec.spiffe_id(name),
                tuple(service.roles),
                frozenset(spec.spiffe_id(c) for c in service.calls if c in spec.services),
            )
            for name, service in spec.services.items()
        }
        personas = {spec.spiffe_id(name): tuple(p.roles) for name, p in spec.personas.items()}
        return cls(
            td,
            MappingProxyType(workloads),
            MappingProxyType(personas),
            timedelta(seconds=spec.ttl.token.seconds),
        )

    def spiffe_id(self, name_or_id: str) -> str:
        """`orders` or `spiffe://td/orders` -> `spiffe://td/orders`."""
        if name_or_id.startswith("spiffe://"):
            return name_or_id
        return f"spiffe://{self.trust_domain}/{name_or_id}"

    @property
    def admin_id(self) -> str:
        return self.spiffe_id(ADMIN_NAME)


def oauth_error(status: int, error: str, description: str) -> Reply:
    headers = dict(NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = 'TLS realm="trustproof", error="invalid_client"'
    return Reply(status, {"error": error, "error_description": description}, headers)


class TokenService:
    """The authorization server's logic. All state lives in the objects passed in."""

    def __init__(
        self,
        registry: Registry,
        *,
        keys: KeyRing,
        issuer: TokenIssuer,
        validator: TokenValidator,
        revocations: RevocationList,
        clock: Clock,
    ) -> None:
        self.registry = registry
        self.keys = keys
        self.issuer = issuer
        self.validator = validator
        self.revocations = revocations
        self.clock = clock
        # Each token-endpoint call, recorded by the server (`tokenservice.audited`); None: not
        # recorded. Set by the sandbox to its durable audit log.
        self.audit: Callable[[str, Mapping[str, Any]], None] | None = None

    # -- metadata -------------------------------------------------------------------------------

    def discovery(self) -> Reply:
        base = self.issuer.issuer
        auth = ["tls_client_auth"]
        return Reply(
            200,
            {
                "issuer": base,
                "jwks_uri": f"{base}/jwks.json",
                "token_endpoint": f"{base}/token",
                "revocation_endpoint": f"{base}/revoke",
                "introspection_endpoint": f"{base}/introspect",
                "grant_types_supported": [CLIENT_CREDENTIALS],
                "response_types_supported": ["token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["ES256"],
                "token_endpoint_auth_methods_supported": auth,
                "revocation_endpoint_auth_methods_supported": auth,
                "introspection_endpoint_auth_methods_supported": auth,
                "tls_client_certificate_bound_access_tokens": True,
            },
            {"Cache-Control": "max-age=60"},
        )

    def jwks(self) -> Reply:
        self.keys.prune()
        return Reply(200, self.keys.jwks(), {"Cache-Control": "max-age=30"})

    # -- RFC 6749 §4.4 client credentials -------------------------------------------------------

    def token(self, form: Mapping[str, str], client: Client | None, why_not: str = "") -> Reply:
        if client is None:
            return oauth_error(
                401,
                "invalid_client",
                f"client authentication failed: {why_not or 'no client certificate'}"
                " (this endpoint uses tls_client_auth: present your X.509-SVID)",
            )
        claimed = form.get("client_id")
        if claimed and self.registry.spiffe_id(claimed) != client.spiffe_id:
            return oauth_error(
                401,
                "invalid_client",
                f"client_id {claimed!r} does not match the certificate's SPIFFE ID",
            )
        grant = form.get("grant_type", "")
        if grant != CLIENT_CREDENTIALS:
            return oauth_error(
                400,
                "unsupported_grant_type" if grant else "invalid_request",
                f"grant_type must be {CLIENT_CREDENTIALS!r}, got {grant!r}",
            )
        workload = self.registry.workloads.get(client.spiffe_id)
        if workload is None:
            return oauth_error(
                401, "invalid_client", f"{client.spiffe_id} is not a workload of this sandbox"
            )
        targets = [v for v in (form.get("audience"), form.get("resource")) if v]
        if len(targets) != 1:
            return oauth_error(
                400,
                "invalid_request" if not targets else "invalid_target",
                "name exactly one target with `audience` (or `resource`)",
            )
        audience = self.registry.spiffe_id(targets[0])
        if audience not in workload.audiences:
            return oauth_error(
                400,
                "invalid_target",
                f"{client.spiffe_id} may not call {audience} (not in its `calls`)",
            )
        issued = self.issuer.issue(
            client.spiffe_id,
            audience,
            roles=workload.roles,
            cnf_x5t_s256=client.x5t_s256,
            client_id=client.spiffe_id,
            ttl=self.registry.token_ttl,
        )
        return self._token_reply(issued.token.reveal(), issued.expires_at)

    # -- RFC 7009 revocation ----------------------------------------------------------------------

    def revoke(self, form: Mapping[str, str], client: Client | None, why_not: str = "") -> Reply:
        if client is None:
            return oauth_error(401, "invalid_client", f"client authentication failed: {why_not}")
        token = form.get("token", "")
        if not token:
            return oauth_error(400, "invalid_request", "the `token` parameter is required")
        check = self.validator.inspect(token)
        if not check.claims:  # not ours, malformed, or signed by an unknown key: nothing to do
            return Reply(200, {})
        owner = str(check.claims.get("client_id") or check.claims.get("sub", ""))
        if client.spiffe_id not in (owner, self.registry.admin_id):
            return oauth_error(
                403, "unauthorized_client", "a client may only revoke tokens issued to itself"
            )
        exp = datetime.fromtimestamp(int(check.claims["exp"]), UTC)
        self.revocations.revoke(str(check.claims["jti"]), exp)
        return Reply(200, {})

    # -- RFC 7662 introspection -------------------------------------------------------------------

    def introspect(
        self, form: Mapping[str, str], client: Client | None, why_not: str = ""
    ) -> Reply:
        if client is None:
            return oauth_error(401, "invalid_client", f"client authentication failed: {why_not}")
        if client.spiffe_id != self.registry.admin_id and (
            client.spiffe_id not in self.registry.workloads
        ):
            return oauth_error(
                403,
                "unauthorized_client",
                f"{client.spiffe_id} may not introspect tokens: only the sandbox's resource "
                "servers (its workloads, whose gateways hold their identity) and the admin "
                "identity may (RFC 7662 §2.1)",
            )
        token = form.get("token", "")
        if not token:
            return oauth_error(400, "invalid_request", "the `token` parameter is required")
        return Reply(200, introspect(self.validator, token))

    # -- test-only admin API ----------------------------------------------------------------------

    def mint(self, request: Mapping[str, Any], client: Client | None, why_not: str = "") -> Reply:
        """Mint a token for a persona or workload, optionally with chosen timestamps.

        Body: ``{"subject": NAME, "audience": NAME, "ttl": seconds?, "iat"/"nbf"/"exp": epoch?,
        "roles": [..]?, "cnf_x5t_s256": str?}``. Only the admin identity may call it.
        """
        if client is None:
            return oauth_error(401, "invalid_client", f"client authentication failed: {why_not}")
        if client.spiffe_id != self.registry.admin_id:
            return oauth_error(
                403, "access_denied", f"only {self.registry.admin_id} may use the admin API"
            )
        try:
            subject = self.registry.spiffe_id(_text(request, "subject"))
            audience = self.registry.spiffe_id(_text(request, "audience"))
            iat, nbf, exp = (_epoch(request, key) for key in ("iat", "nbf", "exp"))
            ttl = request.get("ttl")
            if ttl is not None and (
                isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0
            ):
                raise ValueError("`ttl` must be a positive number of seconds")
            roles = request.get("roles")
            if roles is not None and not (
                isinstance(roles, list) and all(isinstance(r, str) for r in roles)
            ):
                raise ValueError("`roles` must be a list of strings")
            cnf = request.get("cnf_x5t_s256")
            if cnf is not None and not isinstance(cnf, str):
                raise ValueError("`cnf_x5t_s256` must be a string")
        except ValueError as exc:
            return oauth_error(400, "invalid_request", str(exc))
        known = self.registry.personas.get(subject)
        if known is None and subject in self.registry.workloads:
            known = self.registry.workloads[subject].roles
        if known is None:
            return oauth_error(400, "invalid_request", f"unknown subject {subject}")
        issued = self.issuer.issue(
            subject,
            audience,
            roles=tuple(roles) if roles is not None else known,
            cnf_x5t_s256=cnf,
            client_id=subject,
            ttl=timedelta(seconds=float(ttl)) if ttl is not None else self.registry.token_ttl,
            iat=iat,
            nbf=nbf,
            exp=exp,
        )
        return self._token_reply(issued.token.reveal(), issued.expires_at, jti=issued.jti)

    # -- helpers ----------------------------------------------------------------------------------

    def _token_reply(self, token: str, expires_at: datetime, **extra: str) -> Reply:
        expires_in = max(0, int((expires_at - self.clock.now()).total_seconds()))
        return Reply(
            200, {"access_token": token, "token_type": "Bearer", "expires_in": expires_in, **extra}
        )


def _text(request: Mapping[str, Any], key: str) -> str:
    value = request.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"`{key}` is required and must be a non-empty string")
    return value


def _epoch(request: Mapping[str, Any], key: str) -> datetime | None:
    value = request.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"`{key}` must be a number of seconds since the epoch")
    return datetime.fromtimestamp(value, UTC)
