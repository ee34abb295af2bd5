"""Faults of the certificate authority: a root rotated mid-traffic (``ca-rotation``), an
intermediate CA revoked (``intermediate-revoked``), a certificate left to expire
(``cert-expiry``). Each states what must happen and checks it (`Run.expect`).

The boundaries checked are the cells where the caller presents a certificate: at each service
behind a gateway, and at each service terminating TLS itself (``gateway: none``) — a third-party
server is judged by what it actually does.

``ca-rotation``, mode ``overlap`` (the default) — under a counted stream of requests
(`chaos.ca_traffic`): a new root is published to every bundle *before* any leaf of it is used;
then every SVID is reissued from it; then the old root is retired (removed from every bundle).
Expected: 0 failed requests throughout, and a caller still presenting a certificate of the
retired root is refused at every boundary (a gateway on the first request; a server reading its
bundle file once it has reloaded, within ``recover_within``). Mode ``no-overlap``: the new root
added, every SVID reissued and the old root retired back to back, with no traffic awaited
between; the requests that fail meanwhile are counted (closed), a caller still presenting an
old-root certificate must be refused — never accepted — and the steady state must return within
``recover_within``.

``intermediate-revoked`` — the sandbox's CA has no intermediate (its roots allow none below
them), so the experiment adds a temporary root with an intermediate under it to every bundle and
CRL file, issues the callers leaves under the intermediate (their egress proxies present them
too) and proves them accepted; then it revokes the intermediate (its root's CRL lists it, the CRL
files are rewritten and the services that reload told). A gateway must refuse such a leaf on the
next request, on a connection opened before the revocation too (it checks revocation on every
request); a server reading the CRL file must refuse it once it has reloaded. The temporary root
is removed from every bundle afterwards.

``cert-expiry`` — each caller gets a leaf that expires within two to three seconds (its
not_after a whole second, inclusive) and nothing renews it (its egress proxies present it; the
sandbox's rotator, renewing at half-life of a minutes-long certificate, does not come due
meanwhile — if it did, the proxies would present a fresh certificate and the experiment would
fail, never pass). If the requests are so slow that a leaf ends before it was shown once, the
experiment learned nothing: an ``error`` (`TooSlow`). Accepted before expiry; refused
after, at every gateway (on the open connection: ``client-cert-expired``; on a new handshake) and
by every server terminating TLS itself.
"""

from __future__ import annotations

import functools
import time
from contextlib import AsyncExitStack
from datetime import timedelta

from trustproof.chaos import polling
from trustproof.chaos.ca_traffic import Traffic, advance, paused, traffic
from trustproof.chaos.experiment import FaultResult, Run
from trustproof.chaos.faults_tokens import edges
from trustproof.chaos.scenario import (
    REFUSALS_IN_A_ROW,
    Target,
    audit_reason,
    call,
    mint,
    presentation,
    shown,
    targets,
)
from trustproof.errors import SandboxError
from trustproof.identity import Svid
from trustproof.probes.model import Result
from trustproof.view import Channel

EXPIRY_TTL = timedelta(seconds=1)  # at least; the leaf's not_after is a whole second
# X.509 times have second precision and not_after is inclusive (RFC 5280): a leaf is expired
# once the second after its not_after has begun.
INCLUSIVE = timedelta(seconds=1)


class TooSlow(SandboxError):
    """The requests took so long that a short-lived certificate ended before it could be shown:
    the experiment learned nothing (an ``error`` result, never a pass or a fail)."""


def _boundaries(run: Run) -> tuple[dict[str, Target], dict[str, Target]]:
    """(behind a gateway, terminating TLS itself): one cell each where a certificate is shown."""
    env, wanted = run.env, run.experiment.target
    gated = {
        name: t
        for name, t in targets(env.spec, env.view.gateways()).items()
        if t.with_cert and wanted in (None, name)
    }
    own = [n for n, s in env.spec.services.items() if s.ingress.gateway == "none"]
    terminating = {
        name: t
        for name, t in targets(env.spec, own).items()
        if t.with_cert and wanted in (None, name)
    }
    return gated, terminating


async def _once(
    run: Run,
    target: Target,
    phase_name: str,
    *,
    channel: Channel | None = None,
    fresh: bool = False,
) -> Result:
    result = await call(
        run.env, presentation(target, mint(run.env, target), fresh=fresh), channel=channel
    )
    run.requests += 1
    run.rec.event(f"{phase_name}: {target.describe()}: {shown(result)}")
    return result


