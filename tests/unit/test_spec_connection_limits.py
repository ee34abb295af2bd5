"""`limits:` in the spec: defaults, values with units, and clear errors for bad ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustproof.errors import SpecError
from trustproof.gateway.config import connection_limits
from trustproof.gateway.listener import ConnectionLimits
from trustproof.spec import load_spec

BASE = "trust_domain: t.test\n"


def spec_with(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trustproof.yaml"
    path.write_text(BASE + text)
    return path


def test_no_limits_means_the_listener_defaults(tmp_path: Path) -> None:
    assert connection_limits(load_spec(spec_with(tmp_path, ""))) == ConnectionLimits()


def test_limits_are_read_with_their_units(tmp_path: Path) -> None:
    spec = load_spec(
        spec_with(
            tmp_path,
            "limits: {handshake_timeout: 2s, header_timeout: 500ms, idle_timeout: 1m,"
            " max_requests: 5, max_connections: 7}\n",
        )
    )
    assert connection_limits(spec) == ConnectionLimits(2.0, 0.5, 60.0, 5, 7)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("limits: {max_requests: 0}\n", "2:24: limits.max_requests: 0 is out of range"),
        ("limits: {max_connections: ten}\n", "limits.max_connections: expected a whole number"),
        ("limits: {header_timeout: 0s}\n", "limits.header_timeout: bad duration '0s'"),
        ("limits: {idle_timeout: 60}\n", "limits.idle_timeout: bad duration"),
        ("limits: {max_request: 3}\n", "did you mean 'max_requests'?"),
    ],
)
def test_bad_limits_are_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(spec_with(tmp_path, text))
    assert message in caught.value.render()
