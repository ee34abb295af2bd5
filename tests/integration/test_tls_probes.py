"""The TLS probes of issue 12 against real servers: ones that are not fooled (the shop's gateways,
the nginx example) and ones that are — ``openssl s_server`` configured the lax way a hand-rolled
TLS terminator often is (any purpose, security level 0, TLS 1.0 allowed, no CRL check, one more
CA in its trust file), and nginx with its ``ssl_crl`` and ``ssl_ciphers`` lines removed.

Also `trustproof cert revoke` in a detached sandbox: a certificate handed out by `trustproof cert`
is served by nginx, then refused once revoked by serial (CRL rewritten, nginx told).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import ssl
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization

from trustproof.cli import cli
from trustproof.clock import SystemClock
from trustproof.errors import UsageError
from trustproof.identity import CertificateAuthority
from trustproof.identity.material import common_name, make_ca_certificate, new_ec_key
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.revocation import Revocation, revoke_by_name, revoke_in_sandbox
from trustproof.sandbox.tlsscan import advertised_cas
from trustproof.suite.runner import SuiteRun, choose, generate, run_suite
from trustproof.view import AdvertisedCas

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples" / "shop" / "trustproof.yaml"
NGINX_EXAMPLE = ROOT / "examples" / "nginx-mtls"
NEW = (
    "tls.revoked-cert",
    "tls.wrong-eku",
    "tls.ca-as-client",
    "tls.weak-key",
    "tls.sha1-signature",
    "tls.no-uri-san",
    "tls.weak-ciphers",
    "tls.advertised-cas",
    "tls.foreign-ca",
    "tls.legacy-version",
)
RELOAD_POLLS = 100  # x 50 ms: how long nginx may take to load a new CRL after SIGHUP


def run_on(spec: Path, run_dir: Path, select: tuple[str, ...] = NEW) -> SuiteRun:
    async def main() -> SuiteRun:
        async with Sandbox.from_file(spec, run_dir=run_dir) as sandbox:
            return await run_suite(sandbox, choose(generate(sandbox.spec), select))

    return asyncio.run(main())


def verdicts(run: SuiteRun) -> dict[str, str]:
    return {item.case.id: item.verdict for item in run.results}


def failures(run: SuiteRun) -> list[str]:
    return [
        f"{item.verdict}: {item.case.id} -> {item.result.outcome} {item.result.reason}"
        for item in run.results
        if not item.ok
    ]


def write_ca(directory: Path, name: str, *, with_key: bool) -> None:
    key = new_ec_key()
    now = datetime.now(UTC)
    cert = make_ca_certificate(
        common_name(name, organization="Production"),
        key,
        not_before=now - timedelta(hours=1),
        not_after=now + timedelta(days=1),
        path_length=0,
    )
    (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if with_key:
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        (directory / f"{name}.key").write_bytes(pem)


# openssl s_server trusting the sandbox bundle *and* the production CA, checking no purpose, at
# security level 0, TLS 1.0 and up, no CRL: fooled by every new probe, yet it still refuses a
# certificate from an unknown CA (-verify_return_error), so only the seeded defects get in.
LAX_SPEC = """
version: 1
trust_domain: lax.test
personas:
  alice: {{}}
