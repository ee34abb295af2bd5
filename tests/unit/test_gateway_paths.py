"""Path canonicalisation: tricks decide like the canonical path, or are refused outright."""

from __future__ import annotations

import pytest

from trustproof.gateway.paths import BadTarget, CanonicalTarget, RouteTable, canonicalize
from trustproof.spec.values import Route


@pytest.mark.parametrize(
    ("raw", "path", "query"),
    [
        ("/orders", "/orders", ""),
        ("/orders/", "/orders", ""),
        ("//orders", "/orders", ""),
        ("/orders//42", "/orders/42", ""),
        ("/./orders/./42", "/orders/42", ""),
        ("/payments/../orders/42", "/orders/42", ""),
        ("/orders/%34%32", "/orders/42", ""),
        ("/%2e%2e/orders", None, ""),  # above the root: refused (see below)
        ("/orders/%2E/42", "/orders/42", ""),
        ("/orders/7/%2e%2e/42", "/orders/42", ""),
        ("/orders?id=1&x=%2F", "/orders", "id=1&x=%2F"),
        ("/caf%C3%A9", "/café", ""),
        ("/", "/", ""),
    ],
)
def test_tricks_canonicalise(raw: str, path: str | None, query: str) -> None:
    result = canonicalize(raw)
    if path is None:
        assert isinstance(result, BadTarget)
        return
    assert result == CanonicalTarget(path, query)


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        ("/orders%2F42", "an encoded '/'"),
        ("/orders%2f42", "an encoded '/'"),
        ("/orders%5C42", "an encoded '\\'"),
        ("/orders%00", "an encoded NUL"),
        ("/orders/%252e%252e/admin", "double encoding"),
        ("/../etc/passwd", "climbs above the root"),
        ("/orders/%", "malformed percent-escape"),
        ("/orders/%zz", "malformed percent-escape"),
        ("/orders\\42", "forbidden character"),
        ("/orders 42", "forbidden character"),
        ("/caf%C3", "not valid UTF-8"),
        ("http://evil/orders", "origin-form"),
        ("*", "origin-form"),
    ],
)
def test_ambiguous_paths_are_refused(raw: str, detail: str) -> None:
    result = canonicalize(raw)
    assert isinstance(result, BadTarget)
    assert detail in result.detail


ROUTES = RouteTable(
    [
        Route("GET", "/orders"),
        Route("GET", "/orders/{id}"),
        Route("GET", "/orders/new"),
        Route("POST", "/orders"),
        Route("GET", "/"),
    ]
)


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("GET", "/orders", "GET /orders"),
        ("GET", "/orders/42", "GET /orders/{id}"),
        ("GET", "/orders/new", "GET /orders/new"),  # a literal beats a parameter
        ("POST", "/orders", "POST /orders"),
        ("GET", "/", "GET /"),
    ],
)
def test_route_matching(method: str, path: str, route: str) -> None:
    assert str(ROUTES.match(method, path)) == route


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/orders/42"),
        ("GET", "/ORDERS"),
        ("GET", "/orders/42/items"),
        ("PUT", "/"),
    ],
)
def test_no_route(method: str, path: str) -> None:
    assert ROUTES.match(method, path) is None


def test_methods_for_a_path() -> None:
    assert ROUTES.methods_for("/orders") == ("GET", "POST")
    assert ROUTES.methods_for("/nothing") == ()
