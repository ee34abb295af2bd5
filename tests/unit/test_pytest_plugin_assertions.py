"""`assert_allowed`/`assert_denied` read answers as the suite does: header names in any case, and
an answer neither served nor refused (``inconclusive``) fails both (no sockets)."""

from __future__ import annotations

import pytest

from trustproof.pytest_plugin.assertions import assert_allowed, assert_denied, observed
from trustproof.pytest_plugin.client import Response


def response(status: int, *headers: tuple[str, str], via_gateway: bool = True) -> Response:
    return Response(status, headers, b"{}", via_gateway=via_gateway, request="GET /orders")


def test_a_lower_case_marker_is_the_service_s() -> None:
    served = response(200, ("x-served-by", "orders"))
    assert observed(served)[0] == "allowed"
    assert_allowed(served, served_by="orders")
    with pytest.raises(AssertionError, match="served by payments"):
        assert_allowed(served, served_by="payments")


def test_a_lower_case_gateway_refusal_is_a_refusal() -> None:
    refused = response(403, ("x-trustproof-decision", "deny"))
    assert_denied(refused)
    with pytest.raises(AssertionError, match="expected allowed"):
        assert_allowed(refused)


@pytest.mark.parametrize("via_gateway", [True, False])
def test_a_500_is_neither_allowed_nor_denied(via_gateway: bool) -> None:
    broken = response(500, via_gateway=via_gateway)
    assert observed(broken)[0] == "inconclusive"
    with pytest.raises(AssertionError, match="inconclusive"):
        assert_allowed(broken)
    with pytest.raises(AssertionError, match="inconclusive"):
        assert_denied(broken)
