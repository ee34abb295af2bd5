"""Faults of the gateway side: its clock (``clock-skew``), its policy (``policy-corruption``,
``cedar-error``) and its audit log (``audit-sink-down``).

``clock-skew`` — the target's gateway reads the time moved by a skew (its certificate, token and
policy checks; the sandbox's injected clock, `SandboxView.skew_clock`). A fresh token is sent at
each skew and must be accepted exactly when it is valid at the skewed time *with the gateway's
leeway applied* (issued no later than now + leeway, not expired before now - leeway) and the
caller's certificate is valid at the skewed time. Without a ``skew`` the default set probes both
sides of the leeway and far skews both ways.

``policy-corruption`` — the hot reload is offered invalid policy sets (garbage, an empty file, a
policy the schema refuses): each must be rejected, the version in force kept, the attempt
recorded (the audit event an alert rule keys on), and the steady state must hold — the old set
still enforced, never an allow-all.

``cedar-error`` — a policy whose evaluation fails on every request (an integer overflow) is
enforced for a while: every allowed cell must be refused (``policy-error``: the failing policy
might have been a forbid), refused cells too.

``audit-sink-down`` — every gateway's audit sink refuses to record: every request must be
refused with 503 ``audit-unavailable`` (no audit, no request), allowed cells included.
"""

from __future__ import annotations

import time
from datetime import timedelta

from trustproof.chaos.experiment import FaultResult, Run
from trustproof.chaos.scenario import (
    Target,
    call,
    mint,
    own_validators,
    presentation,
    shown,
    targets,
)
from trustproof.chaos.steady import Check, Probe
from trustproof.probes.model import Result

CORRUPTIONS: tuple[tuple[str, str], ...] = (
    ("garbage", "permit (principal, action, resource) when { context.\n"),
    ("empty", ""),
    ("schema-invalid", 'permit (principal == Nobody::"anyone", action, resource);\n'),
)
# Evaluates to an integer overflow for every request (hour_utc >= 0): Cedar reports an error.
ERRORING_POLICY = (
    '@id("chaos-overflow")\n'
    "forbid (principal, action, resource)\n"
    "when { context.hour_utc + 9223372036854775807 + 1 > 0 };\n"
)
FAR = timedelta(hours=1)
BEYOND_LEEWAY = timedelta(seconds=10)
NEAR_AHEAD = timedelta(seconds=60)
# A process's clock (libfaketime): its leeway is unknown, so no skews at its edge.
PROCESS_SKEWS = (NEAR_AHEAD, -BEYOND_LEEWAY, FAR)


def _gateway_probes(run: Run) -> tuple[Probe, ...]:
    gated = set(run.env.view.gateways())
    return tuple(p for p in run.probes if p.service in gated)


def default_skews(leeway: timedelta) -> tuple[timedelta, ...]:
    """Both sides of the leeway behind, a minute ahead (the token still valid), an hour both
    ways."""
    skews = [-(leeway + BEYOND_LEEWAY), NEAR_AHEAD, FAR, -FAR]
    if leeway > timedelta(0):
        skews.insert(0, -leeway / 2)
    return tuple(skews)


async def clock_skew(run: Run) -> FaultResult:
    env, view = run.env, run.env.view
    gated = targets(env.spec, view.gateways())
    own = targets(env.spec, own_validators(env.spec))
    name = run.experiment.target or next(iter(gated), None) or next(iter(own), None)
    skew = run.experiment.skew
    given = (timedelta(seconds=skew.seconds),) if skew is not None else None
    if name is not None and name in gated:
        leeway = view.leeway(name)
        skews = given or default_skews(leeway)
        held = await _skews(run, gated[name], skews, leeway, process=False)
        run.rec.event("ROLLBACK: the gateway reads the sandbox clock again")
        return FaultResult(
            f"{name}'s gateway clock skewed {', '.join(_signed(o) for o in skews)}: "
            f"{held}/{len(skews)} as expected with a {leeway.total_seconds():g} s leeway"
        )
    if name is not None and name in own:
        skews = given or PROCESS_SKEWS
        held = await _skews(run, own[name], skews, timedelta(0), process=True)
        run.rec.event("ROLLBACK: the service runs on the real clock again (restarted)")
        return FaultResult(
            f"{name}'s own clock skewed {', '.join(_signed(o) for o in skews)} (libfaketime): "
            f"{held}/{len(skews)} as a server without leeway should"
        )
    return FaultResult("no service checking tokens to skew the clock of", skipped=True)


async def _skews(
    run: Run, target: Target, skews: tuple[timedelta, ...], leeway: timedelta, *, process: bool
) -> int:
    """Send a fresh token at each skew; how many were judged as expected."""
    env, rec, view = run.env, run.rec, run.env.view
    lifetime = timedelta(seconds=env.spec.ttl.token.seconds)
    name, held = target.service, 0
    for offset in skews:
        if process:
            async with view.skew_process_clock(name, offset):
                result, expected = await _skewed_call(run, target, offset, leeway, lifetime)
        else:
            with view.skew_clock(name, offset):
                result, expected = await _skewed_call(run, target, offset, leeway, lifetime)
        run.requests += 1
        label = _signed(offset)
        rec.event(f"FAULT: {name}'s clock {label}: {shown(result)} (expected "
                  f"{'accepted' if expected else 'refused'})")  # fmt: skip
        if run.expect(
            (result.outcome == "allowed") == expected,
            f"{name} with its clock {label}: {shown(result)}, expected "
            f"{'accepted (within the leeway and lifetimes)' if expected else 'refused'}",
        ):
            held += 1
    return held


