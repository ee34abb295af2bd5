"""Handshake-level scans: the CA names a server advertises in its TLS 1.2 CertificateRequest.

Neither Python's `ssl` nor aiohttp exposes the ``certificate_authorities`` of a CertificateRequest,
and sslyze (which can read them, through nassl) lives in its own virtualenv with an older
`cryptography`. In TLS 1.2 that message travels in the clear, so `advertised_cas` sends a minimal
ClientHello (RFC 5246 §7.4.1.2: TLS 1.2 only, common ECDHE/RSA suites, no session), reads the
server's flight up to ServerHelloDone, and closes the connection: no key exchange, no certificate
sent, nothing decrypted. The byte-level work is sans-I/O (`client_hello`, `HandshakeReader`,
`parse_certificate_request`, `name_text`), and so is unit-tested without sockets.

A server speaking only TLS 1.3 (where the CertificateRequest is encrypted) answers with an alert:
that is reported as a `TransportFailure`, never as "no CA advertised".
"""

from __future__ import annotations

import asyncio
import os
import struct
from dataclasses import dataclass, field

from trustproof.view import AdvertisedCas, CaScan, TransportFailure

TIMEOUT_S = 10.0
MAX_FLIGHT = 256 * 1024  # a server's first flight (certificates included) is far smaller

_HANDSHAKE, _ALERT = 22, 21
_CLIENT_HELLO, _CERTIFICATE_REQUEST, _SERVER_HELLO_DONE = 1, 13, 14
_SUITES = (
    0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8,  # ECDHE, AEAD
    0x009E, 0x009F,  # DHE-RSA-AES-GCM
    0xC009, 0xC013, 0xC00A, 0xC014,  # ECDHE, CBC
    0x009C, 0x009D, 0x002F, 0x0035,  # RSA key exchange
)  # fmt: skip
_GROUPS = (0x001D, 0x0017, 0x0018, 0x0019)  # x25519, P-256, P-384, P-521
_SIGNATURES = (0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601)
_ALERTS = {40: "handshake_failure", 70: "protocol_version", 71: "insufficient_security"}


def _vector(data: bytes, length_bytes: int) -> bytes:
    return len(data).to_bytes(length_bytes, "big") + data


def _extension(kind: int, data: bytes) -> bytes:
    return struct.pack(">H", kind) + _vector(data, 2)


def client_hello(random: bytes | None = None) -> bytes:
    """One TLS record holding a TLS 1.2 ClientHello."""
    random = random if random is not None else os.urandom(32)
    extensions = b"".join(
        (
            _extension(0x000A, _vector(b"".join(struct.pack(">H", g) for g in _GROUPS), 2)),
            _extension(0x000B, _vector(b"\x00", 1)),  # ec_point_formats: uncompressed
            _extension(0x000D, _vector(b"".join(struct.pack(">H", s) for s in _SIGNATURES), 2)),
            _extension(0x0017, b""),  # extended_master_secret
            _extension(0xFF01, b"\x00"),  # renegotiation_info (initial handshake)
        )
    )
    body = b"".join(
        (
            b"\x03\x03",
            random,
            _vector(b"", 1),  # no session id
            _vector(b"".join(struct.pack(">H", s) for s in _SUITES), 2),
            _vector(b"\x00", 1),  # no compression
            _vector(extensions, 2),
        )
    )
    handshake = bytes([_CLIENT_HELLO]) + _vector(body, 3)
    return bytes([_HANDSHAKE]) + b"\x03\x01" + _vector(handshake, 2)


@dataclass
class HandshakeReader:
    """Feeds TLS records in; collects handshake messages (type, body) until ServerHelloDone."""

    _buffer: bytearray = field(default_factory=bytearray)
    _handshake: bytearray = field(default_factory=bytearray)
    messages: list[tuple[int, bytes]] = field(default_factory=list)
    alert: str | None = None

    @property
    def done(self) -> bool:
        return self.alert is not None or any(t == _SERVER_HELLO_DONE for t, _ in self.messages)

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= 5 and not self.done:
            kind, _, length = struct.unpack(">BHH", self._buffer[:5])
            if len(self._buffer) < 5 + length:
                return
            payload = bytes(self._buffer[5 : 5 + length])
            del self._buffer[: 5 + length]
            if kind == _ALERT:
                code = payload[1] if len(payload) > 1 else -1
                self.alert = _ALERTS.get(code, f"alert {code}")
            elif kind == _HANDSHAKE:
                self._handshake += payload
                self._messages()
            else:
                raise ValueError(f"unexpected TLS record type {kind} before ServerHelloDone")

    def _messages(self) -> None:
        while len(self._handshake) >= 4:
            kind = self._handshake[0]
            length = int.from_bytes(self._handshake[1:4], "big")
            if len(self._handshake) < 4 + length:
                return
            self.messages.append((kind, bytes(self._handshake[4 : 4 + length])))
            del self._handshake[: 4 + length]


