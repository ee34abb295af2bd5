"""`ConnectionLimits`: safe defaults, and a clear error for a value that would disable a limit."""

from __future__ import annotations

import pytest

from trustproof.gateway.listener import ConnectionLimits


def test_defaults_bound_everything() -> None:
    limits = ConnectionLimits()
    assert 0 < limits.handshake_timeout <= 30
    assert 0 < limits.header_timeout <= 30
    assert 0 < limits.idle_timeout <= 120
    assert 1 <= limits.max_requests <= 10_000
    assert 1 <= limits.max_connections <= 4096


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("handshake_timeout", 0),
        ("header_timeout", -1.0),
        ("idle_timeout", float("nan")),
        ("idle_timeout", True),
        ("header_timeout", float("inf")),
        ("max_requests", 0),
        ("max_connections", 2.5),
        ("max_connections", False),
    ],
)
def test_a_value_that_would_disable_a_limit_is_refused(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"ConnectionLimits.{field} must be"):
        ConnectionLimits(**{field: value})  # type: ignore[arg-type]


def test_short_limits_are_accepted() -> None:
    assert ConnectionLimits(header_timeout=0.1, max_connections=1).max_connections == 1
