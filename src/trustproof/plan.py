"""The expected access matrix, expanded from the spec: every (caller, target, operation) and
whether the oracle says it must be allowed. Probes later check each cell against reality; here it
is pure data, so it can be shown (`trustproof plan`) and tested without starting anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from trustproof.spec.model import Spec
from trustproof.spec.values import PRIVILEGES

DATA_VERBS = ("select", "insert", "update", "delete")


@dataclass(frozen=True)
class Cell:
    caller: str
    target: str
    operation: str  # "GET /orders/{id}" for services, "select orders" for datastores
    allowed: bool


@dataclass(frozen=True)
class Boundary:
    """One thing callers reach: a service (behind its gateway or not) or a datastore."""

    name: str
    kind: str  # "service" or "datastore"
    enforcement: str  # what is in front: "trustproof gateway", "service itself", "postgresql"
    operations: tuple[str, ...]
    cells: tuple[Cell, ...]

    @property
    def callers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(cell.caller for cell in self.cells))

    def allowed(self, caller: str, operation: str) -> bool:
        return any(c.allowed for c in self.cells if c.caller == caller and c.operation == operation)


def expected_matrix(spec: Spec) -> tuple[Boundary, ...]:
    """Every boundary with its full grid: callers the spec knows by operations of the target."""
    services = (_service_boundary(spec, name) for name in spec.services)
    datastores = (_datastore_boundary(spec, name) for name in spec.datastores)
    return (*services, *datastores)


def _service_boundary(spec: Spec, name: str) -> Boundary:
    service = spec.services[name]
    operations = tuple(str(route) for route in service.routes)
    expected = spec.access.services.get(name, {})
    cells: list[Cell] = []
    for caller in spec.callers:
        if caller == name:
            continue
        granted = set(expected.get(caller, ()))
        cells.extend(Cell(caller, name, op, "*" in granted or op in granted) for op in operations)
    enforcement = "service itself" if service.ingress.gateway == "none" else "trustproof gateway"
    return Boundary(name, "service", enforcement, operations, tuple(cells))


def _datastore_boundary(spec: Spec, name: str) -> Boundary:
    store = spec.datastores[name]
    expected = spec.access.datastores.get(name, {})
    all_grants = [*store.roles.values(), *expected.values()]
    tables = sorted({table for grants in all_grants for table in grants})
    mentioned = {verb for grants in all_grants for verbs in grants.values() for verb in verbs}
    # The four data verbs always, so that a missing grant shows as an expected refusal.
    verbs = [v for v in PRIVILEGES if v in mentioned or v in DATA_VERBS]
    operations = tuple(f"{verb} {table}" for table in tables for verb in verbs)
    cells: list[Cell] = []
    for caller in spec.services:
        grants = expected.get(caller, {})
        allowed = {
            f"{verb} {table}" for table, table_verbs in grants.items() for verb in table_verbs
        }
        cells.extend(Cell(caller, name, op, op in allowed) for op in operations)
    return Boundary(name, "datastore", store.engine, operations, tuple(cells))


@dataclass(frozen=True)
class DependencyEdge:
    """A service's way to one external dependency: its egress proxy, the only way there."""

    caller: str
    dependency: str
    mode: str  # "mock" | "real"
    target: str  # "host:port" as declared
    served_by: str  # "response table", "mock command" or "scheme://host:port"
    variable: str  # the caller's environment variable holding its proxy's URL


def dependency_variable(name: str) -> str:
    """`payments-api` -> `TRUSTPROOF_DEPENDENCY_PAYMENTS_API_URL` (its proxy's URL)."""
    return f"TRUSTPROOF_DEPENDENCY_{re.sub(r'[^A-Z0-9]', '_', name.upper())}_URL"


def dependency_edges(spec: Spec) -> tuple[DependencyEdge, ...]:
    """Every (service, dependency) pair the spec's ``calls`` declare, in spec order."""
    edges: list[DependencyEdge] = []
    for caller, service in spec.services.items():
        for name in service.calls:
            dependency = spec.dependencies.get(name)
            if dependency is None:
                continue
            if dependency.mode == "real":
                served = f"{dependency.scheme}://{dependency.host}:{dependency.port}"
            elif dependency.mock is not None and dependency.mock.command is not None:
                served = "mock command"
            else:
                served = "response table"
            edges.append(
                DependencyEdge(
                    caller,
                    name,
                    dependency.mode,
                    f"{dependency.host}:{dependency.port}",
                    served,
                    dependency_variable(name),
                )
            )
    return tuple(edges)
