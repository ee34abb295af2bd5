"""HTTP/1.1 for the gateway's upstream, without I/O: encoding one request and parsing one
response (`ResponseParser`: bytes in, a response or an `UpstreamError` out). The socket side is
`upstream.py`.

The parser is strict, because the gateway relays what it parses: a malformed status line or
header line (obs-fold, bare CR or LF, a name that is not a token), conflicting framing
(`Content-Length` with `Transfer-Encoding`, two different lengths) or a bad chunk is an error,
never a guess. Reasons (`UpstreamError.reason`, stable; the gateway answers 502 for every one):

    connect-failed          nothing accepted the connection
    timeout                 no complete response within the pool's `timeout` (connect included)
    closed-before-response  the connection closed before any byte of a response arrived
    closed-mid-response     the connection closed inside a response
    malformed-response      the bytes are not an HTTP/1.1 response this parser accepts
    body-too-large          the body is longer than `max_body`
    invalid-request         the request itself cannot be written (CR or LF in a field, ...)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from trustproof.errors import TrustproofError

MAX_BODY = 8 * 1024 * 1024
MAX_HEAD = 64 * 1024  # status line + headers, and the trailers, each
MAX_INTERIM = 8  # 1xx responses skipped before the final one
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_FRAMING = frozenset({"host", "content-length", "transfer-encoding", "connection"})
WRITE_TOGETHER = 64 * 1024  # bodies up to this size go out in the same write as the head

_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9][0-9])(?: [\t \x21-\x7e\x80-\xff]*)?")
_HEADER_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):([\t \x21-\x7e\x80-\xff]*)")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})[\t ]*(?:;[\t \x21-\x7e\x80-\xff]*)?")
_PATH_SAFE = "/:@!$&'()*+,;=-._~"  # RFC 3986 pchar and '/', besides letters and digits
_QUERY_SAFE = _PATH_SAFE + "?%"
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 §5.6.2: methods, field names
_TARGET = re.compile(r"[\x21-\x7e]+")


# Hop-by-hop fields (RFC 9110 §7.6.1): they describe one connection and are never relayed.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Credentials a proxy consumes, and framing it recomputes, on requests it relays.
CONSUMED = frozenset({"authorization", "proxy-authorization", "host", "content-length"})


def end_to_end(
    headers: Iterable[tuple[str, str]], drop: frozenset[str] = frozenset({"content-length"})
) -> list[tuple[str, str]]:
    """The headers a proxy may relay: without hop-by-hop fields, without the fields the
    `Connection` header names (RFC 9110 §7.6.1), and without `drop`."""
    pairs = list(headers)
    named = {
        token.strip().lower()
        for name, value in pairs
        if name.lower() == "connection"
        for token in value.split(",")
    }
    removed = HOP_BY_HOP | named | drop
    return [(name, value) for name, value in pairs if name.lower() not in removed]


class UpstreamError(TrustproofError):
    """The upstream gave no usable response; `reason` is one of the slugs in the module
    docstring, `detail` says what was seen (never the body)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True)
