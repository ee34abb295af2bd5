"""The sans-I/O half of `trustproof.sandbox.tlsscan`: the ClientHello it sends and how a server's
TLS 1.2 flight (or alert) is read into advertised CA names — bytes in, values out, no sockets."""

from __future__ import annotations

import struct

from cryptography import x509
from cryptography.x509.oid import NameOID

from trustproof.sandbox.tlsscan import (
    HandshakeReader,
    client_hello,
    name_text,
    parse_certificate_request,
    read_advertised,
)
from trustproof.view import AdvertisedCas, TransportFailure

ROOT = x509.Name(
    [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "trustproof shop.test"),
        x509.NameAttribute(NameOID.COMMON_NAME, "root CA 1"),
    ]
)
OTHER = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Acme Corp Root")])


def record(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BHH", kind, 0x0303, len(payload)) + payload


def message(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + len(body).to_bytes(3, "big") + body


def certificate_request(*names: x509.Name) -> bytes:
    ders = b"".join(len(d).to_bytes(2, "big") + d for d in (n.public_bytes() for n in names))
    sigalgs = b"\x04\x03\x08\x04"
    body = b"\x02\x01\x40" + len(sigalgs).to_bytes(2, "big") + sigalgs
    return message(13, body + len(ders).to_bytes(2, "big") + ders)


def flight(*messages: bytes) -> bytes:
    server_hello = message(2, b"\x03\x03" + bytes(32) + b"\x00" + b"\xc0\x2b" + b"\x00")
    return record(22, server_hello + message(11, b"\x00\x00\x00") + b"".join(messages))


def test_the_client_hello_is_one_tls12_record() -> None:
    hello = client_hello(bytes(32))
    kind, version, length = struct.unpack(">BHH", hello[:5])
    assert (kind, version, length) == (22, 0x0301, len(hello) - 5)
    assert hello[5] == 1  # ClientHello
    assert hello[9:11] == b"\x03\x03"  # client_version TLS 1.2
    assert b"\xc0\x2b" in hello  # ECDHE-ECDSA-AES128-GCM-SHA256 offered
    assert b"\x00\x2b" not in hello[43:]  # no supported_versions: TLS 1.3 is not offered


def test_the_advertised_names_are_read_up_to_server_hello_done() -> None:
    data = flight(certificate_request(ROOT, OTHER)) + record(22, message(14, b""))
    reader = HandshakeReader()
    for at in range(0, len(data), 7):  # in small pieces, as a socket may deliver it
        reader.feed(data[at : at + 7])
    assert reader.done
    found = read_advertised(reader, "https://127.0.0.1:1")
    assert isinstance(found, AdvertisedCas)
    assert found.ders == (ROOT.public_bytes(), OTHER.public_bytes())
    assert found.names == ("CN=root CA 1,O=trustproof shop.test", "CN=Acme Corp Root")
    assert found.requested


def test_no_certificate_request_means_no_certificate_was_asked_for() -> None:
    reader = HandshakeReader()
    reader.feed(flight(message(14, b"")))
    found = read_advertised(reader, "u")
    assert isinstance(found, AdvertisedCas)
    assert not found.requested


def test_an_empty_authorities_list_is_read_as_no_names() -> None:
    assert parse_certificate_request(certificate_request()[4:]) == ()


def test_an_alert_or_a_cut_flight_is_a_failure_not_an_empty_list() -> None:
    reader = HandshakeReader()
    reader.feed(record(21, b"\x02\x46"))  # fatal protocol_version: a TLS 1.3-only server
    found = read_advertised(reader, "u")
    assert isinstance(found, TransportFailure)
    assert "protocol_version" in found.detail
    cut = HandshakeReader()
    cut.feed(flight(certificate_request(ROOT))[:-3])
    assert isinstance(read_advertised(cut, "u"), TransportFailure)


def test_a_garbled_certificate_request_is_a_failure() -> None:
    reader = HandshakeReader()
    garbled = message(13, b"\x01\x40\x00\x02\x04\x03\x00\x09\x00\x30")
    reader.feed(flight(garbled, message(14, b"")))
    found = read_advertised(reader, "u")
    assert isinstance(found, TransportFailure)
    assert found.kind == "client-error"


def test_an_unparseable_name_is_shown_by_size() -> None:
    assert name_text(b"\x30\x05\x31") == "(unparsed name, 3 bytes)"
