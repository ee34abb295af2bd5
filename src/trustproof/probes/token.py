"""The ``token`` family: every way an access token can be wrong must be refused (``denied_authn``).

On one allowed cell per service (`trustproof.probes.cells.credential_cell`), the caller's valid
presentation with its token replaced: none at all, one broken in exactly one way (minted from the
template of its valid token, `trustproof.tokens.TokenTemplate`, with the caller's own roles so
that a service authorizing by the roles claim sees the one broken thing only), or a fresh valid
token revoked through the token service's RFC 7009 endpoint first.

Where they apply: ``token.cnf-mismatch`` and ``token.subject-mismatch`` only where the caller's
token is bound to its certificate; with ``token: optional`` no ``token.missing``, and on a service
terminating mTLS itself (``gateway: none``) no token probe at all (the spec says it need not look
at tokens).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from trustproof.catalogue import Family
from trustproof.probes.base import Plan, Probe
from trustproof.probes.cells import boundary_kind, credential_cells, presentation, send
from trustproof.probes.model import Case, Evidence, Expectation, Result
from trustproof.probes.presentation import presents_cert
from trustproof.tokens import BrokenKind
from trustproof.view import SandboxView

BOUND_ONLY = ("token.cnf-mismatch", "token.subject-mismatch")


@dataclass(frozen=True)
class TokenProbe:
    """One way of presenting a wrong token (`how`): none, broken, another subject, revoked."""

    id: str
    how: BrokenKind | None = None  # the broken kind; None: decided by the id (see `run`)
    family: Family = "token"

    def cases(self, plan: Plan) -> Iterator[Case]:
        spec = plan.spec
        for boundary, cell in credential_cells(plan):
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


PROBES: tuple[Probe, ...] = (
    TokenProbe("token.missing"),
    TokenProbe("token.expired", "expired"),
    TokenProbe("token.not-yet-valid", "not-yet-valid"),
    TokenProbe("token.wrong-issuer", "wrong-issuer"),
    TokenProbe("token.wrong-audience", "wrong-audience"),
    TokenProbe("token.bad-signature", "bad-signature"),
    TokenProbe("token.alg-none", "alg-none"),
    TokenProbe("token.hs256-public-key", "hs256-public-key"),
    TokenProbe("token.unknown-kid", "unknown-kid"),
    TokenProbe("token.rotated-key", "rotated-key"),
    TokenProbe("token.revoked"),
    TokenProbe("token.cnf-mismatch", "cnf-mismatch"),
    TokenProbe("token.subject-mismatch"),
)
