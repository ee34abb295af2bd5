"""Access tokens, without I/O: signing keys and their rotation, issuing, validation, revocation,
introspection, and deliberately broken tokens for probes.

The pieces and how they fit (DESIGN.md §4):

* `KeyRing` holds the active `SigningKey` and the retired keys still verifying; it publishes the
  JWK Set (RFC 7517) and is the `KeySource` a validator in the same process reads.
* `TokenIssuer.issue()` mints an `IssuedToken`: an RFC 9068 JWT access token signed with ES256,
  optionally bound to a client certificate (RFC 8705 ``cnf.x5t#S256``).
* `TokenValidator.validate()` is the gateways' one call: a `TokenCheck` with a stable reason code
  (`REASONS`), never an exception. `inspect()` is the audience-free variant behind `introspect()`
  (RFC 7662) and the revocation endpoint.
* `RevocationList` pushes each revocation (RFC 7009) to its subscribers at once; a gateway keeps a
  mirror with `follow()`.
* `BrokenTokens.template(sub, aud, ...)` is an immutable `TokenTemplate`; each of its methods
  (`.expired()`, `.alg_none()`, `.make(kind)`, ...) mints it with one thing wrong, with the reason
  it must be refused for; `.valid()` is the passing twin.

Time comes from an injected `trustproof.clock.Clock`; tokens and keys are wrapped in
`trustproof.scrub.Secret`, so no `repr` shows them. The servers around these (token service,
gateways) live in their own packages and own every socket.
"""

from __future__ import annotations

from trustproof.tokens.broken import (
    BROKEN_KINDS,
    BrokenKind,
    BrokenToken,
    BrokenTokens,
    TokenTemplate,
)
from trustproof.tokens.introspection import introspect
from trustproof.tokens.issuer import IssuedToken, TokenIssuer
from trustproof.tokens.keys import KeyRing, SigningKey
from trustproof.tokens.revocation import RevocationEvent, RevocationList
from trustproof.tokens.validate import (
    MAX_TOKEN_LENGTH,
    REASONS,
    REQUIRED_CLAIMS,
    KeySource,
    Reason,
    TokenCheck,
    TokenValidator,
)

__all__ = [
    "BROKEN_KINDS",
    "MAX_TOKEN_LENGTH",
    "REASONS",
    "REQUIRED_CLAIMS",
    "BrokenKind",
    "BrokenToken",
    "BrokenTokens",
    "IssuedToken",
    "KeyRing",
    "KeySource",
    "Reason",
    "RevocationEvent",
    "RevocationList",
    "SigningKey",
    "TokenCheck",
    "TokenIssuer",
    "TokenTemplate",
    "TokenValidator",
    "introspect",
]
