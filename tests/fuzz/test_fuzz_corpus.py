"""Every input that ever broke a fuzz target, replayed through that target's whole oracle.

One file per case under `corpus/<target>/` (see `fuzzkit`); each README there says what the
cases were and which fix they guard."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from fuzzkit import CORPUS, cases
from http1_oracle import check_encode, check_response
from paths_oracle import check_target


def test_every_target_has_its_corpus() -> None:
    targets = {"http1", "http1-encode", "paths"}
    assert {p.name for p in CORPUS.iterdir() if p.is_dir()} >= targets
    assert all(cases(target) for target in targets)


@pytest.mark.parametrize("case", cases("http1"), ids=lambda p: p.name[:18])
def test_http1_crashers_stay_fixed(case: Path) -> None:
    check_response(case.read_bytes())


@pytest.mark.parametrize("case", cases("paths"), ids=lambda p: p.name[:18])
def test_path_crashers_stay_fixed(case: Path) -> None:
    check_target(case.read_bytes().decode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("case", cases("http1-encode"), ids=lambda p: p.name[:18])
def test_request_encoder_crashers_stay_fixed(case: Path) -> None:
    """Each file is the repr of the arguments (method, target, host, headers, body)."""
    method, target, host, headers, body = ast.literal_eval(case.read_text("utf-8"))
    check_encode(method, target, host, headers, body)
