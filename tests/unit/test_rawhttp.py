"""The raw HTTP/1.1 writer (`trustproof.sandbox.rawhttp`): the request line and headers leave
byte for byte as given — no normalisation, no re-encoding — and answers are parsed with
case-insensitive headers. No sockets here (the integration test sends over one)."""

from __future__ import annotations

import pytest

from trustproof.sandbox.rawhttp import (
    OTHER_HOST,
    _complete,
    _completed,
    _parse,
    encode_request,
    host_header,
    parse_response,
)

TRICKY = [
    "/./x",
    "/a/../x",
    "/%2e/x",
    "/%61dmin",
    "//admin",
    "/admin;x=1",
    "/zz/..;/admin",
    "/admin.",
    "/admin?",
    "/admin#x",
    "/Admin/%2F",
    "https://127.0.0.1:1/admin",
]


@pytest.mark.parametrize("target", TRICKY)
def test_the_request_line_is_the_target_exactly_as_given(target: str) -> None:
    raw = encode_request("GET", target, "127.0.0.1:8443", [("X-Original-URL", "/ok")])
    assert raw.split(b"\r\n", 1)[0] == f"GET {target} HTTP/1.1".encode()
    assert (
        raw
        == (
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:8443\r\nX-Original-URL: /ok\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
    )


def test_a_body_gets_its_length_and_nothing_else_changes() -> None:
    raw = encode_request(
        "POST", "/%2e/orders", "h:1", [("content-type", "application/json")], b"{}"
    )
    head, _, body = raw.partition(b"\r\n\r\n")
    assert body == b"{}"
    assert head.split(b"\r\n") == [
        b"POST /%2e/orders HTTP/1.1",
        b"Host: h:1",
        b"content-type: application/json",  # header names keep their case too
        b"Connection: close",
        b"Content-Length: 2",
    ]


@pytest.mark.parametrize("bad", ["/x\r\nX-Injected: 1", "/x\n", "/x\x00"])
def test_cr_lf_or_nul_is_refused_not_written(bad: str) -> None:
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        encode_request("GET", bad, "h:1")
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        encode_request("GET", "/", "h:1", [("X-A", bad)])


def test_host_variants_derive_from_the_servers_authority() -> None:
    assert host_header("as-is", "127.0.0.1", 8443) == "127.0.0.1:8443"
    assert host_header("other-host", "127.0.0.1", 8443) == f"{OTHER_HOST}:8443"
    assert host_header("other-port", "127.0.0.1", 8443) == "127.0.0.1:1"
    assert host_header("no-port", "127.0.0.1", 8443) == "127.0.0.1"
    assert host_header("trailing-dot", "localhost", 8443) == "localhost.:8443"
    assert host_header("upper-case", "localhost", 8443) == "LOCALHOST:8443"
    assert host_header("upper-case", "127.0.0.1", 8443) == "LOCALHOST:8443"  # an IP has no case
    assert host_header("as-is", "::1", 8443) == "[::1]:8443"


def test_answers_are_parsed_with_case_insensitive_headers() -> None:
    status, headers, body = parse_response(
        b"HTTP/1.1 200 OK\r\nx-served-by: orders\r\nContent-Length: 2\r\n\r\n{}trailing"
    )
    assert (status, body) == (200, b"{}")
    assert headers["X-Served-By"] == "orders"


def test_a_head_answer_has_no_body_whatever_its_length_says() -> None:
    status, headers, body = parse_response(
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 10\r\n\r\n", method="HEAD"
    )
    assert (status, headers["content-length"], body) == (403, "10", b"")


def test_chunked_answers_are_reassembled() -> None:
    _, _, body = parse_response(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n"
    )
    assert body == b"abc"


@pytest.mark.parametrize(
    ("data", "complete"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n", False),  # head not finished
        (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd", True),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n", False),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n", True),
        (b"HTTP/1.1 204 No Content\r\n\r\n", True),
        (b"HTTP/1.1 200 OK\r\n\r\nuntil the close", False),  # framed by EOF only
        (b"not http at all\r\n\r\n", True),  # malformed: stop, the parse reports it
    ],
)
def test_an_answer_is_complete_when_its_own_framing_says_so(data: bytes, complete: bool) -> None:
    assert _complete(data, "GET") is complete


@pytest.mark.parametrize(
    ("data", "method"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd", "GET"),
        (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope", "GET"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabHTTP/1.1 200 OK\r\n\r\n", "GET"),
        (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 10\r\n\r\n", "HEAD"),
        (b"HTTP/1.1 204 No Content\r\n\r\n", "GET"),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", "GET"),
    ],
)
def test_an_answer_found_complete_is_parsed_once_as_the_parse_would(
    data: bytes, method: str
) -> None:
    complete, parsed = _completed(data, method)
    assert complete
    assert parsed == _parse(data, method)


def test_a_head_answer_is_complete_after_its_head() -> None:
    assert _complete(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 10\r\n\r\n", "HEAD")
