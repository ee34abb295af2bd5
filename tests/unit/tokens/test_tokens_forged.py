"""The JWT attack literature's tokens: ours refuses each for its own reason, and each is a real
attack — a lenient reading (Python's json, PyJWT's defaults, the attacker's key) accepts it."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography import x509
from tokens_support import AUDIENCE, ISSUER, PEER_X5T, SUBJECT

from trustproof.clock import ManualClock
from trustproof.tokens import BrokenTokens, KeyRing, TokenValidator
from trustproof.tokens._jose import b64url_decode
from trustproof.tokens.broken import BrokenToken, TokenTemplate
from trustproof.tokens.forged import (
    ALG_NONE_SPELLINGS,
    KID_PATH,
    AttackerKeys,
    AttackerOrigin,
    ForgedTokens,
    payload_of,
)

PEER: dict[str, Any] = {"peer_x5t_s256": PEER_X5T, "peer_spiffe_id": SUBJECT}
OTHER = "spiffe://example.test/other"
NO_CLAIM_CHECKS: Any = {
    "verify_aud": False,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
}


@pytest.fixture
def template(broken: BrokenTokens) -> TokenTemplate:
    return broken.template(SUBJECT, AUDIENCE, roles=("reader",), cnf_x5t_s256=PEER_X5T)


@pytest.fixture
def attacker(clock: ManualClock) -> AttackerKeys:
    return AttackerKeys.generate(clock)


@pytest.fixture
def forged(template: TokenTemplate, attacker: AttackerKeys) -> ForgedTokens:
    return ForgedTokens(template, attacker)


def every(forged: ForgedTokens, attacker: AttackerKeys) -> list[BrokenToken]:
    origin = AttackerOrigin(attacker, "http://127.0.0.1:9/jwks.json", "http://127.0.0.1:9/c.pem")
    return [
        *(forged.alg_none(spelling) for spelling in ALG_NONE_SPELLINGS),
        forged.empty_signature(),
        forged.psychic_signature(),
        forged.embedded_jwk(),
        forged.jku(origin),
        forged.x5u(origin),
        forged.kid_injection("path"),
        forged.kid_injection("sql"),
        forged.unknown_crit(),
        forged.typ_confusion("JWT"),
        forged.typ_confusion("absent"),
        forged.future_iat(),
        forged.exp_string(),
        forged.duplicate_claims("sub", OTHER),
        forged.duplicate_claims("aud", OTHER),
        forged.oversized(),
        forged.added_claims("roles", ("admin",)),
        forged.added_claims("scope", ("admin",)),
    ]


def test_our_validator_refuses_each_for_its_own_reason(
    validator: TokenValidator, forged: ForgedTokens, attacker: AttackerKeys
) -> None:
    tokens = every(forged, attacker)
    assert len({t.kind for t in tokens}) == len(tokens)
    for made in tokens:
        check = validator.validate(made.token.reveal(), audience=AUDIENCE, **PEER)
        assert (made.kind, check.reason) == (made.kind, made.expected_reason)
        assert made.token.reveal() not in repr(made)


def test_the_template_itself_passes(validator: TokenValidator, template: TokenTemplate) -> None:
    check = validator.validate(template.valid().token.reveal(), audience=AUDIENCE, **PEER)
    assert check.ok


def test_duplicate_claims_read_last_wins_as_the_caller_and_our_validator_refuses(
    validator: TokenValidator, forged: ForgedTokens, ring: KeyRing
) -> None:
    made = forged.duplicate_claims("sub", OTHER)
    raw = payload_of(made.token.reveal())
    assert raw.count(b'"sub"') == 2
    assert json.loads(raw)["sub"] == SUBJECT  # what a last-wins parser reads
    # PyJWT alone accepts it (the signature is the issuer's): this is what the validator fixes.
    claims = jwt.decode(
        made.token.reveal(),
        ring.active.public_key,
        algorithms=["ES256"],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
    )
    assert claims["sub"] == SUBJECT
    check = validator.validate(made.token.reveal(), audience=AUDIENCE, **PEER)
    assert (check.ok, check.reason) == (False, "malformed")
    assert "duplicate" in check.detail


def test_exp_as_a_string_is_accepted_by_pyjwt_defaults_but_not_by_ours(
    validator: TokenValidator, forged: ForgedTokens, ring: KeyRing
) -> None:
    made = forged.exp_string()
    claims = jwt.decode(
        made.token.reveal(),
        ring.active.public_key,
        algorithms=["ES256"],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"verify_iat": False, "verify_nbf": False},
    )
    assert claims["exp"] == "9999999999"
    assert validator.validate(made.token.reveal(), audience=AUDIENCE, **PEER).reason == "malformed"


def test_attacker_signed_tokens_verify_with_the_attackers_documents(
    forged: ForgedTokens, attacker: AttackerKeys
) -> None:
    jwk_token = forged.embedded_jwk().token.reveal()
    header = jwt.get_unverified_header(jwk_token)
    key = jwt.PyJWK(header["jwk"]).key
    assert jwt.decode(jwk_token, key, algorithms=["ES256"], options=NO_CLAIM_CHECKS)
    published = json.loads(attacker.jwks_json)["keys"]
    assert [k["kid"] for k in published] == [attacker.kid] == [header["kid"]]
    cert = x509.load_pem_x509_certificate(attacker.certificate_pem)
    origin = AttackerOrigin(attacker, "http://127.0.0.1:9/j", "http://127.0.0.1:9/c")
    x5u_token = forged.x5u(origin).token.reveal()
    assert jwt.get_unverified_header(x5u_token)["x5u"] == origin.x5u_url
    assert jwt.decode(x5u_token, cert.public_key(), algorithms=["ES256"], options=NO_CLAIM_CHECKS)


def test_psychic_and_empty_signatures_and_kid_injection_are_what_they_say(
    forged: ForgedTokens,
) -> None:
    psychic = forged.psychic_signature().token.reveal()
    assert b64url_decode(psychic.rsplit(".", 1)[1], "signature") == bytes(64)
    assert forged.empty_signature().token.reveal().endswith(".")
    kid = forged.kid_injection("path")
    token = kid.token.reveal()
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "kid": KID_PATH, "typ": "at+jwt"}
    # HMAC-SHA256 keyed with the empty content of /dev/null verifies it (by hand)
    signed, _, mac = token.rpartition(".")
    expected = hmac.new(b"", signed.encode(), hashlib.sha256).digest()
    assert b64url_decode(mac, "signature") == expected


def test_alg_none_spellings_and_oversized_size(forged: ForgedTokens) -> None:
    algs = [jwt.get_unverified_header(forged.alg_none(s).token.reveal())["alg"] for s in
            ALG_NONE_SPELLINGS]  # fmt: skip
    assert algs == ["none", "None", "NONE", "nOnE"]
    assert 40 * 1024 < len(forged.oversized().token.reveal()) < 60_000


def test_embedded_jwk_needs_the_attacker(template: TokenTemplate) -> None:
    with pytest.raises(ValueError, match="attacker"):
        ForgedTokens(template).embedded_jwk()
