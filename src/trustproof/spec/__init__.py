"""The spec: `trustproof.yaml` loaded into an immutable, validated model."""

from __future__ import annotations

from trustproof.spec.load import load_spec, parse_spec
from trustproof.spec.model import (
    Access,
    Datastore,
    HealthCheck,
    Ingress,
    Persona,
    Policies,
    Probes,
    Reports,
    Service,
    Spec,
    Template,
    Ttl,
)
from trustproof.spec.schema import json_schema

__all__ = [
    "Access",
    "Datastore",
    "HealthCheck",
    "Ingress",
    "Persona",
    "Policies",
    "Probes",
    "Reports",
    "Service",
    "Spec",
    "Template",
    "Ttl",
    "json_schema",
    "load_spec",
    "parse_spec",
]
