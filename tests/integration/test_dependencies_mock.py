"""A mocked external dependency for real: a service's call through its egress proxy reaches the
mock (the proxy adds the credentials), a call without them is refused (401), a request naming
another host is refused by the proxy, and `egress.dependency-direct` tells a mock that checks the
credentials (pass) from one that does not (over-permission)."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from trustproof.probes.model import judge
from trustproof.probes.registry import generate, probe_for
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.view import LiveView

pytestmark = pytest.mark.integration

# The service: GET /charge posts to its dependency through its proxy and relays the answer.
SERVICE = """
import http.server, os, urllib.request, urllib.error
URL = os.environ["TRUSTPROOF_DEPENDENCY_PSP_URL"]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/charge":  # the health check
            self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
            return
        request = urllib.request.Request(URL + "/v1/charges", data=b"{}", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                status, body = answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        self.send_response(200)
        payload = (str(status) + " " + body.decode()).encode()
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
    def log_message(self, *a): pass
ADDRESS = (os.environ["TRUSTPROOF_HOST"], int(os.environ["TRUSTPROOF_PORT"]))
http.server.HTTPServer(ADDRESS, H).serve_forever()
"""

# A team's own mock that answers everyone: the credentials protect nothing.
OPEN_MOCK = """
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        self.send_response(201); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"ok")
    do_GET = do_POST = answer
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["TRUSTPROOF_PORT"])), H).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_spec(tmp_path: Path, *, mock: str) -> Path:
    (tmp_path / "svc.py").write_text(SERVICE)
    (tmp_path / "open_mock.py").write_text(OPEN_MOCK)
    (tmp_path / "app.cedar").write_text("")
    spec = tmp_path / "trustproof.yaml"
    spec.write_text(
        "trust_domain: t.test\n"
        "services:\n"
        f"  shop: {{command: [python, svc.py], port: {free_port()}, routes: [GET /charge],"
        " calls: [psp]}\n"
        "policies: {files: [app.cedar]}\n"
        "dependencies:\n"
        "  psp:\n"
        "    mode: mock\n"
        "    host: api.psp.example\n"
        "    port: 443\n"
        "    credentials: {header: X-Api-Key, env: TPT_PSP_KEY}\n"
        f"    mock: {mock}\n"
    )
    return spec


TABLE = (
    '{responses: [{method: POST, path: /v1/charges, status: 201, body: \'{"id": "ch_1"}\','
    " headers: {Content-Type: application/json}}]}"
)


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(  # noqa: S310 (loopback http only)
        url, headers=headers or {}, method="POST", data=b"{}"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_the_service_reaches_the_mock_only_through_its_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TPT_PSP_KEY", "k-3e1b0c9d-secret-value")
    spec = write_spec(tmp_path, mock=TABLE)
    with Sandbox.from_file(spec, run_dir=tmp_path / "run") as sandbox:
        service = sandbox.spec.services["shop"]
        with urllib.request.urlopen(
            f"http://127.0.0.1:{service.port}/charge", timeout=10
        ) as answer:
            relayed = answer.read().decode()
        assert relayed == '201 {"id": "ch_1"}'  # the service's own call, through its proxy
        deps = sandbox.dependencies
        mock_url = deps.mocks["psp"].url
        assert fetch(mock_url + "/v1/charges")[0] == 401  # no credentials
        status, body = fetch(mock_url + "/v1/charges", {"X-Api-Key": "guess"})
        assert status == 401
        assert json.loads(body)["error"] == "credentials-wrong"
        proxy = deps.proxies[("shop", "psp")]
        # The proxy refuses a request naming another host, and sends nothing on.
        status, body = fetch(proxy.url + "/v1/charges", {"Host": "evil.example"})
        assert status == 403
        assert json.loads(body)["reason"] == "dependency-other-host"
        # A value the service sends in the credentials header itself is replaced by the proxy's.
        assert fetch(proxy.url + "/v1/charges", {"X-Api-Key": "service-own"})[0] == 201
        checks = [(r.method, r.path, r.credentials, r.status) for r in deps.records("psp")]
        assert checks == [
            ("POST", "/v1/charges", "ok", 201),
            ("POST", "/v1/charges", "missing", 401),
            ("POST", "/v1/charges", "wrong", 401),
            ("POST", "/v1/charges", "ok", 201),
        ]
        endpoint = sandbox.endpoints["shop"]
        assert endpoint.dependencies == {"psp": proxy.url}
        assert sandbox.state()["endpoints"]["psp"]["dependencies"] == {"shop": proxy.url}
        logs = "".join(p.read_text() for p in (tmp_path / "run").rglob("*.log"))
        logs += "".join(  # the services' and the mock's, decrypted
            sandbox.service_log(p).text for p in (tmp_path / "run" / "logs").glob("*.log.tpa")
        )
        assert (tmp_path / "run" / "logs" / "shop.log.tpa").is_file()  # decrypted above
        assert "k-3e1b0c9d-secret-value" not in logs + repr(deps.proxies) + repr(deps.mocks)


def run_probe(spec: Path, run_dir: Path) -> tuple[str, str]:
    async def go() -> tuple[str, str]:
        async with Sandbox.from_file(spec, run_dir=run_dir) as sandbox:
            cases = generate(sandbox.spec, ["egress.dependency-direct"])
            assert [case.id for case in cases] == [
                "egress.dependency-direct | shop | shop | call psp | psp"
            ]
            async with LiveView.open(sandbox) as view:
                result = await probe_for(cases[0]).run(cases[0], view)
        return judge(cases[0], result), result.evidence.detail

    return asyncio.run(go())


def test_the_probe_passes_a_mock_checking_credentials(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, mock=TABLE)
    verdict, detail = run_probe(spec, tmp_path / "run")
    assert verdict == "pass", detail
    assert "direct: HTTP 401" in detail


def test_the_probe_catches_a_mock_answering_without_credentials(tmp_path: Path) -> None:
    port = free_port()
    spec = write_spec(tmp_path, mock=f"{{command: [python, open_mock.py], port: {port}}}")
    verdict, detail = run_probe(spec, tmp_path / "run")
    assert verdict == "over-permission", detail
    assert "direct: HTTP 201" in detail
