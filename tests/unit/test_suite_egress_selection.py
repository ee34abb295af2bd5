"""The suite generates the egress cases only where the sandbox runs isolated: `suite_on` asks
`backend_of(sandbox)`, and a selection of egress probes alone on the local backend is a usage
error, never an empty green run."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.view_egress import backend_of
from trustproof.spec.load import load_spec
from trustproof.suite.command import NothingToRun, check_selection

SHOP = load_spec(Path(__file__).resolve().parents[2] / "examples" / "shop" / "trustproof.yaml")


def test_egress_cases_are_chosen_on_the_isolated_backend_only() -> None:
    isolated = check_selection(SHOP, ["egress.*"], [], backend="isolated")
    # six in-namespace probes for each of the three services, `egress.observed` for each, the
    # undeclared dependency for the two that do not call it, the mocked one's direct call once
    assert len(isolated) == 6 * 3 + 3 + 2 + 1
    local = check_selection(SHOP, [], [])
    everything = check_selection(SHOP, [], [], backend="isolated")
    assert len(everything) == len(local) + len(isolated) - 1  # dependency-direct: on both
    with pytest.raises(NothingToRun):
        check_selection(SHOP, ["egress.undeclared-*"], [])


def test_the_backend_is_what_the_sandbox_says() -> None:
    def sandbox(**fields: object) -> Sandbox:
        return cast(Sandbox, SimpleNamespace(**fields))

    assert backend_of(sandbox()) == "local"  # a sandbox from before the isolated backend
    assert backend_of(sandbox(backend_kind="local")) == "local"
    assert backend_of(sandbox(backend_kind="isolated")) == "isolated"
    # says isolated without namespaces: its egress cases run (each an error), never skipped
    assert backend_of(sandbox(backend_kind="isolated", namespaces={})) == "isolated"
