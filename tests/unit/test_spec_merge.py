"""Merge keys (``<<``) as YAML's merge type specifies them, without modifying shared nodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustproof.errors import SpecError
from trustproof.spec import parse_spec

BASE = """\
trust_domain: a.test
services:
  fast: &fast {port: 1, command: fast, routes: [GET /f]}
  slow: &slow {port: 2, command: slow, cwd: .}
"""


def test_explicit_keys_win_then_the_earlier_merged_mapping(tmp_path: Path) -> None:
    text = BASE + (
        "  one: {<<: [*fast, *slow], port: 3}\n"
        "  two: {<<: [*slow, *fast], port: 4}\n"
        "  three: {<<: *fast, port: 5, command: own}\n"
    )
    services = parse_spec(text, tmp_path / "trustproof.yaml").services
    one, two, three = services["one"], services["two"], services["three"]
    assert (one.port, one.command, one.cwd, one.routes) == (
        3,
        ("fast",),
        ".",
        services["fast"].routes,
    )
    assert (two.port, two.command, two.cwd) == (4, ("slow",), ".")
    assert (three.port, three.command, three.cwd) == (5, ("own",), None)
    assert (services["fast"].port, services["slow"].port) == (1, 2)  # the anchors are unchanged


def test_merging_a_mapping_that_itself_merges(tmp_path: Path) -> None:
    text = BASE.replace("slow: &slow {port: 2, command: slow,", "slow: &slow {<<: *fast, port: 2,")
    text += "  s: {<<: *slow, port: 3}\n"
    service = parse_spec(text, tmp_path / "trustproof.yaml").services["s"]
    assert (service.port, service.command, service.cwd) == (3, ("fast",), ".")


def test_a_merge_of_something_else_than_mappings_is_a_problem(tmp_path: Path) -> None:
    text = BASE + "  s: {<<: [*fast, 3], port: 3}\n"
    with pytest.raises(SpecError) as info:
        parse_spec(text, tmp_path / "trustproof.yaml")
    heads = [problem.render().splitlines()[0] for problem in info.value.problems]
    assert (
        f"{tmp_path / 'trustproof.yaml'}:5:19: services.s: bad merge key: expected a mapping or "
        "a list of mappings, got a single value" in heads
    )
    assert any("has neither command nor image" in head for head in heads)  # it was not merged


def test_a_key_written_twice_is_reported_but_a_merged_one_is_not(tmp_path: Path) -> None:
    text = BASE + "  s: {<<: *fast, port: 5, port: 6}\n"
    with pytest.raises(SpecError) as info:
        parse_spec(text, tmp_path / "trustproof.yaml")
    (problem,) = info.value.problems
    assert "services.s.port: duplicate key 'port' (first given at line 5)" in problem.render()
