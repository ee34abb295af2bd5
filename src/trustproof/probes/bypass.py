"""The ``bypass`` family: identity must come from the credentials, never from what the caller says.

* ``token.forged-headers`` — a caller refused on the credential cell sends its own valid
  credentials plus identity headers (``X-Trustproof-Principal``, ``X-Forwarded-Client-Cert``)
  claiming to be the allowed caller: must be refused by the policy (the headers are stripped);
* ``bypass.direct-port`` — the service's own plain port, behind its gateway, with forged identity
  headers and no credentials: must be refused by the service (a missing gateway proof), or the
  port must not answer. Not for ``gateway: none`` services: their own port is the boundary.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from trustproof.catalogue import Family
from trustproof.probes.base import Plan, Probe
from trustproof.probes.cells import boundary_kind, credential_cells, presentation, send
from trustproof.probes.model import Case, Expectation, Result
from trustproof.probes.params import Impersonation
from trustproof.spec.model import Spec
from trustproof.view import SandboxView


def identity_headers(spec: Spec, name: str) -> tuple[tuple[str, str], ...]:
    kind = "workload" if name in spec.services else "persona"
    return (("X-Trustproof-Principal", name), ("X-Trustproof-Principal-Kind", kind))


@dataclass(frozen=True)
class ForgedHeadersProbe:
    id: str = "token.forged-headers"
    family: Family = "bypass"

    def cases(self, plan: Plan) -> Iterator[Case]:
        for boundary, cell in credential_cells(plan):
            forger = next(
                (c for c in boundary.callers if not boundary.allowed(c, cell.operation)), None
            )
            if forger is None:
                continue
            yield Case(
                self.id,
                boundary.name,
                boundary_kind(plan.spec, boundary.name),
                forger,
                cell.operation,
                Expectation.refuse("denied_authz"),
                params=Impersonation(cell.caller),
            )

    async def run(self, case: Case, target: SandboxView) -> Result:
        if not isinstance(case.params, Impersonation):
            raise TypeError(f"{case.id}: forged headers need Impersonation parameters")
        spec, claimed = target.spec, case.params.claims_to_be
        forged = (
            *identity_headers(spec, claimed),
            ("X-Forwarded-Client-Cert", f"URI={spec.spiffe_id(claimed)}"),
        )
        how = replace(presentation(case, target), forged=forged, forged_claim=claimed)
        return await send(case, target, how)


@dataclass(frozen=True)
class DirectPortProbe:
    id: str = "bypass.direct-port"
    family: Family = "bypass"

    def cases(self, plan: Plan) -> Iterator[Case]:
        for boundary, cell in credential_cells(plan):
            if boundary_kind(plan.spec, boundary.name) == "self":
                continue  # no gateway to bypass: its own port is the boundary
            refused = Expectation.refuse("denied_authn", "denied_tls", "unreachable")
            yield Case(self.id, boundary.name, "bypass", cell.caller, cell.operation, refused)

    async def run(self, case: Case, target: SandboxView) -> Result:
        how = replace(
            presentation(case, target),
            door="direct",
            cert=None,
            token=None,
            tls="plaintext",
            forged=identity_headers(target.spec, case.caller or ""),
        )
        return await send(case, target, how)


PROBES: tuple[Probe, ...] = (ForgedHeadersProbe(), DirectPortProbe())
