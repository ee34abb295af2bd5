"""The ``bypass`` family: identity must come from the credentials, never from what the caller says.

* ``token.forged-headers`` — a caller refused on the credential cell sends its own valid
  credentials plus one forwarded-identity header claiming to be the allowed caller: must stay
  refused. One variant per header of `forgeable_headers` (the real-world table,
  `trustproof.gateway.headers.IDENTITY_HEADER_TABLE`, plus the spec's ``identity_headers``),
  each with a value as the real proxy would set it (`trustproof.probes.forgery`). Through the
  gateway for services behind one (it must strip the header), to the service's own port for
  ``gateway: none`` services (the service must not believe it);
* ``bypass.direct-port`` — the service's own plain port, behind its gateway, with one forged
  identity header per variant and no credentials: must be refused by the service (a missing
  gateway proof), or the port must not answer. Not for ``gateway: none`` services: their own
  port is the boundary.

Both use one cell per boundary (the credential cell), so a spec adds cases per header, not per
header and cell.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from trustproof.catalogue import Family
from trustproof.gateway.headers import IDENTITY_HEADER_TABLE, normalised
from trustproof.probes.base import Plan, Probe
from trustproof.probes.cells import boundary_kind, credential_cells, presentation, send
from trustproof.probes.forgery import Claim, forged_headers
from trustproof.probes.model import Case, Expectation, Result
from trustproof.probes.params import Impersonation
from trustproof.spec.model import Spec
from trustproof.view import SandboxView


def forgeable_headers(spec: Spec) -> tuple[str, ...]:
    """The headers the probes forge, one variant each: every header of the table that names a
    caller (``X-Trustproof-Principal-Kind`` goes with ``X-Trustproof-Principal``), then the
    spec's own ``identity_headers`` the table does not already hold."""
    table = tuple(h.name for h in IDENTITY_HEADER_TABLE if h.value != "principal-kind")
    known = {normalised(name) for name in table}
    extra: list[str] = []
    for name in spec.identity_headers:
        if normalised(name) not in known:
            known.add(normalised(name))
            extra.append(str(name))
    return (*table, *extra)


def claim(view: SandboxView, claimed: str, service: str) -> Claim:
    """Everything a forged header may say about `claimed` (its certificate is public)."""
    spec = view.spec
    who = spec.personas.get(claimed) or spec.services.get(claimed)
    return Claim(
        name=claimed,
        kind="workload" if claimed in spec.services else "persona",
        spiffe_id=spec.spiffe_id(claimed),
        trust_domain=str(spec.trust_domain),
        roles=tuple(who.roles) if who is not None else (),
        certificate=view.cert(claimed).certificate,
        service_spiffe_id=spec.spiffe_id(service),
    )


@dataclass(frozen=True)
class ForgedHeadersProbe:
    id: str = "token.forged-headers"
    family: Family = "bypass"

    def cases(self, plan: Plan) -> Iterator[Case]:
        headers = forgeable_headers(plan.spec)
        for boundary, cell in credential_cells(plan):
            forger = next(
                (c for c in boundary.callers if not boundary.allowed(c, cell.operation)), None
            )
            if forger is None:
                continue
            for header in headers:
                yield Case(
                    self.id,
                    boundary.name,
                    boundary_kind(plan.spec, boundary.name),
                    forger,
                    cell.operation,
                    Expectation.refuse("denied_authz"),
                    variant=header,
                    params=Impersonation(cell.caller),
                )

    async def run(self, case: Case, target: SandboxView) -> Result:
        if not isinstance(case.params, Impersonation) or not case.variant:
            raise TypeError(f"{case.id}: forged headers need Impersonation and a header")
        claimed = case.params.claims_to_be
        forged = forged_headers(case.variant, claim(target, claimed, case.boundary))
        how = replace(
            presentation(case, target),
            forged=forged,
            forged_claim=f"{claimed} in {case.variant}",
        )
        return await send(case, target, how)


@dataclass(frozen=True)
class DirectPortProbe:
    id: str = "bypass.direct-port"
    family: Family = "bypass"

    def cases(self, plan: Plan) -> Iterator[Case]:
        headers = forgeable_headers(plan.spec)
        for boundary, cell in credential_cells(plan):
            if boundary_kind(plan.spec, boundary.name) == "self":
                continue  # no gateway to bypass: its own port is the boundary
            refused = Expectation.refuse("denied_authn", "denied_tls", "unreachable")
            for header in headers:
                yield Case(
                    self.id,
                    boundary.name,
                    "bypass",
                    cell.caller,
                    cell.operation,
                    refused,
                    variant=header,
                )

    async def run(self, case: Case, target: SandboxView) -> Result:
        claimed = case.caller or ""
        forged = forged_headers(case.variant, claim(target, claimed, case.boundary))
        how = replace(
            presentation(case, target),
            door="direct",
            cert=None,
            token=None,
            tls="plaintext",
            forged=forged,
            forged_claim=f"{claimed} in {case.variant}",
        )
        return await send(case, target, how)


PROBES: tuple[Probe, ...] = (ForgedHeadersProbe(), DirectPortProbe())
