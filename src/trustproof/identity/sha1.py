"""Re-signing a certificate with ECDSA over SHA-1, for the ``sha1-signature`` broken SVID only.

`cryptography` no longer signs certificates with SHA-1, and rightly so; a probe still needs one to
show that a boundary refuses it. The certificate is built and signed with SHA-256 as usual, then
its to-be-signed part gets the ``ecdsa-with-SHA1`` algorithm identifier and is signed again over
SHA-1 (the raw ECDSA primitive still allows that), and the DER is reassembled. Nothing else
changes: same subject, issuer, serial, validity, extensions and key.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")  # AlgorithmIdentifier, no parameters
ECDSA_SHA1 = bytes.fromhex("300906072a8648ce3d0401")


def _length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _length(len(content)) + content


def _content(der: bytes) -> bytes:
    """The content octets of the outermost TLV."""
    first = der[1]
    start = 2 if first < 0x80 else 2 + (first & 0x7F)
    return der[start:]


def resign_sha1(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """`cert` (signed ECDSA-SHA256 by `key`) signed again by `key` with ECDSA-SHA1."""
    body = _content(cert.tbs_certificate_bytes)
    if body.count(ECDSA_SHA256) != 1:
        raise ValueError("expected one ecdsa-with-SHA256 identifier in the certificate body")
    tbs = _tlv(0x30, body.replace(ECDSA_SHA256, ECDSA_SHA1))
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA1()))  # noqa: S303 (weak on purpose)
    der = _tlv(0x30, tbs + ECDSA_SHA1 + _tlv(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)
