"""Malformed requests carrying a bearer token and a private key, sent to a detached sandbox's
gateway over TLS on loopback: afterwards no file anywhere in the run directory holds the token or
the key, every log file is 0600 in the 0700 run directory, and the audit log holds one event per
request (stage http, reason malformed-request for those the HTTP parser refused)."""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from trustproof.audit.files import records
from trustproof.audit.keys import load_kek

pytestmark = pytest.mark.integration

SERVICE = (
    "import http.server, os\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200); self.send_header('Content-Length', '2')\n"
    "        self.end_headers(); self.wfile.write(b'ok')\n"
    "http.server.HTTPServer((os.environ['TRUSTPROOF_HOST'], int(os.environ['TRUSTPROOF_PORT'])),"
    " H).serve_forever()\n"
)
IO_TIMEOUT = 5.0  # seconds for any one socket operation
MAX_RESPONSE = 1 << 20  # bytes read back per request at most


def audit_records(run: Path) -> list[dict[str, Any]]:
    """The run's audit log, verified and decrypted with the session's KEK (tests/conftest.py)."""
    kek = load_kek(env=os.environ)
    return records(run, kek.key)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_spec(tmp_path: Path) -> Path:
    (tmp_path / "svc.py").write_text(SERVICE)
    (tmp_path / "app.cedar").write_text(
        '@id("a")\npermit (principal == Persona::"alice", action == Action::"GET", '
        'resource == Route::"api /");\n'
    )
    spec = tmp_path / "trustproof.yaml"
    spec.write_text(
        "trust_domain: t.test\n"
        "personas: {alice: {roles: [user]}}\n"
        "services:\n"
        f"  api: {{command: [python, svc.py], port: {free_port()}, routes: [GET /]}}\n"
        "policies: {files: [app.cedar]}\n"
        "access: {services: {api: {alice: [GET /]}}}\n"
    )
    return spec


