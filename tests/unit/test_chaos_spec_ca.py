"""The certificate-authority faults in a spec's ``chaos:`` section: ca-rotation's modes, and the
parameters none of the three take."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustproof.chaos.experiments import DECLARED_ONLY, DEFAULTS
from trustproof.errors import SpecError
from trustproof.spec import parse_spec

HEAD = """version: 1
trust_domain: t.test
services:
  api:
    command: [python, api.py]
    port: 18401
    routes: [GET /things]
personas:
  alice: {roles: [user]}
access:
  services:
    api:
      alice: [GET /things]
chaos:
  experiments:
"""


def parsed(tmp_path: Path, experiments: str) -> object:
    return parse_spec(HEAD + experiments, tmp_path / "trustproof.yaml", policies=False)


def problems(tmp_path: Path, experiments: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parsed(tmp_path, experiments)
    return [p.render() for p in info.value.problems]


def test_the_ca_faults_parse_with_their_modes(tmp_path: Path) -> None:
    spec = parse_spec(
        HEAD
        + "    - {name: rot, fault: ca-rotation}\n"
        + "    - {name: cut, fault: ca-rotation, mode: no-overlap, target: api}\n"
        + "    - {name: int, fault: intermediate-revoked, recover_within: 2s}\n"
        + "    - {name: exp, fault: cert-expiry, expect: fail-closed}\n",
        tmp_path / "trustproof.yaml",
        policies=False,
    )
    rot, cut, inter, exp = spec.chaos.experiments or ()
    assert (rot.fault, rot.mode) == ("ca-rotation", None)  # overlap
    assert (cut.mode, cut.target) == ("no-overlap", "api")
    assert inter.recover_within.seconds == 2
    assert exp.expect == "fail-closed"


def test_a_mode_ca_rotation_does_not_have_is_refused_with_its_modes(tmp_path: Path) -> None:
    found = problems(tmp_path, "    - {name: rot, fault: ca-rotation, mode: stopped}\n")
    assert len(found) == 1
    assert "ca-rotation has no mode stopped" in found[0]
    assert "one of: overlap, no-overlap" in found[0]


@pytest.mark.parametrize("fault", ["intermediate-revoked", "cert-expiry"])
def test_the_other_ca_faults_take_no_mode_or_skew(tmp_path: Path, fault: str) -> None:
    found = problems(tmp_path, f"    - {{name: x, fault: {fault}, mode: overlap, skew: +1m}}\n")
    assert any(f"{fault} takes no mode" in text for text in found), found
    assert any(f"{fault} takes no skew" in text for text in found), found


def test_only_the_cheap_ca_fault_runs_by_default() -> None:
    assert [e.fault for e in DEFAULTS if e.fault in ("ca-rotation", "intermediate-revoked",
            "cert-expiry")] == ["intermediate-revoked"]  # fmt: skip
    assert [e.fault for e in DECLARED_ONLY] == ["ca-rotation", "cert-expiry"]
