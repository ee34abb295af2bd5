from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from trustproof.clock import ManualClock
from trustproof.identity import (
    EXPECTED_REASON,
    REASONS,
    BrokenMaterial,
    CertificateAuthority,
    Svid,
    SvidCheck,
    verify_svid,
)
from trustproof.identity.material import new_ec_key

TD = "shop.test"
TTL = timedelta(minutes=5)
Check = Callable[[Svid], SvidCheck]


def test_a_valid_svid_passes_with_its_spiffe_id(ca: CertificateAuthority, check: Check) -> None:
    result = check(ca.issue("orders", TTL))
    assert result.ok
    assert result.reason == "ok"
    assert str(result.spiffe_id) == "spiffe://shop.test/orders"


@pytest.mark.parametrize("kind", sorted(EXPECTED_REASON))
def test_each_broken_kind_fails_with_its_reason_and_its_twin_passes(
    ca: CertificateAuthority, clock: ManualClock, check: Check, kind: str
) -> None:
    broken = BrokenMaterial(ca, clock)
    twin = check(broken.valid("orders"))
    assert (twin.ok, twin.reason) == (True, "ok")

    result = check(broken.make(kind, "orders"))
    assert result.reason == EXPECTED_REASON[kind], result.detail
    assert result.ok is False
    assert result.spiffe_id is None
    assert result.detail


def test_broken_material_differs_from_its_twin_only_where_meant(
    ca: CertificateAuthority, clock: ManualClock
) -> None:
    broken = BrokenMaterial(ca, clock)
    twin = broken.valid("orders").certificate
    expired = broken.expired("orders").certificate
    assert expired.not_valid_after_utc - expired.not_valid_before_utc == (
        twin.not_valid_after_utc - twin.not_valid_before_utc
    )
    assert expired.subject == twin.subject
    assert expired.extensions.get_extension_for_class(x509.SubjectAlternativeName) == (
        twin.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    )
    impostor = broken.untrusted_ca("orders")
    assert impostor.certificate.issuer == twin.issuer  # same names: only the keys differ
    assert len(impostor.intermediates) == len(broken.valid("orders").intermediates)
    assert str(broken.wrong_trust_domain("orders").spiffe_id) == "spiffe://evil.test/orders"


def test_unknown_broken_kind_is_refused(ca: CertificateAuthority, clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="unknown kind of broken material 'typo'"):
        BrokenMaterial(ca, clock).make("typo", "orders")


def test_every_reason_is_reachable_from_broken_material_or_ok() -> None:
    produced = {*EXPECTED_REASON.values(), "ok", "malformed"}
    assert produced == set(REASONS)


# -- time ----------------------------------------------------------------------------------------


def test_expires_at_the_injected_clock(
    ca: CertificateAuthority, clock: ManualClock, check: Check
) -> None:
    svid = ca.issue("orders", TTL)
    clock.set(svid.not_after)
    assert check(svid).ok  # not_after itself is still inside the validity period
    clock.advance(timedelta(seconds=1))
    result = check(svid)
    assert result.reason == "expired"
    assert "expired at" in result.detail


def test_not_yet_valid_before_not_before(
    ca: CertificateAuthority, clock: ManualClock, check: Check
) -> None:
    start = clock.now() + timedelta(minutes=1)
    svid = ca.issue("orders", TTL, not_before=start, not_after=start + TTL)
    assert check(svid).reason == "not-yet-valid"
    clock.set(start)
    assert check(svid).ok


def test_a_non_utc_now_is_converted(ca: CertificateAuthority, clock: ManualClock) -> None:
    # The verifier ignores tzinfo; verify_svid must hand it UTC.
    svid = ca.issue("orders", TTL)
    elsewhere = clock.now().astimezone(timezone(timedelta(hours=5)))
    result = verify_svid(
        svid.certificate, svid.intermediates, bundle=ca.bundle, trust_domain=TD, now=elsewhere
    )
    assert result.ok, result.detail


def test_a_naive_now_is_a_caller_bug(ca: CertificateAuthority, clock: ManualClock) -> None:
    svid = ca.issue("orders", TTL)
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_svid(
            svid.certificate,
            bundle=ca.bundle,
            trust_domain=TD,
            now=clock.now().replace(tzinfo=None),
        )


# -- inputs --------------------------------------------------------------------------------------


