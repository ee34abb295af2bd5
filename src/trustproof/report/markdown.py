"""A short Markdown summary for ``$GITHUB_STEP_SUMMARY`` and pull-request comments.

Short on purpose: the verdict first (✅/❌), the counts per verdict, the failures as a table
(capped, so that a badly broken run still fits a comment), each scenario on one line, and the
figures. The full detail lives in the JUnit XML and `results.json`. Every text is scrubbed and
escaped so that a server's words cannot break the table or inject markup.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from trustproof.report.outbound import INTRO, NONE_LINE, TITLE, outbound_lines, watched
from trustproof.report.shards import shard_lines
from trustproof.results import CaseRecord, Results
from trustproof.results.advice import HOW_TO_FIX
from trustproof.scrub import scrub

MAX_FAILURE_ROWS = 50
MAX_CELL = 160
_SPECIAL = re.compile(r"([\\`*_\[\]|<>#~])")
_ICON = {"pass": "✅", "skip": "⏭️", "fail": "❌", "error": "⚠️"}
# Case verdicts that are failures but not violations get a label of their own: an answer neither
# served nor refused ❓, a probe that could not run ⚠️.
_VERDICT_ICON = {"inconclusive": "❓", "error": "⚠️"}


def _labelled(verdict: str) -> str:
    icon = _VERDICT_ICON.get(verdict)
    return f"{icon} {verdict}" if icon else verdict


def cell(text: str, limit: int = MAX_CELL) -> str:
    """Scrubbed text, on one line, shortened, with Markdown's special characters escaped."""
    flat = " ".join(scrub(text).split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return _SPECIAL.sub(r"\\\1", flat)


def render_markdown(results: Results, *, max_rows: int = MAX_FAILURE_ROWS) -> str:
    """The Markdown summary of a run."""
    cases = results.cases
    if results.ok:
        head = "## ✅ trustproof: every boundary behaved as the spec says"
    else:
        head = (
            f"## ❌ trustproof: trust is broken — {len(results.failures)} case(s) disagree "
            f"with the spec, {len(results.failed_scenarios)} scenario(s) failed"
        )
    where = []
    if results.spec:
        where.append(f"spec {cell(results.spec)}")
    if results.trust_domain:
        where.append(f"trust domain {cell(results.trust_domain)}")
    lines = [
        head,
        "",
        f"{len(cases)} cases in {results.elapsed_s:.2f} s ({results.cases_per_second:.0f}/s)"
        + "".join(f" · {part}" for part in where),
        "",
    ]
    if results.stopped_early:
        lines += ["**Stopped early** (`--fail-fast`): not every case ran.", ""]
    lines += shard_lines(results)
    lines += ["| verdict | cases |", "|---|---:|"]
    counts: dict[str, int] = {}
    for case in cases:
        counts[case.verdict] = counts.get(case.verdict, 0) + 1
    for verdict, count in sorted(counts.items(), key=lambda item: (item[0] != "pass", item[0])):
        lines.append(f"| {cell(_labelled(verdict))} | {count} |")
    lines += _failure_lines(results.failures, max_rows)
    lines += _outbound_lines(results, max_rows)
    if results.scenarios:
        lines += ["", f"### Scenarios ({len(results.scenarios)})", ""]
        for s in results.scenarios:
            icon = _ICON.get(s.verdict, "❔")
            lines.append(f"- {icon} **{cell(s.id)}** ({s.elapsed_s:.2f} s): {cell(s.summary, 300)}")
    if results.alerts:
        lines += ["", f"### Alerts ({len(results.alerts)})", ""]
        for a in results.alerts[:max_rows]:
            times = f" (x{a.count})" if a.count > 1 else ""
            lines.append(
                f"- **{cell(a.severity)}** `{cell(a.rule)}`: {cell(a.title, 300)}{times}"
                f" — {cell(a.detail, 300)}"
            )
        if len(results.alerts) > max_rows:
            lines.append(f"- … {len(results.alerts) - max_rows} more in results.json")
    return "\n".join(lines) + "\n"


def _failure_lines(failures: Sequence[CaseRecord], max_rows: int) -> list[str]:
    """The failures table (at most `max_rows` rows), then one how-to-fix line per verdict."""
    if not failures:
        return []
    lines = [
        "",
        f"### Failures ({len(failures)})",
        "",
        "| verdict | case | expected | observed | reason |",
        "|---|---|---|---|---|",
    ]
    for case in failures[:max_rows]:
        lines.append(
            f"| **{cell(_labelled(case.verdict))}** | {cell(case.id)} | {cell(case.expected)} "
            f"| {cell(case.observed)} | {cell(case.reason or '-')} |"
        )
    if len(failures) > max_rows:
        lines += ["", f"… and {len(failures) - max_rows} more (see the JUnit report)."]
    lines += ["", "How to fix:", ""]
    for verdict in dict.fromkeys(case.verdict for case in failures):
        if verdict in HOW_TO_FIX:
            lines.append(f"- **{cell(verdict)}**: {cell(HOW_TO_FIX[verdict], 300)}.")
    return lines


def _outbound_lines(results: Results, max_rows: int) -> list[str]:
    """What the services themselves tried (`trustproof.report.outbound`), at most `max_rows`."""
    if not watched(results):
        return []
    found = outbound_lines(results)
    lines = ["", f"### {TITLE} ({len(found)})", ""]
    if not found:
        return [*lines, NONE_LINE]
    lines += [INTRO, ""]
    lines += [f"- {cell(line, 300)}" for line in found[:max_rows]]
    if len(found) > max_rows:
        lines += ["", f"… and {len(found) - max_rows} more (see results.json)."]
    return lines
