"""The ``surface`` layer of the ``bypass`` family: the declared surface against the observed one.

* ``surface.undeclared-listener`` — every listening TCP socket and bound UDP socket (IPv4 and
  IPv6) of the processes the sandbox started for a service, and their children
  (`SandboxView.listeners`), must be one the spec declares: the service's ``port`` (with
  ``gateway: none`` its TLS ingress), its ``ingress.port`` or one of its ``other_ports``.
  Anything else — a metrics or debug port nobody declared, a plaintext twin of the TLS port — is
  reachable without passing any boundary trustproof probes: an over-permission naming port,
  address, pid, process and whether it speaks TLS. One case per service.

A clean service is reported as refused at stage ``surface`` (no way in beyond the declared
ports), so the verdict reads like every other refusal.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from trustproof.catalogue import Family
from trustproof.errors import TrustproofError
from trustproof.probes.base import Plan, Probe
from trustproof.probes.cells import boundary_kind
from trustproof.probes.model import Case, Evidence, Expectation, Result
from trustproof.scrub import scrub
from trustproof.spec.model import Service
from trustproof.view import Listener, SandboxView

OPERATION = "listen"


def declared_ports(service: Service) -> frozenset[int]:
    """The ports the spec lets `service`'s processes listen on."""
    ports = {int(service.port), *(int(port) for port in service.other_ports)}
    if service.ingress.port is not None:
        ports.add(int(service.ingress.port))
    return frozenset(ports)


def undeclared(service: Service, found: tuple[Listener, ...]) -> tuple[Listener, ...]:
    declared = declared_ports(service)
    return tuple(listener for listener in found if listener.port not in declared)


@dataclass(frozen=True)
class UndeclaredListenerProbe:
    id: str = "surface.undeclared-listener"
    family: Family = "bypass"

    def cases(self, plan: Plan) -> Iterator[Case]:
        for name in plan.spec.services:
            kind = boundary_kind(plan.spec, name)
            yield Case(self.id, name, kind, None, OPERATION, Expectation.refuse("denied_authz"))

    async def run(self, case: Case, target: SandboxView) -> Result:
        service = target.spec.services[case.boundary]
        declared = ", ".join(str(port) for port in sorted(declared_ports(service)))
        sent = f"read the listening sockets of {case.boundary}'s processes (declared: {declared})"
        try:
            found = await target.listeners(case.boundary)
        except TrustproofError as exc:
            detail = scrub(f"{exc}")[:300]
            return Result("error", "surface", "cannot-read-sockets", Evidence(sent, detail=detail))
        extra = undeclared(service, found)
        if extra:
            detail = "undeclared: " + "; ".join(listener.describe() for listener in extra)
            return Result(
                "allowed", "surface", "undeclared-listener", Evidence(sent, detail=detail)
            )
        seen = "; ".join(listener.describe() for listener in found) or "no listening socket"
        return Result(
            "denied_authz", "surface", "declared-listeners-only", Evidence(sent, detail=seen)
        )


PROBES: tuple[Probe, ...] = (UndeclaredListenerProbe(),)
