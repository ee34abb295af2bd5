"""The policy decision point: who may call which route, decided by Cedar policies.

The gateway (the enforcement point) asks a `PolicyEngine` about an `AccessRequest` and gets a
`Decision`; a denial is a result with a stable reason, never an exception, and every error is a
denial. `CedarPolicyEngine` decides with the spec's Cedar policies, parsed once, each request
against the slice of them whose scope can match it (`trustproof.policy.slicing`);
`StaticPolicyEngine` is the fake for tests of the layers above.

Around the engine: `check_policies` validates the policies against the schema with file:line
problems (for spec loading), and `policy_test` runs the offline check behind
``trustproof policy test``: the spec's expected access matrix evaluated against the policies,
disagreements split into over- and under-permission.

`ReloadablePolicyEngine` is the engine a running sandbox's gateways share: `PolicyReloader` swaps
a new, validated policy set into it with one assignment, and refuses an invalid or empty one
(`trustproof.policy.reload`).

The entity model and context every policy sees are in `trustproof.policy.entities` and the
built-in schema `trustproof.cedarschema`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trustproof.policy.cedar import CedarPolicyEngine
    from trustproof.policy.engine import (
        REASONS,
        AccessRequest,
        Decision,
        PolicyEngine,
        Reason,
        StaticPolicyEngine,
    )
    from trustproof.policy.entities import Directory, builtin_schema_text
    from trustproof.policy.offline import (
        CellCheck,
        MatrixReport,
        check_matrix,
        policy_test,
        render_text,
    )
    from trustproof.policy.reload import PolicyReload, PolicyReloader, ReloadablePolicyEngine
    from trustproof.policy.sources import PolicyBundle, PolicySource, load_policies
    from trustproof.policy.validation import check_policies

# Each public name is imported from its module when first used (PEP 562): loading a spec needs
# the validation alone, not the engine, the offline matrix check or the reloader — and the
# command line starts faster for it.
_WHERE = {
    "CedarPolicyEngine": "cedar",
    "REASONS": "engine",
    "AccessRequest": "engine",
    "Decision": "engine",
    "PolicyEngine": "engine",
    "Reason": "engine",
    "StaticPolicyEngine": "engine",
    "Directory": "entities",
    "builtin_schema_text": "entities",
    "CellCheck": "offline",
    "MatrixReport": "offline",
    "check_matrix": "offline",
    "policy_test": "offline",
    "render_text": "offline",
    "PolicyReload": "reload",
    "PolicyReloader": "reload",
    "ReloadablePolicyEngine": "reload",
    "PolicyBundle": "sources",
    "PolicySource": "sources",
    "load_policies": "sources",
    "check_policies": "validation",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "REASONS",
    "AccessRequest",
    "CedarPolicyEngine",
    "CellCheck",
    "Decision",
    "Directory",
    "MatrixReport",
    "PolicyBundle",
    "PolicyEngine",
    "PolicyReload",
    "PolicyReloader",
    "PolicySource",
    "Reason",
    "ReloadablePolicyEngine",
    "StaticPolicyEngine",
    "builtin_schema_text",
    "check_matrix",
    "check_policies",
    "load_policies",
    "policy_test",
    "render_text",
]
