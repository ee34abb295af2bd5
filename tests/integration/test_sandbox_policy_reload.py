"""Policy hot reload in a running sandbox: the policy file replaced under live traffic.

worker calls api through its egress proxy (mTLS + a bound token to api's gateway, all on
loopback); api's gateway decides with the spec's Cedar file. Each wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from trustproof.audit.files import records
from trustproof.audit.keys import load_kek
from trustproof.errors import SandboxError
from trustproof.policy import CedarPolicyEngine
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.policywatch import POLL_SECONDS
from trustproof.spec import load_spec

pytestmark = pytest.mark.integration

SERVICE = (
    "import http.server, os\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200); self.send_header('Content-Length', '2')\n"
    "        self.end_headers(); self.wfile.write(b'ok')\n"
    "    def log_message(self, *a): pass\n"
    "http.server.HTTPServer((os.environ['TRUSTPROOF_HOST'], int(os.environ['TRUSTPROOF_PORT'])),"
    " H).serve_forever()\n"
)
PERMIT = (
    '@id("worker-reads")\npermit (principal == Workload::"worker", action == Action::"GET", '
    'resource == Route::"api /");\n'
)
OTHER_ROUTE_ONLY = (
    '@id("worker-reads-health")\npermit (principal == Workload::"worker", '
    'action == Action::"GET", resource == Route::"api /health");\n'
)
INVALID = 'permit (principal == Workload::"worker", action == Action::"GET"'  # unterminated
WAIT_S = 15.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_spec(tmp_path: Path) -> Path:
    (tmp_path / "svc.py").write_text(SERVICE)
    (tmp_path / "app.cedar").write_text(PERMIT)
    spec = tmp_path / "trustproof.yaml"
    spec.write_text(
        "trust_domain: t.test\n"
        "services:\n"
        f"  api: {{command: [python, svc.py], port: {free_port()}, routes: [GET /, GET /health]}}\n"
        f"  worker: {{command: [python, svc.py], port: {free_port()}, routes: [GET /],"
        " calls: [api]}\n"
        "policies: {files: [app.cedar]}\n"
        "access: {services: {api: {worker: [GET /]}}}\n"
    )
    return spec


def replace_file(path: Path, text: str) -> None:
    """The way editors and deploy tools replace a file: write beside it, rename over it."""
    staging = path.with_suffix(".tmp")
    staging.write_text(text)
    os.replace(staging, path)


async def status_of(sandbox: Sandbox) -> int:
    url = sandbox.endpoints["worker"].egress["api"]
    assert url.startswith("http://127.0.0.1:")  # loopback only
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url + "/") as reply:
        return reply.status


async def until(check: Callable[[], Awaitable[bool]], seconds: float = WAIT_S) -> bool:
    """Poll `check` until it holds or `seconds` pass (a bound, not a speed target)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    return False


def reloads(sandbox: Sandbox) -> dict[str, Any]:
    state = json.loads(sandbox.run.state_file.read_text())
    found: dict[str, Any] = state["policy_reloads"]
    return found


def audited_reloads(sandbox: Sandbox) -> list[dict[str, Any]]:
    assert sandbox.audit_log is not None
    sandbox.audit_log.flush()
    events = records(sandbox.run.path, load_kek().key)
    return [e for e in events if e.get("method") == "RELOAD"]


def test_a_replaced_policy_file_is_enforced_and_an_invalid_one_refused(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    policy = tmp_path / "app.cedar"

    async def scenario() -> None:
        async with Sandbox.from_file(spec, run_dir=tmp_path / "run") as sandbox:
            assert await status_of(sandbox) == 200

            # Invalid Cedar: refused, recorded, and the old policy keeps deciding.
            replace_file(policy, INVALID)

            async def rejected() -> bool:
                return reloads(sandbox)["rejected"] == 1

            assert await until(rejected), reloads(sandbox)
            event = reloads(sandbox)["events"][-1]
            assert (event["outcome"], event["version"]) == ("rejected", 1)
            assert "app.cedar:1:" in event["reason"]
            assert await status_of(sandbox) == 200
            audited = audited_reloads(sandbox)
            assert [e["reason"].split(":")[0] for e in audited] == ["policy-reload-rejected"]

            # A valid policy without the permit: the allowed call becomes a 403.
            replace_file(policy, OTHER_ROUTE_ONLY)

            async def denied() -> bool:
                return await status_of(sandbox) == 403

            assert await until(denied)
            summary = reloads(sandbox)
            assert (summary["version"], summary["accepted"], summary["rejected"]) == (2, 1, 1)
            refusals = [e for e in sandbox.audit.events() if e.service == "api" and e.status == 403]
            assert refusals[-1].stage == "policy"
            assert refusals[-1].reason == "no-matching-permit"

            # The permit back: the denied call is allowed again.
            replace_file(policy, PERMIT)

            async def allowed() -> bool:
                return await status_of(sandbox) == 200

            assert await until(allowed)
            assert reloads(sandbox)["version"] == 3

            # On demand: no waiting for the poll; the very next call sees the new policies.
            policy.write_text(OTHER_ROUTE_ONLY)
            event_now = await sandbox.reload_policies()
            assert (event_now.outcome, event_now.trigger) == ("accepted", "request")
            assert event_now.version >= 4  # the watcher may have seen the write first
            assert await status_of(sandbox) == 403

    asyncio.run(asyncio.wait_for(scenario(), timeout=120))


def test_twin_a_sandbox_given_its_own_engine_never_reloads(tmp_path: Path) -> None:
    """The same file replacement with no watcher: the call stays allowed — what the test above
    would see if hot reload did nothing."""
    spec = write_spec(tmp_path)
    policy = tmp_path / "app.cedar"

    async def scenario() -> None:
        engine = CedarPolicyEngine.from_spec(load_spec(spec))
        async with Sandbox.from_file(spec, run_dir=tmp_path / "run", engine=engine) as sandbox:
            assert await status_of(sandbox) == 200
            replace_file(policy, OTHER_ROUTE_ONLY)

            async def denied() -> bool:
                return await status_of(sandbox) == 403

            assert not await until(denied, seconds=4 * POLL_SECONDS + 1)
            with pytest.raises(SandboxError, match="no policies to reload"):
                await sandbox.reload_policies()
            assert sandbox.state()["policy_reloads"] is None

    asyncio.run(asyncio.wait_for(scenario(), timeout=120))
