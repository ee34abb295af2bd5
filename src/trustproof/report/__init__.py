"""Reports rendered from a run's results: JUnit XML for CI, Markdown for summaries and pull-request
comments, a self-contained HTML page for people, and the canonical JSON. Every renderer reads the
one result model (`trustproof.results`).

`write_reports` is what `trustproof run` and `trustproof probe` call after the suite;
`trustproof report` re-renders any format from a run directory later.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from trustproof.report.html import render_html
from trustproof.report.junit import render_junit
from trustproof.report.markdown import render_markdown
from trustproof.results import ReportError, Results
from trustproof.scrub import scrub

__all__ = ["FILES", "FORMATS", "append_step_summary", "render", "write_reports"]

FORMATS = ("junit", "md", "json", "html")
FILES = {"junit": "report.junit.xml", "md": "report.md", "html": "report.html"}


def render(results: Results, fmt: str) -> str:
    """The report in format `fmt` (``junit``, ``md``, ``json`` or ``html``) as text."""
    if fmt == "junit":
        return render_junit(results)
    if fmt == "md":
        return render_markdown(results)
    if fmt == "json":
        return scrub(json.dumps(results.to_json(), indent=1)) + "\n"
    if fmt == "html":
        return render_html(results)
    raise ReportError(f"unknown report format {fmt!r}", f"choose one of {', '.join(FORMATS)}")


def write_reports(results: Results, report_dir: Path) -> dict[str, Path]:
    """Write the JUnit, Markdown and HTML reports into `report_dir` (created); their paths by
    format."""
    report_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for fmt, name in FILES.items():
        path = report_dir / name
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
