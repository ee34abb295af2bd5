"""The HTML report on the fixed, hand-made run of `test_report_render`: the access matrix marks
the over-permission, every text is escaped and scrubbed, nothing is fetched from outside, and the
latency percentiles are right on known numbers. Each check has a twin that would catch its bug.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

import pytest
from test_report_render import TOKEN, _case, fixed_results, passing_results

from trustproof.report import FILES, render, write_reports
from trustproof.report.html import build_latency, build_matrices, percentile, render_html
from trustproof.results import from_json

LEAKED = "authz.outside-matrix | storefront | orders | GET /admin"
DENIED = "authz.outside-matrix | storefront | orders | GET /products"
SCRIPT = "<script>alert('pwned')</script>"


def _timings(handshake: float, token: float, policy: float, upstream: float | None) -> Any:
    return {
        "allowed": False,
        "stage": "policy",
        "timings": {
            "handshake_us": handshake,
            "token_us": token,
            "policy_us": policy,
            "upstream_us": upstream,
            "total_us": handshake + token + policy + (upstream or 0),
        },
    }


def matrix_results() -> dict[str, Any]:
    """The fixed run, its leak on its own operation (the sample reuses GET /products)."""
    data = fixed_results()
    data["cases"][1]["operation"] = "GET /admin"
    return data


def hostile_results() -> dict[str, Any]:
    """The fixed run, its leak's evidence also quoting markup and an external script address."""
    data = matrix_results()
    evidence = data["cases"][1]["evidence"]
    evidence["detail"] = f'{SCRIPT} <img src="https://evil.example/x.png"> {evidence["detail"]}'
    evidence["audit"] = {"note": "<b>bold</b>", "token": f"Bearer {TOKEN}"}
    return data


def _cell(html: str, case_id: str) -> str:
    """The cell's state class (``ok``, ``violation``, ...); its side class must follow."""
    match = re.search(
        r'<td class="cell (\w+) (allow|deny)"\s+title="' + re.escape(case_id) + ":", html
    )
    assert match is not None, f"no matrix cell for {case_id}"
    return match.group(1)


def _side(html: str, case_id: str) -> str:
    match = re.search(
        r'<td class="cell \w+ (allow|deny)"\s+title="' + re.escape(case_id) + ":", html
    )
    assert match is not None, f"no matrix cell for {case_id}"
    return match.group(1)


# --- percentiles -------------------------------------------------------------------------------


def test_percentiles_on_known_numbers() -> None:
    values = [float(n) for n in range(100, 0, -1)]  # 100..1, unsorted on purpose
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0


def test_percentile_of_nothing_is_nan_and_out_of_range_is_refused() -> None:
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError, match="not between 0 and 100"):
        percentile([1.0], 101)


def test_latency_per_boundary_and_stage_in_milliseconds() -> None:
    data = fixed_results()
    data["cases"] = [
        _case(f"authz.outside-matrix | storefront | orders | GET /p{i}", "storefront")
        for i in range(1, 5)
    ]
    for i, case in enumerate(data["cases"], start=1):
        case["evidence"]["audit"] = _timings(1000.0 * i, 10.0 * i, 20.0, None)
    data["summary"] = {"pass": 4}
    latency = build_latency(from_json(data))
    assert list(latency) == ["storefront"]
    rows = {row.stage: row for row in latency["storefront"]}
    assert set(rows) == {"TLS handshake", "token", "policy"}  # no upstream timing: no row
    assert rows["TLS handshake"].count == 4
    assert rows["TLS handshake"].p50 == pytest.approx(2.5)  # 1, 2, 3, 4 ms
    assert rows["TLS handshake"].p99 == pytest.approx(3.97)
    assert rows["token"].p95 == pytest.approx(0.0385)
    assert rows["policy"].p50 == pytest.approx(0.02)


def test_latency_without_audit_timings_is_empty() -> None:
    assert build_latency(from_json(fixed_results())) == {}


# --- the access matrix -------------------------------------------------------------------------