class UpstreamResponse:
    """A complete final response: 1xx interim responses, framing and trailers are gone."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def origin_form(path: str, query: str) -> str:
    """The request-target for a decoded canonical path and a raw query string.

    The path is percent-encoded again (UTF-8) wherever RFC 3986 does not allow the character in a
    segment: notably `?`, so that a decoded ``%3F`` can never turn into a query separator
    upstream (the service must see the resource the decision was made on). The query is passed
    through, encoded only where it holds characters a request-target cannot carry."""
    target = quote(path, safe=_PATH_SAFE, errors="surrogateescape")
    if query:
        target += "?" + quote(query, safe=_QUERY_SAFE, errors="surrogateescape")
    return target


def encode_request(
    method: str, target: str, host: str, headers: Sequence[tuple[str, str]], body: bytes
) -> bytes:
    """The request head (body not included). The pool owns the framing, so `Host`,
    `Content-Length`, `Transfer-Encoding` and `Connection` from `headers` are dropped: a caller
    that forgot to remove them cannot smuggle a second framing past the gateway; nor can a name
    that is not a token (`Host: x`, `Content-Length `) write a line that reads as one."""
    if _TOKEN.fullmatch(method) is None or _TARGET.fullmatch(target) is None:
        raise UpstreamError("invalid-request", "method or target is not a token")
    parts = [f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n"]
    parts += [f"{n}: {v}\r\n" for n, v in headers if _relayed_name(n)]
    if body or method in _BODY_METHODS:
        parts.append(f"Content-Length: {len(body)}\r\n")
    parts.append("\r\n")
    text = "".join(parts)
    lines = len(parts) + 1  # the first part holds two lines
    if text.count("\n") != lines or text.count("\r") != lines or "\0" in text:
        raise UpstreamError("invalid-request", "CR, LF or NUL inside a header field")
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise UpstreamError("invalid-request", "a header field is not latin-1") from exc


_NAMES: dict[str, bool] = {}  # header name -> relayed (a token, not framing); bounded
_MAX_NAMES = 4096


def _relayed_name(name: str) -> bool:
    """Whether `name` is written upstream (framing fields are the pool's own); raises for a name
    that is not a token. Remembered per name: the same few names come with every request."""
    known = _NAMES.get(name)
    if known is None:
        if _TOKEN.fullmatch(name) is None:
            raise UpstreamError("invalid-request", "a header name is not a token")
        known = name.lower() not in _FRAMING
        if len(_NAMES) < _MAX_NAMES:
            _NAMES[name] = known
    return known


_HEAD, _LENGTH, _CHUNK_SIZE_LINE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _UNTIL_CLOSE, _DONE = range(8)


class ResponseParser:
    """Sans-I/O parser for the response to one request: `feed` it bytes and `feed_eof` when the
    peer closes; both return True once `response` is complete. `received` says whether any byte
    arrived (the pool's retry rule needs it); `reusable` whether the connection may carry another
    request (HTTP/1.1, no `Connection: close`, length-delimited, nothing extra after it)."""

    def __init__(self, method: str, *, max_body: int = MAX_BODY) -> None:
        self._no_body = method == "HEAD"
        self._max_body = max_body
        self._buf = bytearray()
        self._state = _HEAD
        self._remaining = 0  # body bytes left (Content-Length) or chunk bytes left
        self._scan = 0  # the next search for a line end starts here: what is before was searched
        self._body = bytearray()
        self._trailer_bytes = 0
        self._interim = 0
        self._status = 0
        self._headers: tuple[tuple[str, str], ...] = ()
        self._keep_alive = False
        self.received = False
        self.reusable = False
        self.response: UpstreamResponse | None = None

    def feed(self, data: bytes) -> bool:
        if data:
            self.received = True
            self._buf += data
        while self._state != _DONE and self._step():
            pass
        if self._state == _DONE and self._buf:  # bytes nobody asked for: out of step
            self.reusable = False
        return self._state == _DONE

    def feed_eof(self) -> bool:
        self.reusable = False
        if self._state == _UNTIL_CLOSE:
            self._finish()
        if self._state == _DONE:
            return True
        if not self.received:
            raise UpstreamError("closed-before-response")
        raise UpstreamError("closed-mid-response", f"{len(self._body)} body bytes read")

    def _step(self) -> bool:
        """Consume what the buffer allows in the current state; False when it needs more."""
        state = self._state
        if state == _HEAD:
            return self._head()
        if state in (_LENGTH, _CHUNK_DATA):
            return self._data()
        if state == _CHUNK_SIZE_LINE:
            return self._chunk_size()
        if state == _CHUNK_END:
            return self._chunk_end()
        if state == _TRAILERS:
            return self._trailer()
        return self._until_close()

    def _head(self) -> bool:
        buf = self._buf
        end = buf.find(b"\r\n\r\n", self._scan)
        if end < 0:
            # Refused as soon as no terminator can end it within the limit: the same verdict as
            # for the whole head in one piece, however the bytes are split.
            if len(buf) > MAX_HEAD + 3 or buf.find(b"\n\n", self._scan) >= 0:
                raise UpstreamError("malformed-response", "no CRLF CRLF ending the head")
            self._scan = max(0, len(buf) - 3)  # a terminator may start in the last 3 bytes
            return False
        self._scan = 0
        if end > MAX_HEAD:
            raise UpstreamError("malformed-response", "response head over 64 KiB")
        head = bytes(buf[:end])
        del buf[: end + 4]
        self._on_head(head)
        return True

    def _data(self) -> bool:
        buf = self._buf
        take = min(self._remaining, len(buf))
        if take == len(buf):
            self._body += buf
            buf.clear()
        else:
            self._body += buf[:take]
            del buf[:take]
        self._remaining -= take
        if self._remaining:
            return False
        if self._state == _LENGTH:
            self._finish()
        else:
            self._state = _CHUNK_END
        return True

    def _chunk_size(self) -> bool:
        line = self._line(4096)
        if line is None:
            return False
        match = _CHUNK_SIZE.fullmatch(line)
        if match is None:
            raise UpstreamError("malformed-response", f"chunk size line {line[:40]!r}")
        size = int(match[1], 16)
        if len(self._body) + size > self._max_body:
            raise UpstreamError("body-too-large", f"over {self._max_body} bytes (chunked)")
        self._remaining = size
        self._state = _CHUNK_DATA if size else _TRAILERS
        return True

    def _chunk_end(self) -> bool:
        if len(self._buf) < 2:
            return False
        if self._buf[:2] != b"\r\n":
            raise UpstreamError("malformed-response", "chunk data not followed by CRLF")
        del self._buf[:2]
        self._state = _CHUNK_SIZE_LINE
        return True

    def _trailer(self) -> bool:
        """One trailer line: checked like a header line, then dropped."""
        line = self._line(MAX_HEAD)
        if line is None:
            return False
        self._trailer_bytes += len(line) + 2
        if self._trailer_bytes > MAX_HEAD or (line and _HEADER_LINE.fullmatch(line) is None):
            raise UpstreamError("malformed-response", "bad trailer section")
        if not line:
            self._finish()
        return True

    def _until_close(self) -> bool:
        if len(self._body) + len(self._buf) > self._max_body:
            raise UpstreamError("body-too-large", f"over {self._max_body} bytes (until close)")
        self._body += self._buf
        self._buf.clear()
        return False

    def _line(self, limit: int) -> bytes | None:
        """The next line (at most `limit` bytes, CRLF not counted), or None until it is whole."""
        end = self._buf.find(b"\r\n", self._scan)
        if end < 0:
            if len(self._buf) > limit + 1:  # the last byte may be the CR of a line at the limit
                raise UpstreamError("malformed-response", "line too long")
            self._scan = max(0, len(self._buf) - 1)
            return None
        self._scan = 0
        if end > limit:
            raise UpstreamError("malformed-response", "line too long")
        line = bytes(self._buf[:end])
        del self._buf[: end + 2]
        return line

    def _on_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        status_line = _STATUS_LINE.fullmatch(lines[0])
        if status_line is None:
            raise UpstreamError("malformed-response", f"status line {lines[0][:80]!r}")
        http10 = status_line[1] == b"0"
        status = int(status_line[2])
        fields = _parse_fields(lines[1:])
        if fields.codings and fields.length is not None:  # whatever the status: no body
            raise UpstreamError("malformed-response", "both Content-Length and Transfer-Encoding")
        if status < 200:
            self._interim += 1
            if status == 101 or self._interim > MAX_INTERIM:
                raise UpstreamError("malformed-response", f"unexpected interim response {status}")
            return  # a 1xx has no body; the final response follows
        self._status, self._headers = status, fields.headers
        self._keep_alive = not (http10 or fields.close)
        if self._no_body or status in (204, 304):
            self._finish()
        elif fields.codings:
            self._frame_by_codings(fields, http10)
        elif fields.length is not None:
            if fields.length > self._max_body:
                raise UpstreamError("body-too-large", f"Content-Length {fields.length}")
            self._remaining, self._state = fields.length, _LENGTH
            if not fields.length:
                self._finish()
        else:
            self._state, self._keep_alive = _UNTIL_CLOSE, False

    def _frame_by_codings(self, fields: _Fields, http10: bool) -> None:
        """Transfer-Encoding framing (RFC 9112 §6.3): chunked last, or read until close."""
        codings = fields.codings
        if http10 or fields.length is not None or b"" in codings:
            raise UpstreamError("malformed-response", "ambiguous Transfer-Encoding framing")
        if codings[-1] == b"chunked" and b"chunked" not in codings[:-1]:
            self._state = _CHUNK_SIZE_LINE
        elif b"chunked" in codings:
            raise UpstreamError("malformed-response", "chunked is not the last coding")
        else:
            self._state, self._keep_alive = _UNTIL_CLOSE, False

    def _finish(self) -> None:
        self.response = UpstreamResponse(self._status, self._headers, bytes(self._body))
        self.reusable = self._keep_alive and self._state != _UNTIL_CLOSE
        self._state = _DONE


@dataclass(frozen=True)
class _Fields:
    """A response's header section: the fields, and what they say about framing."""

    headers: tuple[tuple[str, str], ...]
    length: int | None
    codings: tuple[bytes, ...]
    close: bool


def _parse_fields(lines: Sequence[bytes]) -> _Fields:
    """Header lines, strictly: a line that is not ``name: value`` (obs-fold, a name that is not
    a token) or two different `Content-Length` values are a malformed response."""
    headers: list[tuple[str, str]] = []
    length: int | None = None
    codings: list[bytes] = []
    close = False
    for line in lines:
        match = _HEADER_LINE.fullmatch(line)  # obs-fold starts with SP/HTAB: no match
        if match is None:
            raise UpstreamError("malformed-response", f"header line {line[:80]!r}")
        name, value = match[1], match[2].strip(b" \t")
        lower = name.lower()
        if lower == b"content-length":
            if not value.isdigit() or len(value) > 18 or length not in (None, int(value)):
                raise UpstreamError("malformed-response", f"Content-Length {value[:40]!r}")
            length = int(value)
        elif lower == b"transfer-encoding":
            codings += [c.strip(b" \t").lower() for c in value.split(b",")]
        elif lower == b"connection":
            close = close or b"close" in [t.strip(b" \t").lower() for t in value.split(b",")]
        headers.append((name.decode("latin-1"), value.decode("latin-1")))
    return _Fields(tuple(headers), length, tuple(codings), close)
