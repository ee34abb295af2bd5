"""The token service's HTTPS shell: TLS on loopback, client-certificate extraction, HTTP plumbing.

Every decision is made in `core.TokenService`; this module only turns HTTP requests into calls and
`Reply` objects into responses. Discovery and JWKS need TLS only; token, revoke, introspect and
admin need a client certificate (`tls_client_auth`). A request whose raw target is not exactly an
endpoint is refused before routing, and bodies are read up to a bound and parsed by `bodies`, so
every malformed request gets a 4xx OAuth JSON error, never a 500.

Client certificates are *requested*, not required, at the TLS layer (`CERT_OPTIONAL`), so that a
caller without one gets an RFC 6749 `invalid_client` JSON answer explaining why, instead of a
bare handshake failure. OpenSSL still refuses chains that do not lead to the sandbox's CA; the
certificate that passes is verified again here as an X.509-SVID at the injected clock (SPIFFE ID,
trust domain, revocation), because OpenSSL knows nothing of those rules.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from cryptography import x509

from trustproof.clock import Clock
from trustproof.identity import CertificateAuthority, Svid, verify_svid, x5t_s256
from trustproof.scrub import scrubbed_traceback
from trustproof.tls import load_svid, server_context
from trustproof.tokenservice.audited import audited
from trustproof.tokenservice.bodies import (
    FORM,
    JSON,
    MAX_BODY,
    bad_request,
    check_headers,
    check_target,
    parse_form,
    parse_json,
    too_large,
)
from trustproof.tokenservice.clients import ClientCache, Proved
from trustproof.tokenservice.core import Client, Reply, TokenService, oauth_error
from trustproof.tokenservice.protocol import OAuthAppRunner

log = logging.getLogger("trustproof.tokenservice")


async def neutral_server_header(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """``Server: trustproof`` instead of aiohttp's version banner (as the gateways answer)."""
    response.headers["Server"] = "trustproof"


Handler = Callable[[Mapping[str, Any], Client | None, str], Reply]


@dataclass
class TokenServer:
    """A running token service: `url` is its issuer URL, `context` its TLS server context."""

    runner: web.AppRunner
    url: str
    context: ssl.SSLContext

    def reload_svid(self, svid: Svid) -> None:
        """Present `svid` on new handshakes (after rotation); open connections are untouched.

        The listening socket keeps the same `SSLContext`, so loading the new chain and key into
        it is all a restart-free rotation needs."""
        load_svid(self.context, svid)

    async def close(self) -> None:
        await self.runner.cleanup()


