"""The masking key and the keyed hash every mask derives from (HMAC-SHA256).

The same value under the same key gives the same digest whatever table, column, file or datastore
it is found in, so masked keys still join. Each kind of mask hashes under its own label (an email
and a name that happen to be the same text mask independently). The key is read from the
environment variable the spec names (`data.key_env`) and is never shown: `MaskingKey`'s repr
gives its fingerprint only.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from trustproof.data.errors import DataError

MIN_KEY_BYTES = 16


class MaskingKey:
    """A secret key for deterministic masking; compare outputs, never print the key."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise DataError(
                f"the masking key is {len(key)} bytes long (at least {MIN_KEY_BYTES} needed)",
                "use a long random value, e.g. `openssl rand -hex 32`",
            )
        self._key = key

    @classmethod
    def from_env(cls, name: str, environ: dict[str, str] | None = None) -> MaskingKey:
        """The key in environment variable `name`; `DataError` when it is unset or empty (no
        default key: data is never 'masked' under a key anybody could know)."""
        env = os.environ if environ is None else environ
        value = env.get(name, "")
        if not value:
            raise DataError(
                f"the masking key variable {name} is not set",
                f"export {name} with a long random value (e.g. `export {name}=$(openssl rand "
                "-hex 32)`); keep it out of the spec and the repository",
            )
        return cls(value.encode("utf-8"))

    def digest(self, label: str, value: str) -> bytes:
        """HMAC-SHA256 of `value` under this key, separated by `label` (the mask's kind)."""
        return hmac.digest(self._key, f"{label}\x00{value}".encode(), "sha256")

    def number(self, label: str, value: str) -> int:
        """The digest as a non-negative integer (a seed for generators)."""
        return int.from_bytes(self.digest(label, value), "big")

    def fingerprint(self) -> str:
        return hashlib.sha256(b"trustproof-data-key\x00" + self._key).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"MaskingKey(fingerprint={self.fingerprint()})"


class DigitStream:
    """An endless, deterministic stream of digits and letters drawn from keyed digests: each
    256-bit digest gives 75 decimal digits (its two leading, non-uniform ones dropped) or 32
    bytes for letters and bounded choices (rejection sampling: no modulo bias)."""

    def __init__(self, key: MaskingKey, label: str, value: str) -> None:
        self._key = key
        self._seed = f"{label}\x00{value}"
        self._block = 0
        self._bytes = b""
        self._pos = 0
        self._digits = ""
        self._dpos = 0

    def _next(self) -> bytes:
        block = self._key.digest("stream", f"{self._seed}\x00{self._block}")
        self._block += 1
        return block

    def byte(self) -> int:
        if self._pos >= len(self._bytes):
            self._bytes, self._pos = self._next(), 0
        out = self._bytes[self._pos]
        self._pos += 1
        return out

    def below(self, n: int) -> int:
        """A uniform integer in [0, n) for n <= 256."""
        limit = 256 - 256 % n
        while True:
            b = self.byte()
            if b < limit:
                return b % n

    def digits(self, n: int) -> str:
        """`n` uniform decimal digits."""
        while len(self._digits) - self._dpos < n:
            fresh = str(int.from_bytes(self._next(), "big")).zfill(77)[2:]
            self._digits, self._dpos = self._digits[self._dpos :] + fresh, 0
        out = self._digits[self._dpos : self._dpos + n]
        self._dpos += n
        return out

    def digit(self, low: int = 0) -> str:
        return self.digits(1) if low == 0 else str(low + self.below(10 - low))

    def letter(self) -> str:
        return chr(ord("a") + self.below(26))
