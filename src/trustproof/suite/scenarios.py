"""The suite's multi-step scenarios, run one after the other once the cases are done.

======================================  ===========================================================
id                                      what it proves
======================================  ===========================================================
``lifecycle.revocation-propagation``    a revoked token is refused at every gateway within 50 ms
``lifecycle.token-expiry``              a token expiring mid-session is refused on that session
``authz.role-removed``                  a role removed at run time is refused on the next call
``lifecycle.key-rotation``              signing keys rotate with overlap, then leave the JWKS
``lifecycle.cert-rotation``             SVIDs rotate under traffic with zero failed requests
``policy.live-vs-offline``              the matrix observed live equals the offline evaluation
======================================  ===========================================================

They run sequentially and after the cases because they disturb shared state (revocations, the
policy engine, the signing keys, the certificates); whatever a scenario changes that later
traffic relies on is restored in a ``finally``. A scenario never raises: one that crashes or
overruns `SCENARIO_TIMEOUT_S` is an ``error`` result (the scrubbed last line of the exception).
The lifecycle scenarios are in `lifecycle.py` and `rotation.py`; the model in `scenario.py`.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from trustproof.catalogue import selected
from trustproof.policy.cedar import CedarPolicyEngine
from trustproof.policy.engine import PolicyEngine
from trustproof.policy.offline import MatrixReport, check_matrix, representative_request
from trustproof.policy.reload import ReloadablePolicyEngine
from trustproof.probes.context import ProbeContext
from trustproof.probes.model import CaseResult
from trustproof.probes.web import presents_cert
from trustproof.sandbox.controller import Sandbox
from trustproof.scrub import scrubbed_traceback
from trustproof.spec.model import Spec
from trustproof.suite.lifecycle import key_rotation, revocation_propagation, token_expiry
from trustproof.suite.rotation import cert_rotation
from trustproof.suite.scenario import (
    Recorder,
    ScenarioEnv,
    ScenarioResult,
    Target,
    attempt,
    call,
    shown,
)

SCENARIO_TIMEOUT_S = 30.0
MATRIX_PROBES = ("authz.inside-matrix", "authz.outside-matrix")
LIVE_VS_OFFLINE = "policy.live-vs-offline"

Scenario = Callable[[ScenarioEnv, Recorder], Awaitable[ScenarioResult]]


# -- authz.role-removed --------------------------------------------------------------------------


def _role_target(env: ScenarioEnv, engine: CedarPolicyEngine) -> Target | None:
    """A persona holding roles, on an allowed cell that her roles are what allows (offline)."""
    spec = env.spec
    for target in _persona_targets(spec, env.sandbox.gateways):
        stripped = engine.with_roles(target.caller, ())
        request = representative_request(spec, target.caller, target.service, target.operation)
        if engine.decide(request).allowed and not stripped.decide(request).allowed:
            return target
    return None


def _persona_targets(spec: Spec, gateways: Iterable[str]) -> list[Target]:
    found = []
    for name in gateways:
        for caller, operations in spec.access.services.get(name, {}).items():
            if caller not in spec.personas or not spec.personas[caller].roles:
                continue
            for operation in sorted(operations, key=lambda op: (not op.startswith("GET "), op)):
                if operation != "*":
                    found.append(Target(name, caller, operation, presents_cert(spec, caller, name)))
    return found


async def role_removed(env: ScenarioEnv, rec: Recorder) -> ScenarioResult:
    """A persona calls an allowed route; her roles are removed from every gateway's policy
    engine (`with_roles(name, ())`); the next call with the same, still valid token must be
    refused by the policy (403). The engines are restored in a ``finally`` and the same call
    must be allowed again."""
    gateways = env.sandbox.gateways
    engines: dict[str, CedarPolicyEngine] = {}
    held = {name: gateway.pipeline.engine for name, gateway in gateways.items()}
    for name, gateway in gateways.items():
        engine = gateway.pipeline.engine
        if isinstance(engine, ReloadablePolicyEngine):  # the hot-reload holder: its engine now
            engine = engine.current
        if not isinstance(engine, CedarPolicyEngine):
            return rec.finish("skip", f"{name}'s policy engine cannot change roles at run time")
        engines[name] = engine
    first = next(iter(engines.values()), None)
    target = _role_target(env, first) if first is not None else None
    if target is None:
        return rec.finish("skip", "no persona whose roles alone allow a route")
    caller = target.caller
    roles = ", ".join(env.spec.personas[caller].roles)
    token = env.ctx.token(caller, target.service, bound=target.with_cert)
    what = attempt(env, target, token)
    before = await call(env, what, env.ctx.pooled)
    rec.event(f"{target.describe()} holding [{roles}]: {shown(before)}")
    stripped: dict[int, PolicyEngine] = {}
    try:
        for name, gateway in gateways.items():
            engine = engines[name]
            if id(engine) not in stripped:
                stripped[id(engine)] = engine.with_roles(caller, ())
            gateway.pipeline.engine = stripped[id(engine)]
        rec.event(f"removed every role of {caller} on {len(gateways)} gateways")
        during = await call(env, what, env.ctx.pooled)
        rec.event(f"same token, next call: {shown(during)}")
    finally:
        for name, gateway in gateways.items():
            gateway.pipeline.engine = held[name]
    rec.event(f"restored {caller}'s roles")
    after = await call(env, what, env.ctx.pooled)
    rec.event(f"same token again: {shown(after)}")
    audit = during.evidence.audit or {}
    rec.note(
        f"while removed: {shown(during)}; audit stage {audit.get('stage')}, reason "
        f"{audit.get('reason')}, principal {audit.get('principal')}"
    )
    checks = [
        (before.outcome == "allowed", f"refused before the change: {shown(before)}"),
        (
            during.outcome == "denied_authz" and during.stage == "policy" and bool(audit),
            f"not refused by the policy once the role was gone: {shown(during)}",
        ),
        (after.outcome == "allowed", f"still refused after restoring: {shown(after)}"),
    ]
    problems = [text for passed, text in checks if not passed]
    if problems:
        return rec.verdict(False, "; ".join(problems))
    return rec.verdict(
        True,
        f"{caller} lost [{roles}] between two calls with one valid token: refused at once "
        f"({during.reason}), allowed again once restored",
    )


# -- policy.live-vs-offline ----------------------------------------------------------------------


@dataclass(frozen=True)
class MatrixDisagreement:
    service: str
    caller: str
    operation: str
    expected: bool  # what the spec's matrix says
    live: str  # what the gateway did: "allowed" or "refused (<outcome> at <stage>: <reason>)"
    offline: str  # what the policies decide offline: "allowed by ..." or "refused: <reason>"

    def describe(self) -> str:
        must = "allowed" if self.expected else "refused"
        return (
            f"{self.caller} -> {self.service} {self.operation}: live {self.live}; "
            f"offline {self.offline} (the matrix says {must})"
        )


@dataclass(frozen=True)
class MatrixDiff:
    compared: int
    disagreements: tuple[MatrixDisagreement, ...]
    undetermined: tuple[str, ...]  # cells the live run could not decide (error, unreachable)


def diff_live_offline(results: Iterable[CaseResult], report: MatrixReport) -> MatrixDiff:
    """Every matrix cell decided both live (the suite's ``authz.inside-matrix`` /
    ``authz.outside-matrix`` results) and offline (`check_matrix`), where the two disagree.
    Pure: no sockets, so the comparison itself is unit-tested."""
    offline = {(c.service, c.caller, c.operation): c for c in report.cells}
    compared = 0
    disagreements: list[MatrixDisagreement] = []
    undetermined: list[str] = []
    for item in results:
        case, result = item.case, item.result
        if case.probe not in MATRIX_PROBES or case.variant or case.caller is None:
            continue
        cell = offline.get((case.boundary, case.caller, case.operation))
        if cell is None:
            continue
        if result.outcome in ("error", "unreachable"):
            undetermined.append(f"{case.id}: {result.outcome} ({result.reason})")
            continue
        compared += 1
        live_allowed = result.outcome == "allowed"
        if live_allowed == cell.decision.allowed:
            continue
        decision = cell.decision
        disagreements.append(
            MatrixDisagreement(
                case.boundary,
                case.caller,
                case.operation,
                cell.expected,
                "allowed"
                if live_allowed
                else f"refused ({result.outcome} at {result.stage}: {result.reason})",
                f"allowed by {', '.join(decision.policy_ids) or '?'}"
                if decision.allowed
                else f"refused: {decision.reason}",
            )
        )
    return MatrixDiff(compared, tuple(disagreements), tuple(undetermined))


async def live_vs_offline(env: ScenarioEnv, rec: Recorder) -> ScenarioResult:
    report = check_matrix(env.spec)
    rec.event(f"evaluated {len(report.cells)} matrix cells offline")
    diff = diff_live_offline(env.case_results, report)
    rec.event(f"compared {diff.compared} cells with the live results")
    rec.figure("compared", diff.compared)
    rec.figure("disagreements", len(diff.disagreements))
    rec.figure("undetermined", len(diff.undetermined))
    for disagreement in diff.disagreements:
        rec.note(disagreement.describe())
    for text in diff.undetermined:
        rec.note(f"undetermined live: {text}")
    if diff.compared == 0:
        return rec.finish("skip", "no matrix case of this run decided a cell live")
    if diff.disagreements:
        return rec.verdict(
            False,
            f"{len(diff.disagreements)} of {diff.compared} cells decided differently live and "
            "offline: " + "; ".join(d.describe() for d in diff.disagreements[:3]),
        )
    return rec.verdict(True, f"live and offline decisions agree on all {diff.compared} cells")


# -- running them --------------------------------------------------------------------------------

SCENARIOS: tuple[tuple[str, Scenario], ...] = (
    ("lifecycle.revocation-propagation", revocation_propagation),
    ("lifecycle.token-expiry", token_expiry),
    ("authz.role-removed", role_removed),
    ("lifecycle.key-rotation", key_rotation),
    ("lifecycle.cert-rotation", cert_rotation),
    (LIVE_VS_OFFLINE, live_vs_offline),
)
SCENARIO_IDS = tuple(sid for sid, _ in SCENARIOS)


def choose_scenarios(
    spec: Spec,
    select: Sequence[str] = (),
    deselect: Sequence[str] = (),
    case_results: Iterable[CaseResult] = (),
) -> list[str]:
    """The scenario ids to run: chosen by the spec's ``probes`` (catalogue ids; the live/offline
    comparison goes with the matrix probes it reads) and by the run's select/deselect globs."""
    chosen = set(selected(spec.probes.select, spec.probes.deselect))
    ran = {item.case.probe for item in case_results}
    ids = []
    for sid in SCENARIO_IDS:
        wanted = bool(ran & set(MATRIX_PROBES)) if sid == LIVE_VS_OFFLINE else sid in chosen
        if select and not any(fnmatch.fnmatchcase(sid, p) for p in select):
            wanted = False
        if any(fnmatch.fnmatchcase(sid, p) for p in deselect):
            wanted = False
        if wanted:
            ids.append(sid)
    return ids