def test_der_bytes_are_accepted(ca: CertificateAuthority, clock: ManualClock) -> None:
    svid = ca.issue("orders", TTL)
    result = verify_svid(
        svid.der, svid.intermediates, bundle=ca.bundle, trust_domain=TD, now=clock.now()
    )
    assert result.ok


@pytest.mark.parametrize("garbage", [b"", b"\x30\x03\x02\x01", b"not a certificate", b"\x00" * 64])
def test_garbage_bytes_are_malformed(
    ca: CertificateAuthority, clock: ManualClock, garbage: bytes
) -> None:
    result = verify_svid(garbage, bundle=ca.bundle, trust_domain=TD, now=clock.now())
    assert (result.ok, result.reason) == (False, "malformed")


def test_truncated_der_is_malformed(ca: CertificateAuthority, clock: ManualClock) -> None:
    der = ca.issue("orders", TTL).der
    result = verify_svid(der[:-10], bundle=ca.bundle, trust_domain=TD, now=clock.now())
    assert result.reason == "malformed"


def test_pem_bytes_are_malformed_with_a_hint(ca: CertificateAuthority, clock: ManualClock) -> None:
    pem = ca.issue("orders", TTL).cert_chain_pem()
    result = verify_svid(pem, bundle=ca.bundle, trust_domain=TD, now=clock.now())
    assert result.reason == "malformed"
    assert "PEM?" in result.detail


def test_wrong_type_is_malformed(ca: CertificateAuthority, clock: ManualClock) -> None:
    result = verify_svid("PEM text?", bundle=ca.bundle, trust_domain=TD, now=clock.now())  # type: ignore[arg-type]
    assert result.reason == "malformed"


# -- chain ---------------------------------------------------------------------------------------


def test_missing_intermediate_is_untrusted(clock: ManualClock) -> None:
    ca = CertificateAuthority(TD, clock, intermediate=True)
    svid = ca.issue("orders", TTL)
    with_it = verify_svid(
        svid.certificate, svid.intermediates, bundle=ca.bundle, trust_domain=TD, now=clock.now()
    )
    assert with_it.ok
    without = verify_svid(svid.certificate, (), bundle=ca.bundle, trust_domain=TD, now=clock.now())
    assert without.reason == "untrusted"


def test_the_cas_intermediates_rebuild_a_leaf_only_chain(clock: ManualClock) -> None:
    # Python's ssl exposes only the peer's leaf; the CA's known intermediates complete the chain.
    ca = CertificateAuthority(TD, clock, intermediate=True)
    old = ca.issue("orders", TTL)
    ca.rotate_root()
    new = ca.issue("orders", TTL)
    assert ca.intermediates == (*old.intermediates, *new.intermediates)
    for svid in (old, new):
        result = verify_svid(
            svid.der, ca.intermediates, bundle=ca.bundle, trust_domain=TD, now=clock.now()
        )
        assert result.ok, result.detail
    assert CertificateAuthority(TD, clock).intermediates == ()


def test_another_runs_ca_is_untrusted(ca: CertificateAuthority, clock: ManualClock) -> None:
    other = CertificateAuthority(TD, clock, intermediate=ca.uses_intermediate)
    svid = other.issue("orders", TTL)
    result = verify_svid(
        svid.certificate, svid.intermediates, bundle=ca.bundle, trust_domain=TD, now=clock.now()
    )
    assert result.reason == "untrusted"
    assert "does not chain" in result.detail


def test_empty_bundle_is_untrusted(ca: CertificateAuthority, clock: ManualClock) -> None:
    svid = ca.issue("orders", TTL)
    result = verify_svid(
        svid.certificate, svid.intermediates, bundle=(), trust_domain=TD, now=clock.now()
    )
    assert (result.reason, result.detail) == (
        "untrusted",
        "the trust bundle is empty: no root can be trusted",
    )


def test_expected_trust_domain_is_the_callers(ca: CertificateAuthority, clock: ManualClock) -> None:
    svid = ca.issue("orders", TTL)
    result = verify_svid(
        svid.certificate,
        svid.intermediates,
        bundle=ca.bundle,
        trust_domain="other.test",
        now=clock.now(),
    )
    assert result.reason == "wrong-trust-domain"


# -- SPIFFE ID shape -----------------------------------------------------------------------------


