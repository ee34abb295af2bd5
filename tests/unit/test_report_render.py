"""The result model and its renderers (JUnit XML, Markdown, JSON) on a fixed, hand-made run.

The JUnit output is validated against the Jenkins JUnit schemas shipped in tests/data/junit/.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from trustproof.report import render
from trustproof.report.markdown import render_markdown
from trustproof.results import ReportError, from_json, load

SCHEMAS = Path(__file__).resolve().parent.parent / "data" / "junit"
TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz"


def _case(cid: str, boundary: str, verdict: str = "pass", **extra: Any) -> dict[str, Any]:
    probe = cid.split(" | ", maxsplit=1)[0]
    case: dict[str, Any] = {
        "id": cid,
        "probe": probe,
        "boundary": boundary,
        "kind": "gateway",
        "caller": "orders",
        "operation": "GET /products",
        "variant": "",
        "expected": "refused: denied_authz",
        "outcome": "denied_authz",
        "stage": "policy",
        "reason": "no-matching-permit",
        "verdict": verdict,
        "elapsed_ms": 12.5,
        "started_ms": 0.0,
        "evidence": {
            "sent": "GET /products as orders with its certificate",
            "status": 403,
            "detail": "access_denied",
            "request_id": "abc123",
            "served_by": None,
            "audit": {"allowed": False, "stage": "policy"},
        },
    }
    case.update(extra)
    return case


def fixed_results() -> dict[str, Any]:
    """Two boundaries, an over-permission whose evidence quotes a token, an error, scenarios."""
    leaked = _case("authz.outside-matrix | storefront | orders | GET /admin", "storefront")
    leaked.update(
        started_ms=5.0,  # overlaps the first storefront case (they run concurrently)
        verdict="over-permission",
        outcome="allowed",
        stage="",
        reason="",
        evidence={
            "sent": f"GET /admin <&> with Authorization: Bearer {TOKEN}",
            "status": 200,
            "detail": f"echoed {TOKEN} back\x1b[0m",
            "request_id": None,
            "served_by": "storefront",
            "audit": None,
        },
    )
    crashed = _case("tls.expired-cert | orders | storefront | GET /orders", "orders", "error")
    crashed.update(outcome="error", stage="probe", reason="probe-crashed")
    return {
        "version": 1,
        "started_at": "2026-01-02T03:04:05+00:00",
        "elapsed_s": 1.5,
        "cases_per_second": 2.0,
        "stopped_early": False,
        "summary": {"pass": 1, "over-permission": 1, "error": 1},
        "cases": [
            _case("authz.outside-matrix | storefront | orders | GET /products", "storefront"),
            leaked,
            crashed,
        ],
        "scenarios": [
            {
                "id": "lifecycle.token-expiry",
                "ok": True,
                "verdict": "pass",
                "summary": "refused after expiry",
                "elapsed_s": 0.5,
                "figures": {"late_ms": 18.0},
                "timeline": [[1.0, "started"]],
                "evidence": [],
            },
            {
                "id": "lifecycle.revocation-propagation",
                "ok": False,
                "verdict": "fail",
                "summary": "orders accepted the revoked token",
                "elapsed_s": 0.25,
                "figures": {"propagation_ms.max": 900.0},
                "timeline": [[2.0, "revoked"]],
                "evidence": ["HTTP 200 after revocation"],
            },
            {
                "id": "authz.role-removed",
                "ok": True,
                "verdict": "skip",
                "summary": "no persona with a role",
                "elapsed_s": 0.0,
                "figures": {},
                "timeline": [],
                "evidence": [],
            },
        ],
        "spec": "examples/shop/trustproof.yaml",
        "trust_domain": "shop.test",
    }


def passing_results() -> dict[str, Any]:
    data = fixed_results()
    data["cases"] = [data["cases"][0]]
    data["scenarios"] = [data["scenarios"][0]]
    data["summary"] = {"pass": 1}
    return data


def _xml(text: str) -> etree._Element:
    """Parse trustproof's own output (no entities, no network)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.fromstring(text.encode(), parser)


def _schema(name: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMAS / name)))


