"""Where a run happened, for the reports' header: the project, the commit, the CI run.

From the CI's own variables (GitHub Actions, GitLab CI) when there are; otherwise the spec's
directory name and the commit of the git checkout it sits in, read from ``.git`` (no `git`
process). Only what is known is recorded; a CI URL is kept only when it is ``http(s)://``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
MAX_HEAD_BYTES = 4096


def run_context(environ: Mapping[str, str], spec_dir: Path) -> dict[str, str]:
    """``project``, ``commit``, ``ci_url``, ``ci``: whichever are known."""
    found: dict[str, str] = {}
    if environ.get("GITHUB_ACTIONS") == "true":
        found["ci"] = "GitHub Actions"
        found["project"] = environ.get("GITHUB_REPOSITORY", "")
        found["commit"] = environ.get("GITHUB_SHA", "")
        server, run_id = environ.get("GITHUB_SERVER_URL", ""), environ.get("GITHUB_RUN_ID", "")
        if server and run_id and found["project"]:
            found["ci_url"] = f"{server}/{found['project']}/actions/runs/{run_id}"
    elif environ.get("GITLAB_CI") == "true":
        found["ci"] = "GitLab CI"
        found["project"] = environ.get("CI_PROJECT_PATH", "")
        found["commit"] = environ.get("CI_COMMIT_SHA", "")
        found["ci_url"] = environ.get("CI_JOB_URL") or environ.get("CI_PIPELINE_URL", "")
    if not found.get("project"):
        found["project"] = spec_dir.resolve().name
    if not found.get("commit"):
        found["commit"] = git_head(spec_dir) or ""
    if not found.get("ci_url", "").startswith(("https://", "http://")):
        found.pop("ci_url", None)
    return {key: value for key, value in found.items() if value}


def git_head(start: Path) -> str | None:
    """The commit checked out in the git work tree around `start` (None when there is none)."""
    for directory in (start.resolve(), *start.resolve().parents):
        dot_git = directory / ".git"
        if dot_git.is_file():  # a worktree or submodule: "gitdir: <path>"
            text = _read(dot_git)
            if not text or not text.startswith("gitdir:"):
                return None
            dot_git = (directory / text.removeprefix("gitdir:").strip()).resolve()
        if dot_git.is_dir():
            return _resolve_head(dot_git)
    return None


def _resolve_head(git_dir: Path) -> str | None:
    head = _read(git_dir / "HEAD")
    if head is None:
        return None
    if _SHA.fullmatch(head):
        return head  # detached
    if not head.startswith("ref: "):
        return None
    ref = head.removeprefix("ref: ")
    common = git_dir
    commondir = _read(git_dir / "commondir")
    if commondir:
        common = (git_dir / commondir).resolve()
    for root in (git_dir, common):
        value = _read(root / ref)
        if value and _SHA.fullmatch(value):
            return value
    packed = _read(common / "packed-refs", limit=4 * 1024 * 1024) or ""
    for line in packed.splitlines():
        sha, _, name = line.partition(" ")
        if name == ref and _SHA.fullmatch(sha):
            return sha
    return None


def _read(path: Path, limit: int = MAX_HEAD_BYTES) -> str | None:
    try:
        with path.open("rb") as handle:
            return handle.read(limit).decode("utf-8", "replace").strip()
    except OSError:
        return None
