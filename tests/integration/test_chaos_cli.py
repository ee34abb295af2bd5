"""`trustproof chaos` and `trustproof run --no-chaos` on the `init` starter (free ports): the
experiments land in results.json and the reports; an empty selection is a usage error before
anything starts; `--no-chaos` leaves them out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def trustproof(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trustproof", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def scenario_ids(cwd: Path) -> list[str]:
    data = json.loads((cwd / ".trustproof" / "last-run" / "results.json").read_text())
    return [s["id"] for s in data["scenarios"]]


def test_trustproof_chaos_runs_only_the_chosen_experiments(tmp_path: Path) -> None:
    assert trustproof("init", cwd=tmp_path).returncode == 0
    done = trustproof(
        "chaos", "--select", "chaos.cedar-error", "--report-dir", "reports", cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "experiments only, in" in done.stdout
    assert "PASS  chaos.cedar-error" in done.stdout
    assert scenario_ids(tmp_path) == ["chaos.cedar-error"]
    assert "chaos.cedar-error" in (tmp_path / "reports" / "report.md").read_text()
    nothing = trustproof("chaos", "--select", "chaos.nothing", cwd=tmp_path)
    assert nothing.returncode == 2
    assert "no chaos experiment matches the selection" in nothing.stderr
    assert "sandbox ready" not in nothing.stderr  # refused before anything started


def test_run_includes_the_experiments_unless_no_chaos(tmp_path: Path) -> None:
    assert trustproof("init", cwd=tmp_path).returncode == 0
    select = ("--select", "authz.inside-matrix", "--select", "chaos.audit-sink-down")
    with_chaos = trustproof("run", *select, cwd=tmp_path)
    assert with_chaos.returncode == 0, with_chaos.stdout + with_chaos.stderr
    assert "chaos.audit-sink-down" in scenario_ids(tmp_path)
    without = trustproof("run", *select, "--no-chaos", cwd=tmp_path)
    assert without.returncode == 0, without.stdout + without.stderr
    assert [s for s in scenario_ids(tmp_path) if s.startswith("chaos.")] == []
