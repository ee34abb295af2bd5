"""How this team's services check an access token, with PyJWT (nothing from trustproof).

Settings come from the environment the sandbox gives every service: the issuer is
``TRUSTPROOF_TOKEN_URL`` without ``/token``, its JWKS ``<issuer>/jwks.json`` (fetched over mutual
TLS, trusting the bundle, again at most once a second when a token names an unknown ``kid``);
the audience is the service's own SPIFFE ID. A valid token is ES256, from that issuer, for that
audience, unexpired, bound to the connection's certificate (RFC 8705 ``cnf.x5t#S256``), and its
``sub`` is the certificate's SPIFFE ID. This service does not introspect tokens: a revoked token
stays valid until it expires (the spec deselects ``token.revoked`` and says so).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import ssl
import threading
import time
import urllib.request
from typing import Any

import jwt
from cryptography import x509

ENV = os.environ
SPIFFE_ID = ENV["TRUSTPROOF_SPIFFE_ID"]
TRUST_DOMAIN = SPIFFE_ID.removeprefix("spiffe://").split("/", 1)[0]
ISSUER = ENV["TRUSTPROOF_TOKEN_URL"].removesuffix("/token")
AUDIENCE = SPIFFE_ID
CERT, KEY, BUNDLE = (ENV[f"TRUSTPROOF_{n}_FILE"] for n in ("CERT", "KEY", "BUNDLE"))
CRL = ENV["TRUSTPROOF_CRL_FILE"]
ALGORITHMS = ["ES256"]
MAX_TOKEN_CHARS = 8192  # a token is a few hundred characters; anything huge is refused unread
ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")  # RFC 9068 §4: not an ID token
JWKS_REFRESH_SECONDS = 1.0
TIMEOUT = 5.0


class Refused(Exception):
    """Ends a request with `status` and a JSON body naming the reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def server_context() -> ssl.SSLContext:
    """TLS 1.2+, a client certificate chaining to the bundle and not on the CRL."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(BUNDLE)
    context.load_verify_locations(CRL)
    context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    context.load_cert_chain(CERT, KEY)
    return context


def client_context() -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=BUNDLE)
    context.load_cert_chain(CERT, KEY)
    return context


class Keys:
    """The issuer's JWKS by kid."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        self._fetched = 0.0

    def get(self, kid: object) -> Any:
        with self._lock:
            if kid not in self._keys and time.monotonic() - self._fetched > JWKS_REFRESH_SECONDS:
                self._fetch()
            if not isinstance(kid, str) or kid not in self._keys:
                raise Refused(401, "unknown-kid")
            return self._keys[kid]

    def _fetch(self) -> None:
        self._fetched = time.monotonic()
        try:
            with urllib.request.urlopen(  # noqa: S310 (https URL from the sandbox)
                f"{ISSUER}/jwks.json", context=client_context(), timeout=TIMEOUT
            ) as response:
                jwks = json.load(response)
        except OSError as exc:  # fail closed: no keys, no entry
            raise Refused(503, f"jwks unavailable: {type(exc).__name__}") from None
        self._keys = {k["kid"]: jwt.PyJWK(k).key for k in jwks["keys"] if k.get("kid")}


KEYS = Keys()


def x5t_s256(der: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def spiffe_id_of(der: bytes) -> str | None:
    """The one URI SAN of a DER certificate (None without exactly one)."""
    try:
        san = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        )
    except (ValueError, x509.ExtensionNotFound):
        return None
    uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if len(uris) == 1 else None


def bearer(authorization: str | None) -> str:
    if not authorization or not authorization.startswith("Bearer "):
        raise Refused(401, "missing-token")
    return authorization.removeprefix("Bearer ").strip()


def validate(token: str, peer_der: bytes | None) -> dict[str, Any]:
    """The token's claims, or `Refused(401)`."""
    if not peer_der:
        raise Refused(401, "no-client-certificate")
    peer_id = spiffe_id_of(peer_der)
    if peer_id is None or not peer_id.startswith(f"spiffe://{TRUST_DOMAIN}/"):
        raise Refused(401, "not-of-this-trust-domain")
    if len(token) > MAX_TOKEN_CHARS:
        raise Refused(401, "token-too-large")
    try:
        header = jwt.get_unverified_header(token)
        if str(header.get("typ", "")).lower() not in ACCESS_TOKEN_TYPES:
            raise Refused(401, "not-an-access-token")
        key = KEYS.get(header.get("kid"))
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=ALGORITHMS,
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise Refused(401, type(exc).__name__) from None
    if not plain_claims(token):
        raise Refused(401, "ambiguous-claims")
    cnf = claims.get("cnf")
    if not isinstance(cnf, dict) or cnf.get("x5t#S256") != x5t_s256(peer_der):
        raise Refused(401, "not-bound-to-this-certificate")
    if claims["sub"] != peer_id:
        raise Refused(401, "subject-is-not-the-certificate")
    return claims


class _Duplicate(ValueError):
    pass


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({key for key, _ in pairs}) != len(pairs):
        raise _Duplicate
    return dict(pairs)


def plain_claims(token: str) -> bool:
    """No member twice (JSON parsers keep different copies: RFC 8725 §3.4 wants one reading) and
    the NumericDate claims numbers, not strings (RFC 7519 §2)."""
    part = token.split(".")[1]
    try:
        claims = json.loads(
            base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)), object_pairs_hook=_unique
        )
    except (ValueError, _Duplicate):
        return False
    dates = [claims.get(name) for name in ("exp", "iat", "nbf") if name in claims]
    return all(isinstance(d, int) and not isinstance(d, bool) for d in dates)


def name_of(spiffe_id: str) -> str:
    """The workload or persona name at the end of a SPIFFE ID."""
    return spiffe_id.rsplit("/", 1)[-1]
