"""Chaos: multi-step scenarios that disturb the sandbox on purpose — revoke, expire, rotate keys
and certificates, remove roles — and show it stays closed. Each drives the sandbox only through
its `SandboxView`.

======================================  ===========================================================
id                                      what it proves
======================================  ===========================================================
``lifecycle.revocation-propagation``    a revoked token is refused at every gateway within 50 ms
``lifecycle.token-expiry``              a token expiring mid-session is refused on that session
``authz.role-removed``                  a role removed at run time is refused on the next call
``lifecycle.key-rotation``              signing keys rotate with overlap, then leave the JWKS
``lifecycle.cert-rotation``             SVIDs rotate under traffic with zero failed requests
======================================  ===========================================================

The lifecycle scenarios also run against services that validate tokens themselves
(``gateway: none``, `chaos.own`): key rotation (the new key's tokens accepted once the key files
are rewritten and the service reloaded, the retired key's refused after pruning), token expiry,
and revocation where the service declares ``ingress.revocation: introspection``; certificate
rotation against every service terminating TLS itself (`chaos.own_rotation`: the new certificate
presented once reloaded, no failed request). ``authz.role-removed`` needs a gateway (the policy
it changes is the gateways'), and skips without one.
"""

from __future__ import annotations

from trustproof.chaos.lifecycle import key_rotation, revocation_propagation, token_expiry
from trustproof.chaos.roles import role_removed
from trustproof.chaos.rotation import cert_rotation
from trustproof.chaos.scenario import Scenario

SCENARIOS: tuple[tuple[str, Scenario], ...] = (
    ("lifecycle.revocation-propagation", revocation_propagation),
    ("lifecycle.token-expiry", token_expiry),
    ("authz.role-removed", role_removed),
    ("lifecycle.key-rotation", key_rotation),
    ("lifecycle.cert-rotation", cert_rotation),
)
