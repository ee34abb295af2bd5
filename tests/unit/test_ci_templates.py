"""The CI templates users copy: valid against the published workflow schemas (SchemaStore's, as
vendored by check-jsonschema — read from the package, no network), and doing what a gate must:
run trustproof, keep the evidence from non-hidden paths even when the gate fails, give the
reporters the permissions they need, install trustproof from a source the user sets."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

CI = Path(__file__).resolve().parents[2] / "examples" / "ci"
VENDORED = resources.files("check_jsonschema.builtin_schemas.vendor")


def _schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((VENDORED / name).read_text(encoding="utf-8"))
    return schema


def _errors(document: Any, schema_name: str) -> list[str]:
    validator = jsonschema.Draft7Validator(_schema(schema_name))
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def _github() -> dict[Any, Any]:
    workflow: dict[Any, Any] = yaml.safe_load((CI / "github-actions.yml").read_text())
    # PyYAML reads the `on:` key as the boolean True (YAML 1.1); the schema wants the string.
    workflow["on"] = workflow.pop(True)
    return workflow


def _gitlab() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    return document


def test_github_workflow_is_valid_against_the_published_schema() -> None:
    assert _errors(_github(), "github-workflows.json") == []


def test_gitlab_job_is_valid_against_the_published_schema() -> None:
    assert _errors(_gitlab(), "gitlab-ci.json") == []


def test_the_schemas_catch_a_broken_template() -> None:
    """The failing twin: a misspelt key or a wrong type is found, so a pass above means valid."""
    broken = _github()
    broken["jobs"]["zero-trust"]["runs_on"] = broken["jobs"]["zero-trust"].pop("runs-on")
    assert _errors(broken, "github-workflows.json")
    job = _gitlab()
    job["trustproof"]["artifacts"]["when"] = "sometimes"
    assert _errors(job, "gitlab-ci.json")


def _paths(block: str | list[str]) -> list[str]:
    lines = block if isinstance(block, list) else block.splitlines()
    return [line.strip() for line in lines if line.strip()]


@pytest.mark.parametrize("template", ["github", "gitlab"])
def test_evidence_is_kept_from_non_hidden_paths(template: str) -> None:
    if template == "github":
        steps = _github()["jobs"]["zero-trust"]["steps"]
        upload = next(step for step in steps if "upload-artifact" in str(step.get("uses")))
        assert upload["if"] == "always()"  # the evidence survives a failing gate
        paths = _paths(upload["with"]["path"])
    else:
        artifacts = _gitlab()["trustproof"]["artifacts"]
        assert artifacts["when"] == "always"
        paths = _paths(artifacts["paths"])
    # upload-artifact (v4.4+) skips hidden files and directories: no path may go through one
    assert not [p for p in paths if any(part.startswith(".") for part in Path(p).parts)]
    for wanted in ("trustproof-reports/", "results.json", "logs/", "audit.jsonl"):
        assert any(p.endswith(wanted) for p in paths), wanted


def test_the_run_writes_where_the_evidence_is_collected() -> None:
    for text in ((CI / "github-actions.yml").read_text(), (CI / "gitlab-ci.yml").read_text()):
        assert (
            'trustproof run trustproof.yaml --run-dir "$RUN_DIR" --report-dir "$REPORT_DIR"' in text
        )
    env = _github()["jobs"]["zero-trust"]["env"]
    assert (env["RUN_DIR"], env["REPORT_DIR"]) == ("trustproof-run", "trustproof-reports")
    variables = _gitlab()["trustproof"]["variables"]
    assert (variables["RUN_DIR"], variables["REPORT_DIR"]) == (
        "trustproof-run",
        "trustproof-reports",
    )


def test_github_reporters_have_their_permissions() -> None:
    workflow = _github()
    assert workflow["permissions"] == {"contents": "read", "checks": "write"}
    steps = workflow["jobs"]["zero-trust"]["steps"]
    assert any("action-junit-report" in str(step.get("uses")) for step in steps)


def test_gitlab_publishes_junit_and_code_quality() -> None:
    job = _gitlab()["trustproof"]
    assert job["artifacts"]["reports"] == {
        "junit": "trustproof-reports/report.junit.xml",
        "codequality": "trustproof-reports/codequality.json",
    }
    assert any("--format codequality" in line for line in job["after_script"])


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_install_comes_from_a_source_the_user_sets_with_a_clear_error(name: str) -> None:
    text = (CI / name).read_text()
    assert 'pip install "$TRUSTPROOF_PIP"' in text
    assert 'if [ -z "$TRUSTPROOF_PIP" ]' in text  # unset: a clear message, exit 2
    assert not re.search(r"pip install \"?trustproof==", text)  # no index serves it


def test_pip_is_cached() -> None:
    setup = next(
        step
        for step in _github()["jobs"]["zero-trust"]["steps"]
        if "setup-python" in str(step.get("uses"))
    )
    assert setup["with"]["cache"] == "pip"
    assert ".cache/pip" in _gitlab()["trustproof"]["cache"]["paths"]
