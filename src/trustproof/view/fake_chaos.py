"""The fake's trust faults: what `FakeView` does while a chaos experiment breaks something, and
how a `FakeServer` with `chaos_flaws` gets it wrong (a server the experiment should catch).

Well configured, the fake behaves as the live sandbox does under each fault:

* token service down (`token_service_fault`): a token request fails (no answer when stopped,
  HTTP 500, or late when slow); an egress proxy without a cached token answers 503
  ``token-unavailable``; a ``gateway: none`` service declaring ``ingress.revocation:
  introspection`` refuses with 503 (it cannot ask); the gateways, which hold the keys, judge
  tokens as before;
* emergency rotation: the key leaves the ring at once (its tokens: ``token-unknown-kid``);
* hot reload of an invalid policy: the real `PolicyReloader` keeps the set in force;
* the audit sink refusing: the gateways refuse with 503 ``audit-unavailable``.

Clock skew moves the clock of the fake's one token validator (the fake has one gateway clock).

The third-party faults act on ``gateway: none`` services only (the gateways hold keys and
revocations in memory):

* wrong keys (`jwks_wrong_keys`): the token service publishes them; a service reading them refuses
  every token (a kid the wrong set lacks: ``token-unknown-kid``; one it has, under another public
  key: ``token-bad-signature``);
* a stale CRL (`crl_fault`): every client certificate refused at the handshake (the CRL has
  expired); a missing one: the service keeps the CRL it had (the revoked certificate refused).

The certificate-authority faults are in `trustproof.view.fake_ca`; the faults in force are
`trustproof.view.fake_state.FakeChaos`.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta

from multidict import CIMultiDict

from trustproof.clock import SkewedClock
from trustproof.policy.cedar import CedarPolicyEngine
from trustproof.policy.engine import AccessRequest, Decision, PolicyEngine
from trustproof.policy.entities import Directory
from trustproof.policy.reload import PolicyReloader, ReloadablePolicyEngine
from trustproof.policy.variants import variant_bundle
from trustproof.scrub import Secret
from trustproof.tokens import TokenValidator
from trustproof.view.chaos import (
    CrlMode,
    IdpFault,
    NetFault,
    NetPath,
    PolicyReload,
    TokenFetch,
    WrongKeys,
)
from trustproof.view.exchange import Exchange, HttpAnswer, HttpRequest
from trustproof.view.fake_state import ISSUER, FakeState


def intercept(view: FakeState, request: HttpRequest) -> Exchange | None:
    """The answer a fault imposes on `request`, or None to decide it as usual."""
    state, flaws = view.chaos_state, view.server.chaos_flaws
    where = f"fake://{request.service}"
    if request.door == "egress" and state.egress_cache_empty:
        if state.unanswered():
            body = b'{"error": "egress_failed", "reason": "token-unavailable"}'
            headers = CIMultiDict({"X-Trustproof-Decision": "egress-error"})
            return HttpAnswer(503, headers, body, where)
        state.egress_cache_empty = False  # the proxy got a fresh token
    service = view.spec.services[request.service]
    introspects = service.ingress.gateway == "none" and service.ingress.revocation == (
        "introspection"
    )
    if introspects and "idp-fail-open" not in flaws and state.unanswered():
        body = b'{"error": "introspection unavailable"}'
        return HttpAnswer(503, CIMultiDict(), body, where)
    if request.service in state.garbage_keys and request.token is not None:
        if "garbage-keys-skip-verify" in flaws:  # no usable key: the signature goes unchecked
            return view._answer(request, 200, "", "allowed", request.caller)
        return view._answer(request, 401, "token", "token-unknown-kid")
    if state.audit_down and request.service in view.gateways() and "audit-fail-open" not in flaws:
        return view._answer(request, 503, "audit", "audit-unavailable")
    return _thirdparty(view, request)


@asynccontextmanager
async def token_service_fault(view: FakeState, fault: IdpFault) -> AsyncIterator[None]:
    view.chaos_state.idp = fault
    try:
        yield
    finally:
        view.chaos_state.idp = None


def fetch_token(view: FakeState) -> TokenFetch:
    state = view.chaos_state
    if not state.unanswered():
        return TokenFetch(200, "", state.late_ms())
    if state.idp is not None and state.idp.mode == "error":
        return TokenFetch(500, "server_error", 1.0)
    return TokenFetch(None, "ClientConnectorError", 0.5)


@asynccontextmanager
async def token_path_fault(view: FakeState, fault: NetFault) -> AsyncIterator[None]:
    view.chaos_state.net = fault
    try:
        yield
    finally:
        view.chaos_state.net = None


def compromise(view: FakeState) -> tuple[str, str]:
    if "keeps-compromised-key" in view.server.chaos_flaws:
        old = view.keys.active.kid
        return old, view.keys.rotate().kid  # overlap kept: the old key still verifies
    old, fresh = view.keys.compromise()
    return old, fresh.kid


@contextmanager
def skew_clock(view: FakeState, offset: timedelta) -> Iterator[None]:
    saved = view.validator
    view.validator = TokenValidator(
        ISSUER, view.keys, view.revocations, SkewedClock(view.clock, offset)
    )
    try:
        yield
    finally:
        view.validator = saved


@asynccontextmanager
async def skew_process_clock(
    view: FakeState, service: str, offset: timedelta
) -> AsyncIterator[None]:
    """A service checking tokens itself reads its skewed clock: the fake's validator does (with
    no leeway: a third-party server's is unknown)."""
    saved = view.validator
    view.validator = TokenValidator(
        ISSUER,
        view.keys,
        view.revocations,
        SkewedClock(view.clock, offset),
        leeway=timedelta(0),
    )
    try:
        yield
    finally:
        view.validator = saved


