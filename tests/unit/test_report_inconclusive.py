"""``inconclusive`` (an answer neither clearly served nor clearly refused) shows as itself in
every report — a failure of the gate, labelled apart from violations and from ``error`` — next to
its twin, an over-permission."""

from __future__ import annotations

import re
from typing import Any

from lxml import etree
from test_report_render import _case

from trustproof.report import render
from trustproof.results import from_json

ODD_ID = "authz.inside-matrix | storefront | alice | GET /products"
BAD_ID = "authz.outside-matrix | storefront | orders | GET /admin"


def results() -> dict[str, Any]:
    odd = _case(ODD_ID, "storefront", "inconclusive")
    odd.update(
        caller="alice",
        expected="allowed (served by storefront)",
        outcome="inconclusive",
        stage="upstream",
        reason="forwarded by the gateway; the service answered HTTP 500",
    )
    odd["evidence"].update(status=500, detail="Internal Server Error", audit=None)
    bad = _case(BAD_ID, "storefront", "over-permission", operation="GET /admin")
    bad.update(outcome="allowed", stage="", reason="served by storefront (HTTP 200)")
    return {
        "version": 1,
        "started_at": "2026-01-02T03:04:05+00:00",
        "elapsed_s": 1.0,
        "cases_per_second": 2.0,
        "stopped_early": False,
        "summary": {"inconclusive": 1, "over-permission": 1},
        "cases": [odd, bad],
        "scenarios": [],
    }


def test_the_gate_fails_on_inconclusive_alone() -> None:
    data = results()
    data["cases"] = data["cases"][:1]
    assert not from_json(data).ok


def test_html_gives_it_its_own_class_and_badge() -> None:
    html = render(from_json(results()), "html")
    cell = re.search(r'<td class="cell (\w+) \w+"\s+title="' + re.escape(ODD_ID) + ":", html)
    twin = re.search(r'<td class="cell (\w+) \w+"\s+title="' + re.escape(BAD_ID) + ":", html)
    assert cell is not None
    assert twin is not None
    assert (cell.group(1), twin.group(1)) == ("inconclusive", "violation")
    assert '<span class="badge inconclusive">inconclusive</span>' in html
    assert '<span class="badge bad">over-permission</span>' in html
    assert "allow → unclear" in html


def test_markdown_labels_it() -> None:
    md = render(from_json(results()), "md")
    assert "| ❓ inconclusive | 1 |" in md
    assert "| **❓ inconclusive** |" in md
    assert "| **over-permission** |" in md


def test_junit_reports_it_as_a_failure_of_its_own_type() -> None:
    root = etree.fromstring(render(from_json(results()), "junit").encode())
    failures = {f.get("type"): f for f in root.iter("failure")}
    assert set(failures) == {"inconclusive", "over-permission"}
    assert "HTTP 500" in (failures["inconclusive"].text or "")
    assert not list(root.iter("error"))
