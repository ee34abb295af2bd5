"""Property tests of the gateway's HTTP/1.1 response parser (`trustproof.gateway.http1`).

Generated valid responses (interim 1xx, Content-Length, chunked with extensions and trailers,
read-until-close, HEAD/204/304) parse to exactly what was generated, whatever the chunking;
arbitrary and mutated bytes never raise anything but `UpstreamError`; every smuggling shape of
RFC 9112 §6 and §11.2 is refused with `malformed-response`."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fuzzkit import kept_if_failing, narrow
from http1_oracle import Parsed, Refused, check_response, outcome
from hypothesis import given
from hypothesis import strategies as st

from trustproof.gateway.http1 import UpstreamResponse

TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
FRAMING = {"content-length", "transfer-encoding", "connection"}

names = st.text(TCHAR, min_size=1, max_size=12).filter(lambda n: n.lower() not in FRAMING)
# field-value: visible ASCII, obs-text and inner SP/HTAB; the parser strips the outer OWS.
VCHAR = "".join(chr(c) for c in (*range(0x21, 0x7F), *range(0x80, 0x100)))
values = st.text(VCHAR + " \t", max_size=16).map(lambda v: v.strip(" \t"))
fields = st.lists(st.tuples(names, values), max_size=4)
ows = st.sampled_from(["", " ", "\t", "  "])


@dataclass(frozen=True)
class Generated:
    method: str
    wire: bytes
    expected: UpstreamResponse
    reusable: bool


def _head(version: str, status: int, lines: list[tuple[str, str, str]]) -> bytes:
    """Status line and header lines; each line is (name, value, surrounding whitespace)."""
    out = f"HTTP/1.{version} {status} Reason phrase\r\n"
    out += "".join(f"{n}:{w}{v}{w}\r\n" for n, v, w in lines)
    return (out + "\r\n").encode("latin-1")


@st.composite
def responses(draw: st.DrawFn) -> Generated:
    method = draw(st.sampled_from(["GET", "HEAD", "POST"]))
    version = draw(st.sampled_from(["1", "1", "0"]))
    wire = b""
    for interim in draw(st.lists(st.sampled_from([100, 102, 103]), max_size=2)):
        wire += _head(version, interim, [(n, v, "") for n, v in draw(fields)])
    status = draw(st.sampled_from([200, 201, 204, 206, 304, 400, 403, 404, 500, 502, 599]))
    headers = [(n, v, draw(ows)) for n, v in draw(fields)]
    close = version == "0" or draw(st.booleans())
    if close and version == "1":
        headers.insert(draw(st.integers(0, len(headers))), ("Connection", "close", draw(ows)))
    no_body = method == "HEAD" or status in (204, 304)
    framings = ["length", "close"] if version == "0" else ["length", "chunked", "close"]
    framing = draw(st.sampled_from(framings))
    body = b"" if no_body else draw(st.binary(max_size=64))
    payload = b""
    if framing == "length":
        length = draw(st.integers(0, 99)) if no_body else len(body)  # HEAD: the GET's length
        headers.insert(draw(st.integers(0, len(headers))), ("Content-Length", str(length), ""))
        payload = body
    elif framing == "chunked":
        coding = draw(st.sampled_from(["chunked", "Chunked", "gzip, chunked"]))
        headers.insert(draw(st.integers(0, len(headers))), ("Transfer-Encoding", coding, ""))
        payload = _chunked(draw, body)
    elif not no_body:
        payload = body
    wire += _head(version, status, headers) + (b"" if no_body else payload)
    expected = UpstreamResponse(status, tuple((n, v) for n, v, _ in headers), body)
    reusable = not close and (no_body or framing != "close")
    return Generated(method, wire, expected, reusable)


def _chunked(draw: st.DrawFn, body: bytes) -> bytes:
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(body) - 1)), max_size=4)))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    extension = st.sampled_from(["", ";a", ";a=b", ' ;name="quoted value"', "\t;x=1;y"])
    out = b""
    for piece in (p for p in pieces if p):
        size = draw(st.sampled_from(["{:x}", "{:X}", "0{:x}"])).format(len(piece))
        out += f"{size}{draw(extension)}\r\n".encode() + piece + b"\r\n"
    out += f"0{draw(extension)}\r\n".encode()
    for name, value in draw(fields):
        out += f"{name}: {value}\r\n".encode("latin-1")
    return out + b"\r\n"


@given(responses())
def test_valid_responses_parse_to_what_was_sent_in_any_chunking(case: Generated) -> None:
    with kept_if_failing("http1", case.wire):
        whole = outcome([case.wire], case.method)
        assert whole == Parsed(case.expected, case.reusable)
        check_response(case.wire)


@given(st.binary(max_size=512))
def test_arbitrary_bytes_are_a_response_or_an_upstream_error(data: bytes) -> None:
    with kept_if_failing("http1", data):
        check_response(data)


NASTY = [b"\r", b"\n", b"\r\n", b" ", b"\t", b":", b";", b",", b"0", b"f", b"\x00", b"\x80", b"-"]


@given(responses(), st.data())
def test_mutated_valid_responses_are_a_response_or_an_upstream_error(
    case: Generated, data: st.DataObject
) -> None:
    wire = bytearray(case.wire)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(wire)))
        piece = data.draw(st.sampled_from(NASTY) | st.binary(min_size=1, max_size=3))
        op = data.draw(st.sampled_from(["insert", "replace", "delete"]))
        if op == "insert":
            wire[at:at] = piece
        elif op == "replace":
            wire[at : at + len(piece)] = piece
        else:
            del wire[at : at + len(piece)]
    with kept_if_failing("http1", bytes(wire)):
        check_response(bytes(wire), every_split=False)  # byte by byte covers every cut point


# -- smuggling shapes (RFC 9112 §6.1, §6.3, §5.2, §2.2, §11.2): refused, never guessed -----------


def refused_everywhere(wire: bytes) -> None:
    """`wire` is refused as malformed for GET and HEAD, whole and split (the oracle checks the
    splits agree)."""
    with kept_if_failing("http1", wire):
        for (method, _), result in check_response(wire, every_split=False).items():
            assert result == Refused("malformed-response"), f"{method}: {result}"


statuses = st.sampled_from([100, 103, 200, 204, 304, 404])


def _name(draw: st.DrawFn, name: str) -> str:
    return draw(st.sampled_from([name, name.lower(), name.upper()]))


@narrow()
@given(st.data(), statuses, fields)
def test_content_length_with_transfer_encoding_is_refused(
    data: st.DataObject, status: int, extra: list[tuple[str, str]]
) -> None:
    framing = [
        (_name(data.draw, "Content-Length"), data.draw(st.sampled_from(["0", "5", "10"]))),
        (_name(data.draw, "Transfer-Encoding"), data.draw(st.sampled_from(["chunked", "gzip"]))),
    ]
    lines = data.draw(st.permutations([*extra, *framing]))
    wire = _head("1", status, [(n, v, "") for n, v in lines]) + b"5\r\nhello\r\n0\r\n\r\n"
    refused_everywhere(wire)


@narrow()
@given(st.data(), statuses, st.integers(0, 99), st.integers(1, 99))
def test_two_different_content_lengths_are_refused(
    data: st.DataObject, status: int, first: int, delta: int
) -> None:
    lines = [("Content-Length", str(first), ""), (_name(data.draw, "Content-Length"), "", "")]
    lines[1] = (lines[1][0], str(first + delta), "")
    refused_everywhere(_head("1", status, lines) + b"x" * (first + delta))


@narrow()
@given(
    st.sampled_from(
        ["5, 5", "5,5", "+5", "-5", "0x5", "5 5", "5.0", "", "1" * 19, "\xb2", "5\x0b", "5;"]
    ),
    statuses,
)
def test_a_content_length_that_is_not_one_decimal_number_is_refused(
    value: str, status: int
) -> None:
    refused_everywhere(_head("1", status, [("Content-Length", value, "")]) + b"hello")


@narrow()
@given(fields.filter(bool), st.sampled_from([" ", "\t", "  \t"]), values, statuses)
def test_obs_fold_is_refused(
    lines: list[tuple[str, str]], fold: str, continuation: str, status: int
) -> None:
    head = _head("1", status, [(n, v, "") for n, v in lines])
    wire = head[:-2] + f"{fold}{continuation}\r\n\r\n".encode("latin-1")
    refused_everywhere(wire)


@narrow()
@given(fields.filter(bool), st.data(), st.sampled_from([b"\n", b"\r"]), statuses)
def test_bare_cr_or_lf_ending_a_head_line_is_refused(
    lines: list[tuple[str, str]], data: st.DataObject, bare: bytes, status: int
) -> None:
    head = _head("1", status, [(n, v, "") for n, v in [*lines, ("Content-Length", "0")]])
    ends = [i for i in range(len(head) - 4) if head[i : i + 2] == b"\r\n"]  # not the last two
    at = data.draw(st.sampled_from(ends))
    refused_everywhere(head[:at] + bare + head[at + 2 :])


@narrow()
@given(names, values, values, st.sampled_from(["\r", "\n", "\x00", "\x0b", "\x7f"]), statuses)
def test_control_characters_inside_a_field_are_refused(
    name: str, left: str, right: str, control: str, status: int
) -> None:
    lines = [(name, f"{left}{control}{right}", ""), ("Content-Length", "0", "")]
    refused_everywhere(_head("1", status, lines))


@narrow()
@given(st.sampled_from(["Content-Length", "Transfer-Encoding", "X-Other"]), ows.filter(bool))
def test_whitespace_between_name_and_colon_is_refused(name: str, space: str) -> None:
    refused_everywhere(_head("1", 200, [(name + space, "0", "")]))


@narrow()
@given(
    st.sampled_from(
        [
            ("1", "chunked, chunked"),
            ("1", "chunked, gzip"),
            ("1", "chunked,"),
            ("1", ", chunked"),
            ("1", ""),
            ("0", "chunked"),
        ]
    )
)
def test_ambiguous_transfer_codings_are_refused(case: tuple[str, str]) -> None:
    version, coding = case
    wire = _head(version, 200, [("Transfer-Encoding", coding, "")]) + b"5\r\nhello\r\n0\r\n\r\n"
    with kept_if_failing("http1", wire):
        assert outcome([wire]) == Refused("malformed-response")
        check_response(wire, every_split=False)


@narrow()
@given(
    st.sampled_from(
        ["-5", "0x5", " 5", "5 5", "g", "", "1" * 16, "5\x0b", "5\r", "+5", "5;\x00", "\u0665"]
    )
)
def test_bad_chunk_size_lines_are_refused(size: str) -> None:
    wire = _head("1", 200, [("Transfer-Encoding", "chunked", "")])
    wire += f"{size}\r\nhello\r\n0\r\n\r\n".encode()
    with kept_if_failing("http1", wire):
        assert outcome([wire]) == Refused("malformed-response")
        check_response(wire, every_split=False)


@narrow()
@given(st.integers(1, 40), st.integers(1, 40))
def test_a_chunk_longer_than_its_size_is_refused(size: int, extra: int) -> None:
    wire = _head("1", 200, [("Transfer-Encoding", "chunked", "")])
    wire += f"{size:x}\r\n".encode() + b"a" * (size + extra) + b"\r\n0\r\n\r\n"
    with kept_if_failing("http1", wire):
        assert outcome([wire]) == Refused("malformed-response")
        check_response(wire, every_split=False)


@pytest.mark.parametrize("status", [101, 199])
def test_switching_protocols_or_endless_interim_responses_are_refused(status: int) -> None:
    wire = _head("1", status, []) * (1 if status == 101 else 9) + _head("1", 200, [])
    refused_everywhere(wire)
