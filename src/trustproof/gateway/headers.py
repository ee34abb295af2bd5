"""Which request headers a proxy relays, refuses or sets, without I/O: the gateway and the egress
proxy apply the same rules.

Header names are compared *normalised*: lower case, with ``_`` read as ``-``. Many servers do
the same (CGI and WSGI turn both ``X-User`` and ``X_User`` into ``HTTP_X_USER``; nginx,
Apache and several frameworks can be set to), so a rule on ``x-trustproof-principal`` that let
``X_Trustproof_Principal`` through would be a rule a service could not rely on.

* **Refused** (`request_problem`): a request line other than HTTP/1.0 or HTTP/1.1 (an
  HTTP/0.9-style line without a version, ``HTTP/2.0`` written as text); a method-override header
  (``X-HTTP-Method-Override``, ``X-HTTP-Method``, ``X-Method-Override``: a service honouring one
  would run another method than the one decided on); a URL-override header (``X-Original-URL``,
  ``X-Rewrite-URL``: the same for the path).
* **Stripped** (`relayable`): identity assertions (`IDENTITY_HEADERS`, and any name starting with
  one of `IDENTITY_HEADER_PREFIXES`, our own ``X-Trustproof-*`` included), hop-by-hop fields and
  the fields ``Connection`` names (RFC 9110 §7.6.1), the credentials and framing the proxy
  consumes (`http1.CONSUMED`), and client-address headers (``Forwarded``, ``X-Real-IP``,
  ``X-Forwarded-*``, ...), which only the gateway sets (`forwarding_headers`) from the address
  it saw.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from trustproof.gateway.http1 import HOP_BY_HOP

Headers = Sequence[tuple[str, str]]

# Headers a caller must never be able to set: identity assertions other proxies use, and our own.
IDENTITY_HEADER_PREFIXES = ("x-trustproof-", "x-ssl-client-", "x-auth-request-")
IDENTITY_HEADERS = frozenset(
    {
        "x-forwarded-client-cert",
        "x-client-cert",
        "x-client-verify",
        "x-client-dn",
        "x-forwarded-user",
        "x-forwarded-email",
        "x-forwarded-groups",
        "x-remote-user",
        "x-remote-group",
        "x-user",
        "x-user-id",
        "x-principal",
        "remote-user",
        "x-spiffe-id",
    }
)
# Who the client is, as seen by a proxy: set by the gateway only, never relayed.
FORWARDING_HEADER_PREFIXES = ("x-forwarded-",)
FORWARDING_HEADERS = frozenset(
    {"forwarded", "x-real-ip", "x-client-ip", "true-client-ip", "x-originating-ip"}
)
METHOD_OVERRIDE_HEADERS = frozenset(
    {"x-http-method-override", "x-http-method", "x-method-override"}
)
URL_OVERRIDE_HEADERS = frozenset({"x-original-url", "x-rewrite-url"})
SUPPORTED_VERSIONS = frozenset({(1, 0), (1, 1)})

ProblemReason = Literal["http-version", "method-override", "url-override"]


@dataclass(frozen=True)
class RequestProblem:
    """Why a request is refused before anything else is looked at."""

    reason: ProblemReason
    detail: str


def normalised(name: str) -> str:
    """A header name as the rules compare it: lower case, ``_`` read as ``-``."""
    return name.lower().replace("_", "-")


def request_problem(version: tuple[int, int], headers: Headers) -> RequestProblem | None:
    """The first reason to refuse the request as HTTP, or None."""
    if version not in SUPPORTED_VERSIONS:
        shown = (
            "no version (HTTP/0.9 style)"
            if version == (0, 9)
            else f"HTTP/{version[0]}.{version[1]}"
        )
        return RequestProblem(
            "http-version", f"the request line says {shown}; only HTTP/1.0 and 1.1 are accepted"
        )
    for name, _ in headers:
        lower = normalised(name)
        if lower in METHOD_OVERRIDE_HEADERS:
            return RequestProblem(
                "method-override",
                f"{name[:64]} is not accepted: send the method itself, it is what is decided on",
            )
        if lower in URL_OVERRIDE_HEADERS:
            return RequestProblem(
                "url-override",
                f"{name[:64]} is not accepted: send the path itself, it is what is decided on",
            )
    return None


def _asserts_identity(lower: str) -> bool:
    """A header only the gateway may set: an identity assertion or a client address."""
    return (
        lower in IDENTITY_HEADERS
        or lower.startswith(IDENTITY_HEADER_PREFIXES)
        or lower in FORWARDING_HEADERS
        or lower.startswith(FORWARDING_HEADER_PREFIXES)
    )


def relayable(
    headers: Iterable[tuple[str, str]], consumed: frozenset[str]
) -> tuple[list[tuple[str, str]], tuple[str, ...]]:
    """The caller's headers a proxy may relay, and the normalised names of the identity and
    client-address headers it removed (hop-by-hop and `consumed` fields go silently)."""
    pairs = list(headers)
    named = frozenset(
        normalised(token.strip())
        for name, value in pairs
        if normalised(name) == "connection"
        for token in value.split(",")
    )
    kept: list[tuple[str, str]] = []
    stripped: list[str] = []
    for name, value in pairs:
        lower = normalised(name)
        if _asserts_identity(lower):
            stripped.append(lower)
        elif lower not in HOP_BY_HOP and lower not in consumed and lower not in named:
            kept.append((name, value))
    return kept, tuple(stripped)


def forwarding_headers(source_ip: str, proto: Literal["http", "https"]) -> Headers:
    """The client-address headers the gateway sets, from the address it saw (RFC 7239 and the
    de-facto ``X-Forwarded-*`` / ``X-Real-IP``)."""
    if not source_ip:
        return (("Forwarded", f"for=unknown;proto={proto}"), ("X-Forwarded-Proto", proto))
    node = f'"[{source_ip}]"' if ":" in source_ip else source_ip
    return (
        ("Forwarded", f"for={node};proto={proto}"),
        ("X-Forwarded-For", source_ip),
        ("X-Forwarded-Proto", proto),
        ("X-Real-IP", source_ip),
    )
