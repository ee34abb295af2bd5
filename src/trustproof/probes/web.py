"""The HTTP half of the suite: cases generated from the spec for every service boundary, and the
attempt each probe makes.

How callers present themselves (the "valid" way every negative case then breaks in one place):
workloads always present their X.509-SVID and a token bound to it; personas present a
certificate only where the service requires one (otherwise they are browsers: a bearer token).

Generated for each service behind a gateway:
* every (caller, route) of the matrix: ``authz.inside-matrix`` (allowed, served by the service)
  or ``authz.outside-matrix`` (refused by the policy);
* for every allowed cell: ``authz.method-swap`` and ``authz.path-traversal`` variants — tricks that
  normalise must decide like the canonical path, ambiguous encodings must be refused;
* on one representative allowed cell: every ``token.*`` and ``tls.*`` probe, each breaking one
  thing of the valid presentation;
* ``bypass.direct-port``: the service's own port with forged identity headers.

Services with ``gateway: none`` terminate mTLS themselves (nginx, a service validating its own
tokens) and are probed directly, as boundaries of kind ``self``, with the same matrix, tricks and
credential probes, adapted to what any server can express:
* a transport refusal (``denied_tls``) is a failed handshake, a TLS alert, a reset, or nginx's
  400 "No required SSL certificate was sent" / "The SSL certificate error" / "The plain HTTP
  request was sent to HTTPS port" (495/496/497); a token refusal (``denied_authn``) is a 401; an
  authorization refusal (``denied_authz``) a 403, or a 404/405 that no handler answered;
* an allowed request is any answer that is not a refusal: such a server cannot be expected to
  name itself in ``X-Served-By`` (it may, and the evidence then shows it);
* ``token.*`` probes only where the ingress says ``token: required``: with ``optional`` the spec
  itself says the server need not look at tokens (nginx cannot validate a JWT);
* no ``bypass.direct-port``: the service's own port is the boundary.
"""

from __future__ import annotations

import re
import ssl
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta

from trustproof.plan import Boundary, expected_matrix
from trustproof.probes.context import ProbeContext
from trustproof.probes.http import HttpAttempt, send
from trustproof.probes.model import BoundaryKind, Case, Expectation, Result
from trustproof.spec.model import Spec

SAMPLE_PARAM = "1"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
SWAP_ORDER = ("DELETE", "PUT", "PATCH", "POST", "GET")
# (variant, transform of the concrete path, must it decide like the canonical path?)
PATH_TRICKS: tuple[tuple[str, Callable[[str], str], bool], ...] = (
    ("dot-segment", lambda p: "/." + p, True),
    ("double-slash", lambda p: "/" + p, True),
    ("dot-dot", lambda p: "/zz/.." + p, True),
    ("trailing-slash", lambda p: p + "/", True),
    ("encoded-dot", lambda p: "/%2e" + p, True),
    (
        "encoded-slash",
        lambda p: (
            p[: p.rindex("/")] + "%2F" + p[p.rindex("/") + 1 :] if p.count("/") > 1 else p + "%2F"
        ),
        False,
    ),
    ("upper-case", lambda p: p.upper(), False),
)
TOKEN_PROBES = (
    "token.missing",
    "token.expired",
    "token.not-yet-valid",
    "token.wrong-issuer",
    "token.wrong-audience",
    "token.bad-signature",
    "token.alg-none",
    "token.hs256-public-key",
    "token.unknown-kid",
    "token.rotated-key",
    "token.revoked",
    "token.cnf-mismatch",
    "token.subject-mismatch",
)
TLS_PROBES = (
    "tls.untrusted-ca",
    "tls.expired-cert",
    "tls.not-yet-valid-cert",
    "tls.wrong-trust-domain",
    "tls.self-signed",
    "tls.legacy-version",
    "tls.plaintext",
)


def concrete(template: str) -> str:
    return re.sub(r"\{[^}]+\}", SAMPLE_PARAM, template)


def presents_cert(spec: Spec, caller: str, service: str) -> bool:
    return caller in spec.services or spec.services[service].ingress.client_cert == "required"


def boundary_kind(spec: Spec, service: str) -> BoundaryKind:
    """``gateway`` behind trustproof's gateway; ``self`` where the service terminates mTLS."""
    return "self" if spec.services[service].ingress.gateway == "none" else "gateway"


def _allowed(spec: Spec, service: str) -> Expectation:
    """Allowed, and answered by the service's handler where its gateway can tell (see above)."""
    served_by = service if boundary_kind(spec, service) == "gateway" else None
    return Expectation.allow(served_by=served_by)


def service_cases(spec: Spec) -> list[Case]:
    cases: list[Case] = []
    for boundary in expected_matrix(spec):
        if boundary.kind != "service":
            continue
        cases += _matrix_cases(spec, boundary)
        cases += _credential_cases(spec, boundary)
    return cases


