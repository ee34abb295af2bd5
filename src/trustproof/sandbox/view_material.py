"""The material half of `LiveView` (`trustproof.sandbox.view`): the certificates it presents —
valid ones from the fabric, broken ones minted by `BrokenMaterial`, foreign CAs' — and the tokens
it sends, each cached per caller so that a probe presenting the same identity many times mints it
once; rotation and revocation go through the sandbox, so every boundary sees them.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import jwt

from trustproof.errors import SandboxError
from trustproof.identity import BrokenMaterial, Svid
from trustproof.identity.foreign import ForeignAuthority, load_foreign_cas, signing_authority
from trustproof.sandbox.revocation import revoke_in_sandbox
from trustproof.scrub import Secret
from trustproof.tokens import BrokenTokens, TokenTemplate
from trustproof.view import BROKEN_CERT_MAKERS, CertKind, ClientCert

if TYPE_CHECKING:
    from trustproof.clock import Clock
    from trustproof.fabric import TrustFabric
    from trustproof.sandbox.controller import Sandbox
    from trustproof.spec.model import Spec


class Material:
    """Mixed into `LiveView`, whose fields and properties these are (declared here for the type
    checker only)."""

    sandbox: Sandbox
    _certs: dict[tuple[CertKind, str], Svid]
    _tokens: dict[tuple[str, str, bool], Secret[str]]
    _foreign_certs: dict[tuple[str, str], Svid]
    _foreign: tuple[ForeignAuthority, ...] | None

    @property
    def spec(self) -> Spec:
        raise NotImplementedError

    @property
    def clock(self) -> Clock:
        raise NotImplementedError

    @property
    def fabric(self) -> TrustFabric:
        raise NotImplementedError

    # -- certificates ---------------------------------------------------------------------------

    def cert(self, name: str) -> Svid:
        return self.broken_cert("valid", name)

    def broken_cert(self, kind: CertKind, name: str) -> Svid:
        key = (kind, name)
        if key not in self._certs:
            if kind == "valid":
                self._certs[key] = self.fabric.issue(name)
            elif kind == "revoked":  # a fresh one, revoked where every boundary sees it
                svid = self.fabric.issue(name)
                self.revoke_cert(svid)
                self._certs[key] = svid
            elif kind == "foreign-ca":
                raise SandboxError(
                    "a foreign-CA certificate needs its CA: use ClientCert.foreign_ca"
                )
            else:
                material = BrokenMaterial(self.fabric.ca, self.clock)
                self._certs[key] = getattr(material, BROKEN_CERT_MAKERS[kind])(name)
        return self._certs[key]

    def _presented(self, cert: ClientCert) -> Svid:
        if cert.kind != "foreign-ca":
            return self.broken_cert(cert.kind, cert.name)
        key = (cert.foreign_ca, cert.name)
        if key not in self._foreign_certs:
            authority = signing_authority(self._foreign_cas(), cert.foreign_ca)
            material = BrokenMaterial(self.fabric.ca, self.clock)
            self._foreign_certs[key] = material.foreign_ca(cert.name, *authority)
        return self._foreign_certs[key]

    def _foreign_cas(self) -> tuple[ForeignAuthority, ...]:
        if self._foreign is None:
            self._foreign = load_foreign_cas(self.spec)
        return self._foreign

    def rotate(self, name: str) -> tuple[Svid, Svid]:
        rotator = self.sandbox.rotators[name]
        retired = rotator.current
        return retired, rotator.rotate()

    def revoke_cert(self, svid: Svid) -> None:
        revoke_in_sandbox(self.sandbox, svid.serial)

    # -- tokens ---------------------------------------------------------------------------------

    def token(
        self,
        caller: str,
        audience: str,
        *,
        bound: bool,
        fresh: bool = False,
        iat: datetime | None = None,
        nbf: datetime | None = None,
        exp: datetime | None = None,
    ) -> Secret[str]:
        key = (caller, audience, bound)
        if not (iat or nbf or exp or fresh) and key in self._tokens:
            return self._tokens[key]  # every case asks: no thumbprint (DER, SHA-256) for a hit
        thumb = self.cert(caller).x5t_s256 if bound else None
        if iat or nbf or exp:
            timed = self.fabric.token_for(
                caller, audience, cnf_x5t_s256=thumb, iat=iat, nbf=nbf, exp=exp
            )
            return timed.token
        if fresh or key not in self._tokens:
            made = Secret(self.sandbox.token(caller, audience, cnf_x5t_s256=thumb))
            if fresh:
                return made
            self._tokens[key] = made
        return self._tokens[key]

    def token_template(self, caller: str, audience: str, *, bound: bool) -> TokenTemplate:
        fabric, spec = self.fabric, self.spec
        broken = BrokenTokens(fabric.issuer, fabric.keys, self.clock)
        return broken.template(
            spec.spiffe_id(caller),
            spec.spiffe_id(audience),
            roles=_roles(spec, caller),
            cnf_x5t_s256=self.cert(caller).x5t_s256 if bound else None,
        )

    def token_kid(self, token: Secret[str]) -> str:
        return str(jwt.get_unverified_header(token.reveal()).get("kid", ""))


def _roles(spec: Spec, name: str) -> tuple[str, ...]:
    who = spec.personas.get(name) or spec.services.get(name)
    return tuple(who.roles) if who is not None else ()
