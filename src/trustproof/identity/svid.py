"""X.509-SVIDs: a leaf certificate carrying a SPIFFE ID, its intermediates and its private key.

The private key is wrapped in `trustproof.scrub.Secret`, so neither `repr(svid)` nor a log line
can show it; `Svid.key_pem()` is the one place it is revealed (to write a 0600 key file).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from trustproof.identity.material import PrivateKey
from trustproof.identity.spiffe import SpiffeId
from trustproof.scrub import Secret


def x5t_s256(der: bytes) -> str:
    """The RFC 8705 §3.1 certificate thumbprint: base64url (no padding) of SHA-256 over the DER.

    Tokens bound to a certificate carry it as ``cnf.x5t#S256``.
    """
    digest = hashlib.sha256(der).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class Svid:
    """An X.509-SVID: `certificate` (the leaf), the `intermediates` to send with it, and its key.

    `spiffe_id` is the ID the SVID was minted for. For deliberately broken material the
    certificate may say otherwise (or nothing): the certificate, as checked by
    `trustproof.identity.verify.verify_svid`, is the authority, never this field.
    """

    spiffe_id: SpiffeId
    certificate: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]
    private_key: Secret[PrivateKey]

    @property
    def serial(self) -> int:
        return self.certificate.serial_number

    @property
    def not_before(self) -> datetime:
        """Start of validity, timezone-aware UTC."""
        return self.certificate.not_valid_before_utc

    @property
    def not_after(self) -> datetime:
        """End of validity (inclusive, per RFC 5280), timezone-aware UTC."""
        return self.certificate.not_valid_after_utc

    @property
    def lifetime(self) -> float:
        """Seconds from `not_before` to `not_after`."""
        return (self.not_after - self.not_before).total_seconds()

    @property
    def der(self) -> bytes:
        """The leaf certificate in DER."""
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def x5t_s256(self) -> str:
        """RFC 8705 thumbprint of the leaf (see the module-level `x5t_s256`)."""
        return x5t_s256(self.der)

    def cert_chain_pem(self) -> bytes:
        """The leaf then its intermediates, PEM: what a TLS server or client presents."""
        chain = (self.certificate, *self.intermediates)
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)

    def key_pem(self) -> bytes:
        """The private key, unencrypted PKCS#8 PEM. This reveals the secret: write it 0600 only."""
        return self.private_key.reveal().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def __repr__(self) -> str:
        return (
            f"Svid({self.spiffe_id}, serial={self.serial:x}, "
            f"not_after={self.not_after.isoformat()}, key={self.private_key!r})"
        )

    __str__ = __repr__
