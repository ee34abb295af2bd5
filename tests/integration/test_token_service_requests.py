"""Malformed requests to the token service, sent as exact bytes over mTLS on loopback.

HTTP clients normalise paths and headers, so each request is written by hand on a raw TLS socket.
Every malformed request must get a 4xx OAuth JSON error (never a 500, never a token); each group
has its passing twin — the same request, well formed, that succeeds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from trustproof.clock import ManualClock
from trustproof.fabric import TrustFabric
from trustproof.identity import Svid
from trustproof.spec import load_spec
from trustproof.tls import client_context

pytestmark = pytest.mark.integration

FORM = "application/x-www-form-urlencoded"
GRANT = b"grant_type=client_credentials&audience=payments"
IO_TIMEOUT_S = 10.0


def send(fabric: TrustFabric, svid: Svid | None, raw: bytes) -> tuple[int, dict[str, Any]]:
    """Write `raw` on a fresh mTLS connection; the status and JSON body of the answer."""
    parts = urlsplit(fabric.url)
    assert parts.hostname in ("127.0.0.1", "::1")  # loopback only
    context = client_context(fabric.ca.bundle_pem(), svid)
    context.check_hostname = False
    with (
        socket.create_connection((parts.hostname, parts.port), timeout=IO_TIMEOUT_S) as plain,
        context.wrap_socket(plain) as tls,
    ):
        tls.sendall(raw)
        data = b""
        while len(data) < 1_000_000:
            try:
                chunk = tls.recv(65536)
            except (ssl.SSLError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"application/json" in head.lower(), head
    return status, json.loads(body)


def request(
    target: str,
    body: bytes = GRANT,
    *,
    content_type: str = FORM,
    extra: str = "",
    method: str = "POST",
) -> bytes:
    head = (
        f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode("latin-1") + body


def run(shop_spec_path: Path, check: Any) -> None:
    async def main() -> None:
        fabric = await TrustFabric.start(
            load_spec(shop_spec_path), clock=ManualClock(datetime.now(UTC))
        )
        try:
            await asyncio.wait_for(asyncio.to_thread(check, fabric), timeout=60)
        finally:
            await fabric.close()

    asyncio.run(main())


def assert_refused(answer: tuple[int, dict[str, Any]], status: int, fragment: str) -> None:
    got, body = answer
    assert got == status, body
    assert body["error"] == "invalid_request", body
    assert fragment in body["error_description"], body
    assert "access_token" not in body


MALFORMED = [
    (request("/token", content_type=f"{FORM}; charset=bogus"), 400, "charset 'bogus'"),
    (request("/token", content_type=f"{FORM}; charset=utf-16"), 400, "charset 'utf-16'"),
    (request("/token", GRANT + b"&x=\xff"), 400, "raw non-ASCII byte"),
    (request("/token", extra="Content-Encoding: gzip\r\n"), 415, "Content-Encoding 'gzip'"),
    (request("/token", GRANT + b"&grant_type=client_credentials"), 400, "repeated"),
    (request("/token", GRANT + b"&audience=payments"), 400, "'audience' is repeated"),
    (request("/%74oken"), 404, "no endpoint at '/%74oken'"),
    (request("/x/../token"), 404, "no endpoint"),
    (request("/token?audience=payments"), 400, "no query component"),
    (request("/token", b"a=" + b"x" * 70_000), 413, "larger than"),
    (
        request(
            "/admin/tokens",
            b'{"subject": "alice"}',
            content_type="application/json; charset=utf-16",
        ),
        400,
        "charset 'utf-16'",
    ),
    (
        request("/admin/tokens", b'{"subject": "\xff"}', content_type="application/json"),
        400,
        "JSON",
    ),
]


def test_malformed_requests_get_oauth_errors_and_the_wellformed_twin_a_token(
    shop_spec_path: Path,
) -> None:
    def check(fabric: TrustFabric) -> None:
        orders = fabric.issue("orders")
        # The passing twin: the same bytes, well formed, get a token.
        status, body = send(fabric, orders, request("/token"))
        assert status == 200, body
        assert body["access_token"]
        status, body = send(
            fabric, orders, request("/token", content_type=f"{FORM}; charset=UTF-8")
        )
        assert status == 200, body
        wrong = []  # every case is tried, so a failure lists all that are answered wrongly
        for raw, expected, fragment in MALFORMED:
            try:
                assert_refused(send(fabric, orders, raw), expected, fragment)
            except (AssertionError, ValueError) as exc:
                wrong.append(f"{raw.split(b' HTTP')[0]!r}: {str(exc).splitlines()[0][:160]}")
        assert wrong == []

    run(shop_spec_path, check)


def test_a_chunked_body_over_the_limit_is_refused(shop_spec_path: Path) -> None:
    def check(fabric: TrustFabric) -> None:
        chunk = b"x" * 8192
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(10))
        raw = (
            b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Content-Type: " + FORM.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\na=xxx\r\n" + chunks + b"0\r\n\r\n"
        )
        assert_refused(send(fabric, fabric.issue("orders"), raw), 413, "larger than")

    run(shop_spec_path, check)


def test_introspection_is_for_the_admin_and_the_workloads_only(shop_spec_path: Path) -> None:
    def check(fabric: TrustFabric) -> None:
        status, body = send(fabric, fabric.issue("orders"), request("/token"))
        assert status == 200, body
        form = b"token=" + body["access_token"].encode()
        for who in ("payments", "orders", "storefront"):
            status, answer = send(fabric, fabric.issue(who), request("/introspect", form))
            assert (status, answer["active"]) == (200, True)
        status, answer = send(fabric, fabric.admin, request("/introspect", form))
        assert (status, answer["active"]) == (200, True)
        # A persona's certificate is refused outright; no certificate is 401.
        status, answer = send(fabric, fabric.issue("alice"), request("/introspect", form))
        assert (status, answer["error"]) == (403, "unauthorized_client")
        assert "active" not in answer
        status, answer = send(fabric, None, request("/introspect", form))
        assert (status, answer["error"]) == (401, "invalid_client")

    run(shop_spec_path, check)


def test_a_coded_body_is_refused_without_being_inflated(
    shop_spec_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A deflate/gzip-coded body is refused with 415 before it is read; aiohttp must not try to
    inflate it either (it did, and logged an "Unhandled exception" traceback for each)."""

    def check(fabric: TrustFabric) -> None:
        orders = fabric.issue("orders")
        for coding in ("deflate", "gzip", "br"):
            raw = request(
                "/token", b"not compressed at all", extra=f"Content-Encoding: {coding}\r\n"
            )
            assert_refused(send(fabric, orders, raw), 415, f"Content-Encoding {coding!r}")
        # The twin: the same request without the coding header is parsed (and refused for what
        # its form says, not for its coding).
        status, body = send(fabric, orders, request("/token", b"not compressed at all"))
        assert (status, body["error"]) == (400, "invalid_request")
        assert "malformed" in body["error_description"]

    with caplog.at_level(logging.DEBUG):
        run(shop_spec_path, check)
    noisy = [
        r for r in caplog.records if r.name.startswith("aiohttp") and r.levelno >= logging.ERROR
    ]
    assert noisy == []


