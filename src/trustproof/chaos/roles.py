"""``authz.role-removed``: a role removed at run time is refused on the very next call.

Roles come from the spec, never the request: the gateways' policy engine holds them. This
scenario swaps the enforced policy through `SandboxView.override_policy` for one where the
persona holds no role, and restores it.
"""

from __future__ import annotations

from collections.abc import Iterable

from trustproof.chaos.scenario import (
    Recorder,
    ScenarioEnv,
    ScenarioResult,
    Target,
    call,
    presentation,
    shown,
)
from trustproof.policy.cedar import CedarPolicyEngine
from trustproof.policy.offline import representative_request
from trustproof.probes.presentation import presents_cert
from trustproof.spec.model import Spec


def _role_target(env: ScenarioEnv, engine: CedarPolicyEngine) -> Target | None:
    """A persona holding roles, on an allowed cell that her roles are what allows (offline)."""
    spec = env.spec
    for target in _persona_targets(spec, env.view.gateways()):
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
    """A persona calls an allowed route; her roles are removed from the policy every gateway
    enforces (`override_policy` with `with_roles(name, ())`); the next call with the same, still
    valid token must be refused by the policy (403). The policy is restored when the block ends
    and the same call must be allowed again."""
    view = env.view
    if not view.gateways():  # services without a gateway enforce their own configuration
        return rec.finish("skip", "no service behind a gateway: no policy to change at run time")
    engine = view.policy()
    if not isinstance(engine, CedarPolicyEngine):
        return rec.finish("skip", "the enforced policy engine cannot change roles at run time")
    target = _role_target(env, engine)
    if target is None:
        return rec.finish("skip", "no persona whose roles alone allow a route")
    caller = target.caller
    roles = ", ".join(env.spec.personas[caller].roles)
    token = view.token(caller, target.service, bound=target.with_cert)
    what = presentation(target, token)
    before = await call(env, what)
    rec.event(f"{target.describe()} holding [{roles}]: {shown(before)}")
    gateways = view.gateways()
    with view.override_policy(engine.with_roles(caller, ())):
        rec.event(f"removed every role of {caller} on {len(gateways)} gateways")
        during = await call(env, what)
        rec.event(f"same token, next call: {shown(during)}")
    rec.event(f"restored {caller}'s roles")
    after = await call(env, what)
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
