"""The decisions of `trustproof.sandbox.egress_attempts` that need no socket: what a resolver's
answer and a PostgreSQL login message mean, the StartupMessage bytes, and the attempts refused
before any socket is made (a name instead of an address; TLS attempts without a context)."""

from __future__ import annotations

import asyncio
import errno
import socket
import struct

import dns.message
import dns.rcode
import dns.rrset
import pytest

from trustproof.sandbox.egress_attempts import (
    SSL_REQUEST,
    _network,
    attempt,
    dns_verdict,
    error_fields,
    login_verdict,
    startup_message,
)
from trustproof.view import EgressAttempt


def answer_to(name: str, rcode: int, *addresses: str) -> dns.message.Message:
    query = dns.message.make_query(name, "A")
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    if addresses:
        response.answer.append(dns.rrset.from_text(name + ".", 60, "IN", "A", *addresses))
    return response


def test_refused_and_nxdomain_from_the_resolver_are_refusals() -> None:
    assert dns_verdict("example.com", answer_to("example.com", dns.rcode.REFUSED)).outcome == (
        "refused"
    )
    result = dns_verdict("example.com", answer_to("example.com", dns.rcode.NXDOMAIN))
    assert (result.outcome, result.detail) == ("refused", "example.com: NXDOMAIN")


def test_an_address_for_an_undeclared_name_got_through_with_the_address() -> None:
    result = dns_verdict("example.com", answer_to("example.com", dns.rcode.NOERROR, "192.0.2.7"))
    assert result.outcome == "answered"
    assert "192.0.2.7" in result.detail
    # NOERROR without an address still says the name exists out there: not a refusal
    assert dns_verdict("x.test", answer_to("x.test", dns.rcode.NOERROR)).outcome == "answered"


def test_servfail_is_neither_refusal_nor_answer() -> None:
    assert dns_verdict("x.test", answer_to("x.test", dns.rcode.SERVFAIL)).outcome == "error"


def auth(code: int) -> bytes:
    return struct.pack("!i", code)


def test_authentication_ok_is_a_login_as_the_other_role() -> None:
    result = login_verdict("payments", b"R", auth(0))
    assert result is not None
    assert (result.outcome, result.detail) == (
        "connected",
        "logged in as role payments (AuthenticationOk)",
    )


def test_an_error_response_is_a_refusal_with_sqlstate_and_message() -> None:
    payload = b'SFATAL\x00C28000\x00Mcertificate authentication failed for user "payments"\x00\x00'
    assert error_fields(payload)["C"] == "28000"
    result = login_verdict("payments", b"E", payload)
    assert result is not None
    assert result.outcome == "refused"
    assert result.detail.startswith('28000: certificate authentication failed for user "payments"')


@pytest.mark.parametrize(("code", "method"), [(3, "cleartext"), (5, "MD5"), (10, "SASL")])
def test_a_password_request_is_a_refusal_none_is_sent(code: int, method: str) -> None:
    result = login_verdict("payments", b"R", auth(code))
    assert result is not None
    assert result.outcome == "refused"
    assert method in result.detail


def test_notices_are_read_past_and_anything_else_is_an_error() -> None:
    assert login_verdict("payments", b"N", b"SNOTICE\x00\x00") is None
    result = login_verdict("payments", b"Z", b"I")
    assert result is not None
    assert result.outcome == "error"


def test_startup_message_is_protocol_3_with_user_and_database() -> None:
    message = startup_message("payments", "shop")
    length, version = struct.unpack("!ii", message[:8])
    assert length == len(message)
    assert version == 3 << 16
    assert message[8:].split(b"\x00")[:4] == [b"user", b"payments", b"database", b"shop"]
    assert message.endswith(b"\x00\x00")
    assert struct.unpack("!ii", SSL_REQUEST) == (8, 80877103)


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (errno.ECONNREFUSED, "blocked"),
        (errno.ENETUNREACH, "blocked"),
        (errno.EHOSTUNREACH, "blocked"),
        (errno.EPERM, "blocked"),
        (errno.ENOBUFS, "error"),
    ],
)
def test_network_layer_errors_are_blocked_others_are_errors(code: int, outcome: str) -> None:
    result = _network(OSError(code, "x"))
    assert result.outcome == outcome
    assert errno.errorcode[code] in result.detail


def never(family: int, kind: int) -> socket.socket:
    raise AssertionError("no socket may be made")


def test_a_name_is_never_resolved_outside_the_namespace() -> None:
    a = EgressAttempt("tcp", "payments.example", 443)
    result = asyncio.run(attempt(never, a, 1.0))
    assert result.outcome == "error"
    assert "not an IP address" in result.detail


@pytest.mark.parametrize("kind", ["http", "postgres"])
def test_tls_attempts_need_the_services_context(kind: str) -> None:
    a = EgressAttempt(kind, "127.0.0.1", 5432, role="x")  # type: ignore[arg-type]
    result = asyncio.run(attempt(never, a, 1.0))
    assert (result.outcome, result.detail) == ("error", f"{kind} needs the service's TLS context")


def test_no_socket_in_the_namespace_is_an_error() -> None:
    def gone(family: int, kind: int) -> socket.socket:
        raise OSError(errno.EBADF, "namespace deleted")

    result = asyncio.run(attempt(gone, EgressAttempt("tcp", "192.0.2.10", 443), 1.0))
    assert result.outcome == "error"
    assert "EBADF" in result.detail