def _matrix_cases(spec: Spec, boundary: Boundary) -> list[Case]:
    name = boundary.name
    kind = boundary_kind(spec, name)
    cases = []
    for cell in boundary.cells:
        inside = ("authz.inside-matrix", _allowed(spec, name))
        outside = ("authz.outside-matrix", Expectation.refuse("denied_authz"))
        probe, expect = inside if cell.allowed else outside
        cases.append(Case(probe, name, kind, cell.caller, cell.operation, expect))
        if cell.allowed:
            cases += _tricks(spec, boundary, cell.caller, cell.operation)
    return cases


def _tricks(spec: Spec, boundary: Boundary, caller: str, operation: str) -> list[Case]:
    name = boundary.name
    kind = boundary_kind(spec, name)
    template = operation.partition(" ")[2]
    allowed_here = {
        op.partition(" ")[0]
        for op in boundary.operations
        if op.partition(" ")[2] == template and boundary.allowed(caller, op)
    }
    swap = next((m for m in SWAP_ORDER if m not in allowed_here), None)
    cases = []
    if swap is not None:
        cases.append(
            Case(
                "authz.method-swap",
                name,
                kind,
                caller,
                operation,
                Expectation.refuse("denied_authz"),
                variant=swap,
                params={"method": swap},
            )
        )
    path = concrete(template)
    for variant, transform, same in PATH_TRICKS:
        tricked = transform(path)
        if tricked == path:
            continue
        expect = _allowed(spec, name) if same else Expectation.refuse("denied_authz")
        cases.append(
            Case(
                "authz.path-traversal",
                name,
                kind,
                caller,
                operation,
                expect,
                variant=variant,
                params={"path": tricked},
            )
        )
    return cases


def _credential_cases(spec: Spec, boundary: Boundary) -> list[Case]:
    """Token and TLS probes on one allowed cell (workload callers first: they present both)."""
    name = boundary.name
    allowed = [cell for cell in boundary.cells if cell.allowed]
    if not allowed:
        return []
    cell = min(allowed, key=lambda c: (c.caller not in spec.services, c.caller, c.operation))
    service = spec.services[name]
    kind = boundary_kind(spec, name)
    cases = []
    bound = presents_cert(spec, cell.caller, name)
    token_optional = service.ingress.token == "optional"  # noqa: S105
    for probe in TOKEN_PROBES:
        if token_optional and (probe == "token.missing" or kind == "self"):
            continue
        if probe in ("token.cnf-mismatch", "token.subject-mismatch") and not bound:
            continue
        cases.append(
            Case(
                probe,
                name,
                kind,
                cell.caller,
                cell.operation,
                Expectation.refuse("denied_authn"),
            )
        )
    tls_probes = list(TLS_PROBES)
    if service.ingress.client_cert == "required":
        tls_probes.insert(0, "tls.no-client-cert")
    for probe in tls_probes:
        cases.append(
            Case(
                probe,
                name,
                kind,
                cell.caller,
                cell.operation,
                Expectation.refuse("denied_tls"),
            )
        )
    forger = next((c for c in boundary.callers if not boundary.allowed(c, cell.operation)), None)
    if forger is not None:
        cases.append(
            Case(
                "token.forged-headers",
                name,
                kind,
                forger,
                cell.operation,
                Expectation.refuse("denied_authz"),
                params={"claims_to_be": cell.caller},
            )
        )
    if kind == "self":  # no gateway to bypass: its own port is the boundary
        return cases
    cases.append(
        Case(
            "bypass.direct-port",
            name,
            "bypass",
            cell.caller,
            cell.operation,
            Expectation.refuse("denied_authn", "denied_tls", "unreachable"),
        )
    )
    return cases


# -- execution --------------------------------------------------------------------------------


async def run_service_case(case: Case, ctx: ProbeContext) -> Result:
    attempt = build_attempt(case, ctx)
    # A fresh handshake where the probe is about the handshake (or the transport); elsewhere the
    # caller's kept-alive connection, as a real client would use it.
    fresh = case.probe.startswith("tls.") or case.kind == "bypass"
    result = await send(
        attempt, ctx.session if fresh else ctx.pooled, from_gateway=case.kind == "gateway"
    )
    if result.evidence.request_id:
        event = ctx.sandbox.audit.get(result.evidence.request_id)
        if event is not None:
            result = replace(result, evidence=replace(result.evidence, audit=event.to_json()))
    return result


@dataclass
class _Presentation:
    """The valid way the case's caller presents itself; a probe then breaks one part."""

    caller: str
    audience: str
    with_cert: bool
    base: str
    context: ssl.SSLContext | None
    token: str | None
    what: str


