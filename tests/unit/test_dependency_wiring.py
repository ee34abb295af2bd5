"""A dependency in ``calls`` is not a service: no token audience, no service egress edge, no
start-order wait; its proxy's URL is in the service's environment and templates."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from trustproof.cli import cli
from trustproof.sandbox.services import start_order, template_values
from trustproof.spec import load_spec
from trustproof.tokenservice.core import Registry
from trustproof.view.fake import FakeView

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop" / "trustproof.yaml"


def test_a_dependency_gets_no_token_audience_and_no_service_edge() -> None:
    spec = load_spec(SHOP)
    assert "card-network" in spec.services["payments"].calls
    registry = Registry.from_spec(spec)
    payments = registry.workloads[spec.spiffe_id("payments")]
    assert spec.spiffe_id("card-network") not in payments.audiences
    assert ("payments", "card-network") not in FakeView(spec).egress_edges()
    assert start_order(spec)[0] == ["payments"]  # it waits for no dependency


def test_the_proxy_url_is_a_template_variable() -> None:
    values = template_values({"TRUSTPROOF_DEPENDENCY_CARD_NETWORK_URL": "http://127.0.0.1:1"})
    assert values["dependency"] == {"card_network": "http://127.0.0.1:1"}


def test_plan_names_each_service_dependency_pair_and_its_variable() -> None:
    runner = CliRunner()
    planned = json.loads(runner.invoke(cli, ["plan", "--json", str(SHOP)]).output)
    assert planned["dependencies"] == [
        {
            "caller": "payments",
            "dependency": "card-network",
            "mode": "mock",
            "target": "api.card-network.example:443",
            "served_by": "response table",
            "variable": "TRUSTPROOF_DEPENDENCY_CARD_NETWORK_URL",
        }
    ]
    shown = runner.invoke(cli, ["plan", str(SHOP)]).output
    assert "$TRUSTPROOF_DEPENDENCY_CARD_NETWORK_URL" in shown
    validated = runner.invoke(cli, ["validate", str(SHOP)]).output
    assert "1 datastore, 1 dependency, 12 expected" in validated