class _App:
    def __init__(self, service: TokenService, ca: CertificateAuthority, clock: Clock) -> None:
        self.service = service
        self.ca = ca
        self.clock = clock
        self.clients = ClientCache(self._revoked)

    def _revoked(self, serial: int) -> bool:
        return self.ca.is_revoked(serial)

    def client(self, request: web.Request) -> tuple[Client | None, str]:
        """The verified client identity of this connection, or why there is none (a certificate
        that passed is checked in full once, then for its validity and revocation: `clients`)."""
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            return None, "no client certificate was presented"
        now = self.clock.now()
        known = self.clients.get(der, now)
        if known is not None:
            return known, ""
        check = verify_svid(
            der,
            self.ca.intermediates,
            bundle=self.ca.bundle,
            trust_domain=self.service.registry.trust_domain,
            now=now,
            revoked=self.ca.is_revoked,
        )
        if not check.ok or check.spiffe_id is None:
            return None, f"client certificate refused: {check.reason} ({check.detail})"
        client = Client(str(check.spiffe_id), x5t_s256(der))
        leaf = x509.load_der_x509_certificate(der)
        self.clients.put(
            der,
            Proved(client, leaf.serial_number, leaf.not_valid_before_utc, leaf.not_valid_after_utc),
        )
        return client, ""

    def form_endpoint(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def endpoint(request: web.Request) -> web.Response:
            client, why_not = self.client(request)
            body = await read_body(request, FORM)
            form = parse_form(body) if isinstance(body, bytes) else body
            if isinstance(form, Reply):
                return respond(form)
            return respond(self.guard(handler, form, client, why_not))

        return endpoint

    async def mint(self, request: web.Request) -> web.Response:
        client, why_not = self.client(request)
        body = await read_body(request, JSON)
        values = parse_json(body) if isinstance(body, bytes) else body
        if isinstance(values, Reply):
            return respond(values)
        return respond(self.guard(self.service.mint, values, client, why_not))

    def guard(
        self, handler: Handler, values: Mapping[str, Any], client: Client | None, why_not: str
    ) -> Reply:
        """Run a handler; an unexpected error is a 500 that grants nothing (fail closed)."""
        try:
            reply = handler(values, client, why_not)
        except Exception as exc:
            # The traceback is scrubbed here, at the source: records reach handlers (pytest's, a
            # user's root handler) that do not scrub.
            log.error("token service error, request refused:\n%s", scrubbed_traceback(exc))
            return Reply(
                500,
                {
                    "error": "server_error",
                    "error_description": "internal error; nothing was issued",
                },
            )
        return audited(self.service.audit, handler.__name__, values, client, reply)

    async def discovery(self, _: web.Request) -> web.Response:
        return respond(self.service.discovery())

    async def jwks(self, _: web.Request) -> web.Response:
        return respond(self.service.jwks())


def respond(reply: Reply) -> web.Response:
    return web.json_response(dict(reply.body), status=reply.status, headers=dict(reply.headers))


async def read_body(request: web.Request, expected: str) -> bytes | Reply:
    """The body, at most `MAX_BODY` bytes, after the header checks of `bodies.check_headers`."""
    refusal = check_headers(
        request.headers.get("Content-Type"),
        request.headers.get("Content-Encoding"),
        request.content_length,
        expected,
    )
    if refusal is not None:
        return refusal
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := await request.content.readany():
            size += len(chunk)
            if size > MAX_BODY:
                return too_large()
            chunks.append(chunk)
    except Exception as exc:  # a broken chunked body, a reset: nothing was parsed or granted
        return bad_request(f"the body could not be read ({type(exc).__name__})")
    return b"".join(chunks)


@web.middleware
async def exact_endpoints(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Route on the raw request target only, and answer every refusal as OAuth JSON.

    aiohttp routes on the percent-decoded, normalised path (``/%74oken`` reaches ``/token``); a
    request is refused here unless its raw target is exactly an endpoint (`bodies.check_target`).
    """
    refusal = check_target(request.method, request.raw_path)
    if refusal is not None:
        return respond(refusal)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return respond(oauth_error(exc.status, "invalid_request", exc.reason))


def build_app(service: TokenService, ca: CertificateAuthority, clock: Clock) -> web.Application:
    app = _App(service, ca, clock)
    web_app = web.Application(client_max_size=MAX_BODY, middlewares=[exact_endpoints])
    web_app.router.add_get("/.well-known/openid-configuration", app.discovery)
    web_app.router.add_get("/.well-known/oauth-authorization-server", app.discovery)
    web_app.router.add_get("/jwks.json", app.jwks)
    web_app.router.add_post("/token", app.form_endpoint(service.token))
    web_app.router.add_post("/revoke", app.form_endpoint(service.revoke))
    web_app.router.add_post("/introspect", app.form_endpoint(service.introspect))
    web_app.router.add_post("/admin/tokens", app.mint)
    web_app.on_response_prepare.append(neutral_server_header)  # no version banner
    return web_app


def bind_loopback(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket on a loopback address (`port=0` picks a free port).

    Binding before the service exists lets the issuer URL, which goes into every token, name the
    real port.
    """
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"refusing to listen on {host}: the sandbox binds to loopback only")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"https://{f'[{host}]' if ':' in host else host}:{port}"


async def serve_token_service(
    service: TokenService, ca: CertificateAuthority, svid: Svid, clock: Clock, sock: socket.socket
) -> TokenServer:
    """Serve `service` over TLS on the already-bound `sock` (see `bind_loopback`)."""
    context = server_context(svid, ca.bundle_pem())
    # auto_decompress=False: a coded body is refused (415), never inflated (bodies.py); protocol
    # errors are OAuth JSON too (protocol.py).
    runner = OAuthAppRunner(build_app(service, ca, clock), access_log=None, auto_decompress=False)
    await runner.setup()
    try:
        site = web.SockSite(runner, sock, ssl_context=context)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return TokenServer(runner, url_of(sock), context)