async def _until(run: Run, target: Target, phase_name: str, *, allowed: bool) -> Result:
    """Ask again (fresh handshakes) until `target` answers as wanted or `recover_within` passes:
    a server reading its files learns of a change once it has reloaded them. One acceptance
    proves acceptance; a refusal must hold `REFUSALS_IN_A_ROW` times in a row. An answer that
    failed on our side teaches nothing and is not the one wanted."""
    polled = await polling.until(
        functools.partial(_once, run, target, phase_name, fresh=True),
        lambda result: result.outcome != "error" and (result.outcome == "allowed") == allowed,
        within_s=run.experiment.recover_within.seconds,
        in_a_row=1 if allowed else REFUSALS_IN_A_ROW,
    )
    figure = f"{'accepted' if allowed else 'refused'}_ms.{target.service}"
    run.rec.figure(figure, polled.elapsed_s * 1000)
    return polled.answer


def _expect_refused(run: Run, name: str, result: Result, problem: str) -> bool:
    """A refusal by the server, as `problem` says it must; a request that failed on our side
    (our client refused the server's certificate, say) teaches nothing and is a problem too."""
    if result.outcome == "error":
        return run.expect(False, f"{name}: nothing learned, the request failed: {shown(result)}")
    return run.expect(result.outcome != "allowed", problem)


def _refusal(result: Result) -> str:
    return audit_reason(result) or result.reason or result.outcome


# -- ca-rotation -----------------------------------------------------------------------------


async def ca_rotation(run: Run) -> FaultResult:
    gated, own = _boundaries(run)
    if not gated and not own:
        return FaultResult("no boundary where a caller presents a certificate", skipped=True)
    view, overlap = run.env.view, run.experiment.mode != "no-overlap"
    every = {**gated, **own}
    old_leaves = {t.caller: view.cert(t.caller) for t in every.values()}
    old_roots = view.root_serials()
    async with view.ca_rotation():
        async with traffic(run) as stream:
            await advance(run, stream, "before the rotation")
            added = await view.add_root()
            run.rec.event(
                f"new root trusted in every bundle ({len(added.roots)} roots); "
                f"services told: {', '.join(added.told) or 'none'}"
            )
            if overlap:
                async with paused(stream):
                    await _new_root_trusted(run, own)
                await advance(run, stream, "with the new root only trusted")
            presented = {
                n: await view.presented_serial(n, as_caller=t.caller) for n, t in own.items()
            }
            reissued = await view.issue_from_newest_root()
            run.rec.event(f"the new root issues; {len(reissued)} SVIDs reissued from it")
            if overlap:
                await _new_certificate_served(run, own, presented)
                await advance(run, stream, "every SVID from the new root")
            for serial in old_roots:
                await view.retire_root(serial)
            run.rec.event(
                f"FAULT: the old root retired: removed from every bundle "
                f"({'after the overlap' if overlap else 'at once, no overlap'})"
            )
            async with paused(stream):
                refused = await _old_leaves_refused(run, gated, own, old_leaves)
            await advance(run, stream, "after the old root was retired")
        _judge_traffic(run, stream, overlap)
    run.rec.event("ROLLBACK: every bundle published again, every SVID from the issuing root")
    run.rec.figure("reissued", len(reissued))
    how = "with overlap" if overlap else "without overlap"
    counted = (
        f"{stream.failed} of {stream.total} requests failed" if stream is not None else "no traffic"
    )
    return FaultResult(
        f"root rotated {how}: {counted}; {len(reissued)} SVIDs reissued; a retired-root "
        f"certificate refused at {refused} boundary(ies)"
    )


async def _new_root_trusted(run: Run, own: dict[str, Target]) -> None:
    """Overlap: a server reading its bundle file trusts the new root (it has reloaded) before
    any leaf of it is used — shown a test leaf of the new root until it accepts it."""
    view = run.env.view
    for name, target in own.items():
        view.use_cert(target.caller, view.newest_root_cert(target.caller))
        try:
            result = await _until(run, target, "a new-root test certificate", allowed=True)
        finally:
            view.use_cert(target.caller, None)
        run.expect(
            result.outcome == "allowed",
            f"{name} did not trust the new root {run.experiment.recover_within.seconds:g} s "
            f"after its bundle was rewritten: {shown(result)}",
        )