@asynccontextmanager
async def jwks_garbage(view: FakeState, services: tuple[str, ...]) -> AsyncIterator[None]:
    view.chaos_state.garbage_keys = services
    try:
        yield
    finally:
        view.chaos_state.garbage_keys = ()


class _AllowAll:
    """What a naive reloader falls back to when the new policy does not load."""

    def decide(self, request: AccessRequest) -> Decision:
        return Decision(True, "allowed-by-policy", ("allow-all",), ())


@asynccontextmanager
async def hot_reload(view: FakeState, replacement: str) -> AsyncIterator[PolicyReload]:
    before = view.engine
    if not isinstance(before, CedarPolicyEngine):
        raise TypeError("the fake reloads only its Cedar policies")
    holder = ReloadablePolicyEngine(before)
    spec = view.spec
    reloader = PolicyReloader(
        holder,
        Directory.from_spec(spec),
        fingerprint=lambda: ("chaos",),
        load=lambda: variant_bundle(spec, first=replacement),
        clock=view.clock,
    )
    event = reloader.check("request")
    if event is None:
        raise RuntimeError("a requested reload always decides")
    if event.outcome == "accepted":
        view.engine = holder.current
    elif "reload-allows-all" in view.server.chaos_flaws:
        view.engine = _AllowAll()
    try:
        yield PolicyReload(event.outcome, 1, holder.version, event.reason, True)
    finally:
        view.engine = before


class _ErrorsAllow:
    """An engine that reads a policy-evaluation error as an allow (a fail-open bug)."""

    def __init__(self, engine: PolicyEngine) -> None:
        self.engine = engine

    def decide(self, request: AccessRequest) -> Decision:
        decision = self.engine.decide(request)
        if decision.reason == "policy-error":
            return Decision(True, "allowed-by-policy", decision.policy_ids, ())
        return decision


def policy_with(view: FakeState, extra: str) -> PolicyEngine:
    spec = view.spec
    engine = CedarPolicyEngine(variant_bundle(spec, extra=extra), Directory.from_spec(spec))
    if "policy-error-allows" in view.server.chaos_flaws:
        return _ErrorsAllow(engine)
    return engine


@contextmanager
def audit_sink_fault(view: FakeState) -> Iterator[None]:
    view.chaos_state.audit_down = True
    try:
        yield
    finally:
        view.chaos_state.audit_down = False


