"""A gateway's configuration, derived from the spec."""

from __future__ import annotations

from types import MappingProxyType

from trustproof.gateway.headers import normalised
from trustproof.gateway.listener import ConnectionLimits
from trustproof.gateway.paths import RouteTable
from trustproof.gateway.pipeline import GatewayConfig, Identity
from trustproof.scrub import Secret
from trustproof.spec.model import Spec


def identities(spec: Spec) -> MappingProxyType[str, Identity]:
    """Every identity of the sandbox by SPIFFE ID: workloads and personas with their roles."""
    found = {
        spec.spiffe_id(name): Identity(name, "workload", tuple(service.roles))
        for name, service in spec.services.items()
    }
    found.update(
        {
            spec.spiffe_id(name): Identity(name, "persona", tuple(persona.roles))
            for name, persona in spec.personas.items()
        }
    )
    return MappingProxyType(found)


def gateway_config(
    spec: Spec, service: str, *, proof_key: Secret[bytes] | None = None
) -> GatewayConfig:
    """The gateway in front of `service`: its audience, ingress rules and routes; with
    `proof_key`, it signs every forwarded request for the service (`proof.py`)."""
    declared = spec.services[service]
    return GatewayConfig(
        service=service,
        audience=spec.spiffe_id(service),
        client_cert=declared.ingress.client_cert,
        token=declared.ingress.token,
        routes=RouteTable(declared.routes),
        identities=identities(spec),
        proof_key=proof_key,
        identity_headers=frozenset(normalised(name) for name in spec.identity_headers),
    )


def connection_limits(spec: Spec) -> ConnectionLimits:
    """The spec's `limits:` for every gateway and egress proxy listener."""
    limits = spec.limits
    return ConnectionLimits(
        handshake_timeout=limits.handshake_timeout.seconds,
        header_timeout=limits.header_timeout.seconds,
        idle_timeout=limits.idle_timeout.seconds,
        max_requests=int(limits.max_requests),
        max_connections=int(limits.max_connections),
    )
