"""The "Outbound attempts" section: what the services themselves tried, in results.json and in the
Markdown, HTML and JUnit reports (validated against the Jenkins schemas), and the failing
``egress.observed`` case beside it; absent from a run that watched nothing."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from trustproof.report import render
from trustproof.results import ReportError, from_json, load, write
from trustproof.view import EgressEvent

SCHEMAS = Path(__file__).resolve().parent.parent / "data" / "junit"
LINES = (
    "orders tried 192.0.2.10:443 (tcp) 3 times — blocked",
    "orders looked up api.evil.example 2 times — refused",
)


def _case(boundary: str, verdict: str, detail: str) -> dict[str, Any]:
    failed = verdict != "pass"
    return {
        "id": f"egress.observed | {boundary} | - | outbound",
        "probe": "egress.observed",
        "boundary": boundary,
        "kind": "gateway",
        "caller": "-",
        "operation": "outbound",
        "variant": "",
        "expected": "refused: denied_authz",
        "outcome": "allowed" if failed else "denied_authz",
        "stage": "egress",
        "reason": "undeclared-egress-attempted" if failed else "nothing-undeclared-attempted",
        "verdict": verdict,
        "elapsed_ms": 0.1,
        "started_ms": 0.0,
        "evidence": {
            "sent": f"read what {boundary}'s own processes sent out during the run",
            "status": None,
            "detail": detail,
            "request_id": None,
            "served_by": None,
            "audit": None,
        },
    }


def document(*, events: bool = True, observed_cases: bool = True) -> dict[str, Any]:
    cases = []
    if observed_cases:
        cases = [
            _case("orders", "over-permission" if events else "pass", "; ".join(LINES)),
            _case("payments", "pass", "no dropped connection, no refused DNS query"),
        ]
    data: dict[str, Any] = {
        "version": 1,
        "started_at": "2030-01-01T12:00:00+00:00",
        "elapsed_s": 0.5,
        "cases_per_second": 4.0,
        "stopped_early": False,
        "summary": {},
        "cases": cases,
        "scenarios": [],
    }
    if events:
        data["egress_events"] = [
            {
                "service": "orders",
                "kind": "dns",
                "destination": "api.evil.example",
                "port": None,
                "count": 2,
            },
            {
                "service": "orders",
                "kind": "tcp",
                "destination": "192.0.2.10",
                "port": 443,
                "count": 3,
            },
        ]
    return data


def _xml(text: str) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.fromstring(text.encode(), parser)


def test_events_round_trip_through_results_json(tmp_path: Path) -> None:
    results = from_json(document())
    assert results.egress_events == (
        EgressEvent("orders", "dns", "api.evil.example", None, 2),
        EgressEvent("orders", "tcp", "192.0.2.10", 443, 3),
    )
    assert not results.ok  # the gate is the failing egress.observed case
    write(results, tmp_path)
    assert load(tmp_path) == results
    assert json.loads((tmp_path / "results.json").read_text())["egress_events"][1]["port"] == 443


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("kind", "icmp", r"egress_events\[0\]\.kind: expected tcp or udp or dns"),
        ("port", "443", r"egress_events\[0\]\.port: expected a number or null"),
        ("count", 2.5, r"egress_events\[0\]\.count: expected a whole number"),
        ("service", None, r"egress_events\[0\]\.service: expected a string"),
    ],
)
def test_a_broken_event_is_refused_naming_the_field(field: str, value: Any, message: str) -> None:
    data = document()
    data["egress_events"][0][field] = value
    with pytest.raises(ReportError, match=message):
        from_json(data)


def test_markdown_lists_every_attempt() -> None:
    md = render(from_json(document()), "md")
    assert "### Outbound attempts (2)" in md
    for line in LINES:
        assert f"- {line}" in md
    assert r"| **over-permission** | egress.observed \| orders \| - \| outbound |" in md


def test_html_lists_every_attempt() -> None:
    html = render(from_json(document()), "html")
    assert "<h2>Outbound attempts (2)</h2>" in html
    for line in LINES:
        assert f'<li class="mono">{line}</li>' in html


@pytest.mark.parametrize("schema", ["junit-10.xsd", "jenkins-junit-4.xsd"])
def test_junit_lists_every_attempt_and_stays_valid(schema: str) -> None:
    root = _xml(render(from_json(document()), "junit"))
    validator = etree.XMLSchema(etree.parse(str(SCHEMAS / schema)))
    assert validator.validate(root), validator.error_log
    suite = next(s for s in root.findall("testsuite") if s.get("name") == "outbound attempts")
    assert suite.get("tests") == "0"
    out = suite.findtext("system-out") or ""
    for line in LINES:
        assert line in out
    failure = root.find(".//testcase[@name='egress.observed | orders | - | outbound']/failure")
    assert failure is not None
    assert LINES[0] in (failure.text or "")
    assert root.get("tests") == "2"


def test_a_watched_run_with_no_attempt_says_none() -> None:
    results = from_json(document(events=False))
    assert results.ok
    assert "No service tried" not in render(results, "md")
    assert "None: no service tried a destination the spec does not declare." in render(
        results, "md"
    )
    assert "None: no service tried" in render(results, "html")
    assert "egress_events" not in render(results, "json")


def test_a_run_that_watched_nothing_has_no_section() -> None:
    results = from_json(document(events=False, observed_cases=False))
    for fmt in ("md", "html", "junit"):
        assert "utbound attempts" not in render(results, fmt)


def test_a_made_up_name_is_scrubbed_in_every_report() -> None:
    token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz"
    data = copy.deepcopy(document())
    data["egress_events"][0]["destination"] = f"{token}.evil.example"
    results = from_json(data)
    for fmt in ("md", "html", "junit", "json"):
        assert token not in render(results, fmt)