async def run_scenarios(
    sandbox: Sandbox,
    case_results: Sequence[CaseResult],
    *,
    ids: Sequence[str] | None = None,
    on_start: Callable[[str], None] | None = None,
) -> list[ScenarioResult]:
    """Run the scenarios (all, or `ids`, in the table's order) one after the other."""
    ctx = ProbeContext.open(sandbox)
    env = ScenarioEnv(sandbox, ctx, tuple(case_results))
    results = []
    try:
        for sid, scenario in SCENARIOS:
            if ids is not None and sid not in ids:
                continue
            if on_start is not None:
                on_start(sid)
            results.append(await run_one(sid, scenario, env))
    finally:
        await ctx.close()
    return results


async def run_one(sid: str, scenario: Scenario, env: ScenarioEnv) -> ScenarioResult:
    """One scenario; a crash or an overrun is an ``error`` result with what was recorded."""
    rec = Recorder(sid)
    try:
        async with asyncio.timeout(SCENARIO_TIMEOUT_S):
            return await scenario(env, rec)
    except TimeoutError:
        rec.event(f"gave up after {SCENARIO_TIMEOUT_S:.0f} s")
        return rec.finish("error", f"the scenario did not finish within {SCENARIO_TIMEOUT_S:.0f} s")
    except Exception as exc:
        last = scrubbed_traceback(exc).splitlines()[-1]
        rec.event(f"crashed: {last}")
        return rec.finish("error", f"the scenario crashed: {last}")
