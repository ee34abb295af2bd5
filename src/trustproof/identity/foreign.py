"""CAs the spec declares foreign (`tls.foreign_cas`): authorities no boundary may trust, such as
the team's production or staging CA.

Each is read once from the PEM files the spec names: its certificate (always) and its private key
(optional). With a key, `trustproof.identity.BrokenMaterial.foreign_ca` mints the caller's SPIFFE
ID under it, and every boundary must refuse that certificate; without one, only the CA names a
server advertises can show that it trusts the CA. The key is wrapped in `Secret` (never in a repr,
log or error).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from trustproof.errors import SandboxError
from trustproof.identity.material import PrivateKey
from trustproof.scrub import Secret
from trustproof.spec.model import Spec


@dataclass(frozen=True)
class ForeignAuthority:
    """One `tls.foreign_cas` entry: `label` is its certificate's path as the spec gives it."""

    label: str
    certificate: x509.Certificate
    key: Secret[PrivateKey] | None = field(default=None, repr=False)

    @property
    def subject_der(self) -> bytes:
        return self.certificate.subject.public_bytes()


def load_foreign_cas(spec: Spec) -> tuple[ForeignAuthority, ...]:
    """Every `tls.foreign_cas` entry of `spec`, read and checked; a clear error naming the entry
    and the file otherwise."""
    found = []
    for index, entry in enumerate(spec.tls.foreign_cas):
        where = f"tls.foreign_cas[{index}]"
        cert_path = spec.resolve(entry.cert)
        try:
            certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except (OSError, ValueError) as exc:
            raise SandboxError(
                f"{where}.cert: cannot read a PEM certificate from {cert_path} "
                f"({type(exc).__name__})",
                "give the path (relative to the spec file) of the CA's PEM certificate",
            ) from None
        key: Secret[PrivateKey] | None = None
        if entry.key is not None:
            key = Secret(_load_key(where, spec.resolve(entry.key), certificate))
        found.append(ForeignAuthority(str(entry.cert), certificate, key))
    return tuple(found)


def _load_key(where: str, path: Path, certificate: x509.Certificate) -> PrivateKey:
    hint = "give an unencrypted PEM private key (EC or RSA) that belongs to the certificate"
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        # the message of a key parser may quote key material: only the exception's type
        raise SandboxError(
            f"{where}.key: cannot read an unencrypted PEM private key from {path} "
            f"({type(exc).__name__})",
            hint,
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise SandboxError(f"{where}.key: {path} holds a {type(key).__name__}", hint)
    if key.public_key() != certificate.public_key():
        raise SandboxError(f"{where}.key: {path} is not the key of {where}.cert", hint)
    return key


def signing_authority(
    authorities: tuple[ForeignAuthority, ...], label: str
) -> tuple[x509.Certificate, PrivateKey]:
    """The certificate and key of the foreign CA `label`; a clear error if it has no key."""
    for authority in authorities:
        if authority.label == label and authority.key is not None:
            return authority.certificate, authority.key.reveal()
    raise SandboxError(
        f"no foreign CA {label!r} with a key in tls.foreign_cas",
        "only foreign CAs declared with `key:` can sign a probe's certificate",
    )
