from __future__ import annotations

import re
from datetime import timedelta

import jwt
import pytest
from tokens_support import AUDIENCE, ISSUER, PEER_X5T, SUBJECT

from trustproof.clock import ManualClock
from trustproof.tokens import KeyRing, TokenIssuer

NO_TIME_CHECKS: jwt.types.Options = {"verify_exp": False, "verify_nbf": False, "verify_iat": False}


def test_issued_token_carries_the_rfc9068_claims(issuer: TokenIssuer, clock: ManualClock) -> None:
    issued = issuer.issue(SUBJECT, AUDIENCE, roles=["reader", "writer"])
    now = int(clock.now().timestamp())
    assert dict(issued.claims) == {
        "iss": ISSUER,
        "sub": SUBJECT,
        "aud": AUDIENCE,
        "exp": now + 120,
        "iat": now,
        "nbf": now,
        "jti": issued.jti,
        "roles": ("reader", "writer"),
    }
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", issued.jti)  # 128 random bits, URL-safe
    assert issued.expires_at == clock.now() + timedelta(minutes=2)


def test_header_is_es256_at_jwt_with_the_active_kid(issuer: TokenIssuer, ring: KeyRing) -> None:
    issued = issuer.issue(SUBJECT, AUDIENCE)
    header = jwt.get_unverified_header(issued.token.reveal())
    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": ring.active.kid}
    assert issued.kid == ring.active.kid


def test_signature_verifies_independently(issuer: TokenIssuer, ring: KeyRing) -> None:
    issued = issuer.issue(SUBJECT, AUDIENCE, roles=["reader"])
    claims = jwt.decode(
        issued.token.reveal(),
        ring.active.public_key,
        algorithms=["ES256"],
        audience=AUDIENCE,
        issuer=ISSUER,
        options=NO_TIME_CHECKS,
    )
    assert claims["roles"] == ["reader"]  # a JSON list on the wire


def test_binding_and_client_id_only_when_given(issuer: TokenIssuer) -> None:
    plain = issuer.issue(SUBJECT, AUDIENCE)
    bound = issuer.issue(SUBJECT, AUDIENCE, cnf_x5t_s256=PEER_X5T, client_id=SUBJECT)
    assert "cnf" not in plain.claims
    assert "client_id" not in plain.claims
    assert bound.claims["cnf"] == {"x5t#S256": PEER_X5T}
    assert bound.claims["client_id"] == SUBJECT


def test_every_token_has_its_own_jti(issuer: TokenIssuer) -> None:
    jtis = {issuer.issue(SUBJECT, AUDIENCE).jti for _ in range(20)}
    assert len(jtis) == 20


def test_chosen_times_are_used_as_given(issuer: TokenIssuer, clock: ManualClock) -> None:
    now = clock.now()
    issued = issuer.issue(
        SUBJECT,
        AUDIENCE,
        iat=now - timedelta(hours=1),
        nbf=now - timedelta(minutes=50),
        exp=now - timedelta(minutes=40),
    )
    stamp = int(now.timestamp())
    assert (issued.claims["iat"], issued.claims["nbf"], issued.claims["exp"]) == (
        stamp - 3600,
        stamp - 3000,
        stamp - 2400,
    )
    assert issued.expires_at == now - timedelta(minutes=40)


def test_exp_defaults_to_nbf_plus_ttl(issuer: TokenIssuer, clock: ManualClock) -> None:
    later = clock.now() + timedelta(minutes=10)
    issued = issuer.issue(SUBJECT, AUDIENCE, nbf=later, ttl=timedelta(seconds=30))
    assert issued.expires_at == later + timedelta(seconds=30)


def test_issuing_keeps_a_rotated_key_published_while_its_tokens_live(
    issuer: TokenIssuer, ring: KeyRing, clock: ManualClock
) -> None:
    issued = issuer.issue(SUBJECT, AUDIENCE, ttl=timedelta(minutes=5))
    ring.rotate()
    assert issued.kid in ring.kids
    clock.advance(timedelta(minutes=5))
    assert issued.kid not in ring.kids


def test_extra_claims_are_added_but_cannot_replace_standard_ones(issuer: TokenIssuer) -> None:
    issued = issuer.issue(SUBJECT, AUDIENCE, extra={"tenant": "blue"})
    assert issued.claims["tenant"] == "blue"
    with pytest.raises(ValueError, match="'aud' would replace"):
        issuer.issue(SUBJECT, AUDIENCE, extra={"aud": "elsewhere"})


def test_roles_as_a_bare_string_are_refused(issuer: TokenIssuer) -> None:
    with pytest.raises(TypeError, match="not a string"):
        issuer.issue(SUBJECT, AUDIENCE, roles="admin")


@pytest.mark.parametrize(("subject", "audience"), [("", AUDIENCE), (SUBJECT, "")])
def test_subject_and_audience_are_required(
    issuer: TokenIssuer, subject: str, audience: str
) -> None:
    with pytest.raises(ValueError, match="needs"):
        issuer.issue(subject, audience)


def test_naive_times_and_bad_ttls_are_refused(issuer: TokenIssuer, clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        issuer.issue(SUBJECT, AUDIENCE, iat=clock.now().replace(tzinfo=None))
    with pytest.raises(ValueError, match="ttl must be positive"):
        issuer.issue(SUBJECT, AUDIENCE, ttl=timedelta(0))
    with pytest.raises(ValueError, match="cannot be empty"):
        issuer.issue(SUBJECT, AUDIENCE, cnf_x5t_s256="")


def test_issued_token_repr_never_shows_the_token(issuer: TokenIssuer) -> None:
    issued = issuer.issue(SUBJECT, AUDIENCE, cnf_x5t_s256=PEER_X5T)
    token = issued.token.reveal()
    for text in (repr(issued), str(issued), repr(issued.token), f"{issued.token}"):
        assert token not in text
        assert token.split(".")[2] not in text  # not even the signature
    assert "Secret(" in repr(issued)


def test_issued_claims_are_read_only(issuer: TokenIssuer) -> None:
    issued = issuer.issue(SUBJECT, AUDIENCE, roles=["reader"])
    with pytest.raises(TypeError):
        issued.claims["sub"] = "someone else"  # type: ignore[index]
    assert isinstance(issued.claims["roles"], tuple)
