"""The gateway's and the token service's TLS, judged by third-party tools on loopback: sslyze's
Mozilla "intermediate" checker (as a library, in its own virtualenv) and ``openssl s_client``
for what sslyze does not judge (CA names in the CertificateRequest, groups). Each next to a
deliberately weak server that the same tools find wanting."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from trustproof.audit import MemorySink
from trustproof.clock import ManualClock
from trustproof.fabric import TrustFabric
from trustproof.gateway.config import gateway_config
from trustproof.gateway.pipeline import Pipeline
from trustproof.gateway.server import Gateway
from trustproof.identity import CertificateAuthority
from trustproof.policy import CedarPolicyEngine
from trustproof.spec import load_spec
from trustproof.tls import client_context, load_svid
from trustproof.tokenservice.server import bind_loopback

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SSLYZE_PYTHON = ROOT / ".venv-sslyze" / "bin" / "python"
SCANNER = Path(__file__).with_name("sslyze_mozilla.py")
# What a private CA cannot satisfy: nothing else may be reported.
PRIVATE_CA_ITEMS = {"certificate_path_validation"}


@asynccontextmanager
async def servers(shop_spec_path: Path) -> AsyncIterator[tuple[TrustFabric, Gateway, str]]:
    """The real token service and a gateway, both on loopback, and a deliberately weak TLS
    server (TLS 1.0, CBC suites, Python's default groups, no CA names) as the failing twin."""
    spec = load_spec(shop_spec_path)
    clock = ManualClock(datetime.now(UTC))
    fabric = await TrustFabric.start(spec, clock=clock)
    dead = bind_loopback()  # the upstream is never reached: only TLS is looked at
    dead_port = dead.getsockname()[1]
    dead.close()
    gateway = Gateway(
        Pipeline(
            gateway_config(spec, "orders"),
            fabric.validator(),
            CedarPolicyEngine.from_spec(spec),
            clock,
        ),
        upstream=f"http://127.0.0.1:{dead_port}",
        sink=MemorySink(),
        ca=fabric.ca,
        svid=fabric.ca.issue("orders", fabric.certificate_ttl, ips=["127.0.0.1"]),
        clock=clock,
    )
    await gateway.start(bind_loopback())
    weak = _weak_context(fabric.ca)
    runner = web.ServerRunner(web.Server(_hello), access_log=None)
    await runner.setup()
    weak_sock = bind_loopback()
    await web.SockSite(runner, weak_sock, ssl_context=weak).start()
    try:
        yield fabric, gateway, f"127.0.0.1:{weak_sock.getsockname()[1]}"
    finally:
        await runner.cleanup()
        await gateway.close()
        await fabric.close()


async def _hello(request: web.BaseRequest) -> web.Response:
    return web.Response(text="hello")


def _weak_context(ca: CertificateAuthority) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():  # deprecated: that is the point of this twin
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("ECDHE+AESGCM:ECDHE+AES:@SECLEVEL=0")  # CBC suites in
    context.verify_mode = ssl.CERT_OPTIONAL
    context.load_verify_locations(cadata=ca.bundle_pem().decode("ascii"))
    load_svid(context, ca.issue("weak", timedelta(minutes=5), ips=["127.0.0.1"]))
    return context


def address(url: str) -> str:
    return url.removeprefix("https://")


def sslyze(ca_file: Path, *targets: str) -> dict[str, Any]:
    if not SSLYZE_PYTHON.exists():
        pytest.fail(
            f"{SSLYZE_PYTHON} is missing: run `make setup` (scripts/bootstrap.sh builds it)"
        )
    done = subprocess.run(
        [str(SSLYZE_PYTHON), str(SCANNER), str(ca_file), *targets],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    verdicts: dict[str, Any] = json.loads(done.stdout)
    return verdicts


def s_client(target: str, *args: str) -> str:
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed for this test"
    done = subprocess.run(
        [openssl, "s_client", "-connect", target, *args],
        input=b"",
        capture_output=True,
        timeout=30,
        check=False,
    )
    return (done.stdout + done.stderr).decode("utf-8", "replace")


def run_in_servers(shop_spec_path: Path, check: Any) -> None:
    async def main() -> None:
        async with servers(shop_spec_path) as (fabric, gateway, weak):
            await asyncio.to_thread(check, fabric, gateway, weak)

    asyncio.run(main())


def test_gateway_and_token_service_pass_mozilla_intermediate_and_a_weak_server_does_not(
    shop_spec_path: Path, tmp_path: Path
) -> None:
    def check(fabric: TrustFabric, gateway: Gateway, weak: str) -> None:
        ca_file = tmp_path / "bundle.pem"
        ca_file.write_bytes(fabric.ca.bundle_pem())
        ours = [address(gateway.url), address(fabric.url)]
        verdicts = sslyze(ca_file, *ours, weak)
        for target in ours:
            verdict = verdicts[target]
            assert "error" not in verdict, verdict
            assert set(verdict["issues"]) <= PRIVATE_CA_ITEMS, (target, verdict["issues"])
        twin = verdicts[weak]
        assert "error" not in twin, twin
        assert {"tls_versions", "ciphers"} <= set(twin["issues"]), twin["issues"]

    run_in_servers(shop_spec_path, check)


def test_certificate_request_names_the_ca_and_groups_are_limited(shop_spec_path: Path) -> None:
    def check(fabric: TrustFabric, gateway: Gateway, weak: str) -> None:
        for target in (address(gateway.url), address(fabric.url)):
            hello = s_client(target, "-tls1_2")
            assert "Acceptable client certificate CA names" in hello, hello[-1500:]
            assert "CN = root CA 1" in hello.split("Acceptable client certificate CA names")[1]
            assert "Cipher is ECDHE-ECDSA-" in hello
            for group in ("X448", "P-521"):
                refused = s_client(target, "-tls1_3", "-groups", group)
                assert "Cipher is (NONE)" in refused, (target, group, refused[-800:])
            accepted = s_client(target, "-tls1_3", "-groups", "X25519")
            assert "Cipher is TLS_" in accepted
        # The twin: Python's defaults send no CA names and take X448.
        assert "No client certificate CA names sent" in s_client(weak, "-tls1_2")
        assert "Server Temp Key: X448" in s_client(weak, "-tls1_3", "-groups", "X448")

    run_in_servers(shop_spec_path, check)


def test_the_scanner_refuses_non_loopback_targets(tmp_path: Path) -> None:
    if not SSLYZE_PYTHON.exists():
        pytest.fail(f"{SSLYZE_PYTHON} is missing: run `make setup`")
    ca_file = tmp_path / "bundle.pem"
    ca_file.write_text("")
    done = subprocess.run(
        [str(SSLYZE_PYTHON), str(SCANNER), str(ca_file), "192.0.2.1:443"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "loopback addresses only" in done.stderr


def test_no_version_banner(shop_spec_path: Path) -> None:
    def check(fabric: TrustFabric, gateway: Gateway, weak: str) -> None:
        for url in (f"{fabric.url}/jwks.json", f"{gateway.url}/orders/1"):
            server = _server_header(url, fabric)
            assert server == "trustproof", (url, server)
        assert "aiohttp" in _server_header(f"https://{weak}/", fabric)  # the twin

    run_in_servers(shop_spec_path, check)


def _server_header(url: str, fabric: TrustFabric) -> str:
    """The Server header of a GET to `url`, with the admin's certificate (no token: the gateway
    refuses, and says so with its own header)."""
    context = client_context(fabric.ca.bundle_pem(), fabric.admin)

    async def get() -> str:
        async with aiohttp.ClientSession() as session, session.get(url, ssl=context) as response:
            return response.headers.get("Server", "")

    return asyncio.run(get())
