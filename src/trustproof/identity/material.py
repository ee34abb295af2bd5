"""Building blocks for certificate material: keys, CA certificates, leaf templates and CRLs.

`CertificateAuthority` issues valid SVIDs from these; `trustproof.identity.broken` reuses the very
same `LeafTemplate` and changes exactly one thing, so that a broken certificate differs from its
valid twin only where it is meant to. Nothing here reads the clock: every time is passed in.

Profiles (ECDSA P-256, SHA-256 signatures throughout):

* root — BasicConstraints CA (critical), KeyUsage keyCertSign + cRLSign (critical), SKI;
* intermediate — the same with pathlen 0, plus AKI;
* leaf — KeyUsage digitalSignature (+ keyAgreement for EC, keyEncipherment for RSA) critical,
  BasicConstraints CA=false critical, EKU, SAN (non-critical: the subject is never empty, and
  `cryptography`'s verifier refuses a critical SAN next to a non-empty subject), AKI + SKI.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from trustproof.identity.sha1 import resign_sha1

PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
"""The leaf key types: ECDSA P-256 for real SVIDs, RSA only for deliberately weak material."""

IpAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH


def new_ec_key() -> ec.EllipticCurvePrivateKey:
    """A fresh ECDSA P-256 key (fast: well under a millisecond)."""
    return ec.generate_private_key(ec.SECP256R1())


def common_name(cn: str, *, organization: str | None = None) -> x509.Name:
    """``CN=<cn>`` (optionally with ``O=``), the subject shape used for every certificate here."""
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if organization:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _key_usage(*, signature: bool, agreement: bool, encipherment: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signature,
        content_commitment=False,
        key_encipherment=encipherment,
        data_encipherment=False,
        key_agreement=agreement,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def make_ca_certificate(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    *,
    not_before: datetime,
    not_after: datetime,
    path_length: int | None,
    parent: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
) -> x509.Certificate:
    """A root (no `parent`: self-signed) or an intermediate signed by `parent` (cert, key)."""
    issuer_name, signing_key = (subject, key) if parent is None else (parent[0].subject, parent[1])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            _key_usage(signature=False, agreement=False, encipherment=False, ca=True),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if parent is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
            critical=False,
        )
    return builder.sign(signing_key, hashes.SHA256())


@dataclass(frozen=True)
class LeafTemplate:
    """Everything that goes into a leaf certificate except its keys and its issuer.

    `uris` are the URI SANs (a valid SVID has exactly one SPIFFE ID); `dns` and `ips` the optional
    DNS and IP SANs for servers; `common_name` becomes the subject CN (PostgreSQL maps it to a
    role); `ekus` the extended key usages.
    """

    common_name: str
    uris: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    dns: tuple[str, ...] = ()
    ips: tuple[IpAddress, ...] = ()
    ekus: tuple[x509.ObjectIdentifier, ...] = (SERVER_AUTH, CLIENT_AUTH)
    is_ca: bool = False  # only deliberately broken material asserts CA:TRUE on a leaf
    sha1: bool = False  # only deliberately broken material is signed with SHA-1

    def general_names(self) -> list[x509.GeneralName]:
        names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in self.uris]
        names += [x509.DNSName(d) for d in self.dns]
        names += [x509.IPAddress(ip) for ip in self.ips]
        return names


def sign_leaf(
    template: LeafTemplate,
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    *,
    issuer_name: x509.Name,
    signing_key: PrivateKey,
) -> x509.Certificate:
    """Sign `template` for `public_key`. For a self-signed leaf pass the leaf's own name and key."""
    is_ec = isinstance(public_key, ec.EllipticCurvePublicKey)
    builder = (
        x509.CertificateBuilder()
        .subject_name(common_name(template.common_name))
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(template.not_before)
        .not_valid_after(template.not_after)
        .add_extension(x509.BasicConstraints(ca=template.is_ca, path_length=None), critical=True)
        .add_extension(
            _key_usage(signature=True, agreement=is_ec, encipherment=not is_ec, ca=template.is_ca),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
            critical=False,
        )
    )
    if template.ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(template.ekus), critical=False)
    names = template.general_names()
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    certificate = builder.sign(signing_key, hashes.SHA256())
    if template.sha1 and isinstance(signing_key, ec.EllipticCurvePrivateKey):
        return resign_sha1(certificate, signing_key)
    return certificate


def make_crl(
    issuer: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    revoked: Iterable[tuple[int, datetime]],
    *,
    number: int,
    this_update: datetime,
    next_update: datetime,
) -> x509.CertificateRevocationList:
    """A CRL signed by `issuer` listing `revoked` (serial, revocation time) pairs.

    It carries the CRL number (RFC 5280 §5.2.3 makes it mandatory) and the AKI, which OpenSSL uses
    to pick the right CRL when two CAs share a name.
    """
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    for serial, when in sorted(revoked):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    return builder.sign(issuer_key, hashes.SHA256())
