"""The entity store trustproof gives Cedar, built from the spec: who exists, with which roles.

The model (the built-in schema, `trustproof.cedarschema`, declares exactly this):

* ``Role::"<role>"`` for every role a persona or a workload holds;
* ``Persona::"<name>"`` with attribute ``kind`` ("human" or "ci") and its roles as parents;
* ``Workload::"<service>"`` with its roles (``services.<name>.roles``) as parents;
* ``Service::"<service>"``, and ``Route::"<service> <path template>"`` for every declared route of
  every service, whose parent is its service. Routes are per path: ``GET /orders`` and
  ``POST /orders`` are one ``Route::"orders /orders"``; the method is the action.

A `Directory` is the Python side of that store. It is immutable: `with_roles` returns a changed
copy, from which an engine builds a new entity handle without re-parsing its policies.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from importlib import resources
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from trustproof.policy.cedar_import import cedarpy
from trustproof.policy.engine import PrincipalKind

if TYPE_CHECKING:  # the spec package's loader imports this package
    from trustproof.spec.model import Spec

BUILTIN_SCHEMA_NAME = "trustproof's built-in schema"
ENTITY_TYPES = {"workload": "Workload", "persona": "Persona"}

Json = dict[str, Any]


def builtin_schema_text() -> str:
    """The Cedar schema of trustproof's entity model and request context."""
    return resources.files("trustproof.policy").joinpath("trustproof.cedarschema").read_text()


def route_id(service: str, route: str) -> str:
    """The id of a route entity: ``orders /orders/{id}``."""
    return f"{service} {route}"


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    name: str
    roles: tuple[str, ...]
    persona_kind: str = ""  # personas only: "human" or "ci"

    def entity(self) -> Json:
        attrs = {"kind": self.persona_kind} if self.kind == "persona" else {}
        return {
            "uid": {"type": ENTITY_TYPES[self.kind], "id": self.name},
            "attrs": attrs,
            "parents": [{"type": "Role", "id": role} for role in self.roles],
        }


@dataclass(frozen=True)
class Directory:
    """Every principal with its roles, and every service with its route templates."""

    principals: Mapping[str, Principal]
    routes: Mapping[str, tuple[str, ...]]  # service -> distinct route templates

    @classmethod
    def from_spec(cls, spec: Spec) -> Directory:
        principals: dict[str, Principal] = {}
        for name, service in spec.services.items():
            principals[name] = Principal("workload", name, tuple(service.roles))
        for name, persona in spec.personas.items():
            principals[name] = Principal("persona", name, tuple(persona.roles), persona.kind)
        routes = {
            name: tuple(dict.fromkeys(route.path for route in service.routes))
            for name, service in spec.services.items()
        }
        return cls(MappingProxyType(principals), MappingProxyType(routes))

    def with_roles(self, name: str, roles: Iterable[str]) -> Directory:
        """This directory with `name` (a persona or a workload) holding exactly `roles`."""
        if name not in self.principals:
            known = ", ".join(sorted(self.principals)) or "none"
            raise KeyError(f"{name!r} is not a persona or workload of the spec (known: {known})")
        principals = dict(self.principals)
        principals[name] = replace(principals[name], roles=tuple(roles))
        return replace(self, principals=MappingProxyType(principals))

    def entities(self) -> list[Json]:
        """The entity store in Cedar's JSON entity format."""
        roles = sorted({role for p in self.principals.values() for role in p.roles})
        store: list[Json] = [_entity("Role", role) for role in roles]
        store += [principal.entity() for principal in self.principals.values()]
        for service, paths in self.routes.items():
            store.append(_entity("Service", service))
            parent = [{"type": "Service", "id": service}]
            store += [_entity("Route", route_id(service, path), parent) for path in paths]
        return store

    def handle(self, schema: cedarpy.Schema) -> cedarpy.Entities:
        """The store parsed once into a reusable handle, checked against `schema`.

        Raises ValueError naming the first entity the schema does not accept (Cedar itself only
        says "entity does not conform to the schema").
        """
        store = self.entities()
        try:
            return cedarpy.Entities.from_json_str(json.dumps(store), schema)
        except ValueError as exc:
            raise ValueError(_first_rejected(store, schema) or str(exc)) from None


def _entity(kind: str, name: str, parents: list[Json] | None = None) -> Json:
    return {"uid": {"type": kind, "id": name}, "attrs": {}, "parents": parents or []}


def _first_rejected(store: list[Json], schema: cedarpy.Schema) -> str | None:
    for entity in store:
        try:
            cedarpy.Entities.from_json_str(json.dumps([entity]), schema)
        except ValueError as exc:
            uid = entity["uid"]
            attrs = ", ".join(entity["attrs"]) or "none"
            parents = ", ".join(sorted({p["type"] for p in entity["parents"]})) or "none"
            return (
                f'the schema does not accept {uid["type"]}::"{uid["id"]}" as trustproof builds it '
                f"(attributes: {attrs}; parent types: {parents}): {exc}"
            )
    return None
