"""A small synchronous HTTPS client that calls the sandbox's services as one identity.

`Client("orders")` presents what that caller presents in production: a workload its X.509-SVID
and a token bound to it; a persona a bearer token, plus a certificate where the service requires
one (the same rule as the generated cases, `probes.presentation.presents_cert`). The token is
minted per audience (the service called) and reused. Standard library only (`http.client` over
`ssl`): one connection per request, loopback only, nothing kept between requests.

A `Response` is what came back; `trustproof.pytest_plugin.assert_allowed`/`assert_denied` read
it the way the suite does (`trustproof.probes.http.classify`).
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from trustproof.errors import SandboxError
from trustproof.identity import Svid
from trustproof.probes.cells import boundary_kind
from trustproof.probes.presentation import presents_cert
from trustproof.pytest_plugin.live import LiveSandbox
from trustproof.scrub import scrub
from trustproof.tls import client_context

REQUEST_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class CertFiles:
    """A certificate written for other tools: `cert` (the chain), `key` (0600), `bundle` (the
    CA bundle), in a 0700 directory; `svid` is the certificate itself (bind tokens to it)."""

    spiffe_id: str
    cert: Path
    key: Path
    bundle: Path
    svid: Svid = field(repr=False)

    @classmethod
    def write(cls, svid: Svid, bundle_pem: bytes, directory: Path) -> CertFiles:
        directory.chmod(0o700)
        cert, key, bundle = directory / "cert.pem", directory / "key.pem", directory / "bundle.pem"
        cert.write_bytes(svid.cert_chain_pem())
        bundle.write_bytes(bundle_pem)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(svid.key_pem())
        return cls(str(svid.spiffe_id), cert, key, bundle, svid)

    @property
    def x5t_s256(self) -> str:
        """The RFC 8705 thumbprint a bound token carries in ``cnf.x5t#S256``."""
        return self.svid.x5t_s256


@dataclass(frozen=True)
class Response:
    """One HTTP answer. `headers` keeps the names as sent; `header()` looks one up."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    via_gateway: bool  # a trustproof gateway stood in front of the service
    request: str = ""  # what was sent, e.g. "GET /orders as orders with its certificate"

    def header(self, name: str, default: str | None = None) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), default)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        preview = scrub(self.text[:120])
        return f"Response({self.status}, {self.request!r}, body={preview!r})"


@dataclass
class Client:
    """Calls the sandbox's services as `name` (a persona or workload of the spec)."""

    live: LiveSandbox
    name: str
    with_token: bool = True
    _svid: Svid | None = field(default=None, repr=False)
    _tokens: dict[str, str] = field(default_factory=dict, repr=False)
    _contexts: dict[bool, ssl.SSLContext] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        spec = self.live.spec
        if self.name not in spec.personas and self.name not in spec.services:
            raise SandboxError(
                f"unknown caller {self.name!r}", f"expected one of: {', '.join(spec.callers)}"
            )

    def get(self, service: str, path: str, **kwargs: Any) -> Response:
        return self.request("GET", service, path, **kwargs)

    def post(self, service: str, path: str, **kwargs: Any) -> Response:
        return self.request("POST", service, path, **kwargs)

    def request(
        self,
        method: str,
        service: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send one request to `service` (through its gateway) as this client's identity: its
        certificate where it presents one, and its token for `service` unless `headers` carry an
        ``Authorization`` of their own (or the client was made with ``token=False``). A failed
        handshake raises (`ssl.SSLError`, `ConnectionError`) like any HTTPS client."""
        spec = self.live.spec
        if service not in spec.services:
            raise SandboxError(
                f"unknown service {service!r}", f"expected one of: {', '.join(spec.services)}"
            )
        with_cert = presents_cert(spec, self.name, service)
        sent_headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            sent_headers.setdefault("Content-Type", "application/json")
        if self.with_token and not any(k.lower() == "authorization" for k in sent_headers):
            sent_headers["Authorization"] = f"Bearer {self._token(service, with_cert)}"
        parts = urlsplit(self.live.url(service))
        conn = http.client.HTTPSConnection(
            parts.hostname or "127.0.0.1",
            parts.port,
            context=self._context(with_cert),
            timeout=REQUEST_TIMEOUT_SECONDS,
        )
        try:
            conn.request(method, path, body=body, headers=sent_headers)
            answer = conn.getresponse()
            status, answer_headers, data = answer.status, tuple(answer.getheaders()), answer.read()
        finally:
            conn.close()
        how = f"as {self.name}" + (" with its certificate" if with_cert else "")
        return Response(
            status,
            answer_headers,
            data,
            via_gateway=boundary_kind(spec, service) == "gateway",
            request=f"{method} {path} to {service} {how}",
        )

    def _cert(self) -> Svid:
        if self._svid is None:
            self._svid = self.live.cert(self.name)
        return self._svid

    def _context(self, with_cert: bool) -> ssl.SSLContext:
        if with_cert not in self._contexts:
            svid = self._cert() if with_cert else None
            self._contexts[with_cert] = client_context(self.live.bundle_pem(), svid)
        return self._contexts[with_cert]

    def _token(self, audience: str, with_cert: bool) -> str:
        key = f"{audience}|{with_cert}"
        if key not in self._tokens:
            bound = self._cert() if with_cert else None
            self._tokens[key] = self.live.token(self.name, audience, bound_to=bound)
        return self._tokens[key]
