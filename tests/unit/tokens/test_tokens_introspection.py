"""RFC 7662 responses: the standard members for an active token, `{"active": false}` otherwise."""

from __future__ import annotations

import json
from datetime import timedelta

from tokens_support import AUDIENCE, ISSUER, OTHER_WORKLOAD, PEER_X5T, SUBJECT

from trustproof.clock import ManualClock
from trustproof.tokens import (
    BrokenTokens,
    KeyRing,
    RevocationList,
    TokenIssuer,
    TokenValidator,
    introspect,
)

INACTIVE = {"active": False}


def test_active_token_is_described_with_standard_members(
    validator: TokenValidator, issuer: TokenIssuer
) -> None:
    issued = issuer.issue(
        SUBJECT, AUDIENCE, roles=["reader", "writer"], cnf_x5t_s256=PEER_X5T, client_id=SUBJECT
    )
    claims = issued.claims
    response = introspect(validator, issued.token.reveal())
    assert response == {
        "active": True,
        "scope": "reader writer",
        "client_id": SUBJECT,
        "sub": SUBJECT,
        "aud": AUDIENCE,
        "iss": ISSUER,
        "exp": claims["exp"],
        "iat": claims["iat"],
        "nbf": claims["nbf"],
        "jti": issued.jti,
        "token_type": "Bearer",
        "cnf": {"x5t#S256": PEER_X5T},
    }
    json.dumps(response)  # plain JSON, ready to send


def test_optional_members_are_left_out(validator: TokenValidator, issuer: TokenIssuer) -> None:
    response = introspect(validator, issuer.issue(SUBJECT, AUDIENCE).token.reveal())
    assert response["active"] is True
    assert not {"scope", "client_id", "cnf"} & set(response)


def test_any_audience_of_the_issuer_is_active(
    validator: TokenValidator, issuer: TokenIssuer
) -> None:
    response = introspect(validator, issuer.issue(SUBJECT, OTHER_WORKLOAD).token.reveal())
    assert (response["active"], response["aud"]) == (True, OTHER_WORKLOAD)


def test_revoked_and_expired_tokens_are_inactive_and_say_nothing_more(
    validator: TokenValidator, issuer: TokenIssuer, revocations: RevocationList, clock: ManualClock
) -> None:
    revoked = issuer.issue(SUBJECT, AUDIENCE)
    revocations.revoke(revoked.jti, revoked.expires_at)
    assert introspect(validator, revoked.token.reveal()) == INACTIVE
    expiring = issuer.issue(SUBJECT, AUDIENCE)
    assert introspect(validator, expiring.token.reveal())["active"] is True
    clock.advance(timedelta(minutes=10))
    assert introspect(validator, expiring.token.reveal()) == INACTIVE


def test_invalid_tokens_are_inactive(
    validator: TokenValidator, broken: BrokenTokens, ring: KeyRing
) -> None:
    for token in broken.template(SUBJECT, AUDIENCE, cnf_x5t_s256=PEER_X5T).every():
        if token.kind in {"wrong-audience", "cnf-mismatch"}:
            continue  # not the introspector's concern: the gateway checks audience and binding
        assert introspect(validator, token.token.reveal()) == INACTIVE, token.kind
    for garbage in ("", "not a token", None, b"bytes", "a.b.c"):
        assert introspect(validator, garbage) == INACTIVE


def test_each_response_is_a_fresh_dict(validator: TokenValidator) -> None:
    first = introspect(validator, "")
    first["active"] = True
    assert introspect(validator, "") == INACTIVE
