"""Ed25519-signed checkpoints, no I/O: a checkpoint seals the chain up to the entry before it
(its `prev`), with the number of records so far, and whether it closes the log.

A forged checkpoint is one whose signature does not verify under the header's public key — and
that key must be the one derived from the log's data key (`crypto.signing_key`), which only the
KEK's holder can unwrap: swapping in the forger's own public key changes the header, whose hash
every record's chain and ciphertext are bound to.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from trustproof.audit.chain import Seal, dumps

_CONTEXT = b"trustproof-audit-checkpoint/1\n"


def message(seal: Seal) -> bytes:
    return _CONTEXT + dumps(seal.fields())


def sign(key: Ed25519PrivateKey, seal: Seal) -> bytes:
    return key.sign(message(seal))


def valid(public: bytes, signature: bytes, seal: Seal) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message(seal))
    except (InvalidSignature, ValueError):
        return False
    return True
