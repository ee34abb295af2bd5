"""The trust-chaos experiments' steps in the run's audit log (issue 16: every scenario and chaos
step is recorded): one ``chaos`` record per timeline event as it happens — the fault, what each
check saw, the rollback, anything UNEXPECTED — and one with the experiment's verdict at its end.

    {"kind": "chaos", "case": "chaos.idp-outage", "ms": 12.5, "step": "FAULT: token service ..."}
    {"kind": "chaos", "case": "chaos.idp-outage", "verdict": "pass", "ok": true, "summary": "..."}

``case`` is the experiment's result id, so ``trustproof audit show --kind chaos --case
'chaos.idp-*'`` finds them. The texts are the timeline's, already scrubbed. A log that cannot take
a record (`AuditUnavailable`) does not stop the experiment: the gateways fail closed on it, and
the run reports the log's failure itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from trustproof.audit import AuditUnavailable
from trustproof.chaos.scenario import ScenarioResult
from trustproof.sandbox.controller import Sandbox

KIND = "chaos"


def steps_to(sandbox: Sandbox, sid: str) -> Callable[[float, str], None]:
    """What records each step of experiment `sid` in `sandbox`'s audit log."""

    def step(ms: float, text: str) -> None:
        with contextlib.suppress(AuditUnavailable):
            sandbox.audit_event(KIND, case=sid, ms=round(ms, 3), step=text)

    return step


def record_result(sandbox: Sandbox, result: ScenarioResult) -> None:
    """The experiment's verdict and summary, after its last step."""
    with contextlib.suppress(AuditUnavailable):
        sandbox.audit_event(
            KIND, case=result.id, verdict=result.verdict, ok=result.ok, summary=result.summary
        )


def started(
    sandbox: Sandbox, kind: str, then: Callable[[str], None] | None
) -> Callable[[str], None]:
    """What `run_scenarios` / `run_experiments` call as each one starts: a ``scenario`` record
    (``scenario: <id>``) or a ``chaos`` one (``case: <id>``) with ``step: start`` — so the log
    says when trustproof began breaking trust on purpose (`alerts.rules.exercise_windows`) —
    then `then`."""
    key = "scenario" if kind == "scenario" else "case"

    def start(sid: str) -> None:
        with contextlib.suppress(AuditUnavailable):
            sandbox.audit_event(kind, **{key: sid, "step": "start"})
        if then is not None:
            then(sid)

    return start
