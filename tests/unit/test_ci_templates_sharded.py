"""The sharded CI templates (a GitHub Actions matrix, GitLab `parallel:`): valid against the
published schemas, every shard running its own slice and keeping its evidence even when it fails,
and a verdict job that gets every shard's results and gates on `trustproof report merge` — whose
command, run as the template writes it on the layout the artifacts land in, gives the full run's
verdict."""

from __future__ import annotations

import glob
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from test_ci_templates import _errors, _paths
from test_report_merge import CASE_IDS, cut, full_run

from trustproof.cli import cli
from trustproof.results import Results, load, write
from trustproof.shard import Shard

CI = Path(__file__).resolve().parents[2] / "examples" / "ci"
SHARDS = 3


def _github() -> dict[Any, Any]:
    workflow: dict[Any, Any] = yaml.safe_load((CI / "github-actions-sharded.yml").read_text())
    workflow["on"] = workflow.pop(True)  # PyYAML reads `on:` as True (YAML 1.1)
    return workflow


def _gitlab() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((CI / "gitlab-ci-sharded.yml").read_text())
    return document


def _step(steps: list[dict[str, Any]], text: str) -> dict[str, Any]:
    return next(step for step in steps if text in str(step.get("run", step.get("uses", ""))))


def test_the_sharded_templates_are_valid_against_the_published_schemas() -> None:
    assert _errors(_github(), "github-workflows.json") == []
    assert _errors(_gitlab(), "gitlab-ci.json") == []


def test_the_schemas_catch_a_broken_sharded_template() -> None:
    workflow = _github()
    workflow["jobs"]["verdict"]["needs"] = {"job": "zero-trust"}
    assert _errors(workflow, "github-workflows.json")
    document = _gitlab()
    document["trustproof"]["parallel"] = "three"
    assert _errors(document, "gitlab-ci.json")


def test_github_runs_one_shard_per_matrix_entry_and_keeps_each_ones_evidence() -> None:
    job = _github()["jobs"]["zero-trust"]
    assert job["strategy"]["matrix"]["shard"] == list(range(1, SHARDS + 1))
    assert job["strategy"]["fail-fast"] is False  # a failing shard does not cancel the others
    run = _step(job["steps"], "trustproof run")["run"]
    assert f"--shard ${{{{ matrix.shard }}}}/{SHARDS}" in run
    assert '--run-dir "$RUN_DIR" --report-dir "$REPORT_DIR"' in run
    upload = _step(job["steps"], "upload-artifact")
    assert upload["if"] == "always()"
    assert upload["with"]["name"] == "trustproof-shard-${{ matrix.shard }}"
    paths = _paths(upload["with"]["path"])
    for wanted in ("trustproof-reports/", "results.json", "logs/", "audit.jsonl"):
        assert any(p.endswith(wanted) for p in paths), wanted
    assert not [p for p in paths if any(part.startswith(".") for part in Path(p).parts)]


def test_github_verdict_job_merges_every_shard_and_gates_on_it() -> None:
    verdict = _github()["jobs"]["verdict"]
    assert verdict["needs"] == "zero-trust"
    assert verdict["if"] == "always()"  # runs when a shard failed too
    download = _step(verdict["steps"], "download-artifact")
    assert download["with"]["pattern"] == "trustproof-shard-*"
    merge = _step(verdict["steps"], "trustproof report merge")
    assert "continue-on-error" not in merge  # its exit code is the verdict
    assert "if" not in merge
    assert "|| true" not in merge["run"]
    junit = _step(verdict["steps"], "action-junit-report")
    assert junit["with"]["report_paths"] == "trustproof-merged/report.junit.xml"
    kept = _step(verdict["steps"], "upload-artifact")
    assert kept["if"] == "always()"
    assert _paths(kept["with"]["path"]) == ["trustproof-merged/"]


