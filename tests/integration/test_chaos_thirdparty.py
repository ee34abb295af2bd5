"""``jwks-wrong-keys`` and ``crl-fault`` against real servers trustproof did not write.

* The PyJWT example (its introspection call taken out, so that its own key check alone decides)
  reading a JWKS of wrong keys refuses every token no issuer key signed and comes back after the
  rollback; its twin — which skips the signature check when it finds no key for the token's kid
  — fails, named. With a stale CRL it refuses every handshake; with the CRL file removed its
  reload fails and it keeps the CRL it had. Its twin, loading the CRL only when the file is there
  and not past nextUpdate, lets the revoked certificate in. Every step (the fault, the
  UNEXPECTED findings, the rollback) and the verdict are in the run's audit log.
* nginx (``ssl_crl``) does the same as the PyJWT example on a stale or missing CRL; nginx without
  ``ssl_crl`` accepts the revoked certificate before any fault.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trustproof.chaos.scenario import ScenarioResult
from trustproof.sandbox.controller import Sandbox
from trustproof.spec.chaos import Experiment
from trustproof.spec.values import Name
from trustproof.suite.scenarios import run_experiments

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WRONG = ("chaos.jwks-wrong-keys", Experiment(Name("wrong"), "jwks-wrong-keys"))
CRL = ("chaos.crl-fault", Experiment(Name("crl"), "crl-fault"))


@pytest.fixture(scope="module")
def nginx() -> str:
    """The nginx binary (as in test_nginx_target.py: a skip only where it cannot be installed)."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if found is None:
        if os.geteuid() != 0:
            pytest.skip("nginx is not installed and this is not root: apt-get install -y nginx")
        pytest.fail("nginx is not installed; `make test` (scripts/bootstrap.sh) installs it")
    return found


