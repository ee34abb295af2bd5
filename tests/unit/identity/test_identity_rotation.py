from __future__ import annotations

import logging
import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from trustproof.clock import ManualClock
from trustproof.identity import (
    CertificateAuthority,
    IdentityError,
    Rotator,
    Svid,
    SvidFiles,
    write_svid_files,
)
from trustproof.identity.rotation import renewal_time

TTL = timedelta(minutes=5)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_files_hold(files: SvidFiles, svid: Svid, ca: CertificateAuthority) -> None:
    assert x509.load_pem_x509_certificates(files.cert.read_bytes()) == [
        svid.certificate,
        *svid.intermediates,
    ]
    key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    assert key.public_key() == svid.certificate.public_key()
    assert x509.load_pem_x509_certificates(files.bundle.read_bytes()) == list(ca.bundle)


def test_write_svid_files_modes_and_content(ca: CertificateAuthority, tmp_path: Path) -> None:
    svid = ca.issue("orders", TTL)
    directory = tmp_path / "run" / "orders"
    files = write_svid_files(directory, svid, ca.bundle_pem())
    assert files == SvidFiles(
        directory, directory / "cert.pem", directory / "key.pem", directory / "bundle.pem"
    )
    assert mode(directory) == 0o700
    assert mode(files.key) == 0o600
    assert mode(files.cert) & 0o022 == 0
    assert_files_hold(files, svid, ca)
    assert sorted(p.name for p in directory.iterdir()) == ["bundle.pem", "cert.pem", "key.pem"]


def test_existing_directory_is_tightened_to_0700(ca: CertificateAuthority, tmp_path: Path) -> None:
    directory = tmp_path / "loose"
    directory.mkdir()
    os.chmod(directory, 0o755)  # noqa: S103 - the loose directory under test
    write_svid_files(directory, ca.issue("orders", TTL), ca.bundle_pem())
    assert mode(directory) == 0o700


def test_key_is_0600_even_with_a_permissive_umask(ca: CertificateAuthority, tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        files = write_svid_files(tmp_path / "d", ca.issue("orders", TTL), ca.bundle_pem())
    finally:
        os.umask(old)
    assert mode(files.key) == 0o600
    assert mode(files.directory) == 0o700


def test_rewriting_replaces_the_files(ca: CertificateAuthority, tmp_path: Path) -> None:
    first = ca.issue("orders", TTL)
    files = write_svid_files(tmp_path, first, ca.bundle_pem())
    second = ca.issue("orders", TTL)
    write_svid_files(tmp_path, second, ca.bundle_pem())
    assert_files_hold(files, second, ca)
    assert mode(files.key) == 0o600


def test_unwritable_directory_is_an_identity_error(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(IdentityError, match="could not write the SVID files"):
        write_svid_files(blocker / "sub", ca.issue("orders", TTL), ca.bundle_pem())


def test_symlinked_directory_is_refused(ca: CertificateAuthority, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(IdentityError, match="symlink"):
        write_svid_files(link, ca.issue("orders", TTL), ca.bundle_pem())
    assert list(real.iterdir()) == []


# -- Rotator -------------------------------------------------------------------------------------


@pytest.fixture
def rotator(ca: CertificateAuthority, clock: ManualClock, tmp_path: Path) -> Rotator:
    return Rotator(ca, clock, "orders", TTL, tmp_path / "orders", dns=["localhost"])


def test_rotator_writes_the_first_svid_at_once(rotator: Rotator, ca: CertificateAuthority) -> None:
    assert_files_hold(rotator.files, rotator.current, ca)
    assert str(rotator.current.spiffe_id) == "spiffe://shop.test/orders"
    assert "localhost" in rotator.current.certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName)


def test_due_at_half_of_the_validity_from_issue(rotator: Rotator, clock: ManualClock) -> None:
    svid = rotator.current
    issued = clock.now()
    half = issued + TTL / 2  # not_before is backdated; the half-life counts from the issue
    clock.set(half - timedelta(seconds=1))
    assert not rotator.due()
    assert not rotator.tick()
    assert rotator.current is svid
    clock.set(half)
    assert rotator.due()
    assert rotator.tick()
    assert rotator.current is not svid
    assert not rotator.due()


def test_fraction_moves_the_renewal_point(
    ca: CertificateAuthority, clock: ManualClock, tmp_path: Path
) -> None:
    early = Rotator(ca, clock, "orders", TTL, tmp_path, fraction=0.1)
    clock.set(clock.now() + TTL * 0.1 - timedelta(seconds=1))
    assert not early.due()
    clock.advance(timedelta(seconds=1))
    assert early.due()


def test_a_ttl_shorter_than_the_backdate_is_not_due_at_once(
    ca: CertificateAuthority, clock: ManualClock, tmp_path: Path
) -> None:
    # The CA backdates not_before by 30 s; half of not_before..not_after of a 10-s certificate
    # is 10 s before its issue, which made a rotator renew on every tick.
    ttl = timedelta(seconds=10)
    rotator = Rotator(ca, clock, "orders", ttl, tmp_path)
    assert rotator.current.not_before < clock.now() - ttl
    assert not rotator.due()
    clock.advance(timedelta(seconds=4.9))
    assert not rotator.tick()
    clock.advance(timedelta(seconds=0.1))
    assert rotator.tick()
    assert not rotator.due()
    assert rotator.renew_at() == pytest.approx(clock.now().timestamp() + 5, abs=1)


def test_renewal_time_counts_a_cut_certificate_from_not_before(
    ca: CertificateAuthority, clock: ManualClock
) -> None:
    ttl = timedelta(seconds=60)
    svid = ca.issue("orders", ttl, not_before=clock.now(), not_after=clock.now() + ttl / 4)
    assert renewal_time(svid, ttl) == pytest.approx((clock.now() + ttl / 8).timestamp())


def test_an_in_memory_rotator_writes_nothing_and_notifies(
    ca: CertificateAuthority, clock: ManualClock, tmp_path: Path
) -> None:
    rotator = Rotator(ca, clock, "trustproof-token-service", TTL, None, ips=["127.0.0.1"])
    seen: list[Svid] = []
    rotator.subscribe(seen.append)
    with pytest.raises(IdentityError, match="in memory only"):
        _ = rotator.files
    new = rotator.rotate()
    rotator.publish_bundle()
    assert seen == [new, new]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5, 2.0])
