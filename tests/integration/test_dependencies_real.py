"""A ``mode: real`` dependency for real, inside network namespaces this test creates.

``tpt-<rand>-stg`` ("staging") holds 192.0.2.20 and 192.0.2.21 (documentation addresses) on one
end of a veth pair and a tiny TLS server on port 8443 of both, with a certificate from a CA the
test makes; ``tpt-<rand>-ctl`` holds the other end (192.0.2.1) and runs the whole sandbox (a
python driver under ``ip netns exec``). Nothing is attached to the host's network namespace, and
this process connects to nothing but its children's pipes.

Shown from inside ctl: the service's call through its egress proxy reaches 192.0.2.20:8443 (TLS
verified against the spec's ``ca:``, the credentials header added); a request naming
192.0.2.21:8443 — absolute form or ``Host`` — is refused by the proxy (403) and the server there
sees nothing; the same endpoint without ``ca:`` (the system's CAs) is refused by the proxy's TLS
check (502); a real dependency whose variable is not set fails the start naming the variable.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from trustproof.audit.keys import load_kek
from trustproof.audit.servicelog import read_service_log

pytestmark = pytest.mark.integration

DECLARED, OTHER = "192.0.2.20", "192.0.2.21"
KEY_VALUE = "k-real-7d1e-value"

STAGING = """
import http.server, json, os, ssl, sys, threading
LOG = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        seen = {"at": self.server.server_address[0], "path": self.path,
                "host": self.headers.get("Host"),
                "key_ok": self.headers.get("X-Api-Key") == os.environ["EXPECTED_KEY"]}
        with open(LOG, "a") as out:
            out.write(json.dumps(seen) + "\\n")
        body = json.dumps(seen).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[2], sys.argv[3])
for address in sys.argv[4:]:
    server = http.server.ThreadingHTTPServer((address, 8443), H)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""

SERVICE = """
import http.server, os, urllib.request, urllib.error
URL = os.environ["TRUSTPROOF_DEPENDENCY_BANK_URL"]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/pay":
            self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
            return
        try:
            with urllib.request.urlopen(URL + "/v1/balance", timeout=5) as answer:
                status, body = answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        payload = (str(status) + " " + body.decode()).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(payload)))
        self.end_headers(); self.wfile.write(payload)
    def log_message(self, *a): pass
ADDRESS = (os.environ["TRUSTPROOF_HOST"], int(os.environ["TRUSTPROOF_PORT"]))
http.server.HTTPServer(ADDRESS, H).serve_forever()
"""

# Runs in the ctl namespace: starts the sandbox, makes the calls, prints what came back.
DRIVER = """
import http.client, json, sys, urllib.request
from pathlib import Path
from trustproof.errors import SandboxError
from trustproof.sandbox.controller import Sandbox

def call(url, path, host=None):
    parts = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(parts[0], int(parts[1]), timeout=10)
    headers = {"Host": host} if host else {}
    conn.request("GET", path, headers=headers)
    answer = conn.getresponse()
    return [answer.status, answer.read().decode()]

out = {}
try:
    with Sandbox.from_file(sys.argv[1], run_dir=Path(sys.argv[2])) as sandbox:
        port = sandbox.spec.services["payer"].port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/pay", timeout=10) as answer:
            out["service"] = answer.read().decode()
        proxies = sandbox.dependencies.proxies
        bank, noca = proxies[("payer", "bank")].url, proxies[("payer", "bank-noca")].url
        out["absolute"] = call(bank, "https://%s:8443/v1/steal" % sys.argv[3])
        out["host"] = call(bank, "/v1/steal", host="%s:8443" % sys.argv[3])
        out["noca"] = call(noca, "/v1/balance")
except SandboxError as exc:
    out["error"] = exc.message
print(json.dumps(out), flush=True)
"""


