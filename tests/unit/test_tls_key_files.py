"""`load_svid` hands OpenSSL the chain and key as anonymous memory files where the system has
them (nothing written to a disk, no descriptor left open), else as 0600 files in a temporary
directory that is removed; either way the context presents the SVID in a handshake."""

from __future__ import annotations

import os
import ssl
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from trustproof.clock import ManualClock
from trustproof.identity import CertificateAuthority
from trustproof.tls import client_context, server_context


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority("shop.test", ManualClock(datetime.now(UTC)))


def server_seen(server: ssl.SSLContext, client: ssl.SSLContext) -> bytes | None:
    """A handshake between in-memory endpoints; the client certificate the server saw (DER)."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    sides = [client.wrap_bio(c_in, c_out), server.wrap_bio(s_in, s_out, server_side=True)]
    done = [False, False]
    for _ in range(20):  # bounded: a handshake takes a few flights
        for index, side in enumerate(sides):
            if not done[index]:
                try:
                    side.do_handshake()
                    done[index] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done):
            return sides[1].getpeercert(binary_form=True)
    raise AssertionError("the handshake did not finish")


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="no memfd_create here")
def test_memory_files_touch_no_disk_and_leave_no_descriptor(
    ca: CertificateAuthority, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    before = open_descriptors()
    client_context(ca.bundle_pem(), ca.issue("storefront", timedelta(minutes=5)))
    assert open_descriptors() == before
    assert list(tmp_path.iterdir()) == []  # no temporary directory at all


def test_without_memory_files_a_private_directory_is_used_and_removed(
    ca: CertificateAuthority, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delattr(os, "memfd_create", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    made: list[Path] = []
    real = tempfile.TemporaryDirectory

    def watched(*args: Any, **kwargs: Any) -> tempfile.TemporaryDirectory[str]:
        directory = real(*args, **kwargs)
        made.append(Path(directory.name))
        return directory

    monkeypatch.setattr(tempfile, "TemporaryDirectory", watched)
    client_context(ca.bundle_pem(), ca.issue("storefront", timedelta(minutes=5)))
    assert len(made) == 1
    assert not made[0].exists()


@pytest.mark.parametrize("memory", [True, False])
def test_the_context_presents_the_svid_either_way(
    ca: CertificateAuthority, monkeypatch: pytest.MonkeyPatch, memory: bool
) -> None:
    if not memory:
        monkeypatch.delattr(os, "memfd_create", raising=False)
    server = server_context(ca.issue("orders", timedelta(minutes=5)), ca.bundle_pem())
    svid = ca.issue("storefront", timedelta(minutes=5))
    assert server_seen(server, client_context(ca.bundle_pem(), svid)) == svid.der
    other = ca.issue("payments", timedelta(minutes=5))
    assert server_seen(server, client_context(ca.bundle_pem(), other)) != svid.der  # its twin
