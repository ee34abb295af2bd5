"""Verdicts against a real server trustproof did not write (issue 12): a tiny asyncio/ssl server
(`servers/tiny_answers.py`) on 127.0.0.1, started by the sandbox as a ``gateway: none`` service,
terminating mutual TLS with the sandbox's files, probed through the real live view.

* It marks its handler's answers with a lower-case ``x-served-by`` (as uvicorn/Starlette do): the
  handler's ``404 no such item`` to an allowed caller is served (pass); its twin without the marker
  is a 404 nothing claims, a refusal, so the allowed cells are under-permissions.
* It answers 500 to everything: neither served nor refused, every matrix case ``inconclusive``
  (before issue 12 a server answering an unknown status to everything passed the matrix).
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections import Counter
from pathlib import Path

import pytest

from trustproof.sandbox.controller import Sandbox
from trustproof.suite.runner import SuiteRun, choose, generate, run_suite

pytestmark = pytest.mark.integration

SERVER = Path(__file__).resolve().parent / "servers" / "tiny_answers.py"
PROBES = ("authz.inside-matrix", "authz.outside-matrix", "tls.no-client-cert", "tls.untrusted-ca")

SPEC = """
version: 1
trust_domain: tiny.test
personas: {{ann: {{}}, ben: {{}}}}
services:
  tiny:
    command: [{python}, {server}]
    port: {port}
    env: {{TINY_MODE: {mode}, TINY_ALLOW: ann}}
    ingress: {{gateway: none, client_cert: required, token: optional}}
    health: {{kind: tcp}}
    routes: ['GET /items/{{id}}']
access:
  services:
    tiny: {{ann: ['*']}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_tiny(tmp_path: Path, mode: str) -> SuiteRun:
    spec = tmp_path / "trustproof.yaml"
    spec.write_text(SPEC.format(python=sys.executable, server=SERVER, port=free_port(), mode=mode))

    async def main() -> SuiteRun:
        async with Sandbox.from_file(spec, run_dir=tmp_path / "run") as sandbox:
            return await run_suite(sandbox, choose(generate(sandbox.spec), PROBES))

    return asyncio.run(main())


def verdicts(run: SuiteRun) -> Counter[tuple[str, str]]:
    return Counter((item.case.probe, item.verdict) for item in run.results)


def test_a_lower_case_marker_from_a_real_server_is_positive_evidence(tmp_path: Path) -> None:
    run = run_tiny(tmp_path, "marker")
    assert verdicts(run) == {
        ("authz.inside-matrix", "pass"): 1,
        ("authz.outside-matrix", "pass"): 1,
        ("tls.no-client-cert", "pass"): 1,
        ("tls.untrusted-ca", "pass"): 1,
    }
    inside = next(i for i in run.results if i.case.probe == "authz.inside-matrix")
    assert (inside.result.evidence.status, inside.result.evidence.served_by) == (404, "tiny")
    assert inside.result.reason == "served by tiny (HTTP 404)"


def test_its_twin_without_the_marker_serves_nothing(tmp_path: Path) -> None:
    run = run_tiny(tmp_path, "unmarked")
    assert verdicts(run)[("authz.inside-matrix", "under-permission")] == 1
    inside = next(i for i in run.results if i.case.probe == "authz.inside-matrix")
    assert (inside.result.outcome, inside.result.stage) == ("denied_authz", "route")


def test_a_real_server_answering_500_to_everything_is_inconclusive(tmp_path: Path) -> None:
    run = run_tiny(tmp_path, "error")
    assert verdicts(run) == {
        ("authz.inside-matrix", "inconclusive"): 1,
        ("authz.outside-matrix", "inconclusive"): 1,
        ("tls.no-client-cert", "pass"): 1,  # the handshake still refuses: that is real
        ("tls.untrusted-ca", "pass"): 1,
    }
    inside = next(i for i in run.results if i.case.probe == "authz.inside-matrix")
    assert inside.result.evidence.detail == "Internal Server Error"
    assert not all(item.ok for item in run.results)  # the gate fails
