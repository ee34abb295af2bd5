"""Tokens from the JWT attack literature (RFC 8725; PortSwigger's JWT labs; jwt_tool's attacks),
each derived from a `TokenTemplate` with exactly one thing an attacker controls.

    forged = ForgedTokens(template, attacker)
    forged.alg_none("nOnE")          # unsigned, the alg spelled to slip past a case-sensitive check
    forged.embedded_jwk()            # signed by the attacker, its public key in the header

Three kinds of attacker are modelled:

* the *outsider* holds no key of the issuer: unsigned tokens, empty or "psychic" (r = s = 0,
  CVE-2022-21449) signatures, tokens signed with its own key and pointing the verifier at it
  (``jwk``, ``jku``, ``x5u``), HMAC with a key it can predict (``kid`` injection), and the caller's
  own token with claims edited after signing;
* the *parser differential*: a token the issuer really signed, carrying what a strict validator
  refuses and a lenient one reads its own way (``crit`` it does not know, ``typ`` of an ID token,
  ``iat`` in the future, ``exp`` as a string, duplicate JSON members, an oversized payload);
* the *placement*: a valid token where a bearer token does not belong (query, cookie) is the probe's
  business (`trustproof.view.HttpRequest.token_in`); the token itself is `template.valid()`.

`AttackerKeys` is the outsider's key pair with its JWK Set and a self-signed certificate, the
documents a ``jku``/``x5u`` token points at; `trustproof.sandbox.attacker` serves them on loopback.
Each token carries the reason our `TokenValidator` must refuse it with (`expected_reason`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any, Literal, get_args

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from trustproof.clock import Clock
from trustproof.scrub import Secret
from trustproof.tokens._jose import P256_ORDER, b64url_decode, b64url_encode, freeze, json_bytes
from trustproof.tokens.broken import BrokenToken, TokenTemplate
from trustproof.tokens.issuer import AT_JWT
from trustproof.tokens.keys import SigningKey
from trustproof.tokens.validate import Reason

AlgNone = Literal["none", "None", "NONE", "nOnE"]
ALG_NONE_SPELLINGS: tuple[AlgNone, ...] = get_args(AlgNone)
KidInjection = Literal["path", "sql"]
KID_PATH = "../../../../../../../dev/null"  # an empty file: HMAC with an empty key
KID_SQL_KEY = "trustproof-kid-injection"
KID_SQL = f"x' UNION SELECT '{KID_SQL_KEY}' -- "  # a key table queried by kid returns our key
TypConfusion = Literal["JWT", "absent"]
DuplicateClaim = Literal["sub", "aud"]
AddedClaim = Literal["roles", "scope"]
OVERSIZED_PADDING = 40 * 1024  # bytes of claims: past every sane token limit, within 64 KiB lines
UNKNOWN_CRIT = "x-unknown"


@dataclass(frozen=True)
class AttackerKeys:
    """An attacker's ES256 key pair, its JWK Set (``jku``) and a self-signed certificate
    (``x5u``). Nothing of the issuer's: a verifier that trusts these trusts the attacker."""

    key: SigningKey = field(repr=False)
    certificate_pem: bytes = field(repr=False)

    @classmethod
    def generate(cls, clock: Clock) -> AttackerKeys:
        key = SigningKey.generate(clock)
        now = clock.now()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trustproof attacker")])
        private = key.private_key.reveal()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(private.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .sign(private, hashes.SHA256())
        )
        return cls(key, certificate.public_bytes(serialization.Encoding.PEM))

    @property
    def kid(self) -> str:
        return self.key.kid

    @property
    def public_jwk(self) -> dict[str, str]:
        return self.key.public_jwk()

    @cached_property
    def jwks_json(self) -> bytes:
        return json_bytes({"keys": [self.public_jwk]})


@dataclass(frozen=True)
class AttackerOrigin:
    """Where the attacker's documents are served: its `keys`, the JWK Set at `jwks_url` and the
    certificate (PEM) at `x5u_url`."""

    keys: AttackerKeys
    jwks_url: str
    x5u_url: str


