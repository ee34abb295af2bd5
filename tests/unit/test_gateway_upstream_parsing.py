"""The upstream client's sans-I/O half: request encoding and strict response parsing, no sockets.

Each accepted shape has a twin that is refused with the specific reason: the gateway relays what
this parser accepts, so anything ambiguous must fail rather than be guessed at."""

from __future__ import annotations

import pytest

from trustproof.gateway.http1 import (
    ResponseParser,
    UpstreamError,
    UpstreamResponse,
    encode_request,
    origin_form,
)
from trustproof.gateway.server import _host_port

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
    b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n"
)


def parse(data: bytes, method: str = "GET", *, max_body: int = 1024) -> ResponseParser:
    parser = ResponseParser(method, max_body=max_body)
    assert parser.feed(data)
    return parser


def refused(data: bytes, method: str = "GET", *, max_body: int = 1024, eof: bool = False) -> str:
    parser = ResponseParser(method, max_body=max_body)

    def feed() -> None:
        parser.feed(data)
        if eof:
            parser.feed_eof()

    with pytest.raises(UpstreamError) as caught:
        feed()
    return caught.value.reason


# -- framing -----------------------------------------------------------------------------------


def test_content_length_body() -> None:
    parser = parse(OK)
    assert parser.response == UpstreamResponse(
        200, (("Content-Type", "text/plain"), ("Content-Length", "5")), b"hello"
    )
    assert parser.reusable


@pytest.mark.parametrize("data", [OK, CHUNKED])
def test_any_split_of_the_bytes_parses_the_same(data: bytes) -> None:
    whole = parse(data).response
    for cut in range(1, len(data)):
        parser = ResponseParser("GET")
        assert not parser.feed(data[:cut])
        assert parser.feed(data[cut:])
        assert parser.response == whole


def test_response_cut_short_is_closed_mid_response() -> None:
    parser = ResponseParser("GET")
    assert not parser.feed(OK[:-1])
    with pytest.raises(UpstreamError) as caught:
        parser.feed_eof()
    assert caught.value.reason == "closed-mid-response"


def test_eof_before_any_byte_is_closed_before_response() -> None:
    parser = ResponseParser("GET")
    with pytest.raises(UpstreamError) as caught:
        parser.feed_eof()
    assert caught.value.reason == "closed-before-response"
    assert not parser.received


def test_chunked_body_with_extension_and_trailers_dropped() -> None:
    parser = parse(CHUNKED)
    assert parser.response is not None
    assert parser.response.body == b"hello world"
    assert ("X-Sum", "42") not in parser.response.headers
    assert parser.reusable


@pytest.mark.parametrize(
    "tail",
    [
        b"5\r\nhelloXX0\r\n\r\n",  # data not followed by CRLF
        b"5 x\r\nhello\r\n0\r\n\r\n",  # junk after the size
        b"-5\r\nhello\r\n0\r\n\r\n",
        b"0\r\n bad trailer\r\n\r\n",  # obs-fold in the trailers
        b"0\r\nX-Sum: 4\n2\r\n\r\n",  # bare LF in the trailers
    ],
)
def test_bad_chunked_framing_is_malformed(tail: bytes) -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert refused(head + tail) == "malformed-response"


def test_interim_100_continue_is_skipped() -> None:
    parser = parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n" + OK)
    assert parser.response is not None
    assert (parser.response.status, parser.response.body) == (200, b"hello")


def test_switching_protocols_was_never_asked_for() -> None:
    assert refused(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n") == (
        "malformed-response"
    )


@pytest.mark.parametrize(
    ("method", "head"),
    [
        ("GET", b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"),
        ("GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"),
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
        ("HEAD", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
    ],
)
def test_no_body_responses(method: str, head: bytes) -> None:
    parser = parse(head, method)
    assert parser.response is not None
    assert parser.response.body == b""
    assert parser.reusable


def test_same_head_to_a_get_waits_for_the_body() -> None:  # twin of the HEAD case above
    parser = ResponseParser("GET")
    assert not parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")


def test_close_delimited_body_ends_at_eof_and_is_not_reused() -> None:
    parser = ResponseParser("GET")
    assert not parser.feed(b"HTTP/1.1 200 OK\r\n\r\nuntil ")
    assert not parser.feed(b"close")
    assert parser.feed_eof()
    assert parser.response is not None
    assert parser.response.body == b"until close"
    assert not parser.reusable


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, CLOSE\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n",  # unsolicited bytes
    ],
)
def test_connection_not_reusable(head: bytes) -> None:
    assert not parse(head).reusable


