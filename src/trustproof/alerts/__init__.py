"""Alerts: what a run raises (`rules`, no I/O) and where they go (`sinks`); `raise_alerts` does
both at the end of a run and puts them into its results (and its audit log, as ``alert``
records). Between the drivers (`suite`, `report`) and `results` in the layers."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import TYPE_CHECKING, Any

from trustproof.alerts.rules import BUILTIN, RunFacts, evaluate, rules_of
from trustproof.alerts.sinks import Delivery, dispatch, sign
from trustproof.audit import AuditUnavailable
from trustproof.audit.servicelog import service_log_files
from trustproof.results import Results

if TYPE_CHECKING:
    from trustproof.sandbox.controller import Sandbox

__all__ = [
    "BUILTIN",
    "Delivery",
    "RunFacts",
    "dispatch",
    "evaluate",
    "facts_of",
    "raise_alerts",
    "rules_of",
    "sign",
]


def facts_of(sandbox: Sandbox) -> RunFacts:
    """What the rules read from a running sandbox: its audit log, verified and decrypted, and
    whether its service logs verify."""
    decisions: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    problem: str | None = None
    log = sandbox.audit_log
    if log is None:
        problem = "the run has no audit log"
    elif log.failure is not None:
        problem = log.failure
    if log is not None:
        check = log.verify_so_far()
        if check.problem is not None and check.problem.kind != "truncated":
            problem = problem or f"{log.path} does not verify: {check.problem}"
        for record in check.contents:
            data = dict(record.data)
            (decisions if data.get("kind") == "decision" else events).append(data)
    for path in service_log_files(sandbox.run.path):  # the services' logs, kept the same way
        found = sandbox.service_log(path).problem
        if found is not None and found.kind != "truncated":  # truncated: still open
            problem = problem or f"{path} does not verify: {found}"
    spec = sandbox.spec
    return RunFacts(
        decisions=decisions,
        events=events,
        audit_problem=problem,
        trust_domain=str(spec.trust_domain),
        identities=frozenset(spec.callers),
    )


async def raise_alerts(sandbox: Sandbox, results: Results) -> Results:
    """Evaluate the rules over this run, record and send the alerts; `results` with them."""
    settings = sandbox.spec.alerts
    facts = await asyncio.to_thread(facts_of, sandbox)
    alerts = evaluate(settings, results, facts)
    for alert in alerts:
        with contextlib.suppress(AuditUnavailable):  # audit-broken is among the alerts then
            sandbox.audit_event("alert", **alert.to_json())
    if settings.sinks and alerts:
        await asyncio.to_thread(
            dispatch,
            settings.sinks,
            alerts,
            run=sandbox.audit_log.run if sandbox.audit_log else "",
            run_dir=sandbox.run.path,
            base_dir=sandbox.spec.base_dir,
        )
    return dataclasses.replace(results, alerts=alerts)
