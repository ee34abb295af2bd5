"""The audit log's cryptography, no I/O: AES-256-GCM records under a per-run data key, that key
wrapped by the key-encryption key (AES key wrap, RFC 3394), and the Ed25519 checkpoint key
derived from the data key (HKDF-SHA256).

Deriving the signing key instead of storing it means a log carries no secret of its own: whoever
holds the KEK unwraps the data key, derives the signing key and checks that its public half is
the one the header names; whoever does not hold it cannot sign a checkpoint that verifies.
"""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from trustproof.errors import TrustproofError

KEY_BYTES = 32
NONCE_BYTES = 12
_SIGNING_INFO = b"trustproof audit checkpoint signing key v1"


class AuditKeyError(TrustproofError):
    """A key-encryption key that is missing, malformed, or not the one a log was written with
    (or a log that cannot be read at all): exit 2, nothing to verify."""

    exit_code = 2

    def __init__(self, message: str, hint: str = "") -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message}\n    hint: {hint}" if hint else message)


def kek_id(kek: bytes) -> str:
    """A short public name for a KEK (to say "wrong key" instead of "corrupt"): not the key."""
    return hashlib.sha256(b"trustproof audit kek id\0" + kek).hexdigest()[:16]


def new_data_key() -> bytes:
    return os.urandom(KEY_BYTES)


def wrap(kek: bytes, data_key: bytes) -> bytes:
    return aes_key_wrap(kek, data_key)


def unwrap(kek: bytes, wrapped: bytes) -> bytes:
    try:
        return aes_key_unwrap(kek, wrapped)
    except (InvalidUnwrap, ValueError) as exc:
        raise AuditKeyError(
            "the audit log's data key does not unwrap with this key-encryption key",
            "use the KEK the run was written with (TRUSTPROOF_AUDIT_KEK, --kek-file, the spec's "
            "audit.kek_file or ~/.config/trustproof/audit.kek)",
        ) from exc


def signing_key(data_key: bytes) -> Ed25519PrivateKey:
    seed = HKDF(hashes.SHA256(), KEY_BYTES, salt=None, info=_SIGNING_INFO).derive(data_key)
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


class RecordCipher:
    """AES-256-GCM under one data key; `aad` binds a record to its place in the chain."""

    def __init__(self, data_key: bytes) -> None:
        self._aead = AESGCM(data_key)

    def __repr__(self) -> str:
        return "RecordCipher(<data key withheld>)"

    def seal(self, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        return nonce, self._aead.encrypt(nonce, plaintext, aad)

    def open(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes | None:
        """The plaintext, or None when the record (or its place in the chain) was changed."""
        try:
            return self._aead.decrypt(nonce, ciphertext, aad)
        except (InvalidTag, ValueError):
            return None
