"""Scalar value types of the spec: each parses itself and describes itself as JSON Schema.

A value type is a class with two class methods: `parse(raw)` turns the YAML scalar into the value or
raises `BadValue` (message + hint), and `json_schema()` describes the accepted text for editors. The
decoder in `trustproof.spec.decode` knows nothing about the individual types.
"""

from __future__ import annotations

import ipaddress
import re
import reprlib
import shlex
from dataclasses import dataclass
from typing import Any, ClassVar

from trustproof.errors import TrustproofError

JsonSchema = dict[str, Any]


class BadValue(TrustproofError, ValueError):
    """A scalar that does not parse; `message` says what is wrong (with the expectation)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


_REPR = reprlib.Repr()
_REPR.maxstring = 80
_REPR.maxother = 80
_REPR.maxlevel = 3


def shown(value: object) -> str:
    """`repr(value)` cut to a readable length, however large or deeply nested the value is."""
    return _REPR.repr(value)


def _text(raw: object, what: str, example: str) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str):
        got = "true/false" if isinstance(raw, bool) else shown(raw)
        raise BadValue(f"expected {what} as a string, got {got}", f"write it like {example}")
    return raw


class Name(str):
    """A workload, persona or datastore name.

    It becomes the last SPIFFE ID path segment (``spiffe://<trust-domain>/<name>``), the certificate
    CN and, for datastore callers, the PostgreSQL role; so it uses the characters all three accept.
    """

    PATTERN: ClassVar[str] = r"^[a-z0-9][a-z0-9._-]{0,62}$"
    _re: ClassVar[re.Pattern[str]] = re.compile(PATTERN)

    @classmethod
    def parse(cls, raw: object) -> Name:
        text = _text(raw, "a name", "'orders'")
        if not cls._re.match(text) or text in {".", ".."}:
            raise BadValue(
                f"bad name {shown(text)} (expected 1-63 lowercase letters, digits, '.', '-' or "
                "'_', "
                "starting with a letter or digit)",
                "the name becomes a SPIFFE ID path segment, a certificate CN and a PostgreSQL role",
            )
        return cls(text)

    @classmethod
    def json_schema(cls) -> JsonSchema:
        return {"type": "string", "pattern": cls.PATTERN}


class TrustDomain(str):
    """A SPIFFE trust domain name: lowercase letters, digits, '.', '-', '_' (SPIFFE-ID §2.1)."""

    PATTERN: ClassVar[str] = r"^[a-z0-9._-]{1,255}$"

    @classmethod
    def parse(cls, raw: object) -> TrustDomain:
        text = _text(raw, "a trust domain", "'shop.test'")
        if text.startswith("spiffe://"):
            raise BadValue(
                f"bad trust domain {shown(text)} (expected the bare name, without 'spiffe://')",
                f"write trust_domain: {text.removeprefix('spiffe://').split('/')[0]}",
            )
        if not re.match(cls.PATTERN, text):
            raise BadValue(
                f"bad trust domain {shown(text)} (expected lowercase letters, digits, '.', '-' "
                "or '_', "
                "at most 255 characters)",
                "SPIFFE trust domains are case-sensitive lowercase names such as 'shop.test'",
            )
        return cls(text)

    @classmethod
    def json_schema(cls) -> JsonSchema:
        return {"type": "string", "pattern": cls.PATTERN}


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


@dataclass(frozen=True, order=True)
class Duration:
    """A length of time written with units: ``300ms``, ``30s``, ``5m``, ``1h30m``, ``2d``."""

    seconds: float

    PATTERN: ClassVar[str] = r"^(\d+(\.\d+)?(ms|s|m|h|d))+$"

    @classmethod
    def parse(cls, raw: object) -> Duration:
        hint = "durations need a unit: 300ms, 30s, 5m, 1h (a bare number is ambiguous)"
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            raise BadValue(f"bad duration {shown(raw)} (expected a number with a unit)", hint)
        text = _text(raw, "a duration", "'5m'").strip()
        pos, total = 0, 0.0
        for match in _DURATION_PART.finditer(text):
            if match.start() != pos:
                break
            total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise BadValue(f"bad duration {shown(text)} (expected a number with a unit)", hint)
        if total <= 0:
            raise BadValue(f"bad duration {shown(text)} (expected more than zero)", hint)
        return cls(total)

    @classmethod
    def json_schema(cls) -> JsonSchema:
        return {"type": "string", "pattern": cls.PATTERN, "examples": ["300ms", "30s", "5m"]}

    def __str__(self) -> str:
        if self.seconds < 1:
            return f"{self.seconds * 1000:g}ms"
        for unit in ("d", "h", "m"):
            if self.seconds % _UNIT_SECONDS[unit] == 0:
                return f"{self.seconds / _UNIT_SECONDS[unit]:g}{unit}"
        return f"{self.seconds:g}s"


class Port(int):
    """A TCP port, 1-65535."""

    @classmethod
    def parse(cls, raw: object) -> Port:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise BadValue(
                f"expected a port number, got {shown(raw)}", "write it unquoted: port: 8080"
            )
        if not 1 <= raw <= 65535:
            raise BadValue(f"port {raw} is out of range (expected 1-65535)")
        return cls(raw)

    @classmethod
    def json_schema(cls) -> JsonSchema:
        return {"type": "integer", "minimum": 1, "maximum": 65535}


class Count(int):
    """A whole number of things, 1 to 1,000,000 (requests, connections)."""

    MAXIMUM: ClassVar[int] = 1_000_000

    @classmethod
    def parse(cls, raw: object) -> Count:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise BadValue(f"expected a whole number, got {shown(raw)}", "write it unquoted: 100")
        if not 1 <= raw <= cls.MAXIMUM:
            raise BadValue(f"{raw} is out of range (expected 1-{cls.MAXIMUM:,})")
        return cls(raw)

    @classmethod
    def json_schema(cls) -> JsonSchema:
        return {"type": "integer", "minimum": 1, "maximum": cls.MAXIMUM}


class LoopbackHost(str):
    """An IPv4 loopback address (127.0.0.0/8): the sandbox never listens anywhere else."""

    @classmethod
    def parse(cls, raw: object) -> LoopbackHost:
        text = _text(raw, "an address", "'127.0.0.2'")
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise BadValue(
                f"bad address {shown(text)} (expected an IPv4 loopback address such as 127.0.0.2)",
                "the sandbox binds to loopback only; host names are not resolved",
            ) from None
        if not (address.version == 4 and address.is_loopback):
            raise BadValue(
                f"address {text} is not loopback (expected an address in 127.0.0.0/8)",
                "the sandbox never listens on an address reachable from other machines",
            )
        return cls(text)

    @classmethod
    def json_schema(cls) -> JsonSchema:
        return {"type": "string", "pattern": r"^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$"}


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_ROUTE_PATH = re.compile(r"^/(?:[A-Za-z0-9._~!$&'()*+,;=:@-]+|\{[a-z_][a-z0-9_]*\}|/)*$")


@dataclass(frozen=True, order=True)
class Route:
    """``METHOD /path/{param}``: one operation of a service, the unit of the access matrix."""

    method: str
    path: str

    PATTERN: ClassVar[str] = r"^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) /\S*$"

    @classmethod
    def parse(cls, raw: object) -> Route:
        text = _text(raw, "a route", "'GET /orders/{id}'")
        method, _, path = text.strip().partition(" ")
        hint = "write a route as METHOD and path template: 'GET /orders/{id}'"
        if method.upper() not in HTTP_METHODS:
            raise BadValue(
                f"bad route {shown(text)}: unknown method {shown(method)} (expected one of "
                f"{', '.join(HTTP_METHODS)})",
                hint,
            )
        path = path.strip()
        if not path.startswith("/") or "//" in path or not _ROUTE_PATH.match(path):
            raise BadValue(
                f"bad route {shown(text)}: path {shown(path)} is not a path template (expected "
                "'/' followed "
                "by segments or {param} placeholders, no '//', no spaces)",
                hint,
            )
        segments = path.split("/")
        if any(seg in {".", ".."} for seg in segments):
            raise BadValue(f"bad route {shown(text)}: '.' and '..' segments are not allowed", hint)
        return cls(method.upper(), path)

    @classmethod
    def json_schema(cls) -> JsonSchema:
        return {"type": "string", "pattern": cls.PATTERN, "examples": ["GET /orders/{id}"]}

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


class RouteRef(str):
    """A route named in the access matrix: a declared route of the service, or '*' for all."""

    @classmethod
    def parse(cls, raw: object) -> RouteRef:
        if raw == "*":
            return cls("*")
        return cls(str(Route.parse(raw)))

    @classmethod
    def json_schema(cls) -> JsonSchema:
        return {"anyOf": [{"const": "*"}, Route.json_schema()]}


PRIVILEGES = ("select", "insert", "update", "delete", "truncate", "references", "trigger")


class Privilege(str):
    """A PostgreSQL table privilege (GRANT ... ON TABLE), written in lower case."""

    @classmethod
    def parse(cls, raw: object) -> Privilege:
        text = _text(raw, "a privilege", "select")
        if text.lower() not in PRIVILEGES:
            raise BadValue(
                f"unknown privilege {shown(text)} (expected one of {', '.join(PRIVILEGES)})",
                "datastore grants are table privileges; 'all' is deliberately not accepted",
            )
        return cls(text.lower())

    @classmethod
    def json_schema(cls) -> JsonSchema:
        return {"type": "string", "enum": [*PRIVILEGES, *(p.upper() for p in PRIVILEGES)]}


class TableName(str):
    """A table, optionally schema-qualified: ``orders`` or ``billing.invoices``."""

    PATTERN: ClassVar[str] = r"^([a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,62}$"

    @classmethod
    def parse(cls, raw: object) -> TableName:
        text = _text(raw, "a table name", "orders")
        if not re.match(cls.PATTERN, text):
            raise BadValue(
                f"bad table name {shown(text)} (expected a lowercase SQL identifier, optionally "
                "schema-qualified such as billing.invoices)"
            )
        return cls(text)

    @classmethod
    def json_schema(cls) -> JsonSchema:
        return {"type": "string", "pattern": cls.PATTERN}


class EnvName(str):
    """An environment variable name."""

    PATTERN: ClassVar[str] = r"^[A-Za-z_][A-Za-z0-9_]*$"

    @classmethod
    def parse(cls, raw: object) -> EnvName:
        text = _text(raw, "a variable name", "LOG_LEVEL")
        if not re.match(cls.PATTERN, text):
            raise BadValue(
                f"bad environment variable name {shown(text)} (expected [A-Za-z_][A-Za-z0-9_]*)"
            )
        if text.startswith("TRUSTPROOF_"):
            raise BadValue(
                f"{text} is reserved (TRUSTPROOF_* variables are set by the sandbox)",
                "choose another name; the sandbox passes its own settings as TRUSTPROOF_*",
            )
        return cls(text)

    @classmethod
    def json_schema(cls) -> JsonSchema:
        return {"type": "string", "pattern": cls.PATTERN}


class HeaderName(str):
    """A forwarded-identity HTTP field name (RFC 9110 §5.1: a token), as the spec's
    ``identity_headers`` list it: never one of the fields every request needs."""

    PATTERN: ClassVar[str] = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$"
    PROTOCOL: ClassVar[frozenset[str]] = frozenset(
        {
            "accept",
            "authorization",
            "connection",
            "content-length",
            "content-type",
            "cookie",
            "expect",
            "host",
            "te",
            "transfer-encoding",
            "upgrade",
            "user-agent",
        }
    )

    @classmethod
    def parse(cls, raw: object) -> HeaderName:
        text = _text(raw, "a header name", "X-My-User")
        if not re.match(cls.PATTERN, text):
            raise BadValue(
                f"bad header name {shown(text)} (expected 1-64 letters, digits or "
                "!#$%&'*+.^_`|~- as RFC 9110 allows, no ':' or spaces)",
                "write the field name only, like X-My-User",
            )
        if text.lower().replace("_", "-") in cls.PROTOCOL:
            raise BadValue(
                f"{text} is not an identity header: every request needs it, and the gateways "
                "would strip it",
                "list only the headers a proxy in front sets to name the caller, like X-My-User",
            )
        return cls(text)

    @classmethod
    def json_schema(cls) -> JsonSchema:
        return {"type": "string", "pattern": cls.PATTERN}


class EnvValue(str):
    """An environment variable value: a string, or a number (converted to its text)."""

    @classmethod
    def parse(cls, raw: object) -> EnvValue:
        if isinstance(raw, bool) or raw is None:
            raise BadValue(
                f"expected a string or a number, got {'null' if raw is None else 'true/false'}",
                "quote it: YAML reads yes/no/on/off/true/false as booleans",
            )
        if not isinstance(raw, str | int | float):
            raise BadValue(f"expected a string or a number, got {shown(raw)}", "quote it")
        return cls(str(raw))

    @classmethod
    def json_schema(cls) -> JsonSchema:
        return {"type": ["string", "number"]}


class RelPath(str):
    """A file path, relative to the spec file's directory (an absolute path is taken as it is).

    Files the spec reads must still resolve inside that directory or an allowed one: see
    `trustproof.spec.files`.
    """

    @classmethod
    def parse(cls, raw: object) -> RelPath:
        text = _text(raw, "a path", "'policies/shop.cedar'")
        if not text.strip() or "\0" in text:
            raise BadValue("expected a non-empty path")
        return cls(text)

    @classmethod
    def json_schema(cls) -> JsonSchema:
        return {"type": "string", "minLength": 1}


class Command(tuple[str, ...]):
    """A command line: a list of arguments, or one string split like a POSIX shell would."""

    @classmethod
    def parse(cls, raw: object) -> Command:
        if isinstance(raw, str):
            try:
                argv = shlex.split(raw)
            except ValueError as exc:
                raise BadValue(f"bad command {shown(raw)}: {exc}", "check the quotes") from None
        elif isinstance(raw, list) and all(isinstance(a, str | int | float) for a in raw):
            argv = [str(a) for a in raw]
        else:
            raise BadValue(
                "expected a command (a string or a list of strings)",
                "write command: [python, -m, shop.orders] or command: python -m shop.orders",
            )
        if not argv:
            raise BadValue("expected a command, got an empty one")
        return cls(argv)

    @classmethod
    def json_schema(cls) -> JsonSchema:
        return {
            "anyOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "items": {"type": ["string", "number"]}, "minItems": 1},
            ]
        }
