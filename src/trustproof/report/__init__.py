"""Reports rendered from a run's results: JUnit XML for CI, Markdown for summaries and pull-request
comments, a self-contained HTML page for people, and the canonical JSON. Every renderer reads the
one result model (`trustproof.results`).

`write_reports` is what `trustproof run` and `trustproof probe` call after the suite (the formats
the spec's ``reports:`` names, into its ``dir``); `trustproof report` re-renders any format from a
run directory later. Two formats point findings at the spec line to change
(`trustproof.report.annotations`): ``github`` (workflow commands; `trustproof run` prints them
itself under GitHub Actions) and ``codequality`` (GitLab's Code Quality report).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from trustproof.report.annotations import render_codequality, render_github
from trustproof.report.html import render_html
from trustproof.report.junit import render_junit
from trustproof.report.markdown import render_markdown
from trustproof.results import ReportError, Results
from trustproof.scrub import scrub

__all__ = [
    "DEFAULT_FORMATS",
    "FILES",
    "FORMATS",
    "append_step_summary",
    "render",
    "write_reports",
]

FORMATS = ("junit", "md", "json", "html", "codequality", "github")
FILES = {
    "junit": "report.junit.xml",
    "md": "report.md",
    "html": "report.html",
    "json": "results.json",
    "codequality": "codequality.json",
}
"""The file each format is written to (``github`` annotations go to standard output)."""
DEFAULT_FORMATS = ("junit", "html", "md", "json")


def render(results: Results, fmt: str) -> str:
    """The report in format `fmt` (one of `FORMATS`) as text."""
    if fmt == "junit":
        return render_junit(results)
    if fmt == "md":
        return render_markdown(results)
    if fmt == "json":
        return scrub(json.dumps(results.to_json(), indent=1)) + "\n"
    if fmt == "html":
        return render_html(results)
    if fmt == "codequality":
        return render_codequality(results)
    if fmt == "github":
        return render_github(results)
    raise ReportError(f"unknown report format {fmt!r}", f"choose one of {', '.join(FORMATS)}")


def write_reports(
    results: Results, report_dir: Path, formats: Sequence[str] = DEFAULT_FORMATS
) -> dict[str, Path]:
    """Write the reports of `formats` (each a key of `FILES`) into `report_dir` (created), and
    nothing else; their paths by format."""
    unknown = [fmt for fmt in formats if fmt not in FILES]
    if unknown:
        raise ReportError(
            f"cannot write report format {unknown[0]!r} to a file",
            f"choose among {', '.join(FILES)}",
        )
    report_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for fmt in dict.fromkeys(formats):
        path = report_dir / FILES[fmt]
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(render(results, fmt), encoding="utf-8")
        os.replace(tmp, path)
        written[fmt] = path
    return written


def append_step_summary(results: Results, env: Mapping[str, str] | None = None) -> Path | None:
    """Append the Markdown summary to ``$GITHUB_STEP_SUMMARY`` when it is set (GitHub Actions
    shows that file on the run's page); the file's path, or None when the variable is unset."""
    target = (os.environ if env is None else env).get("GITHUB_STEP_SUMMARY", "")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(render_markdown(results) + "\n")
    return path
