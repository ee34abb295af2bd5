"""The ``egress`` family: from inside each service's network namespace, nothing undeclared gets out.

Each probe is one case per service (where it applies) made of one or more `EgressAttempt`s that
`SandboxView.egress_attempt` performs inside the service's namespace on the isolated backend:

* ``egress.undeclared-tcp`` — TCP to 192.0.2.10:443 (a documentation address the sandbox places
  on a dummy interface of its own hub namespace, where a canary listens);
* ``egress.undeclared-udp`` — an NTP request to 198.51.100.10:123 (no answer is the expected
  drop);
* ``egress.undeclared-dns`` — ``example.com`` (a name that exists: a resolver forwarding upstream
  would answer it; ``example.net`` or ``.org`` if a dependency declares it) through the sandbox
  resolver at 127.0.0.1:53, which must refuse it;
* ``egress.service-port`` — every other service's own ports (``port`` and ``other_ports``),
  around its gateway, at 127.0.0.1 and at that service's address on the sandbox-private network;
* ``egress.token-admin`` — the token service's admin mint API, presenting the service's own SVID;
* ``egress.datastore-other-role`` — each datastore the service holds grants on, logged into as
  every other role of it and as the sandbox's admin role, with the service's own certificate
  (for services with a datastore grant);
* ``egress.dependency-undeclared`` — each external dependency (top-level ``dependencies:``) the
  service does not list in ``calls``: TCP to its address, or its name through the resolver (for
  services with such a dependency; none until the spec has ``dependencies:``).

Each must fail: blocked or refused passes; connected or answered is an over-permission naming
what got through; a timeout passes only for UDP (elsewhere it is inconclusive); an attempt that
could not be made is an error. Cases exist only on the isolated backend (`Plan.backend`); on the
local backend `plan_note` says once that egress is not checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from trustproof.catalogue import LOCAL_NOTE, Family, backend_note
from trustproof.datastores import ADMIN_ROLE
from trustproof.probes.base import Plan, Probe
from trustproof.probes.cells import boundary_kind
from trustproof.probes.model import Case, Evidence, Expectation, Result
from trustproof.spec.model import Spec
from trustproof.view import EgressAttempt, EgressResult, SandboxView

UNDECLARED_TCP = ("192.0.2.10", 443)
UNDECLARED_UDP = ("198.51.100.10", 123)
UNDECLARED_NAMES = ("example.com", "example.net", "example.org")  # exist: a forwarder answers
RESOLVER = ("127.0.0.1", 53)
ADMIN_MINT_PATH = "/admin/tokens"
EXPECT = Expectation.refuse("unreachable", "denied_authz")
STAGE = "egress"

Attempts = Callable[[SandboxView, str], tuple[EgressAttempt, ...]]


def plan_note(plan: Plan) -> str | None:
    """The one line a plan on the local backend shows instead of egress cases (when the spec's
    ``probes`` selection holds any egress probe)."""
    return backend_note(plan.spec.probes.select, plan.spec.probes.deselect, plan.backend)


# -- which services each probe applies to (pure: the spec only) ------------------------------------


def always(spec: Spec, service: str) -> bool:
    return True


def others(spec: Spec, service: str) -> tuple[str, ...]:
    return tuple(name for name in spec.services if name != service)


def granted_datastores(spec: Spec, service: str) -> tuple[str, ...]:
    """Datastores `service` holds grants on (enforced or expected)."""
    return tuple(
        name
        for name, store in spec.datastores.items()
        if service in store.roles or service in spec.access.datastores.get(name, {})
    )


def other_roles(spec: Spec, service: str, datastore: str) -> tuple[str, ...]:
    """Every role of `datastore` that is not `service`'s, then the sandbox's admin role."""
    roles = [str(role) for role in spec.datastores[datastore].roles if role != service]
    return (*roles, ADMIN_ROLE)


def undeclared_dependencies(spec: Spec, service: str) -> tuple[tuple[str, str, int], ...]:
    """(name, host, port) of every dependency `service` does not call (the spec's
    ``dependencies:``; none while the spec has no such key)."""
    dependencies = getattr(spec, "dependencies", None) or {}
    calls = set(spec.services[service].calls)
    return tuple(
        (str(name), str(dep.host), int(dep.port))
        for name, dep in dependencies.items()
        if name not in calls
    )


# -- the attempts of one case (the view knows the addresses the sandbox chose) ---------------------


def tcp_undeclared(view: SandboxView, service: str) -> tuple[EgressAttempt, ...]:
    return (EgressAttempt("tcp", *UNDECLARED_TCP),)


def udp_undeclared(view: SandboxView, service: str) -> tuple[EgressAttempt, ...]:
    return (EgressAttempt("udp", *UNDECLARED_UDP),)


def undeclared_name(spec: Spec) -> str:
    """A name that exists on the Internet and no dependency of the spec declares."""
    dependencies = getattr(spec, "dependencies", None) or {}
    declared = {str(dep.host).lower().rstrip(".") for dep in dependencies.values()}
    return next((name for name in UNDECLARED_NAMES if name not in declared), "")


def dns_undeclared(view: SandboxView, service: str) -> tuple[EgressAttempt, ...]:
    name = undeclared_name(view.spec)
    return (EgressAttempt("dns", *RESOLVER, name=name),) if name else ()


def service_ports(view: SandboxView, service: str) -> tuple[EgressAttempt, ...]:
    found: list[EgressAttempt] = []
    for name in others(view.spec, service):
        declared = view.spec.services[name]
        hub = view.hub_address(name)
        for port in (declared.port, *declared.other_ports):
            found.append(EgressAttempt("tcp", str(declared.host), int(port)))
            if hub is not None:
                found.append(EgressAttempt("tcp", hub, int(port)))
    return tuple(found)


def token_admin(view: SandboxView, service: str) -> tuple[EgressAttempt, ...]:
    host, port = view.token_service_address()
    return (EgressAttempt("http", host, port, name=service, path=ADMIN_MINT_PATH),)


def datastore_roles(view: SandboxView, service: str) -> tuple[EgressAttempt, ...]:
    found: list[EgressAttempt] = []
    for name in granted_datastores(view.spec, service):
        host, port = view.datastore_address(name)
        database = str(view.spec.datastores[name].database or name)
        found += [
            EgressAttempt("postgres", host, port, name=database, role=role)
            for role in other_roles(view.spec, service, name)
        ]
    return tuple(found)


def dependencies(view: SandboxView, service: str) -> tuple[EgressAttempt, ...]:
    found: list[EgressAttempt] = []
    for _, host, port in undeclared_dependencies(view.spec, service):
        if _is_address(host):
            found.append(EgressAttempt("tcp", host, port))
        else:
            found.append(EgressAttempt("dns", *RESOLVER, name=host))
    return tuple(found)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# -- verdicts --------------------------------------------------------------------------------------


Standing = Literal["through", "closed", "inconclusive", "error"]


def judged(attempt: EgressAttempt, result: EgressResult) -> Standing:
    """How one attempt counts: "through", "closed", "inconclusive" or "error"."""
    if result.got_through:
        return "through"
    if result.outcome in ("blocked", "refused"):
        return "closed"
    if result.outcome == "timeout":
        return "closed" if attempt.kind == "udp" else "inconclusive"
    return "error"


def combine(service: str, tried: list[tuple[EgressAttempt, EgressResult]]) -> Result:
    """One result for a case's attempts: the worst of them decides (through > error >
    inconclusive > closed); the evidence lists every attempt and how it ended."""
    sent = f"from inside {service}'s namespace: " + "; ".join(a.describe() for a, _ in tried)
    lines: dict[Standing, list[str]] = {
        k: [] for k in ("through", "error", "inconclusive", "closed")
    }
    for attempt, result in tried:
        lines[judged(attempt, result)].append(
            f"{attempt.describe()}: {result.outcome}"
            + (f" ({result.detail})" if result.detail else "")
        )
    if lines["through"]:
        detail = "got through: " + "; ".join(lines["through"])
        return Result("allowed", STAGE, "egress-open", Evidence(sent, detail=detail[:600]))
    if lines["error"]:
        detail = "; ".join(lines["error"])
        return Result("error", STAGE, "attempt-failed", Evidence(sent, detail=detail[:600]))
    if lines["inconclusive"]:
        detail = "no answer, neither refused nor served: " + "; ".join(lines["inconclusive"])
        return Result("inconclusive", STAGE, "no-answer", Evidence(sent, detail=detail[:600]))
    detail = "; ".join(lines["closed"])
    if any(result.outcome == "refused" for _, result in tried):
        return Result("denied_authz", STAGE, "refused", Evidence(sent, detail=detail[:600]))
    return Result("unreachable", STAGE, "blocked", Evidence(sent, detail=detail[:600]))


# -- the probes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EgressProbe:
    id: str
    operation: str
    attempts: Attempts
    applies: Callable[[Spec, str], bool] = always
    family: Family = "egress"

    def cases(self, plan: Plan) -> Iterator[Case]:
        if plan.backend != "isolated":
            return
        for name in plan.spec.services:
            if self.applies(plan.spec, name):
                kind = boundary_kind(plan.spec, name)
                yield Case(self.id, name, kind, name, self.operation, EXPECT)

    async def run(self, case: Case, target: SandboxView) -> Result:
        service = case.boundary
        if target.backend_kind() != "isolated":
            evidence = Evidence(f"egress from {service}", detail=LOCAL_NOTE)
            return Result("error", STAGE, "not-isolated", evidence)
        attempts = self.attempts(target, service)
        if not attempts:
            evidence = Evidence(f"egress from {service}", detail="nothing to attempt")
            return Result("error", STAGE, "no-attempt", evidence)
        results = await asyncio.gather(*(target.egress_attempt(service, a) for a in attempts))
        return combine(service, list(zip(attempts, results, strict=True)))


PROBES: tuple[Probe, ...] = (
    EgressProbe("egress.undeclared-tcp", "tcp 192.0.2.10:443", tcp_undeclared),
    EgressProbe("egress.undeclared-udp", "udp 198.51.100.10:123", udp_undeclared),
    EgressProbe("egress.undeclared-dns", "dns of an undeclared name", dns_undeclared),
    EgressProbe(
        "egress.service-port",
        "tcp to other services' ports",
        service_ports,
        lambda spec, service: bool(others(spec, service)),
    ),
    EgressProbe("egress.token-admin", f"https POST {ADMIN_MINT_PATH}", token_admin),
    EgressProbe(
        "egress.datastore-other-role",
        "postgresql as another role",
        datastore_roles,
        lambda spec, service: bool(granted_datastores(spec, service)),
    ),
    EgressProbe(
        "egress.dependency-undeclared",
        "undeclared dependencies",
        dependencies,
        lambda spec, service: bool(undeclared_dependencies(spec, service)),
    ),
)
