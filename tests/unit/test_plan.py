from __future__ import annotations

from pathlib import Path

from trustproof.catalogue import PROBE_IDS, selected
from trustproof.plan import expected_matrix
from trustproof.spec import load_spec, parse_spec


def test_shop_matrix_cells(shop_spec_path: Path) -> None:
    boundaries = {b.name: b for b in expected_matrix(load_spec(shop_spec_path))}
    storefront = boundaries["storefront"]
    assert storefront.allowed("alice", "POST /checkout")
    assert not storefront.allowed("bob", "POST /checkout")
    assert not storefront.allowed("orders", "GET /products")
    assert "storefront" not in storefront.callers  # a service is not its own caller
    orders = boundaries["orders"]
    assert not any(orders.allowed(c, "DELETE /orders/{id}") for c in orders.callers)
    shopdb = boundaries["shopdb"]
    assert shopdb.kind == "datastore"
    assert shopdb.allowed("storefront", "select products")
    assert not shopdb.allowed("storefront", "insert products")
    assert not shopdb.allowed("payments", "select orders")


def test_wildcard_allows_every_route(tmp_path: Path) -> None:
    spec = parse_spec(
        "trust_domain: t.test\npersonas: {ann: {}}\n"
        "services:\n  api:\n    command: x\n    port: 1\n    routes: [GET /a, POST /b]\n"
        "access:\n  services:\n    api:\n      ann: ['*']\n",
        tmp_path / "s.yaml",
    )
    (api,) = expected_matrix(spec)
    assert api.allowed("ann", "GET /a")
    assert api.allowed("ann", "POST /b")


def test_probe_selection_globs() -> None:
    assert selected(("*",), ()) == PROBE_IDS
    chosen = selected(("token.*",), ("token.revoked",))
    assert "token.expired" in chosen
    assert "token.revoked" not in chosen
    assert all(pid.startswith("token.") for pid in chosen)
