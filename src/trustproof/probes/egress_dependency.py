"""External dependencies of the ``egress`` family: a mocked dependency answers its service's
egress proxy, and nobody without the proxy's credentials.

* ``egress.dependency-direct`` — for each service and each mocked dependency it calls
  (`spec.dependencies`, ``mode: mock``): first the service's own way, through its egress proxy
  for the dependency (which adds the credentials), must reach the mock; then the mock straight,
  without credentials, must be refused (401) or not be reachable at all. A mock answering the
  direct call is an over-permission: the credentials protect nothing. A proxy call that does not
  reach the mock makes the case inconclusive (the direct refusal would prove nothing).

The request is the first row of the mock's response table (``{param}`` segments filled in), or
``GET /`` for a mock command. One case per (service, mocked dependency).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from trustproof.catalogue import Family
from trustproof.probes.base import Plan, Probe
from trustproof.probes.model import Case, Evidence, Expectation, Result
from trustproof.spec.dependencies import Dependency
from trustproof.view import SandboxView
from trustproof.view.dependency import DependencyAnswer, DependencyCall

REFUSED_WITHOUT_CREDENTIALS = (401, 403)


def sample_request(dependency: Dependency) -> tuple[str, str]:
    """The method and path the probe sends: the mock's first row, placeholders filled."""
    rows = dependency.mock.responses if dependency.mock is not None else ()
    if not rows:
        return "GET", "/"
    row = rows[0]
    return row.method, re.sub(r"\{[^/}]+\}", "1", row.path)


def _shown(answer: DependencyAnswer) -> str:
    status = "no answer" if answer.status is None else f"HTTP {answer.status}"
    who = (
        " from the proxy" if answer.from_proxy else (f" from {answer.mock}" if answer.mock else "")
    )
    detail = f": {answer.detail[:160]}" if answer.detail else ""
    return f"{status}{who}{detail}"


@dataclass(frozen=True)
class DependencyDirectProbe:
    id: str = "egress.dependency-direct"
    family: Family = "egress"

    def cases(self, plan: Plan) -> Iterator[Case]:
        spec = plan.spec
        for name, service in spec.services.items():
            for callee in service.calls:
                dependency = spec.dependencies.get(callee)
                if dependency is None or dependency.mode != "mock":
                    continue
                yield Case(
                    self.id,
                    name,
                    "bypass",
                    name,
                    f"call {callee}",
                    Expectation.refuse("denied_authn", "unreachable"),
                    variant=callee,
                )

    async def run(self, case: Case, target: SandboxView) -> Result:
        name = case.variant
        dependency = target.spec.dependencies[name]
        method, path = sample_request(dependency)
        through = await target.dependency_call(
            DependencyCall(case.boundary, name, method, path, through_proxy=True)
        )
        direct = await target.dependency_call(
            DependencyCall(case.boundary, name, method, path, through_proxy=False)
        )
        sent = (
            f"{method} {path} to {name} through {case.boundary}'s egress proxy, then to the "
            "mock directly without credentials"
        )
        evidence = f"through the proxy: {_shown(through)}; direct: {_shown(direct)}"
        reached = (
            through.status is not None
            and not through.from_proxy
            and through.status not in REFUSED_WITHOUT_CREDENTIALS
            and (through.mock == name or dependency.mock is None or bool(dependency.mock.command))
        )
        if not reached:
            return Result(
                "inconclusive",
                "egress",
                "proxy-does-not-reach-mock",
                Evidence(sent, through.status, evidence),
            )
        if direct.status is None:
            return Result(
                "unreachable", "transport", "mock-unreachable", Evidence(sent, None, evidence)
            )
        if direct.status in REFUSED_WITHOUT_CREDENTIALS:
            return Result(
                "denied_authn",
                "credentials",
                "credentials-required",
                Evidence(sent, direct.status, evidence),
            )
        return Result(
            "allowed",
            "credentials",
            "mock-answers-without-credentials",
            Evidence(sent, direct.status, evidence),
        )


PROBES: tuple[Probe, ...] = (DependencyDirectProbe(),)