def test_gitlab_runs_parallel_shards_each_keeping_its_evidence_apart() -> None:
    job = _gitlab()["trustproof"]
    assert job["parallel"] == SHARDS
    run = next(line for line in job["script"] if line.startswith("trustproof run"))
    assert '--shard "$CI_NODE_INDEX/$CI_NODE_TOTAL"' in run
    assert '--run-dir "$RUN_DIR" --report-dir "$REPORT_DIR"' in run
    # the verdict job gets every copy's artifacts in one checkout: one directory per shard
    assert job["variables"]["RUN_DIR"] == "trustproof-run-$CI_NODE_INDEX"
    assert job["variables"]["REPORT_DIR"] == "trustproof-reports-$CI_NODE_INDEX"
    assert job["artifacts"]["when"] == "always"
    paths = _paths(job["artifacts"]["paths"])
    assert all("$CI_NODE_INDEX" in p for p in paths)
    for wanted in ("/results.json", "/logs/", "/audit.jsonl"):
        assert any(p.endswith(wanted) for p in paths), wanted


def test_gitlab_verdict_job_needs_every_shard_and_gates_on_the_merge() -> None:
    verdict = _gitlab()["trustproof-verdict"]
    assert verdict["needs"] == [{"job": "trustproof", "artifacts": True}]
    assert verdict["when"] == "always"
    assert "allow_failure" not in verdict
    assert any(line.startswith("trustproof report merge") for line in verdict["script"])
    assert verdict["artifacts"]["reports"] == {
        "junit": "trustproof-merged/report.junit.xml",
        "codequality": "trustproof-merged/codequality.json",
    }


def _merge_line(template: str) -> str:
    if template == "github":
        merge = _step(_github()["jobs"]["verdict"]["steps"], "trustproof report merge")
        return str(merge["run"])
    script = _gitlab()["trustproof-verdict"]["script"]
    return str(next(line for line in script if line.startswith("trustproof report merge")))


def _land(root: Path, template: str, shards: list[Results]) -> None:
    """Where each shard's results.json is once the verdict job has its artifacts."""
    for results in shards:
        assert results.shard is not None
        k = results.shard.index
        if template == "github":  # download-artifact: one directory per artifact name
            run_dir = root / "trustproof-shards" / f"trustproof-shard-{k}" / "trustproof-run"
        else:  # GitLab: every job's artifacts at their paths in the one checkout
            run_dir = root / f"trustproof-run-{k}"
        run_dir.mkdir(parents=True)
        write(results, run_dir)


def _run_merge_line(root: Path, line: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """The template's command, its globs expanded as a shell does (sorted; kept as written when
    nothing matches), run in `root`."""
    words = shlex.split(line)
    assert words[:3] == ["trustproof", "report", "merge"]
    args: list[str] = []
    for word in words[3:]:
        matches = sorted(glob.glob(word, root_dir=root)) if "*" in word else []
        args += matches or [word]
    monkeypatch.chdir(root)
    result = CliRunner().invoke(cli, ["report", "merge", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize("template", ["github", "gitlab"])
def test_the_templates_merge_command_gives_the_full_runs_verdict(
    template: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = _merge_line(template)
    good = tmp_path / "good"
    _land(good, template, cut(full_run(), SHARDS))
    code, output = _run_merge_line(good, line, monkeypatch)
    assert code == 0, output
    assert "merged 3 shards" in output
    assert len(load(good / "trustproof-merged").cases) == len(CASE_IDS)

    bad_case = next(cid for cid in CASE_IDS if Shard(2, SHARDS).owns(cid))
    bad = tmp_path / "bad"
    _land(bad, template, cut(full_run(failing=(bad_case,)), SHARDS))
    code, output = _run_merge_line(bad, line, monkeypatch)
    assert code == 1, output

    missing = tmp_path / "missing"  # shard 3's job died before writing its results
    _land(missing, template, cut(full_run(), SHARDS)[:2])
    code, output = _run_merge_line(missing, line, monkeypatch)
    assert code == 2, output
    assert "shard 3/3 missing" in output
