"""What a multi-step scenario is made of: its result, the recorder that builds it, and the few
things every scenario needs (whom to call where, a real HTTP call with its audit record, a token
minted with chosen timestamps).

A scenario is a story told against the running sandbox — "a token is in use at every gateway,
then it is revoked" — rather than one attempt. Like a case it never raises for a failure: it ends
in a `ScenarioResult` whose verdict is ``pass``, ``fail``, ``skip`` (the spec has nothing the
scenario applies to) or ``error`` (the scenario itself crashed or overran; never a pass). The
timeline (milliseconds since the scenario started, what happened) is for the HTML report; the
figures are the measurements (propagation times, request counts).

Everything a scenario writes passes through the scrubber: no token or key reaches a result.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

import aiohttp

from trustproof.plan import expected_matrix
from trustproof.probes.context import ProbeContext
from trustproof.probes.http import HttpAttempt, send
from trustproof.probes.model import CaseResult, Result
from trustproof.probes.web import BODY_METHODS, concrete, presents_cert
from trustproof.sandbox.controller import Sandbox
from trustproof.scrub import scrub
from trustproof.spec.model import Spec
from trustproof.tokens.issuer import IssuedToken

ScenarioVerdict = Literal["pass", "fail", "skip", "error"]


@dataclass(frozen=True)
class ScenarioResult:
    """The outcome of one scenario. `id` is stable across runs (reports key on it)."""

    id: str
    ok: bool
    verdict: ScenarioVerdict
    summary: str  # one line
    figures: Mapping[str, float] = field(default_factory=dict)
    timeline: tuple[tuple[float, str], ...] = ()  # (ms since the scenario started, event)
    evidence: tuple[str, ...] = ()
    elapsed_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ok": self.ok,
            "verdict": self.verdict,
            "summary": self.summary,
            "elapsed_s": round(self.elapsed_s, 3),
            "figures": {name: round(value, 3) for name, value in self.figures.items()},
            "timeline": [[round(ms, 3), text] for ms, text in self.timeline],
            "evidence": list(self.evidence),
        }


class Recorder:
    """Collects what a scenario observes, then seals it into a `ScenarioResult`.

    Kept outside the scenario's own code so that a scenario that crashes half-way still hands
    over the timeline it had so far.
    """

    def __init__(self, scenario_id: str) -> None:
        self.id = scenario_id
        self.start = time.perf_counter()
        self.timeline: list[tuple[float, str]] = []
        self.figures: dict[str, float] = {}
        self.evidence: list[str] = []

    def ms(self) -> float:
        """Milliseconds since the scenario started."""
        return (time.perf_counter() - self.start) * 1000

    def event(self, text: str) -> None:
        self.timeline.append((self.ms(), scrub(text)))

    def note(self, text: str) -> None:
        self.evidence.append(scrub(text))

    def figure(self, name: str, value: float) -> None:
        self.figures[name] = float(value)

    def finish(self, verdict: ScenarioVerdict, summary: str) -> ScenarioResult:
        return ScenarioResult(
            self.id,
            verdict in ("pass", "skip"),
            verdict,
            scrub(summary),
            dict(self.figures),
            tuple(self.timeline),
            tuple(self.evidence),
            time.perf_counter() - self.start,
        )

    def verdict(self, ok: bool, summary: str) -> ScenarioResult:
        return self.finish("pass" if ok else "fail", summary)


@dataclass(frozen=True)
class ScenarioEnv:
    """What every scenario gets: the running sandbox, cached identities, the suite's results."""

    sandbox: Sandbox
    ctx: ProbeContext
    case_results: tuple[CaseResult, ...] = ()

    @property
    def spec(self) -> Spec:
        return self.sandbox.spec


