"""The ``dependencies:`` section: external APIs a service calls (a payment provider, say), either
served inside the sandbox by a mock (``mode: mock``) or reached at exactly one staging endpoint
(``mode: real``). Either way a service reaches a dependency only through its egress proxy for it,
which adds the credentials the spec names; their value comes from the environment of the
trustproof process and is never written in the spec.

    dependencies:
      payments-api:
        mode: mock
        host: api.payments.example
        port: 443
        credentials: {header: X-Api-Key, env: PAYMENTS_API_KEY}
        mock:
          responses:
            - {method: POST, path: /v1/charges, status: 201, body: '{"id": "ch_1"}'}
            - {method: GET, path: '/v1/charges/{id}', status: 200, body: '{"paid": true}'}

The value types here parse themselves like those of `values.py`; the dataclasses are the typed
model the decoder builds (`Spec.dependencies`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Literal

from trustproof.spec.fields import doc
from trustproof.spec.values import (
    BadValue,
    Command,
    EnvName,
    JsonSchema,
    Port,
    RelPath,
    Route,
    _text,
    shown,
)

HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_FIELD = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")  # RFC 9110 §5.6.2 token
# Headers the proxy or the HTTP framing owns: never a credentials or a mock answer header.
RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer"}
)


class DependencyHost(str):
    """The host name (or IP address) of an external API, as its certificate names it."""

    @classmethod
    def parse(cls, raw: object) -> DependencyHost:
        text = _text(raw, "a host name", "'api.payments.example'").strip()
        hint = "write the bare host name (no scheme, port or path), like api.payments.example"
        try:
            ipaddress.ip_address(text)
            return cls(text)
        except ValueError:
            pass
        labels = text.lower().rstrip(".").split(".")
        if (
            not text
            or len(text) > 253
            or "://" in text
            or not all(_LABEL.match(label) for label in labels)
        ):
            raise BadValue(
                f"bad host {shown(text)} (expected a DNS name of letters, digits and '-' "
                "labels, or an IP address)",
                hint,
            )
        return cls(".".join(labels))

    @classmethod
    def json_schema(cls) -> JsonSchema:
        return {"type": "string", "minLength": 1, "maxLength": 253}


class FieldName(str):
    """An HTTP header field name (RFC 9110 §5.1) the proxy or the mock may set."""

    @classmethod
    def parse(cls, raw: object) -> FieldName:
        text = _text(raw, "a header name", "X-Api-Key")
        if not _FIELD.match(text):
            raise BadValue(
                f"bad header name {shown(text)} (expected 1-64 letters, digits or "
                "!#$%&'*+.^_`|~- as RFC 9110 allows, no ':' or spaces)",
                "write the field name only, like X-Api-Key",
            )
        if text.lower() in RESERVED_HEADERS:
            raise BadValue(
                f"{text} is set by the HTTP framing or the proxy, not by the spec",
                "name another header, like X-Api-Key or Authorization",
            )
        return cls(text)

    @classmethod
    def json_schema(cls) -> JsonSchema:
        return {"type": "string", "pattern": _FIELD.pattern}


class MockPath(str):
    """A path template a mock answers: literal segments and ``{param}`` placeholders (each
    matches one non-empty segment), like a service's routes."""

    @classmethod
    def parse(cls, raw: object) -> MockPath:
        text = _text(raw, "a path", "'/v1/charges/{id}'")
        try:
            route = Route.parse(f"GET {text}")
        except BadValue:
            raise BadValue(
                f"bad path {shown(text)} (expected '/' followed by segments or {{param}} "
                "placeholders, no '//', '.' or '..', no spaces or query)",
                "write it like /v1/charges/{id}",
            ) from None
        return cls(route.path)

    @classmethod
    def json_schema(cls) -> JsonSchema:
        return {"type": "string", "pattern": r"^/\S*$", "examples": ["/v1/charges/{id}"]}


class HttpStatus(int):
    """An HTTP status code, 100-599."""

    @classmethod
    def parse(cls, raw: object) -> HttpStatus:
        if isinstance(raw, bool) or not isinstance(raw, int) or not 100 <= raw <= 599:
            raise BadValue(
                f"expected an HTTP status code (100-599), got {shown(raw)}",
                "write a number like 200",
            )
        return cls(raw)

    @classmethod
    def json_schema(cls) -> JsonSchema:
        return {"type": "integer", "minimum": 100, "maximum": 599}


FieldKey = Annotated[str, FieldName]


@dataclass(frozen=True)
class MockResponse:
    """One row of a mock's response table: the first row whose method and path match answers."""

    method: HttpMethod = doc("Request method this row answers.")
    path: MockPath = doc(
        "Request path: exact, or a template with {param} placeholders (one segment each)."
    )
    status: HttpStatus = doc("Status of the answer.", default=HttpStatus(200))
    body: str = doc("Body of the answer (text).", default="")
    headers: Mapping[FieldKey, str] = doc(
        "Headers of the answer (name -> value).",
        default_factory=lambda: MappingProxyType({}),
    )


@dataclass(frozen=True)
class Mock:
    """How the sandbox serves a ``mode: mock`` dependency: a response table (served by
    trustproof), or the team's own mock (a command started like a service)."""

    responses: tuple[MockResponse, ...] = doc(
        "The response table (first match answers; no match is a 404).", default=()
    )
    command: Command | None = doc(
        "The team's own mock server (instead of responses): started before the services, "
        "listening on 127.0.0.1:`port`, plain HTTP; it gets the credentials' value in the "
        "variable `credentials.env` and must refuse requests without it.",
        default=None,
    )
    port: Port | None = doc(
        "Where the mock command listens (on 127.0.0.1); required with command.", default=None
    )


@dataclass(frozen=True)
class Credentials:
    """What the egress proxy adds to every call: header `header` with the value of the
    environment variable `env` of the trustproof process (never written in the spec)."""

    header: FieldName = doc("Header the egress proxy sets, e.g. Authorization or X-Api-Key.")
    env: EnvName = doc(
        "Environment variable holding the value (required for mode: real; for mode: mock a "
        "random per-run value is used when it is not set)."
    )


@dataclass(frozen=True)
class Dependency:
    mode: Literal["mock", "real"] = doc(
        "'mock': served inside the sandbox; 'real': the egress proxy lets exactly host:port "
        "through (a staging endpoint)."
    )
    host: DependencyHost = doc("Host name of the API (TLS server name and Host header).")
    port: Port = doc("Port of the API.")
    scheme: Literal["http", "https"] = doc(
        "How the proxy talks to a real endpoint (a mock is served over plain HTTP on loopback).",
        default="https",
    )
    ca: RelPath | None = doc(
        "PEM CA bundle the real endpoint's certificate is verified against (default: the "
        "system's CAs).",
        default=None,
    )
    mock: Mock | None = doc("With mode: mock, how it is served.", default=None)
    credentials: Credentials | None = doc(
        "Credentials the egress proxy adds (required for mode: mock: the mock refuses calls "
        "without them).",
        default=None,
    )
