"""Policy checks for spec loading: `check_policies(spec)` lists every problem with the spec's
Cedar policies and schema, located as ``FILE:LINE:COL`` like every other spec problem.

It covers what the gateways would otherwise discover at run time: a policy file that does not
parse (at the token where Cedar gave up), a policy that does not validate against the schema
(unknown entity type, unknown action, unknown attribute, type error), a schema that does not parse
or does not accept the entities trustproof builds, templates, duplicate ``@id``s, and entity
references naming routes, workloads, services, personas or roles the spec does not declare
(`trustproof.policy.references`: Cedar checks entity types, never ids). The
details live in `trustproof.policy.sources`, which the engine shares, so a spec that passes here is
one `CedarPolicyEngine.from_spec` accepts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trustproof.errors import Problem
from trustproof.policy.references import check_references
from trustproof.policy.sources import load_policies

if TYPE_CHECKING:  # the spec package's loader imports this package
    from trustproof.spec.model import Spec


def check_policies(spec: Spec) -> list[Problem]:
    """Every problem with the spec's policies and schema, in file order (empty when all is well).

    Expects a spec that passed `load_spec` (its policy files exist); an unreadable file is still
    reported as a problem, never raised.
    """
    bundle = load_policies(spec)
    problems = [*bundle.problems, *check_references(spec, bundle.policies)]
    return sorted(problems, key=lambda p: (p.file, p.line, p.column, p.path))