def test_fraction_outside_0_1_is_refused(
    ca: CertificateAuthority, clock: ManualClock, tmp_path: Path, fraction: float
) -> None:
    with pytest.raises(IdentityError, match="between 0 and 1"):
        Rotator(ca, clock, "orders", TTL, tmp_path, fraction=fraction)


def test_rotate_writes_files_before_notifying(rotator: Rotator, ca: CertificateAuthority) -> None:
    seen: list[tuple[Svid, bytes]] = []

    def reload(svid: Svid) -> None:
        seen.append((svid, rotator.files.cert.read_bytes()))
        assert_files_hold(rotator.files, svid, ca)

    rotator.subscribe(reload)
    new = rotator.rotate()
    assert rotator.current is new
    assert seen == [(new, new.cert_chain_pem())]


def test_a_failing_subscriber_does_not_stop_the_others(
    rotator: Rotator, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    def first(svid: Svid) -> None:
        calls.append("first")
        raise RuntimeError("reload failed")

    rotator.subscribe(first)
    rotator.subscribe(lambda svid: calls.append("second"))
    with caplog.at_level(logging.ERROR, logger="trustproof.identity"):
        new = rotator.rotate()
    assert calls == ["first", "second"]
    assert rotator.current is new
    assert any(
        "subscriber" in r.getMessage() and "RuntimeError: reload failed" in r.getMessage()
        for r in caplog.records
    )


def test_unsubscribe_stops_notifications(rotator: Rotator) -> None:
    calls: list[Svid] = []
    unsubscribe = rotator.subscribe(calls.append)
    rotator.rotate()
    unsubscribe()
    unsubscribe()  # twice is harmless
    rotator.rotate()
    assert len(calls) == 1


def test_rotation_after_root_rotation_writes_the_new_bundle(
    rotator: Rotator, ca: CertificateAuthority
) -> None:
    ca.rotate_root()
    svid = rotator.rotate()
    assert_files_hold(rotator.files, svid, ca)
    assert len(x509.load_pem_x509_certificates(rotator.files.bundle.read_bytes())) == 2


def test_publish_bundle_before_activating_a_new_root(
    rotator: Rotator, ca: CertificateAuthority
) -> None:
    calls: list[Svid] = []
    rotator.subscribe(calls.append)
    ca.rotate_root(activate=False)
    rotator.publish_bundle()
    assert x509.load_pem_x509_certificates(rotator.files.bundle.read_bytes()) == list(ca.bundle)
    assert calls == [rotator.current]
    assert mode(rotator.files.bundle) & 0o022 == 0


def test_repr_shows_no_key(rotator: Rotator) -> None:
    assert "PRIVATE" not in repr(rotator)
    assert repr(rotator).startswith("Rotator('orders'")
