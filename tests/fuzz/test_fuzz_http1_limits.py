"""The HTTP/1.1 parser's size limits hold the same whatever the chunking, at the exact boundary,
and its cost stays linear when a response trickles in byte by byte.

Random bytes never reach a 64 KiB head, so these properties generate sizes around the limits."""

from __future__ import annotations

from fuzzkit import kept_if_failing, narrow
from http1_oracle import Parsed, Refused, brief, check_response, outcome
from hypothesis import given
from hypothesis import strategies as st

from trustproof.gateway.http1 import MAX_HEAD, ResponseParser

CHUNK_LINE_LIMIT = 4096  # the parser's bound on one chunk-size line (extensions included)


def head_of(length: int) -> bytes:
    """A 200 response head whose status line and fields are exactly `length` bytes (the blank
    line not included), padded in one header value."""
    fixed = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Pad: "
    return fixed + b"p" * (length - len(fixed)) + b"\r\n\r\n"


@narrow(0.1)
@given(st.integers(MAX_HEAD - 6, MAX_HEAD + 6))
def test_a_head_at_the_limit_is_judged_the_same_in_any_chunking(length: int) -> None:
    wire = head_of(length)
    with kept_if_failing("http1", wire):
        whole = outcome([wire])
        # The limit is on the head itself (status line and fields), without the final CRLF CRLF.
        expected_ok = length <= MAX_HEAD
        assert isinstance(whole, Parsed) == expected_ok, f"{length}: {brief(whole)}"
        if not expected_ok:
            assert whole == Refused("malformed-response")
        check_response(wire, every_split=False)
        for cut in range(len(wire) - 8, len(wire)):
            assert outcome([wire[:cut], wire[cut:]]) == whole, f"split at {cut}"


@narrow(0.1)
@given(st.integers(CHUNK_LINE_LIMIT - 6, CHUNK_LINE_LIMIT + 6), st.integers(0, 4))
def test_a_chunk_size_line_at_the_limit_is_judged_the_same_in_any_chunking(
    length: int, back: int
) -> None:
    line = b"5;" + b"e" * (length - 2)
    wire = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + line + b"\r\nhello\r\n0\r\n\r\n"
    )
    with kept_if_failing("http1", wire):
        whole = outcome([wire])
        assert isinstance(whole, Parsed) == (length <= CHUNK_LINE_LIMIT), (
            f"{length}: {brief(whole)}"
        )
        cut = wire.index(b"\r\nhello") + 2 - back  # just before, inside or after the CRLF
        assert outcome([wire[:cut], wire[cut:]]) == whole, f"split at {cut}"


class CountingBuffer(bytearray):
    """A bytearray that counts the bytes its searches look at."""

    scanned = 0

    def find(self, sub: object, start: object = None, *rest: object) -> int:  # type: ignore[override]
        begin = 0 if start is None else int(start)  # type: ignore[call-overload]
        CountingBuffer.scanned += max(0, len(self) - begin)
        return super().find(sub, start, *rest)  # type: ignore[arg-type]

    def __contains__(self, sub: object) -> bool:
        CountingBuffer.scanned += len(self)
        return super().__contains__(sub)  # type: ignore[operator]


def test_a_head_trickling_in_byte_by_byte_is_scanned_a_bounded_number_of_times() -> None:
    """A 60 KB head fed one byte at a time once cost ~1.8 G bytes of searching (4 s of CPU on
    the gateway's event loop); the work must stay proportional to the size."""
    wire = head_of(60_000)
    parser = ResponseParser("GET")
    parser._buf = CountingBuffer()
    CountingBuffer.scanned = 0
    for i in range(len(wire)):
        parser.feed(wire[i : i + 1])
    assert parser.response is not None
    assert CountingBuffer.scanned < 20 * len(wire), f"{CountingBuffer.scanned} bytes searched"
