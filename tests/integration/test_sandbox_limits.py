"""The spec's `limits:` reach every gateway and egress proxy listener of a running sandbox."""

from __future__ import annotations

import asyncio
import http.client
import ssl
from pathlib import Path

import pytest
from test_sandbox import write_spec

from trustproof.gateway.listener import ConnectionLimits
from trustproof.sandbox.controller import Sandbox

pytestmark = pytest.mark.integration

LIMITS = (
    "limits: {handshake_timeout: 3s, header_timeout: 2500ms, idle_timeout: 20s,"
    " max_requests: 1, max_connections: 40}\n"
)


def connection_header_of_first_answer(spec: Path, run_dir: Path) -> tuple[str | None, dict]:
    """The `Connection` header of the api gateway's first answer on a fresh connection (a
    refusal: no client certificate), and the limits each listener holds."""

    async def scenario() -> tuple[str | None, dict]:
        async with Sandbox.from_file(spec, run_dir=run_dir) as sandbox:
            url = sandbox.endpoints["api"].url
            host, port = url.removeprefix("https://").rstrip("/").split(":")
            context = ssl.create_default_context(cafile=str(sandbox.run.bundle))
            context.check_hostname = False

            def first_answer() -> str | None:
                connection = http.client.HTTPSConnection(host, int(port), context=context)
                try:
                    connection.request("GET", "/")
                    answer = connection.getresponse()
                    answer.read()
                    return answer.getheader("Connection")
                finally:
                    connection.close()

            header = await asyncio.to_thread(first_answer)
            held = {
                "gateway": sandbox.gateways["api"].limits,
                "egress": sandbox.egress[("worker", "api")].limits,
            }
            return header, held

    return asyncio.run(scenario())


def test_the_spec_limits_reach_every_listener(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    spec.write_text(spec.read_text() + LIMITS)
    header, held = connection_header_of_first_answer(spec, tmp_path / "run")
    wanted = ConnectionLimits(3.0, 2.5, 20.0, 1, 40)
    assert held == {"gateway": wanted, "egress": wanted}
    assert header == "close"  # max_requests: 1 — the first answer is also the last


def test_the_twin_without_limits_keeps_the_defaults_and_the_connection(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    header, held = connection_header_of_first_answer(spec, tmp_path / "run")
    assert held == {"gateway": ConnectionLimits(), "egress": ConnectionLimits()}
    assert header != "close"
