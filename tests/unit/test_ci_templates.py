"""The CI templates users copy: valid YAML that runs the gate and keeps the evidence."""

from __future__ import annotations

from pathlib import Path

import yaml

CI = Path(__file__).resolve().parents[2] / "examples" / "ci"


def test_github_actions_runs_the_gate_and_uploads_reports() -> None:
    workflow = yaml.safe_load((CI / "github-actions.yml").read_text())
    steps = workflow["jobs"]["zero-trust"]["steps"]
    runs = " ".join(str(step.get("run", "")) for step in steps)
    assert "trustproof run trustproof.yaml" in runs
    upload = next(step for step in steps if "upload-artifact" in str(step.get("uses")))
    assert upload["if"] == "always()"  # the evidence survives a failing gate
    assert "trustproof-reports/" in upload["with"]["path"]


def test_gitlab_job_runs_the_gate_and_publishes_junit() -> None:
    job = yaml.safe_load((CI / "gitlab-ci.yml").read_text())["trustproof"]
    assert any("trustproof run trustproof.yaml" in line for line in job["script"])
    assert job["artifacts"]["when"] == "always"
    assert job["artifacts"]["reports"]["junit"] == "trustproof-reports/report.junit.xml"
