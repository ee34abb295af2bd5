"""The egress proxy of a service for one external dependency (`spec.dependencies`).

Plain HTTP in (loopback, from the service), out to exactly one place: the dependency's mock on
loopback (``mode: mock``) or its declared ``host:port`` (``mode: real``, TLS verified against the
system CAs or the spec's ``ca`` file, server name and ``Host`` = the declared host). The proxy
adds the credentials header with the value from the trustproof process's environment; a value the
service sent itself in that header is dropped. Whatever the request names, nothing else is ever
connected to: a request whose target (absolute form, ``Host``, or ``CONNECT``) names another
host is refused with 403 ``dependency-other-host`` and nothing is sent (`target_problem`).

The caller's request is held to the gateway's header rules (`headers.py`), as the service egress
proxy does; the listener has the gateway's connection limits. The credentials' value is a
`Secret`: it is in no log line, error or repr.
"""

from __future__ import annotations

import logging
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from trustproof.gateway.egress import egress_failure
from trustproof.gateway.headers import normalised, relayable, request_problem
from trustproof.gateway.http1 import CONSUMED, end_to_end
from trustproof.gateway.listener import ConnectionLimits
from trustproof.gateway.plain import serve_plain
from trustproof.scrub import Secret

log = logging.getLogger("trustproof.gateway.dependency")
CONTENT_FRAMING = frozenset({"content-length"})
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Upstream:
    """Where the proxy connects (`connect_url`, nothing else) and what it says there."""

    dependency: str
    host: str  # the declared host: Host header, TLS server name
    port: int  # the declared port
    scheme: str  # the declared scheme (the default port of the Host header)
    connect_url: str  # "https://host:port" (real) or "http://127.0.0.1:N" (mock)
    header: str  # the credentials header ("" for none)

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if DEFAULT_PORTS.get(self.scheme) == self.port:
            return host
        return f"{host}:{self.port}"


def _authority(text: str) -> tuple[str, int | None] | None:
    """``host[:port]`` -> (lower-case host, port or None), or None when it does not parse."""
    try:
        parts = urlsplit(f"//{text}")
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host or parts.username or parts.password or parts.path or parts.query:
        return None
    return host.lower().rstrip("."), port


def _names_dependency(text: str, upstream: Upstream, own: str) -> bool:
    """Does authority `text` name the dependency (its host, with its port or none) or the
    proxy itself (`own`, ``host:port``)?"""
    named = _authority(text)
    if named is None:
        return False
    host, port = named
    if host == upstream.host.lower() and port in (None, upstream.port):
        return True
    return named == _authority(own)


def target_problem(
    method: str, raw_target: str, host_header: str | None, upstream: Upstream, own: str
) -> str | None:
    """Why a request names something other than the dependency (None when it does not).

    `own` is the proxy's own ``host:port``: a service calling its URL sends that as ``Host``.
    Accepted targets are the dependency's host (with its declared port, or none) and the proxy
    itself."""
    if method.upper() == "CONNECT":
        return "CONNECT tunnels are not offered: the proxy forwards requests to one host only"
    if not raw_target.startswith("/"):
        parts = urlsplit(raw_target)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return f"the request target {raw_target[:80]!r} is neither a path nor an http URL"
        if not _names_dependency(parts.netloc, upstream, own):
            return f"the request names {parts.netloc[:80]!r}, not {upstream.authority}"
    if host_header is not None and not _names_dependency(host_header.strip(), upstream, own):
        return f"the Host header names {host_header[:80]!r}, not {upstream.authority}"
    return None


def path_of(raw_target: str) -> str:
    """The path and query to send upstream (from origin or absolute form)."""
    if raw_target.startswith("/"):
        return raw_target
    parts = urlsplit(raw_target)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """TLS 1.2+ client context verifying the server against `ca_file` or the system's CAs."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class DependencyProxy:
    """Plain HTTP in (loopback, from `caller`), to `upstream` only, with its credentials added."""

    def __init__(
        self,
        *,
        caller: str,
        upstream: Upstream,
        credentials: Secret[str] | None,
        ca_file: Path | None = None,
        limits: ConnectionLimits | None = None,
    ) -> None:
        self.caller = caller
        self.upstream = upstream
        self._credentials = credentials
        self._context = (
            tls_context(ca_file) if upstream.connect_url.startswith("https://") else None
        )
        self.limits = limits or ConnectionLimits()
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.ServerRunner | None = None
        self.url = ""
        self.refused_targets = 0  # requests naming another host (refused, nothing sent)

    def __repr__(self) -> str:
        return (
            f"DependencyProxy(caller={self.caller!r}, dependency={self.upstream.dependency!r}, "
            f"to={self.upstream.connect_url!r}, url={self.url!r})"
        )

    async def start(self, sock: socket.socket) -> None:
        connector = aiohttp.TCPConnector(limit=128, keepalive_timeout=30, use_dns_cache=False)
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, timeout=aiohttp.ClientTimeout(total=30)
        )
        try:
            self._runner, self.url = await serve_plain(self._handle, sock, self.limits)
        except BaseException:  # nothing half-started may stay behind (the socket is closed)
            await self.close()
            raise

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        up = self.upstream
        if self._session is None:
            return egress_failure(503, "not-ready", "the dependency proxy is not serving yet")
        problem = request_problem(
            (request.version.major, request.version.minor), list(request.headers.items())
        )
        if problem is not None:
            return egress_failure(400, problem.reason, f"{problem.detail}; nothing was sent")
        own = self.url.removeprefix("http://")
        other = target_problem(
            request.method, request.raw_path, request.headers.get("Host"), up, own
        )
        if other is not None:
            self.refused_targets += 1
            log.warning("dependency proxy %s -> %s refused: %s", self.caller, up.dependency, other)
            return egress_failure(
                403,
                "dependency-other-host",
                f"{self.caller} may reach {up.dependency} ({up.authority}) only; {other}; "
                "nothing was sent",
            )
        drop = CONSUMED | ({normalised(up.header)} if up.header else frozenset())
        headers, _ = relayable(request.headers.items(), drop)
        headers.append(("Host", up.authority))
        if self._credentials is not None and up.header:
            headers.append((up.header, self._credentials.reveal()))
        try:
            body = await request.read()
            async with self._session.request(
                request.method,
                up.connect_url + path_of(request.raw_path),
                headers=headers,
                data=body or None,
                ssl=self._context if self._context is not None else False,
                allow_redirects=False,
            ) as response:
                payload = await response.read()
                out = end_to_end(response.headers.items(), CONTENT_FRAMING)
                return web.Response(status=response.status, body=payload, headers=out)
        except aiohttp.ClientConnectorCertificateError as exc:
            reason = getattr(exc.certificate_error, "verify_message", "") or type(exc).__name__
            log.error("dependency %s: certificate refused: %s", up.dependency, reason)
            return egress_failure(
                502,
                "dependency-certificate",
                f"{up.dependency} ({up.authority}) presented a certificate that does not "
                f"verify: {reason}",
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("dependency %s unreachable: %s", up.dependency, type(exc).__name__)
            return egress_failure(
                502,
                "dependency-unavailable",
                f"{up.dependency} ({up.authority}) could not be reached: {type(exc).__name__}",
            )
