"""The surface probe's ClientHello is made without the system's trust store (loading it took
~0.2 s, three times per shop run, and a ClientHello carries nothing of it)."""

from __future__ import annotations

import ssl

import pytest

from trustproof.sandbox.surface import client_hello, is_tls_record


def test_the_client_hello_needs_no_trust_store(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the system trust store was loaded")

    monkeypatch.setattr(ssl.SSLContext, "load_default_certs", refuse)
    monkeypatch.setattr(ssl.SSLContext, "set_default_verify_paths", refuse)
    hello = client_hello()
    assert is_tls_record(hello)
    assert hello[5] == 0x01  # handshake type ClientHello
