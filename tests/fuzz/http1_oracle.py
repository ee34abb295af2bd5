"""The oracles of the HTTP/1.1 fuzz targets (Hypothesis and atheris): the response parser's
(`check_response`) and the request encoder's (`check_encode`, at the end).

`check_response(data)` holds for every byte string, or the parser has a bug:

- the only exception is `UpstreamError`, with a reason the module documents for parsing;
- the result does not depend on how the bytes arrive: in one piece, split in two at any point,
  or one byte at a time (with `feed_eof` when the parser still wants more);
- what it accepts is a final response: status 200-599 (101 and other 1xx never), no body for
  HEAD, 204 and 304, at most `max_body` body bytes, header names that are tokens and values
  without CR, LF or NUL, never both `Content-Length` and `Transfer-Encoding`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from trustproof.gateway.http1 import (
    MAX_BODY,
    ResponseParser,
    UpstreamError,
    UpstreamResponse,
    encode_request,
)

PARSE_REASONS = frozenset(
    {"malformed-response", "body-too-large", "closed-before-response", "closed-mid-response"}
)
# (method, max_body): a small limit reaches the body-too-large paths with small inputs.
VARIANTS = (("GET", MAX_BODY), ("HEAD", MAX_BODY), ("GET", 16))
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+): (.*)")
# RFC 9112 §4 and §5, written out again: a status line; a field line is token ":" OWS value OWS,
# the value visible characters (obs-text allowed) with single spaces or tabs between them.
_STRICT_STATUS = re.compile(rb"HTTP/1\.[01] ([1-9][0-9][0-9])(?: [\t \x21-\x7e\x80-\xff]*)?")
_VCHAR = rb"[\x21-\x7e\x80-\xff]"
_STRICT_FIELD = re.compile(
    rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[\t ]*((?:" + _VCHAR + rb"(?:[\t ]*" + _VCHAR + rb")*)?)[\t ]*"
)
_FRAMING = frozenset({"host", "content-length", "transfer-encoding", "connection"})
EVERY_SPLIT_UP_TO = 1024  # longer inputs are split near every CR or LF and at 64 even points
BYTEWISE_UP_TO = 4096


@dataclass(frozen=True)
class Parsed:
    response: UpstreamResponse
    reusable: bool


@dataclass(frozen=True)
class Refused:
    reason: str


Outcome = Parsed | Refused


def brief(result: Outcome) -> str:
    """An outcome in one short line (a 64 KiB header value does not belong in a failure)."""
    if isinstance(result, Refused):
        return f"refused {result.reason}"
    response = result.response
    return (
        f"{response.status}, {len(response.headers)} headers, {len(response.body)} body bytes"
        f" (hash {hash((response.headers, response.body)) & 0xFFFFFF:06x}),"
        f" reusable={result.reusable}"
    )


def outcome(pieces: Iterable[bytes], method: str = "GET", max_body: int = MAX_BODY) -> Outcome:
    """Feed `pieces` in order, then EOF if the parser still wants more."""
    parser = ResponseParser(method, max_body=max_body)
    try:
        done = False
        for piece in pieces:
            done = parser.feed(piece)
        if not done:
            done = parser.feed_eof()
    except UpstreamError as exc:
        reason = exc.reason
    else:
        reason = None
    if reason is not None:
        assert reason in PARSE_REASONS, f"undocumented reason {reason!r}"
        return Refused(reason)
    assert done, "feed_eof returned without a response or an error"
    assert parser.response is not None, "done without a response"
    return Parsed(parser.response, parser.reusable)


def split_points(data: bytes, every: bool = True) -> list[int]:
    if every and len(data) <= EVERY_SPLIT_UP_TO:
        return list(range(1, len(data)))
    points = {len(data) * i // 64 for i in range(1, 64)} if every else set()
    for i, byte in enumerate(data):
        if byte in b"\r\n":
            points.update(range(i - 3, i + 5) if every else (i, i + 1))
    return sorted(p for p in points if 0 < p < len(data))


def final_head(data: bytes) -> tuple[int, list[tuple[str, str]]]:
    """The status and fields of the final response's head in `data`, read independently of the
    parser (1xx heads skipped); fails if any head up to it is not strictly well formed."""
    rest = data
    while True:
        end = rest.find(b"\r\n\r\n")
        assert end >= 0, "a response accepted without a complete head"
        status_line, *lines = rest[:end].split(b"\r\n")
        match = _STRICT_STATUS.fullmatch(status_line)
        assert match, f"accepted the status line {status_line[:60]!r}"
        fields = []
        for line in lines:
            field = _STRICT_FIELD.fullmatch(line)
            assert field, f"accepted the field line {line[:60]!r}"
            fields.append((field[1].decode("latin-1"), field[2].decode("latin-1")))
        rest = rest[end + 4 :]
        if int(match[1]) >= 200:
            return int(match[1]), fields


def check_accepted(parsed: Parsed, method: str, max_body: int, data: bytes) -> None:
    response = parsed.response
    assert 200 <= response.status <= 599, f"status {response.status} accepted as final"
    if method == "HEAD" or response.status in (204, 304):
        assert response.body == b"", "a body on a response that cannot have one"
    assert len(response.body) <= max_body, "body over max_body"
    names = {name.lower() for name, _ in response.headers}
    assert not {"content-length", "transfer-encoding"} <= names, "both CL and TE accepted"
    status, fields = final_head(data)
    assert (response.status, response.headers) == (status, tuple(fields)), "not the head sent"
    lengths = {value for name, value in fields if name.lower() == "content-length"}
    assert all(v.isdigit() and v.isascii() for v in lengths), f"Content-Length {lengths}"
    assert len({int(v) for v in lengths}) <= 1, f"accepted different lengths {lengths}"


def check_response(
    data: bytes, *, every_split: bool = True, splits: bool = True
) -> dict[tuple[str, int], Outcome]:
    """Assert the oracle for `data` under every variant; return the outcomes (for the caller).

    The first variant is parsed whole, byte by byte, and split in two at every point
    (`every_split`, else only around each CR and LF, where the state changes); the others whole
    and split around each CR and LF. `splits=False` keeps only whole and byte by byte (atheris,
    where executions per second matter more)."""
    seen: dict[tuple[str, int], Outcome] = {}
    for method, max_body in VARIANTS:
        whole = outcome([data], method, max_body)
        if isinstance(whole, Parsed):
            check_accepted(whole, method, max_body, data)
        first = not seen
        if first and len(data) <= BYTEWISE_UP_TO:
            bytewise = outcome((data[i : i + 1] for i in range(len(data))), method, max_body)
            assert bytewise == whole, (
                f"{method}: byte by byte {brief(bytewise)}, whole {brief(whole)}"
            )
        for cut in split_points(data, every_split and first) if splits else ():
            split = outcome([data[:cut], data[cut:]], method, max_body)
            assert split == whole, f"{method}: split at {cut} {brief(split)}, whole {brief(whole)}"
        seen[method, max_body] = whole
    return seen


def _read_back(
    head: bytes, method: str, target: str, host: str, body: bytes
) -> list[tuple[str, str]]:
    """Parse `head` strictly; return the header fields after Host (framing checked here)."""
    assert head.endswith(b"\r\n\r\n"), "the head does not end with CRLF CRLF"
    assert head.count(b"\r\n\r\n") == 1, "an empty line inside the head"
    assert head.count(b"\r") == head.count(b"\n") == head.count(b"\r\n"), "bare CR or LF"
    assert b"\x00" not in head
    lines = head[:-4].decode("latin-1").split("\r\n")
    assert lines[0] == f"{method} {target} HTTP/1.1"
    fields = []
    for line in lines[1:]:
        match = _HEADER.fullmatch(line)
        assert match, f"header line {line!r} is not `token: value`"
        fields.append((match[1], match[2]))
    lowered = [name.lower() for name, _ in fields]
    assert fields[0] == ("Host", host)
    assert lowered.count("host") == 1
    assert "transfer-encoding" not in lowered
    assert "connection" not in lowered
    lengths = [value for name, value in fields if name.lower() == "content-length"]
    if body or method in ("POST", "PUT", "PATCH"):
        assert lengths == [str(len(body))]
    else:
        assert lengths == []
    return [(n, v) for n, v in fields[1:] if n.lower() != "content-length"]


def check_encode(
    method: str, target: str, host: str, headers: list[tuple[str, str]], body: bytes
) -> None:
    """`encode_request` refuses with `invalid-request`, or its head reads back strictly as
    exactly that request, the caller's framing fields dropped."""
    try:
        head = encode_request(method, target, host, headers, body)
    except UpstreamError as exc:
        reason = exc.reason
    else:
        reason = None
    if reason is not None:
        assert reason == "invalid-request", reason
        return
    relayed = _read_back(head, method, target, host, body)
    assert relayed == [(n, v) for n, v in headers if n.lower() not in _FRAMING]