services:
  lax:
    command: [sh, -c, 'cat "$TRUSTPROOF_BUNDLE_FILE" prod-ca.pem > lax-cas.pem && exec openssl
      s_server -quiet -www -accept "$TRUSTPROOF_HOST:$TRUSTPROOF_PORT"
      -cert "$TRUSTPROOF_CERT_FILE" -key "$TRUSTPROOF_KEY_FILE" -CAfile lax-cas.pem
      -Verify 2 -verify_return_error -purpose any -auth_level 0 -cipher "ALL:@SECLEVEL=0"
      -min_protocol TLSv1']
    port: {port}
    ingress: {{gateway: none, client_cert: required, token: optional}}
    health: {{kind: tcp}}
    routes: [GET /]
access:
  services:
    lax:
      alice: [GET /]
tls:
  foreign_cas:
    - {{cert: prod-ca.pem, key: prod-ca.key}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        pytest.fail("the openssl command is not installed (Debian package openssl)")
    return found


def test_a_lax_openssl_server_is_caught_by_every_new_tls_probe(
    openssl: str, tmp_path: Path
) -> None:
    write_ca(tmp_path, "prod-ca", with_key=True)
    spec = tmp_path / "trustproof.yaml"
    spec.write_text(LAX_SPEC.format(port=free_port()))
    run = run_on(spec, tmp_path / "run", select=(*NEW, "tls.untrusted-ca"))
    found = verdicts(run)
    case = "| lax | alice | GET /"
    variants = ("tls.legacy-version", "tls.foreign-ca", "tls.advertised-cas")
    assert found == {
        **{f"{probe} {case}": "over-permission" for probe in NEW if probe not in variants},
        f"tls.legacy-version {case} | tls1.0": "over-permission",
        f"tls.legacy-version {case} | tls1.1": "over-permission",
        f"tls.foreign-ca {case} | prod-ca.pem": "over-permission",
        "tls.advertised-cas | lax | - | GET /": "over-permission",
        f"tls.untrusted-ca {case}": "pass",  # it does verify chains: only the seeded defects
    }
    reasons = {item.case.probe: item.result for item in run.results}
    advertised = reasons["tls.advertised-cas"]
    assert advertised.reason == "trusts-foreign-ca"
    assert "foreign CA prod-ca.pem" in advertised.evidence.detail


def test_the_shop_gateways_refuse_every_new_tls_probe(tmp_path: Path) -> None:
    run = run_on(SHOP, tmp_path / "run")
    assert failures(run) == []
    probes = {item.case.probe for item in run.results}
    assert probes == set(NEW) - {"tls.foreign-ca"}  # the shop declares no foreign CA
    reasons = {(i.case.probe, i.result.reason) for i in run.results if i.case.boundary == "orders"}
    assert ("tls.ca-as-client", "client-cert-ca-certificate") in reasons
    assert ("tls.revoked-cert", "client-cert-revoked") in reasons
    assert ("tls.advertised-cas", "only-sandbox-cas") in reasons


@pytest.fixture
def nginx() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if found is None:
        pytest.fail("nginx is not installed; `make test` (scripts/bootstrap.sh) installs it")
    return found


def test_the_nginx_example_refuses_the_new_tls_probes(nginx: str, tmp_path: Path) -> None:
    run = run_on(NGINX_EXAMPLE / "trustproof.yaml", tmp_path / "run")
    assert failures(run) == []
    assert {item.case.probe for item in run.results} == set(NEW) - {
        "tls.foreign-ca",  # none declared
        "tls.no-uri-san",  # deselected by the example: nginx names callers by CN
        "tls.ca-as-client",  # deselected: OpenSSL's client purpose check accepts it
    }


def test_nginx_without_crl_and_default_ciphers_is_caught(nginx: str, tmp_path: Path) -> None:
    target = tmp_path / "nginx-mtls"
    shutil.copytree(NGINX_EXAMPLE, target, ignore=shutil.ignore_patterns(".trustproof"))
    conf = target / "nginx.conf.j2"
    lines = conf.read_text().splitlines(keepends=True)
    kept = [line for line in lines if not line.lstrip().startswith(("ssl_crl ", "ssl_ciphers "))]
    assert len(lines) - len(kept) == 2
    conf.write_text("".join(kept))
    run = run_on(target / "trustproof.yaml", tmp_path / "run")
    assert sorted(failures(run)) == [
        "over-permission: tls.revoked-cert | edge | admin | GET /hello -> allowed "
        "served by edge (HTTP 200)",
        "over-permission: tls.weak-ciphers | edge | admin | GET /hello -> allowed "
        "served by edge (HTTP 200)",
    ]


def trustproof(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trustproof", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def in_process(*args: str, run: Path) -> Result:
    """A `trustproof` command run in this process (`up --detach` and `down` are subprocesses:
    a fresh interpreter per command costs seconds here)."""
    return CliRunner().invoke(cli, [*args, "--run-dir", str(run / "run")])


def hello_status(port: int, certs: Path) -> int | str:
    """GET /hello on nginx with the certificate in `certs`: the status, or the TLS error."""
    context = ssl.create_default_context(cafile=str(certs / "bundle.pem"))
    context.check_hostname = False
    context.load_cert_chain(certs / "cert.pem", certs / "key.pem")
    import http.client  # noqa: PLC0415

    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        connection.request("GET", "/hello")
        return connection.getresponse().status
    except (ssl.SSLError, OSError) as exc:
        return type(exc).__name__
    finally:
        connection.close()


def test_cert_revoke_by_serial_reaches_nginx_in_a_detached_sandbox(
    nginx: str, tmp_path: Path
) -> None:
    # a copy on a free port: the example's fixed one may be taken by a parallel run
    target, port = tmp_path / "nginx-mtls", free_port()
    shutil.copytree(NGINX_EXAMPLE, target, ignore=shutil.ignore_patterns(".trustproof"))
    spec = target / "trustproof.yaml"
    spec.write_text(spec.read_text().replace("port: 18443", f"port: {port}"))
    up = trustproof("up", str(spec), "--detach", "--run-dir", "run", cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    try:
        issued = in_process("cert", "admin", "--out", str(tmp_path / "certs"), run=tmp_path)
        assert issued.exit_code == 0, issued.output
        serial = issued.output.split("(serial ", 1)[1].split(",", 1)[0]
        certs = tmp_path / "certs"
        assert hello_status(port, certs) == 200
        revoked = in_process("cert", "revoke", "--serial", serial, run=tmp_path)
        assert revoked.exit_code == 0, revoked.output
        assert f"revoked serial {serial}" in revoked.output
        assert "told to reload: edge" in revoked.output
        status: int | str = 200
        for _ in range(RELOAD_POLLS):
            status = hello_status(port, certs)
            if status != 200:
                break
            time.sleep(0.05)
        assert status == 400  # nginx's "The SSL certificate error" page
    finally:
        trustproof("down", "--run-dir", "run", cwd=tmp_path)


def test_revoking_a_workload_by_name_renews_it_and_an_unknown_serial_is_refused(
    nginx: str, tmp_path: Path
) -> None:
    async def main() -> tuple[Revocation, bool, int, str]:
        spec = NGINX_EXAMPLE / "trustproof.yaml"
        async with Sandbox.from_file(spec, run_dir=tmp_path / "run") as sandbox:
            assert sandbox.fabric is not None
            before = sandbox.rotators["edge"].current
            done = revoke_by_name(sandbox, "edge")
            revoked = sandbox.fabric.ca.is_revoked(before.serial)
            now = sandbox.rotators["edge"].current.serial
            with pytest.raises(UsageError) as unknown:
                revoke_in_sandbox(sandbox, 0xABC123)
        return done, revoked, now, str(unknown.value)

    done, revoked, now, unknown = asyncio.run(main())
    assert revoked
    assert done.reloaded == ("edge",)
    assert done.renewed == "edge"
    assert done.serials != (f"{now:x}",)  # a fresh SVID replaced the revoked one
    assert "did not issue it" in unknown


SSLYZE_PYTHON = ROOT / ".venv-sslyze" / "bin" / "python"
NASSL_READER = Path(__file__).with_name("nassl_client_cas.py")


def test_the_advertised_names_read_agree_with_nassl(openssl: str, tmp_path: Path) -> None:
    """`tlsscan.advertised_cas` and nassl (sslyze's OpenSSL) read the same CertificateRequest of
    an `openssl s_server` trusting two CAs."""
    if not SSLYZE_PYTHON.exists():
        pytest.fail(f"{SSLYZE_PYTHON} is missing: run `make setup` (scripts/bootstrap.sh)")
    write_ca(tmp_path, "prod-ca", with_key=True)
    write_ca(tmp_path, "staging-ca", with_key=False)
    cas = tmp_path / "cas.pem"
    cas.write_bytes(
        (tmp_path / "prod-ca.pem").read_bytes() + (tmp_path / "staging-ca.pem").read_bytes()
    )
    svid = CertificateAuthority("scan.test", SystemClock()).issue("server", timedelta(hours=1))
    (tmp_path / "server.pem").write_bytes(svid.cert_chain_pem())
    (tmp_path / "server.key").write_bytes(svid.key_pem())
    port = free_port()
    server = subprocess.Popen(
        [openssl, "s_server", "-quiet", "-www", "-accept", f"127.0.0.1:{port}",
         "-cert", str(tmp_path / "server.pem"), "-key", str(tmp_path / "server.key"),
         "-CAfile", str(cas), "-verify", "1", "-naccept", "3"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(RELOAD_POLLS):  # until it listens
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        ours = asyncio.run(advertised_cas("127.0.0.1", port))
        theirs = subprocess.run(
            [str(SSLYZE_PYTHON), str(NASSL_READER), f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert theirs.returncode == 0, theirs.stderr[-2000:]
    assert isinstance(ours, AdvertisedCas), ours
    assert ours.names == ("CN=prod-ca,O=Production", "CN=staging-ca,O=Production")
    nassl_names = json.loads(theirs.stdout)
    assert len(nassl_names) == len(ours.names) == 2
    # nassl prints OpenSSL's one-line form (/O=.../CN=...), in no guaranteed order
    assert sorted(nassl_names) == ["/O=Production/CN=prod-ca", "/O=Production/CN=staging-ca"]
