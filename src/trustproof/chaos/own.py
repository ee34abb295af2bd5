"""The lifecycle scenarios' part for services that validate tokens themselves (``gateway: none``).

Such a service learns of new signing keys and CRLs from the files the sandbox writes for it
(``TRUSTPROOF_JWKS_FILE``, ``TRUSTPROOF_SIGNING_KEYS_FILE``, ``TRUSTPROOF_CRL_FILE``), rewritten
and followed by a reload (its ``reload:``) whenever they change — or from the token service
itself. Nothing here knows how it does it: each part watches what the service answers.

* key rotation: after the keys rotate, a token signed by the new key must be accepted within
  `RELOAD_MAX_WAIT_S` (the files are rewritten and the service reloaded; one that never reloads
  keeps refusing it, and the part fails with that refusal as evidence), a token of the retired
  key too while it is valid; once it has expired and the key is pruned (the files rewritten, the
  service reloaded again), it is refused and the new key's token still accepted;
* token expiry: a token about to expire, used on one kept-alive connection, is accepted, then
  refused no earlier than its ``exp`` and no later than `LEEWAY_S` after it (the service's own
  clock-skew leeway, which trustproof cannot read, is allowed up to that);
* revocation (only for ``ingress.revocation: introspection``): a revoked token must be refused
  within `PROPAGATION_BUDGET_MS` (one request's round trip, including the service's own
  introspection call, is in the measure).
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime

from trustproof.chaos.scenario import (
    Part,
    Recorder,
    ScenarioEnv,
    Target,
    call,
    mint,
    presentation,
    shown,
)
from trustproof.chaos.session import use_until_refused
from trustproof.probes.model import Result
from trustproof.probes.presentation import Presentation
from trustproof.scrub import Secret

RELOAD_MAX_WAIT_S = 5.0  # for the files to be rewritten and the service to reload
POLL_S = 0.05
MAX_POLLS = 200
KEY_TOKEN_S = 6.0  # the retired key's token outlives the reload wait
EXPIRY_VALID_FOR_S = 1.5
LEEWAY_S = 1.0
PROPAGATION_BUDGET_MS = 1000.0
PROPAGATION_GIVE_UP_S = 3.0


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


async def poll(
    env: ScenarioEnv, what: Presentation, *, allowed: bool, give_up_s: float
) -> tuple[Result, float, int]:
    """Send `what` every `POLL_S` until it is allowed (or refused, with `allowed` False), at most
    `give_up_s` and `MAX_POLLS` times: the last result, the seconds it took, the attempts."""
    start = time.perf_counter()
    attempts = 0
    while True:
        result = await call(env, what)
        attempts += 1
        elapsed = time.perf_counter() - start
        reached = (result.outcome == "allowed") == allowed
        if reached or elapsed >= give_up_s or attempts >= MAX_POLLS:
            return result, elapsed, attempts
        await asyncio.sleep(POLL_S)


async def key_rotation(env: ScenarioEnv, rec: Recorder, target: Target) -> Part:
    """See the module docstring."""
    view, clock, name = env.view, env.view.clock, target.service
    view.rotate_signing_key()
    exp = math.ceil(clock.now().timestamp() + KEY_TOKEN_S)
    old_token = mint(env, target, exp=_at(exp))
    view.rotate_signing_key()
    new_token = mint(env, target)
    old, new = view.token_kid(old_token), view.token_kid(new_token)
    rec.event(f"{name}: rotated the signing key around one token (exp {_at(exp).isoformat()})")
    new_before, waited, attempts = await poll(
        env, presentation(target, new_token), allowed=True, give_up_s=RELOAD_MAX_WAIT_S
    )
    rec.event(f"{name}: token from the new key after {waited * 1000:.0f} ms: {shown(new_before)}")
    if new_before.outcome != "allowed":
        rec.note(
            f"{name}: the new key's token (kid {new}) was refused {attempts} times over "
            f"{waited:.1f} s after the rotation; last answer {shown(new_before)}"
        )
        return Part(
            False,
            f"{name} still refused the new signing key's token {waited:.1f} s after the "
            f"rotation ({shown(new_before)}): it did not pick up the rewritten key files — "
            "does it read TRUSTPROOF_JWKS_FILE or TRUSTPROOF_SIGNING_KEYS_FILE again on its "
            "`reload:`?",
        )
    rec.figure(f"new_key_accepted_ms.{name}", waited * 1000)
    old_before = await call(env, presentation(target, old_token))
    rec.event(f"{name}: token from the retired key: {shown(old_before)}")
    wait = min(max(exp - clock.now().timestamp() + 0.05, 0.0), KEY_TOKEN_S + 1)
    await asyncio.sleep(wait)
    pruned = view.prune_signing_keys()
    after = await view.published_kids()
    rec.event(f"{name}: the old token's exp passed; prune() dropped {len(pruned)} key(s)")
    new_after, old_after = await _after_pruning(env, target, new_token, old_token)
    rec.event(f"{name}: token from the pruned key: {shown(old_after)}")
    rec.event(f"{name}: token from the new key: {shown(new_after)}")
    rec.note(f"{name}: retired kid {old}, new kid {new}; JWKS after pruning {list(after)}")
    checks = [
        (old != new, "both tokens were signed by the same key"),
        (
            old_before.outcome == "allowed",
            f"the retired key's token was refused during the overlap: {shown(old_before)}",
        ),
        (old not in after, "the retired key stayed in the JWKS after its last token expired"),
        (old_after.outcome != "allowed", f"the pruned key's token: {shown(old_after)}"),
        (new_after.outcome == "allowed", f"the new key's token after pruning: {shown(new_after)}"),
    ]
    problems = [f"{name}: {text}" for passed, text in checks if not passed]
    if problems:
        return Part(False, "; ".join(problems))
    return Part(
        True,
        f"{name} accepted the new key's token {waited * 1000:.0f} ms after the rotation and the "
        f"retired key's during the overlap; refused it once pruned ({old_after.reason})",
    )


async def _after_pruning(
    env: ScenarioEnv, target: Target, new_token: Secret[str], old_token: Secret[str]
) -> tuple[Result, Result]:
    """Once the service answers again after its reload (a restart takes a while), the new key's
    token and then the pruned key's: polled until the first is allowed and the second refused by
    the service itself (not unreachable), at most `RELOAD_MAX_WAIT_S` and `MAX_POLLS` times."""
    start = time.perf_counter()
    for _ in range(MAX_POLLS):
        new = await call(env, presentation(target, new_token))
        old = await call(env, presentation(target, old_token))
        settled = new.outcome == "allowed" and old.outcome not in ("allowed", "unreachable")
        if settled or time.perf_counter() - start >= RELOAD_MAX_WAIT_S:
            break
        await asyncio.sleep(POLL_S)
    return new, old


async def token_expiry(env: ScenarioEnv, rec: Recorder, target: Target) -> Part:
    """See the module docstring."""
    clock, name = env.view.clock, target.service
    exp = int(clock.now().timestamp() + EXPIRY_VALID_FOR_S)  # 0.5-1.5 s ahead, whole seconds
    issued = mint(env, target, iat=_at(exp - 2), nbf=_at(exp - 2), exp=_at(exp))
    end = exp + LEEWAY_S
    rec.note(
        f"{name}: a 2 s token for {target.describe()}: exp {_at(exp).isoformat()}; a leeway of "
        f"up to {LEEWAY_S:g} s is allowed"
    )
    used = await use_until_refused(env, rec, presentation(target, issued), end)
    rec.figure(f"requests_accepted.{name}", used.accepted)
    rec.figure(f"connections_opened.{name}", used.opened)
    if used.late_accept:
        return Part(False, f"{name} accepted the token more than {LEEWAY_S:g} s after its exp")
    if used.refusal is None:
        return Part(False, f"{name} never refused the token after its expiry")
    result, seen_at = used.refusal
    after_ms = (seen_at - exp) * 1000
    rec.figure(f"refused_after_exp_ms.{name}", after_ms)
    rec.event(f"{name}: refused {after_ms:.0f} ms after exp: {shown(result)}")
    problems = []
    if used.accepted == 0:
        problems.append("the token was refused before it expired (never accepted)")
    if after_ms < 0:
        problems.append(f"refused {-after_ms:.0f} ms before exp ({shown(result)})")
    if used.opened != 1:
        problems.append(f"not on the same connection ({used.opened} opened)")
    if problems:
        return Part(False, f"{name}: " + "; ".join(problems))
    return Part(
        True,
        f"{name} accepted the token {used.accepted} times on one kept-alive connection, then "
        f"refused it {after_ms:.0f} ms after exp ({result.reason})",
    )


async def revocation(env: ScenarioEnv, rec: Recorder, target: Target) -> Part:
    """See the module docstring."""
    name = target.service
    token = mint(env, target)
    what = presentation(target, token)
    before = await call(env, what)
    rec.event(f"{target.describe()} with a fresh token: {shown(before)}")
    if before.outcome != "allowed":
        return Part(False, f"{name}: the fresh token was refused before revocation")
    status = await env.view.revoke_token(token, as_caller=target.caller)
    rec.event(f"{target.caller} revoked its {name} token at the token service: HTTP {status}")
    if status != 200:
        return Part(False, f"{name}: the token service answered HTTP {status} to the revocation")
    result, waited, attempts = await poll(env, what, allowed=False, give_up_s=PROPAGATION_GIVE_UP_S)
    elapsed = waited * 1000
    rec.figure(
        f"accepted_after_revoke.{name}", attempts - 1 if result.outcome != "allowed" else attempts
    )
    if result.outcome == "allowed":
        return Part(
            False,
            f"{name} still accepted the revoked token after {elapsed:.0f} ms ({attempts} requests)",
        )
    rec.figure(f"propagation_ms.{name}", elapsed)
    rec.note(f"{name}: refused the revoked token after {elapsed:.1f} ms: {shown(result)}")
    if elapsed > PROPAGATION_BUDGET_MS:
        return Part(
            False,
            f"{name} took {elapsed:.0f} ms to refuse the revoked token "
            f"(budget {PROPAGATION_BUDGET_MS:.0f} ms)",
        )
    return Part(True, f"{name} (introspection) refused the revoked token after {elapsed:.1f} ms")
