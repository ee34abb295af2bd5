"""The probe registry: every `Probe` of the family modules of this package, by catalogue id.

Each module of `trustproof.probes` that defines ``PROBES`` is a family module; the registry
imports them all, so a new family module needs no line here. Every probe's id must be a catalogue
entry of the module's family (`trustproof.catalogue`), and every case entry of the catalogue must
have exactly one probe: `check()` says what is wrong, and a unit test runs it.

Adding a probe: one class (or one more instance) in ``PROBES`` of its family module, and one
`ProbeInfo` line in the catalogue.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Mapping
from functools import cache
from types import MappingProxyType

import trustproof.probes
from trustproof.catalogue import BY_ID, CATALOGUE, selected
from trustproof.probes.base import Plan, Probe
from trustproof.probes.model import Case
from trustproof.spec.model import Spec


@cache
def registry() -> Mapping[str, Probe]:
    """Catalogue id -> its probe, in catalogue order."""
    found: dict[str, Probe] = {}
    for module in pkgutil.iter_modules(trustproof.probes.__path__):
        loaded = importlib.import_module(f"trustproof.probes.{module.name}")
        for probe in getattr(loaded, "PROBES", ()):
            if probe.id in found:
                raise RuntimeError(f"probe id {probe.id!r} is registered twice")
            found[probe.id] = probe
    order = {info.id: index for index, info in enumerate(CATALOGUE)}
    ranked = sorted(found.items(), key=lambda item: order.get(item[0], len(order)))
    return MappingProxyType(dict(ranked))


def check() -> list[str]:
    """What is wrong between the registry and the catalogue (empty when they agree)."""
    problems = []
    probes = registry()
    for probe_id, probe in probes.items():
        info = BY_ID.get(probe_id)
        if info is None:
            problems.append(f"{probe_id}: registered but not in the catalogue")
        elif info.family != probe.family:
            problems.append(f"{probe_id}: family {probe.family!r}, catalogue says {info.family!r}")
    for info in CATALOGUE:
        if not info.is_scenario and info.id not in probes:
            problems.append(f"{info.id}: in the catalogue but no probe implements it")
    return problems


def generate(
    spec: Spec,
    probes: Iterable[str] | None = None,
    *,
    thorough: bool = False,
    backend: str = "local",
) -> list[Case]:
    """Every case of the chosen probes (default: the spec's ``probes.select``/``deselect``), by
    boundary in the expected matrix's order, then by catalogue order, then by cell; `thorough`:
    every cell where a probe samples by default (`Plan.thorough`); `backend`: where the services
    run (the egress probes have cases on ``"isolated"`` only, `Plan.backend`)."""
    plan = Plan.of(spec, thorough=thorough, backend=backend)
    chosen = set(selected(spec.probes.select, spec.probes.deselect) if probes is None else probes)
    cases = [
        case
        for probe_id, probe in registry().items()
        if probe_id in chosen
        for case in probe.cases(plan)
    ]
    position = {boundary.name: index for index, boundary in enumerate(plan.boundaries)}
    return sorted(cases, key=lambda case: position.get(case.boundary, len(position)))


def probe_for(case: Case) -> Probe:
    """The probe that runs `case` (KeyError for an id no probe implements)."""
    return registry()[case.probe]
