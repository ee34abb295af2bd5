from __future__ import annotations

import base64
import dataclasses
import hashlib
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from trustproof.clock import ManualClock
from trustproof.identity import BrokenMaterial, CertificateAuthority, Svid, x5t_s256
from trustproof.scrub import scrub

TTL = timedelta(minutes=5)


def secret_texts(svid: Svid) -> list[str]:
    """Every way the key could leak into text: PEM, its body, its private number in dec/hex."""
    key = svid.private_key.reveal()
    pem = svid.key_pem().decode()
    body = "".join(pem.splitlines()[1:-1])
    if isinstance(key, ec.EllipticCurvePrivateKey):
        number = key.private_numbers().private_value
    else:
        assert isinstance(key, rsa.RSAPrivateKey)
        number = key.private_numbers().d
    return ["PRIVATE KEY", body[:40], body[-40:], str(number), f"{number:x}"]


def test_repr_and_str_show_no_key_material(ca: CertificateAuthority, clock: ManualClock) -> None:
    for svid in (ca.issue("orders", TTL), BrokenMaterial(ca, clock).weak_key("orders")):
        shown = [repr(svid), str(svid), repr(svid.private_key), f"{svid!r} {[svid]}"]
        for text in shown:
            for secret in secret_texts(svid):
                assert secret not in text
        assert "spiffe://shop.test/orders" in repr(svid)


def test_key_pem_is_unencrypted_pkcs8_matching_the_certificate(ca: CertificateAuthority) -> None:
    svid = ca.issue("orders", TTL)
    pem = svid.key_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, not "EC PRIVATE KEY"
    key = serialization.load_pem_private_key(pem, password=None)
    assert key.public_key() == svid.certificate.public_key()
    assert scrub(pem.decode()) == "[REDACTED PRIVATE KEY]\n"


def test_weak_svid_holds_an_rsa_key(ca: CertificateAuthority, clock: ManualClock) -> None:
    svid = BrokenMaterial(ca, clock).weak_key("orders")
    key = svid.private_key.reveal()
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 1024
    assert serialization.load_pem_private_key(svid.key_pem(), None).public_key() == (
        svid.certificate.public_key()
    )


def test_cert_chain_pem_is_leaf_then_intermediates(ca: CertificateAuthority) -> None:
    svid = ca.issue("orders", TTL)
    chain = x509.load_pem_x509_certificates(svid.cert_chain_pem())
    assert chain == [svid.certificate, *svid.intermediates]
    assert ca.root not in chain


def test_x5t_s256_is_base64url_sha256_of_the_der_without_padding(
    ca: CertificateAuthority,
) -> None:
    svid = ca.issue("orders", TTL)
    der = svid.certificate.public_bytes(serialization.Encoding.DER)
    expected = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")
    assert svid.x5t_s256 == x5t_s256(der) == expected
    assert len(expected) == 43
    assert "=" not in expected
    assert "+" not in expected
    assert "/" not in expected


def test_x5t_s256_known_answer() -> None:
    # SHA-256 of the empty string is 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU= in base64.
    assert x5t_s256(b"") == "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"


def test_validity_properties_are_utc(ca: CertificateAuthority, clock: ManualClock) -> None:
    svid = ca.issue("orders", TTL)
    assert svid.serial == svid.certificate.serial_number
    assert svid.not_before == svid.certificate.not_valid_before_utc
    assert svid.not_after == clock.now() + TTL
    assert svid.lifetime == (TTL + timedelta(seconds=30)).total_seconds()


def test_svids_compare_by_value(ca: CertificateAuthority) -> None:
    svid = ca.issue("orders", TTL)
    copy = dataclasses.replace(svid)
    assert copy == svid
    assert svid != ca.issue("orders", TTL)
    assert len({svid, copy}) == 1
