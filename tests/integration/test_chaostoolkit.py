"""trustproof's faults and matrix checks driven by the real Chaos Toolkit (`chaos run`): an
experiment whose steady state (a sample of the shop's access matrix) holds through a trustproof
experiment and a token-service outage completes; its twin, which takes the audit log down and
checks the steady state before rolling back, deviates."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration
SHOP = str(Path(__file__).resolve().parents[2] / "examples" / "shop" / "trustproof.yaml")
CHAOS = shutil.which("chaos") or str(Path(__import__("sys").executable).parent / "chaos")


def activity(kind: str, module: str, func: str, **arguments: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "name": func.replace("_", "-"),
        "provider": {
            "type": "python",
            "module": f"trustproof.chaostoolkit.{module}",
            "func": func,
            "arguments": {"spec": SHOP, **arguments},
        },
    }


def experiment(method: list[dict[str, Any]], rollbacks: list[dict[str, Any]]) -> dict[str, Any]:
    holds = activity("probe", "probes", "matrix_holds")
    holds["tolerance"] = True
    return {
        "version": "1.0.0",
        "title": "the shop keeps trusting exactly who it should",
        "description": "trustproof faults from Chaos Toolkit",
        "steady-state-hypothesis": {"title": "the access matrix holds", "probes": [holds]},
        "method": method,
        "rollbacks": [*rollbacks, activity("action", "actions", "stop_sandbox")],
    }


def chaos_run(tmp_path: Path, document: dict[str, Any]) -> dict[str, Any]:
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(document))
    journal = tmp_path / "journal.json"
    done = subprocess.run(
        [CHAOS, "--no-version-check", "--log-file", str(tmp_path / "chaos.log"), "run",
         "--journal-path", str(journal), str(path)],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert journal.exists(), done.stdout + done.stderr
    result: dict[str, Any] = json.loads(journal.read_text())
    return result


def test_an_experiment_whose_steady_state_holds_completes(tmp_path: Path) -> None:
    journal = chaos_run(
        tmp_path,
        experiment(
            [
                activity("action", "actions", "run_experiment", fault="cedar-error"),
                activity("probe", "probes", "last_experiment_passed"),
                activity("action", "actions", "token_service_down", mode="stopped"),
                activity("probe", "probes", "matrix_report"),
            ],
            [activity("action", "actions", "token_service_restore")],
        ),
    )
    assert journal["status"] == "completed", journal.get("run")
    assert journal["deviated"] is False
    assert journal["steady_states"]["after"]["steady_state_met"] is True
    run = {item["activity"]["name"]: item for item in journal["run"]}
    assert run["run-experiment"]["output"]["verdict"] == "pass"
    assert run["run-experiment"]["output"]["id"] == "chaos.cedar-error"
    assert run["last-experiment-passed"]["output"] is True
    assert run["token-service-down"]["output"] == "token service stopped"
    assert run["matrix-report"]["output"]["held"] is True  # the gateways hold the keys
    rolled = {item["activity"]["name"]: item for item in journal["rollbacks"]}
    assert rolled["token-service-restore"]["output"] is True
    assert rolled["stop-sandbox"]["output"] is True


def test_its_twin_taking_the_audit_log_down_deviates(tmp_path: Path) -> None:
    journal = chaos_run(
        tmp_path,
        experiment(
            [activity("action", "actions", "audit_sink_down")],
            [activity("action", "actions", "audit_sink_restore")],
        ),
    )
    assert journal["deviated"] is True
    assert journal["steady_states"]["before"]["steady_state_met"] is True
    assert journal["steady_states"]["after"]["steady_state_met"] is False
    rolled = {item["activity"]["name"]: item for item in journal["rollbacks"]}
    assert rolled["audit-sink-restore"]["output"] is True
