"""`Probe`, the one extension point of the suite, and the `Plan` probes generate cases from.

A probe is a catalogue id (`trustproof.catalogue`) with two methods:

* ``cases(plan)`` — every case it implies for the spec's expected matrix, pure (no I/O);
* ``async run(case, target)`` — perform one of them against a `SandboxView` and return the
  `Result` (a refusal is a result, never an exception).

Probes live in modules named after what they test (`tls`, `token`, `authz`, `bypass`,
`datastore`); each module lists its probes in ``PROBES``, and `trustproof.probes.registry`
collects them. Adding a probe is one class in its family module plus one catalogue entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from trustproof.catalogue import Family
from trustproof.plan import Boundary, expected_matrix
from trustproof.probes.model import Case, Result
from trustproof.spec.model import Spec
from trustproof.view import SandboxView


@dataclass(frozen=True)
class Plan:
    """What cases are generated from: the spec and its expected matrix; `thorough` asks the
    probes that sample cells (the refused path and request tricks) for every cell; `backend`
    is where the services run (``"isolated"``: the egress probes have cases)."""

    spec: Spec
    boundaries: tuple[Boundary, ...]
    thorough: bool = False
    backend: str = "local"

    @classmethod
    def of(cls, spec: Spec, *, thorough: bool = False, backend: str = "local") -> Plan:
        return cls(spec, expected_matrix(spec), thorough, backend)

    def services(self) -> tuple[Boundary, ...]:
        return tuple(b for b in self.boundaries if b.kind == "service")

    def datastores(self) -> tuple[Boundary, ...]:
        return tuple(b for b in self.boundaries if b.kind == "datastore")


class Probe(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def family(self) -> Family: ...

    def cases(self, plan: Plan) -> Iterable[Case]: ...

    async def run(self, case: Case, target: SandboxView) -> Result: ...
