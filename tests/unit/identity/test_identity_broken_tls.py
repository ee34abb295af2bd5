"""The broken SVIDs the TLS probes of issue 12 present: each differs from its valid twin in one
thing only, and `verify_svid` names that thing (a CA certificate and a SHA-1 signature used to
come back as a generic ``untrusted`` with a hint about the wrong CA)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from trustproof.clock import ManualClock
from trustproof.errors import SandboxError
from trustproof.identity import CertificateAuthority, Svid, SvidCheck
from trustproof.identity.broken import EXPECTED_REASON, BrokenMaterial
from trustproof.identity.foreign import load_foreign_cas, signing_authority
from trustproof.identity.material import common_name, make_ca_certificate, new_ec_key
from trustproof.spec.load import load_spec

TD = "shop.test"
Check = Callable[[Svid], SvidCheck]


@pytest.mark.parametrize(
    "kind", ["ca_as_client", "sha1_signature", "no_client_auth", "no_uri_san", "weak_key"]
)
def test_each_kind_is_refused_for_its_own_reason(
    kind: str, ca: CertificateAuthority, clock: ManualClock, check: Check
) -> None:
    svid = BrokenMaterial(ca, clock).make(kind, "alice")
    result = check(svid)
    assert (result.ok, result.reason) == (False, EXPECTED_REASON[kind])


def test_a_ca_certificate_differs_from_its_twin_only_in_being_a_ca(
    ca: CertificateAuthority, clock: ManualClock, check: Check
) -> None:
    material = BrokenMaterial(ca, clock)
    broken, valid = material.ca_as_client("alice"), material.valid("alice")
    assert broken.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = broken.certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    assert usage.digital_signature
    assert broken.certificate.issuer == valid.certificate.issuer
    assert _uris(broken.certificate) == _uris(valid.certificate) == [f"spiffe://{TD}/alice"]
    assert "CA certificate" in check(broken).detail


def test_the_sha1_certificate_is_really_signed_by_the_ca_over_sha1(
    ca: CertificateAuthority, clock: ManualClock
) -> None:
    svid = BrokenMaterial(ca, clock).sha1_signature("alice")
    cert = svid.certificate
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA1)
    signer = ca.issuer.public_key()
    assert isinstance(signer, ec.EllipticCurvePublicKey)
    signer.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA1()))  # noqa: S303
    valid = BrokenMaterial(ca, clock).valid("alice").certificate
    assert _uris(cert) == _uris(valid)
    assert cert.issuer == valid.issuer


def test_the_weak_key_is_rsa_1024(ca: CertificateAuthority, clock: ManualClock) -> None:
    key = BrokenMaterial(ca, clock).weak_key("alice").certificate.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.key_size == 1024


def _uris(cert: x509.Certificate) -> list[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.UniformResourceIdentifier)


def _write_foreign(tmp_path: Path, *, key: bool, wrong_key: bool = False) -> Path:
    now = datetime.now(UTC)
    ca_key = new_ec_key()
    cert = make_ca_certificate(
        common_name("prod root"), ca_key, not_before=now, not_after=now + timedelta(days=1),
        path_length=0,
    )  # fmt: skip
    (tmp_path / "prod.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    entry = "{cert: prod.pem}"
    if key:
        written = new_ec_key() if wrong_key else ca_key
        pem = written.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        (tmp_path / "prod.key").write_bytes(pem)
        entry = "{cert: prod.pem, key: prod.key}"
    spec = tmp_path / "trustproof.yaml"
    spec.write_text(f"version: 1\ntrust_domain: {TD}\ntls:\n  foreign_cas:\n    - {entry}\n")
    return spec


def test_a_foreign_ca_signs_the_callers_spiffe_id_and_is_untrusted(
    tmp_path: Path, ca: CertificateAuthority, clock: ManualClock, check: Check
) -> None:
    authorities = load_foreign_cas(load_spec(_write_foreign(tmp_path, key=True)))
    assert [a.label for a in authorities] == ["prod.pem"]
    assert "PRIVATE" not in repr(authorities)
    svid = BrokenMaterial(ca, clock).foreign_ca(
        "alice", *signing_authority(authorities, "prod.pem")
    )
    assert svid.certificate.issuer == authorities[0].certificate.subject
    assert _uris(svid.certificate) == [f"spiffe://{TD}/alice"]
    assert check(svid).reason == "untrusted"


def test_foreign_ca_files_that_do_not_fit_are_clear_errors(tmp_path: Path) -> None:
    spec = load_spec(_write_foreign(tmp_path, key=True, wrong_key=True))
    with pytest.raises(SandboxError, match=r"tls.foreign_cas\[0\].key: .* is not the key of"):
        load_foreign_cas(spec)
    (tmp_path / "prod.key").write_text("not a key")
    with pytest.raises(SandboxError, match=r"cannot read an unencrypted PEM private key"):
        load_foreign_cas(spec)
    (tmp_path / "prod.pem").write_text("not a certificate")
    with pytest.raises(SandboxError, match=r"tls.foreign_cas\[0\].cert: cannot read"):
        load_foreign_cas(spec)


def test_a_foreign_ca_without_a_key_cannot_sign(tmp_path: Path) -> None:
    authorities = load_foreign_cas(load_spec(_write_foreign(tmp_path, key=False)))
    with pytest.raises(SandboxError, match="with a key"):
        signing_authority(authorities, "prod.pem")
