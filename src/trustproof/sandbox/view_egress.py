"""The live view's egress attempts: one try from inside a service's network namespace.

`EgressClient` is what `LiveView.egress_attempt` and its address look-ups delegate to. It finds
the service's namespace in the sandbox (`Sandbox.namespaces`, isolated backend only), builds the
TLS context presenting the service's own SVID for the ``http`` and ``postgres`` attempts, and
hands the namespace's socket factory to `trustproof.sandbox.egress_attempts.attempt`. On the local
backend there is no namespace: every attempt is an ``error`` ("not isolated"), never a pass.

The hub's canary records what reaches it and never answers, so a UDP attempt that timed out is
checked against what the canary received from the service's hub address meanwhile: a datagram it
got is ``answered`` (the silence was not a drop). The canary (``Sandbox.network.hub.hits()``) and
the hub addresses (``Sandbox.network.addresses``) are read when the sandbox has them.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from trustproof.errors import SandboxError
from trustproof.identity import Svid
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.egress_attempts import attempt
from trustproof.tls import client_context
from trustproof.view.egress import EgressAttempt, EgressResult

# Per attempt. A reject answers at once, so these only run out when nothing comes back: for UDP
# the expected sign of a drop (then the canary is asked), elsewhere a slow peer under load (a TLS
# handshake through a relay on a busy machine can take a second) — as long as the live view's
# HTTP attempts, so that a slow refusal is never an inconclusive.
TIMEOUT_S = 10.0
UDP_TIMEOUT_S = 2.0


def backend_of(sandbox: Sandbox) -> str:
    """``"isolated"`` when the sandbox says it runs its services in network namespaces, else
    ``"local"`` (what `Plan.backend` and `LiveView.backend_kind` say). A sandbox that says so but
    has no namespace for a service gets its egress cases, each an ``error``: never skipped."""
    return "isolated" if getattr(sandbox, "backend_kind", "local") == "isolated" else "local"


@dataclass
class EgressClient:
    sandbox: Sandbox
    cert: Callable[[str], Svid]  # the view's valid SVID of a workload
    timeout: float = TIMEOUT_S
    udp_timeout: float = UDP_TIMEOUT_S
    _contexts: dict[str, ssl.SSLContext] = field(default_factory=dict)

    def backend_kind(self) -> str:
        return backend_of(self.sandbox)

    def _namespace(self, service: str) -> Any:
        namespaces = getattr(self.sandbox, "namespaces", None) or {}
        return namespaces.get(service)

    async def attempt(self, service: str, a: EgressAttempt) -> EgressResult:
        ns = self._namespace(service)
        if ns is None:
            return EgressResult("error", "not isolated")
        tls = self._context(service) if a.kind in ("http", "postgres") else None
        ledger = getattr(self.sandbox, "egress_ledger", None)
        if ledger is not None:  # the probe's own attempt: not counted against the service
            ledger.note_own(service, a)
        seen = len(self._canary_hits())
        timeout = self.udp_timeout if a.kind == "udp" else self.timeout
        result = await attempt(ns.socket, a, timeout, tls=tls)
        if result.outcome == "timeout" and a.kind == "udp":
            # The canary records and never answers: a datagram it received got through.
            source = self.hub_address(service)
            for hit in self._canary_hits()[seen:]:
                proto, address, port = (getattr(hit, f, None) for f in ("proto", "address", "port"))
                if (proto, address, port) == ("udp", a.host, a.port) and (
                    source is None or getattr(hit, "source", None) == source
                ):
                    where = f"{a.host}:{a.port}"
                    return EgressResult("answered", f"the sandbox's canary at {where} received it")
        return result

    def _canary_hits(self) -> tuple[Any, ...]:
        """What reached the hub's canary so far (``Sandbox.network.hub.hits()``; none without)."""
        hub = getattr(getattr(self.sandbox, "network", None), "hub", None)
        return tuple(hub.hits()) if hub is not None else ()

    def _context(self, service: str) -> ssl.SSLContext:
        if service not in self._contexts:
            fabric = self.sandbox.fabric
            if fabric is None:
                raise SandboxError("the sandbox is not running")
            self._contexts[service] = client_context(fabric.ca.bundle_pem(), self.cert(service))
        return self._contexts[service]

    def token_service_address(self) -> tuple[str, int]:
        fabric = self.sandbox.fabric
        if fabric is None:
            raise SandboxError("the sandbox is not running")
        url = urlsplit(fabric.url)
        return url.hostname or "127.0.0.1", url.port or 443

    def datastore_address(self, datastore: str) -> tuple[str, int]:
        server = self.sandbox.datastores.servers[datastore]
        if server.port is None:
            raise SandboxError(f"datastore {datastore!r} is not running")
        return server.host, server.port

    def hub_address(self, service: str) -> str | None:
        """`service`'s address on the hub (``Sandbox.network.addresses``; None without)."""
        addresses = getattr(getattr(self.sandbox, "network", None), "addresses", None) or {}
        address = addresses.get(service)
        return str(address) if address else None
