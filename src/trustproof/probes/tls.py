"""The ``tls`` family: every client certificate or transport that is wrong must be refused at the
TLS stage (``denied_tls``), on one allowed cell per service (`credential_cell`).

* ``tls.no-client-cert`` — no certificate (only where the ingress requires one); on a server
  trustproof did not write, on every route (`anonymous_cells`: such servers are configured per
  location, and one location open to anonymous callers is the mistake);
* ``tls.untrusted-ca``, ``tls.expired-cert``, ``tls.not-yet-valid-cert``,
  ``tls.wrong-trust-domain``, ``tls.self-signed``, ``tls.wrong-eku`` (serverAuth only),
  ``tls.ca-as-client`` (a CA certificate of the trust domain), ``tls.no-uri-san``,
  ``tls.sha1-signature``, ``tls.weak-key`` (RSA 1024) — the caller's SVID broken in that one way
  (`trustproof.identity.BrokenMaterial`, signed by the sandbox CA unless the defect is the
  signer), with its otherwise valid token;
* ``tls.revoked-cert`` — a fresh SVID of the caller, revoked just before (the CRL files are
  rewritten and services with ``reload:`` told); where the server reads the CRL itself, it gets
  `REVOKED_SETTLE_S` to reload before an acceptance counts;
* ``tls.foreign-ca`` — one case per `tls.foreign_cas` entry with a key: the caller's SPIFFE ID
  signed by that foreign CA;
* ``tls.legacy-version`` — the caller's valid certificate, offering only TLS 1.0 (variant
  ``tls1.0``) or only TLS 1.1 (``tls1.1``); ``tls.weak-ciphers`` — TLS 1.2 with only weak suites
  (`trustproof.view.WEAK_CIPHERS`); a server that completes the handshake accepts them;
* ``tls.plaintext`` — plain HTTP to the TLS port;
* ``tls.advertised-cas`` — the CA names the server advertises in its CertificateRequest must all
  be the sandbox's: an extra one (a foreign CA the spec names, or any other) means the server
  trusts it, and is reported as an over-permission naming it.

Every attempt opens a fresh connection: the handshake is what is probed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

from trustproof.catalogue import Family
from trustproof.probes.base import Plan, Probe
from trustproof.probes.cells import (
    anonymous_cells,
    boundary_kind,
    credential_cells,
    presentation,
    send,
)
from trustproof.probes.http import FAILURES
from trustproof.probes.model import Case, Evidence, Expectation, Outcome, Result
from trustproof.view import (
    CaNames,
    CaScan,
    CertKind,
    ClientCert,
    SandboxView,
    TlsOffer,
    TransportFailure,
)

REVOKED_SETTLE_S = 5.0
"""How long a server that reloads its CRL (``reload:`` sighup/restart) may take to refuse."""
SETTLE_STEP_S = 0.1


@dataclass(frozen=True)
class TlsProbe:
    """Present `cert` (a broken kind; None: no certificate) or offer `tls` (one case per entry
    of `offers`, the offer as the variant, when given)."""

    id: str
    cert: CertKind | None = "valid"
    tls: TlsOffer = "modern"
    family: Family = "tls"
    offers: tuple[TlsOffer, ...] = ()

    def cases(self, plan: Plan) -> Iterator[Case]:
        spec = plan.spec
        cells = anonymous_cells(plan) if self.cert is None else credential_cells(plan)
        for boundary, cell in cells:
            required = spec.services[boundary.name].ingress.client_cert == "required"
            if self.cert is None and not required:
                continue
            kind = boundary_kind(spec, boundary.name)
            refused = Expectation.refuse("denied_tls")
            for variant in self.offers or ("",):
                yield Case(
                    self.id, boundary.name, kind, cell.caller, cell.operation, refused, variant
                )

    def offer(self, case: Case) -> TlsOffer:
        return next((o for o in self.offers if o == case.variant), self.tls)

    def client_cert(self, caller: str, case: Case) -> ClientCert | None:
        return None if self.cert is None else ClientCert(caller, self.cert)

    async def run(self, case: Case, target: SandboxView) -> Result:
        how = presentation(case, target)
        cert = self.client_cert(how.caller, case)
        return await send(case, target, replace(how, cert=cert, tls=self.offer(case)))


@dataclass(frozen=True)
class RevokedProbe(TlsProbe):
    """The caller's fresh, revoked SVID, with a token bound to *it* (else a server checking the
    binding refuses for that reason and the CRL is never put to the test); a server reloading
    its CRL gets time to refuse."""

    async def attempt(self, case: Case, target: SandboxView) -> Result:
        how = presentation(case, target)
        cert = self.client_cert(how.caller, case)
        if how.bound and cert is not None and how.token is not None:
            revoked = target.broken_cert(cert.kind, cert.name)
            template = target.token_template(how.caller, case.boundary, bound=True)
            token = replace(template, cnf_x5t_s256=revoked.x5t_s256).valid().token
            how = how.with_token(token, "valid")
        return await send(case, target, replace(how, cert=cert, tls=self.offer(case)))

    async def run(self, case: Case, target: SandboxView) -> Result:
        result = await self.attempt(case, target)
        reload = target.spec.services[case.boundary].reload
        if case.kind != "self" or reload == "none":
            return result
        deadline = time.monotonic() + REVOKED_SETTLE_S
        for _ in range(int(REVOKED_SETTLE_S / SETTLE_STEP_S)):
            if result.outcome not in ("allowed", "unreachable") or time.monotonic() > deadline:
                break
            await asyncio.sleep(SETTLE_STEP_S)
            result = await self.attempt(case, target)
        return result


@dataclass(frozen=True)
class ForeignCaProbe(TlsProbe):
    """One case per foreign CA with a key: the caller's SPIFFE ID signed by it."""

    def cases(self, plan: Plan) -> Iterator[Case]:
        labels = [str(ca.cert) for ca in plan.spec.tls.foreign_cas if ca.key is not None]
        for case in TlsProbe.cases(self, plan):
            for label in labels:
                yield replace(case, variant=label)

    def offer(self, case: Case) -> TlsOffer:
        return self.tls

    def client_cert(self, caller: str, case: Case) -> ClientCert | None:
        return ClientCert(caller, "foreign-ca", foreign_ca=case.variant)


