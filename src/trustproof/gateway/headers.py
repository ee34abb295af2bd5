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
* **Stripped** (`relayable`): identity assertions — every header of `IDENTITY_HEADER_TABLE`
  (the forwarded-identity headers of common proxies, IdP front ends and clouds, each with where it
  comes from), any name starting with one of `IDENTITY_HEADER_PREFIXES` (our own
  ``X-Trustproof-*`` included) and the spec's own ``identity_headers`` (`extra`) — whatever
  their case or spelling (``X_Forwarded_User``) and however often they appear; the override
  headers too (refused first by `request_problem`, stripped as well should a caller ever skip
  that check); hop-by-hop fields and the fields ``Connection`` names (RFC 9110 §7.6.1), the
  credentials and framing the proxy consumes (`http1.CONSUMED`), and client-address headers
  (``Forwarded``, ``X-Real-IP``, ``X-Forwarded-*``, ...), which only the gateway sets
  (`forwarding_headers`) from the address it saw. The names of the identity headers removed
  (never their values) go to the audit event.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from trustproof.gateway.http1 import HOP_BY_HOP

Headers = Sequence[tuple[str, str]]

ForgedValue = Literal[
    "name",  # the caller's name: storefront
    "email",  # storefront@<trust-domain>
    "spiffe-id",  # spiffe://<trust-domain>/storefront
    "subject-id",  # an opaque subject identifier naming the caller
    "roles",  # the caller's roles, comma-separated
    "principal-kind",  # workload | persona (with X-Trustproof-Principal)
    "dn",  # a certificate subject DN: CN=storefront
    "xfcc",  # Envoy's By=...;URI=... element
    "iap-email",  # accounts.google.com:<email>
    "iap-id",  # accounts.google.com:<id>
    "ms-principal",  # Azure's base64 JSON client principal
    "jwt",  # an unsigned JWT whose sub/email name the caller
    "cert-pem-escaped",  # the caller's real certificate, URL-encoded PEM
    "cert-der-base64",  # the caller's real certificate, base64 DER
    "cert-rfc9440",  # the caller's real certificate as an RFC 9440 byte sequence :b64:
]
"""What a forged value of an identity header looks like (the probes build one per kind)."""


@dataclass(frozen=True)
class IdentityHeader:
    """A forwarded-identity header: a proxy in front sets it, the service behind believes it."""

    name: str  # as its origin spells it
    source: str  # who sets it
    value: ForgedValue  # what a forged one carries
    companions: tuple[str, ...] = ()  # other table headers sent with it (same claim)


_OAUTH2_PROXY = "oauth2-proxy (--pass-user-headers)"
_AUTH_REQUEST = "oauth2-proxy --set-xauthrequest, for nginx auth_request"
_FORWARD_AUTH = "Authelia / Authentik forward auth (Traefik, Caddy, nginx)"
_KONG = "Kong gateway authentication plugins"
_IAP = "Google Cloud Identity-Aware Proxy"
_ALB = "AWS Application Load Balancer OIDC authentication"
_EASY_AUTH = "Azure App Service authentication (Easy Auth)"
_CERT_PROXY = "TLS-terminating proxies passing the client certificate on"