async def _new_certificate_served(
    run: Run, own: dict[str, Target], before: dict[str, int | None]
) -> None:
    """Overlap: a server reading its certificate files presents its reissued one (it has
    reloaded) before the old root is retired."""
    start, bound = time.perf_counter(), run.experiment.recover_within.seconds
    for name, target in own.items():
        polled = await polling.until(
            functools.partial(run.env.view.presented_serial, name, as_caller=target.caller),
            functools.partial(_changed, before[name]),
            within_s=max(0.0, bound - (time.perf_counter() - start)),
        )
        if polled.reached:
            run.rec.figure(f"reissued_served_ms.{name}", (time.perf_counter() - start) * 1000)
        else:
            run.expect(
                False,
                f"{name} still presented its old certificate {bound:g} s after it was reissued",
            )


def _changed(before: int | None, serial: int | None) -> bool:
    return serial not in (None, before)


def _judge_traffic(run: Run, stream: Traffic | None, overlap: bool) -> None:
    if stream is None:
        return
    run.rec.figure("rotation_requests", stream.total)
    run.rec.figure("rotation_failed", stream.failed)
    for failure in stream.failures:
        run.rec.note(failure)
    if overlap:
        shown_ = f": {stream.failures[0]}" if stream.failures else ""
        run.expect(
            stream.failed == 0,
            f"{stream.failed} of {stream.total} requests failed during the rotation with "
            f"overlap{shown_}",
        )
    else:
        run.failed += stream.failed  # closed while the callers were reissued: counted


async def _old_leaves_refused(
    run: Run, gated: dict[str, Target], own: dict[str, Target], old: dict[str, Svid]
) -> int:
    """Each boundary, shown a certificate of the retired root, must refuse it."""
    view, refused = run.env.view, 0
    for name, target in {**gated, **own}.items():
        view.use_cert(target.caller, old[target.caller])
        try:
            phase_name = "retired-root certificate"
            if name in gated:
                result = await _once(run, target, phase_name, fresh=True)
            else:
                result = await _until(run, target, phase_name, allowed=False)
        finally:
            view.use_cert(target.caller, None)
        ok = _expect_refused(
            run,
            name,
            result,
            f"{name} accepted a certificate of the retired root ({target.describe()}): "
            f"{shown(result)}",
        )
        refused += ok
        if ok:
            run.rec.note(f"{name} refused the retired root's certificate: {_refusal(result)}")
    return refused


# -- intermediate-revoked --------------------------------------------------------------------


async def intermediate_revoked(run: Run) -> FaultResult:
    gated, own = _boundaries(run)
    if not gated and not own:
        return FaultResult("no boundary where a caller presents a certificate", skipped=True)
    view, rec = run.env.view, run.rec
    every = {**gated, **own}
    async with view.temporary_intermediate() as ca, AsyncExitStack() as stack:
        rec.event(f"a temporary root and {ca.describe()} trusted in every bundle and CRL file")
        leaves = {t.caller: view.issue_under(ca, t.caller) for t in every.values()}
        for caller, leaf in leaves.items():
            await stack.enter_async_context(view.hold_cert(caller, leaf))
        channels = {n: await stack.enter_async_context(view.channel()) for n in gated}
        for name, target in gated.items():
            before = await _once(run, target, "before", channel=channels[name])
            run.expect(
                before.outcome == "allowed",
                f"{name} refused a valid leaf under the intermediate: {shown(before)}",
            )
        for name, target in own.items():
            before = await _until(run, target, "accepted", allowed=True)
            run.expect(
                before.outcome == "allowed",
                f"{name} refused a valid leaf under the intermediate: {shown(before)}",
            )
        chosen = [e for e in edges(run.env, run.experiment.target) if e.caller in leaves]
        for edge in chosen:
            result = await call(run.env, edge.presentation())
            run.requests += 1
            rec.event(f"before, egress: {edge.describe()}: {shown(result)}")
        if run.problems:
            return FaultResult("the leaf under the intermediate was not accepted before")
        change = await view.revoke_intermediate(ca)
        rec.event(
            f"FAULT: {ca.describe()} revoked: on its root's CRL, every CRL file rewritten; "
            f"services told: {', '.join(change.told) or 'none'}"
        )
        for name, target in gated.items():
            await _gateway_refuses_revoked(run, name, target, channels[name])
        for name, target in own.items():
            after = await _until(run, target, "refused", allowed=False)
            _expect_refused(
                run,
                name,
                after,
                f"{name} still accepted a leaf under the revoked intermediate "
                f"{run.experiment.recover_within.seconds:g} s after the CRLs were rewritten: "
                "it does not check the chain's revocation",
            )
        for edge in chosen:
            result = await call(run.env, edge.presentation())
            run.requests += 1
            rec.event(f"after, egress: {edge.describe()}: {shown(result)}")
            run.expect(
                result.outcome != "allowed",
                f"{edge.describe()} got through with a leaf under the revoked "
                f"intermediate: {shown(result)}",
            )
    rec.event("ROLLBACK: the temporary root and intermediate removed from every bundle")
    parts = []
    if gated:
        parts.append(
            f"refused at {len(gated)} gateway(s) on the next request, open connections too"
        )
    if own:
        parts.append(f"by {len(own)} server(s) reading the CRL file ({', '.join(own)})")
    return FaultResult("a leaf under a revoked intermediate " + " and ".join(parts))


