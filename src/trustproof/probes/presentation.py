"""How a caller presents itself to a service — the "valid presentation" every HTTP probe then breaks
in exactly one way — as an immutable value.

Workloads always present their X.509-SVID and a token bound to it; personas present a certificate
only where the service requires one (otherwise they are browsers: a bearer token). A probe derives
its presentation with `dataclasses.replace` (another certificate, another token, legacy TLS, forged
headers, the service's own port) and the evidence text is rendered from the fields by
`describe()` — never edited as text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Literal

from trustproof.scrub import Secret
from trustproof.spec.model import Spec
from trustproof.view import ClientCert, Door, HttpRequest, SandboxView, TlsOffer
from trustproof.view.exchange import TokenPlacement

SAMPLE_PARAM = "1"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
Carried = Literal["valid", "none", "revoked", "broken"]


def concrete(template: str) -> str:
    """A path of the route template, with every ``{param}`` filled with a sample value."""
    return re.sub(r"\{[^}]+\}", SAMPLE_PARAM, template)


def presents_cert(spec: Spec, caller: str, service: str) -> bool:
    return caller in spec.services or spec.services[service].ingress.client_cert == "required"


_OFFERED: dict[TlsOffer, str] = {
    "legacy": ", offering only TLS 1.0/1.1",
    "plaintext": ", in plaintext HTTP",
    "tls1.0": ", offering only TLS 1.0",
    "tls1.1": ", offering only TLS 1.1",
    "weak-ciphers": ", offering TLS 1.2 with only weak cipher suites",
}


@dataclass(frozen=True)
class Presentation:
    caller: str
    service: str
    method: str
    path: str
    cert: ClientCert | None
    token: Secret[str] | None = field(default=None, repr=False)
    carries: Carried = "valid"
    token_kind: str = ""  # the broken token's kind, for the evidence
    tls: TlsOffer = "modern"
    door: Door = "ingress"
    forged: tuple[tuple[str, str], ...] = ()  # identity headers the caller adds
    forged_claim: str = ""  # whom they name
    fresh: bool = False
    token_in: TokenPlacement = "header"  # noqa: S105 (where the token travels)

    @classmethod
    def valid(
        cls, view: SandboxView, caller: str, service: str, operation: str, *, path: str = ""
    ) -> Presentation:
        """`caller`'s valid presentation for `operation` on `service` (at `path` if given)."""
        spec = view.spec
        method, _, template = operation.partition(" ")
        with_cert = presents_cert(spec, caller, service)
        return cls(
            caller,
            service,
            method,
            path or concrete(template),
            ClientCert(caller) if with_cert else None,
            view.token(caller, service, bound=with_cert),
        )

    @property
    def bound(self) -> bool:
        """Whether the valid token is bound to the caller's certificate."""
        return self.cert is not None

    def with_token(self, token: Secret[str] | None, state: Carried, kind: str = "") -> Presentation:
        return replace(self, token=token, carries=state, token_kind=kind)

    def request(self) -> HttpRequest:
        headers: tuple[tuple[str, str], ...] = self.forged
        body = None
        if self.method in BODY_METHODS:
            headers, body = (("Content-Type", "application/json"), *headers), b"{}"
        return HttpRequest(
            self.service,
            self.method,
            self.path,
            door=self.door,
            cert=self.cert,
            tls=self.tls,
            token=self.token,
            headers=headers,
            body=body,
            fresh=self.fresh,
            caller=self.caller,
            token_in=self.token_in,
        )

    def describe(self) -> str:
        """Who, with what, for the evidence (never the token itself)."""
        if self.door == "egress":
            return f"through {self.caller}'s egress proxy (it adds the certificate and token)"
        if self.door == "direct":
            return f"straight to {self.service}'s own port, claiming to be {self.caller} in headers"
        parts = [f"as {self.caller}"]
        if self.cert is None:
            parts.append(" without a certificate")
        elif self.cert.kind == "valid":
            parts.append(" with its certificate")
        else:
            parts.append(f" with a certificate that is {self.cert.kind}")
        if self.carries == "none":
            parts.append(", no token")
        elif self.carries == "revoked":
            parts.append(", with a revoked token")
        elif self.carries == "broken":
            parts.append(f", with a token that is {self.token_kind}")
        if self.token is not None and self.token_in != "header":  # noqa: S105
            where = "query string" if self.token_in == "query" else "cookie"  # noqa: S105
            parts.append(f", its token in the {where} (no Authorization header)")
        parts.append(_OFFERED.get(self.tls, ""))
        if self.forged_claim:
            parts.append(f", with forged identity headers claiming {self.forged_claim}")
        return "".join(parts)