@dataclass(frozen=True)
class Target:
    """One allowed (caller, operation) on a service behind a gateway, and how the caller comes:
    workloads with their certificate and a token bound to it, personas with a certificate only
    where the service requires one (the suite's "valid presentation")."""

    service: str
    caller: str
    operation: str  # "GET /orders/{id}"
    with_cert: bool

    @property
    def method(self) -> str:
        return self.operation.partition(" ")[0]

    @property
    def path(self) -> str:
        return concrete(self.operation.partition(" ")[2])

    def describe(self) -> str:
        return f"{self.caller} -> {self.service} {self.method} {self.path}"


def targets(spec: Spec, services: Mapping[str, object]) -> dict[str, Target]:
    """One allowed cell per service in `services` (those with a gateway), chosen the same way
    every run: workload callers first (they present certificate and bound token), then GET
    (scenarios repeat calls; reads are safe to repeat), then by name."""
    chosen: dict[str, Target] = {}
    for boundary in expected_matrix(spec):
        if boundary.kind != "service" or boundary.name not in services:
            continue
        cells = [cell for cell in boundary.cells if cell.allowed]
        if not cells:
            continue
        cell = min(
            cells,
            key=lambda c: (
                c.caller not in spec.services,
                not c.operation.startswith("GET "),
                c.caller,
                c.operation,
            ),
        )
        chosen[boundary.name] = Target(
            boundary.name,
            cell.caller,
            cell.operation,
            presents_cert(spec, cell.caller, boundary.name),
        )
    return chosen


def attempt(
    env: ScenarioEnv, target: Target, token: str | None, *, base_url: str | None = None
) -> HttpAttempt:
    """The target's valid presentation with `token` (the scenario decides which token)."""
    ctx = env.ctx
    headers: tuple[tuple[str, str], ...] = ()
    body = None
    if target.method in BODY_METHODS:
        headers, body = (("Content-Type", "application/json"),), b"{}"
    how = "with its certificate" if target.with_cert else "without a certificate"
    return HttpAttempt(
        base_url or env.sandbox.endpoints[target.service].url,
        target.method,
        target.path,
        ctx.identity_context(target.caller if target.with_cert else None),
        token,
        headers,
        body,
        f"as {target.caller} {how}",
    )


async def call(env: ScenarioEnv, what: HttpAttempt, session: aiohttp.ClientSession) -> Result:
    """One real HTTP request; the gateway's audit event for it is attached to the evidence."""
    result = await send(what, session)
    request_id = result.evidence.request_id
    if request_id:
        event = env.sandbox.audit.get(request_id)
        if event is not None:
            result = replace(result, evidence=replace(result.evidence, audit=event.to_json()))
    return result


def audit_reason(result: Result) -> str | None:
    """The reason the gateway recorded for this request (None when it has no audit event)."""
    audit = result.evidence.audit
    return str(audit["reason"]) if audit else None


def shown(result: Result) -> str:
    """A one-line account of a result for timelines and evidence."""
    status = result.evidence.status
    head = f"HTTP {status}" if status is not None else result.outcome
    if result.outcome == "allowed":
        return f"{head} allowed ({result.reason})"
    return f"{head} {result.outcome} at {result.stage or '?'}: {result.reason}"


def bound_thumbprint(env: ScenarioEnv, target: Target) -> str | None:
    """The thumbprint the target's tokens are bound to (None for a caller without a cert)."""
    return env.ctx.cert(target.caller).x5t_s256 if target.with_cert else None


def mint(
    env: ScenarioEnv,
    target: Target,
    *,
    iat: datetime | None = None,
    nbf: datetime | None = None,
    exp: datetime | None = None,
) -> IssuedToken:
    """A token for the target's caller, like `Sandbox.token`, with chosen timestamps."""
    spec, fabric = env.spec, env.ctx.fabric
    caller = target.caller
    roles = spec.personas[caller].roles if caller in spec.personas else spec.services[caller].roles
    return fabric.issuer.issue(
        spec.spiffe_id(caller),
        spec.spiffe_id(target.service),
        roles=tuple(roles),
        client_id=spec.spiffe_id(caller),
        cnf_x5t_s256=bound_thumbprint(env, target),
        iat=iat,
        nbf=nbf,
        exp=exp,
    )
