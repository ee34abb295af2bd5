"""Every validation rule as a passing case and its failing twin, asserting the specific reason."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from tokens_support import (
    AUDIENCE,
    ISSUER,
    OTHER_WORKLOAD,
    OTHER_X5T,
    PEER_X5T,
    SUBJECT,
    handmade,
    signed,
)

from trustproof.clock import ManualClock
from trustproof.scrub import Secret
from trustproof.tokens import (
    MAX_TOKEN_LENGTH,
    REASONS,
    KeyRing,
    RevocationList,
    SigningKey,
    TokenCheck,
    TokenIssuer,
    TokenValidator,
)
from trustproof.tokens._jose import b64url_encode, json_bytes

LEEWAY = 5  # the validator's default, in seconds


def token_for(issuer: TokenIssuer, **kwargs: Any) -> str:
    return issuer.issue(SUBJECT, AUDIENCE, **kwargs).token.reveal()


def check(validator: TokenValidator, token: object, **kwargs: Any) -> TokenCheck:
    kwargs.setdefault("audience", AUDIENCE)
    result = validator.validate(token, **kwargs)
    assert result.reason in REASONS
    assert result.ok is (result.reason == "ok")
    if isinstance(token, str) and len(token) > 20:
        assert token not in result.detail
        assert token not in repr(result)
    return result


def claims_of(issuer: TokenIssuer, **changes: Any) -> dict[str, Any]:
    claims = issuer.claims_for(SUBJECT, AUDIENCE)
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


# -- shape ----------------------------------------------------------------------------------------


def test_a_valid_token_passes_with_its_claims(
    validator: TokenValidator, issuer: TokenIssuer
) -> None:
    result = check(validator, token_for(issuer, roles=["reader"]))
    assert (result.ok, result.reason, result.cached) == (True, "ok", False)
    assert result.claims["sub"] == SUBJECT
    assert result.claims["roles"] == ("reader",)


def test_an_empty_token_is_missing(validator: TokenValidator) -> None:
    assert check(validator, "").reason == "missing"


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        42,
        3.5,
        ["a.b.c"],
        {"token": "x"},
        b"eyJhbGciOiJFUzI1NiJ9.e30.",
        bytearray(b"abc"),
        " ",
        "a",
        "a.b",
        "a.b.c.d",
        "...",
        "..",
        "a..c",
        ".b.c",
        "e30.e30.e30=",
        "é.é.é",
        "\ud800.\ud800.x",
        "\x00.\x00.\x00",
        "Bearer eyJhbGciOiJFUzI1NiJ9.e30.e30",
        "e30.e30.e30 ",
        "bm90IGpzb24.e30.",  # header is not JSON
        "W10.e30.",  # header is a JSON array
        "x" * (MAX_TOKEN_LENGTH + 1),
        "a." * 100_000 + "a",
    ],
)
def test_garbage_is_malformed_and_never_raises(validator: TokenValidator, garbage: object) -> None:
    result = check(validator, garbage)
    assert (result.ok, result.reason) == (False, "malformed")
    assert result.claims == {}


def test_a_token_just_over_the_size_cap_is_malformed(
    validator: TokenValidator, issuer: TokenIssuer
) -> None:
    fits = token_for(issuer, extra={"pad": "p" * 5000})
    assert len(fits) <= MAX_TOKEN_LENGTH
    assert check(validator, fits).ok
    too_big = token_for(issuer, extra={"pad": "p" * 6500})
    assert len(too_big) > MAX_TOKEN_LENGTH
    assert check(validator, too_big).reason == "malformed"


def test_non_canonical_base64_is_malformed(validator: TokenValidator, issuer: TokenIssuer) -> None:
    head, body, sig = token_for(issuer).split(".")
    assert check(validator, f"{head}.{body}.{sig}").ok
    # The last character of a 64-byte signature carries 4 unused bits; setting one changes the
    # spelling, not the bytes. Two spellings of one token would mean two cache keys.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = alphabet[alphabet.index(sig[-1]) ^ 1]
    assert check(validator, f"{head}.{body}.{sig[:-1]}{twin}").reason == "malformed"


def test_duplicate_header_members_are_malformed(validator: TokenValidator, ring: KeyRing) -> None:
    good = signed({"iss": ISSUER}, ring.active)
    assert check(validator, good).reason != "malformed"
    header = b'{"alg":"none","kid":"k","alg":"ES256"}'
    doubled = f"{b64url_encode(header)}.{good.split('.')[1]}.{good.split('.')[2]}"
    result = check(validator, doubled)
    assert (result.reason, result.detail) == (
        "malformed",
        "the header has a duplicate member 'alg'",
    )


# -- header ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "HS256", "RS256", "ES384", "es256", "", None, 1])
def test_only_es256_is_allowed(
    validator: TokenValidator, issuer: TokenIssuer, ring: KeyRing, alg: object
) -> None:
    header = {"alg": alg, "kid": ring.active.kid, "typ": "at+jwt"}
    forged = handmade(header, claims_of(issuer), b"\x00" * 64)
    assert check(validator, forged).reason == "alg-not-allowed"
    assert check(validator, token_for(issuer)).ok


def test_missing_alg_is_not_allowed(validator: TokenValidator, ring: KeyRing) -> None:
    forged = handmade({"kid": ring.active.kid, "typ": "at+jwt"}, {"sub": "x"})
    assert check(validator, forged).reason == "alg-not-allowed"


@pytest.mark.parametrize(
    ("typ", "reason"),
    [("at+jwt", "ok"), ("application/AT+JWT", "ok"), ("JWT", "wrong-type"), ("", "wrong-type")],
)
def test_typ_must_say_access_token(
    validator: TokenValidator, issuer: TokenIssuer, ring: KeyRing, typ: str, reason: str
) -> None:
    assert check(validator, signed(claims_of(issuer), ring.active, typ=typ)).reason == reason


def test_missing_typ_is_the_wrong_type(
    validator: TokenValidator, issuer: TokenIssuer, ring: KeyRing
) -> None:
    forged = handmade({"alg": "ES256", "kid": ring.active.kid}, claims_of(issuer), b"\x00" * 64)
    assert check(validator, forged).reason == "wrong-type"


def test_crit_header_is_malformed(
    validator: TokenValidator, issuer: TokenIssuer, ring: KeyRing
) -> None:
    header = {"alg": "ES256", "kid": ring.active.kid, "typ": "at+jwt", "crit": ["exp"]}
    assert check(validator, handmade(header, claims_of(issuer), b"\x00" * 64)).reason == "malformed"


def test_kid_is_required_and_must_be_known(
    validator: TokenValidator, issuer: TokenIssuer, ring: KeyRing
) -> None:
    claims = claims_of(issuer)
    assert check(validator, signed(claims, ring.active)).ok
    no_kid = handmade({"alg": "ES256", "typ": "at+jwt"}, claims, b"\x00" * 64)
    assert check(validator, no_kid).reason == "unknown-kid"
    unknown = handmade({"alg": "ES256", "typ": "at+jwt", "kid": "nope"}, claims, b"\x00" * 64)
    assert check(validator, unknown).reason == "unknown-kid"
    numeric = handmade({"alg": "ES256", "typ": "at+jwt", "kid": 7}, claims, b"\x00" * 64)
    assert check(validator, numeric).reason == "malformed"


# -- signature ------------------------------------------------------------------------------------


def test_a_signature_from_another_token_is_bad(
    validator: TokenValidator, issuer: TokenIssuer
) -> None:
    first, second = token_for(issuer), token_for(issuer)
    assert check(validator, first).ok
    spliced = first.rsplit(".", 1)[0] + "." + second.rsplit(".", 1)[1]
    assert check(validator, spliced).reason == "bad-signature"


def test_a_signature_by_another_key_under_our_kid_is_bad(
    validator: TokenValidator, issuer: TokenIssuer, ring: KeyRing, clock: ManualClock
) -> None:
    impostor = SigningKey(
        ring.active.kid, Secret(ec.generate_private_key(ec.SECP256R1())), clock.now()
    )
    assert check(validator, signed(claims_of(issuer), impostor)).reason == "bad-signature"


def test_a_tampered_payload_is_bad(validator: TokenValidator, issuer: TokenIssuer) -> None:
    head, _, sig = token_for(issuer).split(".")
    body = b64url_encode(json_bytes(claims_of(issuer, roles=["admin"])))
    assert check(validator, f"{head}.{body}.{sig}").reason == "bad-signature"


# -- claims ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"])
def test_each_required_claim_is_required(
    validator: TokenValidator, issuer: TokenIssuer, ring: KeyRing, claim: str
) -> None:
    assert check(validator, signed(claims_of(issuer), ring.active)).ok
    result = check(validator, signed(claims_of(issuer, **{claim: None}), ring.active))
    assert result.reason == "missing-claim"
    assert repr(claim) in result.detail


@pytest.mark.parametrize("claim", ["sub", "jti"])
def test_empty_subject_or_jti_counts_as_missing(
    validator: TokenValidator, issuer: TokenIssuer, ring: KeyRing, claim: str
) -> None:
    assert check(validator, signed(claims_of(issuer, **{claim: ""}), ring.active)).reason == (
        "missing-claim"
    )


def test_issuer_must_match_exactly(
    validator: TokenValidator, issuer: TokenIssuer, ring: KeyRing
) -> None:
    assert check(validator, signed(claims_of(issuer, iss=ISSUER), ring.active)).ok
    for other in (ISSUER + "/", ISSUER + ".evil", ISSUER.upper(), "https://tokens.shop"):
        result = check(validator, signed(claims_of(issuer, iss=other), ring.active))
        assert result.reason == "wrong-issuer", other


def test_audience_must_match_exactly(validator: TokenValidator, issuer: TokenIssuer) -> None:
    token = token_for(issuer)
    assert check(validator, token, audience=AUDIENCE).ok
    assert check(validator, token, audience=OTHER_WORKLOAD).reason == "wrong-audience"
    assert check(validator, token, audience=AUDIENCE + "x").reason == "wrong-audience"


def test_audience_as_a_list_is_refused(
    validator: TokenValidator, issuer: TokenIssuer, ring: KeyRing
) -> None:
    # One token, one audience: a token for [orders, payments] could be replayed at both.
    listed = signed(claims_of(issuer, aud=[AUDIENCE, OTHER_WORKLOAD]), ring.active)
    assert check(validator, listed).reason == "wrong-audience"


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": "1893456120"},
        {"exp": True},
        {"nbf": 1e400},
        {"iat": -1},
        {"exp": 10**20},
        {"roles": "admin"},
        {"roles": ["ok", 7]},
        {"client_id": 7},
        {"cnf": "thumbprint"},
        {"cnf": {"x5t#S256": 7}},
        {"sub": 7},
        {"jti": ["x"]},
    ],
)
def test_claims_of_the_wrong_type_are_malformed(
    validator: TokenValidator, issuer: TokenIssuer, ring: KeyRing, changes: dict[str, Any]
) -> None:
    result = check(validator, signed(claims_of(issuer, **changes), ring.active))
    assert result.reason == "malformed"
    assert result.claims == {}


def test_expiry_with_leeway(
    validator: TokenValidator, issuer: TokenIssuer, clock: ManualClock
) -> None:
    token = token_for(issuer, ttl=timedelta(minutes=1))
    clock.advance(60 + LEEWAY - 1)
    assert check(validator, token).ok
    clock.advance(1)
    result = check(validator, token)
    assert result.reason == "expired"
    assert result.claims["sub"] == SUBJECT  # signature verified: who it was is known
    assert result.detail == "the token expired at 2030-01-01T00:01:00Z"


def test_not_before_with_leeway(
    validator: TokenValidator, issuer: TokenIssuer, clock: ManualClock
) -> None:
    early = token_for(issuer, nbf=clock.now() + timedelta(seconds=LEEWAY))
    assert check(validator, early).ok
    too_early = token_for(issuer, nbf=clock.now() + timedelta(seconds=LEEWAY + 1))
    assert check(validator, too_early).reason == "not-yet-valid"


def test_issued_in_the_future_with_leeway(
    validator: TokenValidator, issuer: TokenIssuer, clock: ManualClock
) -> None:
    now = clock.now()
    fine = token_for(issuer, iat=now + timedelta(seconds=LEEWAY), nbf=now)
    assert check(validator, fine).ok
    future = token_for(issuer, iat=now + timedelta(seconds=LEEWAY + 1), nbf=now)
    assert check(validator, future).reason == "issued-in-future"


def test_time_comes_from_the_injected_clock_not_the_system(
    validator: TokenValidator, issuer: TokenIssuer, clock: ManualClock
) -> None:
    # The manual clock is years ahead of the machine: PyJWT's own checks would say "immature".
    assert clock.now().year == 2030
    assert check(validator, token_for(issuer)).ok
    clock.set(clock.now() - timedelta(days=365))
    assert check(validator, token_for(issuer)).ok


# -- revocation -----------------------------------------------------------------------------------


def test_revoked_tokens_are_refused(
    validator: TokenValidator, issuer: TokenIssuer, revocations: RevocationList
) -> None:
    issued, other = issuer.issue(SUBJECT, AUDIENCE), issuer.issue(SUBJECT, AUDIENCE)
    revocations.revoke(issued.jti, issued.expires_at)
    result = check(validator, issued.token.reveal())
    assert (result.reason, result.claims["jti"]) == ("revoked", issued.jti)
    assert check(validator, other.token.reveal()).ok


def test_without_a_revocation_list_nothing_is_revoked(
    ring: KeyRing, issuer: TokenIssuer, clock: ManualClock
) -> None:
    validator = TokenValidator(ISSUER, ring, None, clock)
    assert check(validator, token_for(issuer)).ok


# -- binding and subject --------------------------------------------------------------------------


def test_bound_token_needs_its_certificate(validator: TokenValidator, issuer: TokenIssuer) -> None:
    token = token_for(issuer, cnf_x5t_s256=PEER_X5T)
    assert check(validator, token, peer_x5t_s256=PEER_X5T).ok
    stolen = check(validator, token, peer_x5t_s256=OTHER_X5T)
    assert (stolen.reason, stolen.detail) == (
        "cnf-mismatch",
        "the token is bound to a different certificate",
    )
    assert check(validator, token).reason == "cnf-mismatch"  # no certificate at all


def test_unknown_confirmation_method_fails_closed(
    validator: TokenValidator, issuer: TokenIssuer, ring: KeyRing
) -> None:
    dpop = signed(claims_of(issuer, cnf={"jkt": "abc"}), ring.active)
    assert check(validator, dpop, peer_x5t_s256=PEER_X5T).reason == "cnf-mismatch"


def test_require_binding_refuses_unbound_tokens(
    validator: TokenValidator, issuer: TokenIssuer
) -> None:
    unbound = token_for(issuer)
    assert check(validator, unbound, peer_x5t_s256=PEER_X5T).ok
    assert check(validator, unbound, peer_x5t_s256=PEER_X5T, require_binding=True).reason == (
        "unbound"
    )
    bound = token_for(issuer, cnf_x5t_s256=PEER_X5T)
    assert check(validator, bound, peer_x5t_s256=PEER_X5T, require_binding=True).ok


def test_workload_token_must_name_the_caller(
    validator: TokenValidator, issuer: TokenIssuer
) -> None:
    token = token_for(issuer)
    assert check(validator, token, peer_spiffe_id=SUBJECT).ok
    assert check(validator, token, peer_spiffe_id=OTHER_WORKLOAD).reason == "subject-mismatch"
    assert check(validator, token).ok  # no peer identity given: the rule does not apply


def test_persona_token_is_left_to_the_caller(
    validator: TokenValidator, issuer: TokenIssuer
) -> None:
    persona = issuer.issue("alice", AUDIENCE).token.reveal()
    assert check(validator, persona, peer_spiffe_id=OTHER_WORKLOAD).ok


def test_checks_run_in_order(
    validator: TokenValidator, issuer: TokenIssuer, revocations: RevocationList, clock: ManualClock
) -> None:
    issued = issuer.issue(SUBJECT, AUDIENCE, cnf_x5t_s256=PEER_X5T)
    token = issued.token.reveal()
    revocations.revoke(issued.jti, issued.expires_at)
    peer = {"peer_x5t_s256": OTHER_X5T, "peer_spiffe_id": OTHER_WORKLOAD}
    assert check(validator, token, **peer).reason == "revoked"  # revocation before binding
    assert check(validator, token, audience=OTHER_WORKLOAD, **peer).reason == "wrong-audience"
    clock.advance(timedelta(hours=1))
    assert check(validator, token, **peer).reason == "expired"  # time before revocation


# -- cache ----------------------------------------------------------------------------------------


def test_second_validation_is_served_from_the_cache(
    validator: TokenValidator, issuer: TokenIssuer
) -> None:
    token = token_for(issuer)
    assert not check(validator, token).cached
    assert check(validator, token).cached


def test_cached_token_still_expires(
    validator: TokenValidator, issuer: TokenIssuer, clock: ManualClock
) -> None:
    token = token_for(issuer)
    check(validator, token)
    assert check(validator, token).cached
    clock.advance(timedelta(minutes=2, seconds=LEEWAY))
    assert check(validator, token).reason == "expired"


def test_cached_token_can_still_be_revoked(
    validator: TokenValidator, issuer: TokenIssuer, revocations: RevocationList
) -> None:
    issued = issuer.issue(SUBJECT, AUDIENCE)
    check(validator, issued.token.reveal())
    assert check(validator, issued.token.reveal()).cached
    revocations.revoke(issued.jti, issued.expires_at)
    assert check(validator, issued.token.reveal()).reason == "revoked"


def test_binding_is_checked_on_every_cached_call(
    validator: TokenValidator, issuer: TokenIssuer
) -> None:
    token = token_for(issuer, cnf_x5t_s256=PEER_X5T)
    assert check(validator, token, peer_x5t_s256=PEER_X5T).ok
    result = check(validator, token, peer_x5t_s256=OTHER_X5T)
    assert result.reason == "cnf-mismatch"
    assert check(validator, token, peer_spiffe_id=SUBJECT, peer_x5t_s256=PEER_X5T).cached


def test_cache_is_per_audience(validator: TokenValidator, issuer: TokenIssuer) -> None:
    token = token_for(issuer)
    check(validator, token)
    assert check(validator, token).cached
    assert check(validator, token, audience=OTHER_WORKLOAD).reason == "wrong-audience"


class DictKeys:
    """A key source that can lose a key abruptly (as a refetched JWKS could)."""

    def __init__(self, ring: KeyRing) -> None:
        self.keys = {ring.active.kid: ring.active.public_key}

    def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        return self.keys.get(kid)


def test_cache_does_not_outlive_the_key(
    ring: KeyRing, issuer: TokenIssuer, clock: ManualClock
) -> None:
    keys = DictKeys(ring)
    validator = TokenValidator(ISSUER, keys, None, clock)
    token = token_for(issuer)
    check(validator, token)
    assert check(validator, token).cached
    keys.keys.clear()
    assert check(validator, token).reason == "unknown-kid"


def test_cache_is_bounded(ring: KeyRing, issuer: TokenIssuer, clock: ManualClock) -> None:
    validator = TokenValidator(ISSUER, ring, None, clock, cache_size=2)
    first, second, third = (token_for(issuer) for _ in range(3))
    for token in (first, second, third):
        check(validator, token)
    assert check(validator, third).cached
    assert not check(validator, first).cached  # the least recently used went first


def test_cache_can_be_turned_off(ring: KeyRing, issuer: TokenIssuer, clock: ManualClock) -> None:
    validator = TokenValidator(ISSUER, ring, None, clock, cache_size=0)
    token = token_for(issuer)
    check(validator, token)
    assert not check(validator, token).cached


def test_cached_claims_cannot_be_changed_by_a_caller(
    validator: TokenValidator, issuer: TokenIssuer
) -> None:
    token = token_for(issuer, roles=["reader"])
    claims = check(validator, token).claims
    with pytest.raises(TypeError):
        claims["roles"] = ["admin"]  # type: ignore[index]
    assert check(validator, token).claims["roles"] == ("reader",)


# -- failing closed -------------------------------------------------------------------------------


class BrokenKeys:
    def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        raise ConnectionError("JWKS endpoint down")


def test_an_internal_failure_refuses(
    issuer: TokenIssuer, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    validator = TokenValidator(ISSUER, BrokenKeys(), None, clock)
    token = token_for(issuer)
    with caplog.at_level(logging.ERROR, logger="trustproof.tokens"):
        result = check(validator, token)
        assert validator.inspect(token).reason == "error"
    assert (result.ok, result.reason) == (False, "error")
    assert all(token not in record.getMessage() for record in caplog.records)
    assert len(caplog.records) == 2


@pytest.mark.parametrize("audience", ["", None])
def test_validate_without_an_audience_is_a_bug(
    validator: TokenValidator, issuer: TokenIssuer, audience: object
) -> None:
    with pytest.raises(ValueError, match="audience"):
        validator.validate(token_for(issuer), audience=audience)  # type: ignore[arg-type]


def test_inspect_accepts_any_audience_and_skips_binding(
    validator: TokenValidator, issuer: TokenIssuer
) -> None:
    token = issuer.issue(SUBJECT, OTHER_WORKLOAD, cnf_x5t_s256=PEER_X5T).token.reveal()
    result = validator.inspect(token)
    assert (result.ok, result.claims["aud"]) == (True, OTHER_WORKLOAD)
    assert validator.inspect("garbage").reason == "malformed"


def test_bad_configuration_is_refused(ring: KeyRing, clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="issuer"):
        TokenValidator("", ring, None, clock)
    with pytest.raises(ValueError, match="leeway"):
        TokenValidator(ISSUER, ring, None, clock, leeway=timedelta(seconds=-1))
    with pytest.raises(ValueError, match="cache_size"):
        TokenValidator(ISSUER, ring, None, clock, cache_size=-1)
