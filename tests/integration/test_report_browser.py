"""The HTML report in a real headless Chromium (the Debian ``chromium`` package, driven by its
own command line, no Python browser library): the rendered DOM has the verdict banner, the
failures and the access matrix, and a screenshot is kept under ``test-artifacts/`` to look at.

Chromium runs with networking features off and a throw-away profile; every call is bounded.
When Chromium is missing it is installed as root (``apt-get install -y chromium``, as
``scripts/bootstrap.sh`` does); otherwise the test is skipped, saying why.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from trustproof.report import render
from trustproof.results import from_json

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
TIMEOUT = 60
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
LEAKED = "authz.outside-matrix | storefront | orders | GET /admin"


def _sample() -> dict[str, Any]:
    """The fixed run of the unit tests (`tests/unit/test_report_render.py`), with its leak on
    its own operation and gateway audit timings, so every section has something to draw."""
    path = ROOT / "tests" / "unit" / "test_report_render.py"
    spec = importlib.util.spec_from_file_location("report_render_sample", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data: dict[str, Any] = module.fixed_results()
    data["cases"][1]["operation"] = "GET /admin"
    data["cases"][0]["evidence"]["audit"] = {
        "allowed": False,
        "stage": "policy",
        "timings": {"handshake_us": 1800.0, "token_us": 300.0, "policy_us": 120.0},
    }
    return data


def _chromium() -> str:
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
    )
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("chromium is not installed and this is not root with apt-get to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(
        ["apt-get", "install", "-y", "chromium"],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        check=False,
    )
    found = shutil.which("chromium")
    if not found:
        pytest.skip(f"apt-get install chromium failed: {done.stderr[-500:]}")
    return found


@pytest.fixture(scope="module")
def chromium() -> str:
    return _chromium()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("html-report") / "report.html"
    path.write_text(render(from_json(_sample()), "html"), encoding="utf-8")
    return path


def _run(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_rendered_dom_has_banner_failures_and_matrix(
    chromium: str, report: Path, tmp_path: Path
) -> None:
    done = _run(chromium, tmp_path / "profile", "--dump-dom", report.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    banner = re.search(
        r'<header id="verdict" class="banner (\w+)">\s*<div class="verdict">(\w+)<', dom
    )
    assert banner is not None
    assert banner.groups() == ("fail", "FAIL")
    failures = dom[dom.index('<section id="failures">') : dom.index('<section id="matrix">')]
    assert LEAKED in failures
    matrix = re.search(r'<table class="matrix" id="matrix-storefront".*?</table>', dom, re.S)
    assert matrix is not None
    cells = re.findall(r'<td class="cell (\w+) (?:allow|deny)"', matrix.group(0))
    assert sorted(cells) == ["ok", "violation"]  # 1 caller x 2 operations
    assert "<script" not in dom.lower()


def test_screenshot_is_kept_as_an_artifact(chromium: str, report: Path, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    done = _run(
        chromium,
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=1280,2000",
        report.as_uri(),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000  # a page, not a blank image
