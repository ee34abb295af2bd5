"""Token lifecycle scenarios (DESIGN §5 "Lifecycle"): revocation propagation, a token expiring
mid-session, signing-key rotation. Each drives real HTTP through the real gateways, through the
sandbox's `SandboxView` only; each also runs against the services that validate tokens themselves
(``gateway: none``; `chaos.own`), revocation only where the service declares how it checks
(``ingress.revocation``). A scenario passes when every part (the gateways, each such service)
does.

Two of them wait in real time, briefly: the gateways check `exp` against the sandbox clock, and a
token cannot be made to expire on an open connection without time passing. Their tokens are minted
with timestamps chosen so that the wait is about a second, not a token lifetime.
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime

from trustproof.chaos import own
from trustproof.chaos.scenario import (
    Part,
    Recorder,
    ScenarioEnv,
    ScenarioResult,
    Target,
    audit_reason,
    call,
    combine,
    mint,
    own_validators,
    presentation,
    shown,
    targets,
)
from trustproof.chaos.session import use_until_refused
from trustproof.scrub import Secret

PROPAGATION_BUDGET_MS = 50.0  # DESIGN §6: revocation reaches every gateway within 50 ms
PROPAGATION_GIVE_UP_S = 2.0
PROPAGATION_POLL_S = 0.001
PROPAGATION_MAX_POLLS = 4000
EXPIRY_VALID_FOR_S = 1.5  # how long the expiring token is still accepted once minted (at most)
KEY_ROTATION_MAX_WAIT_S = 3.0
REVOKED = "token-revoked"


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _workload_first(env: ScenarioEnv) -> Target | None:
    """The first service (spec order) whose chosen caller is a workload, else the first one."""
    chosen = list(targets(env.spec, env.view.gateways()).values())
    return min(chosen, key=lambda t: t.caller not in env.spec.services) if chosen else None


# -- lifecycle.revocation-propagation ------------------------------------------------------------


async def revocation_propagation(env: ScenarioEnv, rec: Recorder) -> ScenarioResult:
    """A valid token in use at every gateway; each is revoked through the token service's RFC 7009
    endpoint with its caller's certificate, and the same token is replayed about every
    millisecond until that gateway refuses it. Passes when every gateway refuses with
    ``token-revoked`` (its audit event agreeing) within `PROPAGATION_BUDGET_MS` of the revoke
    call returning. The time measured includes one request's round trip, so it is an upper bound:
    when the very first replay after the revocation was answered is refused (nothing accepted
    after it), the gateway had the revocation before it judged any replay, and a round trip over
    the budget (a loaded machine) is noted, not failed; once a replay was accepted after the
    revocation, the refusal must come within the budget.
    """
    chosen = targets(env.spec, env.view.gateways())
    introspecting = targets(env.spec, own_validators(env.spec, revocation="introspection"))
    if not chosen and not introspecting:
        return rec.finish(
            "skip",
            "no service behind a gateway, and none declaring `ingress.revocation: introspection`",
        )
    parts = [await _revocation_at_gateways(env, rec, chosen)] if chosen else []
    for target in introspecting.values():
        parts.append(await own.revocation(env, rec, target))
    return combine(rec, parts)


async def _revocation_at_gateways(
    env: ScenarioEnv, rec: Recorder, chosen: dict[str, Target]
) -> Part:
    tokens: dict[str, Secret[str]] = {}
    for name, target in chosen.items():
        token = mint(env, target)
        result = await call(env, presentation(target, token))
        rec.event(f"{target.describe()} with a fresh token: {shown(result)}")
        if result.outcome != "allowed":
            return Part(False, f"{name}: the fresh token was refused before revocation")
        tokens[name] = token
    problems: list[str] = []
    for name, target in chosen.items():
        problem = await _propagate(env, rec, target, tokens[name])
        if problem:
            problems.append(f"{name}: {problem}")
    measured = [v for k, v in rec.figures.items() if k.startswith("propagation_ms.")]
    if measured:
        rec.figure("propagation_ms.max", max(measured))
    for problem in problems:
        rec.note(problem)
    if problems:
        return Part(False, "; ".join(problems))
    worst = max(measured)
    return Part(
        True,
        f"{len(chosen)} gateways refused the revoked token with {REVOKED} within "
        f"{worst:.1f} ms (budget {PROPAGATION_BUDGET_MS:.0f} ms)",
    )


async def _propagate(env: ScenarioEnv, rec: Recorder, target: Target, token: Secret[str]) -> str:
    """Revoke `token` and replay it at the target's gateway; the problem, or "" when it passed."""
    name = target.service
    status = await env.view.revoke_token(token, as_caller=target.caller)
    start = time.perf_counter()
    rec.event(f"{target.caller} revoked its {name} token at the token service: HTTP {status}")
    if status != 200:
        return f"the token service answered HTTP {status} to the revocation"
    what = presentation(target, token)
    accepted = polls = 0
    while polls < PROPAGATION_MAX_POLLS and time.perf_counter() - start < PROPAGATION_GIVE_UP_S:
        result = await call(env, what)
        polls += 1
        if result.outcome == "allowed":
            accepted += 1
            await asyncio.sleep(PROPAGATION_POLL_S)
            continue
        elapsed = (time.perf_counter() - start) * 1000
        rec.figure(f"propagation_ms.{name}", elapsed)
        rec.figure(f"accepted_after_revoke.{name}", accepted)
        rec.event(f"{name} refused the revoked token after {elapsed:.2f} ms: {shown(result)}")
        rec.note(
            f"{name}: refused after {elapsed:.2f} ms and {accepted} accepted replay(s); "
            f"response {result.reason}, audit {audit_reason(result)} "
            f"(request {result.evidence.request_id})"
        )
        if result.reason != REVOKED:
            return f"refused for {result.reason}, not {REVOKED} ({shown(result)})"
        if audit_reason(result) != REVOKED:
            return f"the audit event says {audit_reason(result)!r}, not {REVOKED!r}"
        if elapsed > PROPAGATION_BUDGET_MS and accepted:
            return f"took {elapsed:.1f} ms (budget {PROPAGATION_BUDGET_MS:.0f} ms)"
        # Refused with no replay accepted after the revocation was answered: the gateway knew
        # before the first replay was judged, however long that replay's round trip took on a
        # loaded machine (a round trip over budget is noted, not failed).
        if elapsed > PROPAGATION_BUDGET_MS:
            rec.note(
                f"{name}: the first replay after the revocation was already refused; its round "
                f"trip alone took {elapsed:.1f} ms (machine load), an upper bound"
            )
        return ""
    waited = (time.perf_counter() - start) * 1000
    rec.figure(f"accepted_after_revoke.{name}", accepted)
    rec.event(f"{name} still accepted the revoked token after {waited:.0f} ms; giving up")
    return f"still accepted the revoked token after {waited:.0f} ms ({accepted} requests)"