@dataclass(frozen=True)
class ForgedTokens:
    """Mints the literature's tokens from `template` (the caller's valid token)."""

    template: TokenTemplate
    attacker: AttackerKeys | None = None

    # -- the outsider ---------------------------------------------------------------------------

    def alg_none(self, spelling: AlgNone = "none") -> BrokenToken:
        """Unsigned, ``alg`` spelled `spelling` (a blocklist comparing case-sensitively lets
        ``None`` through), naming the real key's kid."""
        header = {"alg": spelling, "kid": self.template.active_key.kid, "typ": AT_JWT}
        return _made(f"alg-none:{spelling}", "alg-not-allowed", header, self._claims(), b"")

    def empty_signature(self) -> BrokenToken:
        """The caller's valid header and payload, with an empty third part."""
        valid = self.template.valid()
        head, payload, _ = valid.token.reveal().split(".")
        return BrokenToken(
            "empty-signature",
            Secret(f"{head}.{payload}."),
            "bad-signature",
            valid.claims,
            valid.header,
        )

    def psychic_signature(self) -> BrokenToken:
        """ES256 with r = s = 0 (CVE-2022-21449: Java 15-18 accepted it for any message)."""
        header = self._header()
        return _made("psychic-signature", "bad-signature", header, self._claims(), bytes(64))

    def embedded_jwk(self) -> BrokenToken:
        """Signed by the attacker, its public key in the ``jwk`` header (RFC 7515 §4.1.3)."""
        attacker = self._attacker()
        header = {**self._header(attacker.kid), "jwk": attacker.public_jwk}
        return _signed("embedded-jwk", "unknown-kid", header, self._claims(), key=attacker.key)

    def jku(self, origin: AttackerOrigin) -> BrokenToken:
        """Signed by the attacker, ``jku`` naming the attacker's JWK Set (RFC 7515 §4.1.2)."""
        header = {**self._header(origin.keys.kid), "jku": origin.jwks_url}
        return _signed("jku", "unknown-kid", header, self._claims(), key=origin.keys.key)

    def x5u(self, origin: AttackerOrigin) -> BrokenToken:
        """Signed by the attacker, ``x5u`` naming its self-signed certificate (RFC 7515 §4.1.5)."""
        header = {**self._header(origin.keys.kid), "x5u": origin.x5u_url}
        return _signed("x5u", "unknown-kid", header, self._claims(), key=origin.keys.key)

    def kid_injection(self, how: KidInjection = "path") -> BrokenToken:
        """HS256 keyed with what a verifier using ``kid`` as a file path (``/dev/null``: empty)
        or in SQL (``UNION SELECT`` of our own key) would load."""
        kid, key = (KID_PATH, b"") if how == "path" else (KID_SQL, KID_SQL_KEY.encode())
        header = {"alg": "HS256", "kid": kid, "typ": AT_JWT}
        claims = self._claims()
        mac = hmac.new(key, _signing_input(header, json_bytes(claims)), hashlib.sha256).digest()
        return _made(f"kid-injection:{how}", "alg-not-allowed", header, claims, mac)

    def added_claims(self, claim: AddedClaim, granted: tuple[str, ...]) -> BrokenToken:
        """The caller's valid token with `claim` extended by `granted` (the roles it lacks, or an
        admin scope), keeping the original signature: it no longer matches."""
        valid = self.template.valid()
        head, _, signature = valid.token.reveal().split(".")
        claims = dict(self._claims())
        if claim == "roles":
            claims["roles"] = [*self.template.roles, *granted]
        else:
            claims["scope"] = " ".join(granted)
        payload = b64url_encode(json_bytes(claims))
        token = f"{head}.{payload}.{signature}"
        return BrokenToken(
            f"added-claims:{claim}", Secret(token), "bad-signature", freeze(claims), valid.header
        )

    # -- the parser differential: the issuer's key, a claim or header read two ways -------------

    def unknown_crit(self) -> BrokenToken:
        """A critical header extension nobody implements (RFC 7515 §4.1.11: must be refused)."""
        header = {**self._header(), "crit": [UNKNOWN_CRIT], UNKNOWN_CRIT: True}
        return self._issuer_signed("unknown-crit", "malformed", header, self._claims())

    def typ_confusion(self, typ: TypConfusion = "JWT") -> BrokenToken:
        """An ID token (``typ: JWT``) or one without ``typ`` as an access token (RFC 9068 §4)."""
        header = self._header()
        if typ == "JWT":
            header["typ"] = "JWT"
        else:
            del header["typ"]
        claims = self._claims()
        claims.update(auth_time=claims["iat"], nonce="n-0S6_WzA2Mj")
        return self._issuer_signed(f"typ-confusion:{typ}", "wrong-type", header, claims)

    def future_iat(self) -> BrokenToken:
        """Issued (``iat``) well in the future: ``nbf`` and ``exp`` as the template's."""
        made = self.template.issued_in_future()
        return BrokenToken("future-iat", made.token, made.expected_reason, made.claims, made.header)

    def exp_string(self) -> BrokenToken:
        """``"exp": "9999999999"``: a string, not a NumericDate (RFC 7519 §4.1.4)."""
        claims = {**self._claims(), "exp": "9999999999"}
        return self._issuer_signed("exp-string", "malformed", self._header(), claims)

    def duplicate_claims(self, name: DuplicateClaim, other: str) -> BrokenToken:
        """Raw JSON with `name` twice: first `other`, last the template's own value (what a
        last-wins parser such as Python's ``json`` reads). RFC 7519 §4: refuse or take the last;
        a verifier and a policy reading different ones disagree on whom the token is for."""
        claims = self._claims()
        mine = claims.pop(name)
        head = json.dumps({**claims, name: other}, separators=(",", ":"))
        payload = f"{head[:-1]},{json.dumps(name)}:{json.dumps(mine)}}}".encode()
        return self._issuer_signed(
            f"duplicate-claims:{name}", "malformed", self._header(), {**claims, name: mine}, payload
        )

    def oversized(self, padding: int = OVERSIZED_PADDING) -> BrokenToken:
        """Properly signed, with `padding` bytes of an extra claim: a verifier without a size
        limit parses and verifies whatever a caller sends (RFC 8725 §3.1 lists DoS)."""
        claims = {**self._claims(), "x-padding": "A" * padding}
        return self._issuer_signed("oversized", "malformed", self._header(), claims)

    # -- helpers --------------------------------------------------------------------------------

    def _claims(self) -> dict[str, Any]:
        return self.template.claims()

    def _header(self, kid: str | None = None) -> dict[str, Any]:
        return {"alg": "ES256", "kid": kid or self.template.active_key.kid, "typ": AT_JWT}

    def _attacker(self) -> AttackerKeys:
        if self.attacker is None:
            raise ValueError("this token needs the attacker's keys (ForgedTokens(attacker=...))")
        return self.attacker

    def _issuer_signed(
        self,
        kind: str,
        reason: Reason,
        header: dict[str, Any],
        claims: dict[str, Any],
        payload: bytes | None = None,
    ) -> BrokenToken:
        key = self.template.active_key
        self.template.keep_key_for(claims)
        return _signed(kind, reason, header, claims, key=key, payload=payload)


