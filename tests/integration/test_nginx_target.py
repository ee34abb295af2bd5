"""Services trustproof did not build, probed directly (``gateway: none``): real nginx terminating
mutual TLS from a rendered template, and a Python service validating its own tokens with PyJWT.

Each passes the generated suite as shipped in ``examples/``; each has a failing twin differing
in one known line (nginx with ``ssl_verify_client optional``; PyJWT with
``options={"verify_aud": False}``) that must give the one verdict naming that line. nginx's own
refusals are pinned kind by kind, including the revoked certificate (``ssl_crl``) and the
foreign trust domain it cannot see (why the example deselects ``tls.wrong-trust-domain``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from pathlib import Path

import pytest

from trustproof.probes.http import exchange
from trustproof.probes.model import Result
from trustproof.sandbox.backend import kill_group
from trustproof.sandbox.controller import Sandbox
from trustproof.sandbox.services import write_crl
from trustproof.sandbox.view import LiveView
from trustproof.suite.runner import SuiteRun, choose, generate, run_suite
from trustproof.tls import client_context
from trustproof.view import ClientCert, HttpRequest

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NGINX_EXAMPLE = EXAMPLES / "nginx-mtls"
PYJWT_EXAMPLE = EXAMPLES / "pyjwt-mtls"
RELOAD_POLLS = 100  # x 50 ms: how long nginx may take to load a new CRL after SIGHUP


@pytest.fixture
def nginx() -> str:
    """The nginx binary. Missing is a skip only where it cannot be installed (not root);
    as root, `make test`'s bootstrap installs it, so missing is a failure."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if found is None:
        if os.geteuid() != 0:
            pytest.skip("nginx is not installed and this is not root: apt-get install -y nginx")
        pytest.fail("nginx is not installed; `make test` (scripts/bootstrap.sh) installs it")
    return found


def run_on(spec: Path, run_dir: Path, select: tuple[str, ...] = ()) -> SuiteRun:
    async def main() -> SuiteRun:
        async with Sandbox.from_file(spec, run_dir=run_dir) as sandbox:
            return await run_suite(sandbox, choose(generate(sandbox.spec), select))

    return asyncio.run(main())


def failures(run: SuiteRun) -> list[str]:
    return [
        f"{item.verdict}: {item.case.id} -> {item.result.outcome} {item.result.reason}"
        for item in run.results
        if not item.ok
    ]


def copy_example(source: Path, tmp_path: Path, file: str, old: str, new: str) -> Path:
    """The example copied to `tmp_path`, with `old` replaced by `new` in `file` (exactly once)."""
    target = tmp_path / source.name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", ".trustproof"))
    path = target / file
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not in {path} exactly once"
    path.write_text(text.replace(old, new))
    return target / "trustproof.yaml"


# -- nginx ----------------------------------------------------------------------------------------


def test_the_nginx_example_passes_every_case(nginx: str, tmp_path: Path) -> None:
    run = run_on(NGINX_EXAMPLE / "trustproof.yaml", tmp_path / "run")
    assert failures(run) == []
    assert {item.case.kind for item in run.results} == {"self"}
    probes = {item.case.probe for item in run.results}
    assert {
        "authz.inside-matrix",
        "authz.outside-matrix",
        "authz.method-swap",
        "authz.path-traversal",
        "tls.no-client-cert",
        "tls.untrusted-ca",
        "tls.plaintext",
    } <= probes
    # token: optional (nginx cannot validate a JWT), and no gateway to bypass
    assert not any(p.startswith(("token.", "bypass.")) for p in probes)


# probe -> (outcome, reason, HTTP status) as nginx 1.22 answers with `ssl_verify_client on`
NGINX_REFUSALS = {
    "tls.no-client-cert": ("denied_tls", "client-cert-required", 400),
    "tls.untrusted-ca": ("denied_tls", "client-cert-refused", 400),
    "tls.expired-cert": ("denied_tls", "client-cert-refused", 400),
    "tls.not-yet-valid-cert": ("denied_tls", "client-cert-refused", 400),
    "tls.self-signed": ("denied_tls", "client-cert-refused", 400),
    "tls.legacy-version": ("denied_tls", "handshake-failed", None),  # alert protocol_version
    "tls.plaintext": ("denied_tls", "plaintext-to-tls-port", 400),
    "tls.revoked-cert": ("denied_tls", "client-cert-refused", 400),
    "tls.wrong-eku": ("denied_tls", "client-cert-refused", 400),
    "tls.weak-key": ("denied_tls", "client-cert-refused", 400),
    "tls.sha1-signature": ("denied_tls", "client-cert-refused", 400),
    "tls.weak-ciphers": ("denied_tls", "handshake-failed", None),  # Mozilla's suites only
    "tls.advertised-cas": ("denied_tls", "only-sandbox-cas", None),  # no HTTP: a scan
    "authz.outside-matrix": ("denied_authz", "HTTP 403", 403),
}