# -- network faults on service-to-service links (``network-fault`` with ``link: service``) --------


@asynccontextmanager
async def service_path_fault(
    view: FakeState, links: tuple[tuple[str, str], ...], fault: NetFault
) -> AsyncIterator[NetPath]:
    """Each (caller, callee) link degraded between the caller's egress proxy and the callee's
    gateway, as the local backend's fault proxy degrades it."""
    state = view.chaos_state
    state.links = {link: fault for link in links}
    try:
        yield NetPath("fault-proxy", "the fake's links, in memory")
    finally:
        state.links = {}


async def on_service_link(view: FakeState, request: HttpRequest) -> Exchange | None:
    """What a degraded link does to a call through an egress proxy: ``latency`` delays it (the
    request and the answer each `latency_s`), then it is decided as usual; ``reset``, and a
    ``loss`` draw, leave the egress proxy without an answer: 502 ``callee-unavailable``.
    With the ``egress-retries-plaintext`` flaw the proxy then sends the call straight to the
    callee's own port, in plain HTTP: served without the gateway's decision (fail-open)."""
    if request.door != "egress":
        return None
    fault = view.chaos_state.links.get((request.caller, request.service))
    if fault is None:
        return None
    if fault.mode == "latency":
        await asyncio.sleep(fault.latency_s * 2)
        return None
    if fault.mode == "loss" and view.chaos_state.draws.random() >= fault.loss:
        return None
    if "egress-retries-plaintext" in view.server.chaos_flaws:
        headers = CIMultiDict({"X-Served-By": request.service})
        return HttpAnswer(200, headers, b"{}", f"fake://{request.service}")
    body = b'{"error": "egress_failed", "reason": "callee-unavailable"}'
    headers = CIMultiDict({"X-Trustproof-Decision": "egress-error"})
    return HttpAnswer(502, headers, body, f"fake://{request.service}")


def _kid(token: Secret[str]) -> str | None:
    """The ``kid`` of a compact JWS's header, unverified (None when it has none)."""
    head = token.reveal().split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except ValueError:
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


def _thirdparty(view: FakeState, request: HttpRequest) -> Exchange | None:
    """What a service reading wrong keys, or a stale or missing CRL, answers (None: as usual)."""
    state, flaws = view.chaos_state, view.server.chaos_flaws
    cert = request.cert
    if request.service in state.crl_services and cert is not None:
        revoked = cert.kind == "revoked"
        if state.crl_mode == "stale" and "stale-crl-accepted" not in flaws:
            return view._answer(request, 401, "tls", "client-cert-crl-has-expired")
        if revoked and (
            (state.crl_mode == "stale" and "stale-crl-accepted" in flaws)
            or (state.crl_mode == "missing" and "missing-crl-accepted" in flaws)
        ):  # no CRL read: the revocation goes unchecked
            return view._answer(request, 200, "", "allowed", cert.name)
    wrong = state.wrong_keys
    if wrong is not None and request.service in state.wrong_key_services and request.token:
        if _kid(request.token) in wrong.kids:  # a key under that kid, not the one that signed
            return view._answer(request, 401, "token", "token-bad-signature")
        if "wrong-keys-accepted" in flaws:  # no key for that kid: the signature goes unchecked
            return view._answer(request, 200, "", "allowed", cert.name if cert else "")
        return view._answer(request, 401, "token", "token-unknown-kid")
    return None


@asynccontextmanager
async def jwks_wrong_keys(
    view: FakeState, services: tuple[str, ...], keys: WrongKeys
) -> AsyncIterator[None]:
    view.chaos_state.wrong_keys, view.chaos_state.wrong_key_services = keys, services
    try:
        yield
    finally:
        view.chaos_state.wrong_keys, view.chaos_state.wrong_key_services = None, ()


@asynccontextmanager
async def crl_fault(
    view: FakeState, services: tuple[str, ...], mode: CrlMode
) -> AsyncIterator[None]:
    view.chaos_state.crl_services, view.chaos_state.crl_mode = services, mode
    try:
        yield
    finally:
        view.chaos_state.crl_services, view.chaos_state.crl_mode = (), None