def build_attempt(case: Case, ctx: ProbeContext) -> HttpAttempt:
    """The valid presentation of the case's caller, with the one thing its probe breaks."""
    spec = ctx.sandbox.spec
    service, caller = case.boundary, case.caller or ""
    endpoint = ctx.sandbox.endpoints[service]
    method, _, template = case.operation.partition(" ")
    method = str(case.params.get("method", method))
    path = str(case.params.get("path", concrete(template)))
    with_cert = presents_cert(spec, caller, service)
    p = _Presentation(
        caller,
        service,
        with_cert,
        endpoint.url,
        ctx.identity_context(caller if with_cert else None),
        ctx.token(caller, service, bound=with_cert),
        f"as {caller}" + (" with its certificate" if with_cert else " without a certificate"),
    )
    headers: list[tuple[str, str]] = []
    body = b"{}" if method in BODY_METHODS else None
    if body is not None:
        headers.append(("Content-Type", "application/json"))
    probe = case.probe
    if probe.startswith("token."):
        _break_token(case, ctx, p)
    elif probe.startswith("tls."):
        _break_tls(case, ctx, p)
    if probe == "token.forged-headers":
        claimed = str(case.params["claims_to_be"])
        headers += [
            ("X-Trustproof-Principal", claimed),
            ("X-Trustproof-Principal-Kind", "workload" if claimed in spec.services else "persona"),
            ("X-Forwarded-Client-Cert", f"URI={spec.spiffe_id(claimed)}"),
        ]
        p.what += f", with forged identity headers claiming {claimed}"
    if probe == "bypass.direct-port":
        p.base, p.context, p.token = endpoint.direct_url, None, None
        headers += [
            ("X-Trustproof-Principal", caller),
            ("X-Trustproof-Principal-Kind", "workload" if caller in spec.services else "persona"),
        ]
        p.what = f"straight to {service}'s own port, claiming to be {caller} in headers"
    return HttpAttempt(p.base, method, path, p.context, p.token, tuple(headers), body, p.what)


def _break_token(case: Case, ctx: ProbeContext, p: _Presentation) -> None:
    spec = ctx.sandbox.spec
    probe = case.probe
    thumb = ctx.cert(p.caller).x5t_s256 if p.with_cert else None
    if probe == "token.missing":
        p.token, p.what = None, p.what + ", no token"
        return
    if probe == "token.revoked":
        fresh = ctx.sandbox.token(p.caller, p.audience, cnf_x5t_s256=thumb)
        check = ctx.fabric.inspect(fresh)
        ctx.fabric.revocations.revoke(
            str(check.claims["jti"]), ctx.sandbox.clock.now() + timedelta(hours=1)
        )
        p.token, p.what = fresh, p.what + ", with a revoked token"
        return
    broken = ctx.broken_tokens()
    subject, aud = spec.spiffe_id(p.caller), spec.spiffe_id(p.audience)
    # The caller's own roles, as in its valid token: a service that authorizes by the roles
    # claim must see the broken token differ in the one broken thing only.
    who = spec.personas.get(p.caller) or spec.services.get(p.caller)
    roles = tuple(who.roles) if who is not None else ()
    make = {
        "token.expired": broken.expired,
        "token.not-yet-valid": broken.not_yet_valid,
        "token.wrong-issuer": broken.wrong_issuer,
        "token.wrong-audience": broken.wrong_audience,
        "token.bad-signature": broken.bad_signature,
        "token.alg-none": broken.alg_none,
        "token.hs256-public-key": broken.hs256_with_public_key,
        "token.unknown-kid": broken.unknown_kid,
        "token.rotated-key": broken.rotated_out_key,
        "token.cnf-mismatch": broken.cnf_of_other_certificate,
    }
    if probe == "token.subject-mismatch":
        other = next(n for n in spec.services if n != p.caller)
        made = broken.subject_of_other_workload(
            subject, aud, roles=roles, cnf_x5t_s256=thumb, other_spiffe_id=spec.spiffe_id(other)
        )
    elif probe in make:
        made = make[probe](subject, aud, roles=roles, cnf_x5t_s256=thumb)
    else:
        return
    p.token = made.token.reveal()
    p.what += f", with a token that is {probe.removeprefix('token.')}"


def _break_tls(case: Case, ctx: ProbeContext, p: _Presentation) -> None:
    probe, caller = case.probe, p.caller
    material = ctx.broken_material()
    kinds = {
        "tls.untrusted-ca": material.untrusted_ca,
        "tls.expired-cert": material.expired,
        "tls.not-yet-valid-cert": material.not_yet_valid,
        "tls.wrong-trust-domain": material.wrong_trust_domain,
        "tls.self-signed": material.self_signed,
    }
    if probe == "tls.no-client-cert":
        p.context = ctx.identity_context(None)
        p.what = p.what.replace("with its certificate", "without a certificate")
    elif probe in kinds:
        made = kinds[probe]
        p.context = ctx.context(f"{probe}:{caller}", lambda: made(caller))
        p.what = f"as {caller} with a certificate that is {probe.removeprefix('tls.')}"
    elif probe == "tls.legacy-version":
        legacy = ctx.context(f"legacy:{caller}", lambda: ctx.cert(caller))
        with warnings.catch_warnings():  # offering deprecated versions is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            legacy.minimum_version = ssl.TLSVersion.TLSv1
            legacy.maximum_version = ssl.TLSVersion.TLSv1_1
        legacy.set_ciphers("DEFAULT:@SECLEVEL=0")
        p.context, p.what = legacy, p.what + ", offering only TLS 1.0/1.1"
    elif probe == "tls.plaintext":
        p.context, p.base = None, p.base.replace("https://", "http://")
        p.what += ", in plaintext HTTP"
