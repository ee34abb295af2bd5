"""Where a run happened (`trustproof.suite.context`): CI variables first, else the checkout."""

from __future__ import annotations

from pathlib import Path

from trustproof.suite.context import git_head, run_context

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_github_actions() -> None:
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_REPOSITORY": "acme/shop",
        "GITHUB_SHA": SHA,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_RUN_ID": "42",
    }
    assert run_context(env, Path("/nowhere")) == {
        "ci": "GitHub Actions",
        "project": "acme/shop",
        "commit": SHA,
        "ci_url": "https://github.com/acme/shop/actions/runs/42",
    }


def test_gitlab_and_a_link_that_is_not_http_is_dropped() -> None:
    env = {
        "GITLAB_CI": "true",
        "CI_PROJECT_PATH": "platform/shop",
        "CI_COMMIT_SHA": SHA,
        "CI_JOB_URL": "javascript:alert(1)",
    }
    found = run_context(env, Path("/nowhere"))
    assert found == {"ci": "GitLab CI", "project": "platform/shop", "commit": SHA}


def test_outside_ci_the_checkout_says(tmp_path: Path) -> None:
    git = tmp_path / "repo" / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "refs" / "heads" / "main").write_text(SHA + "\n")
    spec_dir = tmp_path / "repo" / "deploy"
    spec_dir.mkdir()
    assert run_context({}, spec_dir) == {"project": "deploy", "commit": SHA}


def test_packed_refs_detached_heads_and_no_checkout(tmp_path: Path) -> None:
    git = tmp_path / "a" / ".git"
    git.mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "packed-refs").write_text(f"# pack-refs with: peeled\n{SHA} refs/heads/main\n")
    assert git_head(tmp_path / "a") == SHA
    (git / "HEAD").write_text(SHA.replace("0", "f") + "\n")
    assert git_head(tmp_path / "a") == SHA.replace("0", "f")
    (git / "HEAD").write_text("ref: refs/heads/gone\n")
    assert git_head(tmp_path / "a") is None  # a branch with no commit yet
