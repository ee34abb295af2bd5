"""Forged values of forwarded-identity headers: what an attacker writes in each header of
`trustproof.gateway.headers.IDENTITY_HEADER_TABLE` to be taken for the claimed caller.

Each value is what the real proxy would have set for that caller, so a service that believes the
header believes it: a name, an email, a SPIFFE ID, Envoy's ``By=..;Hash=..;URI=..``, Azure's
base64 JSON principal, an unsigned JWT (``alg: none``) naming the caller, or — where a proxy
passes the client certificate on — the claimed caller's *real* certificate (public, so any
caller can get it), URL-encoded PEM as nginx's ``$ssl_client_escaped_cert``, base64 DER, or an
RFC 9440 byte sequence. No I/O, no secret: the certificate is public and the JWT unsigned.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from trustproof.gateway.headers import IDENTITY_HEADER_TABLE, ForgedValue, IdentityHeader

IAP_PREFIX = "accounts.google.com:"


@dataclass(frozen=True)
class Claim:
    """Whom the forged headers name, and to which service they are sent."""

    name: str
    kind: str  # "workload" | "persona"
    spiffe_id: str
    trust_domain: str
    roles: tuple[str, ...]
    certificate: x509.Certificate  # the claimed caller's real (public) certificate
    service_spiffe_id: str  # the receiving service (Envoy writes it as By=)

    @property
    def email(self) -> str:
        return f"{self.name}@{self.trust_domain}"

    @property
    def subject_id(self) -> str:
        """An opaque, stable subject identifier derived from the SPIFFE ID."""
        return hashlib.sha256(self.spiffe_id.encode()).hexdigest()[:24]

    def pem(self) -> str:
        return self.certificate.public_bytes(Encoding.PEM).decode("ascii")

    def der_base64(self) -> str:
        return base64.b64encode(self.certificate.public_bytes(Encoding.DER)).decode("ascii")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unsigned_jwt(claim: Claim) -> str:
    """A JWT with ``alg: none`` and an empty signature whose claims name `claim`'s caller."""
    header = {"alg": "none", "typ": "JWT"}
    payload = {
        "sub": claim.spiffe_id,
        "email": claim.email,
        "preferred_username": claim.name,
        "roles": list(claim.roles),
    }
    parts = (json.dumps(part, separators=(",", ":")).encode() for part in (header, payload))
    return ".".join(_b64url(part) for part in parts) + "."


def ms_client_principal(claim: Claim) -> str:
    """Azure Easy Auth's ``X-MS-CLIENT-PRINCIPAL``: base64 of its JSON claims document."""
    document = {
        "auth_typ": "aad",
        "name_typ": "name",
        "role_typ": "roles",
        "claims": [
            {"typ": "name", "val": claim.name},
            {"typ": "preferred_username", "val": claim.email},
            {"typ": "sub", "val": claim.spiffe_id},
            *({"typ": "roles", "val": role} for role in claim.roles),
        ],
    }
    return base64.b64encode(json.dumps(document).encode()).decode("ascii")


def xfcc(claim: Claim) -> str:
    """Envoy's ``X-Forwarded-Client-Cert`` element for the claimed caller's certificate."""
    digest = claim.certificate.fingerprint(hashes.SHA256()).hex()
    return f"By={claim.service_spiffe_id};Hash={digest};URI={claim.spiffe_id}"


BUILDERS: Mapping[ForgedValue, Callable[[Claim], str]] = {
    "name": lambda c: c.name,
    "email": lambda c: c.email,
    "spiffe-id": lambda c: c.spiffe_id,
    "subject-id": lambda c: c.subject_id,
    "roles": lambda c: ",".join(c.roles) or c.name,
    "principal-kind": lambda c: c.kind,
    "dn": lambda c: f"CN={c.name}",
    "xfcc": xfcc,
    "iap-email": lambda c: IAP_PREFIX + c.email,
    "iap-id": lambda c: IAP_PREFIX + c.subject_id,
    "ms-principal": ms_client_principal,
    "jwt": unsigned_jwt,
    "cert-pem-escaped": lambda c: quote(c.pem(), safe=""),
    "cert-der-base64": lambda c: c.der_base64(),
    "cert-rfc9440": lambda c: f":{c.der_base64()}:",
}
"""One builder per kind of forged value (every `ForgedValue` has one: a unit test checks)."""

_BY_NAME: Mapping[str, IdentityHeader] = {h.name.lower(): h for h in IDENTITY_HEADER_TABLE}


def forged_headers(header: str, claim: Claim) -> tuple[tuple[str, str], ...]:
    """`header` (and its companions) with values naming `claim`'s caller. A header the table
    does not know (one of the spec's ``identity_headers``) carries the caller's name."""
    known = _BY_NAME.get(header.lower())
    if known is None:
        return ((header, claim.name),)
    names = (known.name, *known.companions)
    return tuple((name, BUILDERS[_BY_NAME[name.lower()].value](claim)) for name in names)
