"""Deliberately broken tokens for the token probes (DESIGN.md §5), built from immutable templates.

    template = BrokenTokens(issuer, keys, clock).template(subject, audience, roles=("reader",))
    template.valid()                  # the passing twin (expected reason ``ok``)
    template.expired()                # the same token, expired well beyond any leeway
    template.make("alg-none")         # by kind, as the probes name them
    template.every(other_spiffe_id=other)

A `TokenTemplate` holds what a valid token would carry — the issuer's claims for the given subject,
audience, roles and certificate binding, signed by the ring's active key — and each of its methods
breaks exactly one thing, so that a refusal can only be for that one reason. Each returns a
`BrokenToken` carrying the reason code `TokenValidator` must give (`expected_reason`) when the
token is presented to `audience` by the template's own workload: its certificate (the one
`cnf_x5t_s256` names) and its SPIFFE ID (`subject`).

`alg-none` and `hs256-public-key` are built by hand: PyJWT rightly refuses to make them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from cryptography.hazmat.primitives import serialization

from trustproof.clock import Clock
from trustproof.identity.svid import x5t_s256
from trustproof.scrub import Secret
from trustproof.tokens._jose import b64url_decode, b64url_encode, freeze, json_bytes
from trustproof.tokens.issuer import AT_JWT, TokenIssuer, sign
from trustproof.tokens.keys import KeyRing, SigningKey
from trustproof.tokens.validate import REQUIRED_CLAIMS, Reason

# How far outside its validity window a mistimed token is: far beyond any sane clock leeway.
MARGIN = timedelta(minutes=10)

BrokenKind = Literal[
    "expired",
    "not-yet-valid",
    "issued-in-future",
    "wrong-issuer",
    "wrong-audience",
    "cnf-mismatch",
    "wrong-type",
    "bad-signature",
    "alg-none",
    "hs256-public-key",
    "unknown-kid",
    "rotated-key",
]
"""The kinds `TokenTemplate.make` builds with no argument (the others: `missing_claim(claim)`,
`subject_of(other)`)."""
BROKEN_KINDS: tuple[BrokenKind, ...] = get_args(BrokenKind)


@dataclass(frozen=True)
class BrokenToken:
    """A token with one thing wrong (`kind`), and the refusal it must get. `repr` hides it."""

    kind: str
    token: Secret[str]
    expected_reason: Reason
    claims: Mapping[str, Any]
    header: Mapping[str, Any]


class BrokenTokens:
    """Makes `TokenTemplate`s over one issuer, key ring and clock."""

    def __init__(self, issuer: TokenIssuer, keys: KeyRing, clock: Clock) -> None:
        self._issuer = issuer
        self._keys = keys
        self._clock = clock

    def template(
        self,
        subject: str,
        audience: str,
        *,
        roles: Sequence[str] = (),
        cnf_x5t_s256: str | None = None,
    ) -> TokenTemplate:
        """The valid token every broken one of `subject` for `audience` is derived from."""
        return TokenTemplate(self, subject, audience, tuple(roles), cnf_x5t_s256)

    def __repr__(self) -> str:
        return f"BrokenTokens({self._issuer!r})"


@dataclass(frozen=True)
class TokenTemplate:
    """What a valid token carries; each method mints it with exactly one thing broken."""

    maker: BrokenTokens = field(repr=False)
    subject: str
    audience: str
    roles: tuple[str, ...] = ()
    cnf_x5t_s256: str | None = None

    # -- the passing twin -----------------------------------------------------------------------

    def valid(self) -> BrokenToken:
        """The valid token (expected reason ``ok``)."""
        return self._signed("template", "ok", self._claims())

    # -- time -----------------------------------------------------------------------------------

    def expired(self) -> BrokenToken:
        """Expired `MARGIN` ago, well beyond any leeway."""
        now, ttl = self._now(), self.maker._issuer.default_ttl
        return self._signed(
            "expired", "expired", self._claims(iat=now - MARGIN - ttl, exp=now - MARGIN)
        )

    def not_yet_valid(self) -> BrokenToken:
        """Issued now, valid only from `MARGIN` from now (``nbf`` in the future)."""
        now = self._now()
        return self._signed(
            "not-yet-valid", "not-yet-valid", self._claims(iat=now, nbf=now + MARGIN)
        )

    def issued_in_future(self) -> BrokenToken:
        """Claiming to be issued `MARGIN` from now; ``nbf`` and ``exp`` as the template's."""
        return self._changed("issued-in-future", iat=int((self._now() + MARGIN).timestamp()))

    # -- who it is from and for -----------------------------------------------------------------

    def wrong_issuer(self) -> BrokenToken:
        """Signed by the real key, claiming an issuer that merely *starts* like ours."""
        return self._changed("wrong-issuer", iss=f"{self.maker._issuer.issuer}.other")

    def wrong_audience(self) -> BrokenToken:
        """For an audience that merely *starts* like the template's (catches prefix checks)."""
        return self._changed("wrong-audience", aud=f"{self.audience}.other")

    def missing_claim(self, claim: str) -> BrokenToken:
        """Without one of the required claims (`REQUIRED_CLAIMS`)."""
        if claim not in REQUIRED_CLAIMS:
            raise ValueError(f"{claim!r} is not a required claim; choose from {REQUIRED_CLAIMS}")
        claims = self._claims()
        del claims[claim]
        return self._signed(f"missing-claim:{claim}", "missing-claim", claims)

    def subject_of(self, other_spiffe_id: str) -> BrokenToken:
        """Naming another workload as its subject, presented by the template's workload."""
        if not other_spiffe_id.startswith("spiffe://") or other_spiffe_id == self.subject:
            raise ValueError("other_spiffe_id must be a SPIFFE ID other than the subject")
        return self._changed("subject-mismatch", sub=other_spiffe_id)

    def cnf_of_other_certificate(self, other_x5t_s256: str | None = None) -> BrokenToken:
        """Bound to a certificate other than the presenter's: a stolen token (RFC 8705 §3)."""
        other = other_x5t_s256 or x5t_s256(secrets.token_bytes(32))
        if other == self.cnf_x5t_s256:
            raise ValueError("other_x5t_s256 must differ from the template's certificate")
        stolen = replace(self, cnf_x5t_s256=other)
        return stolen._signed("cnf-mismatch", "cnf-mismatch", stolen._claims())

    # -- header and signature -------------------------------------------------------------------

    def wrong_type(self) -> BrokenToken:
        """``typ: JWT`` instead of ``at+jwt``: e.g. an ID token replayed as an access token."""
        return self._signed("wrong-type", "wrong-type", self._claims(), typ="JWT")

    def bad_signature(self) -> BrokenToken:
        """A valid token with one bit of its signature flipped."""
        valid = self.valid()
        head, payload, signature = valid.token.reveal().split(".")
        raw = bytearray(b64url_decode(signature, "signature"))
        raw[len(raw) * 3 // 4] ^= 0x01
        token = f"{head}.{payload}.{b64url_encode(bytes(raw))}"
        return BrokenToken(
            "bad-signature", Secret(token), "bad-signature", valid.claims, valid.header
        )

    def alg_none(self) -> BrokenToken:
        """Unsigned (``alg: none``, empty signature), naming the real key's kid."""
        header = {"alg": "none", "kid": self.maker._keys.active.kid, "typ": AT_JWT}
        return self._handmade("alg-none", self._claims(), header, b"")

    def hs256_with_public_key(self) -> BrokenToken:
        """Key confusion: HMAC-SHA256 keyed with the PEM of the issuer's *public* key.

        A verifier that takes ``alg`` from the token and feeds its ES256 key to HMAC accepts it.
        """
        claims = self._claims()
        active = self.maker._keys.active
        header = {"alg": "HS256", "kid": active.kid, "typ": AT_JWT}
        pem = active.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        signing_input = _signing_input(header, claims)
        mac = hmac.new(pem, signing_input.encode("ascii"), hashlib.sha256).digest()
        return self._handmade("hs256-public-key", claims, header, mac)

    def unknown_kid(self) -> BrokenToken:
        """Properly signed, by a key the issuer never published."""
        key = SigningKey.generate(self.maker._clock)
        return self._signed("unknown-kid", "unknown-kid", self._claims(), key=key)

    def rotated_out_key(self) -> BrokenToken:
        """Signed by a key rotated out and pruned (in a scratch ring: ours is untouched)."""
        scratch = KeyRing(self.maker._clock)
        old = scratch.active
        scratch.rotate()
        scratch.prune()  # `old` signed nothing in the scratch ring, so it is gone now
        return self._signed("rotated-key", "unknown-kid", self._claims(), key=old)

    # -- by kind, and all of them ---------------------------------------------------------------

    def make(self, kind: BrokenKind) -> BrokenToken:
        """The broken token of `kind` (one of `BROKEN_KINDS`)."""
        makers: Mapping[BrokenKind, Callable[[], BrokenToken]] = {
            "expired": self.expired,
            "not-yet-valid": self.not_yet_valid,
            "issued-in-future": self.issued_in_future,
            "wrong-issuer": self.wrong_issuer,
            "wrong-audience": self.wrong_audience,
            "cnf-mismatch": self.cnf_of_other_certificate,
            "wrong-type": self.wrong_type,
            "bad-signature": self.bad_signature,
            "alg-none": self.alg_none,
            "hs256-public-key": self.hs256_with_public_key,
            "unknown-kid": self.unknown_kid,
            "rotated-key": self.rotated_out_key,
        }
        if kind not in makers:
            raise ValueError(
                f"unknown kind of broken token {kind!r}; expected one of {BROKEN_KINDS}"
            )
        return makers[kind]()

    def every(self, *, other_spiffe_id: str | None = None) -> tuple[BrokenToken, ...]:
        """One token of every kind (the subject check only with a SPIFFE subject and another ID)."""
        tokens = [self.make(kind) for kind in BROKEN_KINDS]
        tokens += [self.missing_claim(claim) for claim in REQUIRED_CLAIMS]
        if other_spiffe_id is not None and self.subject.startswith("spiffe://"):
            tokens.append(self.subject_of(other_spiffe_id))
        return tuple(tokens)

    # -- for other token makers (`trustproof.tokens.forged`) ------------------------------------

    def claims(self) -> dict[str, Any]:
        """A fresh copy of the claims a valid token of this template carries."""
        return self._claims()

    @property
    def active_key(self) -> SigningKey:
        """The issuer's active signing key (what `valid()` signs with)."""
        return self.maker._keys.active

    def keep_key_for(self, claims: Mapping[str, Any]) -> None:
        """Keep the active key published while a token with `claims` (its ``exp``) lives."""
        if isinstance(claims.get("exp"), int):
            expires = datetime.fromtimestamp(claims["exp"], UTC)
            self.maker._keys.note_issued(self.active_key.kid, expires)

    # -- helpers --------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return self.maker._clock.now()

    def _claims(
        self,
        *,
        iat: datetime | None = None,
        nbf: datetime | None = None,
        exp: datetime | None = None,
    ) -> dict[str, Any]:
        return self.maker._issuer.claims_for(
            self.subject,
            self.audience,
            roles=self.roles,
            cnf_x5t_s256=self.cnf_x5t_s256,
            iat=iat,
            nbf=nbf,
            exp=exp,
        )

    def _changed(self, kind: Reason, **claims: Any) -> BrokenToken:
        """The template's claims with `claims` replacing (or adding) some, signed as usual."""
        return self._signed(kind, kind, {**self._claims(), **claims})

    def _signed(
        self,
        kind: str,
        reason: Reason,
        claims: dict[str, Any],
        *,
        key: SigningKey | None = None,
        typ: str = AT_JWT,
    ) -> BrokenToken:
        keys = self.maker._keys
        signer = key or keys.active
        token = sign(claims, signer, typ=typ)
        if key is None and isinstance(claims.get("exp"), int):
            # Keep the ring's key published while this token lives, like any issued token.
            keys.note_issued(signer.kid, datetime.fromtimestamp(claims["exp"], UTC))
        header = {"alg": "ES256", "kid": signer.kid, "typ": typ}
        return BrokenToken(kind, Secret(token), reason, freeze(claims), freeze(header))

    def _handmade(
        self, kind: str, claims: dict[str, Any], header: dict[str, Any], signature: bytes
    ) -> BrokenToken:
        token = f"{_signing_input(header, claims)}.{b64url_encode(signature)}"
        return BrokenToken(kind, Secret(token), "alg-not-allowed", freeze(claims), freeze(header))


def _signing_input(header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
    return f"{b64url_encode(json_bytes(dict(header)))}.{b64url_encode(json_bytes(dict(claims)))}"
