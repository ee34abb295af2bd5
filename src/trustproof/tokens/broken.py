"""Deliberately broken tokens for the token probes (DESIGN.md §5).

Each method starts from the same template a valid token would have — the issuer's claims for the
given subject, audience, roles and certificate binding, signed by the ring's active key — and
breaks exactly one thing, so that a refusal can only be for that one reason. Each returns a
`BrokenToken` carrying the reason code `TokenValidator` must give (`expected_reason`) when the
token is presented to `audience` by the template's own workload: its certificate (the one
`cnf_x5t_s256` names) and its SPIFFE ID (`subject`). `template()` is the passing twin.

`alg_none` and `hs256_with_public_key` are built by hand: PyJWT rightly refuses to make them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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


@dataclass(frozen=True)
class BrokenToken:
    """A token with one thing wrong (`kind`), and the refusal it must get. `repr` hides it."""

    kind: str
    token: Secret[str]
    expected_reason: Reason
    claims: Mapping[str, Any]
    header: Mapping[str, Any]


class BrokenTokens:
    """Mints each kind of broken token from a valid template."""

    def __init__(self, issuer: TokenIssuer, keys: KeyRing, clock: Clock) -> None:
        self._issuer = issuer
        self._keys = keys
        self._clock = clock

    # -- the passing twin -----------------------------------------------------------------------

    def template(
        self,
        subject: str,
        audience: str,
        *,
        roles: Sequence[str] = (),
        cnf_x5t_s256: str | None = None,
    ) -> BrokenToken:
        """The valid token every broken one is derived from (expected reason ``ok``)."""
        return self._signed("template", "ok", self._claims(subject, audience, roles, cnf_x5t_s256))

    # -- time -----------------------------------------------------------------------------------

    def expired(
        self,
        subject: str,
        audience: str,
        *,
        roles: Sequence[str] = (),
        cnf_x5t_s256: str | None = None,
    ) -> BrokenToken:
        """Expired `MARGIN` ago, well beyond any leeway."""
        now, ttl = self._clock.now(), self._issuer.default_ttl
        claims = self._claims(
            subject, audience, roles, cnf_x5t_s256, iat=now - MARGIN - ttl, exp=now - MARGIN
        )
        return self._signed("expired", "expired", claims)

    def not_yet_valid(
        self,
        subject: str,
        audience: str,
        *,
        roles: Sequence[str] = (),
        cnf_x5t_s256: str | None = None,
    ) -> BrokenToken:
        """Issued now, valid only from `MARGIN` from now (``nbf`` in the future)."""
        now = self._clock.now()
        claims = self._claims(subject, audience, roles, cnf_x5t_s256, iat=now, nbf=now + MARGIN)
        return self._signed("not-yet-valid", "not-yet-valid", claims)

    def issued_in_future(
        self,
        subject: str,
        audience: str,
        *,
        roles: Sequence[str] = (),
        cnf_x5t_s256: str | None = None,
    ) -> BrokenToken:
        """Claiming to be issued `MARGIN` from now; ``nbf`` and ``exp`` as the template's."""
        now = self._clock.now()
        claims = self._claims(subject, audience, roles, cnf_x5t_s256)
        claims["iat"] = int((now + MARGIN).timestamp())
        return self._signed("issued-in-future", "issued-in-future", claims)

    # -- who it is from and for -----------------------------------------------------------------

    def wrong_issuer(
        self,
        subject: str,
        audience: str,
        *,
        roles: Sequence[str] = (),
        cnf_x5t_s256: str | None = None,
    ) -> BrokenToken:
        """Signed by the real key, claiming an issuer that merely *starts* like ours."""
        claims = self._claims(subject, audience, roles, cnf_x5t_s256)
        claims["iss"] = f"{self._issuer.issuer}.other"
        return self._signed("wrong-issuer", "wrong-issuer", claims)

    def wrong_audience(
        self,
        subject: str,
        audience: str,
        *,
        roles: Sequence[str] = (),
        cnf_x5t_s256: str | None = None,
    ) -> BrokenToken:
        """For an audience that merely *starts* like `audience` (catches prefix checks)."""
        claims = self._claims(subject, audience, roles, cnf_x5t_s256)
        claims["aud"] = f"{audience}.other"
        return self._signed("wrong-audience", "wrong-audience", claims)

    def missing_claim(
        self,
        claim: str,
        subject: str,
        audience: str,
        *,
        roles: Sequence[str] = (),
        cnf_x5t_s256: str | None = None,
    ) -> BrokenToken:
        """Without one of the required claims (`REQUIRED_CLAIMS`)."""
        if claim not in REQUIRED_CLAIMS:
            raise ValueError(f"{claim!r} is not a required claim; choose from {REQUIRED_CLAIMS}")
        claims = self._claims(subject, audience, roles, cnf_x5t_s256)
        del claims[claim]
        return self._signed(f"missing-claim:{claim}", "missing-claim", claims)

    def subject_of_other_workload(
        self,
        subject: str,
        audience: str,
        *,
        other_spiffe_id: str,
        roles: Sequence[str] = (),
        cnf_x5t_s256: str | None = None,
    ) -> BrokenToken:
        """Naming another workload as its subject, presented by `subject`'s workload."""
        if not other_spiffe_id.startswith("spiffe://") or other_spiffe_id == subject:
            raise ValueError("other_spiffe_id must be a SPIFFE ID other than the subject")
        claims = self._claims(other_spiffe_id, audience, roles, cnf_x5t_s256)
        return self._signed("subject-mismatch", "subject-mismatch", claims)

    def cnf_of_other_certificate(
        self,
        subject: str,
        audience: str,
        *,
        roles: Sequence[str] = (),
        cnf_x5t_s256: str | None = None,
        other_x5t_s256: str | None = None,
    ) -> BrokenToken:
        """Bound to a certificate other than the presenter's: a stolen token (RFC 8705 §3)."""
        other = other_x5t_s256 or x5t_s256(secrets.token_bytes(32))
        if other == cnf_x5t_s256:
            raise ValueError("other_x5t_s256 must differ from the template's certificate")
        claims = self._claims(subject, audience, roles, other)
        return self._signed("cnf-mismatch", "cnf-mismatch", claims)

    # -- header and signature -------------------------------------------------------------------

    def wrong_type(
        self,
        subject: str,
        audience: str,
        *,
        roles: Sequence[str] = (),
        cnf_x5t_s256: str | None = None,
    ) -> BrokenToken:
        """``typ: JWT`` instead of ``at+jwt``: e.g. an ID token replayed as an access token."""
        claims = self._claims(subject, audience, roles, cnf_x5t_s256)
        return self._signed("wrong-type", "wrong-type", claims, typ="JWT")

    def bad_signature(
        self,
        subject: str,
        audience: str,
        *,
        roles: Sequence[str] = (),
        cnf_x5t_s256: str | None = None,
    ) -> BrokenToken:
        """A valid token with one bit of its signature flipped."""
        valid = self.template(subject, audience, roles=roles, cnf_x5t_s256=cnf_x5t_s256)
        head, payload, signature = valid.token.reveal().split(".")
        raw = bytearray(b64url_decode(signature, "signature"))
        raw[len(raw) * 3 // 4] ^= 0x01
        token = f"{head}.{payload}.{b64url_encode(bytes(raw))}"
        return BrokenToken(
            "bad-signature", Secret(token), "bad-signature", valid.claims, valid.header
        )

    def alg_none(
        self,
        subject: str,
        audience: str,
        *,
        roles: Sequence[str] = (),
        cnf_x5t_s256: str | None = None,
    ) -> BrokenToken:
        """Unsigned (``alg: none``, empty signature), naming the real key's kid."""
        claims = self._claims(subject, audience, roles, cnf_x5t_s256)
        header = {"alg": "none", "kid": self._keys.active.kid, "typ": AT_JWT}
        return self._handmade("alg-none", claims, header, b"")

    def hs256_with_public_key(
        self,
        subject: str,
        audience: str,
        *,
        roles: Sequence[str] = (),
        cnf_x5t_s256: str | None = None,
    ) -> BrokenToken:
        """Key confusion: HMAC-SHA256 keyed with the PEM of the issuer's *public* key.

        A verifier that takes ``alg`` from the token and feeds its ES256 key to HMAC accepts it.
        """
        claims = self._claims(subject, audience, roles, cnf_x5t_s256)
        active = self._keys.active
        header = {"alg": "HS256", "kid": active.kid, "typ": AT_JWT}
        pem = active.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        signing_input = _signing_input(header, claims)
        mac = hmac.new(pem, signing_input.encode("ascii"), hashlib.sha256).digest()
        return self._handmade("hs256-public-key", claims, header, mac)

    def unknown_kid(
        self,
        subject: str,
        audience: str,
        *,
        roles: Sequence[str] = (),
        cnf_x5t_s256: str | None = None,
    ) -> BrokenToken:
        """Properly signed, by a key the issuer never published."""
        claims = self._claims(subject, audience, roles, cnf_x5t_s256)
        return self._signed(
            "unknown-kid", "unknown-kid", claims, key=SigningKey.generate(self._clock)
        )

    def rotated_out_key(
        self,
        subject: str,
        audience: str,
        *,
        roles: Sequence[str] = (),
        cnf_x5t_s256: str | None = None,
    ) -> BrokenToken:
        """Signed by a key rotated out and pruned (in a scratch ring: ours is untouched)."""
        scratch = KeyRing(self._clock)
        old = scratch.active
        scratch.rotate()
        scratch.prune()  # `old` signed nothing in the scratch ring, so it is gone now
        claims = self._claims(subject, audience, roles, cnf_x5t_s256)
        return self._signed("rotated-key", "unknown-kid", claims, key=old)

    # -- all of them ----------------------------------------------------------------------------

    def every(
        self,
        subject: str,
        audience: str,
        *,
        roles: Sequence[str] = (),
        cnf_x5t_s256: str | None = None,
        other_spiffe_id: str | None = None,
    ) -> tuple[BrokenToken, ...]:
        """One token of every kind (the subject check only with a SPIFFE subject and another ID)."""
        common: dict[str, Any] = {"roles": roles, "cnf_x5t_s256": cnf_x5t_s256}
        makers = (
            self.expired,
            self.not_yet_valid,
            self.issued_in_future,
            self.wrong_issuer,
            self.wrong_audience,
            self.cnf_of_other_certificate,
            self.wrong_type,
            self.bad_signature,
            self.alg_none,
            self.hs256_with_public_key,
            self.unknown_kid,
            self.rotated_out_key,
        )
        tokens = [make(subject, audience, **common) for make in makers]
        tokens += [self.missing_claim(c, subject, audience, **common) for c in REQUIRED_CLAIMS]
        if other_spiffe_id is not None and subject.startswith("spiffe://"):
            tokens.append(
                self.subject_of_other_workload(
                    subject, audience, other_spiffe_id=other_spiffe_id, **common
                )
            )
        return tuple(tokens)

    # -- helpers --------------------------------------------------------------------------------

    def _claims(
        self,
        subject: str,
        audience: str,
        roles: Sequence[str],
        cnf_x5t_s256: str | None,
        *,
        iat: datetime | None = None,
        nbf: datetime | None = None,
        exp: datetime | None = None,
    ) -> dict[str, Any]:
        return self._issuer.claims_for(
            subject, audience, roles=roles, cnf_x5t_s256=cnf_x5t_s256, iat=iat, nbf=nbf, exp=exp
        )

    def _signed(
        self,
        kind: str,
        reason: Reason,
        claims: dict[str, Any],
        *,
        key: SigningKey | None = None,
        typ: str = AT_JWT,
    ) -> BrokenToken:
        signer = key or self._keys.active
        token = sign(claims, signer, typ=typ)
        if key is None and isinstance(claims.get("exp"), int):
            # Keep the ring's key published while this token lives, like any issued token.
            self._keys.note_issued(signer.kid, datetime.fromtimestamp(claims["exp"], UTC))
        header = {"alg": "ES256", "kid": signer.kid, "typ": typ}
        return BrokenToken(kind, Secret(token), reason, freeze(claims), freeze(header))

    def _handmade(
        self, kind: str, claims: dict[str, Any], header: dict[str, Any], signature: bytes
    ) -> BrokenToken:
        token = f"{_signing_input(header, claims)}.{b64url_encode(signature)}"
        return BrokenToken(kind, Secret(token), "alg-not-allowed", freeze(claims), freeze(header))


def _signing_input(header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
    return f"{b64url_encode(json_bytes(dict(header)))}.{b64url_encode(json_bytes(dict(claims)))}"
