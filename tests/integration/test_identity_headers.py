"""Forwarded-identity headers and undeclared listeners against real servers: a tiny service that
takes the caller from ``X-Forwarded-User`` (``gateway: none``) is caught on exactly that header,
the same service without the mistake passes, and the shop behind our gateway is not fooled by any
header (the audit names the headers it stripped). A service whose child opens a plaintext port
nobody declared is caught; declaring it in ``other_ports``, or not opening it, passes."""

from __future__ import annotations

import asyncio
import shutil
import socket
import sys
from pathlib import Path

import pytest

from trustproof.probes.bypass import forgeable_headers
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.view import LiveView
from trustproof.spec.load import load_spec
from trustproof.suite.runner import SuiteRun, choose, generate, run_suite
from trustproof.view import Listener

pytestmark = pytest.mark.integration
SERVER = Path(__file__).with_name("servers") / "header_trusting.py"
HEADER_PROBES = ("token.forged-headers", "bypass.direct-port")
SURFACE = ("surface.undeclared-listener",)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ledger_spec(tmp_path: Path, env: dict[str, str], other_ports: tuple[int, ...] = ()) -> Path:
    shutil.copy(SERVER, tmp_path / "ledger.py")
    lines = [f"      {key}: '{value}'" for key, value in env.items()] or ["      {}"]
    env_block = "\n".join(["    env:", *lines]) if env else "    env: {}"
    spec = f"""
version: 1
trust_domain: ledger.test
personas:
  alice: {{roles: [clerk]}}
  bob: {{roles: [viewer]}}
services:
  ledger:
    command: [{sys.executable}, ledger.py]
    port: {free_port()}
    ingress: {{gateway: none, client_cert: required, token: optional}}
    health: {{kind: tcp}}
    routes: [GET /items]
    other_ports: [{", ".join(str(port) for port in other_ports)}]
{env_block}
access:
  services:
    ledger:
      alice: [GET /items]
"""
    path = tmp_path / "trustproof.yaml"
    path.write_text(spec, encoding="utf-8")
    return path


def run_on(spec: Path, run_dir: Path, select: tuple[str, ...]) -> SuiteRun:
    async def main() -> SuiteRun:
        async with Sandbox.from_file(spec, run_dir=run_dir) as sandbox:
            return await run_suite(sandbox, choose(generate(sandbox.spec), select))

    return asyncio.run(main())


def failures(run: SuiteRun) -> dict[tuple[str, str], str]:
    return {(r.case.probe, r.case.variant): r.verdict for r in run.results if not r.ok}


def test_a_service_believing_x_forwarded_user_is_caught_on_that_header(tmp_path: Path) -> None:
    spec = ledger_spec(tmp_path, {"HONOUR_HEADER": "X-Forwarded-User"})
    run = run_on(spec, tmp_path / "run", HEADER_PROBES)
    assert len(run.results) == len(forgeable_headers(load_spec(spec)))  # no direct port here
    assert failures(run) == {("token.forged-headers", "X-Forwarded-User"): "over-permission"}
    (caught,) = [r for r in run.results if not r.ok]
    assert caught.case.caller == "bob"
    assert "claiming alice in X-Forwarded-User" in caught.result.evidence.sent


def test_the_same_service_believing_no_header_passes(tmp_path: Path) -> None:
    run = run_on(ledger_spec(tmp_path, {}), tmp_path / "run", HEADER_PROBES)
    assert failures(run) == {}
    assert {r.result.outcome for r in run.results} == {"denied_authz"}


def test_the_shop_behind_our_gateway_is_fooled_by_no_header(
    shop_spec_path: Path, tmp_path: Path
) -> None:
    run = run_on(shop_spec_path, tmp_path / "run", (*HEADER_PROBES, *SURFACE))
    headers = forgeable_headers(load_spec(shop_spec_path))
    assert len(run.results) == 2 * 3 * len(headers) + 3
    assert failures(run) == {}  # and its services listen on their declared ports only
    forged = {r.case.variant: r for r in run.results if r.case.probe == HEADER_PROBES[0]}
    audit = forged["X-Authenticated-User"].result.evidence.audit
    assert audit is not None
    assert audit["stripped_headers"] == ["x-authenticated-user"]  # the name, never the value


def listeners(spec: Path, run_dir: Path) -> tuple[Listener, ...]:
    async def main() -> tuple[Listener, ...]:
        async with (
            Sandbox.from_file(spec, run_dir=run_dir) as sandbox,
            LiveView.open(sandbox) as view,
        ):
            return await view.listeners("ledger")

    return asyncio.run(main())


def test_a_plaintext_port_opened_by_a_child_is_an_undeclared_listener(tmp_path: Path) -> None:
    extra = free_port()
    spec = ledger_spec(tmp_path, {"EXTRA_PORT": str(extra)})
    own = int(load_spec(spec).services["ledger"].port)
    found = {(item.port, item.speaks_tls) for item in listeners(spec, tmp_path / "look")}
    assert found == {(own, True), (extra, False)}
    run = run_on(spec, tmp_path / "run", SURFACE)
    assert failures(run) == {("surface.undeclared-listener", ""): "over-permission"}
    detail = run.results[0].result.evidence.detail
    assert f"127.0.0.1:{extra}/tcp of pid" in detail
    assert "plaintext" in detail
    assert str(own) not in detail.replace(str(extra), "")


def test_a_declared_extra_port_or_none_at_all_passes(tmp_path: Path) -> None:
    extra = free_port()
    declared = ledger_spec(tmp_path, {"EXTRA_PORT": str(extra)}, other_ports=(extra,))
    run = run_on(declared, tmp_path / "run", SURFACE)
    assert failures(run) == {}
    (tmp_path / "plain").mkdir()
    run = run_on(ledger_spec(tmp_path / "plain", {}), tmp_path / "run2", SURFACE)
    assert failures(run) == {}
    assert "speaks TLS" in run.results[0].result.evidence.detail
