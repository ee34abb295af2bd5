"""Entity references in the policies that name nothing the spec declares.

Cedar validates *types* against the schema, never entity *ids*: ``Route::"orders /order"`` (a typo
for ``/orders``) validates, and a ``forbid`` naming it silently protects nothing; a ``permit`` for
``Persona::"alcie"`` grants nobody. Every ``Route::"…"``, ``Workload::"…"``, ``Persona::"…"``,
``Service::"…"`` and ``Role::"…"`` in a policy must therefore name what the spec declares (the
entity store the gateways build from it: `trustproof.policy.entities`):

* ``Route::"<service> <path template>"`` — a route the service declares (any method);
* ``Workload::"<service>"`` and ``Service::"<service>"`` — a service;
* ``Persona::"<name>"`` — a persona;
* ``Role::"<role>"`` — a role some persona or service holds.

Pure: the policies' text in, `Problem`s (file, line, column, hint) out.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from trustproof.errors import Problem
from trustproof.policy.entities import route_id
from trustproof.policy.lexer import position, tokenize

if TYPE_CHECKING:  # the spec package's loader imports this package
    from trustproof.policy.sources import PolicySource
    from trustproof.spec.model import Spec

CHECKED_TYPES = ("Route", "Workload", "Persona", "Service", "Role")


@dataclass(frozen=True)
class Reference:
    """``Type::"id"`` at 1-based `line`/`column` of the policy text it was found in."""

    type: str
    id: str
    line: int
    column: int


def references(text: str) -> Iterator[Reference]:
    """Every un-namespaced ``Type::"id"`` of a checked type in Cedar `text` (comments skipped)."""
    tokens = tokenize(text)
    for i in range(len(tokens) - 2):
        kind, colons, literal = tokens[i], tokens[i + 1], tokens[i + 2]
        if kind.text not in CHECKED_TYPES or colons.text != "::":
            continue
        if i > 0 and tokens[i - 1].text == "::":  # Some::Namespace::Route: not ours
            continue
        name = _string_value(literal.text)
        if name is None:
            continue
        line, column = position(text, kind.start)
        yield Reference(kind.text, name, line, column)


def declared(spec: Spec) -> Mapping[str, frozenset[str]]:
    """Per checked type, the ids the spec declares."""
    services = frozenset(spec.services)
    roles = {role for persona in spec.personas.values() for role in persona.roles}
    roles |= {role for service in spec.services.values() for role in service.roles}
    routes = {
        route_id(name, route.path)
        for name, service in spec.services.items()
        for route in service.routes
    }
    return {
        "Route": frozenset(routes),
        "Workload": services,
        "Service": services,
        "Persona": frozenset(spec.personas),
        "Role": frozenset(roles),
    }


def check_references(spec: Spec, sources: Iterable[PolicySource]) -> list[Problem]:
    """A problem for every reference in `sources` to an entity the spec does not declare."""
    known = declared(spec)
    problems: list[Problem] = []
    for source in sources:
        for ref in references(source.text):
            if ref.id in known[ref.type]:
                continue
            line = source.line + ref.line - 1
            column = source.column + ref.column - 1 if ref.line == 1 else ref.column
            problems.append(
                Problem(
                    source.file,
                    line,
                    column,
                    source.path,
                    f'{ref.type}::"{ref.id}" names {_what(ref.type)} the spec does not declare: '
                    "the policy matches no request through it",
                    _hint(ref, known[ref.type]),
                )
            )
    return problems


_WHAT = {
    "Route": "a route",
    "Workload": "a workload (service)",
    "Service": "a service",
    "Persona": "a persona",
    "Role": "a role",
}
_DECLARED_WHERE = {
    "Route": 'routes are "<service> <path template>" of services.<name>.routes',
    "Workload": "workloads are the keys under services:",
    "Service": "services are the keys under services:",
    "Persona": "personas are the keys under personas:",
    "Role": "roles are those listed in personas.<name>.roles or services.<name>.roles",
}


def _what(kind: str) -> str:
    return _WHAT[kind]


def _hint(ref: Reference, known: frozenset[str]) -> str:
    close = difflib.get_close_matches(ref.id, sorted(known), n=1, cutoff=0.6)
    if close:
        return f'did you mean {ref.type}::"{close[0]}"? ({_DECLARED_WHERE[ref.type]})'
    return _DECLARED_WHERE[ref.type]


def _string_value(token: str) -> str | None:
    """The value of a Cedar string literal token (None if it is not a complete one)."""
    if len(token) < 2 or not (token.startswith('"') and token.endswith('"')):
        return None
    try:
        value = json.loads(token)  # Cedar's escapes are a subset of JSON's for names
    except ValueError:
        return token[1:-1]
    return value if isinstance(value, str) else None
