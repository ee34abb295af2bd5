"""The installed entry points, run as real processes the way a user or CI runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=cwd, check=False)


def test_console_script_validates_the_shop(shop_spec_path: Path) -> None:
    result = run(str(BIN / "trustproof"), "validate", str(shop_spec_path))
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_python_dash_m_reports_a_bad_spec(tmp_path: Path) -> None:
    spec = tmp_path / "trustproof.yaml"
    spec.write_text("trust_domain: t.test\nservices:\n  a:\n    command: x\n    prot: 80\n")
    result = run(sys.executable, "-m", "trustproof", "validate", str(spec))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert f"{spec}:5:5: services.a.prot: unknown key 'prot'" in lines
    assert "    hint: did you mean 'port'?" in lines
    assert "Traceback" not in result.stderr


def test_init_then_validate_in_a_fresh_directory(tmp_path: Path) -> None:
    assert run(str(BIN / "trustproof"), "init", cwd=tmp_path).returncode == 0
    result = run(str(BIN / "trustproof"), "validate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
