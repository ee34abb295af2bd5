"""Faults of the trust material servers trustproof did not write read for themselves.

``jwks-wrong-keys`` — the identity provider publishes well-formed keys it does not hold (a
misconfiguration: the wrong key set deployed). The wrong set holds an EC key under the active
key's ``kid`` (the right kid, another public key) and an EC and an RSA key under kids of their
own. The token service serves it at ``/jwks.json``, and the key files of every service validating
tokens itself (``gateway: none``, ``token: required``) hold it; the services are told (reload).

* the gateways hold the signing keys in memory: the steady state on them must hold throughout;
* a service reading the wrong set must refuse what no key of the issuer signed — a broken
  signature under the active kid, ``alg: none``, and the *kid confusion* tokens: a kid the set
  does not hold (signed by a key nobody published), and the same with the signer's public key in
  a ``jwk`` header. A service that skips the signature check, or trusts a key the token brings,
  when it finds no key for the kid, fails open;
* a valid token (the real issuer's) is refused (fail closed) or accepted (the service kept its
  last good keys): either is reported;
* after the rollback a valid token is accepted again within ``recover_within``.

A token signed by a key the wrong set publishes, under its own kid, would be accepted by anyone
trusting the set: that is what publishing a key means (a key substitution), not a fault of the
service, so it is not sent. Key *rotation* on these services — the new key's tokens accepted
after the reload, the old key's refused once it is pruned — is ``lifecycle.key-rotation``'s part
for them (`trustproof.chaos.own`).

``crl-fault`` — services terminating mutual TLS themselves (``gateway: none``, client
certificate required, a ``reload:``) read ``TRUSTPROOF_CRL_FILE``. A fresh certificate of the
caller is revoked first and must be refused within `CRL_WAIT_S` (else the service does not check
CRLs: nothing to learn, and a problem). Then, on new handshakes:

* ``stale`` — the CA's CRL, still listing the revoked certificate, its nextUpdate passed: the
  revoked certificate stays refused, and once the service has reloaded every certificate is
  refused within `CRL_WAIT_S` (a CRL past nextUpdate cannot say what was revoked since:
  fail closed). A service still serving on it fails;
* ``missing`` — the file removed: the revoked certificate stays refused while the service is
  watched for `MISSING_WATCH_S`; a valid one accepted (the service kept its last CRL, as nginx
  and the PyJWT example do when their reload fails) or refused (closed) is reported;
* after each rollback (the CA's CRL back) a valid certificate is accepted again within
  ``recover_within``.

The gateways hold revocations in memory (they never read a CRL file): a spec without such a
service skips ``crl-fault``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from dataclasses import replace
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from trustproof.chaos.experiment import FaultResult, Run
from trustproof.chaos.faults_keys import _accepts_again
from trustproof.chaos.scenario import (
    REFUSALS_IN_A_ROW,
    Target,
    call,
    mint,
    presentation,
    shown,
    targets,
)
from trustproof.chaos.selection import key_file_readers, selected
from trustproof.probes.presentation import Presentation
from trustproof.scrub import Secret
from trustproof.tokens.forged import AttackerKeys, ForgedTokens
from trustproof.view import ClientCert
from trustproof.view.chaos import CrlMode, WrongKeys

SETTLE_S = 0.5  # a SIGHUP reload is asynchronous: time for the service to read its files
POLL_S = 0.05
CRL_WAIT_S = 5.0  # for a service to reload a CRL (fresh or stale) and refuse on it (loaded CI)
MISSING_WATCH_S = 4.0  # how long a service without its CRL file is watched (a reload is async)
# Without a mode both run, missing first: a server that refuses a reload (nginx without its CRL
# file) keeps the configuration it has, and right after the stale CRL's rollback that may still
# be the stale one (nginx's previous workers linger a moment), which would judge the wrong thing.
CRL_MODES: tuple[CrlMode, ...] = ("missing", "stale")
# An RSA-2048 public key (n, e = 65537) whose private key was thrown away when it was made:
# nobody can sign with it. A constant because making an RSA key takes up to a second.
WRONG_RSA_N = (
    "tjAduQYLDYkwrNllBSziBYko8enswyEIcj6nojtSdt7y1MdZKX_rx8DlI2V_dHWQ68onp9BRfnDdYfW7"
    "6TBuVNI-Q85rsn9mNhtrDqljZEFSn4_j29NtgE-V-xUZslwUwPS6Yl2342uJ_aKGjyLJJzRPYT0xE3Y6"
    "6DLEP98P9yLLSv_zJLTzOa9o-pu_sUVX3As-SjoP0SUi6djZH_fTsN7Hq84usvWzU7k3Yx-Ixw4a8QWK"
    "1-Q70E9bwNl0HybARebZDAaYZpvfeir9cwN2o-qP6DlcOk7LivO2FWZbfSdn7h0_8454ZhesNdiX-2Gs"
    "l6C_bdY8mOB3n8KyQn8U6Q"
)

# -- jwks-wrong-keys ----------------------------------------------------------------------------


def _b64(number: int, size: int = 0) -> str:
    """A JWK integer: big-endian, `size` bytes (EC coordinates) or as few as it takes."""
    raw = number.to_bytes(size or max(1, (number.bit_length() + 7) // 8), "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _pem(key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def wrong_keys(active_kid: str) -> WrongKeys:
    """Three public keys nobody holds a private key for: EC P-256 under `active_kid`, EC P-256
    (made now, the private key dropped) and RSA-2048 (`WRONG_RSA_N`) under fresh kids; as a JWK
    Set and as PEM."""
    suffix = secrets.token_hex(4)
    first = ec.generate_private_key(ec.SECP256R1()).public_key()
    second = ec.generate_private_key(ec.SECP256R1()).public_key()
    modulus = int.from_bytes(base64.urlsafe_b64decode(WRONG_RSA_N + "=" * (-len(WRONG_RSA_N) % 4)))
    third = rsa.RSAPublicNumbers(65537, modulus).public_key()
    jwks: list[dict[str, Any]] = []
    for kid, key in ((active_kid, first), (f"chaos-wrong-ec-{suffix}", second)):
        numbers = key.public_numbers()
        jwks.append({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
                     "x": _b64(numbers.x, 32), "y": _b64(numbers.y, 32)})  # fmt: skip
    rsa_numbers = third.public_numbers()
    rsa_kid = f"chaos-wrong-rsa-{suffix}"
    jwks.append({"kty": "RSA", "kid": rsa_kid, "use": "sig", "alg": "RS256",
                 "n": _b64(rsa_numbers.n), "e": _b64(rsa_numbers.e)})  # fmt: skip
    body = json.dumps({"keys": jwks}, indent=2, sort_keys=True).encode() + b"\n"
    kids = tuple(str(k["kid"]) for k in jwks)
    return WrongKeys(body, (_pem(first), _pem(second), _pem(third)), kids)


def _unsigned_by_issuer(run: Run, target: Target) -> tuple[tuple[str, Secret[str]], ...]:
    """Tokens no key of the issuer signed, the kid-confusion ones among them."""
    view = run.env.view
    template = view.token_template(target.caller, target.service, bound=target.with_cert)
    attacker = AttackerKeys.generate(view.clock)
    return (
        ("a broken signature under the active kid", template.bad_signature().token),
        ("alg none", template.alg_none().token),
        ("a kid the JWKS lacks (signed by a key nobody published)", template.unknown_kid().token),
        (
            "a kid the JWKS lacks, the signer's key in a jwk header",
            ForgedTokens(template, attacker).embedded_jwk().token,
        ),
    )


async def jwks_wrong_keys(run: Run) -> FaultResult:
    env, rec, view = run.env, run.rec, run.env.view
    own = key_file_readers(run)
    gated = set(view.gateways())
    holding = tuple(p for p in run.probes if p.service in gated)
    if not own and not holding:
        return FaultResult("no service checks tokens", skipped=True)
    any_target = next(iter(own.values()), None)
    template_for = any_target or next(iter(targets(env.spec, gated).values()), None)
    if template_for is None:
        return FaultResult("no allowed call to check tokens on", skipped=True)
    active = view.token_template(
        template_for.caller, template_for.service, bound=template_for.with_cert
    ).active_key.kid
    keys = wrong_keys(active)
    kept: list[str] = []
    start = time.perf_counter()
    async with view.jwks_wrong_keys(tuple(own), keys):
        where = f"; the key files of {', '.join(own)} hold them, reload requested" if own else ""
        rec.event(
            f"FAULT: the token service publishes {len(keys.kids)} keys it does not hold (one "
            f"under the active kid, EC and RSA){where}"
        )
        published = await view.published_kids()
        run.requests += 1
        run.expect(
            set(published) == set(keys.kids),
            f"the fault is not in force: the token service publishes {', '.join(published)}",
        )
        if holding:
            await run.steady("during (the gateways hold the keys in memory)", probes=holding)
        if own:
            await asyncio.sleep(SETTLE_S)
        for name, target in own.items():
            if await _judge_own(run, name, target):
                kept.append(name)
        await run.hold(start)
    rec.event("ROLLBACK: the token service publishes its own keys; the real key files written "
              "back, reload requested")  # fmt: skip
    for name, target in own.items():
        await _accepts_again(run, name, target)
    parts = ["the token service published keys it does not hold"]
    if holding:
        parts.append(f"{len(holding)} gateway cells held (keys in memory)")
    if own:
        parts.append(f"{len(own)} service(s) refused every token no issuer key signed")
    if kept:
        parts.append(f"kept their last good keys: {', '.join(kept)}")
    if closed := [name for name in own if name not in kept]:
        parts.append(f"refused the issuer's valid tokens (fail closed): {', '.join(closed)}")
    return FaultResult("; ".join(parts))


async def _judge_own(run: Run, name: str, target: Target) -> bool:
    """Send the forged tokens (each must be refused) and a valid one; did it accept the valid
    token (kept its last good keys)?"""
    env, rec = run.env, run.rec
    for kind, token in _unsigned_by_issuer(run, target):
        result = await call(env, presentation(target, token))
        run.requests += 1
        rec.event(f"{name}, a token with {kind}: {shown(result)}")
        run.expect(
            result.outcome != "allowed",
            f"{name} accepted a token with {kind} while its JWKS held wrong keys: it fails open",
        )
    valid = await call(env, presentation(target, mint(env, target)))
    run.requests += 1
    rec.event(f"{name}, the issuer's valid token: {shown(valid)}")
    rec.figure(f"valid_accepted.{name}", float(valid.outcome == "allowed"))
    return valid.outcome == "allowed"


# -- crl-fault ----------------------------------------------------------------------------------


def crl_readers(run: Run) -> dict[str, Target]:
    """Services terminating mutual TLS themselves that reload their files: one allowed cell
    each."""
    spec = run.env.spec
    names = tuple(
        name
        for name, service in spec.services.items()
        if service.ingress.gateway == "none"
        and service.ingress.client_cert == "required"
        and service.reload != "none"
    )
    return selected(run, targets(spec, names))


def _with_cert(run: Run, target: Target, kind: Literal["valid", "revoked"]) -> Presentation:
    """The target's call on a new handshake with the caller's `kind` ("valid" or "revoked")
    certificate, and a token bound to that certificate where the service requires one."""
    env = run.env
    cert = ClientCert(target.caller, kind)
    token: Secret[str] | None = None
    if env.spec.services[target.service].ingress.token == "required":  # noqa: S105 (a setting)
        svid = env.view.broken_cert(cert.kind, target.caller)
        template = env.view.token_template(target.caller, target.service, bound=True)
        token = replace(template, cnf_x5t_s256=svid.x5t_s256).valid().token
    base = presentation(target, token, fresh=True)
    return replace(base, cert=cert)


async def _poll(run: Run, what: Presentation, *, allowed: bool, give_up_s: float) -> bool:
    """Send `what` on new handshakes until it is allowed (or refused `REFUSALS_IN_A_ROW` times in
    a row, with `allowed` False: a reload's reset is not a refusal); whether it came to that
    within `give_up_s`."""
    start, in_a_row = time.perf_counter(), 0
    needed = 1 if allowed else REFUSALS_IN_A_ROW
    while True:
        result = await call(run.env, what)
        run.requests += 1
        in_a_row = in_a_row + 1 if (result.outcome == "allowed") == allowed else 0
        if in_a_row >= needed:
            return True
        if time.perf_counter() - start > give_up_s:
            return False
        await asyncio.sleep(POLL_S)


async def crl_fault(run: Run) -> FaultResult:
    rec, view = run.rec, run.env.view
    readers = crl_readers(run)
    if not readers:
        return FaultResult(
            "no service terminates mutual TLS itself with a CRL file it reloads (the gateways "
            "hold revocations in memory)",
            skipped=True,
        )
    modes = (run.experiment.mode,) if run.experiment.mode in CRL_MODES else CRL_MODES
    bound = run.experiment.recover_within.seconds
    checking: dict[str, Target] = {}
    for name, target in readers.items():
        # A valid certificate served first: a refusal for another cause (a token refused while
        # the service is still reloading keys a previous experiment changed) says nothing of
        # its CRL, and would pass for one.
        serving = await _poll(run, _with_cert(run, target, "valid"), allowed=True,
                              give_up_s=bound)  # fmt: skip
        if not run.expect(serving, f"{name} refused a valid certificate before the fault"):
            continue
        view.broken_cert("revoked", target.caller)  # revoked where every boundary sees it
        refused = await _poll(run, _with_cert(run, target, "revoked"), allowed=False,
                              give_up_s=CRL_WAIT_S)  # fmt: skip
        rec.event(f"before: {target.caller}'s revoked certificate at {name}: "
                  f"{'refused' if refused else 'ALLOWED'}")  # fmt: skip
        if run.expect(refused, f"{name} accepted a revoked certificate before the fault: it "
                      "does not check the CRL"):  # fmt: skip
            checking[name] = target
    outcomes: list[str] = []
    for mode in modes if checking else ():
        start = time.perf_counter()
        async with view.crl_fault(tuple(checking), mode):
            what = "past its nextUpdate" if mode == "stale" else "removed"
            rec.event(f"FAULT: the CRL file of {', '.join(checking)} {what}; reload requested")
            for name, target in checking.items():
                outcomes.append(await _during_crl(run, mode, name, target))
            await run.hold(start)
        rec.event(f"ROLLBACK ({mode}): the CA's CRL written back; reload requested")
        for name, target in checking.items():
            back = await _poll(run, _with_cert(run, target, "valid"), allowed=True,
                               give_up_s=bound)  # fmt: skip
            rec.event(f"after ({mode}): {name} {'accepts' if back else 'still refuses'} a valid "
                      "certificate")  # fmt: skip
            run.expect(back, f"{name} still refused a valid certificate {bound:g} s after the "
                       f"CRL was put back ({mode})")  # fmt: skip
    if not checking:
        return FaultResult("no service refused the revoked certificate before the fault")
    return FaultResult(f"{len(checking)} service(s) kept the revoked certificate refused; "
                       + "; ".join(outcomes))  # fmt: skip


async def _during_crl(run: Run, mode: CrlMode, name: str, target: Target) -> str:
    """Check one service while its CRL is stale or missing; what it did, for the summary."""
    rec = run.rec
    revoked, valid = _with_cert(run, target, "revoked"), _with_cert(run, target, "valid")
    window = CRL_WAIT_S if mode == "stale" else MISSING_WATCH_S
    start = time.perf_counter()
    valid_allowed, valid_refused, refusal_shown = True, 0, False
    while True:
        result = await call(run.env, revoked)
        run.requests += 1
        if result.outcome == "allowed":
            rec.event(f"{name}, the revoked certificate, CRL {mode}: {shown(result)}")
            run.expect(False, f"{name} accepted a revoked certificate with its CRL {mode}: "
                       "revocation no longer checked")  # fmt: skip
            return f"{name} let the revoked certificate in (CRL {mode})"
        if not refusal_shown:
            refusal_shown = True
            rec.event(f"{name}, the revoked certificate, CRL {mode}: {shown(result)}")
        answer = await call(run.env, valid)
        run.requests += 1
        valid_allowed = answer.outcome == "allowed"
        valid_refused = 0 if valid_allowed else valid_refused + 1
        elapsed = time.perf_counter() - start
        if mode == "stale" and valid_refused >= REFUSALS_IN_A_ROW:
            rec.event(f"{name}, a valid certificate, CRL stale: {shown(answer)} "
                      f"after {elapsed * 1000:.0f} ms")  # fmt: skip
            rec.figure(f"stale_refused_after_ms.{name}", elapsed * 1000)
            return f"{name} refused every certificate on the stale CRL (fail closed)"
        if elapsed > window:
            rec.event(f"{name}, a valid certificate, CRL {mode}: {shown(answer)}")
            break
        await asyncio.sleep(POLL_S)
    if mode == "stale":
        run.expect(False, f"{name} still accepted certificates {window:g} s after its CRL went "
                   "past nextUpdate: it does not fail closed on a stale CRL")  # fmt: skip
        return f"{name} served on a stale CRL"
    if valid_allowed:
        return f"{name} kept its last CRL when the file went missing"
    return f"{name} refused every certificate without its CRL file (fail closed)"
