"""`trustproof doctor`: what the spec needs, what is missing, and the exact install line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from trustproof.cli import cli, doctor

SPEC = """\
trust_domain: d.test
services:
  edge:
    command: [sh, run-nginx.sh]
    port: 18443
datastores:
  db: {}
"""


def test_needs_follow_the_spec(tmp_path: Path) -> None:
    spec = tmp_path / "trustproof.yaml"
    spec.write_text(SPEC)
    by_name = {c.name: c for c in doctor.checks(spec)}
    assert by_name["nginx"].needed
    assert by_name["PostgreSQL server (initdb, postgres)"].needed
    assert not by_name["haproxy"].needed
    assert not by_name["isolated backend (network namespaces)"].needed  # `auto`: reported
    assert not by_name["nft"].needed
    spec.write_text(SPEC + "backend: isolated\n")
    by_name = {c.name: c for c in doctor.checks(spec)}
    assert by_name["isolated backend (network namespaces)"].needed
    assert by_name["nft"].needed
    assert by_name["nft"].package == "nftables"


def test_missing_tools_give_the_install_line_and_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "trustproof.yaml"
    spec.write_text(SPEC)
    monkeypatch.setattr(doctor.shutil, "which", lambda _name: None)
    monkeypatch.setattr(doctor, "_executable", lambda _path: False)
    result = CliRunner().invoke(cli, ["doctor", str(spec)])
    assert result.exit_code == 3
    assert "apt-get install -y nginx util-linux" in result.output
    assert "missing for this spec: setpriv, nginx" in result.stderr


def test_nothing_missing_is_ready(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "trustproof.yaml"
    spec.write_text("trust_domain: d.test\n")
    monkeypatch.setattr(doctor.shutil, "which", lambda name: f"/usr/bin/{name}")
    result = CliRunner().invoke(cli, ["doctor", str(spec)])
    assert result.exit_code == 0, result.output
    assert "ready" in result.output
