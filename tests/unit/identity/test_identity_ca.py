from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from trustproof.clock import ManualClock
from trustproof.identity import (
    CertificateAuthority,
    IdentityError,
    InvalidSpiffeId,
    Svid,
    SvidCheck,
    verify_svid,
)

TD = "shop.test"
TTL = timedelta(minutes=5)


E = TypeVar("E", bound=x509.ExtensionType)


def ext(cert: x509.Certificate, kind: type[E]) -> x509.Extension[E]:
    return cert.extensions.get_extension_for_class(kind)


# -- issuance ------------------------------------------------------------------------------------


def test_leaf_carries_exactly_one_spiffe_id_and_the_name_as_cn(ca: CertificateAuthority) -> None:
    svid = ca.issue("orders", TTL)
    san = ext(svid.certificate, x509.SubjectAlternativeName)
    assert not san.critical  # cryptography's verifier refuses a critical SAN beside a subject
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://shop.test/orders"
    ]
    assert san.value.get_values_for_type(x509.DNSName) == []
    cn = svid.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert [a.value for a in cn] == ["orders"]
    assert str(svid.spiffe_id) == "spiffe://shop.test/orders"


def test_leaf_profile_eku_key_usage_basic_constraints_key_ids(ca: CertificateAuthority) -> None:
    svid = ca.issue("orders", TTL)
    cert = svid.certificate
    eku = ext(cert, x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    usage = ext(cert, x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert usage.value.key_agreement
    assert not usage.value.key_cert_sign
    constraints = ext(cert, x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca is False
    aki = ext(cert, x509.AuthorityKeyIdentifier).value
    issuer_ski = ext(ca.issuer, x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == issuer_ski.digest
    assert ext(cert, x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(
        cert.public_key()
    )
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert key.curve.name == "secp256r1"
    assert cert.signature_hash_algorithm is not None
    assert cert.signature_hash_algorithm.name == "sha256"
    assert cert.issuer == ca.issuer.subject


def test_validity_is_backdated_and_lasts_the_ttl(
    ca: CertificateAuthority, clock: ManualClock
) -> None:
    svid = ca.issue("orders", TTL)
    assert svid.not_before == clock.now() - timedelta(seconds=30)
    assert svid.not_after == clock.now() + TTL
    assert svid.not_after.tzinfo is UTC


def test_explicit_validity_overrides_ttl(ca: CertificateAuthority, clock: ManualClock) -> None:
    start = clock.now() + timedelta(minutes=1)
    svid = ca.issue("orders", TTL, not_before=start, not_after=start + timedelta(minutes=2))
    assert (svid.not_before, svid.not_after) == (start, start + timedelta(minutes=2))


def test_serials_are_random_and_distinct(ca: CertificateAuthority) -> None:
    serials = {ca.issue("orders", TTL).serial for _ in range(5)}
    assert len(serials) == 5
    assert all(s.bit_length() > 64 for s in serials)


def test_dns_and_ip_sans_are_added_beside_the_one_uri(ca: CertificateAuthority) -> None:
    svid = ca.issue("orders", TTL, dns=["localhost", "orders.shop.test"], ips=["127.0.0.1", "::1"])
    san = ext(svid.certificate, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "orders.shop.test"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert len(san.get_values_for_type(x509.UniformResourceIdentifier)) == 1


def test_root_profile(ca: CertificateAuthority) -> None:
    root = ca.root
    assert root.issuer == root.subject
    constraints = ext(root, x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca is True
    usage = ext(root, x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    assert not usage.value.digital_signature
    ext(root, x509.SubjectKeyIdentifier)
    assert ca.bundle == (root,)
    assert x509.load_pem_x509_certificates(ca.bundle_pem()) == [root]


def test_intermediate_signs_leaves_and_ships_with_them(clock: ManualClock) -> None:
    ca = CertificateAuthority(TD, clock, intermediate=True)
    svid = ca.issue("orders", TTL)
    (intermediate,) = svid.intermediates
    assert intermediate is ca.issuer
    assert intermediate.issuer == ca.root.subject
    constraints = ext(intermediate, x509.BasicConstraints).value
    assert (constraints.ca, constraints.path_length) == (True, 0)
    assert ext(ca.root, x509.BasicConstraints).value.path_length == 1
    svid.certificate.verify_directly_issued_by(intermediate)
    intermediate.verify_directly_issued_by(ca.root)
    assert x509.load_pem_x509_certificates(svid.cert_chain_pem()) == [
        svid.certificate,
        intermediate,
    ]
    assert ca.bundle == (ca.root,)  # the intermediate is sent by the peer, never trusted


def test_root_signs_leaves_directly_without_intermediate(clock: ManualClock) -> None:
    ca = CertificateAuthority(TD, clock)
    svid = ca.issue("orders", TTL)
    assert svid.intermediates == ()
    svid.certificate.verify_directly_issued_by(ca.root)
    assert ext(ca.root, x509.BasicConstraints).value.path_length == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "problem"),
    [
        ({"name": "a/b"}, InvalidSpiffeId, "has a '/'"),
        ({"name": "or ders"}, InvalidSpiffeId, "not allowed"),
        ({"ttl": timedelta(0)}, IdentityError, "positive ttl"),
        ({"ips": ["localhost"]}, IdentityError, "bad IP address"),
        ({"dns": ["bad name"]}, IdentityError, "bad DNS name"),
        ({"ttl": timedelta(days=2)}, IdentityError, "outlive its CA"),
    ],
)
def test_issue_refuses_bad_requests(
    ca: CertificateAuthority, kwargs: dict[str, object], error: type[Exception], problem: str
) -> None:
    args: dict[str, object] = {"name": "orders", "ttl": TTL, **kwargs}
    with pytest.raises(error, match=problem):
        ca.issue(**args)  # type: ignore[arg-type]


def test_issue_refuses_an_end_before_the_start(
    ca: CertificateAuthority, clock: ManualClock
) -> None:
    with pytest.raises(IdentityError, match="before it starts"):
        ca.issue("orders", TTL, not_before=clock.now(), not_after=clock.now())


def test_naive_times_are_refused(ca: CertificateAuthority, clock: ManualClock) -> None:
    naive = clock.now().replace(tzinfo=None)
    with pytest.raises(IdentityError, match="timezone-aware"):
        ca.issue("orders", TTL, not_before=naive)


def test_bad_trust_domain_is_refused(clock: ManualClock) -> None:
    with pytest.raises(InvalidSpiffeId, match="bad trust domain"):
        CertificateAuthority("Shop.Test", clock)


def test_repr_shows_no_key(ca: CertificateAuthority) -> None:
    assert repr(ca).startswith("CertificateAuthority('shop.test', generation=1")


# -- revocation ----------------------------------------------------------------------------------


def crls(ca: CertificateAuthority) -> list[x509.CertificateRevocationList]:
    pem = ca.crl_pem()
    blocks = pem.split(b"-----END X509 CRL-----")[:-1]
    return [x509.load_pem_x509_crl(b + b"-----END X509 CRL-----\n") for b in blocks]


def test_crl_lists_the_revoked_serial_signed_by_the_issuer(
    ca: CertificateAuthority, clock: ManualClock
) -> None:
    kept = ca.issue("orders", TTL)
    gone = ca.issue("orders", TTL)
    assert not ca.is_revoked(gone.serial)
    ca.revoke(gone)
    assert ca.is_revoked(gone.serial)
    assert not ca.is_revoked(kept.serial)

    by_issuer = {crl.issuer: crl for crl in crls(ca)}
    crl = by_issuer[ca.issuer.subject]
    assert crl.is_signature_valid(ca.issuer.public_key())  # type: ignore[arg-type]
    entry = crl.get_revoked_certificate_by_serial_number(gone.serial)
    assert entry is not None
    assert entry.revocation_date_utc == clock.now().replace(microsecond=0)
    assert crl.get_revoked_certificate_by_serial_number(kept.serial) is None
    assert crl.next_update_utc is not None
    assert crl.next_update_utc > clock.now() + timedelta(hours=1)
    assert crl.last_update_utc <= clock.now()
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number >= 1


def test_every_ca_key_publishes_a_crl(clock: ManualClock) -> None:
    # OpenSSL's CRL_CHECK_ALL (nginx ssl_crl, PostgreSQL ssl_crl_file) needs one per CA in a chain.
    ca = CertificateAuthority(TD, clock, intermediate=True)
    found = crls(ca)
    assert [c.issuer for c in found] == [ca.root.subject, ca.issuer.subject]
    assert found[0].is_signature_valid(ca.root.public_key())  # type: ignore[arg-type]
    assert found[1].is_signature_valid(ca.issuer.public_key())  # type: ignore[arg-type]
    assert all(len(c) == 0 for c in found)


def test_crl_is_regenerated_after_each_revocation(ca: CertificateAuthority) -> None:
    first = ca.issue("orders", TTL)
    second = ca.issue("orders", TTL)
    ca.revoke(first)
    before = ca.crl_pem()
    assert ca.crl_pem() is before  # cached while nothing changes
    ca.revoke(second.serial)
    crl = {c.issuer: c for c in crls(ca)}[ca.issuer.subject]
    assert {r.serial_number for r in crl} == {first.serial, second.serial}


def test_revoking_twice_is_harmless(ca: CertificateAuthority) -> None:
    svid = ca.issue("orders", TTL)
    ca.revoke(svid)
    ca.revoke(svid.certificate)
    assert ca.is_revoked(svid.serial)


def test_revoking_a_serial_this_ca_never_issued_is_refused(ca: CertificateAuthority) -> None:
    with pytest.raises(IdentityError, match="did not issue it"):
        ca.revoke(12345)
    assert not ca.is_revoked(12345)


# -- root rotation -------------------------------------------------------------------------------


def verify_against(
    bundle: tuple[x509.Certificate, ...], clock: ManualClock, svid: Svid
) -> SvidCheck:
    return verify_svid(
        svid.certificate, svid.intermediates, bundle=bundle, trust_domain=TD, now=clock.now()
    )


def test_rotation_keeps_old_leaves_valid_and_issues_from_the_new_root(
    ca: CertificateAuthority, clock: ManualClock
) -> None:
    old_root = ca.root
    old = ca.issue("orders", TTL)
    new_root = ca.rotate_root()
    assert new_root == ca.root != old_root
    assert ca.bundle == (old_root, new_root)
    new = ca.issue("orders", TTL)
    assert verify_against(ca.bundle, clock, old).ok
    assert verify_against(ca.bundle, clock, new).ok
    chain_top = new.intermediates[-1] if new.intermediates else new.certificate
    chain_top.verify_directly_issued_by(new_root)
    assert new.certificate.issuer != old.certificate.issuer


def test_without_the_old_root_its_leaves_are_untrusted(
    ca: CertificateAuthority, clock: ManualClock
) -> None:
    old = ca.issue("orders", TTL)
    ca.rotate_root()
    check = verify_against(ca.bundle[1:], clock, old)
    assert check.reason == "untrusted"


def test_prune_keeps_an_old_root_until_its_last_leaf_expired(
    ca: CertificateAuthority, clock: ManualClock
) -> None:
    old_root = ca.root
    ca.issue("orders", TTL)
    last = ca.issue("payments", TTL * 2)
    ca.rotate_root()
    clock.advance(TTL + timedelta(seconds=1))
    assert ca.prune_roots() == ()  # `last` is still valid
    assert verify_against(ca.bundle, clock, last).ok
    clock.set(last.not_after)
    assert ca.prune_roots() == ()  # validity includes not_after itself
    clock.advance(timedelta(seconds=1))
    assert ca.prune_roots() == (old_root,)
    assert ca.bundle == (ca.root,)
    assert ca.prune_roots() == ()


def test_prune_never_removes_the_issuing_root(ca: CertificateAuthority, clock: ManualClock) -> None:
    ca.issue("orders", TTL)
    clock.advance(TTL * 2)
    assert ca.prune_roots() == ()
    assert len(ca.bundle) == 1


def test_an_old_root_that_issued_nothing_is_pruned_at_once(ca: CertificateAuthority) -> None:
    first = ca.root
    ca.rotate_root()
    assert ca.prune_roots() == (first,)


def test_pruned_generation_drops_from_the_crl(ca: CertificateAuthority, clock: ManualClock) -> None:
    ca.revoke(ca.issue("orders", TTL))
    ca.rotate_root()
    assert len(crls(ca)) == 2 * (1 + ca.uses_intermediate)
    clock.advance(TTL * 2)
    ca.prune_roots()
    assert {c.issuer for c in crls(ca)} <= {ca.root.subject, ca.issuer.subject}


def test_staged_rotation_trusts_first_and_issues_later(
    ca: CertificateAuthority, clock: ManualClock
) -> None:
    old_root = ca.root
    pending = ca.rotate_root(activate=False)
    assert ca.bundle == (old_root, pending)
    assert ca.root == old_root
    assert ca.issue("orders", TTL).certificate.issuer == ca.issuer.subject
    assert ca.activate_root() == pending == ca.root
    assert ca.prune_roots() == ()  # the old root's leaf is still valid


def test_leaves_nest_inside_ca_validity(ca: CertificateAuthority, clock: ManualClock) -> None:
    svid = ca.issue("orders", TTL)
    assert ca.root.not_valid_before_utc <= svid.not_before - timedelta(minutes=30)
    assert ca.root.not_valid_after_utc == datetime(2030, 1, 2, tzinfo=UTC)
