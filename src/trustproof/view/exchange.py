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
]
"""A valid X.509-SVID, or one of the broken ones (`trustproof.identity.BrokenMaterial`)."""
BROKEN_CERT_MAKERS: Mapping[CertKind, str] = {
    "untrusted-ca": "untrusted_ca",
    "expired": "expired",
    "not-yet-valid": "not_yet_valid",
    "wrong-trust-domain": "wrong_trust_domain",
    "self-signed": "self_signed",
    "revoked": "revoked",
}
"""Broken certificate kind -> the `BrokenMaterial` method that mints it."""
Door = Literal["ingress", "direct", "egress"]
"""ingress: what callers use (gateway or the service's own TLS port); direct: the service's plain
port behind its gateway; egress: the caller's egress proxy to the service (plain HTTP)."""
TlsOffer = Literal["modern", "legacy", "plaintext"]
"""modern: TLS 1.2+; legacy: only TLS 1.0/1.1; plaintext: no TLS at all."""
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
