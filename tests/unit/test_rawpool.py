"""Which exact requests may share a kept-alive connection, and after which answers a connection
may carry another request (`trustproof.sandbox.rawpool`, `rawhttp.keeps_connection`)."""

from __future__ import annotations

import pytest

from trustproof.sandbox.rawhttp import encode_request, keeps_connection
from trustproof.sandbox.rawpool import reusable_request, writable_as_is

KEPT = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno"


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("GET", ()),
        ("HEAD", ()),
        ("POST", (("Content-Type", "application/json"),)),
        ("GET", (("X-HTTP-Method-Override", "DELETE"),)),
        ("GET", (("X-Original-URL", "/admin"),)),
    ],
)
def test_a_request_that_leaves_the_connection_alone_may_share_one(
    method: str, headers: tuple[tuple[str, str], ...]
) -> None:
    assert reusable_request(method, headers)


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("CONNECT", ()),
        ("GET", (("Connection", "X-Trustproof-Spiffe-Id"),)),
        ("GET", (("connection", "keep-alive"),)),
        ("POST", (("Transfer-Encoding", "chunked"),)),
        ("POST", ((" Content-Length ", "5"),)),
        ("GET", (("Upgrade", "h2c"),)),
        ("GET", (("Expect", "100-continue"),)),
        ("GET", (("Keep-Alive", "timeout=5"),)),
    ],
)
def test_a_request_touching_framing_or_the_connection_gets_its_own(
    method: str, headers: tuple[tuple[str, str], ...]
) -> None:
    assert not reusable_request(method, headers)


def test_a_kept_alive_request_is_written_without_connection_close() -> None:
    kept = encode_request("GET", "/./x", "127.0.0.1:1", keep_alive=True)
    assert kept == b"GET /./x HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n"
    assert b"Connection: close" in encode_request("GET", "/./x", "127.0.0.1:1")


@pytest.mark.parametrize(
    ("data", "method"),
    [
        (KEPT, "GET"),
        (KEPT, "POST"),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", "GET"),
    ],
)
def test_one_answer_framed_by_its_length_keeps_the_connection(data: bytes, method: str) -> None:
    assert keeps_connection(data, method)


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno",
        b"HTTP/1.0 403 Forbidden\r\nContent-Length: 2\r\n\r\nno",  # 1.0: closes by default
        b"HTTP/1.1 200 OK\r\n\r\nframed by the close",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        KEPT + b"HTTP/1.1 200 OK\r\n",  # bytes after the answer: not ours to read
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok",  # short
        b"garbage\r\n\r\n",
        b"",
    ],
)
def test_anything_else_closes_it(data: bytes) -> None:
    assert not keeps_connection(data, "GET")


@pytest.mark.parametrize(
    ("data", "method"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD"),
        (b"HTTP/1.1 204 No Content\r\n\r\n", "GET"),
        (b"HTTP/1.1 304 Not Modified\r\n\r\n", "GET"),
    ],
)
def test_no_answer_that_must_be_bodiless_keeps_it(data: bytes, method: str) -> None:
    # a server sending a body anyway would leave it to be read as the next request's answer
    assert not keeps_connection(data, method)


@pytest.mark.parametrize(
    ("method", "target", "headers"),
    [
        ("GET", "/orders/1", (("Authorization", "Bearer eyJ.x.y"),)),
        ("GET", "/orders/1?access_token=eyJ.x.y", ()),
        ("POST", "/orders", (("Cookie", "access_token=eyJ.x.y"), ("X-Forwarded-User", "bob"))),
        ("DELETE", "/a/b~c-d_e.f%20", ()),
    ],
)
def test_a_request_aiohttp_would_send_unchanged_may_go_raw(
    method: str, target: str, headers: tuple[tuple[str, str], ...]
) -> None:
    assert writable_as_is(method, target, headers)


@pytest.mark.parametrize(
    ("method", "target", "headers"),
    [
        ("GET", "/a b", ()),  # aiohttp would percent-encode the space
        ("GET", "/caf\u00e9", ()),  # and anything not ASCII
        ("GET", "orders", ()),  # not origin-form
        ("GET", "/x\x7f", ()),
        ("G ET", "/x", ()),
        ("GET", "/x", (("X-Name", "\u0100"),)),  # not latin-1
        ("GET", "/x", (("X-Name", "a\r\nX-Other: b"),)),
    ],
)
def test_anything_else_stays_with_aiohttp(
    method: str, target: str, headers: tuple[tuple[str, str], ...]
) -> None:
    assert not writable_as_is(method, target, headers)
