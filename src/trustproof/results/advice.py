"""What to do about a failure, and failures grouped as a person reads them.

One line of advice per verdict (`HOW_TO_FIX`), shown under each group of failures in the HTML,
Markdown and annotation reports; and `failure_groups`, one group per (verdict, boundary, probe)
in order of first appearance — "30 x not-served on notes: authz.inside-matrix" reads better than
thirty cards saying the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trustproof.results.model import CaseRecord

HOW_TO_FIX: dict[str, str] = {
    "over-permission": "the boundary let in what the spec's access matrix refuses: fix the "
    "server, policy or grant — or, if the access is intended, add it to `access`",
    "under-permission": "the boundary refused what the spec allows: fix the server, policy or "
    "grant — or remove the cell from `access`",
    "wrong-stage": "refused as expected, but by another stage than the one that must refuse "
    "(e.g. the policy let through what the certificate check should have stopped)",
    "not-served": "allowed, but the answer did not come from the service's handler: the service "
    "must set the `X-Served-By` marker (trustproof.middleware does it)",
    "inconclusive": "the answer was neither clearly served nor clearly refused (a 5xx, an "
    "unknown status, a declared `expect` that did not hold): see the evidence and the service log",
    "error": "the probe could not run: see the evidence and the logs",
}

# Advice of one probe's verdict, instead of the verdict's: what got out of a service's namespace
# (`trustproof.probes.egress`) and where it is closed.
_EGRESS_OPEN = (
    "the service's network namespace let it out: the firewall of the namespace must reject all "
    "but `lo` (the relays of its declared peers)"
)
HOW_TO_FIX_PROBE: dict[tuple[str, str], str] = {
    ("egress.undeclared-tcp", "over-permission"): _EGRESS_OPEN,
    ("egress.undeclared-udp", "over-permission"): _EGRESS_OPEN,
    ("egress.undeclared-dns", "over-permission"): "the sandbox resolver answered a name the "
    "service did not declare: it must answer `localhost` and declared dependencies only",
    ("egress.service-port", "over-permission"): "another service's own port is reachable from "
    "this one, around its gateway: each service must listen inside its own namespace only, "
    "with no relay to another's port",
    ("egress.token-admin", "over-permission"): "the token service's admin API accepted a "
    "workload's certificate: only the admin identity may mint",
    ("egress.datastore-other-role", "over-permission"): "the datastore let the service log in "
    "as a role that is not its own: use `cert` authentication with the certificate's CN as the "
    "role (pg_hba `hostssl … cert`, no `map` that widens it)",
    ("egress.dependency-undeclared", "over-permission"): "the service reached a dependency it "
    "does not list in `calls`: add it to `calls` if intended, else close the path",
    ("egress.undeclared-dns", "inconclusive"): "the sandbox resolver did not answer: it must "
    "refuse undeclared names (REFUSED), not drop them",
    ("egress.observed", "over-permission"): "the service itself tried to reach something it "
    "does not declare (listed in the evidence; the sandbox blocked it): declare it as a "
    "dependency in `calls` if it is meant, else find what in the service makes the call",
}


@dataclass(frozen=True)
class FailureGroup:
    verdict: str
    boundary: str
    probe: str
    cases: tuple[CaseRecord, ...]

    @property
    def title(self) -> str:
        count = f"{len(self.cases)} x " if len(self.cases) > 1 else ""
        return f"{count}{self.verdict} on {self.boundary}: {self.probe}"

    @property
    def how_to_fix(self) -> str:
        specific = HOW_TO_FIX_PROBE.get((self.probe, self.verdict))
        return specific or HOW_TO_FIX.get(self.verdict, "")


def failure_groups(failures: Sequence[CaseRecord]) -> list[FailureGroup]:
    """The failures grouped by (verdict, boundary, probe), in order of first appearance."""
    groups: dict[tuple[str, str, str], list[CaseRecord]] = {}
    for case in failures:
        groups.setdefault((case.verdict, case.boundary, case.probe), []).append(case)
    return [FailureGroup(*key, tuple(cases)) for key, cases in groups.items()]
