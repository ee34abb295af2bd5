"""Withdrawing trust on the CA: a temporary root with an intermediate under it (a CA without
intermediates allows none below its roots), the intermediate revoked (on its root's CRL, and
every leaf under it revoked for `is_revoked`), a root retired before its leaves expire."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from cryptography import x509

from trustproof.identity import CertificateAuthority, Svid, SvidCheck
from trustproof.identity.errors import IdentityError

TD = "shop.test"  # the conftest's `ca` and `check` fixtures' trust domain
TTL = timedelta(minutes=5)
Check = Callable[[Svid], SvidCheck]


def crls(ca: CertificateAuthority) -> dict[x509.Name, x509.CertificateRevocationList]:
    blocks = ca.crl_pem().split(b"-----END X509 CRL-----\n")[:-1]
    loaded = [x509.load_pem_x509_crl(b + b"-----END X509 CRL-----\n") for b in blocks]
    return {crl.issuer: crl for crl in loaded}


def test_a_leaf_under_the_temporary_intermediate_verifies(
    ca: CertificateAuthority, check: Check
) -> None:
    root, intermediate = ca.add_intermediate_root()
    assert root in ca.bundle
    assert intermediate in ca.intermediates
    assert ca.root != root  # it does not issue the run's leaves
    leaf = ca.issue_under(intermediate, "orders", TTL)
    assert leaf.intermediates == (intermediate,)
    assert leaf.certificate.issuer == intermediate.subject
    assert check(leaf).ok
    assert ca.issue("orders", TTL).certificate.issuer == ca.issuer.subject
    # every CA in the bundle has a CRL (CRL_CHECK_ALL readers need one per CA)
    assert {root.subject, intermediate.subject} <= set(crls(ca))


def test_revoking_the_intermediate_refuses_its_leaves_and_lists_it_on_the_root_crl(
    ca: CertificateAuthority, check: Check
) -> None:
    root, intermediate = ca.add_intermediate_root()
    leaf = ca.issue_under(intermediate, "orders", TTL)
    other = ca.issue("orders", TTL)
    ca.revoke_intermediate(intermediate)
    found = check(leaf)
    assert (found.ok, found.reason) == (False, "revoked")
    assert ca.is_revoked(leaf.serial)  # a verifier that cached the chain check learns it here
    assert ca.withdrawn(leaf.serial) == "intermediate"
    assert ca.withdrawn(other.serial) is None
    assert check(other).ok
    root_crl = crls(ca)[root.subject]
    assert root_crl.is_signature_valid(root.public_key())  # type: ignore[arg-type]
    assert root_crl.get_revoked_certificate_by_serial_number(intermediate.serial_number)


def test_a_retired_root_leaves_the_bundle_and_its_leaves_are_refused(
    ca: CertificateAuthority, check: Check
) -> None:
    old_root = ca.root
    old = ca.issue("orders", TTL)
    with pytest.raises(IdentityError, match="the issuing root cannot be retired"):
        ca.retire_root(old_root)
    ca.rotate_root()
    new = ca.issue("orders", TTL)
    ca.retire_root(old_root)
    assert old_root not in ca.bundle
    assert not check(old).ok
    assert ca.is_revoked(old.serial)
    assert ca.withdrawn(old.serial) == "root"
    assert check(new).ok
    assert not ca.is_revoked(new.serial)
    with pytest.raises(IdentityError, match="was it retired already"):
        ca.retire_root(old_root)


def test_the_temporary_root_is_removed_again(ca: CertificateAuthority, check: Check) -> None:
    before = ca.bundle
    root, intermediate = ca.add_intermediate_root()
    leaf = ca.issue_under(intermediate, "orders", timedelta(minutes=1))
    ca.retire_root(root)
    assert ca.bundle == before
    assert intermediate not in ca.intermediates
    assert not check(leaf).ok
    assert ca.is_revoked(leaf.serial)
    assert set(crls(ca)) == {c.subject for c in (*ca.bundle, *ca.intermediates)}


def test_only_intermediates_are_revoked_as_such(ca: CertificateAuthority) -> None:
    root, intermediate = ca.add_intermediate_root()
    with pytest.raises(IdentityError, match="not an intermediate"):
        ca.revoke_intermediate(root)
    assert ca.issue_under(root, "orders", TTL).intermediates == (intermediate,)
    with pytest.raises(IdentityError, match="not a root"):
        ca.retire_root(intermediate)
    assert TD in str(ca.issue_under(intermediate, "orders", TTL).spiffe_id)


def test_a_root_not_yet_issuing_signs_a_leaf_on_request(
    ca: CertificateAuthority, check: Check
) -> None:
    new_root = ca.rotate_root(activate=False)
    leaf = ca.issue_under(new_root, "orders", TTL)
    assert check(leaf).ok
    issuer = leaf.intermediates[0] if ca.uses_intermediate else new_root
    assert leaf.certificate.issuer == issuer.subject
    assert ca.issue("orders", TTL).certificate.issuer == ca.issuer.subject != issuer.subject
