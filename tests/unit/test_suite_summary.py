"""The terminal summary: totals, failures by probe id, the slowest stage."""

from __future__ import annotations

from typing import Any

from trustproof.results import from_json
from trustproof.suite.command import stage_medians, summary_lines


def case(probe: str, verdict: str, token_us: float, policy_us: float) -> dict[str, Any]:
    return {
        "id": f"{probe} | orders | bob | GET /x",
        "probe": probe,
        "boundary": "orders",
        "kind": "gateway",
        "caller": "bob",
        "operation": "GET /x",
        "variant": "",
        "elapsed_ms": 1.0,
        "verdict": verdict,
        "expected": "refused: denied_authz",
        "outcome": "allowed",
        "stage": "",
        "reason": "served",
        "evidence": {
            "sent": "GET /x",
            "audit": {
                "timings": {
                    "handshake_us": None,
                    "token_us": token_us,
                    "policy_us": policy_us,
                    "upstream_us": 300.0,
                }
            },
        },
    }


def test_summary_names_failures_by_probe_and_the_slowest_stage() -> None:
    cases = [
        case("authz.outside-matrix", "over-permission", 10, 5),
        case("authz.outside-matrix", "over-permission", 30, 7),
        case("token.expired", "pass", 20, 6),
    ]
    data = {
        "version": 1,
        "started_at": "2026-01-01T00:00:00+00:00",
        "stopped_early": False,
        "cases": cases,
        "elapsed_s": 1.0,
        "cases_per_second": 3.0,
        "summary": {"over-permission": 2, "pass": 1},
    }
    results = from_json(data)
    lines = summary_lines(results)
    assert lines[0] == "3 cases in 1.00 s (3/s): 2 over-permission, 1 pass"
    assert "  failures by probe: authz.outside-matrix 2" in lines
    assert lines[-1].endswith("slowest: upstream")
    assert stage_medians(results.cases) == {"token": 20.0, "policy": 6.0, "upstream": 300.0}
