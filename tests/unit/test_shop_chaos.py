"""The shop's `chaos:` section: every fault, each of the ca-rotation modes and both links of
network-fault, with the result ids a run of the shop writes (the exact list: a renamed or dropped
experiment shows here)."""

from __future__ import annotations

from pathlib import Path

from trustproof.chaos.experiments import DECLARED_ONLY, DEFAULTS, experiment_ids, experiments_of
from trustproof.spec.chaos import FAULTS
from trustproof.spec.load import load_spec
from trustproof.suite.scenarios import choose_experiments

SHOP = load_spec(Path(__file__).resolve().parents[2] / "examples" / "shop" / "trustproof.yaml")

SHOP_IDS = (
    "chaos.idp-outage:token-service-stopped",
    "chaos.idp-outage:token-service-failing",
    "chaos.idp-outage:token-service-slow",
    "chaos.key-compromise",
    "chaos.clock-skew",
    "chaos.revocation-storm",
    "chaos.policy-corruption",
    "chaos.cedar-error",
    "chaos.audit-sink-down",
    "chaos.network-fault:token-path-reset",
    "chaos.network-fault:orders-calls-slow",
    "chaos.network-fault:orders-calls-reset",
    "chaos.jwks-wrong-keys",
    "chaos.ca-rotation:ca-rotated-with-overlap",
    "chaos.ca-rotation:ca-rotated-without-overlap",
    "chaos.intermediate-revoked",
    "chaos.cert-expiry",
    "chaos.jwks-garbage",
    "chaos.crl-fault",
)


def test_the_shop_declares_every_fault_with_the_ids_its_run_writes() -> None:
    declared = experiments_of(SHOP)
    assert declared is not DEFAULTS
    assert experiment_ids(declared) == SHOP_IDS
    assert sorted({e.fault for e in declared}) == sorted(FAULTS)
    assert [sid for sid, _ in choose_experiments(SHOP)] == list(SHOP_IDS)


def test_the_shop_declares_what_the_defaults_leave_out() -> None:
    declared = experiments_of(SHOP)
    modes = {(e.fault, e.mode, e.link) for e in declared}
    assert {(e.fault, e.mode, e.link) for e in (*DEFAULTS, *DECLARED_ONLY)} <= modes
    assert {
        ("idp-outage", "error", None),
        ("idp-outage", "slow", None),
        ("ca-rotation", "no-overlap", None),
        ("network-fault", "latency", "service"),
        ("network-fault", "reset", "service"),
    } <= modes
    slow = next(e for e in declared if e.mode == "slow")
    assert slow.delay is not None
    assert slow.delay.seconds == 0.5
    links = [e for e in declared if e.link == "service"]
    assert {e.target for e in links} == {"orders"}
