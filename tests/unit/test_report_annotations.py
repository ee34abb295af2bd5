"""Findings pinned to spec lines: `SpecLines`, GitHub workflow commands, GitLab Code Quality, and
the `reports:` section as `run`/`probe` honour it (`_finish`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_report_render import TOKEN, _case, fixed_results

from trustproof.cli.sandbox import _finish
from trustproof.report import FILES, render, write_reports
from trustproof.report.annotations import MAX_FINDINGS, findings, render_codequality
from trustproof.results import from_json, load
from trustproof.spec.lines import SpecLines
from trustproof.spec.model import Reports

SPEC = """\
version: 1
trust_domain: shop.test
services:
  storefront:
    command: [python, app.py]
    port: 18101
    routes: [GET /products, GET /admin]
  orders:
    command: [python, orders.py]
    port: 18102
access:
  services:
    storefront:
      orders:
        - GET /products
    orders: {}
"""


def _results(spec: Path, cases: list[dict[str, Any]], scenarios: bool = False) -> Any:
    data = fixed_results()
    data["spec"] = str(spec)
    data["cases"] = cases
    if not scenarios:
        data["scenarios"] = []
    return from_json(data)


def test_lines_of_keys_and_list_items() -> None:
    lines = SpecLines.of_text(SPEC, "trustproof.yaml")
    assert lines.line(("services", "storefront")) == 4
    assert lines.line(("access", "services", "storefront", "orders")) == 14
    assert lines.item_line(("access", "services", "storefront", "orders"), "GET /products") == 15
    assert lines.item_line(("services", "storefront", "routes"), "GET /admin") == 7
    assert lines.line(("nowhere",), ("services", "orders")) == 8  # the first one written
    assert lines.line(("nowhere",)) is None


def test_lines_of_an_unparsable_or_missing_file_are_empty(tmp_path: Path) -> None:
    assert SpecLines.of_text("a: [b\n", "x.yaml") == SpecLines()
    assert SpecLines.of_file(tmp_path / "missing.yaml") == SpecLines()


def test_a_finding_points_at_the_most_specific_line(tmp_path: Path) -> None:
    spec = tmp_path / "trustproof.yaml"
    spec.write_text(SPEC)
    under = _case(
        "authz.inside-matrix | storefront | orders | GET /products",
        "storefront",
        "under-permission",
    )
    over = _case(
        "authz.outside-matrix | storefront | orders | GET /admin",
        "storefront",
        "over-permission",
        operation="GET /admin",
    )
    stranger = _case(
        "authz.outside-matrix | orders | storefront | GET /x",
        "orders",
        "over-permission",
        caller="storefront",
    )
    found = findings(_results(spec, [under, over, stranger]), root=tmp_path)
    assert [(f.verdict, f.file, f.line) for f in found] == [
        ("under-permission", "trustproof.yaml", 15),  # the route in the caller's list
        ("over-permission", "trustproof.yaml", 14),  # the caller's key: GET /admin is not listed
        ("over-permission", "trustproof.yaml", 16),  # no such caller: the boundary's block
    ]


def test_failures_are_grouped_and_capped(tmp_path: Path) -> None:
    spec = tmp_path / "trustproof.yaml"
    spec.write_text(SPEC)
    many = [
        _case(f"authz.path-traversal | storefront | orders | GET /p{i}", "storefront", "not-served")
        for i in range(7)
    ]
    (only,) = findings(_results(spec, many), root=tmp_path)
    assert only.title == "7 x not-served on storefront: authz.path-traversal"
    assert "and 4 more" in only.message
    assert "How to fix" in only.message
    distinct = [
        _case(f"p{i}.x | b{i} | orders | GET /", f"b{i}", "over-permission")
        for i in range(MAX_FINDINGS + 5)
    ]
    capped = findings(_results(spec, distinct), root=tmp_path)
    assert len(capped) == MAX_FINDINGS
    assert capped[-1].title == "6 more findings"


def test_github_commands_are_escaped_and_never_carry_a_token(tmp_path: Path) -> None:
    spec = tmp_path / "trustproof.yaml"
    spec.write_text(SPEC)
    leaky = _case(
        "authz.outside-matrix | storefront | orders | GET /admin",
        "storefront",
        "over-permission",
        reason=f"50%, a:b\nBearer {TOKEN}",
        operation="GET /admin",
    )
    text = render(_results(spec, [leaky]), "github")
    (line,) = text.splitlines()
    assert line.startswith("::error file=")
    assert ",line=14,title=over-permission on storefront%3A authz.outside-matrix::" in line
    assert "50%25" in line
    assert "%0A" in line  # one line per command, whatever the message holds
    assert TOKEN not in text


def test_codequality_report_shape(tmp_path: Path) -> None:
    spec = tmp_path / "trustproof.yaml"
    spec.write_text(SPEC)
    over = _case(
        "authz.outside-matrix | storefront | orders | GET /admin",
        "storefront",
        "over-permission",
        operation="GET /admin",
    )
    results = _results(spec, [over], scenarios=True)
    entries = json.loads(render_codequality(results))
    assert [e["check_name"] for e in entries] == ["authz.outside-matrix", "scenario"]
    first = entries[0]
    assert first["severity"] == "critical"
    assert first["location"]["lines"]["begin"] == 14
    assert len({e["fingerprint"] for e in entries}) == 2
    assert set(first) == {"description", "check_name", "fingerprint", "severity", "location"}


def test_passing_run_has_no_findings(tmp_path: Path) -> None:
    spec = tmp_path / "trustproof.yaml"
    spec.write_text(SPEC)
    ok = _results(spec, [_case("authz.inside-matrix | storefront | orders | GET /", "storefront")])
    assert render(ok, "github") == ""
    assert json.loads(render(ok, "codequality")) == []


def test_write_reports_writes_exactly_the_formats_asked(tmp_path: Path) -> None:
    results = from_json(fixed_results())
    written = write_reports(results, tmp_path / "x", ("json", "md"))
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["report.md", "results.json"]
    assert set(written) == {"json", "md"}
    assert json.loads((tmp_path / "x" / FILES["json"]).read_text())["version"] == 1


def test_finish_honours_the_spec_reports_section_and_annotates_under_actions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    spec = tmp_path / "trustproof.yaml"
    spec.write_text(SPEC)
    path = tmp_path / "run" / "results.json"
    path.parent.mkdir()
    data = fixed_results()
    data["spec"] = str(spec)
    path.write_text(json.dumps(data))
    reports = Reports(formats=("json", "md"))
    with pytest.raises(SystemExit):
        _finish(load(path), path, None, reports, tmp_path / "x")
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["report.md", "results.json"]
    assert not (tmp_path / "run" / "reports").exists()
    printed = capsys.readouterr().out
    assert "::error file=trustproof.yaml,line=" in printed
    assert TOKEN not in printed


def test_finish_prints_no_annotations_outside_actions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(fixed_results()))
    with pytest.raises(SystemExit):
        _finish(load(path), path, tmp_path / "reports")
    assert "::error" not in capsys.readouterr().out


def test_finish_as_json_puts_only_the_results_on_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(fixed_results()))
    with pytest.raises(SystemExit) as info:
        _finish(load(path), path, tmp_path / "reports", as_json=True)
    assert info.value.code == 1  # the gate is the same
    printed = capsys.readouterr()
    assert json.loads(printed.out)["version"] == 1  # nothing but the document
    assert TOKEN not in printed.out
