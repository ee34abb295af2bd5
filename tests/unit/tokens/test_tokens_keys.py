from __future__ import annotations

import re
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from trustproof.clock import ManualClock
from trustproof.scrub import Secret
from trustproof.tokens import KeyRing, SigningKey
from trustproof.tokens._jose import b64url_decode

URL_SAFE = re.compile(r"[A-Za-z0-9_-]{22,}")


def test_generated_key_has_random_url_safe_kid(clock: ManualClock) -> None:
    first, second = SigningKey.generate(clock), SigningKey.generate(clock)
    assert URL_SAFE.fullmatch(first.kid)
    assert first.kid != second.kid
    assert first.created_at == clock.now()


def test_public_jwk_is_an_rfc7518_ec_key(clock: ManualClock) -> None:
    key = SigningKey.generate(clock)
    jwk = key.public_jwk()
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"], jwk["kid"]) == (
        "EC",
        "P-256",
        "ES256",
        "sig",
        key.kid,
    )
    x, y = b64url_decode(jwk["x"], "x"), b64url_decode(jwk["y"], "y")
    rebuilt = ec.EllipticCurvePublicNumbers(
        int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
    ).public_key()
    assert rebuilt.public_numbers() == key.public_key.public_numbers()
    assert "d" not in jwk


def test_jwk_coordinates_keep_leading_zero_bytes(clock: ManualClock) -> None:
    # RFC 7518 §6.2.1.2: x and y are the full 32 bytes even when the number is shorter.
    scalar = next(
        k
        for k in range(1, 5000)
        if ec.derive_private_key(k, ec.SECP256R1()).public_key().public_numbers().x < 2**248
    )
    key = SigningKey("short-x", Secret(ec.derive_private_key(scalar, ec.SECP256R1())), clock.now())
    jwk = key.public_jwk()
    assert len(b64url_decode(jwk["x"], "x")) == 32
    assert b64url_decode(jwk["x"], "x")[0] == 0


def test_signing_key_repr_shows_no_key_material(clock: ManualClock) -> None:
    key = SigningKey.generate(clock)
    private = key.private_key.reveal()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    text = repr(key) + str(key)
    assert str(private.private_numbers().private_value) not in text
    assert pem.splitlines()[1] not in text
    assert "PRIVATE" not in text
    assert key.kid in text


def test_signing_key_must_be_p256(clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="P-256"):
        SigningKey("k", Secret(ec.generate_private_key(ec.SECP384R1())), clock.now())


def test_public_key_is_one_object_per_key(clock: ManualClock) -> None:
    ring = KeyRing(clock)
    assert ring.public_key(ring.active.kid) is ring.public_key(ring.active.kid)


def test_new_ring_publishes_its_active_key(ring: KeyRing) -> None:
    assert ring.jwks() == {"keys": [ring.active.public_jwk()]}
    assert ring.kids == (ring.active.kid,)


def test_unknown_kid_has_no_key(ring: KeyRing) -> None:
    assert ring.public_key("no-such-kid") is None


def test_rotate_makes_a_new_active_key(ring: KeyRing) -> None:
    old = ring.active
    new = ring.rotate()
    assert ring.active is new
    assert new.kid != old.kid


def test_retired_key_without_tokens_leaves_at_once(ring: KeyRing) -> None:
    old = ring.active
    ring.rotate()
    assert ring.public_key(old.kid) is None
    assert old.kid not in ring.kids
    assert ring.prune() == [old.kid]


def test_retired_key_stays_until_its_last_token_expires(ring: KeyRing, clock: ManualClock) -> None:
    old = ring.active
    ring.note_issued(old.kid, clock.now() + timedelta(minutes=1))
    ring.note_issued(old.kid, clock.now() + timedelta(minutes=3))
    ring.note_issued(old.kid, clock.now() + timedelta(minutes=2))  # earlier: does not shorten
    new = ring.rotate()
    assert ring.kids == (new.kid, old.kid)  # active first
    clock.advance(timedelta(minutes=3) - timedelta(seconds=1))
    assert ring.prune() == []
    assert ring.public_key(old.kid) is not None
    clock.advance(1)
    assert ring.public_key(old.kid) is None  # out of the JWKS even before prune()
    assert ring.prune() == [old.kid]
    assert ring.jwks() == {"keys": [new.public_jwk()]}


def test_active_key_never_leaves(ring: KeyRing, clock: ManualClock) -> None:
    ring.note_issued(ring.active.kid, clock.now() + timedelta(seconds=1))
    clock.advance(timedelta(days=1))
    assert ring.prune() == []
    assert ring.kids == (ring.active.kid,)


def test_note_issued_for_a_key_not_in_the_ring_is_a_bug(ring: KeyRing, clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="not in the ring"):
        ring.note_issued("never-added", clock.now())


def test_ring_repr_shows_kids_only(ring: KeyRing) -> None:
    assert repr(ring) == f"KeyRing(active={ring.active.kid!r}, keys=1)"