def _signing_input(header: Mapping[str, Any], payload: bytes) -> bytes:
    return f"{b64url_encode(json_bytes(dict(header)))}.{b64url_encode(payload)}".encode("ascii")


def _made(
    kind: str, reason: Reason, header: dict[str, Any], claims: dict[str, Any], signature: bytes
) -> BrokenToken:
    token = f"{_signing_input(header, json_bytes(claims)).decode()}.{b64url_encode(signature)}"
    return BrokenToken(kind, Secret(token), reason, freeze(claims), freeze(header))


def _signed(
    kind: str,
    reason: Reason,
    header: dict[str, Any],
    claims: dict[str, Any],
    *,
    key: SigningKey,
    payload: bytes | None = None,
) -> BrokenToken:
    """ES256 over `header` and `payload` (default: the JSON of `claims`), low-S as we issue."""
    signing_input = _signing_input(header, json_bytes(claims) if payload is None else payload)
    der = key.private_key.reveal().sign(signing_input, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    s = min(s, P256_ORDER - s)
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    token = f"{signing_input.decode()}.{b64url_encode(signature)}"
    return BrokenToken(kind, Secret(token), reason, freeze(claims), freeze(header))


def payload_of(token: str) -> bytes:
    """The raw payload bytes of a compact JWS (for tests and fakes; not validated)."""
    return b64url_decode(token.split(".")[1], "payload")
