"""Faults of the token side: the identity provider going away (``idp-outage``) and a signing key
compromised (``key-compromise``). Each states what must happen and checks it (`Run.expect`).

``idp-outage`` — the token service stopped (nothing listens), answering 500, or slow:

* a new token cannot be had (stopped, error) or comes late (slow);
* the gateways hold the signing keys in memory, so tokens already issued are judged as before:
  the steady state on gateway-protected services must hold throughout;
* an egress proxy whose token is dropped cannot get a new one and refuses the call (503,
  ``token-unavailable``) — it never forwards without a token;
* a ``gateway: none`` service that asks the token service about each token
  (``ingress.revocation: introspection``) must refuse what it cannot check: allowing it is
  failing open (the deliberate twin of the PyJWT example does exactly that);
* after the rollback, token requests succeed again (the recovery time is a figure).

``key-compromise`` — emergency rotation without overlap: the active key removed at once. Its
tokens are refused at every gateway on the first request after (``token-unknown-kid``), the
JWKS no longer lists it, tokens of the new key are accepted, services validating tokens
themselves refuse it once they have reread the key files (within ``recover_within``). Egress
proxies still hold tokens of the removed key; the rollback drops them (they fetch new ones).

``network-fault`` on the token-service link (`token_path_fault`: latency, loss or resets on the
way to the token service) is judged by ``idp-outage``'s checks; `trustproof.chaos.faults_network`
chooses the link (``network_fault``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Literal

from trustproof.chaos.experiment import FaultResult, Run
from trustproof.chaos.scenario import (
    ScenarioEnv,
    Target,
    call,
    mint,
    own_validators,
    presentation,
    shown,
    targets,
)
from trustproof.chaos.selection import selected
from trustproof.chaos.steady import Probe
from trustproof.plan import expected_matrix
from trustproof.probes.model import Result
from trustproof.probes.presentation import Presentation, concrete
from trustproof.scrub import Secret
from trustproof.view.chaos import IdpFault, NetFault, TokenFetch

DEFAULT_DELAY_S = 2.0
DEFAULT_LATENCY_S = 0.2
DEFAULT_LOSS_PERCENT = 50
FETCH_POLL_S = 0.05
UNKNOWN_KID = "token-unknown-kid"


@dataclass(frozen=True)
class Edge:
    """A call a workload makes through its egress proxy: an allowed operation on its callee."""

    caller: str
    callee: str
    operation: str

    def presentation(self) -> Presentation:
        method, _, template = self.operation.partition(" ")
        return Presentation(
            self.caller, self.callee, method, concrete(template), None, door="egress"
        )

    def describe(self) -> str:
        return f"{self.caller} -> {self.callee} {self.operation} (egress proxy)"


def edges(env: ScenarioEnv, target: str | None) -> tuple[Edge, ...]:
    """One allowed GET per egress edge touching `target` (an edge allowing no GET is left out:
    an experiment repeats its calls, and only reads are safe to repeat)."""
    found = []
    matrix = {b.name: b for b in expected_matrix(env.spec) if b.kind == "service"}
    for caller, callee in env.view.egress_edges():
        if target is not None and target not in (caller, callee):
            continue
        boundary = matrix.get(callee)
        cells = [
            c
            for c in (boundary.cells if boundary else ())
            if c.allowed and c.caller == caller and c.operation.startswith("GET ")
        ]
        if cells:
            found.append(Edge(caller, callee, min(c.operation for c in cells)))
    return tuple(found)


async def egress_round(run: Run, chosen: tuple[Edge, ...], phase: str) -> list[Result]:
    results = []
    for edge in chosen:
        result = await call(run.env, edge.presentation())
        run.requests += 1
        run.rec.event(f"{phase}: {edge.describe()}: {shown(result)}")
        results.append(result)
    return results


async def _fetch(run: Run, asker: tuple[str, str], phase: str) -> TokenFetch:
    fetched = await run.env.view.fetch_token(*asker)
    run.requests += 1
    status = fetched.status if fetched.status is not None else "no answer"
    run.rec.event(
        f"{phase}: token request for {asker[0]} -> {asker[1]}: {status} {fetched.detail} "
        f"in {fetched.elapsed_ms:.0f} ms"
    )
    return fetched


Answers = Literal["none", "late", "some"]  # what token requests get while the fault holds


@dataclass(frozen=True)
class _Outage:
    label: str  # "token service stopped"
    answers: Answers
    late_ms: float  # with "late": at least this late
    edges: tuple[Edge, ...]
    introspecting: dict[str, Target]
    asker: tuple[str, str] | None  # whose token request is watched (None: no egress edge)
    fault: Callable[[], AbstractAsyncContextManager[None]]


def _outage(
    run: Run,
    label: str,
    answers: Answers,
    late_ms: float,
    fault: Callable[[], AbstractAsyncContextManager[None]],
) -> _Outage:
    spec, target = run.env.spec, run.experiment.target
    chosen = edges(run.env, target)
    return _Outage(
        label,
        answers,
        late_ms,
        chosen,
        selected(run, targets(spec, own_validators(spec, revocation="introspection"))),
        (chosen[0].caller, chosen[0].callee) if chosen else None,
        fault,
    )


async def idp_outage(run: Run) -> FaultResult:
    experiment, view = run.experiment, run.env.view
    delay = experiment.delay.seconds if experiment.delay is not None else DEFAULT_DELAY_S
    mode = experiment.mode if experiment.mode in ("error", "slow") else "stopped"
    fault = IdpFault(mode, delay)
    answers: Answers = "late" if mode == "slow" else "none"
    label = f"token service {mode}"
    return await _token_path(
        run, _outage(run, label, answers, delay * 900, lambda: view.token_service_fault(fault))
    )


async def token_path_fault(run: Run) -> FaultResult:
    """``network-fault`` with ``link: token-service`` (`trustproof.chaos.faults_network`)."""
    experiment, view = run.experiment, run.env.view
    mode = experiment.mode if experiment.mode in ("latency", "loss") else "reset"
    latency = experiment.latency.seconds if experiment.latency is not None else DEFAULT_LATENCY_S
    loss = (experiment.loss if experiment.loss is not None else DEFAULT_LOSS_PERCENT) / 100
    fault = NetFault(mode, latency_s=latency, loss=loss)
    answers: Answers = "late" if mode == "latency" else "some" if mode == "loss" else "none"
    label = {
        "latency": f"{latency * 1000:.0f} ms latency",
        "loss": f"{loss:.0%} connection loss",
        "reset": "every connection reset",
    }[mode] + " on the way to the token service"
    return await _token_path(
        run, _outage(run, label, answers, latency * 900, lambda: view.token_path_fault(fault))
    )


async def _token_path(run: Run, outage: _Outage) -> FaultResult:
    rec, chosen = run.rec, outage.edges
    if outage.asker is not None:
        before = await _fetch(run, outage.asker, "before")
        run.expect(before.ok, "no token could be had before the fault")
    warmed = await egress_round(run, chosen, "before (the proxy fetches and caches a token)")
    for edge, result in zip(chosen, warmed, strict=True):
        run.expect(result.outcome == "allowed", f"before the fault: {edge.describe()} refused")
    holding = tuple(p for p in run.probes if p.service not in outage.introspecting)
    start = time.perf_counter()
    async with outage.fault():
        rec.event(f"FAULT: {outage.label}")
        await _during_outage(run, outage, holding)
        await run.hold(start)
    rec.event("ROLLBACK: the token service serves again on its own address")
    rec.figure("outage_ms", (time.perf_counter() - start) * 1000)
    if outage.asker is not None:
        await _recover_fetch(run, outage.asker)
    after = await egress_round(run, chosen, "after (the proxy fetches a new token)")
    for edge, result in zip(chosen, after, strict=True):
        run.expect(result.outcome == "allowed", f"after the rollback: {edge.describe()} refused")
    parts = [outage.label]
    if outage.asker is not None:
        parts.append({"none": "new tokens refused", "late": "new tokens came late",
                      "some": "token requests judged one by one"}[outage.answers])  # fmt: skip
    if holding:
        parts.append(f"{len(holding)} gateway cells held")
    if chosen and outage.answers == "none":
        parts.append(f"{len(chosen)} egress call(s) without a cached token refused (503)")
    elif chosen:
        parts.append(f"{len(chosen)} egress call(s) without a cached token never forwarded bare")
    if outage.introspecting and outage.answers == "none":
        parts.append(f"{len(outage.introspecting)} introspecting service(s) refused")
    return FaultResult(", ".join(parts))


async def _during_outage(run: Run, outage: _Outage, holding: tuple[Probe, ...]) -> None:
    env, rec = run.env, run.rec
    if outage.asker is not None:
        during = await _fetch(run, outage.asker, "during")
        rec.figure("token_request_ms_during", during.elapsed_ms)
        if outage.answers == "late":
            run.expect(
                during.ok and during.elapsed_ms >= outage.late_ms,
                f"with {outage.label} a token request got {during.status} in "
                f"{during.elapsed_ms:.0f} ms (expected a token, late)",
            )
        elif outage.answers == "none":
            run.expect(not during.ok, f"a new token was issued with {outage.label}")
    await run.steady("during (the gateways hold the keys)", probes=holding)
    cached = await egress_round(run, outage.edges, "during, with the proxy's cached token")
    rec.figure("egress_cached_allowed", sum(r.outcome == "allowed" for r in cached))
    env.view.drop_cached_tokens()
    rec.event("the egress proxies' cached tokens dropped (as if due for renewal)")
    uncached = await egress_round(run, outage.edges, "during, without a cached token")
    rec.figure("egress_uncached_allowed", sum(r.outcome == "allowed" for r in uncached))
    for edge, result in zip(outage.edges, uncached, strict=True):
        if outage.answers == "late":
            run.expect(result.outcome == "allowed", f"{edge.describe()}: {shown(result)}")
        elif outage.answers == "none":
            run.expect(
                result.outcome != "allowed",
                f"{edge.describe()} was forwarded although no token could be had: fail-open",
            )
    for name, target in outage.introspecting.items():
        result = await call(env, presentation(target, mint(env, target)))
        run.requests += 1
        rec.event(f"during: {target.describe()} (introspection): {shown(result)}")
        if outage.answers == "none":
            run.expect(
                result.outcome != "allowed",
                f"{name} allowed a token it could not introspect ({outage.label}): it fails open",
            )


async def _recover_fetch(run: Run, asker: tuple[str, str]) -> None:
    start = time.perf_counter()
    bound = run.experiment.recover_within.seconds
    while True:
        fetched = await run.env.view.fetch_token(*asker)
        run.requests += 1
        elapsed = time.perf_counter() - start
        if fetched.ok:
            run.rec.figure("token_service_recovery_ms", elapsed * 1000)
            run.rec.event(f"after: a token issued again {elapsed * 1000:.0f} ms after rollback")
            return
        if elapsed > bound:
            run.expect(False, f"no token could be had {bound:g} s after the rollback")
            return
        await asyncio.sleep(FETCH_POLL_S)


async def key_compromise(run: Run) -> FaultResult:
    env, rec, view = run.env, run.rec, run.env.view
    gated = selected(run, targets(env.spec, view.gateways()))
    own = selected(run, targets(env.spec, own_validators(env.spec)))
    if not gated and not own:
        return FaultResult("no service checks tokens", skipped=True)
    every = {**gated, **own}
    old_tokens = {name: mint(env, target) for name, target in every.items()}
    for name, target in every.items():
        result = await call(env, presentation(target, old_tokens[name]))
        run.requests += 1
        run.expect(result.outcome == "allowed", f"{name} refused a valid token: {shown(result)}")
    chosen = edges(env, run.experiment.target)
    await egress_round(run, chosen, "before (the proxies cache tokens of the active key)")
    old, new = view.compromise_signing_key()
    start = time.perf_counter()
    rec.event("FAULT: the active signing key is compromised; emergency rotation, no overlap")
    for name in gated:
        await _gateway_refuses(run, name, gated[name], old_tokens[name], start)
    published = await view.published_kids()
    run.expect(old not in published, "the removed key is still in the JWKS")
    run.expect(new in published, "the new key is not in the JWKS")
    # A proxy still holding a token of the removed key is refused at the callee's gateway; one
    # that renews at once is served. Either is closed: reported, not judged.
    stale = await egress_round(run, chosen, "egress, the proxies' tokens not renewed")
    rec.figure("egress_refused_before_renewal", sum(r.outcome != "allowed" for r in stale))
    for name, target in own.items():
        await _own_refuses(run, name, target, old_tokens[name])
    # Service-to-service calls carry the proxies' cached tokens, all of the removed key: they
    # fail (closed) until the proxies renew. Counted, not judged.
    await run.steady("before the proxies renew", must_hold=False)
    await run.hold(start)
    view.drop_cached_tokens()
    rec.event("ROLLBACK: the egress proxies drop their tokens and fetch tokens of the new key")
    renewed = await egress_round(run, chosen, "egress after renewal")
    for edge, result in zip(chosen, renewed, strict=True):
        run.expect(result.outcome == "allowed", f"after renewal: {edge.describe()} refused")
    for name, target in gated.items():
        fresh = await call(env, presentation(target, mint(env, target)))
        run.requests += 1
        run.expect(fresh.outcome == "allowed", f"{name}: the new key's token: {shown(fresh)}")
    where = [f"at {len(gated)} gateway(s) on the first request"] if gated else []
    if own:
        where.append(f"by {len(own)} service(s) checking tokens themselves")
    renewal = (
        f"; {run.failed} request(s) failed closed until the egress proxies renewed"
        if chosen
        else ""
    )
    return FaultResult(
        f"the removed key's tokens refused {' and '.join(where)}{renewal}; the new key's "
        "tokens accepted"
    )


async def _gateway_refuses(
    run: Run, name: str, target: Target, token: Secret[str], since: float
) -> None:
    result = await call(run.env, presentation(target, token))
    run.requests += 1
    run.rec.figure(f"refused_after_ms.{name}", (time.perf_counter() - since) * 1000)
    run.rec.event(f"{name}, the removed key's token: {shown(result)}")
    run.expect(
        result.outcome != "allowed" and result.reason == UNKNOWN_KID,
        f"{name}: the removed key's token on the first request after: {shown(result)}",
    )


async def _own_refuses(run: Run, name: str, target: Target, token: Secret[str]) -> None:
    """A service validating tokens itself refuses the removed key's token once it reread the
    key files (the sandbox rewrites them and reloads it): polled up to `recover_within`."""
    env, start = run.env, time.perf_counter()
    bound = run.experiment.recover_within.seconds
    while True:
        result = await call(env, presentation(target, token))
        run.requests += 1
        elapsed = time.perf_counter() - start
        if result.outcome != "allowed":
            run.rec.figure(f"refused_after_ms.{name}", elapsed * 1000)
            run.rec.event(f"{name} refused the removed key's token after {elapsed * 1000:.0f} ms")
            return
        if elapsed > bound:
            run.expect(False, f"{name} still accepted the removed key's token after {bound:g} s")
            return
        await asyncio.sleep(FETCH_POLL_S)
