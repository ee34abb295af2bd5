"""``policy.live-vs-offline`` never reads an inconclusive live answer (a 5xx, an unknown status)
as the gateway's refusal: the cell is undetermined, like an error (no sockets)."""

from __future__ import annotations

from trustproof.consistency.live_offline import diff_live_offline
from trustproof.policy.engine import Decision
from trustproof.policy.offline import CellCheck, MatrixReport
from trustproof.probes.model import Case, CaseResult, Evidence, Expectation, Outcome, Result, judge


def live(outcome: Outcome) -> CaseResult:
    case = Case("authz.outside-matrix", "orders", "gateway", "bob", "GET /orders",
                Expectation.refuse("denied_authz"))  # fmt: skip
    result = Result(outcome, "upstream", "HTTP 502", Evidence(sent="GET /orders", status=502))
    return CaseResult(case, result, judge(case, result))


OFFLINE = MatrixReport(
    "spec",
    (),
    "built-in",
    1,
    (CellCheck("bob", "orders", "GET /orders", False, Decision.deny("no-matching-permit")),),
    (),
    {},
)


def test_an_inconclusive_cell_is_undetermined_not_a_refusal() -> None:
    diff = diff_live_offline([live("inconclusive")], OFFLINE)
    assert (diff.compared, diff.disagreements) == (0, ())
    assert diff.undetermined == ("authz.outside-matrix | orders | bob | GET /orders: "
                                 "inconclusive (HTTP 502)",)  # fmt: skip
    # the twin: a real refusal is compared (and agrees)
    refused = diff_live_offline([live("denied_authz")], OFFLINE)
    assert (refused.compared, refused.disagreements, refused.undetermined) == (1, (), ())
