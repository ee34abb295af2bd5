"""The ``authz`` family: does each service decide exactly as the expected matrix says?

* ``authz.inside-matrix`` — every allowed (caller, route): allowed, and served by the service;
* ``authz.outside-matrix`` — every other (caller, route): refused by the policy;
* ``authz.method-swap`` — an allowed path with a method the caller may not use there: refused.

* ``authz.path-traversal``, ``authz.refused-path-tricks``, ``authz.refused-request-tricks`` —
  path and request tricks sent byte-exact; what they send, how they are sized and judged is in
  `trustproof.probes.paths`.

Each case is the caller's valid presentation (`trustproof.probes.presentation`); only the
method or path differs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from trustproof.catalogue import Family
from trustproof.plan import Boundary
from trustproof.probes.base import Plan, Probe
from trustproof.probes.cells import allowed, boundary_kind, presentation, send
from trustproof.probes.model import Case, Expectation, Result
from trustproof.probes.params import MethodSwap, PathTrick, RequestTrick
from trustproof.probes.paths import (
    PATH_TRICKS,
    REFUSED_PATH_TRICKS,
    refused_any,
    refused_cells,
    request_tricks,
    send_exact,
    trick_case,
)
from trustproof.probes.presentation import concrete
from trustproof.view import SandboxView

SWAP_ORDER = ("DELETE", "PUT", "PATCH", "POST", "GET")


@dataclass(frozen=True)
class MatrixProbe:
    """``authz.inside-matrix`` (allowed cells) or ``authz.outside-matrix`` (the others)."""

    inside: bool
    family: Family = "authz"

    @property
    def id(self) -> str:
        return "authz.inside-matrix" if self.inside else "authz.outside-matrix"

    def cases(self, plan: Plan) -> Iterator[Case]:
        spec = plan.spec
        for boundary in plan.services():
            kind = boundary_kind(spec, boundary.name)
            for cell in boundary.cells:
                if cell.allowed != self.inside:
                    continue
                expect = allowed(spec, boundary.name) if self.inside else _refused()
                yield Case(self.id, boundary.name, kind, cell.caller, cell.operation, expect)

    async def run(self, case: Case, target: SandboxView) -> Result:
        return await send(case, target, presentation(case, target))


@dataclass(frozen=True)
class MethodSwapProbe:
    id: str = "authz.method-swap"
    family: Family = "authz"

    def cases(self, plan: Plan) -> Iterator[Case]:
        for boundary in plan.services():
            kind = boundary_kind(plan.spec, boundary.name)
            for cell in boundary.cells:
                swap = _swap(boundary, cell.caller, cell.operation) if cell.allowed else None
                if swap is not None:
                    yield Case(
                        self.id,
                        boundary.name,
                        kind,
                        cell.caller,
                        cell.operation,
                        _refused(),
                        variant=swap,
                        params=MethodSwap(swap),
                    )

    async def run(self, case: Case, target: SandboxView) -> Result:
        if not isinstance(case.params, MethodSwap):
            raise TypeError(f"{case.id}: a method swap needs MethodSwap parameters")
        how = replace(presentation(case, target), method=case.params.method)
        return await send(case, target, how)


@dataclass(frozen=True)
class PathTrickProbe:
    """``authz.path-traversal``: allowed cells, the lenient oracle."""

    id: str = "authz.path-traversal"
    family: Family = "authz"

    def cases(self, plan: Plan) -> Iterator[Case]:
        spec = plan.spec
        for boundary in plan.services():
            kind = boundary_kind(spec, boundary.name)
            expect = replace(allowed(spec, boundary.name), either=True)
            for cell in boundary.cells:
                if not cell.allowed:
                    continue
                path = concrete(cell.operation.partition(" ")[2])
                for variant, transform in PATH_TRICKS:
                    tricked = transform(path)
                    if tricked != path:
                        yield trick_case(self.id, boundary, kind, cell, expect, variant, tricked)

    async def run(self, case: Case, target: SandboxView) -> Result:
        if not isinstance(case.params, PathTrick):
            raise TypeError(f"{case.id}: a path trick needs PathTrick parameters")
        result = await send_exact(case, target, path=case.params.path)
        if result.outcome == "allowed":
            return replace(result, reason=f"served as written ({result.reason})")
        if result.outcome.startswith("denied_"):
            return replace(result, reason=f"refused, which is safe ({result.reason})")
        return result


@dataclass(frozen=True)
class RefusedPathTrickProbe:
    """``authz.refused-path-tricks``: the refused route's path written differently."""

    id: str = "authz.refused-path-tricks"
    family: Family = "authz"

    def cases(self, plan: Plan) -> Iterator[Case]:
        for boundary, cell, kind in refused_cells(plan):
            path = concrete(cell.operation.partition(" ")[2])
            for variant, transform in REFUSED_PATH_TRICKS:
                tricked = transform(path)
                if tricked != path:
                    yield trick_case(self.id, boundary, kind, cell, refused_any(), variant, tricked)

    async def run(self, case: Case, target: SandboxView) -> Result:
        if not isinstance(case.params, PathTrick):
            raise TypeError(f"{case.id}: a path trick needs PathTrick parameters")
        return await send_exact(case, target, path=case.params.path)


@dataclass(frozen=True)
class RefusedRequestTrickProbe:
    """``authz.refused-request-tricks``: the refused request with its line or headers bent."""

    id: str = "authz.refused-request-tricks"
    family: Family = "authz"

    def cases(self, plan: Plan) -> Iterator[Case]:
        for boundary, cell, kind in refused_cells(plan):
            for variant, trick in request_tricks(boundary, cell):
                yield Case(
                    self.id,
                    boundary.name,
                    kind,
                    cell.caller,
                    cell.operation,
                    refused_any(),
                    variant=variant,
                    params=trick,
                )

    async def run(self, case: Case, target: SandboxView) -> Result:
        trick = case.params
        if not isinstance(trick, RequestTrick):
            raise TypeError(f"{case.id}: a request trick needs RequestTrick parameters")
        return await send_exact(
            case,
            target,
            method=trick.method,
            headers=trick.headers,
            host=trick.host,
            absolute_form=trick.absolute_form,
        )


def _refused() -> Expectation:
    return Expectation.refuse("denied_authz")


def _swap(boundary: Boundary, caller: str, operation: str) -> str | None:
    """The first method of `SWAP_ORDER` the caller may not use on the operation's route."""
    template = operation.partition(" ")[2]
    allowed_here = {
        op.partition(" ")[0]
        for op in boundary.operations
        if op.partition(" ")[2] == template and boundary.allowed(caller, op)
    }
    return next((m for m in SWAP_ORDER if m not in allowed_here), None)


PROBES: tuple[Probe, ...] = (
    MatrixProbe(inside=True),
    MatrixProbe(inside=False),
    MethodSwapProbe(),
    PathTrickProbe(),
    RefusedPathTrickProbe(),
    RefusedRequestTrickProbe(),
)
