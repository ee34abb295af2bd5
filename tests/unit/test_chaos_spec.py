"""The spec's ``chaos:`` section: typed, validated with located errors, and the default set when
it is absent; result ids and the selection by probe globs."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustproof.chaos.experiments import (
    DECLARED_ONLY,
    DEFAULTS,
    EXPERIMENT_IDS,
    experiment_ids,
    experiments_of,
)
from trustproof.errors import SpecError
from trustproof.spec import parse_spec
from trustproof.spec.chaos import FAULTS, Skew
from trustproof.spec.values import BadValue
from trustproof.suite.scenarios import choose_experiments

HEAD = """version: 1
trust_domain: t.test
services:
  api:
    command: [python, api.py]
    port: 18401
    routes: [GET /things]
  own:
    command: [python, own.py]
    port: 18402
    ingress: {gateway: none, client_cert: required, token: required}
    health: {kind: tcp}
    routes: [GET /x]
personas:
  alice: {roles: [user]}
access:
  services:
    api:
      alice: [GET /things]
probes:
  select: ["*"]
"""


def parsed(tmp_path: Path, chaos: str) -> object:
    return parse_spec(HEAD + chaos, tmp_path / "trustproof.yaml", policies=False)


def problems(tmp_path: Path, chaos: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parsed(tmp_path, chaos)
    return [p.render() for p in info.value.problems]


def test_experiments_are_typed_values(tmp_path: Path) -> None:
    spec = parse_spec(
        HEAD
        + """chaos:
  experiments:
    - {name: down, fault: idp-outage, mode: slow, delay: 500ms, target: api}
    - {name: behind, fault: clock-skew, skew: -2h, expect: fail-closed, recover_within: 2s}
    - {name: storm, fault: revocation-storm, revocations: 1500, sample: 2}
""",
        tmp_path / "trustproof.yaml",
        policies=False,
    )
    down, behind, storm = spec.chaos.experiments or ()
    assert (down.fault, down.mode, down.delay and down.delay.seconds) == ("idp-outage", "slow", 0.5)
    assert (behind.skew, behind.expect, behind.recover_within.seconds) == (
        Skew(-7200),
        "fail-closed",
        2,
    )
    assert (storm.revocations, storm.sample, storm.expect) == (1500, 2, "recover")
    assert spec.chaos.enabled is True
    assert experiments_of(spec) == spec.chaos.experiments


def test_without_a_chaos_section_the_default_set_runs_one_experiment_per_fault(
    tmp_path: Path,
) -> None:
    spec = parse_spec(HEAD, tmp_path / "trustproof.yaml", policies=False)
    assert experiments_of(spec) == DEFAULTS
    every = (*DEFAULTS, *DECLARED_ONLY)
    assert sorted(e.fault for e in every) == sorted(FAULTS)
    assert sorted(experiment_ids(every)) == sorted(EXPERIMENT_IDS)


def test_an_unknown_fault_is_refused_with_the_list(tmp_path: Path) -> None:
    found = problems(tmp_path, "chaos:\n  experiments:\n    - {name: x, fault: idp-down}\n")
    assert len(found) == 1
    assert ":24:24: chaos.experiments[0].fault" in found[0]
    assert "idp-outage" in found[0]


def test_a_parameter_the_fault_does_not_take_is_refused_with_who_takes_it(tmp_path: Path) -> None:
    found = problems(
        tmp_path, "chaos:\n  experiments:\n    - {name: x, fault: cedar-error, skew: +5m}\n"
    )
    assert len(found) == 1
    assert "chaos.experiments[0].skew: cedar-error takes no skew" in found[0]
    assert "hint: skew applies to clock-skew; remove it" in found[0]


def test_an_unknown_target_and_a_target_without_gateway_are_refused(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        "chaos:\n  experiments:\n"
        "    - {name: a, fault: idp-outage, target: nope}\n"
        "    - {name: b, fault: cedar-error, target: own}\n"
        "    - {name: b, fault: idp-outage, mode: stopped, delay: 1s}\n",
    )
    text = "\n".join(found)
    assert "target 'nope' is not a service of the spec" in text
    assert "hint: one of: api, own" in text
    assert "cedar-error acts on a trustproof gateway, and own has none" in text
    assert "experiment 'b' is named twice" in text
    assert "delay applies to mode: slow only" in text


@pytest.mark.parametrize(
    ("raw", "seconds"), [("+5m", 300), ("-2h", -7200), ("30s", 30), ("-1h30m", -5400)]
)
def test_a_skew_is_a_signed_duration(raw: str, seconds: float) -> None:
    assert Skew.parse(raw).seconds == seconds


@pytest.mark.parametrize("raw", ["5", "+-5m", "ahead", 5, "+"])
def test_a_bad_skew_says_how_to_write_one(raw: object) -> None:
    with pytest.raises(BadValue) as info:
        Skew.parse(raw)
    assert "signed duration" in info.value.hint


def test_repeated_faults_get_the_experiment_name_in_their_id(tmp_path: Path) -> None:
    spec = parse_spec(
        HEAD + "chaos:\n  experiments:\n"
        "    - {name: ahead, fault: clock-skew, skew: +1h}\n"
        "    - {name: behind, fault: clock-skew, skew: -1h}\n"
        "    - {name: down, fault: idp-outage}\n",
        tmp_path / "trustproof.yaml",
        policies=False,
    )
    ids = experiment_ids(spec.chaos.experiments or ())
    assert ids == ("chaos.clock-skew:ahead", "chaos.clock-skew:behind", "chaos.idp-outage")
    chosen = choose_experiments(spec, select=("chaos.clock-skew*",))
    assert [sid for sid, _ in chosen] == ["chaos.clock-skew:ahead", "chaos.clock-skew:behind"]
    assert [sid for sid, _ in choose_experiments(spec, deselect=("chaos.clock-skew",))] == [
        "chaos.idp-outage"
    ]


def test_the_spec_probes_section_selects_experiments_too(tmp_path: Path) -> None:
    text = HEAD.replace('  select: ["*"]', '  select: ["*"]\n  deselect: ["chaos.revocation-*"]')
    spec = parse_spec(text, tmp_path / "trustproof.yaml", policies=False)
    chosen = [sid for sid, _ in choose_experiments(spec)]
    assert "chaos.revocation-storm" not in chosen
    assert len(chosen) == len(DEFAULTS) - 1


def test_a_mode_of_another_fault_and_a_loss_beyond_100_are_refused(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        "chaos:\n  experiments:\n"
        "    - {name: a, fault: network-fault, mode: stopped}\n"
        "    - {name: b, fault: network-fault, mode: loss, loss: 150}\n"
        "    - {name: c, fault: network-fault, mode: reset, latency: 1s}\n",
    )
    text = "\n".join(found)
    assert "network-fault has no mode stopped" in text
    assert "hint: one of: latency, loss, reset" in text
    assert "loss 150 is not a percentage" in text
    assert "latency applies to mode: latency only" in text
