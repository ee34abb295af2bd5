"""A generation of a `CertificateAuthority`: one root key and, optionally, one intermediate under
it that signs the leaves — made here, kept and rotated by the CA (`trustproof.identity.ca`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from trustproof.identity.material import common_name, make_ca_certificate, new_ec_key
from trustproof.scrub import Secret


@dataclass
class Generation:
    """One root key (and optional intermediate) of a `CertificateAuthority`; mutable bookkeeping
    (the latest leaf it issued), private to the CA."""

    number: int
    root: x509.Certificate
    root_key: Secret[ec.EllipticCurvePrivateKey] = field(repr=False)
    signer: x509.Certificate
    signer_key: Secret[ec.EllipticCurvePrivateKey] = field(repr=False)
    intermediates: tuple[x509.Certificate, ...]
    latest_leaf_not_after: datetime | None = None

    def ca_keys(self) -> list[tuple[x509.Certificate, ec.EllipticCurvePrivateKey]]:
        pairs = [(self.root, self.root_key.reveal())]
        if self.signer is not self.root:
            pairs.append((self.signer, self.signer_key.reveal()))
        return pairs


def make_generation(
    number: int,
    organization: str,
    validity: tuple[datetime, datetime],
    *,
    intermediate: bool,
    label: str = "",
) -> Generation:
    """Generation `number`: a fresh root (``<label>root CA <number>``) and, with `intermediate`,
    an intermediate under it (``<label>intermediate CA <number>``) that signs the leaves; both
    valid over `validity` (start, end). A root with an intermediate allows one CA below it (path
    length 1), one without none."""
    start, end = validity
    root_key = new_ec_key()
    root = make_ca_certificate(
        common_name(f"{label}root CA {number}", organization=organization),
        root_key,
        not_before=start,
        not_after=end,
        path_length=1 if intermediate else 0,
    )
    signer, signer_key = root, root_key
    if intermediate:
        signer_key = new_ec_key()
        signer = make_ca_certificate(
            common_name(f"{label}intermediate CA {number}", organization=organization),
            signer_key,
            not_before=start,
            not_after=end,
            path_length=0,
            parent=(root, root_key),
        )
    return Generation(
        number=number,
        root=root,
        root_key=Secret(root_key),
        signer=signer,
        signer_key=Secret(signer_key),
        intermediates=(signer,) if signer is not root else (),
    )
