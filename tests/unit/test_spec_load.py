"""The shop example loads into the typed model exactly as written."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from trustproof.errors import SpecError
from trustproof.spec import load_spec, parse_spec
from trustproof.spec.values import Duration, Route


def test_shop_example_loads(shop_spec_path: Path) -> None:
    spec = load_spec(shop_spec_path)
    assert spec.trust_domain == "shop.test"
    assert spec.ttl.certificate == Duration(300)
    assert spec.ttl.token == Duration(120)
    assert list(spec.services) == ["storefront", "orders", "payments"]
    assert list(spec.personas) == ["alice", "bob", "ci"]
    storefront = spec.services["storefront"]
    assert storefront.command == ("python", "services/storefront.py")
    assert storefront.ingress.client_cert == "optional"
    assert storefront.ingress.gateway == "trustproof"
    assert storefront.calls == ("orders", "payments")
    assert Route("GET", "/products/{id}") in storefront.routes
    assert spec.services["orders"].ingress.client_cert == "required"
    shopdb = spec.datastores["shopdb"]
    assert shopdb.roles["orders"]["orders"] == ("select", "insert", "update")
    assert spec.access.services["orders"]["storefront"] == (
        "GET /orders",
        "GET /orders/{id}",
        "POST /orders",
    )
    assert spec.access.datastores["shopdb"]["storefront"]["products"] == ("select",)
    assert spec.personas["ci"].kind == "ci"
    assert spec.resolve(spec.policies.files[0]).is_file()
    assert spec.spiffe_id("orders") == "spiffe://shop.test/orders"


def test_spec_is_immutable(shop_spec_path: Path) -> None:
    spec = load_spec(shop_spec_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.trust_domain = "other.test"  # type: ignore[misc]
    with pytest.raises(TypeError, match="does not support item assignment"):
        spec.services["evil"] = spec.services["orders"]  # type: ignore[index]


def test_defaults_fill_an_almost_empty_spec(tmp_path: Path) -> None:
    spec = parse_spec("trust_domain: t.test\n", tmp_path / "trustproof.yaml")
    assert spec.version == 1
    assert spec.ttl.certificate == Duration(300)
    assert spec.reports.formats == ("junit", "html", "md", "json")
    assert dict(spec.services) == {}


def test_yaml_anchors_and_merge_keys_are_honoured(tmp_path: Path) -> None:
    text = """\
trust_domain: t.test
services:
  a: &svc
    command: run-a
    port: 9001
    ingress: {client_cert: optional}
  b:
    <<: *svc
    port: 9002
"""
    spec = parse_spec(text, tmp_path / "s.yaml")
    assert spec.services["b"].ingress.client_cert == "optional"
    assert spec.services["b"].port == 9002
    assert spec.services["b"].command == ("run-a",)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("300ms", 0.3), ("30s", 30), ("5m", 300), ("1h30m", 5400), ("2d", 172800), ("1.5s", 1.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert Duration.parse(text).seconds == pytest.approx(seconds)


def test_duration_round_trips_to_text() -> None:
    assert str(Duration.parse("5m")) == "5m"
    assert str(Duration.parse("300ms")) == "300ms"
    assert str(Duration.parse("90s")) == "90s"


def test_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "nope.yaml")
    assert info.value.problems[0].message == "no such file"
    assert "trustproof init" in info.value.problems[0].hint


def test_non_utf8_file_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"trust_domain: caf\xe9.test\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert "not UTF-8" in info.value.problems[0].message