def test_over_permission_cell_is_a_violation_and_its_twin_is_not() -> None:
    (matrix,) = build_matrices(from_json(matrix_results()))
    assert (matrix.boundary, matrix.kind) == ("storefront", "service")
    assert matrix.callers == ["orders"]
    assert matrix.operations == ["GET /admin", "GET /products"]
    leaked = matrix.cell("orders", "GET /admin")
    denied = matrix.cell("orders", "GET /products")
    assert leaked is not None
    assert denied is not None
    assert (leaked.expected, leaked.observed, leaked.state) == ("deny", "allow", "violation")
    assert (denied.expected, denied.observed, denied.state) == ("deny", "deny", "ok")
    assert matrix.violations == 1
    html = render_html(from_json(matrix_results()))
    assert _cell(html, LEAKED) == "violation"
    assert _cell(html, DENIED) == "ok"


def test_a_disagreement_wins_a_shared_cell() -> None:
    (matrix,) = build_matrices(from_json(fixed_results()))  # both cases on GET /products
    cell = matrix.cell("orders", "GET /products")
    assert cell is not None
    assert cell.state == "violation"
    assert cell.case_id == LEAKED
    data = fixed_results()
    data["cases"][:2] = data["cases"][1::-1]  # the leak first: still not overwritten
    (again,) = build_matrices(from_json(data))
    assert again.cell("orders", "GET /products") == cell


def test_datastore_grants_form_their_own_matrix() -> None:
    data = passing_results()
    granted = _case("db.inside-grants | shopdb | orders | select orders", "shopdb")
    granted.update(probe="db.inside-grants", kind="datastore", caller="orders")
    granted.update(operation="select orders", expected="allowed", outcome="allowed")
    data["cases"].append(granted)
    matrices = {m.boundary: m for m in build_matrices(from_json(data))}
    assert matrices["shopdb"].kind == "datastore"
    cell = matrices["shopdb"].cell("orders", "select orders")
    assert cell is not None
    assert (cell.expected, cell.observed, cell.state) == ("allow",) * 2 + ("ok",)
    assert matrices["storefront"].cell("orders", "select orders") is None


# --- the page ----------------------------------------------------------------------------------


def test_failing_run_says_fail_and_lists_failures_first() -> None:
    html = render(from_json(fixed_results()), "html")
    assert '<div class="verdict">FAIL</div>' in html
    failures = html.index('id="failures"')
    assert failures < html.index('id="matrix"') < html.index('id="latency"')
    assert (
        html.index('id="latency"') < html.index('id="scenarios"') < html.index('id="environment"')
    )
    section = html[failures : html.index('id="matrix"')]
    assert "authz.outside-matrix | storefront | orders | GET /admin" in section
    assert "tls.expired-cert | orders | storefront | GET /orders" in section
    assert "lifecycle.revocation-propagation" in section  # the failed scenario
    assert DENIED not in section  # a passing case is no failure
    assert '<span class="badge bad">over-permission</span>' in section  # macros not re-escaped


def test_passing_run_says_pass() -> None:
    html = render_html(from_json(passing_results()))
    assert '<div class="verdict">PASS</div>' in html
    assert '<div class="verdict">FAIL</div>' not in html


def test_evidence_markup_is_escaped_never_a_tag() -> None:
    data = hostile_results()
    assert SCRIPT in data["cases"][1]["evidence"]["detail"]  # the input does carry the tag
    html = render_html(from_json(data))
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in html
    assert "<script" not in html.lower()
    assert "<img" not in html
    assert "<b>bold" not in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html  # the audit event, escaped too


def test_tokens_are_scrubbed_everywhere() -> None:
    data = hostile_results()
    assert TOKEN in str(data)
    html = render_html(from_json(data))
    assert TOKEN not in html
    assert TOKEN.split(".")[1] not in html  # not even the payload
    assert "[REDACTED" in html
    assert "\x1b" not in html  # control characters from a server dropped