# -- strictness --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 2OO OK\r\n\r\n",
        b"HTTP/2 200 OK\r\n\r\n",
        b"ICY 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n",  # obs-fold
        b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",  # bare LF
        b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n",  # bare CR
        b"HTTP/1.1 200 OK\r\nBad Name: 1\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\n\n",  # bare LF only: refused before any CRLF CRLF arrives
    ],
)
def test_malformed_heads_are_refused(data: bytes) -> None:
    assert refused(data) == "malformed-response"


def test_equal_repeated_content_length_is_accepted() -> None:  # twin of the 5-and-6 case
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"
    assert parse(head).reusable


def test_head_larger_than_64_kib_is_refused() -> None:
    data = b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 70_000 + b"\r\n"
    assert refused(data) == "malformed-response"


@pytest.mark.parametrize(
    ("data", "eof"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\n", False),
        (b"HTTP/1.1 200 OK\r\n\r\nhello world", True),
    ],
)
def test_body_over_max_body_is_refused(data: bytes, eof: bool) -> None:
    assert refused(data, max_body=10, eof=eof) == "body-too-large"


def test_body_of_exactly_max_body_is_accepted() -> None:
    assert parse(OK, max_body=5).response is not None


# -- requests ----------------------------------------------------------------------------------


def test_request_head_is_exact() -> None:
    head = encode_request("GET", "/orders/7?x=1", "127.0.0.1:8080", [("Accept", "*/*")], b"")
    assert head == b"GET /orders/7?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: */*\r\n\r\n"


@pytest.mark.parametrize(
    ("method", "body", "length"),
    [("POST", b"", "0"), ("PATCH", b"", "0"), ("PUT", b"{}", "2"), ("DELETE", b"", None)],
)
def test_content_length_is_written_by_the_pool(
    method: str, body: bytes, length: str | None
) -> None:
    head = encode_request(method, "/x", "h", [], body)
    if length is None:
        assert b"Content-Length" not in head
    else:
        assert head.endswith(b"Content-Length: " + length.encode() + b"\r\n\r\n")


def test_callers_framing_headers_are_dropped() -> None:
    headers = [
        ("host", "evil"),
        ("Content-Length", "99"),
        ("Transfer-Encoding", "chunked"),
        ("Connection", "close"),
        ("X-Kept", "1"),
    ]
    head = encode_request("POST", "/x", "h:1", headers, b"abc")
    assert head == b"POST /x HTTP/1.1\r\nHost: h:1\r\nX-Kept: 1\r\nContent-Length: 3\r\n\r\n"


@pytest.mark.parametrize(
    ("method", "target", "headers"),
    [
        ("GET", "/x", [("X-A", "1\r\nX-Injected: 1")]),
        ("GET", "/x", [("X-A\r\nX-B", "1")]),
        ("GET", "/x", [("X-A", "1\nX-B: 2")]),
        ("GET", "/x", [("X-A", "nul\0")]),
        ("GET", "/x", [("X-A", "snow \u2603")]),
        ("GET", "/x HTTP/1.1\r\nX-B: 1", []),
        ("GET /y", "/x", []),
    ],
)
def test_request_that_cannot_be_written_safely_is_refused(
    method: str, target: str, headers: list[tuple[str, str]]
) -> None:
    with pytest.raises(UpstreamError) as caught:
        encode_request(method, target, "h", headers, b"")
    assert caught.value.reason == "invalid-request"


@pytest.mark.parametrize(
    ("path", "query", "target"),
    [
        ("/orders/7", "", "/orders/7"),
        ("/orders/7", "a=1&b=%2F", "/orders/7?a=1&b=%2F"),
        ("/café", "", "/caf%C3%A9"),
        ("/orders/x?y", "", "/orders/x%3Fy"),  # a decoded '?' never becomes a query upstream
        ("/a/!$&'()*+,;=:@-._~", "", "/a/!$&'()*+,;=:@-._~"),
        ('/a/"<>[]^`{|}', "q=é", "/a/%22%3C%3E%5B%5D%5E%60%7B%7C%7D?q=%C3%A9"),
    ],
)
def test_origin_form(path: str, query: str, target: str) -> None:
    assert origin_form(path, query) == target


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("http://127.0.0.1:8080/", ("127.0.0.1", 8080)),
        ("http://localhost", ("localhost", 80)),
        ("http://[::1]:9000", ("::1", 9000)),
    ],
)
def test_gateway_upstream_url(url: str, address: tuple[str, int]) -> None:
    assert _host_port(url) == address


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://127.0.0.1:8080", "expected http://host:port"),
        ("http://127.0.0.1:8080/api", "expected http://host:port"),
        ("http://127.0.0.1:8080?x=1", "expected http://host:port"),
        ("127.0.0.1:8080", "expected http://host:port"),
        ("http://127.0.0.1:99999", "bad port"),
    ],
)
def test_gateway_upstream_url_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _host_port(url)
