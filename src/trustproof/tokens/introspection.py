"""Token introspection (RFC 7662 §2.2): the response body for one token, without I/O.

An active token is described with the standard members only — ``active``, ``scope`` (the roles,
space-separated), ``client_id``, ``sub``, ``aud``, ``iss``, ``exp``, ``iat``, ``nbf``, ``jti``,
``token_type`` and, for a certificate-bound token, ``cnf`` (RFC 8705 §3.2). Anything else —
invalid, expired, revoked, unknown, not ours — is ``{"active": false}`` and nothing more, so the
answer leaks nothing about why (RFC 7662 §2.2, §4).

Introspection answers about a token for any audience the issuer serves, so it uses
`TokenValidator.inspect()`; gateways use `validate()`, which always checks the audience.
"""

from __future__ import annotations

from typing import Any

from trustproof.tokens._jose import thaw
from trustproof.tokens.validate import TokenValidator

INACTIVE: dict[str, Any] = {"active": False}
BEARER = "Bearer"  # RFC 8705 §3: certificate-bound tokens are still presented as Bearer
_COPIED = ("client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti")


def introspect(validator: TokenValidator, token: object) -> dict[str, Any]:
    """The RFC 7662 introspection response for `token` (a fresh dict each call)."""
    check = validator.inspect(token)
    if not check.ok:
        return dict(INACTIVE)
    claims = check.claims
    response: dict[str, Any] = {"active": True}
    roles = claims.get("roles", ())
    if roles:
        response["scope"] = " ".join(roles)
    response.update({name: thaw(claims[name]) for name in _COPIED if name in claims})
    response["token_type"] = BEARER
    if "cnf" in claims:
        response["cnf"] = thaw(claims["cnf"])
    return response