@dataclass(frozen=True)
class AdvertisedCasProbe:
    """The CA names of the server's CertificateRequest, against the sandbox's own."""

    id: str
    family: Family = "tls"

    def cases(self, plan: Plan) -> Iterator[Case]:
        for boundary, cell in credential_cells(plan):
            kind = boundary_kind(plan.spec, boundary.name)
            refused = Expectation.refuse("denied_tls")
            yield Case(self.id, boundary.name, kind, None, cell.operation, refused)

    async def run(self, case: Case, target: SandboxView) -> Result:
        start = time.perf_counter()
        scan = await target.advertised_cas(case.boundary)
        elapsed = (time.perf_counter() - start) * 1000
        return replace(judge_advertised(scan, target.ca_names()), elapsed_ms=elapsed)


def judge_advertised(scan: CaScan, names: CaNames) -> Result:
    """The result of a CA-name scan: ``allowed`` (the server trusts a CA that is not the
    sandbox's, named in the reason and evidence), ``denied_tls`` (only the sandbox's CAs, or no
    names at all), or why nothing could be read (``inconclusive``; ``unreachable``)."""
    if isinstance(scan, TransportFailure):
        sent = f"a TLS 1.2 ClientHello to {scan.url}, to read its CertificateRequest"
        outcome: Outcome = (
            "unreachable" if FAILURES[scan.kind][0] == "unreachable" else "inconclusive"
        )
        evidence = Evidence(sent=sent, detail=f"{scan.kind}: {scan.detail}"[:300])
        return Result(outcome, "tls", "ca-names-unreadable", evidence)
    sent = f"a TLS 1.2 ClientHello to {scan.url}, read its CertificateRequest"
    if not scan.requested:
        evidence = Evidence(sent=sent, detail="the server requested no client certificate")
        return Result("inconclusive", "tls", "no-certificate-request", evidence)
    extra = [
        names.foreign.get(der, f"unrelated CA {text}")
        for der, text in zip(scan.ders, scan.names, strict=True)
        if der not in names.own
    ]
    listed = "; ".join(scan.names) or "none (any CA, RFC 5246 §7.4.4)"
    if extra:
        reason = (
            "trusts-foreign-ca"
            if any(e.startswith("foreign") for e in extra)
            else "trusts-other-ca"
        )
        detail = f"advertises {len(extra)} CA(s) that are not this sandbox's: {'; '.join(extra)}"
        return Result("allowed", "", reason, Evidence(sent=sent, detail=detail[:300]))
    reason = "only-sandbox-cas" if scan.names else "no-ca-names"
    return Result(
        "denied_tls", "tls", reason, Evidence(sent=sent, detail=f"advertises: {listed}"[:300])
    )


PROBES: tuple[Probe, ...] = (
    TlsProbe("tls.no-client-cert", cert=None),
    TlsProbe("tls.untrusted-ca", "untrusted-ca"),
    TlsProbe("tls.expired-cert", "expired"),
    TlsProbe("tls.not-yet-valid-cert", "not-yet-valid"),
    TlsProbe("tls.wrong-trust-domain", "wrong-trust-domain"),
    TlsProbe("tls.self-signed", "self-signed"),
    TlsProbe("tls.legacy-version", offers=("tls1.0", "tls1.1")),
    TlsProbe("tls.plaintext", tls="plaintext"),
    RevokedProbe("tls.revoked-cert", "revoked"),
    TlsProbe("tls.wrong-eku", "wrong-eku"),
    TlsProbe("tls.ca-as-client", "ca-as-client"),
    TlsProbe("tls.weak-key", "weak-key"),
    TlsProbe("tls.sha1-signature", "sha1-signature"),
    TlsProbe("tls.no-uri-san", "no-uri-san"),
    TlsProbe("tls.weak-ciphers", tls="weak-ciphers"),
    AdvertisedCasProbe("tls.advertised-cas"),
    ForeignCaProbe("tls.foreign-ca", "foreign-ca"),
)