def trustproof(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trustproof", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def private_key_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def malformed_requests(token: str, key_pem: bytes) -> dict[str, bytes]:
    """Each case carries the token and the key; each is refused by the HTTP/1.1 parser."""
    auth = f"Authorization: Bearer {token}".encode()
    key_crlf = key_pem.replace(b"\n", b"\r\n")
    key_one_line = key_pem.replace(b"\n", b" ")
    return {
        "bare-lf": b"GET / HTTP/1.1\nHost: api\n" + auth + b"\nX-Key: " + key_pem + b"\n\n",
        "bad-request-line": b"GET / HTTP/1.1 extra\r\n" + auth + b"\r\nX-Key: " + key_crlf,
        "bad-version": b"GET / HTTP/7.3\r\n" + auth + b"\r\nX-Key: " + key_one_line + b"\r\n\r\n",
        "oversized-header": b"GET / HTTP/1.1\r\nHost: api\r\n"
        + auth
        + b"\r\nX-Key: "
        + key_one_line
        + b"\r\nX-Big: "
        + b"A" * 20_000
        + b"\r\n\r\n",
        "header-too-long-with-token": b"GET / HTTP/1.1\r\nX-Pad: "
        + b"B" * 9000
        + auth
        + key_one_line
        + b"\r\n\r\n",
        "garbage": b"\x00\xff\xfe\x16 " + auth + b" " + key_pem + b"\r\n\r\n",
        "bad-header-name": b"GET / HTTP/1.1\r\nBad Header: x\r\n" + auth + b"\r\n\r\n" + key_pem,
        "http-0.9": b"GET /?" + auth.replace(b" ", b"%20") + b"\r\n" + key_pem,
    }


def exchange(host: str, port: int, context: ssl.SSLContext, payload: bytes) -> bytes:
    """Send `payload` on a fresh TLS connection; everything answered until close (bounded)."""
    with socket.create_connection((host, port), timeout=IO_TIMEOUT) as raw:
        raw.settimeout(IO_TIMEOUT)
        with context.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(payload)
            answer = b""
            deadline = time.monotonic() + IO_TIMEOUT
            while len(answer) < MAX_RESPONSE and time.monotonic() < deadline:
                try:
                    chunk = tls.recv(65536)
                except (TimeoutError, ssl.SSLError, ConnectionError):
                    break
                if not chunk:
                    break
                answer += chunk
            return answer


@dataclass(frozen=True)
class Finding:
    path: Path
    what: str


def secret_fragments(token: str, key_pem: bytes) -> dict[str, bytes]:
    """What must never be found: the token, its payload and signature, each line of the key's
    body (its header segment is the same in every token and says nothing)."""
    _header, payload, signature = token.split(".")
    fragments = {"token": token.encode(), "token payload": payload.encode()}
    fragments["token signature"] = signature.encode()
    body = [line for line in key_pem.splitlines() if line and not line.startswith(b"-----")]
    for index, line in enumerate(body):
        fragments[f"key line {index + 1}"] = line[:48]
    return fragments


def scan_run_dir(run: Path, fragments: dict[str, bytes]) -> list[Finding]:
    """Every regular file under `run`, recursively: each fragment found (also in its JSON-escaped
    form), each file that is not 0600, each directory that is not 0700."""
    findings = []
    for path in [run, *sorted(run.rglob("*"))]:
        mode = path.lstat().st_mode
        if stat.S_ISDIR(mode):
            if stat.S_IMODE(mode) != 0o700:
                findings.append(Finding(path, f"directory mode {stat.S_IMODE(mode):o}"))
            continue
        if not stat.S_ISREG(mode):
            continue
        if stat.S_IMODE(mode) != 0o600:
            findings.append(Finding(path, f"file mode {stat.S_IMODE(mode):o}"))
        data = path.read_bytes()
        for name, fragment in fragments.items():
            escaped = fragment.replace(b"/", b"\\/")
            if fragment in data or escaped in data:
                findings.append(Finding(path, name))
    return findings


def test_malformed_requests_leave_no_token_or_key_anywhere_in_the_run(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    run = tmp_path / "run"
    up = trustproof("up", str(spec), "--detach", "--run-dir", "run", cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    try:
        state = json.loads(trustproof("status", "--json", "--run-dir", "run", cwd=tmp_path).stdout)
        minted = trustproof("token", "alice", "--aud", "api", "--run-dir", "run", cwd=tmp_path)
        assert minted.returncode == 0, minted.stderr
        token = minted.stdout.strip()
        assert token.count(".") == 2
        key_pem = private_key_pem()
        host, port = state["endpoints"]["api"]["url"].removeprefix("https://").rsplit(":", 1)
        context = ssl.create_default_context(cafile=state["ca_bundle"])
        context.check_hostname = False  # the gateway's SVID names a SPIFFE ID, not a host name
        cases = malformed_requests(token, key_pem)
        fragments = secret_fragments(token, key_pem)
        answers = {name: exchange(host, int(port), context, data) for name, data in cases.items()}
        # The token service (aiohttp's own protocol, hosted by the controller) gets them too.
        fabric_host, fabric_port = state["endpoints"]["token-service"]["url"].rsplit(":", 1)
        for data in cases.values():
            exchange(fabric_host.removeprefix("https://"), int(fabric_port), context, data)
    finally:
        down = trustproof("down", "--run-dir", "run", cwd=tmp_path)
    assert down.returncode == 0, down.stderr

    for name, answer in answers.items():
        assert re.match(rb"HTTP/1\.[01] 4\d\d ", answer), (name, answer[:200])
        for what, fragment in fragments.items():
            assert fragment not in answer, f"the answer to {name} echoes the {what}"

    assert scan_run_dir(run, fragments) == []
    # the services' logs are encrypted at rest: their decrypted text holds no fragment either
    service_logs = trustproof("audit", "logs", str(run), cwd=tmp_path)
    assert service_logs.returncode == 0, service_logs.stderr
    assert "api" in service_logs.stdout
    leaked = [what for what, f in fragments.items() if f.decode() in service_logs.stdout]
    assert leaked == []

    decisions = [r for r in audit_records(run) if r["kind"] == "decision"]
    assert len(decisions) == len(cases)  # one event per request, whoever refused it
    refused_by_parser = [d for d in decisions if d["stage"] == "http"]
    assert all(d["reason"] == "malformed-request" for d in refused_by_parser)
    assert all(
        (d["method"], d["path"], d["allowed"]) == ("-", "-", False) for d in refused_by_parser
    )
    parsed = [name for name, answer in answers.items() if b'"stage": "http"' not in answer]
    assert len(refused_by_parser) == len(cases) - len(parsed)
    assert set(parsed) <= {"http-0.9"}  # accepted by the parser: the pipeline refused it

    controller_log = (run / "logs" / "controller.log").read_text()
    assert "malformed requests refused by the HTTP parser" in controller_log  # the gateway
    # The token service's parser errors: one line each, without the request's bytes.
    assert "Traceback" not in controller_log
    assert "token service: malformed HTTP request refused" in controller_log
    assert len(controller_log) < 8192  # not one traceback per request


def test_the_scanner_finds_a_planted_token_and_a_world_readable_log(tmp_path: Path) -> None:
    """The failing twin: the scan above would see a leak and a loose mode if there were one."""
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True, mode=0o700)
    run.chmod(0o700)
    token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MX0.c2lnbmF0dXJlLWJ5dGVz"
    key_pem = private_key_pem()
    fragments = secret_fragments(token, key_pem)
    clean = run / "logs" / "clean.log"
    clean.write_text("nothing to see\n")
    clean.chmod(0o600)
    assert scan_run_dir(run, fragments) == []

    leaky = run / "logs" / "controller.log"
    leaky.write_bytes(b"BadStatusLine: b'GET / HTTP/1.1\\nAuthorization: Bearer " + token.encode())
    leaky.chmod(0o644)
    audit = run / "audit.jsonl"
    audit.write_text(json.dumps({"key": key_pem.decode()}))
    audit.chmod(0o600)
    found = {(f.path.name, f.what) for f in scan_run_dir(run, fragments)}
    assert ("controller.log", "file mode 644") in found
    assert ("controller.log", "token") in found
    assert ("audit.jsonl", "key line 1") in found
    run.chmod(0o710)
    assert Finding(run, "directory mode 710") in scan_run_dir(run, {})


def test_removing_the_audit_log_of_a_running_sandbox_refuses_everything_and_says_so(
    tmp_path: Path,
) -> None:
    spec = write_spec(tmp_path)
    run = tmp_path / "run"
    up = trustproof("up", str(spec), "--detach", "--run-dir", "run", cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    request = b"GET / HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n"
    try:
        state = json.loads(trustproof("status", "--json", "--run-dir", "run", cwd=tmp_path).stdout)
        host, port = state["endpoints"]["api"]["url"].removeprefix("https://").rsplit(":", 1)
        context = ssl.create_default_context(cafile=state["ca_bundle"])
        context.check_hostname = False
        before = exchange(host, int(port), context, request)  # no certificate: a 401, audited
        (run / "audit.log").unlink()
        after = [exchange(host, int(port), context, request) for _ in range(3)]
    finally:
        down = trustproof("down", "--run-dir", "run", cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert before.startswith(b"HTTP/1.1 401 ")  # the twin: with the file in place, answered
    for answer in after:
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert b'"reason": "audit-unavailable"' in answer
    controller_log = (run / "logs" / "controller.log").read_text()
    assert controller_log.count("was removed while the run was writing it") == 1
