"""FastAPI on uvicorn and Flask on gunicorn behind trustproof's gateways, made to honour the
contract by one line of `trustproof.middleware` each (examples/frameworks): every generated case
passes. The twins, the same services without that line, are caught: nothing they answer is marked
as served, and their plain ports serve whoever claims an identity in headers."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from trustproof.sandbox.controller import Sandbox
from trustproof.suite.runner import SuiteRun, choose, generate, run_suite

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "frameworks"


def run_on(spec: Path, run_dir: Path) -> SuiteRun:
    async def main() -> SuiteRun:
        async with Sandbox.from_file(spec, run_dir=run_dir) as sandbox:
            return await run_suite(sandbox, choose(generate(sandbox.spec), ()))

    return asyncio.run(main())


def failures(run: SuiteRun) -> set[tuple[str, str, str]]:
    return {(i.verdict, i.case.boundary, i.case.probe) for i in run.results if not i.ok}


def test_fastapi_and_flask_with_the_middleware_pass_every_case(tmp_path: Path) -> None:
    run = run_on(EXAMPLE / "trustproof.yaml", tmp_path / "run")
    assert failures(run) == set()
    assert {i.case.boundary for i in run.results} == {"notes", "tasks"}
    served = {i.result.evidence.served_by for i in run.results if i.result.outcome == "allowed"}
    assert served == {"notes", "tasks"}  # Starlette writes `x-served-by`: read in any case


def without_middleware(tmp_path: Path) -> Path:
    target = tmp_path / "frameworks"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("__pycache__"))
    for name, line in (
        ("notes_fastapi.py", "app.add_middleware(TrustproofMiddleware)\n"),
        (
            "tasks_flask.py",
            "app.wsgi_app = TrustproofMiddleware(app.wsgi_app)  # type: ignore[method-assign]\n",
        ),
    ):
        path = target / name
        text = path.read_text()
        assert text.count(line) == 1
        path.write_text(
            text.replace(line, "")
            .replace("caller_of(request.scope).principal", "'?'")
            .replace("caller_of(request.environ).principal", "'?'")
        )
    return target / "trustproof.yaml"


def test_the_twins_without_the_middleware_are_caught(tmp_path: Path) -> None:
    run = run_on(without_middleware(tmp_path), tmp_path / "run")
    found = failures(run)
    for service in ("notes", "tasks"):
        assert ("not-served", service, "authz.inside-matrix") in found
        assert ("over-permission", service, "bypass.direct-port") in found
