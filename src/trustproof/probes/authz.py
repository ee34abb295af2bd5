"""The ``authz`` family: does each service decide exactly as the expected matrix says?

* ``authz.inside-matrix`` — every allowed (caller, route): allowed, and served by the service;
* ``authz.outside-matrix`` — every other (caller, route): refused by the policy;
* ``authz.method-swap`` — an allowed path with a method the caller may not use there: refused;
* ``authz.path-traversal`` — on every allowed cell, path tricks sent byte-exact: tricks that
  normalise (``/./``, ``//``, ``..``, a trailing slash, ``%2e``) must decide like the canonical
  path; ambiguous encodings (``%2F``, case) must be refused.

Each case is the caller's valid presentation (`trustproof.probes.presentation`); only the
method or path differs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from trustproof.catalogue import Family
from trustproof.plan import Boundary
from trustproof.probes.base import Plan, Probe
from trustproof.probes.cells import allowed, boundary_kind, presentation, send
from trustproof.probes.model import Case, Expectation, Result
from trustproof.probes.params import MethodSwap, PathTrick
from trustproof.probes.presentation import concrete
from trustproof.view import SandboxView

SWAP_ORDER = ("DELETE", "PUT", "PATCH", "POST", "GET")


def _encoded_slash(path: str) -> str:
    if path.count("/") > 1:
        cut = path.rindex("/")
        return path[:cut] + "%2F" + path[cut + 1 :]
    return path + "%2F"


# (variant, transform of the concrete path, must it decide like the canonical path?)
PATH_TRICKS: tuple[tuple[str, Callable[[str], str], bool], ...] = (
    ("dot-segment", lambda p: "/." + p, True),
    ("double-slash", lambda p: "/" + p, True),
    ("dot-dot", lambda p: "/zz/.." + p, True),
    ("trailing-slash", lambda p: p + "/", True),
    ("encoded-dot", lambda p: "/%2e" + p, True),
    ("encoded-slash", _encoded_slash, False),
    ("upper-case", lambda p: p.upper(), False),
)


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
    id: str = "authz.path-traversal"
    family: Family = "authz"

    def cases(self, plan: Plan) -> Iterator[Case]:
        spec = plan.spec
        for boundary in plan.services():
            kind = boundary_kind(spec, boundary.name)
            for cell in boundary.cells:
                if not cell.allowed:
                    continue
                path = concrete(cell.operation.partition(" ")[2])
                for variant, transform, same in PATH_TRICKS:
                    tricked = transform(path)
                    if tricked == path:
                        continue
                    expect = allowed(spec, boundary.name) if same else _refused()
                    yield Case(
                        self.id,
                        boundary.name,
                        kind,
                        cell.caller,
                        cell.operation,
                        expect,
                        variant=variant,
                        params=PathTrick(tricked),
                    )

    async def run(self, case: Case, target: SandboxView) -> Result:
        if not isinstance(case.params, PathTrick):
            raise TypeError(f"{case.id}: a path trick needs PathTrick parameters")
        return await send(case, target, presentation(case, target, path=case.params.path))


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
)
