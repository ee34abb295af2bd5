"""Egress attempts: what a probe asks a service's network namespace to try, and what happened.

`EgressAttempt` is one outbound try made *from inside* a service's namespace on the isolated
backend (`SandboxView.egress_attempt`): a TCP connect, a UDP datagram waiting for an answer, a
DNS query through the sandbox resolver, an HTTPS request to the token service's admin API with
the service's own certificate, or a PostgreSQL login as another role. `EgressResult` is how it
ended:

===============  ==================================================================================
outcome          meaning
===============  ==================================================================================
``blocked``      dropped or rejected by the network layer (no route, a reject, nothing there)
``refused``      it reached a peer that said no (401/403, an authentication failure, NXDOMAIN or
                 REFUSED from the sandbox resolver)
``connected``    it got through (a TCP connection, a login, an HTTP 2xx): a failure of isolation
``answered``     a UDP or DNS answer came back: a failure of isolation
``timeout``      nothing came back in time (for UDP the expected sign of a drop)
``error``        the attempt itself could not be made (no namespace, a bad address, a bug)
===============  ==================================================================================

`EgressEvent` is what a service itself tried during the run, counted by the firewall and the
resolver (``orders tried 192.0.2.10:443 3 times``). Core layer: values only, no sockets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EgressKind = Literal["tcp", "udp", "dns", "http", "postgres"]
EgressOutcome = Literal["blocked", "refused", "connected", "answered", "timeout", "error"]
EventKind = Literal["tcp", "udp", "dns"]


@dataclass(frozen=True)
class EgressAttempt:
    """One outbound try. `host` is an IP address (never a name: nothing is resolved outside the
    namespace); `name` is the DNS name queried (``dns``) or the subject of the admin mint
    (``http``); `path` the HTTP path (``http``); `role` the PostgreSQL role logged in as
    (``postgres``; `name` is then the database)."""

    kind: EgressKind
    host: str
    port: int
    name: str = ""
    path: str = ""
    role: str = ""

    def describe(self) -> str:
        where = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        if self.kind == "dns":
            return f"dns {self.name or '?'} via {where}"
        if self.kind == "http":
            return f"https POST {where}{self.path}"
        if self.kind == "postgres":
            return f"postgresql {where} as role {self.role}"
        return f"{self.kind} {where}"


@dataclass(frozen=True)
class EgressResult:
    outcome: EgressOutcome
    detail: str = ""

    @property
    def got_through(self) -> bool:
        return self.outcome in ("connected", "answered")


@dataclass(frozen=True)
class EgressEvent:
    """`count` attempts of `service` to `destination` (an address, or a DNS name for ``dns``)
    that the sandbox dropped or refused during the run."""

    service: str
    kind: EventKind
    destination: str
    port: int | None
    count: int
