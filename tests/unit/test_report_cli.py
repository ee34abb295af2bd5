"""`trustproof report` and the reports `run`/`probe` write (via `_finish`), with
``$GITHUB_STEP_SUMMARY``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_report_render import TOKEN, _xml, fixed_results, passing_results

from trustproof.cli import cli
from trustproof.cli.sandbox import _finish
from trustproof.report import append_step_summary
from trustproof.results import from_json, load


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    (tmp_path / "results.json").write_text(json.dumps(fixed_results()))
    return tmp_path


def test_report_junit_to_stdout(run_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["report", str(run_dir), "--format", "junit"])
    assert result.exit_code == 0, result.output
    root = _xml(result.output)
    assert root.get("failures") == "2"
    assert TOKEN not in result.output


def test_report_md_to_file(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "summary.md"
    result = CliRunner().invoke(
        cli, ["report", str(run_dir / "results.json"), "--format", "md", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("## ❌")


def test_report_json_round_trips(run_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["report", str(run_dir), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["version"] == 1


def test_report_html_to_file(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "report.html"
    result = CliRunner().invoke(
        cli, ["report", str(run_dir), "--format", "html", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert ">FAIL<" in text
    assert TOKEN not in text


def test_report_missing_results_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", str(tmp_path), "--format", "junit"])
    assert result.exit_code == 2
    assert "no results here" in result.output


def test_report_unknown_version_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps({**fixed_results(), "version": 99}))
    result = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown results version 99" in result.output


def test_report_unknown_format_is_refused_by_click(run_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["report", str(run_dir), "--format", "pdf"])
    assert result.exit_code == 2


def test_finish_with_violations_exits_1_writes_reports_and_summary(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    path = run_dir / "results.json"
    with pytest.raises(SystemExit) as info:
        _finish(load(path), path, tmp_path / "reports")
    assert info.value.code == 1
    text = summary.read_text()
    assert text.startswith("earlier step\n## ❌")  # appended, not overwritten
    assert "authz.outside-matrix \\| storefront \\| orders \\| GET /admin" in text
    assert TOKEN not in text
    assert _xml((tmp_path / "reports" / "report.junit.xml").read_text()).get("errors") == "1"
    assert (tmp_path / "reports" / "report.md").read_text().startswith("## ❌")
    assert ">FAIL<" in (tmp_path / "reports" / "report.html").read_text()


def test_finish_all_passing_returns_and_writes_default_report_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(passing_results()))
    _finish(load(path), path)
    assert (tmp_path / "reports" / "report.junit.xml").is_file()
    assert (tmp_path / "reports" / "report.md").read_text().startswith("## ✅")


def test_step_summary_unset_writes_nothing(tmp_path: Path) -> None:
    assert append_step_summary(from_json(passing_results()), env={}) is None
    assert list(tmp_path.iterdir()) == []


def test_step_summary_set_appends(tmp_path: Path) -> None:
    target = tmp_path / "summary.md"
    env = {"GITHUB_STEP_SUMMARY": str(target)}
    append_step_summary(from_json(passing_results()), env=env)
    append_step_summary(from_json(passing_results()), env=env)
    assert target.read_text().count("## ✅") == 2


@pytest.mark.parametrize(
    "change",
    [
        {"stopped_early": True},
        {
            "scenarios": [
                {
                    "id": "lifecycle.token-expiry",
                    "ok": False,
                    "verdict": "fail",
                    "summary": "still accepted",
                    "elapsed_s": 1.0,
                }
            ]
        },
    ],
    ids=["stopped-early", "failed-scenario"],
)
def test_finish_gates_on_results_ok_not_only_on_cases(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    change: dict,
) -> None:
    """Every case passed, yet the run is not ok: exit 1 (the twin of the all-passing test)."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    path = tmp_path / "results.json"
    path.write_text(json.dumps({**passing_results(), **change}))
    results = load(path)
    assert all(case.ok for case in results.cases)
    assert not results.ok
    with pytest.raises(SystemExit) as info:
        _finish(results, path)
    assert info.value.code == 1
    assert "trust is broken" in capsys.readouterr().out