def test_no_external_resources() -> None:
    html = render_html(from_json(hostile_results()))
    assert "https://evil.example/x.png" in html  # present, but only as escaped evidence text
    lowered = html.lower()
    for needle in ("<link", 'src="http', "src='http", "@import", "url(", "<script", "<iframe"):
        assert needle not in lowered, needle
    outside_text = re.sub(r"<pre>.*?</pre>|<dd[^>]*>.*?</dd>", "", html, flags=re.S)
    assert "http://" not in outside_text
    assert "https://" not in outside_text
    assert "@media print" in html  # printable


def test_environment_says_what_is_not_recorded() -> None:
    html = render_html(from_json(fixed_results()))
    assert "examples/shop/trustproof.yaml" in html
    assert "shop.test" in html
    assert "versions of the run" in html
    assert "not recorded in results.json" in html
    data = fixed_results()
    data["versions"] = {"trustproof": "9.9.9", "python": "3.99.0"}
    recorded = render_html(from_json(data))
    assert "9.9.9" in recorded
    assert "versions of the run" not in recorded


def test_versions_round_trip_and_stay_optional() -> None:
    data = fixed_results()
    assert "versions" not in from_json(data).to_json()
    with_versions = copy.deepcopy(data)
    with_versions["versions"] = {"trustproof": "0.1.0"}
    assert from_json(with_versions).to_json()["versions"] == {"trustproof": "0.1.0"}


def test_scenario_timeline_and_figures() -> None:
    html = render_html(from_json(fixed_results()))
    assert 'aria-label="timeline of lifecycle.token-expiry"' in html
    assert '<td class="mono">propagation_ms.max</td>' in html
    assert 'aria-label="timeline of authz.role-removed"' not in html  # no events, no timeline


def test_write_reports_writes_the_html(tmp_path: Any) -> None:
    written = write_reports(from_json(fixed_results()), tmp_path)
    assert written["html"] == tmp_path / FILES["html"] == tmp_path / "report.html"
    assert written["html"].read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_matching_allowed_and_refused_cells_look_different() -> None:
    data = matrix_results()
    allowed = copy.deepcopy(data["cases"][0])
    allowed.update(
        id="authz.inside-matrix | storefront | alice | GET /products",
        probe="authz.inside-matrix",
        caller="alice",
        expected="allowed",
        outcome="allowed",
    )
    data["cases"].append(allowed)
    html = render(from_json(data), "html")
    refused_id = "authz.outside-matrix | storefront | orders | GET /products"
    assert (_cell(html, refused_id), _side(html, refused_id)) == ("ok", "deny")
    assert (_cell(html, allowed["id"]), _side(html, allowed["id"])) == ("ok", "allow")
    assert "td.cell.ok.allow {" in html  # green
    assert "td.cell.ok.deny {" in html  # neutral grey: a refusal is not a success colour


def test_header_names_project_commit_and_ci_run_and_drops_a_non_http_link() -> None:
    data = matrix_results()
    data["context"] = {
        "project": "acme/shop",
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "ci": "GitHub Actions",
        "ci_url": "https://github.com/acme/shop/actions/runs/7",
    }
    html = render(from_json(data), "html")
    assert '<span class="mono">acme/shop</span>' in html
    assert ">0123456789ab</span>" in html
    assert '<a href="https://github.com/acme/shop/actions/runs/7">GitHub Actions run</a>' in html
    data["context"]["ci_url"] = "javascript:alert(1)"
    assert "javascript:" not in render(from_json(data), "html")


def test_repeated_failures_are_grouped_with_how_to_fix() -> None:
    data = matrix_results()
    template = data["cases"][1]
    for i in range(3):
        extra = copy.deepcopy(template)
        extra["id"] = f"authz.outside-matrix | storefront | orders | GET /admin/{i}"
        data["cases"].append(extra)
    html = render(from_json(data), "html")
    assert "4 x over-permission on storefront: authz.outside-matrix" in html
    assert "How to fix:</strong> the boundary let in what the spec" in html
    assert "3 more case(s) like" in html
    assert html.count('<article class="failure"') == 3  # the group, the error, the scenario
