"""An experiment's steady state: a sample of the access matrix that must hold — some cells that
must be allowed, some that must be refused — checked through the view before, during and after
a fault.

The sample is chosen the same way every run: cells spread over the services asked for, workload
callers first (they present a certificate and a bound token), reads first (an experiment repeats
its calls), then by name. A refused cell that is allowed is an over-permission: the boundary
failed open, which no fault excuses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from trustproof.chaos.scenario import ScenarioEnv, call, shown
from trustproof.plan import Cell, expected_matrix
from trustproof.probes.model import Result
from trustproof.probes.presentation import Presentation
from trustproof.spec.model import Spec


@dataclass(frozen=True)
class Probe:
    """One cell of the sample: `caller`'s valid presentation of `operation` on `service`."""

    service: str
    caller: str
    operation: str
    allowed: bool

    def describe(self) -> str:
        verdict = "allowed" if self.allowed else "refused"
        return f"{self.caller} -> {self.service} {self.operation} ({verdict})"


@dataclass(frozen=True)
class Check:
    """One pass over the sample."""

    requests: int
    refused: tuple[str, ...]  # allowed cells that were refused (with what came back)
    over: tuple[str, ...]  # refused cells that were allowed: the boundary failed open
    results: tuple[tuple[Probe, Result], ...] = ()

    @property
    def held(self) -> bool:
        return not self.refused and not self.over

    def describe(self) -> str:
        if self.held:
            return f"held ({self.requests} requests)"
        parts = [
            *(f"ALLOWED {text}" for text in self.over),
            *(f"refused {t}" for t in self.refused),
        ]
        return f"did not hold ({self.requests} requests): " + "; ".join(parts[:4])


def _key(spec: Spec, cell: Cell) -> tuple[bool, bool, str, str]:
    return (
        cell.caller not in spec.services,
        not cell.operation.startswith("GET "),
        cell.caller,
        cell.operation,
    )


def sample(spec: Spec, services: Iterable[str], per_kind: int) -> tuple[Probe, ...]:
    """Up to `per_kind` allowed and `per_kind` refused cells on `services`, spread over them."""
    wanted = list(services)
    allowed: dict[str, list[Cell]] = {}
    refused: dict[str, list[Cell]] = {}
    for boundary in expected_matrix(spec):
        if boundary.kind != "service" or boundary.name not in wanted:
            continue
        cells = sorted(boundary.cells, key=lambda c: _key(spec, c))
        allowed[boundary.name] = [c for c in cells if c.allowed]
        refused[boundary.name] = [c for c in cells if not c.allowed]
    chosen: list[Probe] = []
    for pool, is_allowed in ((allowed, True), (refused, False)):
        picked = 0
        for depth in range(max((len(cells) for cells in pool.values()), default=0)):
            for name in wanted:
                cells = pool.get(name, [])
                if picked < per_kind and depth < len(cells):
                    cell = cells[depth]
                    chosen.append(Probe(name, cell.caller, cell.operation, is_allowed))
                    picked += 1
    return tuple(chosen)


async def check(env: ScenarioEnv, probes: Iterable[Probe]) -> Check:
    """Send each cell's valid presentation once; what held and what did not."""
    refused: list[str] = []
    over: list[str] = []
    results: list[tuple[Probe, Result]] = []
    for probe in probes:
        what = Presentation.valid(env.view, probe.caller, probe.service, probe.operation)
        result = await call(env, what)
        results.append((probe, result))
        if probe.allowed and result.outcome != "allowed":
            refused.append(f"{probe.describe()}: {shown(result)}")
        elif not probe.allowed and result.outcome == "allowed":
            over.append(f"{probe.describe()}: {shown(result)}")
    return Check(len(results), tuple(refused), tuple(over), tuple(results))