def test_each_nginx_refusal_is_classified(nginx: str, tmp_path: Path) -> None:
    async def main() -> tuple[SuiteRun, Result, Result, Result]:
        spec = NGINX_EXAMPLE / "trustproof.yaml"
        async with Sandbox.from_file(spec, run_dir=tmp_path / "run") as sandbox:
            run = await run_suite(sandbox, choose(generate(sandbox.spec), ("tls.*", "authz.out*")))
            async with LiveView.open(sandbox) as view:

                async def hello(cert: ClientCert) -> Result:
                    request = HttpRequest("edge", "GET", "/hello", cert=cert, fresh=True)
                    return await exchange(view, request, f"as {cert}")

                wrong_domain = await hello(ClientCert("admin", "wrong-trust-domain"))
                # Revoked: on the CRL nginx reads (ssl_crl), once reloaded.
                view.broken_cert("revoked", "admin")
                assert sandbox.fabric is not None
                write_crl(sandbox.fabric.ca, sandbox.rotators["edge"].directory)
                assert kill_group(sandbox.handles["edge"].pid, signal.SIGHUP)
                for _ in range(RELOAD_POLLS):
                    after = await hello(ClientCert("admin", "revoked"))
                    if after.outcome != "allowed":
                        break
                    await asyncio.sleep(0.05)
                still = await hello(ClientCert("admin"))
        return run, wrong_domain, after, still

    run, wrong_domain, revoked, still_valid = asyncio.run(main())
    seen = {
        item.case.probe: (item.result.outcome, item.result.reason, item.result.evidence.status)
        for item in run.results
    }
    assert seen == NGINX_REFUSALS
    assert (revoked.outcome, revoked.reason, revoked.evidence.status) == (
        "denied_tls",
        "client-cert-refused",
        400,
    )
    assert still_valid.outcome == "allowed"  # the new CRL refuses that one certificate only
    # nginx checks the chain, not the SPIFFE ID: spiffe://evil.test/admin signed by the sandbox
    # CA gets in. This is why the example deselects tls.wrong-trust-domain, and says why.
    assert (wrong_domain.outcome, wrong_domain.evidence.served_by) == ("allowed", "edge")


def test_nginx_reloads_its_rotated_certificate_on_sighup(nginx: str, tmp_path: Path) -> None:
    """`reload: sighup`: the sandbox rewrites the files (and the CRLs), then signals nginx."""

    async def served_certificate(sandbox: Sandbox) -> bytes:
        assert sandbox.fabric is not None
        tls = client_context(sandbox.fabric.ca.bundle_pem(), sandbox.cert("admin"))
        service = sandbox.spec.services["edge"]
        _, writer = await asyncio.open_connection(service.host, service.port, ssl=tls)
        try:
            der: bytes = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        finally:
            writer.close()
        return der

    async def main() -> tuple[bytes, bytes, bytes]:
        spec = NGINX_EXAMPLE / "trustproof.yaml"
        async with Sandbox.from_file(spec, run_dir=tmp_path / "run") as sandbox:
            before = await served_certificate(sandbox)
            rotated = sandbox.rotators["edge"].rotate().der
            for _ in range(RELOAD_POLLS):
                after = await served_certificate(sandbox)
                if after != before:
                    break
                await asyncio.sleep(0.05)
        return before, rotated, after

    before, rotated, after = asyncio.run(main())
    assert before != rotated
    assert after == rotated


def test_nginx_with_client_certificates_optional_is_caught(nginx: str, tmp_path: Path) -> None:
    spec = copy_example(
        NGINX_EXAMPLE,
        tmp_path,
        "nginx.conf.j2",
        "ssl_verify_client on;",
        "ssl_verify_client optional;",
    )
    run = run_on(spec, tmp_path / "run", select=("tls.*",))
    assert failures(run) == [
        "over-permission: tls.no-client-cert | edge | admin | GET /hello -> allowed "
        "served by edge (HTTP 200)"
    ]


# -- a Python service validating its own tokens with PyJWT -----------------------------------------


def test_the_pyjwt_service_passes_every_case(tmp_path: Path) -> None:
    run = run_on(PYJWT_EXAMPLE / "trustproof.yaml", tmp_path / "run")
    assert failures(run) == []
    probes = {item.case.probe for item in run.results}
    assert {
        "token.missing",
        "token.wrong-audience",
        "token.alg-none",
        "token.revoked",
        "token.cnf-mismatch",
        "token.subject-mismatch",
        "token.forged-headers",
        "tls.wrong-trust-domain",
        "authz.outside-matrix",
    } <= probes
    assert "bypass.direct-port" not in probes
    wrong_audience = next(i for i in run.results if i.case.probe == "token.wrong-audience")
    assert (wrong_audience.result.outcome, wrong_audience.result.reason) == (
        "denied_authn",
        "InvalidAudienceError",
    )


def test_a_pyjwt_service_that_skips_the_audience_check_is_caught(tmp_path: Path) -> None:
    spec = copy_example(
        PYJWT_EXAMPLE,
        tmp_path,
        "inventory.py",
        "            audience=AUDIENCE,\n            issuer=ISSUER,\n"
        '            options={"require":',
        '            issuer=ISSUER,\n            options={"verify_aud": False, "require":',
    )
    run = run_on(spec, tmp_path / "run", select=("token.*",))
    assert failures(run) == [
        "over-permission: token.wrong-audience | inventory | alice | GET /items -> allowed "
        "served by inventory (HTTP 200)"
    ]
