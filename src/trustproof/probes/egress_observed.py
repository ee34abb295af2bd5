"""``egress.observed`` (family ``egress``): what the services *themselves* tried to reach.

The other ``egress.*`` probes try undeclared destinations from inside a service's namespace and
show they are stopped. This one reads what the service's own processes tried during the run
(`SandboxView.egress_events`: every connection the firewall of its namespace dropped, every DNS
query the sandbox resolver refused, the probes' own attempts left out): one case per service on
the isolated backend, run after every other case (`RUNS_LAST`: the suite and the pytest items
order them last, so that the traffic of the whole suite is behind them).

Nothing got out — the network layer stopped it — but a service that tries a destination the spec
does not declare is not the service the spec describes (a new dependency nobody declared, a
telemetry default, a compromised library phoning home). It is reported like an undeclared
listener (``surface.undeclared-listener``): outcome ``allowed`` at stage ``egress``, hence an
``over-permission`` of the declared surface, with every attempt in the evidence ("orders tried
192.0.2.10:443 (tcp) 3 times — blocked", "orders looked up api.evil.example 2 times — refused").
A service that tried nothing undeclared is refused at stage ``egress``: a pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from trustproof.catalogue import Family
from trustproof.probes.base import Plan, Probe
from trustproof.probes.cells import boundary_kind
from trustproof.probes.model import Case, Evidence, Expectation, Result
from trustproof.scrub import scrub
from trustproof.view import EgressEvent, SandboxView

PROBE_ID = "egress.observed"
RUNS_LAST: frozenset[str] = frozenset({PROBE_ID})
OPERATION = "outbound"
STAGE = "egress"
MAX_DETAIL_LINES = 20


def describe(event: EgressEvent) -> str:
    """One line: ``orders tried 192.0.2.10:443 (tcp) 3 times — blocked``, ``orders looked up
    api.evil.example 2 times — refused``."""
    times = "once" if event.count == 1 else f"{event.count} times"
    if event.kind == "dns":
        return f"{event.service} looked up {event.destination} {times} — refused"
    host = f"[{event.destination}]" if ":" in event.destination else event.destination
    where = host if event.port is None else f"{host}:{event.port}"
    return f"{event.service} tried {where} ({event.kind}) {times} — blocked"


def last(cases: Iterable[Case]) -> list[Case]:
    """`cases` with those of `RUNS_LAST` moved to the end, each group in its own order."""
    cases = list(cases)
    return [c for c in cases if c.probe not in RUNS_LAST] + [
        c for c in cases if c.probe in RUNS_LAST
    ]


def verdict_detail(events: Sequence[EgressEvent]) -> str:
    lines = [describe(event) for event in events[:MAX_DETAIL_LINES]]
    if len(events) > MAX_DETAIL_LINES:
        lines.append(f"... and {len(events) - MAX_DETAIL_LINES} more destinations")
    return scrub("; ".join(lines))


@dataclass(frozen=True)
class ObservedEgressProbe:
    id: str = PROBE_ID
    family: Family = "egress"

    def cases(self, plan: Plan) -> Iterator[Case]:
        if plan.backend != "isolated":
            return
        for name in plan.spec.services:
            kind = boundary_kind(plan.spec, name)
            yield Case(self.id, name, kind, None, OPERATION, Expectation.refuse("denied_authz"))

    async def run(self, case: Case, target: SandboxView) -> Result:
        sent = (
            f"read what {case.boundary}'s own processes sent out during the run "
            "(connections its namespace's firewall dropped, DNS queries the resolver refused)"
        )
        tried = tuple(event for event in target.egress_events() if event.service == case.boundary)
        if tried:
            detail = verdict_detail(tried)
            return Result(
                "allowed", STAGE, "undeclared-egress-attempted", Evidence(sent, detail=detail)
            )
        return Result(
            "denied_authz",
            STAGE,
            "nothing-undeclared-attempted",
            Evidence(sent, detail="no dropped connection, no refused DNS query"),
        )


PROBES: tuple[Probe, ...] = (ObservedEgressProbe(),)
