"""Issuing access tokens: RFC 9068 JWT access tokens signed with ES256.

Every token carries ``iss``, ``sub``, ``aud`` (one audience, as a string), ``exp``, ``iat``,
``nbf``, a random ``jti`` (128 bits) and ``roles``; ``client_id`` when known, and — for a token
bound to the client's certificate (RFC 8705 §3.1) — ``cnf: {"x5t#S256": thumbprint}``. The header
is ``{"alg": "ES256", "typ": "at+jwt", "kid": ...}``.

Timestamps can be chosen (``iat``, ``nbf``, ``exp``) so that expired and not-yet-valid tokens are
minted directly instead of waited for. The issuer tells the key ring each token's expiry, so a
rotated-out key keeps verifying exactly as long as its tokens live.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from trustproof.clock import Clock
from trustproof.scrub import Secret
from trustproof.tokens._jose import freeze, low_s
from trustproof.tokens.keys import ALGORITHM, KeyRing, SigningKey

AT_JWT = "at+jwt"  # the `typ` of a JWT access token, RFC 9068 §2.1
REGISTERED = frozenset(
    {"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "roles", "client_id", "cnf", "scope"}
)
CNF_X5T = "x5t#S256"


@dataclass(frozen=True)
class IssuedToken:
    """A signed token and what it says (read-only claims: arrays as tuples).

    `repr` shows a fingerprint of the token, never the token.
    """

    token: Secret[str]
    jti: str
    claims: Mapping[str, Any]
    expires_at: datetime
    kid: str


def new_jti() -> str:
    """A random token id: 128 bits, URL-safe."""
    return secrets.token_urlsafe(16)


def numeric_date(when: datetime) -> int:
    """A timezone-aware time as an RFC 7519 NumericDate (whole seconds, rounded down)."""
    if when.tzinfo is None:
        raise ValueError("token times must be timezone-aware (use UTC)")
    return int(when.timestamp() // 1)


def sign(claims: Mapping[str, Any], key: SigningKey, *, typ: str = AT_JWT) -> str:
    """Encode and sign `claims` as a compact JWS with `key` (ES256, ``kid`` in the header), the
    signature in low-S form (validators refuse its high-S twin)."""
    return low_s(
        jwt.encode(
            dict(claims),
            key.private_key.reveal(),
            algorithm=ALGORITHM,
            headers={"kid": key.kid, "typ": typ},
        )
    )


class TokenIssuer:
    """Mints access tokens for one issuer (`iss`), signed by the key ring's active key."""

    def __init__(
        self,
        issuer: str,
        keys: KeyRing,
        clock: Clock,
        *,
        default_ttl: timedelta = timedelta(minutes=2),
    ) -> None:
        if not issuer:
            raise ValueError("the issuer identifier cannot be empty")
        if default_ttl <= timedelta(0):
            raise ValueError("default_ttl must be positive")
        self.issuer = issuer
        self.keys = keys
        self.clock = clock
        self.default_ttl = default_ttl

    def issue(
        self,
        subject: str,
        audience: str,
        *,
        roles: Sequence[str] = (),
        cnf_x5t_s256: str | None = None,
        ttl: timedelta | None = None,
        iat: datetime | None = None,
        nbf: datetime | None = None,
        exp: datetime | None = None,
        client_id: str | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> IssuedToken:
        """Mint and sign one token (see `claims_for` for the defaults)."""
        claims = self.claims_for(
            subject,
            audience,
            roles=roles,
            cnf_x5t_s256=cnf_x5t_s256,
            ttl=ttl,
            iat=iat,
            nbf=nbf,
            exp=exp,
            client_id=client_id,
            extra=extra,
        )
        key = self.keys.active
        token = sign(claims, key)
        expires_at = datetime.fromtimestamp(claims["exp"], UTC)
        self.keys.note_issued(key.kid, expires_at)
        return IssuedToken(Secret(token), claims["jti"], freeze(claims), expires_at, key.kid)

    def claims_for(
        self,
        subject: str,
        audience: str,
        *,
        roles: Sequence[str] = (),
        cnf_x5t_s256: str | None = None,
        ttl: timedelta | None = None,
        iat: datetime | None = None,
        nbf: datetime | None = None,
        exp: datetime | None = None,
        client_id: str | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> dict[str, Any]:
        """The claim set `issue` would sign, unsigned (the broken-token factory edits it).

        Defaults: ``iat`` now, ``nbf`` = ``iat``, ``exp`` = ``nbf`` + `ttl` (or `default_ttl`).
        `extra` adds claims but may not replace the ones this method sets.
        """
        if not subject or not isinstance(subject, str):
            raise ValueError("a token needs a subject (non-empty string)")
        if not audience or not isinstance(audience, str):
            raise ValueError("a token needs one audience (non-empty string)")
        if isinstance(roles, str) or not all(isinstance(r, str) for r in roles):
            raise TypeError("roles must be a sequence of strings, not a string")
        ttl = self.default_ttl if ttl is None else ttl
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        issued_at = self.clock.now() if iat is None else iat
        not_before = issued_at if nbf is None else nbf
        expires = not_before + ttl if exp is None else exp
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "exp": numeric_date(expires),
            "iat": numeric_date(issued_at),
            "nbf": numeric_date(not_before),
            "jti": new_jti(),
            "roles": list(roles),
        }
        if client_id is not None:
            claims["client_id"] = client_id
        if cnf_x5t_s256 is not None:
            if not cnf_x5t_s256:
                raise ValueError("cnf_x5t_s256 cannot be empty (pass None for an unbound token)")
            claims["cnf"] = {CNF_X5T: cnf_x5t_s256}
        for name, value in (extra or {}).items():
            if name in REGISTERED:
                raise ValueError(f"extra claim {name!r} would replace a claim the issuer sets")
            claims[name] = value
        return claims

    def __repr__(self) -> str:
        return f"TokenIssuer({self.issuer!r}, active_kid={self.keys.active.kid!r})"
