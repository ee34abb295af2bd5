"""``policy.live-vs-offline``: the access matrix observed live (the suite's
``authz.inside-matrix`` / ``authz.outside-matrix`` results) equals the offline evaluation of the
same Cedar policies (`trustproof.policy.offline.check_matrix`). A difference means the gateway
decides other than its policies say: a stale policy, a context the offline request lacks, a bug.

`diff_live_offline` is pure (no sockets), so the comparison itself is unit-tested.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from trustproof.chaos.scenario import Recorder, ScenarioEnv, ScenarioResult
from trustproof.policy.offline import MatrixReport, check_matrix
from trustproof.probes.model import CaseResult

MATRIX_PROBES = ("authz.inside-matrix", "authz.outside-matrix")


@dataclass(frozen=True)
class MatrixDisagreement:
    service: str
    caller: str
    operation: str
    expected: bool  # what the spec's matrix says
    live: str  # what the gateway did: "allowed" or "refused (<outcome> at <stage>: <reason>)"
    offline: str  # what the policies decide offline: "allowed by ..." or "refused: <reason>"

    def describe(self) -> str:
        must = "allowed" if self.expected else "refused"
        return (
            f"{self.caller} -> {self.service} {self.operation}: live {self.live}; "
            f"offline {self.offline} (the matrix says {must})"
        )


@dataclass(frozen=True)
class MatrixDiff:
    compared: int
    disagreements: tuple[MatrixDisagreement, ...]
    undetermined: tuple[str, ...]  # cells the live run could not decide (error, unreachable,
    # inconclusive)


def diff_live_offline(results: Iterable[CaseResult], report: MatrixReport) -> MatrixDiff:
    """Every matrix cell decided both live (the suite's ``authz.inside-matrix`` /
    ``authz.outside-matrix`` results) and offline (`check_matrix`), where the two disagree.
    Pure: no sockets, so the comparison itself is unit-tested."""
    offline = {(c.service, c.caller, c.operation): c for c in report.cells}
    compared = 0
    disagreements: list[MatrixDisagreement] = []
    undetermined: list[str] = []
    for item in results:
        case, result = item.case, item.result
        if case.probe not in MATRIX_PROBES or case.variant or case.caller is None:
            continue
        cell = offline.get((case.boundary, case.caller, case.operation))
        if cell is None:
            continue
        if result.outcome in ("error", "unreachable", "inconclusive"):
            undetermined.append(f"{case.id}: {result.outcome} ({result.reason})")
            continue
        compared += 1
        live_allowed = result.outcome == "allowed"
        if live_allowed == cell.decision.allowed:
            continue
        decision = cell.decision
        disagreements.append(
            MatrixDisagreement(
                case.boundary,
                case.caller,
                case.operation,
                cell.expected,
                "allowed"
                if live_allowed
                else f"refused ({result.outcome} at {result.stage}: {result.reason})",
                f"allowed by {', '.join(decision.policy_ids) or '?'}"
                if decision.allowed
                else f"refused: {decision.reason}",
            )
        )
    return MatrixDiff(compared, tuple(disagreements), tuple(undetermined))


async def live_vs_offline(env: ScenarioEnv, rec: Recorder) -> ScenarioResult:
    report = check_matrix(env.spec)
    rec.event(f"evaluated {len(report.cells)} matrix cells offline")
    diff = diff_live_offline(env.case_results, report)
    rec.event(f"compared {diff.compared} cells with the live results")
    rec.figure("compared", diff.compared)
    rec.figure("disagreements", len(diff.disagreements))
    rec.figure("undetermined", len(diff.undetermined))
    for disagreement in diff.disagreements:
        rec.note(disagreement.describe())
    for text in diff.undetermined:
        rec.note(f"undetermined live: {text}")
    if diff.compared == 0:
        return rec.finish("skip", "no matrix case of this run decided a cell live")
    if diff.disagreements:
        return rec.verdict(
            False,
            f"{len(diff.disagreements)} of {diff.compared} cells decided differently live and "
            "offline: " + "; ".join(d.describe() for d in diff.disagreements[:3]),
        )
    return rec.verdict(True, f"live and offline decisions agree on all {diff.compared} cells")
