"""A self-contained HTML report: one file, inline CSS and inline SVG, no JavaScript, no network.

It reads the one result model (`trustproof.results.Results`) and lays it out for a person: the
verdict first, then the failures with their evidence, what the services themselves tried to reach
outside their declared peers ("Outbound attempts", `trustproof.report.outbound`; on a run that
watched it), the access matrix of every boundary (callers
by operations, expected vs observed), the latency each verification stage of the gateways added
(p50/p95/p99 from the audit timings), the scenarios' timelines and figures, and the environment.

Everything shown goes through Jinja2 with autoescaping and through `trustproof.scrub.scrub` (a
`finalize` hook applies it to every value the template prints), so a server's words can neither
inject markup nor leak a token into the report. The markup itself lives in `html_parts`.
"""

from __future__ import annotations

import json
import math
import platform
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment
from markupsafe import Markup

import trustproof
from trustproof.report.html_parts import TEMPLATE
from trustproof.report.outbound import INTRO, NONE_LINE, outbound_lines, watched
from trustproof.results import CaseRecord, Results, ScenarioRecord
from trustproof.results.advice import failure_groups
from trustproof.scrub import scrub

__all__ = [
    "STAGES",
    "Bar",
    "Cell",
    "Matrix",
    "StageLatency",
    "build_latency",
    "build_matrices",
    "percentile",
    "render_html",
]

# The audit timing of each verification stage, in the order a request meets them.
STAGES = (
    ("handshake_us", "TLS handshake"),
    ("token_us", "token"),
    ("policy_us", "policy"),
    ("upstream_us", "upstream"),
)
_MATRIX_PROBES = {
    "authz.inside-matrix": ("service", "allow"),
    "authz.outside-matrix": ("service", "deny"),
    "db.inside-grants": ("datastore", "allow"),
    "db.outside-grants": ("datastore", "deny"),
}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
CHART_WIDTH = 640


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0-100) of `values` by linear interpolation between the closest
    ranks (numpy's default): p50 of 1..100 is 50.5, p99 is 99.01. NaN for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is not between 0 and 100")
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Cell:
    """One caller and operation of a matrix: what the spec expects and what was observed."""

    expected: str  # allow | deny
    observed: str  # allow | deny | unclear | error
    verdict: str
    case_id: str

    @property
    def state(self) -> str:
        """The CSS class: ``ok`` (matches), ``violation`` (disagrees), ``inconclusive`` (an
        answer neither served nor refused: a failure too) or ``error`` (the probe could not
        run)."""
        if self.verdict == "pass":
            return "ok"
        if self.verdict == "inconclusive":
            return "inconclusive"
        return "error" if self.verdict in ("error", "skip") else "violation"


@dataclass
class Matrix:
    """The access grid of one boundary, built from its inside/outside matrix (or grants) cases."""

    boundary: str
    kind: str  # service | datastore
    callers: list[str] = field(default_factory=list)
    operations: list[str] = field(default_factory=list)
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)

    def cell(self, caller: str, operation: str) -> Cell | None:
        return self.cells.get((caller, operation))

    @property
    def violations(self) -> int:
        return sum(1 for c in self.cells.values() if c.state != "ok")


def _observed(case: CaseRecord) -> str:
    if case.outcome == "allowed":
        return "allow"
    if case.outcome.startswith("denied"):
        return "deny"
    if case.outcome == "inconclusive":
        return "unclear"
    return "error"


def build_matrices(results: Results) -> list[Matrix]:
    """One matrix per boundary that has matrix or grants cases, in order of first appearance."""
    matrices: dict[str, Matrix] = {}
    for case in results.cases:
        known = _MATRIX_PROBES.get(case.probe)
        if known is None:
            continue
        kind, expected = known
        matrix = matrices.setdefault(case.boundary, Matrix(case.boundary, kind))
        operation = case.operation + (f" ({case.variant})" if case.variant else "")
        if case.caller not in matrix.callers:
            matrix.callers.append(case.caller)
        if operation not in matrix.operations:
            matrix.operations.append(operation)
        cell = Cell(expected, _observed(case), case.verdict, case.id)
        known_cell = matrix.cells.get((case.caller, operation))
        if known_cell is None or known_cell.state == "ok":  # a disagreement is never hidden
            matrix.cells[(case.caller, operation)] = cell
    for matrix in matrices.values():
        matrix.callers.sort()
        matrix.operations.sort(key=lambda op: (op.split(" ", 1)[-1], op))
    return list(matrices.values())


