"""The result model of a run: every case as it ran, every scenario, and the gate.

One model for everyone: the suite builds it (`trustproof.suite.runner.SuiteRun.to_results`), the
`results.json` document is its serialised form (`trustproof.results.document` writes and reads
it), and every report, the command line's exit code and its summary read `Results`, never a raw
dictionary, so none can disagree with another about what a field means. `Results.ok` is the gate.

The evidence of a case is the probes' own `Evidence` (`trustproof.probes.model`): there is one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trustproof.probes.model import CaseResult, Evidence
from trustproof.shard import Shard
from trustproof.view.egress import EgressEvent

__all__ = [
    "AlertRecord",
    "CaseRecord",
    "Evidence",
    "Results",
    "ScenarioRecord",
    "ShardRecord",
    "evidence_lines",
    "record_of",
]


def evidence_lines(evidence: Evidence) -> tuple[str, ...]:
    """The evidence as `name: value` lines, empty fields left out (audit as compact JSON)."""
    pairs = [
        ("sent", evidence.sent),
        ("status", "" if evidence.status is None else str(evidence.status)),
        ("detail", evidence.detail),
        ("request_id", evidence.request_id or ""),
        ("served_by", evidence.served_by or ""),
        ("audit", json.dumps(evidence.audit, sort_keys=True) if evidence.audit else ""),
    ]
    return tuple(f"{name}: {value}" for name, value in pairs if value)


@dataclass(frozen=True)
class CaseRecord:
    """One generated case as it ran: what was expected, what happened, and the verdict."""

    id: str
    probe: str
    boundary: str
    kind: str
    caller: str
    operation: str
    variant: str
    expected: str
    outcome: str
    stage: str
    reason: str
    verdict: str
    elapsed_ms: float
    evidence: Evidence
    started_ms: float = 0.0  # since the run started: cases run concurrently (0 when unknown)

    @property
    def ok(self) -> bool:
        return self.verdict == "pass"

    @property
    def observed(self) -> str:
        """The outcome and, when known, the stage that decided it: ``denied_authz at policy``."""
        return self.outcome + (f" at {self.stage}" if self.stage else "")


@dataclass(frozen=True)
class ScenarioRecord:
    """One multi-step scenario (see `trustproof.chaos.scenario.ScenarioResult`)."""

    id: str
    ok: bool
    verdict: str
    summary: str
    elapsed_s: float
    figures: Mapping[str, float]
    timeline: tuple[tuple[float, str], ...]
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class AlertRecord:
    """One alert a run raised (`trustproof.alerts`): deduplicated, so `count` says how many
    occurrences it stands for."""

    rule: str  # the rule's name
    when: str  # what raised it: over-permission, expected-refused, denial-spike, ...
    severity: str  # info | low | medium | high | critical
    title: str
    detail: str
    subject: str  # the case id, identity or service it is about
    count: int = 1
    key: str = ""  # the deduplication key (stable across runs: rule and subject)

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "when": self.when,
            "severity": self.severity,
            "title": self.title,
            "detail": self.detail,
            "subject": self.subject,
            "count": self.count,
            "key": self.key,
        }


@dataclass(frozen=True)
class ShardRecord:
    """One shard of a merged run (`trustproof report merge`): what it ran and how long it took."""

    index: int
    total: int
    started_at: str
    elapsed_s: float
    cases: int
    scenarios: int
    ok: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "total": self.total,
            "started_at": self.started_at,
            "elapsed_s": self.elapsed_s,
            "cases": self.cases,
            "scenarios": self.scenarios,
            "ok": self.ok,
        }


@dataclass(frozen=True)
class Results:
    """A whole run: figures, verdict counts, every case and every scenario."""

    version: int
    started_at: str
    elapsed_s: float
    cases_per_second: float
    stopped_early: bool
    summary: Mapping[str, int]
    cases: tuple[CaseRecord, ...]
    scenarios: tuple[ScenarioRecord, ...] = ()
    spec: str | None = None
    trust_domain: str | None = None
    versions: Mapping[str, str] | None = None  # e.g. {"trustproof": "0.1.0", "python": "3.11.2"}
    ttl: Mapping[str, str] | None = None  # e.g. {"certificate": "5m", "token": "2m"}
    context: Mapping[str, str] | None = None  # project, commit, ci, ci_url (`suite.context`)
    # what the services themselves tried and the sandbox stopped (isolated backend; the gate is
    # the `egress.observed` cases)
    egress_events: tuple[EgressEvent, ...] = ()
    alerts: tuple[AlertRecord, ...] = ()  # what `trustproof.alerts` raised for this run
    shard: Shard | None = None  # `--shard K/N`: this run is that slice of the plan
    # names the plan (`trustproof.shard.fingerprint`): shards merge only when theirs are equal
    fingerprint: str | None = None
    merged_from: tuple[ShardRecord, ...] = ()  # `trustproof report merge`: the shards, in order

    @property
    def ok(self) -> bool:
        """The gate: every case passed, no scenario failed, and the run was not cut short."""
        return (
            all(c.ok for c in self.cases)
            and all(s.ok for s in self.scenarios)
            and not self.stopped_early
        )

    @property
    def failures(self) -> tuple[CaseRecord, ...]:
        return tuple(c for c in self.cases if not c.ok)

    @property
    def failed_scenarios(self) -> tuple[ScenarioRecord, ...]:
        return tuple(s for s in self.scenarios if not s.ok)

    def boundaries(self) -> dict[str, list[CaseRecord]]:
        """Cases grouped by boundary, boundaries in order of first appearance."""
        groups: dict[str, list[CaseRecord]] = {}
        for case in self.cases:
            groups.setdefault(case.boundary, []).append(case)
        return groups

    def to_json(self) -> dict[str, Any]:
        """The canonical document, as `results.json` holds it (`trustproof.results.document`)."""
        data: dict[str, Any] = {
            "version": self.version,
            "started_at": self.started_at,
            "elapsed_s": self.elapsed_s,
            "cases_per_second": self.cases_per_second,
            "stopped_early": self.stopped_early,
            "summary": dict(self.summary),
            "cases": [_case_json(c) for c in self.cases],
            "scenarios": [_scenario_json(s) for s in self.scenarios],
        }
        if self.spec is not None:
            data["spec"] = self.spec
        if self.trust_domain is not None:
            data["trust_domain"] = self.trust_domain
        if self.versions is not None:
            data["versions"] = dict(self.versions)
        if self.ttl is not None:
            data["ttl"] = dict(self.ttl)
        if self.context is not None:
            data["context"] = dict(self.context)
        if self.egress_events:  # absent: none seen (or not watched: local backend)
            data["egress_events"] = [_egress_event_json(e) for e in self.egress_events]
        data["alerts"] = [alert.to_json() for alert in self.alerts]
        if self.shard is not None:  # absent: not sharded
            data["shard"] = self.shard.to_json()
        if self.fingerprint is not None:
            data["fingerprint"] = self.fingerprint
        if self.merged_from:
            data["merged_from"] = [part.to_json() for part in self.merged_from]
        return data


def record_of(item: CaseResult) -> CaseRecord:
    """The record of one judged case (times rounded to the microsecond, as written)."""
    case, result = item.case, item.result
    evidence = result.evidence
    if evidence.audit is not None:
        evidence = Evidence(
            evidence.sent,
            evidence.status,
            evidence.detail,
            evidence.request_id,
            evidence.served_by,
            dict(evidence.audit),
        )
    return CaseRecord(
        id=case.id,
        probe=case.probe,
        boundary=case.boundary,
        kind=case.kind,
        caller=case.caller or "-",  # nobody, as in the case id
        operation=case.operation,
        variant=case.variant,
        expected=case.expect.describe(),
        outcome=result.outcome,
        stage=result.stage,
        reason=result.reason,
        verdict=item.verdict,
        elapsed_ms=round(result.elapsed_ms, 3),
        evidence=evidence,
        started_ms=round(item.started_ms, 3),
    )


CASE_TEXT = (
    "id",
    "probe",
    "boundary",
    "kind",
    "caller",
    "operation",
    "variant",
    "expected",
    "outcome",
    "stage",
    "reason",
    "verdict",
)


def _case_json(case: CaseRecord) -> dict[str, Any]:
    ev = case.evidence
    data: dict[str, Any] = {name: getattr(case, name) for name in CASE_TEXT}
    data["elapsed_ms"] = case.elapsed_ms
    data["started_ms"] = case.started_ms
    data["evidence"] = {
        "sent": ev.sent,
        "status": ev.status,
        "detail": ev.detail,
        "request_id": ev.request_id,
        "served_by": ev.served_by,
        "audit": dict(ev.audit) if ev.audit is not None else None,
    }
    return data


def _egress_event_json(e: EgressEvent) -> dict[str, Any]:
    return {
        "service": e.service,
        "kind": e.kind,
        "destination": e.destination,
        "port": e.port,
        "count": e.count,
    }


def _scenario_json(s: ScenarioRecord) -> dict[str, Any]:
    return {
        "id": s.id,
        "ok": s.ok,
        "verdict": s.verdict,
        "summary": s.summary,
        "elapsed_s": s.elapsed_s,
        "figures": dict(s.figures),
        "timeline": [[ms, text] for ms, text in s.timeline],
        "evidence": list(s.evidence),
    }