async def _skewed_call(
    run: Run, target: Target, offset: timedelta, leeway: timedelta, lifetime: timedelta
) -> tuple[Result, bool]:
    """A fresh token sent now, and whether a server whose clock is `offset` away should take
    it (token valid with the leeway, the caller's certificate valid at the skewed time)."""
    env, view = run.env, run.env.view
    now = view.clock.now()
    token = mint(env, target)
    cert = view.cert(target.caller).certificate if target.with_cert else None
    skewed = now + offset
    token_ok = now <= skewed + leeway and skewed < now + lifetime + leeway
    cert_ok = cert is None or cert.not_valid_before_utc <= skewed <= cert.not_valid_after_utc
    return await call(env, presentation(target, token)), token_ok and cert_ok


def _signed(offset: timedelta) -> str:
    seconds = offset.total_seconds()
    sign = "-" if seconds < 0 else "+"
    seconds = abs(seconds)
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{sign}{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{sign}{seconds / 60:g}m"
    return f"{sign}{seconds:g}s"


async def policy_corruption(run: Run) -> FaultResult:
    rec, view = run.rec, run.env.view
    probes = _gateway_probes(run)
    if not view.gateways():
        return FaultResult("no gateway: no policy to reload", skipped=True)
    start = time.perf_counter()
    for label, text in CORRUPTIONS:
        async with view.hot_reload(text) as outcome:
            rec.event(
                f"FAULT: hot reload offered a {label} policy: {outcome.outcome}, version "
                f"{outcome.version_before} -> {outcome.version_after}"
                + (f" ({outcome.reason[:120]})" if outcome.reason else "")
            )
            run.expect(outcome.outcome == "rejected", f"the {label} policy set was accepted")
            run.expect(
                outcome.version_after == outcome.version_before,
                f"the version in force changed on a {label} policy set",
            )
            run.expect(outcome.recorded, f"the rejected {label} reload left no audit event")
            await run.steady(f"during ({label} policy offered)", probes=probes)
        rec.event("ROLLBACK: the policy set in force before is in force")
    await run.hold(start)
    return FaultResult(
        f"{len(CORRUPTIONS)} invalid policy sets ({', '.join(c for c, _ in CORRUPTIONS)}) "
        "rejected on hot reload, the old set kept and enforced"
    )


async def cedar_error(run: Run) -> FaultResult:
    rec, view = run.rec, run.env.view
    probes = _gateway_probes(run)
    if not probes:
        return FaultResult("no gateway: no policy to break", skipped=True)
    engine = view.policy_with(ERRORING_POLICY)
    start = time.perf_counter()
    with view.override_policy(engine):
        rec.event("FAULT: a policy whose evaluation fails on every request is enforced")
        found = await run.steady("during (evaluation error)", must_hold=False, probes=probes)
        _all_refused(run, found, ("policy-error", "engine-error"), "a policy evaluation error")
        await run.hold(start)
    rec.event("ROLLBACK: the gateways enforce their own policies again")
    return FaultResult(f"{found.requests} requests refused while a policy failed to evaluate")


async def audit_sink_down(run: Run) -> FaultResult:
    rec, view = run.rec, run.env.view
    probes = _gateway_probes(run)
    if not probes:
        return FaultResult("no gateway: no audit sink to fail", skipped=True)
    start = time.perf_counter()
    with view.audit_sink_fault():
        rec.event("FAULT: every gateway's audit sink refuses to record")
        found = await run.steady("during (audit sink down)", must_hold=False, probes=probes)
        _all_refused(run, found, ("audit-unavailable",), "the audit sink down", status=503)
        await run.hold(start)
    rec.event("ROLLBACK: the gateways' audit sinks record again")
    return FaultResult(f"{found.requests} requests refused with 503 while the audit log was down")


def _all_refused(
    run: Run, found: Check, reasons: tuple[str, ...], why: str, *, status: int | None = None
) -> None:
    """Every allowed cell was refused, for one of `reasons` (and with `status`)."""
    for probe, result in found.results:
        if not probe.allowed:
            continue
        run.expect(result.outcome != "allowed", f"{probe.describe()} allowed despite {why}")
        if result.outcome != "allowed":
            run.expect(
                any(_said(result, code) for code in reasons)
                and (status is None or result.evidence.status == status),
                f"{probe.describe()} refused for {shown(result)}, not {' or '.join(reasons)}",
            )


def _said(result: Result, code: str) -> bool:
    """The refusal names `code`: as its reason, or in the text it was read from (a 503 is no
    refusal the answer classifier knows, so the gateway's code stays in that text)."""
    words = f"{result.reason} {result.evidence.detail}".replace("(", " ").replace(")", " ")
    return result.reason == code or code in words.split()