def why_not() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root (this machine's CI runs as root)"
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is not installed (scripts/bootstrap.sh installs it)"
    return None


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def make_ca_and_leaf(directory: Path) -> None:
    """ca.pem, and leaf.pem/leaf.key for both staging addresses, signed by the CA."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tpt staging test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.IPAddress(IPv4Address(DECLARED)), x509.IPAddress(IPv4Address(OTHER))]
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "staging")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    (directory / "leaf.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


@pytest.fixture
def staging(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(ctl namespace name, the staging server's request log); torn down in `finally`."""
    reason = why_not()
    if reason:
        pytest.skip(reason)
    tag = secrets.token_hex(3)
    ctl, stg = f"tpt-{tag}-ctl", f"tpt-{tag}-stg"
    veth_ctl, veth_stg = f"tpv{tag}c", f"tpv{tag}s"
    server: subprocess.Popen[str] | None = None
    made: list[str] = []
    try:
        for name in (ctl, stg):
            ip("netns", "add", name)
            made.append(name)
        # Created inside ctl, so no end of the pair ever sits in the host's namespace.
        ip("-n", ctl, "link", "add", veth_ctl, "type", "veth", "peer", "name", veth_stg)
        ip("-n", ctl, "link", "set", veth_stg, "netns", stg)
        ip("-n", ctl, "addr", "add", "192.0.2.1/24", "dev", veth_ctl)
        ip("-n", stg, "addr", "add", f"{DECLARED}/24", "dev", veth_stg)
        ip("-n", stg, "addr", "add", f"{OTHER}/24", "dev", veth_stg)
        for name, link in ((ctl, veth_ctl), (stg, veth_stg)):
            ip("-n", name, "link", "set", "lo", "up")
            ip("-n", name, "link", "set", link, "up")
        make_ca_and_leaf(tmp_path)
        (tmp_path / "staging.py").write_text(STAGING)
        log = tmp_path / "staging.jsonl"
        server = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                stg,
                sys.executable,
                str(tmp_path / "staging.py"),
                str(log),
                str(tmp_path / "leaf.pem"),
                str(tmp_path / "leaf.key"),
                DECLARED,
                OTHER,
            ],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "EXPECTED_KEY": KEY_VALUE},
        )
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready"
        yield ctl, log
    finally:
        if server is not None:
            server.kill()
            server.wait(timeout=10)
        for name in made:
            subprocess.run(["ip", "netns", "del", name], check=False, timeout=30)


def write_spec(tmp_path: Path) -> Path:
    (tmp_path / "svc.py").write_text(SERVICE)
    (tmp_path / "app.cedar").write_text("")
    spec = tmp_path / "trustproof.yaml"
    spec.write_text(
        "trust_domain: t.test\n"
        "services:\n"
        "  payer: {command: [python, svc.py], port: 18311, routes: [GET /pay],"
        " calls: [bank, bank-noca]}\n"
        "policies: {files: [app.cedar]}\n"
        "dependencies:\n"
        f"  bank: {{mode: real, host: '{DECLARED}', port: 8443, ca: ca.pem,"
        " credentials: {header: X-Api-Key, env: TPT_BANK_KEY}}\n"
        f"  bank-noca: {{mode: real, host: '{DECLARED}', port: 8443}}\n"
    )
    return spec


def drive(ctl: str, tmp_path: Path, env: dict[str, str]) -> dict[str, object]:
    (tmp_path / "driver.py").write_text(DRIVER)
    done = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            ctl,
            sys.executable,
            str(tmp_path / "driver.py"),
            str(write_spec(tmp_path)),
            str(tmp_path / "run"),
            OTHER,
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_proxy_reaches_the_declared_host_port_and_nothing_else(
    staging: tuple[str, Path], tmp_path: Path
) -> None:
    ctl, log = staging
    out = drive(ctl, tmp_path, {**os.environ, "TPT_BANK_KEY": KEY_VALUE})
    status, _, body = str(out["service"]).partition(" ")
    assert status == "200", out
    seen = json.loads(body)
    assert seen == {
        "at": DECLARED,
        "path": "/v1/balance",
        "host": f"{DECLARED}:8443",
        "key_ok": True,
    }
    for way in ("absolute", "host"):
        code, text = out[way]  # type: ignore[misc]
        assert code == 403, out
        assert json.loads(text)["reason"] == "dependency-other-host"
    code, text = out["noca"]  # type: ignore[misc]
    assert code == 502, out
    assert json.loads(text)["reason"] == "dependency-certificate"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["at"] for r in records] == [DECLARED]  # 192.0.2.21 saw nothing
    logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "run").rglob("*.log"))
    for path in (tmp_path / "run").rglob("*.log.tpa"):  # the services', decrypted
        found = read_service_log(path, load_kek().key)
        assert found.problem is None, found.problem
        logs += found.text
    assert KEY_VALUE not in logs


def test_a_real_dependency_without_its_variable_does_not_start(
    staging: tuple[str, Path], tmp_path: Path
) -> None:
    ctl, log = staging
    env = {k: v for k, v in os.environ.items() if k != "TPT_BANK_KEY"}
    out = drive(ctl, tmp_path, env)
    assert "TPT_BANK_KEY" in str(out["error"])
    assert "is not set" in str(out["error"])
    assert not log.exists()  # nothing was started, nothing was called
