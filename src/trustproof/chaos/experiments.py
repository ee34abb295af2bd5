"""The trust-chaos experiments: the faults by name, the default set, and their result ids.

=========================  ======================================================================
id                         what it proves
=========================  ======================================================================
``chaos.idp-outage``       token service stopped / 500 / slow: new tokens fail, gateways judge
                           issued tokens, egress refuses without a token, introspection denies
``chaos.key-compromise``   emergency rotation: the old key's tokens refused everywhere at once
``chaos.clock-skew``       a gateway's clock skewed both ways: the leeway applied, no more
``chaos.revocation-storm`` 1,000 revocations in a burst: propagation p99 and memory bounded
``chaos.policy-corruption`` an invalid policy on hot reload: the old set kept, recorded
``chaos.cedar-error``      a policy failing to evaluate: every request refused
``chaos.audit-sink-down``  the audit log cannot be written: every request refused (503)
``chaos.network-fault``    latency, loss or resets on the way to the token service (a TCP fault
                           proxy on its address): nothing forwarded without a token; with
                           ``link: service`` between egress proxies and gateways: calls slower
                           or failing at the egress proxy (502/503/504), never around the gateway
``chaos.jwks-garbage``     a service's key files hold garbage: forged tokens still refused
``chaos.jwks-wrong-keys``  the token service publishes well-formed keys it does not hold (and a
                           service's key files hold them): the gateways judge as before, a
                           service reading them refuses what no issuer key signed, kid confusion
                           included
``chaos.crl-fault``        a service's CRL file stale (past nextUpdate) or missing: the revoked
                           certificate stays refused; on a stale CRL every one is (fail closed)
``chaos.ca-rotation``      a root rotated under traffic: with overlap 0 failed requests; the
                           retired root's certificates refused everywhere
``chaos.intermediate-revoked`` a leaf under a revoked intermediate CA refused on the next request
``chaos.cert-expiry``      a leaf left to expire (rotation stopped): refused after, everywhere
=========================  ======================================================================

Without a ``chaos:`` section `DEFAULTS` run (one experiment per fault but those in
`DECLARED_ONLY`, which run only when a spec declares them; on the shop about 5 s, most of it the
revocation storm). An experiment's id is ``chaos.<fault>``; when a spec has two
experiments of the same fault, each is ``chaos.<fault>:<name>``.
"""

from __future__ import annotations

from collections import Counter

from trustproof.chaos.experiment import Fault, run_experiment
from trustproof.chaos.faults_ca import ca_rotation, cert_expiry, intermediate_revoked
from trustproof.chaos.faults_gateway import (
    audit_sink_down,
    cedar_error,
    clock_skew,
    policy_corruption,
)
from trustproof.chaos.faults_keys import jwks_garbage
from trustproof.chaos.faults_network import network_fault
from trustproof.chaos.faults_storm import revocation_storm
from trustproof.chaos.faults_thirdparty import crl_fault, jwks_wrong_keys
from trustproof.chaos.faults_tokens import idp_outage, key_compromise
from trustproof.chaos.scenario import Recorder, ScenarioEnv, ScenarioResult
from trustproof.spec import chaos as chaos_spec
from trustproof.spec.chaos import Experiment
from trustproof.spec.model import Spec
from trustproof.spec.values import Name

FAULTS: dict[chaos_spec.Fault, Fault] = {
    "idp-outage": idp_outage,
    "key-compromise": key_compromise,
    "clock-skew": clock_skew,
    "revocation-storm": revocation_storm,
    "policy-corruption": policy_corruption,
    "cedar-error": cedar_error,
    "audit-sink-down": audit_sink_down,
    "network-fault": network_fault,
    "jwks-garbage": jwks_garbage,
    "jwks-wrong-keys": jwks_wrong_keys,
    "crl-fault": crl_fault,
    "ca-rotation": ca_rotation,
    "intermediate-revoked": intermediate_revoked,
    "cert-expiry": cert_expiry,
}
EXPERIMENT_IDS: tuple[str, ...] = tuple(f"chaos.{fault}" for fault in chaos_spec.FAULTS)

DEFAULTS: tuple[Experiment, ...] = (
    Experiment(Name("token-service-stopped"), "idp-outage", mode="stopped"),
    Experiment(Name("signing-key-compromised"), "key-compromise"),
    Experiment(Name("gateway-clock-skewed"), "clock-skew"),
    Experiment(Name("revocation-storm"), "revocation-storm"),
    Experiment(Name("invalid-policy-reloaded"), "policy-corruption"),
    Experiment(Name("policy-evaluation-error"), "cedar-error"),
    Experiment(Name("audit-sink-down"), "audit-sink-down"),
    Experiment(Name("token-path-reset"), "network-fault", mode="reset"),
    Experiment(Name("key-files-garbage"), "jwks-garbage"),
    Experiment(Name("wrong-keys-published"), "jwks-wrong-keys"),
    Experiment(Name("crl-stale-or-missing"), "crl-fault"),
    Experiment(Name("intermediate-ca-revoked"), "intermediate-revoked"),
)
"""What runs without a ``chaos:`` section."""

DECLARED_ONLY: tuple[Experiment, ...] = (
    Experiment(Name("ca-root-rotated"), "ca-rotation", mode="overlap"),
    Experiment(Name("client-cert-expired"), "cert-expiry"),
)
"""Faults that run only when a spec declares them (one experiment each, as the benchmark runs
them): each takes longer than a default may (about a second on the shop). ``ca-rotation``
reissues every identity of the sandbox and reloads each datastore three times under traffic;
``cert-expiry`` waits for a certificate to expire (one to two seconds: X.509 times have whole
seconds)."""


def experiments_of(spec: Spec) -> tuple[Experiment, ...]:
    """The spec's experiments, or the default set."""
    declared = spec.chaos.experiments
    return DEFAULTS if declared is None else declared


def experiment_ids(experiments: tuple[Experiment, ...]) -> tuple[str, ...]:
    """Each experiment's result id (``chaos.<fault>``, with ``:<name>`` when a fault repeats)."""
    counts = Counter(e.fault for e in experiments)
    return tuple(
        f"chaos.{e.fault}" if counts[e.fault] == 1 else f"chaos.{e.fault}:{e.name}"
        for e in experiments
    )


async def run(env: ScenarioEnv, rec: Recorder, experiment: Experiment) -> ScenarioResult:
    """One experiment (the caller owns `rec`: a crash keeps what it recorded)."""
    return await run_experiment(env, rec, experiment, FAULTS[experiment.fault])
