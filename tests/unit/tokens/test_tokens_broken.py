"""Each broken token is refused for its own reason; its template, shown the same way, passes."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from tokens_support import AUDIENCE, OTHER_WORKLOAD, OTHER_X5T, PEER_X5T, SUBJECT

from trustproof.tokens import (
    BROKEN_KINDS,
    REQUIRED_CLAIMS,
    BrokenToken,
    BrokenTokens,
    KeyRing,
    TokenValidator,
)
from trustproof.tokens._jose import b64url_decode

# The workload presenting the tokens: its certificate is the one the template is bound to.
PEER: dict[str, Any] = {"peer_x5t_s256": PEER_X5T, "peer_spiffe_id": SUBJECT}

EXPECTED = {
    "expired": "expired",
    "not-yet-valid": "not-yet-valid",
    "issued-in-future": "issued-in-future",
    "wrong-issuer": "wrong-issuer",
    "wrong-audience": "wrong-audience",
    "cnf-mismatch": "cnf-mismatch",
    "wrong-type": "wrong-type",
    "bad-signature": "bad-signature",
    "alg-none": "alg-not-allowed",
    "hs256-public-key": "alg-not-allowed",
    "unknown-kid": "unknown-kid",
    "rotated-key": "unknown-kid",
    "subject-mismatch": "subject-mismatch",
    **{f"missing-claim:{claim}": "missing-claim" for claim in REQUIRED_CLAIMS},
}


def every(broken: BrokenTokens, **template: Any) -> dict[str, BrokenToken]:
    tokens = broken.template(SUBJECT, AUDIENCE, **template).every(other_spiffe_id=OTHER_WORKLOAD)
    by_kind = {token.kind: token for token in tokens}
    assert len(by_kind) == len(tokens)
    return by_kind


@pytest.mark.parametrize("kind", sorted(EXPECTED))
@pytest.mark.parametrize(
    "template",
    [{"roles": ["customer"], "cnf_x5t_s256": PEER_X5T}, {"roles": [], "cnf_x5t_s256": None}],
    ids=["bound", "unbound"],
)
def test_each_broken_token_is_refused_for_its_reason_and_its_twin_passes(
    broken: BrokenTokens, validator: TokenValidator, kind: str, template: dict[str, Any]
) -> None:
    twin = broken.template(SUBJECT, AUDIENCE, **template).valid()
    assert twin.expected_reason == "ok"
    assert validator.validate(twin.token.reveal(), audience=AUDIENCE, **PEER).ok

    token = every(broken, **template)[kind]
    result = validator.validate(token.token.reveal(), audience=AUDIENCE, **PEER)
    assert (result.ok, result.reason) == (False, EXPECTED[kind])
    assert token.expected_reason == EXPECTED[kind]


def test_every_kind_is_made(broken: BrokenTokens) -> None:
    assert set(every(broken)) == set(EXPECTED)


def test_subject_check_is_only_made_for_spiffe_subjects(broken: BrokenTokens) -> None:
    made = broken.template("alice", AUDIENCE).every(other_spiffe_id=OTHER_WORKLOAD)
    kinds = {t.kind for t in made}
    assert "subject-mismatch" not in kinds


def test_rotated_out_key_leaves_the_real_ring_alone(broken: BrokenTokens, ring: KeyRing) -> None:
    active, kids = ring.active, ring.kids
    token = broken.template(SUBJECT, AUDIENCE).rotated_out_key()
    assert ring.active is active
    assert ring.kids == kids
    assert token.header["kid"] not in kids


def test_unknown_kid_is_properly_signed_by_a_key_we_never_published(
    broken: BrokenTokens, ring: KeyRing
) -> None:
    token = broken.template(SUBJECT, AUDIENCE).unknown_kid()
    assert jwt.get_unverified_header(token.token.reveal())["kid"] not in ring.kids


def test_alg_none_is_unsigned_and_names_the_real_kid(broken: BrokenTokens, ring: KeyRing) -> None:
    token = broken.template(SUBJECT, AUDIENCE).alg_none().token.reveal()
    assert token.endswith(".")
    assert jwt.get_unverified_header(token) == {
        "alg": "none",
        "kid": ring.active.kid,
        "typ": "at+jwt",
    }


def test_hs256_token_is_a_real_hmac_keyed_with_the_public_key_pem(
    broken: BrokenTokens, ring: KeyRing
) -> None:
    token = broken.template(SUBJECT, AUDIENCE).hs256_with_public_key().token.reveal()
    signing_input, signature = token.rsplit(".", 1)
    pem = ring.active.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    expected = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    assert b64url_decode(signature, "signature") == expected
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_bad_signature_keeps_a_valid_header_and_payload(broken: BrokenTokens) -> None:
    bad = broken.template(SUBJECT, AUDIENCE, roles=["reader"]).bad_signature()
    token = bad.token.reveal()
    assert len(b64url_decode(token.split(".")[2], "signature")) == 64
    assert jwt.get_unverified_header(token) == dict(bad.header)
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload == {**bad.claims, "roles": ["reader"]}


def test_cnf_of_other_certificate_can_name_the_certificate(broken: BrokenTokens) -> None:
    template = broken.template(SUBJECT, AUDIENCE, cnf_x5t_s256=PEER_X5T)
    token = template.cnf_of_other_certificate(OTHER_X5T)
    assert token.claims["cnf"] == {"x5t#S256": OTHER_X5T}
    with pytest.raises(ValueError, match="differ"):
        template.cnf_of_other_certificate(PEER_X5T)


def test_missing_claim_only_for_required_claims(broken: BrokenTokens) -> None:
    assert "roles" in broken.template(SUBJECT, AUDIENCE, roles=["r"]).missing_claim("exp").claims
    with pytest.raises(ValueError, match="not a required claim"):
        broken.template(SUBJECT, AUDIENCE).missing_claim("roles")


def test_subject_of_other_workload_needs_another_spiffe_id(broken: BrokenTokens) -> None:
    with pytest.raises(ValueError, match="SPIFFE ID other than the subject"):
        broken.template(SUBJECT, AUDIENCE).subject_of(SUBJECT)
    with pytest.raises(ValueError, match="SPIFFE ID other than the subject"):
        broken.template(SUBJECT, AUDIENCE).subject_of("payments")


def test_broken_token_repr_never_shows_the_token(broken: BrokenTokens) -> None:
    for token in every(broken).values():
        assert token.token.reveal() not in repr(token)


def test_a_template_is_immutable_and_makes_each_kind_by_name(broken: BrokenTokens) -> None:
    template = broken.template(SUBJECT, AUDIENCE, roles=["reader"])
    with pytest.raises(AttributeError):
        template.audience = "spiffe://shop.test/other"  # type: ignore[misc]
    for kind in BROKEN_KINDS:
        assert template.make(kind).kind == kind
    with pytest.raises(ValueError, match="unknown kind of broken token"):
        template.make("typo")  # type: ignore[arg-type]
