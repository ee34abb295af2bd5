"""The ``token`` family: every way an access token can be wrong must be refused (``denied_authn``).

On one allowed cell per service (`trustproof.probes.cells.credential_cell`), the caller's valid
presentation with its token replaced: none at all, one broken in exactly one way (minted from the
template of its valid token, `trustproof.tokens.TokenTemplate`, with the caller's own roles so
that a service authorizing by the roles claim sees the one broken thing only), or a fresh valid
token revoked through the token service's RFC 7009 endpoint first.

Where they apply: ``token.cnf-mismatch`` and ``token.subject-mismatch`` only where the caller's
token is bound to its certificate; with ``token: optional`` no ``token.missing`` (and on a
service terminating mTLS itself, ``gateway: none``, no token probe at all: the spec says it need
not look at tokens).

Tokens from the JWT attack literature (RFC 8725, PortSwigger's JWT labs, jwt_tool's attack list),
each of which must be refused at the token stage (`ForgedTokenProbe`).

On the credential cell of every boundary whose ingress says ``token: required`` (the cell
`trustproof.probes.cells.credential_cell` picks: allowed for the caller with its valid token),
the caller's valid presentation with its token replaced by one `trustproof.tokens.forged`
makes, or carried where a bearer token does not belong:

==========================  ========================================================================
probe (variants)            the token
==========================  ========================================================================
token.alg-none              unsigned; ``alg`` spelled ``none`` (no variant: the case id of before),
  (None, NONE, nOnE)        ``None``, ``NONE``, ``nOnE`` (a case-sensitive blocklist lets them in)
token.empty-signature       the caller's valid header and payload, empty third part
token.psychic-signature     ES256 with r = s = 0 (CVE-2022-21449)
token.embedded-jwk          the attacker's key in the ``jwk`` header, signed by it
token.jku / token.x5u       signed by the attacker, naming its JWK Set / certificate, served on
                            loopback by the view (`SandboxView.attacker_origin`)
token.kid-injection         HS256 keyed with ``/dev/null`` (``kid: ../../dev/null``; variant
  (path, sql)               ``path``) or with what a ``UNION SELECT`` in the kid returns (``sql``)
token.unknown-crit          ``crit: ["x-unknown"]``, signed by the issuer
token.typ-confusion         an ID token: ``typ: JWT`` (variant ``JWT``) or no ``typ`` (``absent``)
token.future-iat            ``iat`` ten minutes in the future
token.exp-string            ``"exp": "9999999999"``
token.duplicate-claims      two ``sub`` (or ``aud``) members, the last the caller's own
  (sub, aud)
token.oversized             40 KiB of claims, signed by the issuer: refused cleanly (a 4xx from
                            the HTTP parser or the token check), not a 5xx, not a reset
token.in-query              the valid token as ``?access_token=`` and no Authorization header
token.in-cookie             the valid token as the ``access_token`` cookie, no header
token.added-claims          the caller's token with ``roles`` extended (``roles``) or an admin
  (roles, scope)            ``scope`` added (``scope``), the original signature kept
==========================  ========================================================================

The issuer-signed ones (crit, typ, iat, exp, duplicates, size) are the realistic half of
"added claims": an attacker cannot re-sign, but a parser that reads a signed token its own way is
fooled by what the issuer let through. Every case expects ``denied_authn`` (``token.oversized``:
``denied_authn``, or ``denied_authz`` from an HTTP parser refusing the head with a 400).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, cast

from trustproof.catalogue import Family
from trustproof.probes.base import Plan, Probe
from trustproof.probes.cells import (
    anonymous_cells,
    boundary_kind,
    credential_cells,
    presentation,
    send,
)
from trustproof.probes.model import Case, Evidence, Expectation, Outcome, Result
from trustproof.probes.presentation import presents_cert
from trustproof.spec.model import Spec
from trustproof.tokens import BrokenKind, BrokenToken
from trustproof.tokens.forged import (
    ALG_NONE_SPELLINGS,
    AddedClaim,
    AlgNone,
    DuplicateClaim,
    ForgedTokens,
    KidInjection,
    TypConfusion,
)
from trustproof.view import SandboxView
from trustproof.view.exchange import TokenPlacement

BOUND_ONLY = ("token.cnf-mismatch", "token.subject-mismatch")


@dataclass(frozen=True)
class TokenProbe:
    """One way of presenting a wrong token (`how`): none, broken, another subject, revoked."""

    id: str
    how: BrokenKind | None = None  # the broken kind; None: decided by the id (see `run`)
    family: Family = "token"

    def cases(self, plan: Plan) -> Iterator[Case]:
        spec = plan.spec
        cells = anonymous_cells(plan) if self.id == "token.missing" else credential_cells(plan)
        for boundary, cell in cells:
            service = spec.services[boundary.name]
            kind = boundary_kind(spec, boundary.name)
            if service.ingress.token == "optional" and (  # noqa: S105 (not a password)
                self.id == "token.missing" or kind == "self"
            ):
                continue
            if self.id in BOUND_ONLY and not presents_cert(spec, cell.caller, boundary.name):
                continue
            refused = Expectation.refuse("denied_authn")
            yield Case(self.id, boundary.name, kind, cell.caller, cell.operation, refused)

    async def run(self, case: Case, target: SandboxView) -> Result:
        how = presentation(case, target)
        caller, label = how.caller, self.id.removeprefix("token.")
        if self.id == "token.missing":
            return await send(case, target, how.with_token(None, "none"))
        if self.id == "token.revoked":
            fresh = target.token(caller, case.boundary, bound=how.bound, fresh=True)
            status = await target.revoke_token(fresh, as_caller=caller)
            if status != 200:
                detail = f"the token service answered HTTP {status} to the RFC 7009 revocation"
                sent = f"revoke a fresh token of {caller} for {case.boundary}"
                return Result("error", "probe", "revocation-failed", Evidence(sent, detail=detail))
            return await send(case, target, how.with_token(fresh, "revoked"))
        template = target.token_template(caller, case.boundary, bound=how.bound)
        if self.id == "token.subject-mismatch":
            spec = target.spec
            other = next(name for name in spec.services if name != caller)
            made = template.subject_of(spec.spiffe_id(other))
        elif self.how is not None:
            made = template.make(self.how)
        else:
            raise ValueError(f"{self.id}: no way of breaking the token is known")
        broken = how.with_token(made.token, "broken", label)
        return await send(case, target, broken)


CLASSIC: tuple[Probe, ...] = (
    TokenProbe("token.missing"),
    TokenProbe("token.expired", "expired"),
    TokenProbe("token.not-yet-valid", "not-yet-valid"),
    TokenProbe("token.wrong-issuer", "wrong-issuer"),
    TokenProbe("token.wrong-audience", "wrong-audience"),
    TokenProbe("token.bad-signature", "bad-signature"),
    TokenProbe("token.hs256-public-key", "hs256-public-key"),
    TokenProbe("token.unknown-kid", "unknown-kid"),
    TokenProbe("token.rotated-key", "rotated-key"),
    TokenProbe("token.revoked"),
    TokenProbe("token.cnf-mismatch", "cnf-mismatch"),
    TokenProbe("token.subject-mismatch"),
)


Forge = Callable[[ForgedTokens, str, Case, SandboxView], Awaitable[BrokenToken]]


async def _alg_none(forged: ForgedTokens, variant: str, case: Case, v: SandboxView) -> BrokenToken:
    return forged.alg_none(cast(AlgNone, variant or "none"))


async def _jku(forged: ForgedTokens, variant: str, case: Case, view: SandboxView) -> BrokenToken:
    return forged.jku(await view.attacker_origin())


async def _x5u(forged: ForgedTokens, variant: str, case: Case, view: SandboxView) -> BrokenToken:
    return forged.x5u(await view.attacker_origin())


async def _embedded(forged: ForgedTokens, variant: str, case: Case, v: SandboxView) -> BrokenToken:
    origin = await v.attacker_origin()
    return replace(forged, attacker=origin.keys).embedded_jwk()


async def _duplicate(forged: ForgedTokens, variant: str, case: Case, v: SandboxView) -> BrokenToken:
    name = cast(DuplicateClaim, variant)
    mine = case.boundary if name == "aud" else case.caller or ""
    return forged.duplicate_claims(name, _someone_else(v.spec, mine))


async def _added(forged: ForgedTokens, variant: str, case: Case, v: SandboxView) -> BrokenToken:
    held = set(forged.template.roles)
    others = sorted(_every_role(v.spec) - held) or ["admin"]
    return forged.added_claims(cast(AddedClaim, variant), ("admin", *others))


def _simple(make: Callable[[ForgedTokens, str], BrokenToken]) -> Forge:
    async def forge(forged: ForgedTokens, variant: str, case: Case, v: SandboxView) -> BrokenToken:
        return make(forged, variant)

    return forge


FORGES: Mapping[str, Forge] = {
    "token.alg-none": _alg_none,
    "token.empty-signature": _simple(lambda f, _: f.empty_signature()),
    "token.psychic-signature": _simple(lambda f, _: f.psychic_signature()),
    "token.embedded-jwk": _embedded,
    "token.jku": _jku,
    "token.x5u": _x5u,
    "token.kid-injection": _simple(lambda f, v: f.kid_injection(cast(KidInjection, v))),
    "token.unknown-crit": _simple(lambda f, _: f.unknown_crit()),
    "token.typ-confusion": _simple(lambda f, v: f.typ_confusion(cast(TypConfusion, v))),
    "token.future-iat": _simple(lambda f, _: f.future_iat()),
    "token.exp-string": _simple(lambda f, _: f.exp_string()),
    "token.duplicate-claims": _duplicate,
    "token.oversized": _simple(lambda f, _: f.oversized()),
    "token.added-claims": _added,
}
PLACED: Mapping[str, TokenPlacement] = {"token.in-query": "query", "token.in-cookie": "cookie"}


@dataclass(frozen=True)
class ForgedTokenProbe:
    """One attack of the literature (`id`), in each of its `variants` ("" for none)."""

    id: str
    variants: tuple[str, ...] = ("",)
    refusals: tuple[Outcome, ...] = ("denied_authn",)
    family: Family = "token"

    def cases(self, plan: Plan) -> Iterator[Case]:
        spec = plan.spec
        for boundary, cell in credential_cells(plan):
            if spec.services[boundary.name].ingress.token != "required":  # noqa: S105
                continue
            kind = boundary_kind(spec, boundary.name)
            expect = Expectation.refuse(*self.refusals)
            for variant in self.variants:
                yield Case(
                    self.id, boundary.name, kind, cell.caller, cell.operation, expect, variant
                )

    async def run(self, case: Case, target: SandboxView) -> Result:
        how = presentation(case, target)
        label = self.id.removeprefix("token.") + (f" ({case.variant})" if case.variant else "")
        if self.id in PLACED:
            placed = replace(how, token_in=PLACED[self.id])
            return await send(case, target, placed)
        template = target.token_template(how.caller, case.boundary, bound=how.bound)
        made = await FORGES[self.id](ForgedTokens(template), case.variant, case, target)
        return await send(case, target, how.with_token(made.token, "broken", label))


def _every_role(spec: Spec) -> set[str]:
    holders: list[Any] = [*spec.personas.values(), *spec.services.values()]
    return {str(role) for holder in holders for role in holder.roles}


def _someone_else(spec: Spec, name: str) -> str:
    """The SPIFFE ID of another principal of the spec than `name` (a made-up one if none)."""
    others = [n for n in (*spec.services, *spec.personas) if n != name]
    return spec.spiffe_id(others[0] if others else f"{name}-other")


LITERATURE: tuple[Probe, ...] = (
    ForgedTokenProbe("token.alg-none", ("", *ALG_NONE_SPELLINGS[1:])),
    ForgedTokenProbe("token.empty-signature"),
    ForgedTokenProbe("token.psychic-signature"),
    ForgedTokenProbe("token.embedded-jwk"),
    ForgedTokenProbe("token.jku"),
    ForgedTokenProbe("token.x5u"),
    ForgedTokenProbe("token.kid-injection", ("path", "sql")),
    ForgedTokenProbe("token.unknown-crit"),
    ForgedTokenProbe("token.typ-confusion", ("JWT", "absent")),
    ForgedTokenProbe("token.future-iat"),
    ForgedTokenProbe("token.exp-string"),
    ForgedTokenProbe("token.duplicate-claims", ("sub", "aud")),
    ForgedTokenProbe("token.oversized", refusals=("denied_authn", "denied_authz")),
    ForgedTokenProbe("token.in-query"),
    ForgedTokenProbe("token.in-cookie"),
    ForgedTokenProbe("token.added-claims", ("roles", "scope")),
)
PROBES: tuple[Probe, ...] = (*CLASSIC, *LITERATURE)
