"""What the HTTP families share: which boundaries they apply to, the cell the credential probes
use, how a case is sent and how its verdict's expectation reads.

Services behind a trustproof gateway are boundaries of kind ``gateway``. Services with
``gateway: none`` terminate mTLS themselves (nginx, a service validating its own tokens) and are
probed directly, as boundaries of kind ``self``, with the same matrix, tricks and credential
probes, adapted to what any server can express (see `trustproof.probes.answers` for how
answers are read): an allowed request needs positive evidence — ``X-Served-By`` naming the
service, the service's declared ``expect``, or by default a 2xx/3xx that is not a known refusal
(such a server cannot be expected to name itself); which stage refused is evidence only unless
the service declares ``refuses``; ``token.*`` probes only where its ingress says
``token: required``; no ``bypass.direct-port`` (its own port is the boundary).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from trustproof.plan import Boundary, Cell
from trustproof.probes.answers import Context
from trustproof.probes.base import Plan
from trustproof.probes.http import attempt
from trustproof.probes.model import BoundaryKind, Case, Expectation, Result
from trustproof.probes.presentation import Presentation
from trustproof.spec.model import Spec
from trustproof.view import SandboxView


def boundary_kind(spec: Spec, service: str) -> BoundaryKind:
    """``gateway`` behind trustproof's gateway; ``self`` where the service terminates mTLS."""
    return "self" if spec.services[service].ingress.gateway == "none" else "gateway"


def allowed(spec: Spec, service: str) -> Expectation:
    """Allowed, and answered by the service's handler where its gateway can tell."""
    served_by = service if boundary_kind(spec, service) == "gateway" else None
    return Expectation.allow(served_by=served_by)


def credential_cell(spec: Spec, boundary: Boundary) -> Cell | None:
    """The one allowed cell the token, TLS and bypass probes use: workload callers first (they
    present both certificate and token), then by name and operation."""
    cells = [cell for cell in boundary.cells if cell.allowed]
    if not cells:
        return None
    return min(cells, key=lambda c: (c.caller not in spec.services, c.caller, c.operation))


def credential_cells(plan: Plan) -> Iterator[tuple[Boundary, Cell]]:
    for boundary in plan.services():
        cell = credential_cell(plan.spec, boundary)
        if cell is not None:
            yield boundary, cell


def anonymous_cells(plan: Plan) -> Iterator[tuple[Boundary, Cell]]:
    """The cells a probe presenting *no* credential (no certificate, no token) tries: behind a
    trustproof gateway, the credential cell (the gateway refuses the same way on every route);
    on a server trustproof did not write, one allowed cell per route — such servers are
    configured per location, and one location serving anonymous callers (nginx's
    ``ssl_verify_client optional`` with a route open to "any caller it let in") is the mistake."""
    for boundary in plan.services():
        if boundary_kind(plan.spec, boundary.name) == "gateway":
            cell = credential_cell(plan.spec, boundary)
            if cell is not None:
                yield boundary, cell
            continue
        allowed = [cell for cell in boundary.cells if cell.allowed]
        for operation in dict.fromkeys(cell.operation for cell in allowed):
            yield (
                boundary,
                min(
                    (c for c in allowed if c.operation == operation),
                    key=lambda c: (c.caller not in plan.spec.services, c.caller),
                ),
            )


def presentation(case: Case, view: SandboxView, *, path: str = "") -> Presentation:
    """The valid presentation of the case's caller on its cell."""
    return Presentation.valid(view, case.caller or "", case.boundary, case.operation, path=path)


async def send(case: Case, view: SandboxView, how: Presentation) -> Result:
    """Send `how` for `case`: a fresh handshake where the probe is about the handshake (or the
    transport); elsewhere the caller's kept-alive connection, as a real client would use it."""
    fresh = case.probe.startswith("tls.") or case.kind == "bypass"
    return await attempt(view, replace(how, fresh=fresh), context=context(case, view, how))


def context(case: Case, view: SandboxView, how: Presentation) -> Context:
    """How the answer to `how` is read: the boundary's service, its gateway, and (on the
    service's own TLS port) what it declares under ``expect`` for the route actually sent and
    under ``refuses``."""
    operation = f"{how.method} {case.operation.partition(' ')[2]}"
    return Context.of(view.spec, case.boundary, operation, door=how.door)
