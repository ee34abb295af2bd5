"""What a multi-step scenario is made of: its result, the recorder that builds it, and the few
things every scenario needs (whom to call where, a real HTTP call with its audit record, a token
minted with chosen timestamps) — all through the sandbox's `SandboxView`.

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
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from trustproof.plan import expected_matrix
from trustproof.probes.http import exchange
from trustproof.probes.model import CaseResult, Result
from trustproof.probes.presentation import Presentation, concrete, presents_cert
from trustproof.scrub import Secret, scrub
from trustproof.spec.model import Spec
from trustproof.view import Channel, ClientCert, SandboxView

ScenarioVerdict = Literal["pass", "fail", "skip", "error"]


REFUSALS_IN_A_ROW = 3
"""How many fresh handshakes in a row a server reading its files must refuse before a refusal
counts: a server reloading (nginx replacing its workers) resets handshakes for a moment, which is
not the refusal a fault is after. One acceptance is proof enough of acceptance."""


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

    def __init__(
        self, scenario_id: str, on_event: Callable[[float, str], None] | None = None
    ) -> None:
        self.id = scenario_id
        self.start = time.perf_counter()
        self.timeline: list[tuple[float, str]] = []
        self.figures: dict[str, float] = {}
        self.evidence: list[str] = []
        self.on_event = on_event  # told each step as it happens (the run's audit log)

    def ms(self) -> float:
        """Milliseconds since the scenario started."""
        return (time.perf_counter() - self.start) * 1000

    def event(self, text: str) -> None:
        step = (self.ms(), scrub(text))
        self.timeline.append(step)
        if self.on_event is not None:
            self.on_event(*step)

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
    """What every scenario gets: the sandbox's view, and the suite's case results."""

    view: SandboxView
    case_results: tuple[CaseResult, ...] = ()

    @property
    def spec(self) -> Spec:
        return self.view.spec


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


def targets(spec: Spec, services: Iterable[str]) -> dict[str, Target]:
    """One allowed cell per service in `services` (those with a gateway), chosen the same way
    every run: workload callers first (they present certificate and bound token), then GET
    (scenarios repeat calls; reads are safe to repeat), then by name."""
    wanted = set(services)
    chosen: dict[str, Target] = {}
    for boundary in expected_matrix(spec):
        if boundary.kind != "service" or boundary.name not in wanted:
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


def presentation(target: Target, token: Secret[str] | None, *, fresh: bool = False) -> Presentation:
    """The target's valid presentation with `token` (the scenario decides which token)."""
    cert = ClientCert(target.caller) if target.with_cert else None
    return Presentation(
        target.caller,
        target.service,
        target.method,
        target.path,
        cert,
        token,
        fresh=fresh,
    )


async def call(env: ScenarioEnv, how: Presentation, *, channel: Channel | None = None) -> Result:
    """One real HTTP request; the gateway's audit event for it is attached to the evidence. An
    answer through a service's gateway is read as the suite reads it: without the gateway's deny
    it was forwarded (a 400 the handler gave a body it cannot use is an allowed call)."""
    declared = env.view.spec.services.get(how.service)
    behind = how.door == "ingress" and declared is not None and declared.ingress.gateway != "none"
    return await exchange(
        env.view, how.request(), how.describe(), channel=channel, from_gateway=behind
    )


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


def mint(
    env: ScenarioEnv,
    target: Target,
    *,
    iat: datetime | None = None,
    nbf: datetime | None = None,
    exp: datetime | None = None,
) -> Secret[str]:
    """A new token for the target's caller, bound as usual, with chosen timestamps."""
    view = env.view
    if iat is None and nbf is None and exp is None:
        return view.token(target.caller, target.service, bound=target.with_cert, fresh=True)
    return view.token(
        target.caller, target.service, bound=target.with_cert, iat=iat, nbf=nbf, exp=exp
    )


def own_validators(spec: Spec, *, revocation: str | None = None) -> tuple[str, ...]:
    """Services without a trustproof gateway (``gateway: none``) that require a token, so check
    tokens themselves, in spec order; only those declaring `revocation` when it is given."""
    return tuple(
        name
        for name, service in spec.services.items()
        if service.ingress.gateway == "none"
        and service.ingress.token == "required"  # noqa: S105 (a setting, not a secret)
        and (revocation is None or service.ingress.revocation == revocation)
    )


@dataclass(frozen=True)
class Part:
    """What one part of a scenario (the gateways, or one service validating tokens itself)
    concluded: a scenario with several parts passes when every part does."""

    ok: bool
    summary: str


def combine(rec: Recorder, parts: Iterable[Part]) -> ScenarioResult:
    """One verdict from the parts: the failures' summaries if any failed, else every summary."""
    parts = list(parts)
    failed = [part.summary for part in parts if not part.ok]
    if failed:
        return rec.verdict(False, "; ".join(failed))
    return rec.verdict(True, "; ".join(part.summary for part in parts))


Scenario = Callable[[ScenarioEnv, Recorder], Awaitable[ScenarioResult]]
"""A scenario: given the environment and a recorder, the result (never raises for a failure)."""
