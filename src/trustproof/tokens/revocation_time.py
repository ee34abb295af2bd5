"""When a token's revocation was accepted: the `RevocationList` entry of the token's ``jti``.

The views (real and fake) answer `revocation_time` with this, so that the revocation storm can
time propagation from the token service's own acceptance rather than from when its client read
the answer.
"""

from __future__ import annotations

from datetime import datetime

import jwt

from trustproof.scrub import Secret
from trustproof.tokens.revocation import RevocationList


def accepted_at(revocations: RevocationList, token: Secret[str]) -> datetime | None:
    """`revoked_at` of `token`'s entry in `revocations`; None when it has none (or `token` is
    not a JWT with a ``jti``). The signature is not checked: only the list's own entry counts."""
    try:
        claims = jwt.decode(token.reveal(), options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    jti = claims.get("jti") if isinstance(claims, dict) else None
    if not isinstance(jti, str) or jti not in revocations:
        return None
    for event in reversed(revocations.events()):  # the storm asks about the newest ones
        if event.jti == jti:
            return event.revoked_at
    return None
