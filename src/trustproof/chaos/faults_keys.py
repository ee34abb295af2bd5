"""``jwks-garbage``: the key files a service validating tokens itself reads (its JWKS and the PEM
public keys) replaced by garbage, and the service told to reload.

The gateways hold the signing keys in memory, so this fault is for services without one
(``gateway: none``, ``token: required``); a spec with none skips it. While the files hold
garbage, tokens whose signature cannot be checked — a bad signature, ``alg: none`` — must be
refused: a service that skips verification when it has no usable key fails open. A valid token
may be refused (failing closed) or accepted (the service kept its last good keys): either is
reported. After the rollback (the real files back, the service told again) a valid token must be
accepted within ``recover_within``.
"""

from __future__ import annotations

import asyncio
import time

from trustproof.chaos.experiment import FaultResult, Run
from trustproof.chaos.scenario import (
    Target,
    call,
    mint,
    presentation,
    shown,
)
from trustproof.chaos.selection import key_file_readers
from trustproof.scrub import Secret

SETTLE_S = 0.5  # a SIGHUP reload is asynchronous: time for the service to read its files
POLL_S = 0.05


def _forged(run: Run, target: Target) -> tuple[tuple[str, Secret[str]], ...]:
    template = run.env.view.token_template(target.caller, target.service, bound=target.with_cert)
    return (
        ("bad signature", template.bad_signature().token),
        ("alg none", template.alg_none().token),
    )


async def jwks_garbage(run: Run) -> FaultResult:
    env, rec, view = run.env, run.rec, run.env.view
    own = key_file_readers(run)
    if not own:
        return FaultResult(
            "no service validates tokens itself (the gateways hold the keys in memory)",
            skipped=True,
        )
    kept: list[str] = []
    start = time.perf_counter()
    async with view.jwks_garbage(tuple(own)):
        rec.event(f"FAULT: the key files of {', '.join(own)} hold garbage; reload requested")
        await asyncio.sleep(SETTLE_S)
        for name, target in own.items():
            for kind, token in _forged(run, target):
                result = await call(env, presentation(target, token))
                run.requests += 1
                rec.event(f"{name}, a token with {kind}: {shown(result)}")
                run.expect(
                    result.outcome != "allowed",
                    f"{name} accepted a token with {kind} while its key files held garbage: "
                    "it fails open",
                )
            valid = await call(env, presentation(target, mint(env, target)))
            run.requests += 1
            rec.event(f"{name}, a valid token: {shown(valid)}")
            if valid.outcome == "allowed":
                kept.append(name)
            rec.figure(f"valid_accepted.{name}", float(valid.outcome == "allowed"))
        await run.hold(start)
    rec.event("ROLLBACK: the real key files written back; reload requested")
    for name, target in own.items():
        await _accepts_again(run, name, target)
    closed = [name for name in own if name not in kept]
    parts = [f"{len(own)} service(s) refused forged tokens while their key files held garbage"]
    if kept:
        parts.append(f"kept their last good keys: {', '.join(kept)}")
    if closed:
        parts.append(f"refused every token (fail closed): {', '.join(closed)}")
    return FaultResult("; ".join(parts))


async def _accepts_again(run: Run, name: str, target: Target) -> None:
    start, bound = time.perf_counter(), run.experiment.recover_within.seconds
    while True:
        result = await call(run.env, presentation(target, mint(run.env, target)))
        run.requests += 1
        elapsed = time.perf_counter() - start
        if result.outcome == "allowed":
            run.rec.figure(f"accepted_again_ms.{name}", elapsed * 1000)
            return
        if elapsed > bound:
            run.expect(False, f"{name} still refused a valid token {bound:g} s after the rollback")
            return
        await asyncio.sleep(POLL_S)
