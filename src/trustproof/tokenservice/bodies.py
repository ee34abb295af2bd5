"""Request bodies of the token service, parsed without sockets: every refusal is an OAuth error.

The HTTP shell (`server.py`) hands over the raw request target, the `Content-Type` and
`Content-Encoding` headers and the body bytes (read up to `MAX_BODY`); these functions either
return the parameters or the `Reply` that refuses the request. Nothing here raises for any input:
a malformed request is a 4xx `invalid_request` answer naming what is wrong, never a 500.

Rules, and where they come from:

* the raw request target must be exactly one of the endpoints (`ENDPOINTS`): no
  percent-encoding (``/%74oken`` is not ``/token``), no dot segments, no query component (no
  endpoint takes one, and parameters in a URL end up in logs);
* forms are ``application/x-www-form-urlencoded`` (RFC 6749 §3.2, Appendix B): UTF-8 once
  percent-decoded, so a ``charset`` other than UTF-8 is refused, and so is any raw byte outside
  ASCII (the encoding produces none); every parameter at most once (RFC 6749 §3.1: "Request and
  response parameters MUST NOT be included more than once");
* the admin API takes one JSON object (RFC 8259), UTF-8;
* no `Content-Encoding` but ``identity`` (RFC 9110 §8.4: 415 for a coding the server does not
  accept): a compressed body would be decompressed before its size could be bounded;
* at most `MAX_BODY` bytes (413), at most `MAX_FIELDS` form parameters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import parse_qsl

from trustproof.tokenservice.core import Reply, oauth_error

MAX_BODY = 64 * 1024
MAX_FIELDS = 32
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
Method = Literal["GET", "POST"]
ENDPOINTS: Mapping[str, Method] = {
    "/.well-known/openid-configuration": "GET",
    "/.well-known/oauth-authorization-server": "GET",
    "/jwks.json": "GET",
    "/token": "POST",
    "/revoke": "POST",
    "/introspect": "POST",
    "/admin/tokens": "POST",
}
_UTF8 = frozenset({"utf-8", "utf8"})


def bad_request(description: str, status: int = 400) -> Reply:
    return oauth_error(status, "invalid_request", description)


def check_target(method: str, raw_target: str) -> Reply | None:
    """Refuse a request whose raw target is not exactly an endpoint, or the wrong method."""
    path, query_mark, _ = raw_target.partition("?")
    expected = ENDPOINTS.get(path)
    if expected is None:
        shown = raw_target if len(raw_target) <= 80 else raw_target[:80] + "..."
        return oauth_error(
            404,
            "invalid_request",
            f"no endpoint at {shown!r}; the endpoints are {', '.join(ENDPOINTS)}"
            " (spelled exactly: no percent-encoding or dot segments)",
        )
    if query_mark:
        return bad_request(f"{path} takes no query component; send parameters in the body")
    allowed = (expected, "HEAD") if expected == "GET" else (expected,)
    if method not in allowed:
        reply = oauth_error(405, "invalid_request", f"{path} accepts {expected} only")
        return Reply(reply.status, reply.body, {**reply.headers, "Allow": ", ".join(allowed)})
    return None


def media_type(header: str) -> tuple[str, dict[str, str]]:
    """``Application/X-WWW-Form-Urlencoded; Charset="UTF-8"`` -> (the type, its parameters)."""
    kind, *params = header.split(";")
    found: dict[str, str] = {}
    for param in params:
        name, _, value = param.partition("=")
        found[name.strip().lower()] = value.strip().strip('"').lower()
    return kind.strip().lower(), found


def check_headers(
    content_type: str | None, content_encoding: str | None, length: int | None, expected: str
) -> Reply | None:
    """Refuse what can be refused before reading the body: type, charset, coding, size."""
    coding = (content_encoding or "identity").strip().lower()
    if coding != "identity":
        return bad_request(
            f"Content-Encoding {shown_header(coding)} is not accepted; send the body uncompressed",
            415,
        )
    kind, params = media_type(content_type or "")
    if kind != expected:
        return bad_request(f"send {expected} (got Content-Type {shown_header(kind)})")
    charset = params.get("charset")
    if charset is not None and charset not in _UTF8:
        return bad_request(f"charset {shown_header(charset)} is not supported; send UTF-8")
    if length is not None and length > MAX_BODY:
        return too_large()
    return None


def too_large() -> Reply:
    return bad_request(f"the body is larger than {MAX_BODY} bytes", 413)


def shown_header(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "...")


def parse_form(body: bytes) -> Mapping[str, str] | Reply:
    """The parameters of a URL-encoded form, each at most once; or the refusal."""
    if len(body) > MAX_BODY:
        return too_large()
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError as exc:
        return bad_request(
            f"the form contains a raw non-ASCII byte at offset {exc.start}; "
            "percent-encode UTF-8 (application/x-www-form-urlencoded)"
        )
    try:
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeDecodeError:
        return bad_request("a percent-encoded parameter is not UTF-8")
    except ValueError as exc:
        if "Max number of fields" in str(exc):
            return bad_request(f"more than {MAX_FIELDS} parameters")
        return bad_request("the form is malformed: every parameter is name=value, '&'-separated")
    form: dict[str, str] = {}
    for name, value in pairs:
        if not name:
            return bad_request("a parameter has an empty name")
        if name in form:
            return bad_request(
                f"parameter {shown_header(name)} is repeated (RFC 6749 §3.1: at most once)"
            )
        form[name] = value
    return form


def parse_json(body: bytes) -> Mapping[str, Any] | Reply:
    """One UTF-8 JSON object; or the refusal."""
    if len(body) > MAX_BODY:
        return too_large()
    try:
        value = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return bad_request("the body must be a JSON object (UTF-8)")
    if not isinstance(value, dict):
        return bad_request("the body must be a JSON object (UTF-8)")
    return value
