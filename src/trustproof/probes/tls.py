"""The ``tls`` family: every client certificate or transport that is wrong must be refused at the
TLS stage (``denied_tls``), on one allowed cell per service (`credential_cell`).

* ``tls.no-client-cert`` — no certificate (only where the ingress requires one);
* ``tls.untrusted-ca``, ``tls.expired-cert``, ``tls.not-yet-valid-cert``,
  ``tls.wrong-trust-domain``, ``tls.self-signed`` — the caller's SVID broken in that one way
  (`trustproof.identity.BrokenMaterial`), with its otherwise valid token;
* ``tls.legacy-version`` — the caller's valid certificate, offering only TLS 1.0/1.1;
* ``tls.plaintext`` — plain HTTP to the TLS port.

Every attempt opens a fresh connection: the handshake is what is probed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from trustproof.catalogue import Family
from trustproof.probes.base import Plan, Probe
from trustproof.probes.cells import boundary_kind, credential_cells, presentation, send
from trustproof.probes.model import Case, Expectation, Result
from trustproof.view import CertKind, ClientCert, SandboxView, TlsOffer


@dataclass(frozen=True)
class TlsProbe:
    """Present `cert` (a broken kind; None: no certificate) or offer `tls`."""

    id: str
    cert: CertKind | None = "valid"
    tls: TlsOffer = "modern"
    family: Family = "tls"

    def cases(self, plan: Plan) -> Iterator[Case]:
        spec = plan.spec
        for boundary, cell in credential_cells(plan):
            required = spec.services[boundary.name].ingress.client_cert == "required"
            if self.cert is None and not required:
                continue
            kind = boundary_kind(spec, boundary.name)
            refused = Expectation.refuse("denied_tls")
            yield Case(self.id, boundary.name, kind, cell.caller, cell.operation, refused)

    async def run(self, case: Case, target: SandboxView) -> Result:
        how = presentation(case, target)
        cert = None if self.cert is None else ClientCert(how.caller, self.cert)
        return await send(case, target, replace(how, cert=cert, tls=self.tls))


PROBES: tuple[Probe, ...] = (
    TlsProbe("tls.no-client-cert", cert=None),
    TlsProbe("tls.untrusted-ca", "untrusted-ca"),
    TlsProbe("tls.expired-cert", "expired"),
    TlsProbe("tls.not-yet-valid-cert", "not-yet-valid"),
    TlsProbe("tls.wrong-trust-domain", "wrong-trust-domain"),
    TlsProbe("tls.self-signed", "self-signed"),
    TlsProbe("tls.legacy-version", tls="legacy"),
    TlsProbe("tls.plaintext", tls="plaintext"),
)