PARSER_REFUSALS = [
    # a broken chunk size
    b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: " + FORM.encode() + b"\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    # not a request line
    b"GARBAGE\r\n\r\n",
    # a control byte in a header name
    b"POST /token HTTP/1.1\r\nHost: x\r\nBad\x01Header: 1\r\nContent-Length: 0\r\n\r\n",
    # a header far over aiohttp's limit
    b"GET /jwks.json HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
]


def test_requests_the_http_parser_refuses_get_oauth_errors_and_one_quiet_log_line(
    shop_spec_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Malformed at the HTTP level, each carrying a bearer token: a 4xx OAuth JSON error, and no
    log record with the raw bytes (aiohttp logged a traceback quoting them)."""
    secret = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.c2lnbmF0dXJlLWZvci1wYXJzZXI"

    def check(fabric: TrustFabric) -> None:
        orders = fabric.issue("orders")
        wrong = []
        for template in PARSER_REFUSALS:
            raw = template.replace(
                b"Host: x", b"Host: x\r\nAuthorization: Bearer " + secret.encode()
            )
            try:
                status, body = send(fabric, orders, raw)
                assert 400 <= status < 500, (status, body)
                assert body["error"] == "invalid_request", body
            except (AssertionError, ValueError) as exc:
                wrong.append(f"{raw[:30]!r}: {str(exc).splitlines()[0][:160]}")
        assert wrong == []
        # The twin: the service still answers well-formed requests on fresh connections.
        status, body = send(fabric, orders, request("/token"))
        assert status == 200, body

    with caplog.at_level(logging.DEBUG):
        run(shop_spec_path, check)
    assert secret not in caplog.text
    assert not [r for r in caplog.records if r.exc_info and r.name.startswith("aiohttp")]
