"""Every input that ever broke a fuzz target, replayed through that target's whole oracle.

One file per case under `corpus/<target>/` (see `fuzzkit`); each README there says what the
cases were and which fix they guard."""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzzkit import CORPUS, cases
from http1_oracle import check_response
from paths_oracle import check_target


def test_every_target_has_its_corpus() -> None:
    assert {p.name for p in CORPUS.iterdir() if p.is_dir()} >= {"http1", "paths"}
    assert cases("http1")
    assert cases("paths")


@pytest.mark.parametrize("case", cases("http1"), ids=lambda p: p.name[:18])
def test_http1_crashers_stay_fixed(case: Path) -> None:
    check_response(case.read_bytes())


@pytest.mark.parametrize("case", cases("paths"), ids=lambda p: p.name[:18])
def test_path_crashers_stay_fixed(case: Path) -> None:
    check_target(case.read_bytes().decode("utf-8", "surrogatepass"))
