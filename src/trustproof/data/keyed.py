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
        return hmac.new(self._key, f"{label}\x00{value}".encode(), hashlib.sha256).digest()

    def number(self, label: str, value: str) -> int:
        """The digest as a non-negative integer (a seed for generators)."""
        return int.from_bytes(self.digest(label, value), "big")

    def fingerprint(self) -> str:
        return hashlib.sha256(b"trustproof-data-key\x00" + self._key).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"MaskingKey(fingerprint={self.fingerprint()})"


class DigitStream:
    """An endless, deterministic stream of digits and letters drawn from one keyed digest."""

    def __init__(self, key: MaskingKey, label: str, value: str) -> None:
        self._key = key
        self._seed = f"{label}\x00{value}"
        self._block = 0
        self._bytes = b""
        self._pos = 0

    def byte(self) -> int:
        if self._pos >= len(self._bytes):
            self._bytes = self._key.digest("stream", f"{self._seed}\x00{self._block}")
            self._block += 1
            self._pos = 0
        out = self._bytes[self._pos]
        self._pos += 1
        return out

    def below(self, n: int) -> int:
        """A uniform integer in [0, n) for n <= 256 (rejection sampling, no modulo bias)."""
        limit = 256 - 256 % n
        while True:
            b = self.byte()
            if b < limit:
                return b % n

    def digit(self, low: int = 0) -> str:
        return str(low + self.below(10 - low))

    def letter(self) -> str:
        return chr(ord("a") + self.below(26))