@dataclass(frozen=True)
class Bar:
    """One bar of a chart, already laid out (SVG user units)."""

    x: float
    y: float
    width: float
    height: float
    css: str
    label: str
    label_x: float


@dataclass(frozen=True)
class StageLatency:
    """The added latency of one verification stage at one boundary, in milliseconds."""

    stage: str
    count: int
    p50: float
    p95: float
    p99: float


def build_latency(results: Results) -> dict[str, list[StageLatency]]:
    """Per boundary, p50/p95/p99 of each stage's audit timing over the cases that recorded it."""
    samples: dict[str, dict[str, list[float]]] = {}
    for case in results.cases:
        timings = (case.evidence.audit or {}).get("timings")
        if not isinstance(timings, dict):
            continue
        per_stage = samples.setdefault(case.boundary, {})
        for key, _ in STAGES:
            value = timings.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                per_stage.setdefault(key, []).append(float(value) / 1000)
    latency: dict[str, list[StageLatency]] = {}
    for boundary, per_stage in samples.items():
        rows = [
            StageLatency(
                label,
                len(per_stage[key]),
                percentile(per_stage[key], 50),
                percentile(per_stage[key], 95),
                percentile(per_stage[key], 99),
            )
            for key, label in STAGES
            if per_stage.get(key)
        ]
        if rows:
            latency[boundary] = rows
    return latency


def _bars(rows: list[StageLatency]) -> tuple[list[Bar], int]:
    """Horizontal bars (p50, p95, p99 per stage) on one linear scale; the chart's height."""
    top = max((r.p99 for r in rows), default=0.0) or 1.0
    left, span, bar_h, gap = 120.0, CHART_WIDTH - 120.0 - 90.0, 11.0, 12.0
    bars: list[Bar] = []
    y = 6.0
    for row in rows:
        for name, value in (("p50", row.p50), ("p95", row.p95), ("p99", row.p99)):
            width = max(value / top * span, 1.0)
            bars.append(Bar(left, y, width, bar_h, name, f"{name} {value:.2f} ms", left + width))
            y += bar_h + 1
        y += gap
    return bars, int(y)


def _timeline(s: ScenarioRecord) -> list[dict[str, Any]]:
    """Markers along the x axis, alternately above and below so that neighbours stay legible."""
    end = max((ms for ms, _ in s.timeline), default=0.0) or 1.0
    return [
        {"n": i + 1, "x": 20 + ms / end * (CHART_WIDTH - 40), "up": i % 2 == 0, "ms": ms, "text": t}
        for i, (ms, t) in enumerate(s.timeline)
    ]


def _clean(value: Any) -> Any:
    """Every string the template prints: scrubbed, without control characters. The template's own
    macros (already escaped `Markup`) pass unchanged."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return _CONTROL.sub("", scrub(value))
    return value


def _context(results: Results) -> dict[str, str]:
    """Project, commit and CI link for the header; a link only when it is http(s)."""
    context = dict(results.context or {})
    if not context.get("ci_url", "").startswith(("https://", "http://")):
        context.pop("ci_url", None)
    return context


def render_html(results: Results) -> str:
    """The HTML report of a run, as one self-contained document."""
    env = Environment(autoescape=True, finalize=_clean, trim_blocks=True, lstrip_blocks=True)
    counts: dict[str, int] = {}
    for case in results.cases:
        counts[case.verdict] = counts.get(case.verdict, 0) + 1
    latency = build_latency(results)
    charts = {boundary: _bars(rows) for boundary, rows in latency.items()}
    return env.from_string(TEMPLATE).render(
        r=results,
        counts=sorted(counts.items(), key=lambda item: (item[0] != "pass", item[0])),
        failures=results.failures,
        groups=failure_groups(results.failures),
        ctx=_context(results),
        failed_scenarios=results.failed_scenarios,
        matrices=build_matrices(results),
        latency=latency,
        charts=charts,
        chart_width=CHART_WIDTH,
        timelines={s.id: _timeline(s) for s in results.scenarios},
        audit_json=lambda audit: json.dumps(audit, indent=1, sort_keys=True),
        versions=results.versions,
        ttl=results.ttl,
        renderer={"trustproof": trustproof.__version__, "python": platform.python_version()},
        outbound_watched=watched(results),
        outbound=outbound_lines(results),
        outbound_intro=INTRO,
        outbound_none=NONE_LINE,
    )
