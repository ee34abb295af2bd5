"""What a probe asks a `SandboxView` to send, and what came back — typed values, no sockets.

An `HttpRequest` names everything one attempt presents: which boundary and door (the ingress —
the gateway, or the service's own TLS port with ``gateway: none`` — the service's plain port, or
a caller's egress proxy), which client certificate (valid or broken, by kind) or none, which TLS
versions, which token, which headers. The view turns it into a real request (the sandbox adapter)
or decides it in memory (`trustproof.view.fake`). The answer is an `HttpAnswer` or a
`TransportFailure`; classifying it into an outcome is the probe's business
(`trustproof.probes.http`).

Datastore attempts are `DbRequest` -> `DbAnswer` in the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from trustproof.scrub import Secret

CertKind = Literal[
    "valid",
    "untrusted-ca",
    "expired",
    "not-yet-valid",
    "wrong-trust-domain",
    "self-signed",
    "revoked",
    "wrong-eku",
    "ca-as-client",
    "no-uri-san",
    "sha1-signature",
    "weak-key",
    "foreign-ca",
]
"""A valid X.509-SVID, or one of the broken ones (`trustproof.identity.BrokenMaterial`)."""
BROKEN_CERT_MAKERS: Mapping[CertKind, str] = {
    "untrusted-ca": "untrusted_ca",
    "expired": "expired",
    "not-yet-valid": "not_yet_valid",
    "wrong-trust-domain": "wrong_trust_domain",
    "self-signed": "self_signed",
    "revoked": "revoked",
    "wrong-eku": "no_client_auth",
    "ca-as-client": "ca_as_client",
    "no-uri-san": "no_uri_san",
    "sha1-signature": "sha1_signature",
    "weak-key": "weak_key",
}
"""Broken certificate kind -> the `BrokenMaterial` method that mints it (``foreign-ca`` needs the
foreign CA too: `BrokenMaterial.foreign_ca`)."""
Door = Literal["ingress", "direct", "egress"]
"""ingress: what callers use (gateway or the service's own TLS port); direct: the service's plain
port behind its gateway; egress: the caller's egress proxy to the service (plain HTTP)."""
TlsOffer = Literal["modern", "legacy", "plaintext", "tls1.0", "tls1.1", "weak-ciphers"]
"""modern: TLS 1.2+; legacy: only TLS 1.0/1.1; plaintext: no TLS at all; tls1.0, tls1.1: only
that version; weak-ciphers: TLS 1.2 offering only weak suites (`WEAK_CIPHERS`)."""
WEAK_CIPHERS = "eNULL:EXPORT:LOW:RC4:3DES:DES:MD5:SHA1:!aNULL:!AESGCM:!CHACHA20:@SECLEVEL=0"
"""The weak TLS 1.2 suites the probe offers (OpenSSL syntax): NULL, EXPORT, RC4, (3)DES, MD5 and
every SHA-1 MAC suite (CBC); whichever of them this OpenSSL still has at SECLEVEL=0. A server
that completes the handshake with one of them accepts a weak suite. Anonymous suites are left
out: under them a server cannot ask for a client certificate (RFC 5246 §7.4.4), so an mTLS
boundary would refuse them for that reason alone, and a server taking them proves nothing."""
TokenPlacement = Literal["header", "query", "cookie"]
"""Where an attempt carries its token: the Authorization header, the query string, a cookie."""
HostVariant = Literal["as-is", "other-host", "other-port", "no-port", "upper-case", "trailing-dot"]
"""The ``Host`` header an exact request carries, derived from the boundary's own authority
(``host:port``): as-is, another host, another port, no port, upper case, a trailing dot on the
host name (`trustproof.sandbox.rawhttp.host_header`)."""
FailureKind = Literal[
    "server-cert-refused",  # our client refused the server's certificate: nothing learned
    "handshake-failed",
    "connection-closed",
    "connection-failed",  # TLS error or reset while connecting
    "connection-reset",
    "connection-refused",
    "timeout",
    "client-error",
]


@dataclass(frozen=True)
class ClientCert:
    """The certificate an attempt presents: `name`'s SVID, valid or broken in one way."""

    name: str
    kind: CertKind = "valid"
    foreign_ca: str = ""  # kind "foreign-ca": which `tls.foreign_cas` entry signs it (its cert)


@dataclass(frozen=True)
class HttpRequest:
    service: str
    method: str
    path: str
    door: Door = "ingress"
    cert: ClientCert | None = None
    tls: TlsOffer = "modern"
    token: Secret[str] | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    fresh: bool = False  # a new connection (and handshake) rather than a kept-alive one
    caller: str = ""  # door == "egress": whose egress proxy
    # Exact requests (path and request tricks) leave as written, through a raw HTTP/1.1 writer:
    # the path is not normalised or re-encoded; `host` and `absolute_form` only apply to them.
    exact: bool = False
    host: HostVariant = "as-is"
    absolute_form: bool = False  # request line "GET https://authority/path HTTP/1.1"
    token_in: TokenPlacement = "header"  # noqa: S105 (where `token` travels: `placed_token`)


TOKEN_PARAM = "access_token"  # noqa: S105 (RFC 6750 §2.3's query parameter; the cookie)


def placed_token(request: HttpRequest) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The request target and the headers that carry `request.token` where `token_in` says:
    ``Authorization: Bearer`` (RFC 6750 §2.1), ``?access_token=`` (§2.3, which resource servers
    should not accept) or a cookie ``access_token`` — never the header as well."""
    if request.token is None:
        return request.path, ()
    token = request.token.reveal()
    if request.token_in == "query":  # noqa: S105 (a placement)
        joiner = "&" if "?" in request.path else "?"
        return f"{request.path}{joiner}{TOKEN_PARAM}={token}", ()
    if request.token_in == "cookie":  # noqa: S105
        return request.path, (("Cookie", f"{TOKEN_PARAM}={token}"),)
    return request.path, (("Authorization", f"Bearer {token}"),)


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: Mapping[str, str]
    body: bytes = field(repr=False)
    url: str = ""  # the base URL it was sent to (for the evidence)


@dataclass(frozen=True)
class TransportFailure:
    kind: FailureKind
    detail: str  # scrubbed, one line
    url: str = ""  # the base URL it was sent to (for the evidence)


Exchange = HttpAnswer | TransportFailure


@dataclass(frozen=True)
class AdvertisedCas:
    """What a server's TLS 1.2 CertificateRequest names as acceptable client-certificate CAs:
    each distinguished name as RFC 4514 text and as DER (compared by DER). `requested` is False
    when the server asked for no certificate at all."""

    names: tuple[str, ...]
    ders: tuple[bytes, ...] = field(repr=False, default=())
    requested: bool = True
    url: str = ""


CaScan = AdvertisedCas | TransportFailure


@dataclass(frozen=True)
class CaNames:
    """The CA names a probe compares a server's advertised ones with, DER subject -> label:
    `own` the sandbox's CAs (roots and intermediates, every generation still trusted), `foreign`
    the CAs the spec declares must be refused (`tls.foreign_cas`), labelled by their file."""

    own: Mapping[bytes, str]
    foreign: Mapping[bytes, str]


DbCredential = Literal["certificate", "untrusted-ca", "no-cert", "password"]
SslMode = Literal["verify-full", "require", "disable"]


@dataclass(frozen=True)
class DbRequest:
    """Connect to `datastore` as `user`, presenting `caller`'s credential; then maybe run the
    statement exercising `verb` on `table`, always rolled back."""

    datastore: str
    caller: str
    user: str
    credential: DbCredential = "certificate"
    sslmode: SslMode = "verify-full"
    verb: str | None = None
    table: str = ""


DbStatus = Literal[
    "connected", "executed", "refused", "lacks-privilege", "connect-failed", "cannot-run"
]


@dataclass(frozen=True)
class DbAnswer:
    """``connected`` (no statement asked; `detail` who we are), ``executed`` (the statement ran),
    ``refused`` (the statement failed with `sqlstate`), ``lacks-privilege`` (the privilege
    function said no), ``connect-failed`` (libpq's message in `detail`), or ``cannot-run`` (the
    attempt could not be made: `detail` says why)."""

    status: DbStatus
    detail: str = ""
    sqlstate: str = ""
    sent: str = ""  # how we connected (and what we ran), in words, without secrets


Transport = Literal["tcp", "udp"]


@dataclass(frozen=True)
class Listener:
    """A listening socket of a process the sandbox started for `service` (or of its children):
    a TCP socket in LISTEN, or a bound, unconnected UDP socket. `speaks_tls`: whether a TLS
    ClientHello sent to it on loopback got a TLS record back (None: not tried or no answer —
    UDP, another network namespace, an address that is not loopback or a wildcard)."""

    service: str
    port: int
    address: str
    transport: Transport
    pid: int
    process: str
    speaks_tls: bool | None = None

    def describe(self) -> str:
        tls = {True: "speaks TLS", False: "plaintext", None: "TLS unknown"}[self.speaks_tls]
        where = f"[{self.address}]" if ":" in self.address else self.address
        return f"{where}:{self.port}/{self.transport} of pid {self.pid} ({self.process}), {tls}"
