"""ES256 malleability: every signature (r, s) has a twin (r, n - s) that verifies too. The issuer
writes the low-S one; the validator refuses the high-S twin as ``bad-signature``."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from tokens_support import AUDIENCE, SUBJECT

from trustproof.tokens import KeyRing, TokenIssuer, TokenValidator
from trustproof.tokens._jose import (
    P256_ORDER,
    b64url_decode,
    b64url_encode,
    es256_high_s,
    low_s,
)


def _twin(token: str) -> str:
    """The same token with s replaced by n - s: the other spelling of the same signature."""
    signed, _, segment = token.rpartition(".")
    raw = b64url_decode(segment, "signature")
    s = int.from_bytes(raw[32:], "big")
    return f"{signed}.{b64url_encode(raw[:32] + (P256_ORDER - s).to_bytes(32, 'big'))}"


def _verifies(token: str, key: ec.EllipticCurvePublicKey) -> bool:
    signed, _, segment = token.rpartition(".")
    raw = b64url_decode(segment, "signature")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        key.verify(der, signed.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def test_the_issuer_writes_low_s_signatures_only(issuer: TokenIssuer) -> None:
    # Without normalisation about half of ECDSA signatures are high-S: 64 in a row is 2^-64.
    for _ in range(64):
        token = issuer.issue(SUBJECT, AUDIENCE).token.reveal()
        assert not es256_high_s(b64url_decode(token.rpartition(".")[2], "signature"))


def test_the_high_s_twin_of_a_valid_token_is_refused_as_bad_signature(
    issuer: TokenIssuer, validator: TokenValidator, ring: KeyRing
) -> None:
    token = issuer.issue(SUBJECT, AUDIENCE).token.reveal()
    twin = _twin(token)
    key = ring.active.private_key.reveal().public_key()
    assert _verifies(token, key)
    assert _verifies(twin, key)  # mathematically valid: this is what malleable means
    assert validator.validate(token, audience=AUDIENCE).ok
    refused = validator.validate(twin, audience=AUDIENCE)
    assert (refused.ok, refused.reason) == (False, "bad-signature")
    assert "high-S" in refused.detail
    assert twin not in refused.detail


def test_the_twin_is_refused_even_after_the_original_was_cached(
    issuer: TokenIssuer, validator: TokenValidator
) -> None:
    token = issuer.issue(SUBJECT, AUDIENCE).token.reveal()
    assert validator.validate(token, audience=AUDIENCE).ok
    assert validator.validate(token, audience=AUDIENCE).cached
    assert validator.validate(_twin(token), audience=AUDIENCE).reason == "bad-signature"


def test_low_s_keeps_a_low_s_token_and_turns_a_high_s_one() -> None:
    low = "e30.e30." + b64url_encode(bytes(31) + b"\x01" + bytes(31) + b"\x05")
    assert low_s(low) == low
    high = _twin(low)
    assert es256_high_s(b64url_decode(high.rpartition(".")[2], "signature"))
    assert low_s(high) == low
    assert not es256_high_s(b"\xff" * 63)  # another length is PyJWT's to refuse
