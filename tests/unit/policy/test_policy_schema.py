"""The entity model, the built-in schema, the shop's schema and the starter policies agree."""

from __future__ import annotations

from pathlib import Path

import cedarpy
import pytest
from policy_support import ROOT, SHOP_DIR

from trustproof.policy import Directory, builtin_schema_text
from trustproof.spec import load_spec

STARTER = ROOT / "src" / "trustproof" / "spec" / "starter"


def builtin() -> cedarpy.Schema:
    return cedarpy.Schema.from_str(builtin_schema_text())


def test_the_shop_schema_is_the_built_in_one() -> None:
    shop = cedarpy.Schema.from_str((SHOP_DIR / "policies" / "shop.cedarschema").read_text())
    assert str(shop) == str(builtin())


@pytest.mark.parametrize(
    "policies",
    [SHOP_DIR / "policies" / "shop.cedar", STARTER / "app.cedar"],
    ids=["shop", "starter"],
)
def test_policies_validate_against_the_built_in_schema(policies: Path) -> None:
    result = cedarpy.validate_policies(policies.read_text(), builtin())
    assert result.validation_passed, result.errors


def test_a_policy_outside_the_model_does_not_validate() -> None:
    result = cedarpy.validate_policies(
        'permit (principal == User::"alice", action, resource);', builtin()
    )
    assert not result.validation_passed


def test_the_shop_directory_fits_the_schema(shop_spec_path: Path) -> None:
    directory = Directory.from_spec(load_spec(shop_spec_path))
    handle = directory.handle(builtin())  # the twin of the refusal below
    assert len(handle) == len(directory.entities()) + 7  # Cedar adds the schema's 7 actions
    uids = {(e["uid"]["type"], e["uid"]["id"]) for e in directory.entities()}
    assert {("Role", "customer"), ("Persona", "alice"), ("Workload", "orders")} <= uids
    assert ("Route", "orders /orders/{id}") in uids
    assert ("Route", "orders /orders") in uids  # GET and POST /orders: one route entity
    routes = [u for u in uids if u == ("Route", "orders /orders")]
    assert len(routes) == 1
    alice = next(e for e in directory.entities() if e["uid"] == {"type": "Persona", "id": "alice"})
    assert alice["attrs"] == {"kind": "human"}
    assert alice["parents"] == [{"type": "Role", "id": "customer"}]
    route = next(e for e in directory.entities() if e["uid"]["id"] == "orders /orders/{id}")
    assert route["parents"] == [{"type": "Service", "id": "orders"}]


def test_a_directory_the_schema_refuses_is_named(shop_spec_path: Path) -> None:
    directory = Directory.from_spec(load_spec(shop_spec_path))
    narrow = cedarpy.Schema.from_str(builtin_schema_text().replace("kind: String,", ""))
    with pytest.raises(ValueError, match=r'^the schema does not accept Persona::"alice"'):
        directory.handle(narrow)
