"""The Chaos Toolkit `run_experiment` action takes every parameter a spec experiment has, read as
the spec reads it, and refuses what the spec refuses (no sandbox: the experiment is only built)."""

from __future__ import annotations

import dataclasses

import pytest

from trustproof.chaostoolkit.actions import PARAMETERS, experiment_of
from trustproof.errors import UsageError
from trustproof.spec.chaos import Experiment, Skew
from trustproof.spec.values import Count, Duration

SHOP = {"storefront": True, "orders": True, "payments": True, "nginx": False}


def test_every_spec_parameter_of_an_experiment_is_accepted() -> None:
    fields = {f.name for f in dataclasses.fields(Experiment)} - {"name", "fault"}
    assert fields == PARAMETERS


def test_a_service_link_network_fault_is_built_as_the_spec_would() -> None:
    built = experiment_of(
        "network-fault",
        "orders-calls-slow",
        {"link": "service", "target": "orders", "mode": "latency", "latency": "100ms"},
        SHOP,
    )
    assert built.link == "service"
    assert built.target == "orders"
    assert built.mode == "latency"
    assert built.latency == Duration(0.1)


@pytest.mark.parametrize(
    ("fault", "mode"),
    [
        ("ca-rotation", "overlap"),
        ("ca-rotation", "no-overlap"),
        ("crl-fault", "stale"),
        ("crl-fault", "missing"),
        ("idp-outage", "slow"),
        ("network-fault", "loss"),
    ],
)
def test_the_new_faults_modes_are_accepted(fault: str, mode: str) -> None:
    assert experiment_of(fault, "x", {"mode": mode}, SHOP).mode == mode


def test_the_other_parameters_are_read_from_json() -> None:
    built = experiment_of(
        "clock-skew",
        "skewed",
        {
            "skew": "-2m",
            "expect": "fail-closed",
            "recover_within": 3,
            "duration": "1s",
            "sample": 2,
        },
        SHOP,
    )
    assert (built.skew, built.expect) == (Skew(-120), "fail-closed")
    assert (built.recover_within, built.duration, built.sample) == (
        Duration(3),
        Duration(1),
        Count(2),
    )
    storm = experiment_of("revocation-storm", "s", {"revocations": 10}, SHOP)
    assert storm.revocations == Count(10)
    slow = experiment_of("idp-outage", "s", {"mode": "slow", "delay": 0.5}, SHOP)
    assert slow.delay == Duration(0.5)


@pytest.mark.parametrize(
    ("fault", "parameters", "message"),
    [
        ("ca-rotation", {"mode": "stale"}, "ca-rotation has no mode stale (mode)"),
        ("crl-fault", {"mode": "overlap"}, "crl-fault has no mode overlap (mode)"),
        ("idp-outage", {"link": "service"}, "idp-outage takes no link (link)"),
        ("network-fault", {"link": "sideways"}, "no link 'sideways'"),
        ("network-fault", {"mode": "latency", "loss": 5}, "loss applies to mode: loss only"),
        ("cedar-error", {"target": "nginx"}, "cedar-error acts on a trustproof gateway"),
        ("cedar-error", {"target": "nowhere"}, "target 'nowhere' is not a service of the spec"),
        ("key-compromise", {"colour": "red"}, "no experiment parameter colour"),
        ("clock-skew", {"skew": "sideways"}, "skew: bad skew"),
        ("no-such-fault", {}, "no fault 'no-such-fault'"),
    ],
)
def test_what_the_spec_refuses_is_a_usage_error(
    fault: str, parameters: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        experiment_of(fault, "x", parameters, SHOP)
    assert str(caught.value).startswith(message)
    assert caught.value.hint