IDENTITY_HEADER_TABLE: tuple[IdentityHeader, ...] = (
    IdentityHeader("X-Forwarded-User", _OAUTH2_PROXY, "name"),
    IdentityHeader("X-Forwarded-Email", _OAUTH2_PROXY, "email"),
    IdentityHeader("X-Forwarded-Preferred-Username", _OAUTH2_PROXY, "name"),
    IdentityHeader("X-Forwarded-Groups", _OAUTH2_PROXY, "roles"),
    IdentityHeader("X-Forwarded-Access-Token", _OAUTH2_PROXY, "jwt"),
    IdentityHeader("X-Auth-Request-User", _AUTH_REQUEST, "name"),
    IdentityHeader("X-Auth-Request-Email", _AUTH_REQUEST, "email"),
    IdentityHeader("X-Auth-Request-Preferred-Username", _AUTH_REQUEST, "name"),
    IdentityHeader("X-Auth-Request-Groups", _AUTH_REQUEST, "roles"),
    IdentityHeader("X-Auth-Request-Access-Token", _AUTH_REQUEST, "jwt"),
    IdentityHeader("X-Authenticated-User", "auth proxies and ext_authz filters (ISA/TMG)", "name"),
    IdentityHeader("X-Remote-User", "Apache REMOTE_USER relayed; Kubernetes front proxy", "name"),
    IdentityHeader("X-Remote-Group", "Kubernetes API front proxy (requestheader)", "roles"),
    IdentityHeader("Remote-User", _FORWARD_AUTH, "name"),
    IdentityHeader("Remote-Email", _FORWARD_AUTH, "email"),
    IdentityHeader("Remote-Groups", _FORWARD_AUTH, "roles"),
    IdentityHeader("X-Consumer-Username", _KONG, "name"),
    IdentityHeader("X-Consumer-Custom-Id", _KONG, "name"),
    IdentityHeader("X-Consumer-Id", _KONG, "subject-id"),
    IdentityHeader("X-Credential-Identifier", _KONG, "name"),
    IdentityHeader("X-Goog-Authenticated-User-Email", _IAP, "iap-email"),
    IdentityHeader("X-Goog-Authenticated-User-Id", _IAP, "iap-id"),
    IdentityHeader("X-Goog-Iap-Jwt-Assertion", _IAP, "jwt"),
    IdentityHeader("X-Amzn-Oidc-Identity", _ALB, "subject-id"),
    IdentityHeader("X-Amzn-Oidc-Data", _ALB, "jwt"),
    IdentityHeader("X-Amzn-Oidc-Accesstoken", _ALB, "jwt"),
    IdentityHeader("X-Amzn-Mtls-Clientcert", "AWS ALB mutual TLS passthrough", "cert-pem-escaped"),
    IdentityHeader("X-MS-CLIENT-PRINCIPAL", _EASY_AUTH, "ms-principal"),
    IdentityHeader("X-MS-CLIENT-PRINCIPAL-NAME", _EASY_AUTH, "email"),
    IdentityHeader("X-MS-CLIENT-PRINCIPAL-ID", _EASY_AUTH, "subject-id"),
    IdentityHeader("X-ARR-ClientCert", "Azure App Service client certificates", "cert-der-base64"),
    IdentityHeader("Cf-Access-Authenticated-User-Email", "Cloudflare Access", "email"),
    IdentityHeader("Cf-Access-Jwt-Assertion", "Cloudflare Access", "jwt"),
    IdentityHeader("X-Pomerium-Jwt-Assertion", "Pomerium", "jwt"),
    IdentityHeader("X-Vouch-User", "vouch-proxy", "email"),
    IdentityHeader("X-Webauth-User", "Grafana auth proxy (default header)", "name"),
    IdentityHeader(
        "X-SSL-Client-Cert", "nginx $ssl_client_escaped_cert, HAProxy", "cert-pem-escaped"
    ),
    IdentityHeader("X-SSL-Client-DN", "nginx $ssl_client_s_dn, HAProxy", "dn"),
    IdentityHeader("X-Client-Cert", _CERT_PROXY, "cert-pem-escaped"),
    IdentityHeader("X-Client-DN", _CERT_PROXY, "dn"),
    IdentityHeader(
        "Ssl-Client-Cert", "Kubernetes ingress-nginx auth-tls-pass-certificate", "cert-pem-escaped"
    ),
    IdentityHeader("Client-Cert", "RFC 9440 (Client-Cert HTTP field)", "cert-rfc9440"),
    IdentityHeader("X-Forwarded-Tls-Client-Cert", "Traefik passTLSClientCert", "cert-der-base64"),
    IdentityHeader("X-Forwarded-Client-Cert", "Envoy / Istio (XFCC)", "xfcc"),
    IdentityHeader("X-SPIFFE-ID", "SPIFFE-aware proxies", "spiffe-id"),
    IdentityHeader("X-User", "home-grown auth proxies", "name"),
    IdentityHeader("X-User-Id", "home-grown auth proxies", "subject-id"),
    IdentityHeader("X-Email", "home-grown auth proxies", "email"),
    IdentityHeader("X-Principal", "home-grown auth proxies", "name"),
    IdentityHeader(
        "X-Trustproof-Principal",
        "trustproof's gateway",
        "name",
        companions=("X-Trustproof-Principal-Kind",),
    ),
    IdentityHeader("X-Trustproof-Principal-Kind", "trustproof's gateway", "principal-kind"),
    IdentityHeader("X-Trustproof-Roles", "trustproof's gateway", "roles"),
    IdentityHeader("X-Trustproof-Client-Spiffe-Id", "trustproof's gateway", "spiffe-id"),
)
"""The forwarded-identity headers of the real world: a service written for one of these proxies
takes the caller from the header, so a caller that can set it is whoever it claims to be. The
gateway strips them all; ``token.forged-headers`` and ``bypass.direct-port`` forge each."""

# Headers a caller must never be able to set: identity assertions other proxies use, and our own.
IDENTITY_HEADER_PREFIXES = (
    "x-trustproof-",
    "x-ssl-client-",
    "x-auth-request-",
    "x-amzn-oidc-",
    "x-ms-client-principal",
    "x-goog-authenticated-user-",
    "x-goog-iap-",
    "x-consumer-",
    "cf-access-",
    "x-pomerium-",
    "x-webauth-",
)
IDENTITY_HEADERS = frozenset(
    {header.name.lower() for header in IDENTITY_HEADER_TABLE}
    | {"x-client-verify", "remote-name", "x-username", "client-cert-chain"}
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


def _asserts_identity(lower: str, extra: frozenset[str] = frozenset()) -> bool:
    """A header only the gateway may set: an identity assertion, an override or a client
    address (`extra`: the spec's own identity headers, normalised)."""
    return (
        lower in IDENTITY_HEADERS
        or lower.startswith(IDENTITY_HEADER_PREFIXES)
        or lower in extra
        or lower in METHOD_OVERRIDE_HEADERS
        or lower in URL_OVERRIDE_HEADERS
        or lower in FORWARDING_HEADERS
        or lower.startswith(FORWARDING_HEADER_PREFIXES)
    )


def identity_claims(
    headers: Iterable[tuple[str, str]], extra: frozenset[str] = frozenset()
) -> tuple[str, ...]:
    """The normalised names of the headers in `headers` a proxy strips as identity, override
    or client-address headers (for the audit: names only, never values)."""
    return tuple(
        lower for name, _ in headers if _asserts_identity(lower := normalised(name), extra)
    )


def relayable(
    headers: Iterable[tuple[str, str]],
    consumed: frozenset[str],
    extra: frozenset[str] = frozenset(),
) -> tuple[list[tuple[str, str]], tuple[str, ...]]:
    """The caller's headers a proxy may relay, and the normalised names of the identity,
    override and client-address headers it removed (hop-by-hop and `consumed` fields go
    silently). `extra`: more identity headers (the spec's ``identity_headers``), normalised."""
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
        if _asserts_identity(lower, extra):
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
