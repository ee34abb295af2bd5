"""A service that does its own zero trust, without trustproof's gateway in front: it terminates
mutual TLS with the sandbox's certificate files and validates access tokens itself with PyJWT.

It stands for the services trustproof did not build (a team's own resource server): standard
library and PyJWT only, nothing imported from trustproof. What it checks, in order:

1. TLS 1.2+, a client certificate chaining to ``TRUSTPROOF_BUNDLE_FILE`` and not on the CRLs
   (``TRUSTPROOF_CRL_FILE``); otherwise the handshake fails. Then the certificate's SPIFFE ID
   (URI SAN) must be in this service's own trust domain; otherwise the connection is closed.
2. The bearer token (``401`` otherwise): ES256 only, signed by a key of the issuer's JWKS (found
   by ``kid``), ``iss`` = the issuer, ``aud`` = its audience, ``exp``/``nbf``; bound to
   the connection's certificate (RFC 8705 ``cnf.x5t#S256``); ``sub`` = the certificate's SPIFFE
   ID; and still active per the token service's introspection (RFC 7662), which is how a
   revocation reaches it at once.
3. The roles in the token against `PERMISSIONS` (``403`` otherwise); unknown routes are ``404``.

Issuer, trust domain and audience come from ``TRUSTPROOF_ISSUER``, ``TRUSTPROOF_TRUST_DOMAIN`` and
``TRUSTPROOF_AUDIENCE``; the issuer's keys from ``TRUSTPROOF_JWKS_FILE`` — a file, not a fetch: a
token naming a ``kid`` the file does not hold is refused. The sandbox rewrites the file when the
signing keys rotate (and the CRL file when a certificate is revoked) and sends SIGHUP
(``reload: sighup``), on which the service reads the certificate, CRL and key files again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import posixpath
import re
import signal
import socket
import ssl
import sys
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt

ENV = os.environ
TRUST_DOMAIN = ENV["TRUSTPROOF_TRUST_DOMAIN"]
ISSUER = ENV["TRUSTPROOF_ISSUER"]
AUDIENCE = ENV["TRUSTPROOF_AUDIENCE"]
CERT, KEY, BUNDLE = (ENV[f"TRUSTPROOF_{n}_FILE"] for n in ("CERT", "KEY", "BUNDLE"))
JWKS_FILE = ENV["TRUSTPROOF_JWKS_FILE"]
CRL = ENV.get("TRUSTPROOF_CRL_FILE")
NAME = ENV["TRUSTPROOF_SERVICE"]

# route -> roles that may call it (the roles claim of the token)
PERMISSIONS: dict[str, set[str]] = {
    "GET /items": {"clerk"},
    "GET /items/{id}": {"clerk", "viewer"},
    "POST /items": {"clerk"},
}
ROUTES = [
    (method, re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", path) + "$"), f"{method} {path}")
    for method, _, path in (route.partition(" ") for route in PERMISSIONS)
]
TIMEOUT = 5.0


class Refused(Exception):
    """Ends a request with `status` and a JSON body naming the reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(BUNDLE)
    if CRL:
        context.load_verify_locations(CRL)
        # every certificate in the chain, not only the leaf: a revoked intermediate too
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN
    context.load_cert_chain(CERT, KEY)
    return context


def client_context() -> ssl.SSLContext:
    """For the token service: trust the bundle, present this service's own certificate."""
    context = ssl.create_default_context(cafile=BUNDLE)
    context.load_cert_chain(CERT, KEY)
    return context


class Contexts:
    """The current server and client TLS contexts, rebuilt from the files on SIGHUP."""

    def __init__(self) -> None:
        self.reload()

    def reload(self) -> None:
        self.server, self.client = server_context(), client_context()


CONTEXTS = Contexts()