# --- the model ---------------------------------------------------------------------------------


def test_model_loads_a_run_directory_and_round_trips(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps(fixed_results()))
    results = load(tmp_path)
    assert not results.ok
    assert [c.verdict for c in results.failures] == ["over-permission", "error"]
    assert list(results.boundaries()) == ["storefront", "orders"]
    assert from_json(results.to_json()) == results


def test_model_all_passing_is_ok() -> None:
    assert from_json(passing_results()).ok


def test_model_stopped_early_is_not_ok() -> None:
    data = passing_results()
    data["stopped_early"] = True
    assert not from_json(data).ok


def test_model_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"results\.json: no results here") as info:
        load(tmp_path)
    assert str(tmp_path) in str(info.value)
    assert info.value.exit_code == 2


def test_model_broken_json_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text("{not json")
    with pytest.raises(ReportError, match="not JSON") as info:
        load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("version", [2, 0, "1", True, None])
def test_model_unknown_version_is_refused(version: object) -> None:
    data = fixed_results()
    data["version"] = version
    with pytest.raises(ReportError, match="unknown results version"):
        from_json(data, "run/results.json")


def test_model_wrong_field_type_names_the_field() -> None:
    data = fixed_results()
    data["cases"][1]["verdict"] = 3
    with pytest.raises(ReportError, match=r"cases\[1\]\.verdict: expected a string"):
        from_json(data)


# --- JUnit -------------------------------------------------------------------------------------


@pytest.mark.parametrize("schema", ["junit-10.xsd", "jenkins-junit-4.xsd"])
@pytest.mark.parametrize("make", [fixed_results, passing_results])
def test_junit_validates_against_the_jenkins_schemas(schema: str, make: Any) -> None:
    document = _xml(render(from_json(make()), "junit"))
    validator = _schema(schema)
    assert validator.validate(document), validator.error_log


@pytest.mark.parametrize("schema", ["junit-10.xsd", "jenkins-junit-4.xsd"])
def test_junit_schema_rejects_a_broken_document(schema: str) -> None:
    """The failing twin: the schemas do catch a malformed report (a testcase without a name,
    a suite without its test count)."""
    document = _xml(render(from_json(fixed_results()), "junit"))
    suite = document.find("testsuite")
    assert suite is not None
    del suite.attrib["tests"]
    del suite.find("testcase").attrib["name"]
    assert not _schema(schema).validate(document)


def test_junit_structure_and_counts() -> None:
    root = _xml(render(from_json(fixed_results()), "junit"))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("6", "2", "1")
    assert root.get("time") == "2.250"  # cases' wall clock + scenarios
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert list(suites) == ["storefront", "orders", "scenarios"]
    front = suites["storefront"]
    assert (front.get("tests"), front.get("failures"), front.get("errors")) == ("2", "1", "0")
    assert front.get("time") == "0.018"  # wall time: 0 -> 5 + 12.5 ms, not the sum (25 ms)
    cases = front.findall("testcase")
    assert cases[0].get("classname") == "storefront"
    assert cases[0].get("name") == "authz.outside-matrix | storefront | orders | GET /products"
    assert cases[0].get("time") == "0.013"  # 12.5 ms
    assert list(cases[0]) == []  # a pass carries nothing
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.get("type") == "over-permission"
    assert "expected refused: denied_authz; observed allowed" in (failure.get("message") or "")
    text = failure.text or ""
    for wanted in ("probe:    authz.outside-matrix", "stage:    -", "sent: GET /admin <&>"):
        assert wanted in text
    error = suites["orders"].find("testcase/error")
    assert error is not None
    assert error.get("type") == "error"
    assert "stage:    probe" in (error.text or "")
    scen = suites["scenarios"]
    assert (scen.get("failures"), scen.get("errors"), scen.get("skipped")) == ("1", "0", "1")
    assert scen.find("testcase/skipped") is not None
    assert "HTTP 200 after revocation" in (scen.findtext("testcase/failure") or "")