# -- lifecycle.token-expiry ----------------------------------------------------------------------


async def token_expiry(env: ScenarioEnv, rec: Recorder) -> ScenarioResult:
    """A token that stops being valid about a second from now is used on one kept-alive
    connection every `EXPIRY_POLL_S`: accepted until exp + the gateway's leeway, then refused
    with ``token-expired`` on the same connection (one connection opened; the refused request's
    audit event has no handshake of its own). Refusing early fails too.
    """
    target = _workload_first(env)
    checking = targets(env.spec, own_validators(env.spec))
    if target is None and not checking:
        return rec.finish("skip", "no service behind a gateway or validating tokens itself")
    parts = [await _expiry_at_gateway(env, rec, target)] if target is not None else []
    for own_target in checking.values():
        parts.append(await own.token_expiry(env, rec, own_target))
    return combine(rec, parts)


async def _expiry_at_gateway(env: ScenarioEnv, rec: Recorder, target: Target) -> Part:
    clock = env.view.clock
    leeway = env.view.leeway(target.service).total_seconds()
    # exp in whole seconds (a NumericDate), chosen so that exp + leeway is 0.5-1.5 s away.
    exp = int(clock.now().timestamp() - leeway + EXPIRY_VALID_FOR_S)
    end = exp + leeway  # the gateway accepts the token while now < end
    issued = mint(env, target, iat=_at(exp - 2), nbf=_at(exp - 2), exp=_at(exp))
    rec.note(
        f"a 2 s token for {target.describe()}: exp {_at(exp).isoformat()}, gateway leeway "
        f"{leeway:g} s, so accepted until {_at(end).isoformat()}"
    )
    used = await use_until_refused(env, rec, presentation(target, issued), end)
    accepted, opened, refusal = used.accepted, used.opened, used.refusal
    rec.figure("requests_accepted", accepted)
    rec.figure("connections_opened", opened)
    if used.late_accept:
        return Part(False, "the gateway accepted the token after exp + leeway")
    if refusal is None:
        return Part(False, "the token was never refused within 1 s after its expiry")
    result, seen_at = refusal
    after_ms = (seen_at - end) * 1000
    rec.figure("refused_after_expiry_ms", after_ms)
    rec.event(f"refused {after_ms:.1f} ms after exp + leeway: {shown(result)}")
    audit = result.evidence.audit or {}
    timings = audit.get("timings")
    handshake = timings.get("handshake_us") if isinstance(timings, dict) else None
    rec.note(
        f"refusal: {shown(result)}; audit reason {audit_reason(result)}, handshake_us "
        f"{handshake} (None: an already open connection); connections opened: {opened}"
    )
    problems = []
    if accepted == 0:
        problems.append("the token was refused before it expired (never accepted)")
    if result.reason != "token-expired" or audit_reason(result) != "token-expired":
        problems.append(f"refused for {result.reason} (audit {audit_reason(result)})")
    if after_ms < 0:
        problems.append(f"refused {-after_ms:.0f} ms before exp + leeway")
    if opened != 1 or not audit or handshake is not None:
        problems.append(f"not on the same connection ({opened} opened)")
    if problems:
        return Part(False, "; ".join(problems))
    return Part(
        True,
        f"accepted {accepted} times on one kept-alive connection, then refused with "
        f"token-expired {after_ms:.0f} ms after exp + {leeway:g} s leeway",
    )


