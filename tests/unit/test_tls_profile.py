"""Server contexts to Mozilla's intermediate profile, checked by handshakes in memory (no
sockets): what is refused, next to what is accepted."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta

import pytest

from trustproof.clock import ManualClock
from trustproof.identity import CertificateAuthority
from trustproof.tls import TLS12_CIPHERS, client_context, load_svid, server_context, set_groups


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority("shop.test", ManualClock(datetime.now(UTC)))


@pytest.fixture(scope="module")
def server(ca: CertificateAuthority) -> ssl.SSLContext:
    svid = ca.issue("orders", timedelta(minutes=5), ips=["127.0.0.1"])
    return server_context(svid, ca.bundle_pem(), client_certs="optional")


def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> ssl.SSLObject:
    """A full handshake between two in-memory endpoints; the client's SSLObject, or SSLError."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client_side = client.wrap_bio(c_in, c_out, server_side=False)
    server_side = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(20):  # bounded: a handshake takes a few flights
        for name, side in (("client", client_side), ("server", server_side)):
            if done[name]:
                continue
            try:
                side.do_handshake()
                done[name] = True
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return client_side
    raise AssertionError("the handshake did not finish")


def client(ca: CertificateAuthority, version: ssl.TLSVersion) -> ssl.SSLContext:
    context = client_context(ca.bundle_pem())
    context.minimum_version = context.maximum_version = version
    return context


def _tls12_suites(context: ssl.SSLContext) -> list[str]:
    return [c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]


def test_tls12_offers_only_ecdhe_aead_suites(server: ssl.SSLContext) -> None:
    suites = _tls12_suites(server)
    assert suites
    assert set(suites) <= set(TLS12_CIPHERS.split(":"))
    assert all(name.startswith("ECDHE-") for name in suites)
    assert all("-GCM-" in name or "CHACHA20" in name for name in suites)
    # The twin: Python's own server defaults still offer CBC suites in TLS 1.2.
    default = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    assert [name for name in _tls12_suites(default) if "-GCM-" not in name and "CHACHA" not in name]


@pytest.mark.parametrize("suite", ["ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA384"])
def test_a_cbc_suite_is_refused_and_gcm_accepted(
    server: ssl.SSLContext, ca: CertificateAuthority, suite: str
) -> None:
    weak = client(ca, ssl.TLSVersion.TLSv1_2)
    weak.set_ciphers(suite)
    with pytest.raises(ssl.SSLError):
        handshake(server, weak)
    strong = client(ca, ssl.TLSVersion.TLSv1_2)
    strong.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    assert handshake(server, strong).cipher()[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"


@pytest.mark.parametrize("group", ["X448", "P-521"])
def test_groups_outside_the_profile_are_refused(
    server: ssl.SSLContext, ca: CertificateAuthority, group: str
) -> None:
    outside = client(ca, ssl.TLSVersion.TLSv1_3)
    assert set_groups(outside, group)
    with pytest.raises(ssl.SSLError):
        handshake(server, outside)


@pytest.mark.parametrize("group", ["X25519", "P-256", "P-384"])
def test_groups_in_the_profile_are_accepted(
    server: ssl.SSLContext, ca: CertificateAuthority, group: str
) -> None:
    inside = client(ca, ssl.TLSVersion.TLSv1_3)
    assert set_groups(inside, group)
    assert handshake(server, inside).version() == "TLSv1.3"


def test_a_default_python_server_context_accepts_x448(ca: CertificateAuthority) -> None:
    """The failing twin: what the profile changes. Python's defaults take X448."""
    default = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    load_svid(default, ca.issue("orders", timedelta(minutes=5)))
    outside = client(ca, ssl.TLSVersion.TLSv1_3)
    assert set_groups(outside, "X448")
    assert handshake(default, outside).version() == "TLSv1.3"
