"""The policy decision point: who may call which route, decided by Cedar policies.

The gateway (the enforcement point) asks a `PolicyEngine` about an `AccessRequest` and gets a
`Decision`; a denial is a result with a stable reason, never an exception, and every error is a
denial. `CedarPolicyEngine` decides with the spec's Cedar policies, parsed once;
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