# -- lifecycle.key-rotation ----------------------------------------------------------------------


async def key_rotation(env: ScenarioEnv, rec: Recorder) -> ScenarioResult:
    """Signing-key rotation with overlap, end to end.

    The ring is rotated twice around one short-lived token, with nothing awaited in between, so
    the middle key signs that token only: it is accepted after the rotation (the retired key
    stays in the JWKS), a token from the new key is accepted too, and once the old token's `exp`
    has passed `KeyRing.prune()` drops the key — it leaves ``/jwks.json`` and the old token is
    refused (``token-unknown-kid``, or ``token-expired``). Rotation cannot be undone, and need
    not be: the ring ends with a fresh active key, as after any rotation.
    """
    target = _workload_first(env)
    checking = targets(env.spec, own_validators(env.spec))
    if target is None and not checking:
        return rec.finish("skip", "no service behind a gateway or validating tokens itself")
    parts = [await _key_rotation_at_gateway(env, rec, target)] if target is not None else []
    for own_target in checking.values():
        parts.append(await own.key_rotation(env, rec, own_target))
    return combine(rec, parts)


async def _key_rotation_at_gateway(env: ScenarioEnv, rec: Recorder, target: Target) -> Part:
    view, clock = env.view, env.view.clock
    rec.figure("jwks_keys_before", len(await view.published_kids()))
    view.rotate_signing_key()
    exp = math.ceil(clock.now().timestamp() + 0.5)  # 0.5-1.5 s ahead, whole seconds
    old_token = mint(env, target, exp=_at(exp))
    view.rotate_signing_key()
    new_token = mint(env, target)
    old, new = view.token_kid(old_token), view.token_kid(new_token)
    rec.event(f"rotated the signing key around one token (exp {_at(exp).isoformat()})")
    during = await view.published_kids()
    rec.figure("jwks_keys_during", len(during))
    old_before = await call(env, presentation(target, old_token))
    new_before = await call(env, presentation(target, new_token))
    rec.event(f"token from the retired key: {shown(old_before)}")
    rec.event(f"token from the new key: {shown(new_before)}")
    wait = min(max(exp - clock.now().timestamp() + 0.05, 0.0), KEY_ROTATION_MAX_WAIT_S)
    await asyncio.sleep(wait)
    rec.figure("waited_ms", wait * 1000)
    pruned = view.prune_signing_keys()
    rec.event(f"old token's exp passed; prune() dropped {len(pruned)} key(s)")
    after = await view.published_kids()
    rec.figure("jwks_keys_after", len(after))
    old_after = await call(env, presentation(target, old_token))
    new_after = await call(env, presentation(target, new_token))
    rec.event(f"token from the pruned key: {shown(old_after)}")
    rec.event(f"token from the new key: {shown(new_after)}")
    rec.note(f"retired kid {old}, new kid {new}; JWKS during {list(during)}, after {list(after)}")
    checks = [
        (old != new, "both tokens were signed by the same key"),
        (old in during and new in during, "the JWKS did not hold both keys after rotation"),
        (old_before.outcome == "allowed", f"the old token was refused: {shown(old_before)}"),
        (new_before.outcome == "allowed", f"the new token was refused: {shown(new_before)}"),
        (old not in after, "the retired key stayed in the JWKS after its last token expired"),
        (new in after, "the active key left the JWKS"),
        (
            old_after.reason in ("token-unknown-kid", "token-expired"),
            f"the old token after pruning: {shown(old_after)}",
        ),
        (new_after.outcome == "allowed", f"the new token after pruning: {shown(new_after)}"),
    ]
    problems = [text for passed, text in checks if not passed]
    if problems:
        return Part(False, "; ".join(problems))
    return Part(
        True,
        "a token of the retired key stayed valid through the rotation; after its expiry the key "
        f"left the JWKS and the token was refused ({old_after.reason})",
    )
