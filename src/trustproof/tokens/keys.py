"""Token signing keys and their rotation with overlap.

A `KeyRing` holds one *active* key, which signs every new token, and the *retired* keys that
still have unexpired tokens out there. Rotation never breaks a token in flight: `rotate()` makes a
new key active and retires the old one, which keeps verifying — and stays in the JWKS (RFC 7517)
— until the last token it signed has expired. Then it leaves, and tokens it signed are refused as
signed by an unknown key. The issuer reports each token's expiry with `note_issued()`; that is how
the ring knows how long a retired key must stay.

Whoever publishes the keys elsewhere (the sandbox writes them as files for services that validate
tokens themselves) `subscribe()`s: it is called after each `rotate()`, and after each `prune()`
that dropped a key.

Keys are ECDSA P-256 for ES256 (RFC 7518 §3.4). Private keys live in `Secret` wrappers so that no
`repr`, log line or report can show them.

Not thread-safe: use a ring from one thread (the sandbox runs one event loop).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from cryptography.hazmat.primitives.asymmetric import ec

from trustproof.clock import Clock
from trustproof.scrub import Secret, scrubbed_traceback
from trustproof.tokens._jose import b64url_encode

ALGORITHM = "ES256"
CURVE = "P-256"
_COORDINATE_BYTES = 32  # RFC 7518 §6.2.1.2: full coordinate size for P-256, zero-padded
log = logging.getLogger("trustproof.tokens")


def new_kid() -> str:
    """A random, URL-safe key id (128 bits): it reveals nothing about the key or its age."""
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class SigningKey:
    """One ES256 signing key with its key id."""

    kid: str
    private_key: Secret[ec.EllipticCurvePrivateKey]
    created_at: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.private_key.reveal().curve, ec.SECP256R1):
            raise ValueError("ES256 needs a P-256 (secp256r1) key")
        if not self.kid:
            raise ValueError("a signing key needs a non-empty kid")

    @classmethod
    def generate(cls, clock: Clock) -> SigningKey:
        """A fresh P-256 key with a random kid, created now."""
        key = ec.generate_private_key(ec.SECP256R1())
        return cls(new_kid(), Secret(key), clock.now())

    @cached_property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The verification key (computed once, so the same object is returned every time)."""
        return self.private_key.reveal().public_key()

    def public_jwk(self) -> dict[str, str]:
        """The public key as an RFC 7517 JWK with RFC 7518 §6.2 EC members."""
        numbers = self.public_key.public_numbers()
        return {
            "kty": "EC",
            "crv": CURVE,
            "x": b64url_encode(numbers.x.to_bytes(_COORDINATE_BYTES, "big")),
            "y": b64url_encode(numbers.y.to_bytes(_COORDINATE_BYTES, "big")),
            "kid": self.kid,
            "alg": ALGORITHM,
            "use": "sig",
        }


@dataclass
class _Slot:
    key: SigningKey
    last_exp: datetime | None = None  # latest `exp` of the tokens this key signed
    retired: bool = False


class KeyRing:
    """The active signing key plus the retired keys that must keep verifying."""

    def __init__(self, clock: Clock, *, key: SigningKey | None = None) -> None:
        self._clock = clock
        first = key or SigningKey.generate(clock)
        self._slots: dict[str, _Slot] = {first.kid: _Slot(first)}
        self._active = first
        self._subscribers: list[Callable[[], object]] = []

    def subscribe(self, callback: Callable[[], object]) -> None:
        """Call `callback` (no arguments) whenever the published keys change: after `rotate()`,
        and after a `prune()` that dropped a key. One that raises is logged and skipped."""
        self._subscribers.append(callback)

    def _notify(self) -> None:
        for callback in list(self._subscribers):
            try:
                callback()
            except Exception as exc:
                log.error("a key-ring subscriber failed; continuing:\n%s", scrubbed_traceback(exc))

    @property
    def active(self) -> SigningKey:
        """The key that signs new tokens."""
        return self._active

    def rotate(self) -> SigningKey:
        """Make a fresh key active; the previous one is retired but keeps verifying.

        A retired key that never signed a token leaves at once (nothing needs it).
        """
        self._slots[self._active.kid].retired = True
        fresh = SigningKey.generate(self._clock)
        self._slots[fresh.kid] = _Slot(fresh)
        self._active = fresh
        self._notify()
        return fresh

    def compromise(self) -> tuple[str, SigningKey]:
        """Emergency rotation: a fresh key becomes active and the active one is dropped at once,
        without overlap — every token it signed stops verifying now (retired keys stay as they
        are). (The dropped kid, the new key.)"""
        old = self._active
        fresh = SigningKey.generate(self._clock)
        self._slots[fresh.kid] = _Slot(fresh)
        del self._slots[old.kid]
        self._active = fresh
        self._notify()
        return old.kid, fresh

    def note_issued(self, kid: str, exp: datetime) -> None:
        """Record that `kid` signed a token expiring at `exp` (the issuer calls this).

        Raises `ValueError` for a key that is no longer in the ring: signing with it was a bug.
        """
        slot = self._slots.get(kid)
        if slot is None or not self._retained(slot):
            raise ValueError(f"key {kid!r} is not in the ring (rotated out or never added)")
        if exp.tzinfo is None:
            raise ValueError("note_issued() needs a timezone-aware expiry (use UTC)")
        if slot.last_exp is None or exp > slot.last_exp:
            slot.last_exp = exp

    def prune(self) -> list[str]:
        """Forget retired keys whose last token has expired; return their kids.

        `jwks()` and `public_key()` already leave such keys out; pruning drops the private keys.
        """
        gone = [kid for kid, slot in self._slots.items() if not self._retained(slot)]
        for kid in gone:
            del self._slots[kid]
        if gone:
            self._notify()
        return gone

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The RFC 7517 JWK Set: the active key first, then retained retired keys, newest first."""
        slots = [slot for slot in reversed(self._slots.values()) if self._retained(slot)]
        slots.sort(key=lambda slot: slot.retired)  # stable: the active key first
        return {"keys": [slot.key.public_jwk() for slot in slots]}

    def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        """The verification key for `kid`, or None unless that key is in the JWKS right now."""
        slot = self._slots.get(kid) if isinstance(kid, str) else None
        if slot is None or not self._retained(slot):
            return None
        return slot.key.public_key

    @property
    def kids(self) -> tuple[str, ...]:
        """Key ids in the JWKS right now, active first."""
        return tuple(jwk["kid"] for jwk in self.jwks()["keys"])

    def _retained(self, slot: _Slot) -> bool:
        if not slot.retired:
            return True
        return slot.last_exp is not None and slot.last_exp > self._clock.now()

    def __repr__(self) -> str:
        return f"KeyRing(active={self._active.kid!r}, keys={len(self._slots)})"