def replaced(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


SKIP_UNKNOWN_KID = (
    # Keys.get: no key for the kid is no longer a refusal ...
    ('                raise Refused(401, "unknown-kid")', "                return None"),
    # ... and a token without a key is decoded unverified (the bug)
    (
        '            options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},',
        '            options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"],'
        ' "verify_signature": key is not None},',
    ),
)
LAX_CRL = (
    # the CRL is loaded only when the file is there and not past nextUpdate (the bug: otherwise
    # no CRL is checked at all)
    ("    if CRL:\n", "    if CRL and crl_usable(CRL):\n"),
    (
        "def client_context() -> ssl.SSLContext:",
        "def crl_usable(path: str) -> bool:\n"
        "    import datetime\n"
        "    from cryptography import x509\n"
        "    try:\n"
        "        with open(path, 'rb') as file:\n"
        "            crl = x509.load_pem_x509_crl(file.read())\n"
        "    except (OSError, ValueError):\n"
        "        return False\n"
        "    ends = crl.next_update_utc\n"
        "    return ends is None or ends > datetime.datetime.now(datetime.UTC)\n\n\n"
        "def client_context() -> ssl.SSLContext:",
    ),
)


def copy_pyjwt(tmp_path: Path, *, flawed: bool) -> Path:
    """The PyJWT example without its introspection call (and spec saying so); `flawed`: the
    twin skipping the signature check for an unknown kid and loading the CRL only when usable."""
    target = tmp_path / "pyjwt-mtls"
    shutil.copytree(
        EXAMPLES / "pyjwt-mtls", target, ignore=shutil.ignore_patterns("__pycache__", ".trustproof")
    )
    service, spec = target / "inventory.py", target / "trustproof.yaml"
    replaced(service, "    if not introspect(token):\n", "    if False:  # no introspection\n")
    replaced(spec, "revocation: introspection", "revocation: none")
    for old, new in (*SKIP_UNKNOWN_KID, *LAX_CRL) if flawed else ():
        replaced(service, old, new)
    return spec


def copy_nginx(tmp_path: Path, *, crl: bool) -> Path:
    target = tmp_path / "nginx-mtls"
    shutil.copytree(EXAMPLES / "nginx-mtls", target, ignore=shutil.ignore_patterns(".trustproof"))
    if not crl:
        replaced(target / "nginx.conf.j2", "        ssl_crl {{ crl_file }};\n", "")
    return target / "trustproof.yaml"


def experiments_on(
    spec: Path, run_dir: Path, chosen: list[tuple[str, Experiment]]
) -> dict[str, ScenarioResult]:
    async def main() -> list[ScenarioResult]:
        async with Sandbox.from_file(spec, run_dir=run_dir) as sandbox:
            return await asyncio.wait_for(run_experiments(sandbox, chosen), 120)

    return {result.id: result for result in asyncio.run(main())}


def timeline(result: ScenarioResult) -> str:
    return "\n".join(text for _, text in result.timeline)


def test_the_pyjwt_service_stays_closed_on_wrong_keys_and_crl_faults(tmp_path: Path) -> None:
    results = experiments_on(copy_pyjwt(tmp_path, flawed=False), tmp_path / "run", [WRONG, CRL])
    wrong, crl = results["chaos.jwks-wrong-keys"], results["chaos.crl-fault"]
    assert wrong.verdict == "pass", wrong.summary
    assert wrong.summary.startswith(
        "wrong: the token service published keys it does not hold; 1 service(s) refused every "
        "token no issuer key signed; refused the issuer's valid tokens (fail closed): inventory"
    )
    text = timeline(wrong)
    # the right kid under another public key: the signature does not verify
    assert "inventory, the issuer's valid token: HTTP 401" in text
    assert "InvalidSignatureError" in text
    assert wrong.figures["accepted_again_ms.inventory"] >= 0
    assert crl.verdict == "pass", crl.summary
    assert crl.summary.startswith(
        "crl: 1 service(s) kept the revoked certificate refused; inventory kept its last CRL "
        "when the file went missing; inventory refused every certificate on the stale CRL (fail "
        "closed)"
    )


def test_its_twin_skipping_verification_for_an_unknown_kid_and_a_bad_crl_fails(
    tmp_path: Path,
) -> None:
    results = experiments_on(copy_pyjwt(tmp_path, flawed=True), tmp_path / "run", [WRONG, CRL])
    wrong, crl = results["chaos.jwks-wrong-keys"], results["chaos.crl-fault"]
    assert wrong.verdict == "fail"
    assert wrong.summary == (
        "wrong: inventory accepted a token with a kid the JWKS lacks (signed by a key nobody "
        "published) while its JWKS held wrong keys: it fails open; inventory accepted a token "
        "with a kid the JWKS lacks, the signer's key in a jwk header while its JWKS held wrong "
        "keys: it fails open"
    )
    assert crl.verdict == "fail"
    stale = (
        "inventory accepted a revoked certificate with its CRL stale: revocation no longer checked"
    )
    missing = (
        "inventory accepted a revoked certificate with its CRL missing: revocation no longer "
        "checked; "
    )
    assert crl.summary == f"crl: {missing}{stale}", crl.summary
    # every step is in the run's audit log, readable with `trustproof audit show`
    shown = subprocess.run(
        [sys.executable, "-m", "trustproof", "audit", "show", str(tmp_path / "run"), "--kind",
         "chaos", "--case", "chaos.jwks-wrong-keys", "--json"],
        capture_output=True, text=True, check=False, env={**os.environ},
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    records = [json.loads(line) for line in shown.stdout.splitlines()]
    steps = [r["step"] for r in records if "step" in r]
    assert steps == [text for _, text in wrong.timeline]
    assert any(s.startswith("FAULT: the token service publishes 3 keys") for s in steps)
    assert any(s.startswith("ROLLBACK: the token service publishes its own keys") for s in steps)
    assert any(s.startswith("UNEXPECTED: inventory accepted a token") for s in steps)
    assert records[-1]["verdict"] == "fail"
    assert records[-1]["summary"] == wrong.summary


def test_nginx_refuses_on_a_stale_crl_and_keeps_its_last_when_it_is_missing(
    nginx: str, tmp_path: Path
) -> None:
    results = experiments_on(copy_nginx(tmp_path, crl=True), tmp_path / "run", [CRL])
    crl = results["chaos.crl-fault"]
    assert crl.verdict == "pass", crl.summary
    assert crl.summary.startswith(
        "crl: 1 service(s) kept the revoked certificate refused; edge kept its last CRL when the "
        "file went missing; edge refused every certificate on the stale CRL (fail closed)"
    )
    assert crl.figures["stale_refused_after_ms.edge"] >= 0


def test_nginx_without_ssl_crl_fails_the_crl_fault(nginx: str, tmp_path: Path) -> None:
    results = experiments_on(copy_nginx(tmp_path, crl=False), tmp_path / "run", [CRL])
    crl = results["chaos.crl-fault"]
    assert crl.verdict == "fail"
    assert crl.summary == (
        "crl: edge accepted a revoked certificate before the fault: it does not check the CRL"
    )
