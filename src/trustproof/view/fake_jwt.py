"""A token validator with the classic mistakes, for `FakeView` servers a token probe should fool.

`FakeServer.token_flaws` names the mistakes (`TokenFlaw`); where our `TokenValidator` refuses a
token, the fake server asks `flawed_accepts` whether a validator with those mistakes — and
otherwise as careful as a PyJWT one (issuer, audience, ``exp``) — would take it. Each flaw is
the real mistake, not a switch on our reason codes: ``trusts-jwk`` verifies the signature with
the key in the header, ``alg-none-case`` blocklists only the exact spelling ``none``, and so on,
so a probe fools exactly the fakes with its mistake and no other.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from trustproof.tokens import KeySource
from trustproof.tokens._jose import JoseError, b64url_decode
from trustproof.tokens.validate import MAX_TOKEN_LENGTH

TokenFlaw = Literal[
    "alg-none-case",  # refuses alg "none" only as spelled so: "None", "NONE" pass unsigned
    "empty-signature",  # skips verification when the signature part is empty
    "psychic-signature",  # ECDSA accepting r = s = 0 (CVE-2022-21449)
    "trusts-jwk",  # verifies with the key in the `jwk` header
    "trusts-jku",  # fetches the JWK Set the `jku` header names
    "trusts-x5u",  # fetches the certificate the `x5u` header names
    "kid-path",  # reads the HMAC key from the file `kid` names
    "kid-sql",  # looks the HMAC key up by `kid` in SQL built by string concatenation
    "ignores-crit",  # accepts critical extensions it does not understand
    "ignores-typ",  # accepts any `typ` (an ID token as an access token)
    "ignores-iat",  # accepts `iat` in the future
    "coerces-exp",  # int(exp): "9999999999" is a date
    "duplicates-last-wins",  # json.loads: of two members the last counts
    "unbounded-size",  # no limit on the token's size
    "unverified-signature",  # decodes without verifying the signature
    "token-from-query",  # takes ?access_token= when no header is sent
    "token-from-cookie",  # takes the access_token cookie when no header is sent
]

Fetch = Callable[[str], bytes | None]


def flawed_accepts(
    token: str,
    flaws: frozenset[TokenFlaw],
    *,
    keys: KeySource,
    issuer: str,
    audience: str,
    now: float,
    fetch: Fetch,
) -> Mapping[str, Any] | None:
    """The claims a validator with `flaws` takes from `token`; None where it refuses it."""
    if len(token) > MAX_TOKEN_LENGTH and "unbounded-size" not in flaws:
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    strict = "duplicates-last-wins" not in flaws
    try:
        header = _json(b64url_decode(parts[0], "header"), strict=strict)
        claims = _json(b64url_decode(parts[1], "payload"), strict=strict)
        signature = b64url_decode(parts[2], "signature")
    except (JoseError, ValueError):
        return None
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    if not _signature_ok(header, signing_input, signature, flaws=flaws, keys=keys, fetch=fetch):
        return None
    if "crit" in header and "ignores-crit" not in flaws:
        return None
    if str(header.get("typ", "")).lower() != "at+jwt" and "ignores-typ" not in flaws:
        return None
    if claims.get("iss") != issuer or claims.get("aud") != audience:
        return None
    return claims if _times_ok(claims, now, flaws) else None


def _json(data: bytes, *, strict: bool) -> dict[str, Any]:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        if strict and len({k for k, _ in items}) != len(items):
            raise ValueError("duplicate member")
        return dict(items)

    value = json.loads(data, object_pairs_hook=pairs)
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value


def _times_ok(claims: Mapping[str, Any], now: float, flaws: frozenset[TokenFlaw]) -> bool:
    exp = claims.get("exp")
    if isinstance(exp, str) and "coerces-exp" in flaws and exp.isdigit():
        exp = int(exp)
    if isinstance(exp, bool) or not isinstance(exp, int | float) or exp <= now:
        return False
    nbf = claims.get("nbf", 0)
    if not isinstance(nbf, int | float) or nbf > now:
        return False
    iat = claims.get("iat", 0)
    return isinstance(iat, int | float) and (iat <= now or "ignores-iat" in flaws)


def _signature_ok(
    header: Mapping[str, Any],
    signing_input: bytes,
    signature: bytes,
    *,
    flaws: frozenset[TokenFlaw],
    keys: KeySource,
    fetch: Fetch,
) -> bool:
    if "unverified-signature" in flaws:
        return True
    alg = header.get("alg")
    if isinstance(alg, str) and alg.lower() == "none":
        return alg != "none" and "alg-none-case" in flaws and not signature
    if alg == "HS256":
        secret = _hmac_key(header.get("kid"), flaws)
        if secret is None:
            return False
        expected = hmac.new(secret, signing_input, hashlib.sha256).digest()
        return hmac.compare_digest(expected, signature)
    if alg != "ES256":
        return False
    if not signature:
        return "empty-signature" in flaws
    if signature == bytes(64):
        return "psychic-signature" in flaws
    key = _es256_key(header, flaws, keys, fetch)
    if key is None or len(signature) != 64:
        return False
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    try:
        key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def _hmac_key(kid: object, flaws: frozenset[TokenFlaw]) -> bytes | None:
    if not isinstance(kid, str):
        return None
    if "kid-path" in flaws and kid.endswith("/dev/null"):
        return b""  # open(f"keys/{kid}").read() of /dev/null
    sql = re.search(r"UNION SELECT '([^']*)'", kid)
    if "kid-sql" in flaws and sql is not None:
        return sql.group(1).encode()  # SELECT key FROM keys WHERE kid = '<kid>'
    return None


def _es256_key(
    header: Mapping[str, Any], flaws: frozenset[TokenFlaw], keys: KeySource, fetch: Fetch
) -> ec.EllipticCurvePublicKey | None:
    found: Any = None
    try:
        if "jwk" in header and "trusts-jwk" in flaws:
            found = jwt.PyJWK(dict(header["jwk"])).key
        elif "jku" in header and "trusts-jku" in flaws:
            data = fetch(str(header["jku"]))
            jwks = json.loads(data) if data else {"keys": []}
            match = [k for k in jwks["keys"] if k.get("kid") == header.get("kid")]
            found = jwt.PyJWK(match[0]).key if match else None
        elif "x5u" in header and "trusts-x5u" in flaws:
            data = fetch(str(header["x5u"]))
            found = x509.load_pem_x509_certificate(data).public_key() if data else None
        elif isinstance(header.get("kid"), str):
            found = keys.public_key(header["kid"])
    except (jwt.PyJWTError, ValueError, KeyError, TypeError):
        return None
    return found if isinstance(found, ec.EllipticCurvePublicKey) else None
