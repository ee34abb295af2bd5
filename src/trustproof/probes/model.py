"""What the zero-trust suite is made of: cases (what to try and what must happen), results (what
happened, with evidence) and verdicts (do they agree).

A refusal is a *result*, never an exception: every attempt ends in one `Outcome`. The verdict
compares it with the case's `Expectation`:

==================  ============================================================================
verdict             meaning
==================  ============================================================================
``pass``            as expected
``over-permission``  refused was expected, the request was allowed (a trust violation)
``under-permission`` allowed was expected, the request was refused
``wrong-stage``     refused as expected, but at another stage (e.g. by the policy where the
                    certificate should already have been refused)
``not-served``      allowed, but the answer did not come from the service's handler
``inconclusive``    the answer was neither clearly served nor clearly refused (a 5xx, a 1xx, an
                    unknown status, a declared ``expect`` that does not hold): never a pass, a
                    failure of the gate like the violations, with the answer as evidence
``error``           the probe itself could not run (the target was unreachable, a bug)
==================  ============================================================================

Which stage refused is part of the verdict behind a trustproof gateway (we know its stages) and on
a ``gateway: none`` service that declares ``refuses``; on any other server trustproof did not
write, a refusal at another stage than expected is a pass with the stage in the evidence (a 401
from the application's own authorization layer where a TLS refusal was expected still refuses).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from trustproof.probes.params import Params

Outcome = Literal[
    "allowed", "denied_tls", "denied_authn", "denied_authz", "unreachable", "inconclusive", "error"
]
OUTCOMES: tuple[Outcome, ...] = (
    "allowed",
    "denied_tls",
    "denied_authn",
    "denied_authz",
    "unreachable",
    "inconclusive",
    "error",
)
Verdict = Literal[
    "pass",
    "over-permission",
    "under-permission",
    "wrong-stage",
    "not-served",
    "inconclusive",
    "error",
]
BoundaryKind = Literal["gateway", "self", "bypass", "datastore"]


@dataclass(frozen=True)
class Expectation:
    """What must happen: allowed (and served by `served_by`), or refused with one of `refusals`."""

    allowed: bool
    refusals: tuple[Outcome, ...] = ()
    served_by: str | None = None  # an allowed request must be answered by this service
    either: bool = False  # with `allowed`: a refusal is fine too (strictness is safe)

    @classmethod
    def allow(cls, served_by: str | None = None) -> Expectation:
        return cls(True, (), served_by)

    @classmethod
    def refuse(cls, *outcomes: Outcome) -> Expectation:
        return cls(False, outcomes)

    def describe(self) -> str:
        served = f" (served by {self.served_by})" if self.served_by else ""
        if self.allowed:
            return ("allowed or refused" if self.either else "allowed") + served
        return "refused: " + " or ".join(self.refusals)


@dataclass(frozen=True)
class Case:
    """One attempt against one boundary. `id` is stable across runs (reports key on it)."""

    probe: str  # catalogue id, e.g. "token.expired"
    boundary: str  # service or datastore name
    kind: BoundaryKind
    caller: str | None  # who the attempt claims to be (None: nobody)
    operation: str  # "GET /orders/{id}" or "select orders"
    expect: Expectation
    variant: str = ""  # what distinguishes cases of one probe on one cell (e.g. the path trick)
    params: Params | None = None  # what the family needs beyond the cell (typed per family)

    @property
    def id(self) -> str:
        parts = [self.probe, self.boundary, self.caller or "-", self.operation]
        if self.variant:
            parts.append(self.variant)
        return " | ".join(parts)


@dataclass(frozen=True)
class Evidence:
    """What was sent and what came back, scrubbed (no token or key ever appears here)."""

    sent: str
    status: int | None = None
    detail: str = ""  # the TLS error, the refusal body's reason and detail, the SQL error
    request_id: str | None = None
    served_by: str | None = None
    audit: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    stage: str  # tls | token | path | policy | db | upstream | transport | "" when allowed
    reason: str
    evidence: Evidence
    elapsed_ms: float = 0.0
    # Is the refusing stage part of the verdict? False only on a server trustproof did not write
    # that declares no `refuses` (`trustproof.probes.answers.Context.stage_is_verdict`).
    stage_is_verdict: bool = True


@dataclass(frozen=True)
class CaseResult:
    case: Case
    result: Result
    verdict: Verdict
    started_ms: float = 0.0  # when the case started, since the suite started (cases overlap)

    @property
    def ok(self) -> bool:
        return self.verdict == "pass"


def judge(case: Case, result: Result) -> Verdict:
    """The verdict for one case: does what happened agree with what must happen?"""
    expect = case.expect
    if result.outcome == "inconclusive":
        return "inconclusive"  # neither clearly served nor clearly refused: never a pass
    if result.outcome in ("error", "unreachable") and not (
        not expect.allowed and result.outcome in expect.refusals
    ):
        return "error"
    if expect.allowed and expect.either and result.outcome.startswith("denied_"):
        return "pass"  # refused where serving was also fine: strictness is safe
    if expect.allowed:
        if result.outcome != "allowed":
            return "under-permission"
        if expect.served_by and result.evidence.served_by != expect.served_by:
            return "not-served"
        return "pass"
    if result.outcome == "allowed":
        return "over-permission"
    if expect.refusals and result.outcome not in expect.refusals:
        if case.kind == "self" and not result.stage_is_verdict:
            return "pass"  # refused, at a stage a server we did not write may choose
        return "wrong-stage"
    return "pass"