def parse_certificate_request(body: bytes) -> tuple[bytes, ...]:
    """The DER distinguished names of a TLS 1.2 CertificateRequest (RFC 5246 §7.4.4)."""
    try:
        at = 1 + body[0]  # certificate_types
        at += 2 + int.from_bytes(body[at : at + 2], "big")  # supported_signature_algorithms
        total = int.from_bytes(body[at : at + 2], "big")
        at += 2
        end = at + total
        if end > len(body):
            raise ValueError("certificate_authorities runs past the message")
        names = []
        while at < end:
            size = int.from_bytes(body[at : at + 2], "big")
            names.append(body[at + 2 : at + 2 + size])
            at += 2 + size
    except IndexError as exc:
        raise ValueError("truncated CertificateRequest") from exc
    return tuple(names)


_SHORT = {
    "2.5.4.3": "CN",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "0.9.2342.19200300.100.1.25": "DC",
}


def _tlv(data: bytes, at: int) -> tuple[int, bytes, int]:
    tag, length, at = data[at], data[at + 1], at + 2
    if length & 0x80:
        count = length & 0x7F
        length, at = int.from_bytes(data[at : at + count], "big"), at + count
    if at + length > len(data):
        raise ValueError("truncated DER")
    return tag, data[at : at + length], at + length


def _oid(raw: bytes) -> str:
    parts, value = [], 0
    for byte in raw:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    first = min(parts[0] // 40, 2) if parts else 0
    return ".".join(str(p) for p in (first, parts[0] - 40 * first, *parts[1:])) if parts else ""


def name_text(der: bytes) -> str:
    """A distinguished name's DER as RFC 4514-like text (for evidence; compare DER, not this)."""
    try:
        _, rdns, _ = _tlv(der, 0)
        parts, at = [], 0
        while at < len(rdns):
            _, rdn, at = _tlv(rdns, at)
            inner = 0
            while inner < len(rdn):
                _, pair, inner = _tlv(rdn, inner)
                _, oid, rest = _tlv(pair, 0)
                _, value, _ = _tlv(pair, rest)
                key = _SHORT.get(_oid(oid), _oid(oid))
                parts.append(f"{key}={value.decode('utf-8', 'replace')}")
        return ",".join(reversed(parts)) or "(empty name)"
    except (IndexError, ValueError):
        return f"(unparsed name, {len(der)} bytes)"


def read_advertised(reader: HandshakeReader, url: str) -> CaScan:
    """What a finished `reader` says: the advertised names, or why there are none to read."""
    if reader.alert is not None:
        return TransportFailure(
            "handshake-failed", f"the server refused a TLS 1.2 ClientHello: {reader.alert}", url
        )
    if not reader.done:
        return TransportFailure(
            "connection-closed", "the connection ended before ServerHelloDone", url
        )
    for kind, body in reader.messages:
        if kind == _CERTIFICATE_REQUEST:
            try:
                ders = parse_certificate_request(body)
            except ValueError as exc:
                return TransportFailure(
                    "client-error", f"unreadable CertificateRequest: {exc}", url
                )
            return AdvertisedCas(tuple(name_text(d) for d in ders), ders, True, url)
    return AdvertisedCas((), (), requested=False, url=url)


async def advertised_cas(host: str, port: int) -> CaScan:
    """Connect to `host:port`, read the CertificateRequest's CA names, close."""
    url = f"https://{host}:{port}"
    try:
        async with asyncio.timeout(TIMEOUT_S):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(client_hello())
                await writer.drain()
                handshake, received = HandshakeReader(), 0
                while not handshake.done and received < MAX_FLIGHT:
                    data = await reader.read(16384)
                    if not data:
                        break
                    received += len(data)
                    handshake.feed(data)
            finally:
                writer.close()
    except TimeoutError:
        return TransportFailure("timeout", f"no ServerHelloDone within {TIMEOUT_S:.0f} s", url)
    except ConnectionRefusedError as exc:
        return TransportFailure("connection-refused", f"{type(exc).__name__}: {exc}", url)
    except OSError as exc:
        return TransportFailure("connection-reset", f"{type(exc).__name__}: {exc}", url)
    except ValueError as exc:
        return TransportFailure("client-error", f"not a TLS 1.2 server hello: {exc}", url)
    return read_advertised(handshake, url)