def mint_with_uris(ca: CertificateAuthority, uris: tuple[str, ...]) -> Svid:
    template = ca.template("orders", TTL)
    return ca.mint(dataclasses.replace(template, uris=uris))


@pytest.mark.parametrize(
    ("uris", "reason"),
    [
        (("spiffe://shop.test/orders",), "ok"),
        (("spiffe://shop.test",), "no-spiffe-id"),
        (("https://shop.test/orders",), "no-spiffe-id"),
        (("spiffe://Shop.test/orders",), "no-spiffe-id"),
        (("spiffe://shop.test/orders", "https://example.test/"), "multiple-spiffe-ids"),
    ],
)
def test_uri_san_rules(
    ca: CertificateAuthority, check: Check, uris: tuple[str, ...], reason: str
) -> None:
    assert check(mint_with_uris(ca, uris)).reason == reason


def test_leaf_without_any_san_has_no_spiffe_id(ca: CertificateAuthority, check: Check) -> None:
    svid = ca.mint(dataclasses.replace(ca.template("orders", TTL), uris=()))
    assert check(svid).reason == "no-spiffe-id"


def test_leaf_without_eku_is_accepted(ca: CertificateAuthority, check: Check) -> None:
    # RFC 5280: no EKU extension means any purpose; cryptography's verifier agrees.
    svid = ca.mint(dataclasses.replace(ca.template("orders", TTL), ekus=()))
    assert check(svid).ok


# -- revocation ----------------------------------------------------------------------------------


def test_revocation_takes_effect_at_once(ca: CertificateAuthority, check: Check) -> None:
    svid = ca.issue("orders", TTL)
    assert check(svid).ok
    ca.revoke(svid)
    result = check(svid)
    assert result.reason == "revoked"
    assert f"{svid.serial:x}" in result.detail


def test_revoked_intermediate_is_revoked(clock: ManualClock) -> None:
    ca = CertificateAuthority(TD, clock, intermediate=True)
    svid = ca.issue("orders", TTL)
    bad = {svid.intermediates[0].serial_number}
    result = verify_svid(
        svid.certificate,
        svid.intermediates,
        bundle=ca.bundle,
        trust_domain=TD,
        now=clock.now(),
        revoked=bad.__contains__,
    )
    assert result.reason == "revoked"
    assert "intermediate" in result.detail


def test_a_failing_revocation_check_fails_closed(
    ca: CertificateAuthority, clock: ManualClock
) -> None:
    svid = ca.issue("orders", TTL)

    def broken(serial: int) -> bool:
        raise RuntimeError("CRL store unavailable")

    result = verify_svid(
        svid.certificate,
        svid.intermediates,
        bundle=ca.bundle,
        trust_domain=TD,
        now=clock.now(),
        revoked=broken,
    )
    assert (result.ok, result.reason) == (False, "untrusted")
    assert "fail closed" in result.detail


def test_without_a_revocation_callback_revocation_is_not_checked(
    ca: CertificateAuthority, clock: ManualClock
) -> None:
    svid = ca.issue("orders", TTL)
    ca.revoke(svid)
    result = verify_svid(
        svid.certificate, svid.intermediates, bundle=ca.bundle, trust_domain=TD, now=clock.now()
    )
    assert result.ok


# -- keys ----------------------------------------------------------------------------------------


def test_weak_key_is_reported_before_the_chain(
    ca: CertificateAuthority, clock: ManualClock
) -> None:
    # The verifier itself accepts a 1024-bit RSA *leaf* (it only limits keys that sign).
    weak = BrokenMaterial(ca, clock).weak_key("orders")
    result = verify_svid(
        weak.certificate, weak.intermediates, bundle=ca.bundle, trust_domain=TD, now=clock.now()
    )
    assert result.reason == "weak-key"
    assert "1024 bits" in result.detail


def test_leaf_forging_the_issuer_name_is_untrusted(
    ca: CertificateAuthority, clock: ManualClock
) -> None:
    template = ca.template("orders", TTL)
    key = new_ec_key()
    issuer_key = new_ec_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name.from_rfc4514_string("CN=orders"))
        .issuer_name(ca.issuer.subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(template.not_before)
        .not_valid_after(template.not_after)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(template.uris[0])]),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )
    result = verify_svid(cert, bundle=ca.bundle, trust_domain=TD, now=clock.now())
    assert result.reason == "untrusted"
