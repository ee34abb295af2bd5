"""Findings pinned to the spec line to change: GitHub Actions annotations and GitLab Code Quality.

A pull request shows them on the diff of ``trustproof.yaml``. Failures are grouped — one finding
per (verdict, boundary, probe), with its count and the first few case ids — so a badly broken
run gives a few readable findings, not hundreds (GitHub shows at most 10 error annotations per
step and 50 per job). Each points at the most specific line the spec writes for the failing cell:
the route in the caller's list of ``access``, else the caller's key, else the boundary's block of
``access``, else its definition under ``services:``/``datastores:``; a failed scenario at the
spec's first line.

* ``render_github(results)`` — workflow commands (``::error file=…,line=…,title=…::…``), escaped
  as the runner requires; `trustproof run` prints them itself when ``GITHUB_ACTIONS=true``.
* ``render_codequality(results)`` — the JSON list GitLab reads from
  ``artifacts:reports:codequality`` (description, check_name, fingerprint, severity, location).

Every text is scrubbed: a finding never carries a token or a key.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from trustproof.results import CaseRecord, Results
from trustproof.results.advice import FailureGroup, failure_groups
from trustproof.scrub import scrub
from trustproof.spec.lines import SpecLines

MAX_FINDINGS = 50
SHOWN_IDS = 3
SEVERITY = {"over-permission": "critical", "inconclusive": "major", "error": "minor"}
"""GitLab Code Quality severity per verdict (``major`` for the others)."""
SEVERITY.update(  # an alert's finding has its severity as its verdict
    {"info": "info", "low": "minor", "medium": "major", "high": "critical", "critical": "blocker"}
)


ALREADY_FINDINGS = ("over-permission", "expected-refused", "chaos-failed", "case-failed")
"""Alerts about a failing case or scenario: that one is a finding already."""


@dataclass(frozen=True)
class Finding:
    title: str
    message: str
    check: str  # the probe id, or "scenario"
    verdict: str
    file: str
    line: int
    fingerprint: str


def findings(
    results: Results, lines: SpecLines | None = None, *, root: Path | None = None
) -> list[Finding]:
    """The grouped findings of a run, at most `MAX_FINDINGS` (the last one says how many more).

    `lines` defaults to the lines of the run's spec file; `root` is what file paths are made
    relative to (default ``$GITHUB_WORKSPACE``, else the current directory)."""
    spec_path = Path(results.spec) if results.spec else Path("trustproof.yaml")
    if lines is None:
        lines = SpecLines.of_file(spec_path) if results.spec else SpecLines()
    file = _relative(spec_path, root)
    found = [_case_finding(group, lines, file) for group in failure_groups(results.failures)]
    found += [
        Finding(
            f"scenario failed: {s.id}",
            scrub(s.summary),
            "scenario",
            s.verdict,
            file,
            1,
            _fingerprint("scenario", s.id),
        )
        for s in results.failed_scenarios
    ]
    found += [  # alerts that are not already a failing case or scenario above
        Finding(
            f"alert ({a.severity}): {a.title}",
            scrub(a.detail),
            f"alert.{a.rule}",
            a.severity,
            file,
            1,
            _fingerprint("alert", a.key or a.rule),
        )
        for a in results.alerts
        if a.when not in ALREADY_FINDINGS
    ]
    if len(found) > MAX_FINDINGS:
        rest = len(found) - MAX_FINDINGS + 1
        found = found[: MAX_FINDINGS - 1]
        found.append(
            Finding(
                f"{rest} more findings",
                "see the JUnit or HTML report for every case",
                "summary",
                "error",
                file,
                1,
                _fingerprint("more", str(rest)),
            )
        )
    return found


def render_github(results: Results, lines: SpecLines | None = None) -> str:
    """GitHub Actions workflow commands, one ``::error`` line per finding."""
    out = []
    for f in findings(results, lines):
        props = f"file={_prop(f.file)},line={f.line},title={_prop(f.title)}"
        out.append(f"::error {props}::{_data(f.message)}")
    return "".join(line + "\n" for line in out)


def render_codequality(results: Results, lines: SpecLines | None = None) -> str:
    """The GitLab Code Quality report (a JSON list)."""
    entries = [
        {
            "description": f"{f.title}: {f.message}",
            "check_name": f.check,
            "fingerprint": f.fingerprint,
            "severity": SEVERITY.get(f.verdict, "major"),
            "location": {"path": f.file, "lines": {"begin": f.line}},
        }
        for f in findings(results, lines)
    ]
    return json.dumps(entries, indent=1) + "\n"


def _case_finding(group: FailureGroup, lines: SpecLines, file: str) -> Finding:
    shown = "; ".join(
        f"{c.id} (expected {c.expected}, observed {c.observed}"
        + (f": {c.reason}" if c.reason else "")
        + ")"
        for c in group.cases[:SHOWN_IDS]
    )
    more = f"; and {len(group.cases) - SHOWN_IDS} more" if len(group.cases) > SHOWN_IDS else ""
    fix = group.how_to_fix
    message = scrub(f"{shown}{more}." + (f"\nHow to fix: {fix}." if fix else ""))
    key = f"{group.verdict}|{group.boundary}|{group.probe}"
    return Finding(
        scrub(group.title),
        message,
        group.probe,
        group.verdict,
        file,
        _line(group.cases[0], lines),
        _fingerprint(key),
    )


def _line(case: CaseRecord, lines: SpecLines) -> int:
    """The most specific line of the spec that writes the failing cell (1 when none does)."""
    boundary, caller = case.boundary, case.caller
    if case.kind == "datastore":
        return (
            lines.line(
                ("access", "datastores", boundary, caller),
                ("access", "datastores", boundary),
                ("datastores", boundary),
            )
            or 1
        )
    cell = ("access", "services", boundary, caller)
    return (
        lines.item_line(cell, case.operation)
        or lines.line(cell, ("access", "services", boundary), ("services", boundary))
        or 1
    )


def _relative(path: Path, root: Path | None, env: Mapping[str, str] | None = None) -> str:
    base = root or Path((env or os.environ).get("GITHUB_WORKSPACE") or Path.cwd())
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def _data(text: str) -> str:
    """A workflow command's message, escaped as the runner requires."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    """A workflow command's property value, escaped as the runner requires."""
    return _data(text).replace(":", "%3A").replace(",", "%2C")