def test_junit_scrubs_tokens_and_control_characters() -> None:
    xml = render(from_json(fixed_results()), "junit")
    assert TOKEN not in xml
    assert "eyJhbGci" not in xml
    assert "[REDACTED" in xml
    assert "\x1b" not in xml
    assert "\\x1b[0m" in xml
    _xml(xml)  # still well-formed


def test_junit_without_secrets_keeps_the_evidence() -> None:
    """Twin of the scrubbing test: ordinary evidence passes through untouched."""
    xml = render(from_json(fixed_results()), "junit")
    assert "detail: access_denied" in xml or "access_denied" in xml
    assert "served_by: storefront" in xml


# --- Markdown ----------------------------------------------------------------------------------


def test_markdown_names_the_failures() -> None:
    md = render(from_json(fixed_results()), "md")
    first = md.splitlines()[0]
    assert first.startswith("## ❌")
    assert "2 case(s) disagree" in first
    assert "1 scenario(s) failed" in first
    assert "| over\\-permission | 1 |" not in md  # only Markdown's own specials are escaped
    assert "| over-permission | 1 |" in md
    assert "### Failures (2)" in md
    assert "authz.outside\\-matrix" not in md
    assert "authz.outside-matrix \\| storefront \\| orders \\| GET /admin" in md
    assert "- ❌ **lifecycle.revocation-propagation**" in md
    assert "- ⏭️ **authz.role-removed**" in md
    assert "3 cases in 1.50 s (2/s)" in md


def test_markdown_all_passing_says_so() -> None:
    md = render_markdown(from_json(passing_results()))
    assert md.startswith("## ✅ trustproof: every boundary behaved as the spec says")
    assert "### Failures" not in md


def test_markdown_scrubs_and_escapes() -> None:
    data = fixed_results()
    data["cases"][1]["reason"] = f"saw {TOKEN} <script>"
    md = render(from_json(data), "md")
    assert TOKEN not in md
    assert "<script>" not in md
    assert "\\<script\\>" in md


def test_markdown_caps_the_failure_table() -> None:
    data = fixed_results()
    bad = data["cases"][1]
    data["cases"] = [{**bad, "id": f"case {i}"} for i in range(60)]
    md = render_markdown(from_json(data), max_rows=50)
    assert md.count("| **over-permission** |") == 50
    assert "… and 10 more" in md


def test_markdown_short_failure_list_is_not_capped() -> None:
    md = render_markdown(from_json(fixed_results()), max_rows=50)
    assert "more (see the JUnit report)" not in md


# --- JSON --------------------------------------------------------------------------------------


def test_junit_suite_time_of_results_without_start_times_is_the_longest_case() -> None:
    data = fixed_results()
    for case in data["cases"]:
        del case["started_ms"]  # results written before cases had start times
    suites = _xml(render(from_json(data), "junit")).findall("testsuite")
    front = next(s for s in suites if s.get("name") == "storefront")
    assert front.get("time") == "0.013"  # a lower bound, never the sum


def test_json_is_the_canonical_document() -> None:
    data = fixed_results()
    again = json.loads(render(from_json(data), "json"))
    expected = copy.deepcopy(data)
    expected["cases"][1]["evidence"]["sent"] = again["cases"][1]["evidence"]["sent"]
    expected["cases"][1]["evidence"]["detail"] = again["cases"][1]["evidence"]["detail"]
    expected["alerts"] = []  # always written: none raised
    assert TOKEN not in json.dumps(again)
    assert again == expected


def test_html_is_rendered() -> None:
    text = render(from_json(fixed_results()), "html")
    assert text.startswith("<!DOCTYPE html>")
    assert TOKEN not in text


def test_markdown_says_how_to_fix_each_kind_of_failure() -> None:
    text = render_markdown(from_json(fixed_results()))
    assert "- **over-permission**: the boundary let in what the spec" in text
    assert "How to fix" not in render_markdown(from_json(passing_results()))


def test_the_run_context_round_trips() -> None:
    data = fixed_results()
    data["context"] = {"project": "acme/shop", "commit": "0" * 40}
    again = json.loads(render(from_json(data), "json"))
    assert again["context"] == {"project": "acme/shop", "commit": "0" * 40}