async def _gateway_refuses_revoked(run: Run, name: str, target: Target, channel: Channel) -> None:
    on_open = await _once(run, target, "after, open connection", channel=channel)
    fresh = await _once(run, target, "after, new connection", fresh=True)
    for how, result in (("on the connection opened before", on_open), ("on a new one", fresh)):
        _expect_refused(
            run,
            name,
            result,
            f"{name} accepted a leaf under the revoked intermediate {how}: {shown(result)}",
        )
    run.rec.figure(f"connections_opened.{name}", channel.connections_opened)
    run.rec.note(f"{name}: open connection {_refusal(on_open)}, new one {_refusal(fresh)}")


# -- cert-expiry -----------------------------------------------------------------------------


async def cert_expiry(run: Run) -> FaultResult:
    gated, own = _boundaries(run)
    if not gated and not own:
        return FaultResult("no boundary where a caller presents a certificate", skipped=True)
    view, rec = run.env.view, run.rec
    every = {**gated, **own}
    leaves = {t.caller: view.short_lived_cert(t.caller, EXPIRY_TTL) for t in every.values()}
    expiry = max(leaf.not_after for leaf in leaves.values()) + INCLUSIVE
    chosen = [e for e in edges(run.env, run.experiment.target) if e.caller in leaves]
    async with AsyncExitStack() as stack:
        for caller, leaf in leaves.items():
            await stack.enter_async_context(view.hold_cert(caller, leaf))
        rec.event(f"{len(leaves)} caller(s) hold a leaf expiring {expiry.isoformat()}, not renewed")
        channels = {n: await stack.enter_async_context(view.channel()) for n in gated}
        early = [
            await _once(run, t, "before expiry", channel=channels.get(n), fresh=n in own)
            for n, t in every.items()
        ]
        for edge in chosen:
            early.append(await call(run.env, edge.presentation()))
            run.requests += 1
        late = view.clock.now() > min(leaf.not_after for leaf in leaves.values())
        for (name, target), result in zip(every.items(), early, strict=False):
            if result.outcome != "allowed" and late:
                raise TooSlow(
                    f"the short-lived leaves ended before {name} could be shown once (the "
                    f"requests took longer than {EXPIRY_TTL.total_seconds():g} s): nothing "
                    "learned; run it on a less loaded machine"
                )
            run.expect(
                result.outcome == "allowed",
                f"{name} refused {target.caller}'s certificate before it expired: {shown(result)}",
            )
        await view.wait_until(expiry)
        rec.event("FAULT: the leaves expired (rotation stopped)")
        for name, target in gated.items():
            on_open = await _once(run, target, "expired, open connection", channel=channels[name])
            fresh = await _once(run, target, "expired, new connection", fresh=True)
            for how, result in (("on an open connection", on_open), ("on a new one", fresh)):
                _expect_refused(
                    run,
                    name,
                    result,
                    f"{name} accepted an expired client certificate {how}: {shown(result)}",
                )
            run.rec.note(f"{name}: open connection {_refusal(on_open)}, new one {_refusal(fresh)}")
        for name, target in own.items():
            result = await _once(run, target, "expired", fresh=True)
            _expect_refused(
                run,
                name,
                result,
                f"{name} accepted an expired client certificate: {shown(result)}",
            )
        for edge in chosen:
            result = await call(run.env, edge.presentation())
            run.requests += 1
            rec.event(f"expired, egress: {edge.describe()}: {shown(result)}")
            run.expect(
                result.outcome != "allowed",
                f"{edge.describe()} got through with an expired certificate: {shown(result)}",
            )
    rec.event("ROLLBACK: every caller presents its current SVID again, rotation resumed")
    where = [f"at {len(gated)} gateway(s)"] if gated else []
    if own:
        where.append(f"by {', '.join(own)} (terminating TLS itself)")
    return FaultResult(
        f"expired client certificates refused {' and '.join(where)}; accepted before expiry"
    )
