"""Access-token validation for the gateways: one call, one `TokenCheck`, never an exception.

`TokenValidator.validate()` runs the checks in a fixed order and stops at the first failure, whose
stable reason code says what was wrong (`REASONS`):

1. shape — a text token (``missing`` when empty), at most `MAX_TOKEN_LENGTH` characters, three
   canonical base64url segments, a JSON header and payload without duplicate members
   (``malformed``: a last-wins parser and a first-wins one would read different claims);
2. header, before any cryptography — ``alg`` must be ES256 (``alg-not-allowed``: this is what
   stops ``alg: none`` and HS256-with-the-public-key), ``typ`` must be ``at+jwt`` (RFC 9068 §4,
   ``wrong-type``), ``kid`` must name a key we have (``unknown-kid``);
3. signature (``bad-signature``, also for the high-S twin of a signature: see `_jose`), then
   the claims: required claims (``missing-claim``), issuer,
   audience (one string, compared exactly), claim types, then time: ``expired``,
   ``not-yet-valid``, ``issued-in-future``, each with the validator's leeway;
4. revocation (``revoked``);
5. certificate binding (RFC 8705 §3): a token with ``cnf`` must come with the certificate whose
   thumbprint it names (``cnf-mismatch``); with ``require_binding`` an unbound token is
   ``unbound``; a token whose ``sub`` is a SPIFFE ID must name the calling workload
   (``subject-mismatch``).

Time is injected. PyJWT reads the system clock, so its own ``exp``/``nbf``/``iat`` checks are
switched off and this module checks those claims against `Clock.now()` itself, on every path
(fresh and cached). PyJWT does what it is good at: the signature with ``algorithms=["ES256"]``,
the required claims, ``iss`` and ``aud``.

A token that passed stages 1-3 apart from time is cached by its SHA-256 (with the audience it was
checked for) until its ``exp``, so a busy gateway verifies each signature once. Time, revocation and
binding are checked on every call, cached or not, and a cached entry is only used while its key
is still the one the key source returns for its ``kid``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal, Protocol, get_args

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.types import Options

from trustproof.clock import Clock
from trustproof.scrub import scrubbed_traceback
from trustproof.tokens._jose import (
    COMPACT_JWS,
    JoseError,
    b64url_decode,
    es256_high_s,
    freeze,
    json_object,
    numeric_date,
    short,
    unverified_header,
)
from trustproof.tokens.issuer import CNF_X5T
from trustproof.tokens.keys import ALGORITHM
from trustproof.tokens.revocation import RevocationList

logger = logging.getLogger("trustproof.tokens")

Reason = Literal[
    "ok",
    "missing",
    "malformed",
    "alg-not-allowed",
    "wrong-type",
    "unknown-kid",
    "bad-signature",
    "missing-claim",
    "wrong-issuer",
    "wrong-audience",
    "expired",
    "not-yet-valid",
    "issued-in-future",
    "revoked",
    "cnf-mismatch",
    "unbound",
    "subject-mismatch",
    "error",
]
REASONS: tuple[Reason, ...] = get_args(Reason)

MAX_TOKEN_LENGTH = 8192
REQUIRED_CLAIMS = ("exp", "iat", "nbf", "iss", "aud", "sub", "jti")
ACCEPTED_TYPES = frozenset({"at+jwt", "application/at+jwt"})  # RFC 9068 §4; compared lowercased
EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class TokenCheck:
    """The outcome of one validation.

    `claims` holds the verified claims once the signature, the required claims, the issuer and the
    audience have passed (so an expired or revoked token still says whose it was); it is empty
    otherwise. They are read-only: JSON objects are mappings, arrays are tuples (`thaw` gives
    plain JSON back). `detail` is for humans and never contains the token. `cached` says the
    signature check was skipped because this token had been verified before.
    """

    ok: bool
    reason: Reason
    claims: Mapping[str, Any]
    detail: str
    cached: bool


class KeySource(Protocol):
    """Where verification keys come from: a `KeyRing` in-process, or a fetched JWKS."""

    def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None: ...


@dataclass(frozen=True)
class _Verified:
    """A cache entry: everything about a token that does not change with time."""

    claims: Mapping[str, Any]
    kid: str
    key: ec.EllipticCurvePublicKey
    exp: float
    nbf: float
    iat: float


def _refuse(reason: Reason, detail: str, claims: Mapping[str, Any] = EMPTY) -> TokenCheck:
    return TokenCheck(False, reason, claims, detail, cached=False)


class TokenValidator:
    """Validates access tokens from one issuer, verified with keys from a `KeySource`.

    Holds a cache, so use one validator from one thread (a gateway's event loop).
    """

    def __init__(
        self,
        issuer: str,
        keys: KeySource,
        revocations: RevocationList | None,
        clock: Clock,
        *,
        leeway: timedelta = timedelta(seconds=5),
        cache_size: int = 4096,
    ) -> None:
        if not issuer:
            raise ValueError("the expected issuer cannot be empty")
        if leeway < timedelta(0):
            raise ValueError("leeway cannot be negative")
        if cache_size < 0:
            raise ValueError("cache_size cannot be negative (0 turns the cache off)")
        if revocations is not None and revocations.grace < leeway:
            raise ValueError(
                f"the revocation list forgets entries {revocations.grace} after expiry, but "
                f"tokens are accepted up to {leeway} after it: revoked tokens would come back"
            )
        self.issuer = issuer
        self.keys = keys
        self.revocations = revocations
        self.clock = clock
        self.leeway = leeway
        self._leeway = leeway.total_seconds()
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[bytes, str | None], _Verified] = OrderedDict()

    def validate(
        self,
        token: object,
        *,
        audience: str,
        peer_x5t_s256: str | None = None,
        peer_spiffe_id: str | None = None,
        require_binding: bool = False,
    ) -> TokenCheck:
        """Check a token presented to the service `audience` by the peer described.

        `peer_x5t_s256` is the RFC 8705 thumbprint of the client certificate of the connection
        (None without one); `peer_spiffe_id` its SPIFFE ID, to hold a workload's token to the
        workload presenting it — leave it None for persona tokens, whose subject is not the peer.
        Never raises because of `token`; a misconfigured call (empty audience) raises ValueError.
        """
        if not isinstance(audience, str) or not audience:
            raise ValueError("validate() needs the audience of the service being called")
        try:
            check = self._check(token, audience)
            if check.ok:
                check = self._check_binding(check, peer_x5t_s256, peer_spiffe_id, require_binding)
        except Exception as exc:
            logger.error(
                "token validation failed unexpectedly; refusing:\n%s", scrubbed_traceback(exc)
            )
            return _refuse("error", "the token could not be validated (internal error)")
        return check

    def inspect(self, token: object) -> TokenCheck:
        """Check a token for any audience this issuer serves, without binding checks.

        For the token service's introspection (RFC 7662) and revocation (RFC 7009) endpoints,
        which answer about a token rather than admit its bearer. Gateways use `validate()`.
        """
        try:
            return self._check(token, None)
        except Exception as exc:
            logger.error(
                "token inspection failed unexpectedly; refusing:\n%s", scrubbed_traceback(exc)
            )
            return _refuse("error", "the token could not be inspected (internal error)")

    def clear_cache(self) -> None:
        self._cache.clear()

    # -- stages 1-4 -----------------------------------------------------------------------------

    def _check(self, token: object, audience: str | None) -> TokenCheck:
        if isinstance(token, bytes | bytearray | memoryview):
            return _refuse("malformed", "the token must be text, not bytes")
        if not isinstance(token, str):
            return _refuse("malformed", f"the token must be text, not {type(token).__name__}")
        if not token:
            return _refuse("missing", "no token was presented")
        if len(token) > MAX_TOKEN_LENGTH:
            return _refuse("malformed", f"the token is longer than {MAX_TOKEN_LENGTH} characters")
        if not COMPACT_JWS.fullmatch(token):
            return _refuse("malformed", "not a compact JWS (three base64url segments)")
        slot = (hashlib.sha256(token.encode("ascii")).digest(), audience)
        verified = self._cache.get(slot)
        cached = verified is not None and self.keys.public_key(verified.kid) is verified.key
        if verified is not None and cached:
            self._cache.move_to_end(slot)
        else:
            outcome = self._verify(token, audience)
            if isinstance(outcome, TokenCheck):
                return outcome
            verified = outcome
            self._remember(slot, verified)
        refusal = self._check_time(verified)
        if refusal is not None:
            if refusal.reason == "expired":
                self._cache.pop(slot, None)
            return refusal
        jti = verified.claims["jti"]
        if self.revocations is not None and self.revocations.is_revoked(jti):
            return _refuse("revoked", f"token {jti} has been revoked", verified.claims)
        return TokenCheck(True, "ok", verified.claims, "valid", cached=cached)

    def _verify(self, token: str, audience: str | None) -> _Verified | TokenCheck:
        checked = self._key_for(token)
        if isinstance(checked, TokenCheck):
            return checked
        kid, key = checked
        try:
            claims = _PYJWT.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=self.issuer,
                options=_OPTIONS if audience is not None else _OPTIONS_ANY_AUDIENCE,
            )
        except jwt.InvalidSignatureError:
            return _refuse("bad-signature", "the signature does not verify with key " + kid)
        except jwt.MissingRequiredClaimError as exc:
            return _refuse("missing-claim", f"the token has no {exc.claim!r} claim")
        except jwt.InvalidIssuerError:
            return _refuse("wrong-issuer", f"the token was not issued by {self.issuer}")
        except jwt.InvalidAudienceError:
            return _refuse("wrong-audience", f"the token is not for audience {audience}")
        except jwt.InvalidTokenError as exc:  # DecodeError, bad sub/jti types, ...
            return _refuse("malformed", f"the token could not be decoded: {exc}")
        return _static_claims(claims, kid, key)

    def _key_for(self, token: str) -> tuple[str, ec.EllipticCurvePublicKey] | TokenCheck:
        """Stage 2, before any cryptography: the header names ES256, at+jwt and a key we have;
        and the signature is in low-S form (its high-S twin is refused as a bad signature)."""
        try:
            header = unverified_header(token)
        except JoseError as exc:
            return _refuse("malformed", str(exc))
        alg = header.get("alg")
        if alg != ALGORITHM:
            return _refuse("alg-not-allowed", f"alg {short(alg)} is not allowed; only ES256 is")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCEPTED_TYPES:
            return _refuse("wrong-type", f"typ {short(typ)} is not an access token (at+jwt)")
        if "crit" in header:
            return _refuse("malformed", "critical header extensions (crit) are not supported")
        kid = header.get("kid")
        if kid is None:
            return _refuse("unknown-kid", "the header names no key (kid)")
        if not isinstance(kid, str) or not kid:
            return _refuse("malformed", "the kid header must be a non-empty string")
        key = self.keys.public_key(kid)
        if key is None:
            return _refuse("unknown-kid", f"no current key has kid {short(kid)}")
        try:
            signature = b64url_decode(token.rpartition(".")[2], "signature")
        except JoseError as exc:
            return _refuse("malformed", str(exc))
        if es256_high_s(signature):
            return _refuse(
                "bad-signature", "the signature is the high-S twin of another (malleable)"
            )
        return kid, key

    def _check_time(self, verified: _Verified) -> TokenCheck | None:
        now = self.clock.now().timestamp()
        claims = verified.claims
        if now >= verified.exp + self._leeway:
            return _refuse("expired", f"the token expired at {_when(verified.exp)}", claims)
        if verified.nbf > now + self._leeway:
            return _refuse(
                "not-yet-valid", f"the token is valid from {_when(verified.nbf)}", claims
            )
        if verified.iat > now + self._leeway:
            return _refuse(
                "issued-in-future",
                f"the token claims to be issued at {_when(verified.iat)}",
                claims,
            )
        return None

    def _remember(self, slot: tuple[bytes, str | None], verified: _Verified) -> None:
        if self.cache_size == 0:
            return
        self._cache[slot] = verified
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    # -- stage 5 --------------------------------------------------------------------------------

    def _check_binding(
        self,
        check: TokenCheck,
        peer_x5t_s256: str | None,
        peer_spiffe_id: str | None,
        require_binding: bool,
    ) -> TokenCheck:
        claims = check.claims
        cnf = claims.get("cnf")
        if cnf is not None:
            bound = cnf.get(CNF_X5T)
            if bound is None:
                return _refuse(
                    "cnf-mismatch", "the token is bound by a method other than x5t#S256", claims
                )
            if peer_x5t_s256 is None:
                return _refuse(
                    "cnf-mismatch", "the token is bound to a certificate but none was shown", claims
                )
            if not hmac.compare_digest(bound.encode(), str(peer_x5t_s256).encode()):
                return _refuse(
                    "cnf-mismatch", "the token is bound to a different certificate", claims
                )
        elif require_binding:
            return _refuse("unbound", "the token is not bound to a certificate (no cnf)", claims)
        subject = claims["sub"]
        if (
            peer_spiffe_id is not None
            and subject.startswith("spiffe://")
            and subject != peer_spiffe_id
        ):
            return _refuse(
                "subject-mismatch",
                f"the token's subject {subject} is not the caller {peer_spiffe_id}",
                claims,
            )
        return check


class _StrictPyJWT(jwt.PyJWT):
    """PyJWT whose payload parser refuses duplicate members (PyJWT's ``json.loads`` keeps the
    last): a token whose claims read two ways is malformed. `_decode_payload` is PyJWT's
    documented hook for decoding the payload differently; it runs after the signature check."""

    def _decode_payload(self, decoded: dict[str, Any]) -> dict[str, Any]:
        try:
            return json_object(decoded["payload"], "payload")
        except JoseError as exc:
            raise jwt.DecodeError(str(exc)) from None


_PYJWT = _StrictPyJWT()

_OPTIONS: Options = {
    "require": list(REQUIRED_CLAIMS),
    "verify_signature": True,
    "verify_aud": True,
    "strict_aud": True,
    "verify_iss": True,
    # Time is checked against the injected clock in `_check_time`, never against the system's.
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
}
_OPTIONS_ANY_AUDIENCE: Options = {**_OPTIONS, "verify_aud": False}


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _static_claims(
    claims: dict[str, Any], kid: str, key: ec.EllipticCurvePublicKey
) -> _Verified | TokenCheck:
    """The type checks PyJWT leaves to us; on success, the cacheable record of the token."""
    for name in ("sub", "jti", "aud"):
        if not isinstance(claims[name], str) or not claims[name]:
            return _refuse("missing-claim", f"the {name!r} claim must be a non-empty string")
    times: dict[str, float] = {}
    for name in ("exp", "nbf", "iat"):
        value = numeric_date(claims[name])
        if value is None:
            return _refuse("malformed", f"the {name!r} claim is not a NumericDate")
        times[name] = value
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        return _refuse("malformed", "the 'roles' claim must be a list of strings")
    if not isinstance(claims.get("client_id", ""), str):
        return _refuse("malformed", "the 'client_id' claim must be a string")
    if "cnf" in claims and not isinstance(claims["cnf"], dict):  # e.g. "cnf": null
        return _refuse("malformed", "the 'cnf' claim must be an object")
    cnf = claims.get("cnf")
    if cnf is not None:
        thumbprint = cnf.get(CNF_X5T) if isinstance(cnf, dict) else ""
        if thumbprint is not None and (not isinstance(thumbprint, str) or not thumbprint):
            return _refuse("malformed", "the 'cnf' claim must be an object; x5t#S256 a string")
    return _Verified(freeze(claims), kid, key, times["exp"], times["nbf"], times["iat"])
