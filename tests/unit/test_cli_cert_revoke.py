"""`trustproof cert` keeps issuing with `cert NAME --out DIR` and gains `cert revoke NAME` /
`cert revoke --serial HEX`; without a running sandbox each says so (no traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from trustproof.cli import cli
from trustproof.errors import UsageError
from trustproof.sandbox.revocation import parse_serial


def invoke(*args: str, tmp_path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [*args, "--run-dir", str(tmp_path / "run")])
    return result.exit_code, result.output


def test_cert_name_out_still_issues(tmp_path: Path) -> None:
    code, output = invoke("cert", "alice", "--out", str(tmp_path / "c"), tmp_path=tmp_path)
    assert code != 0
    assert "no sandbox is running" in output  # it reached the issuing command
    assert "Traceback" not in output


def test_cert_revoke_needs_a_name_or_a_serial(tmp_path: Path) -> None:
    code, output = invoke("cert", "revoke", tmp_path=tmp_path)
    assert code == 2
    assert "give either NAME or --serial" in output
    code, output = invoke("cert", "revoke", "orders", "--serial", "ab", tmp_path=tmp_path)
    assert code == 2
    code, output = invoke("cert", "revoke", "orders", tmp_path=tmp_path)
    assert code != 0
    assert "no sandbox is running" in output


def test_cert_help_names_both() -> None:
    output = CliRunner().invoke(cli, ["cert", "--help"]).output
    assert "revoke" in output
    assert "issue" in output


@pytest.mark.parametrize(
    ("text", "serial"), [("5f3a", 0x5F3A), ("0x5F3A", 0x5F3A), ("5f:3a", 0x5F3A)]
)
def test_serials_are_hex(text: str, serial: int) -> None:
    assert parse_serial(text) == serial


@pytest.mark.parametrize("text", ["", "xyz", "0", "-5"])
def test_a_bad_serial_is_a_clear_error(text: str) -> None:
    with pytest.raises(UsageError, match="not a certificate serial"):
        parse_serial(text)