class Keys:
    """The issuer's JWKS by kid, read from ``TRUSTPROOF_JWKS_FILE`` at start and on SIGHUP."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        self.reload()

    def get(self, kid: object) -> Any:
        with self._lock:
            if not isinstance(kid, str) or kid not in self._keys:
                raise Refused(401, "unknown-kid")
            return self._keys[kid]

    def reload(self) -> None:
        with open(JWKS_FILE, encoding="utf-8") as file:
            jwks = json.load(file)
        keys = {k["kid"]: jwt.PyJWK(k).key for k in jwks["keys"] if k.get("kid")}
        with self._lock:
            self._keys = keys


KEYS = Keys()


class Reload:
    """SIGHUP: the rotated certificate, the CRL and the signing keys, read again (on a failure
    the previous ones stay: each is a complete set).

    Python runs a signal handler nested inside the one it interrupts: a SIGHUP arriving while a
    reload reads the files would run the second reload to its end first, and the first would
    then finish last, with the older files. So a SIGHUP during a reload only asks the running one
    to read the files once more when it is done."""

    def __init__(self) -> None:
        self.running = False
        self.again = False

    def __call__(self, *_: object) -> None:
        if self.running:
            self.again = True
            return
        self.running = True
        try:
            self.again = True
            while self.again:
                self.again = False
                self.read()
        finally:
            self.running = False

    @staticmethod
    def read() -> None:
        try:
            CONTEXTS.reload()
            KEYS.reload()
        except (OSError, ValueError, KeyError, jwt.PyJWTError) as exc:  # a key PyJWT cannot read
            print(
                f"reload failed, keeping the previous files: {type(exc).__name__}", file=sys.stderr
            )


def x5t_s256(der: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def spiffe_id_of(cert: dict[str, Any]) -> str | None:
    uris = [value for kind, value in cert.get("subjectAltName", ()) if kind == "URI"]
    return uris[0] if len(uris) == 1 else None


def validate(authorization: str | None, peer_id: str, peer_x5t: str) -> dict[str, Any]:
    """The token's claims, or `Refused(401)`."""
    if not authorization or not authorization.startswith("Bearer "):
        raise Refused(401, "missing-token")
    token = authorization.removeprefix("Bearer ").strip()
    try:
        key = KEYS.get(jwt.get_unverified_header(token).get("kid"))
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["ES256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
        )
    except jwt.PyJWTError as exc:
        raise Refused(401, type(exc).__name__) from None
    cnf = claims.get("cnf")
    if not isinstance(cnf, dict) or cnf.get("x5t#S256") != peer_x5t:
        raise Refused(401, "not-bound-to-this-certificate")
    if claims["sub"] != peer_id:
        raise Refused(401, "subject-is-not-the-certificate")
    if not introspect(token):
        raise Refused(401, "inactive")  # revoked (or refused by the issuer for another reason)
    return claims


def introspect(token: str) -> bool:
    request = urllib.request.Request(  # noqa: S310 (https URL from the sandbox)
        f"{ISSUER}/introspect",
        data=urllib.parse.urlencode({"token": token}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(  # noqa: S310
            request, context=CONTEXTS.client, timeout=TIMEOUT
        ) as response:
            return json.load(response).get("active") is True
    except OSError as exc:  # fail closed: no answer, no entry
        raise Refused(503, f"introspection unavailable: {type(exc).__name__}") from None


def route_of(method: str, raw_path: str) -> str | None:
    """The route template a request is for, after normalising its path; an encoded slash is
    ambiguous and matches nothing."""
    path = raw_path.split("?", 1)[0]
    if "%2f" in path.lower():
        return None
    path = posixpath.normpath(re.sub("/+", "/", urllib.parse.unquote(path)))
    for route_method, pattern, route in ROUTES:
        if route_method == method and pattern.match(path):
            return route
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = NAME
    request: ssl.SSLSocket
    peer_id = ""
    peer_x5t = ""

    def handle(self) -> None:
        try:
            self.request.do_handshake()
        except (OSError, ValueError):
            return  # the handshake refused the client: nothing more to say
        peer = spiffe_id_of(self.request.getpeercert() or {})
        der = self.request.getpeercert(binary_form=True)
        if peer is None or not der or not peer.startswith(f"spiffe://{TRUST_DOMAIN}/"):
            return  # not a workload or person of this trust domain: close the connection
        self.peer_id, self.peer_x5t = peer, x5t_s256(der)
        super().handle()

    def do_GET(self) -> None:
        self.answer()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 1 << 20))
        try:
            claims = validate(self.headers.get("Authorization"), self.peer_id, self.peer_x5t)
            route = route_of(self.command, self.path)
            if route is None:
                raise Refused(404, "no-such-route")
            if not PERMISSIONS[route] & set(claims.get("roles") or ()):
                raise Refused(403, "role-not-permitted")
        except Refused as refusal:
            self.reply(refusal.status, {"error": refusal.reason, "reason": refusal.reason})
            return
        self.reply(200, {"route": route, "caller": claims["sub"]}, served=True)

    def reply(self, status: int, body: dict[str, Any], *, served: bool = False) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if served:  # only answers of a handler say who served them
            self.send_header("X-Served-By", NAME)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops connections of a burst of callers

    def __init__(self) -> None:
        super().__init__((ENV["TRUSTPROOF_HOST"], int(ENV["TRUSTPROOF_PORT"])), Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = self.socket.accept()
        connection.settimeout(TIMEOUT)
        # The handshake happens in the request's thread (Handler.handle), not in this loop.
        wrapped = CONTEXTS.server.wrap_socket(
            connection, server_side=True, do_handshake_on_connect=False
        )
        return wrapped, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # refused handshakes and closed connections are expected here


def main() -> None:
    server = Server()
    signal.signal(signal.SIGHUP, Reload())  # new connections and tokens meet the rewritten files
    print(f"{NAME} listening on https://{ENV['TRUSTPROOF_HOST']}:{ENV['TRUSTPROOF_PORT']}")
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
