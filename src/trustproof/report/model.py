"""The result model every report is rendered from: a `results.json` (written by `trustproof run`
and `trustproof probe`) loaded and checked into frozen dataclasses.

One model, many renderers: JUnit XML, Markdown and the canonical JSON all read `Results`, never
the raw dictionary, so a renderer cannot disagree with another about what a field means. Loading
refuses what it does not understand (a missing file, broken JSON, an unknown `version`, a field
of the wrong type) with a `ReportError` that names the file: a report rendered from half a result
would be worse than none.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from trustproof.errors import TrustproofError

SUPPORTED_VERSIONS = (1,)
RESULTS_FILE = "results.json"


class ReportError(TrustproofError):
    """The results cannot be read or are not a results document this version understands."""

    exit_code = 2

    def __init__(self, message: str, hint: str = "") -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message}\n    hint: {hint}" if hint else message)


@dataclass(frozen=True)
class Evidence:
    """What was sent and what came back for one case."""

    sent: str
    status: int | None = None
    detail: str = ""
    request_id: str | None = None
    served_by: str | None = None
    audit: Mapping[str, Any] | None = None

    def lines(self) -> tuple[str, ...]:
        """The evidence as `name: value` lines, empty fields left out (audit as compact JSON)."""
        pairs = [
            ("sent", self.sent),
            ("status", "" if self.status is None else str(self.status)),
            ("detail", self.detail),
            ("request_id", self.request_id or ""),
            ("served_by", self.served_by or ""),
            ("audit", json.dumps(self.audit, sort_keys=True) if self.audit else ""),
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
        """The canonical document (the same shape `trustproof run` writes)."""
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
        return data


def load(path: Path) -> Results:
    """Read a results document: `path` is the file or the run directory holding it."""
    is_dir = path.is_dir() or (not path.exists() and path.suffix != ".json")
    file = path / RESULTS_FILE if is_dir else path
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(
            f"{file}: no results here",
            "run `trustproof run` (or `trustproof probe`) first, or pass the run directory",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{file}: cannot read it: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{file}: not JSON ({exc})") from None
    return from_json(data, str(file))


def from_json(data: Any, source: str = "results") -> Results:
    """Check and convert a decoded results document; `source` names it in errors."""
    doc = _Reader(source)
    top = doc.obj(data, "")
    version = top.get("version")
    if isinstance(version, bool) or version not in SUPPORTED_VERSIONS:
        raise ReportError(
            f"{source}: unknown results version {version!r} "
            f"(this trustproof reads version {', '.join(map(str, SUPPORTED_VERSIONS))})",
            "render it with the trustproof version that wrote it, or run the suite again",
        )
    summary = doc.obj(top.get("summary"), "summary")
    return Results(
        version=version,
        started_at=doc.text(top, "started_at", ""),
        elapsed_s=doc.number(top, "elapsed_s", ""),
        cases_per_second=doc.number(top, "cases_per_second", ""),
        stopped_early=doc.flag(top, "stopped_early", ""),
        summary={str(k): int(doc.number(summary, k, "summary")) for k in summary},
        cases=tuple(_case(doc, c, f"cases[{i}]") for i, c in enumerate(doc.items(top, "cases"))),
        scenarios=tuple(
            _scenario(doc, s, f"scenarios[{i}]")
            for i, s in enumerate(doc.items(top, "scenarios", required=False))
        ),
        spec=doc.opt_text(top, "spec", ""),
        trust_domain=doc.opt_text(top, "trust_domain", ""),
        versions=_versions(doc, top.get("versions")),
        ttl=_versions(doc, top.get("ttl"), "ttl"),
    )


def _versions(doc: _Reader, raw: Any, where: str = "versions") -> dict[str, str] | None:
    """An optional object of names to strings (``versions``: component -> version; ``ttl``:
    credential -> lifetime)."""
    if raw is None:
        return None
    values = doc.obj(raw, where)
    return {str(k): doc.text(values, k, where) for k in values}


def _case(doc: _Reader, raw: Any, where: str) -> CaseRecord:
    item = doc.obj(raw, where)
    ev = doc.obj(item.get("evidence"), f"{where}.evidence")
    audit = ev.get("audit")
    status = ev.get("status")
    if status is not None and (not isinstance(status, int) or isinstance(status, bool)):
        doc.fail(f"{where}.evidence.status", "a number or null", status)
    return CaseRecord(
        **{name: doc.text(item, name, where) for name in _CASE_TEXT},
        elapsed_ms=doc.number(item, "elapsed_ms", where),
        evidence=Evidence(
            sent=doc.text(ev, "sent", f"{where}.evidence"),
            status=status,
            detail=doc.opt_text(ev, "detail", f"{where}.evidence") or "",
            request_id=doc.opt_text(ev, "request_id", f"{where}.evidence"),
            served_by=doc.opt_text(ev, "served_by", f"{where}.evidence"),
            audit=None if audit is None else doc.obj(audit, f"{where}.evidence.audit"),
        ),
    )


_CASE_TEXT = (
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


def _scenario(doc: _Reader, raw: Any, where: str) -> ScenarioRecord:
    item = doc.obj(raw, where)
    figures = doc.obj(item.get("figures", {}), f"{where}.figures")
    timeline: list[tuple[float, str]] = []
    for i, entry in enumerate(doc.items(item, "timeline", required=False, where=where)):
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], str)):
            doc.fail(f"{where}.timeline[{i}]", "[milliseconds, text]", entry)
        timeline.append((doc.number({"ms": entry[0]}, "ms", f"{where}.timeline[{i}]"), entry[1]))
    evidence = doc.items(item, "evidence", required=False, where=where)
    return ScenarioRecord(
        id=doc.text(item, "id", where),
        ok=doc.flag(item, "ok", where),
        verdict=doc.text(item, "verdict", where),
        summary=doc.text(item, "summary", where),
        elapsed_s=doc.number(item, "elapsed_s", where),
        figures={str(k): doc.number(figures, k, f"{where}.figures") for k in figures},
        timeline=tuple(timeline),
        evidence=tuple(str(line) for line in evidence),
    )


class _Reader:
    """Typed access to the decoded JSON; every mismatch is a `ReportError` naming the field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, wanted: str, got: Any) -> NoReturn:
        raise ReportError(
            f"{self.source}: {where or 'the document'}: expected {wanted}, "
            f"got {json.dumps(got)[:60]}",
            "is this a trustproof results.json?",
        )

    def obj(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(where, "an object", value)
        return value

    def items(
        self, data: dict[str, Any], key: str, *, required: bool = True, where: str = ""
    ) -> list[Any]:
        value = data.get(key, None if required else [])
        if not isinstance(value, list):
            self.fail(_at(where, key), "a list", value)
        return value

    def text(self, data: dict[str, Any], key: str, where: str) -> str:
        value = data.get(key)
        if not isinstance(value, str):
            self.fail(_at(where, key), "a string", value)
        return value

    def opt_text(self, data: dict[str, Any], key: str, where: str) -> str | None:
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            self.fail(_at(where, key), "a string or null", value)
        return value

    def number(self, data: dict[str, Any], key: str, where: str) -> float:
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(_at(where, key), "a number", value)
        return float(value)

    def flag(self, data: dict[str, Any], key: str, where: str) -> bool:
        value = data.get(key)
        if not isinstance(value, bool):
            self.fail(_at(where, key), "true or false", value)
        return value


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _case_json(case: CaseRecord) -> dict[str, Any]:
    ev = case.evidence
    data: dict[str, Any] = {name: getattr(case, name) for name in _CASE_TEXT}
    data["elapsed_ms"] = case.elapsed_ms
    data["evidence"] = {
        "sent": ev.sent,
        "status": ev.status,
        "detail": ev.detail,
        "request_id": ev.request_id,
        "served_by": ev.served_by,
        "audit": dict(ev.audit) if ev.audit is not None else None,
    }
    return data


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
