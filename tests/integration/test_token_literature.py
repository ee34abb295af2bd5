"""The JWT attack literature's token probes against real servers: the shop's gateways refuse
every one (at the token stage; the oversized head at their HTTP parser), the attacker's key
server answers on loopback, and copies of the PyJWT example with one classic mistake each are
caught by exactly the probes for that mistake.

The PyJWT example passes them all as shipped (`test_nginx_target.py` runs its whole suite); some
of that is its introspection call: validated locally only, with PyJWT's defaults, it is fooled by
the parser differentials (``typ``, ``exp`` as a string, duplicate members, the oversized token).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import aiohttp
import jwt
import pytest

from trustproof.audit.files import records
from trustproof.audit.keys import load_kek
from trustproof.clock import SystemClock
from trustproof.sandbox.attacker import AttackerServer
from trustproof.sandbox.controller import Sandbox
from trustproof.suite.runner import SuiteRun, choose, generate, run_suite

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LITERATURE = (
    "token.alg-none",
    "token.empty-signature",
    "token.psychic-signature",
    "token.embedded-jwk",
    "token.jku",
    "token.x5u",
    "token.kid-injection",
    "token.unknown-crit",
    "token.typ-confusion",
    "token.future-iat",
    "token.exp-string",
    "token.duplicate-claims",
    "token.oversized",
    "token.in-query",
    "token.in-cookie",
    "token.added-claims",
)


def run_on(spec: Path, run_dir: Path, select: tuple[str, ...]) -> SuiteRun:
    async def main() -> SuiteRun:
        async with Sandbox.from_file(spec, run_dir=run_dir) as sandbox:
            return await run_suite(sandbox, choose(generate(sandbox.spec), select))

    return asyncio.run(main())


def fooled(run: SuiteRun) -> list[str]:
    return sorted(
        f"{item.verdict}: {item.case.probe} {item.case.variant}".strip()
        for item in run.results
        if not item.ok
    )


def pyjwt_copy(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    """The PyJWT example copied to `tmp_path`, each `old` replaced by `new` (exactly once)."""
    target = tmp_path / "pyjwt-mtls"
    shutil.copytree(
        EXAMPLES / "pyjwt-mtls", target, ignore=shutil.ignore_patterns("__pycache__", ".trustproof")
    )
    path = target / "inventory.py"
    text = path.read_text()
    for old, new in edits:
        assert text.count(old) == 1, f"{old!r} is not in inventory.py exactly once"
        text = text.replace(old, new)
    path.write_text(text)
    return target / "trustproof.yaml"


def test_the_shop_gateways_refuse_every_token_of_the_literature(tmp_path: Path) -> None:
    run = run_on(EXAMPLES / "shop" / "trustproof.yaml", tmp_path / "run", LITERATURE)
    assert fooled(run) == []
    assert {item.case.probe for item in run.results} == set(LITERATURE)
    for item in run.results:
        if item.case.probe == "token.oversized":  # its HTTP parser: the head is too large
            assert (item.result.outcome, item.result.stage) == ("denied_authz", "http")
        else:
            assert (item.case.probe, item.result.outcome) == (item.case.probe, "denied_authn")
    reasons = {item.case.probe: item.result.reason for item in run.results}
    assert reasons["token.jku"] == reasons["token.embedded-jwk"] == "token-unknown-kid"
    assert reasons["token.in-query"] == reasons["token.in-cookie"] == "token-missing"
    assert reasons["token.duplicate-claims"] == "token-malformed"
    # the tokens sent in query strings and cookies are in no log, audit event or state file
    written = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert written
    assert [p.name for p in written if p.name != "audit.log" and b"eyJ" in p.read_bytes()] == []
    # audit.log is ciphertext (its base64 may spell "eyJ" by chance): its records are checked
    assert b"eyJ" not in json.dumps(records(tmp_path / "run", load_kek().key)).encode()


def test_the_attacker_key_server_serves_its_jwks_and_certificate_on_loopback() -> None:
    async def main() -> tuple[dict[str, object], bytes, list[str]]:
        server = AttackerServer.for_clock(SystemClock())
        origin = await server.start()
        try:
            assert origin.jwks_url.startswith("http://127.0.0.1:")
            assert await server.start() is origin  # once
            async with aiohttp.ClientSession() as session:
                async with session.get(origin.jwks_url) as response:
                    jwks = await response.json()
                async with session.get(origin.x5u_url) as response:
                    pem = await response.read()
                async with session.get(origin.jwks_url.replace("jwks.json", "x")) as response:
                    assert response.status == 404
        finally:
            await server.stop()
        return jwks, pem, server.fetched

    jwks, pem, fetched = asyncio.run(main())
    keys = jwks["keys"]
    assert isinstance(keys, list)
    assert jwt.PyJWK(keys[0]).key_id == keys[0]["kid"]
    assert pem.startswith(b"-----BEGIN CERTIFICATE-----")
    assert fetched == ["/jwks.json", "/cert.pem"]
    assert isinstance(keys[0], dict)
    assert "d" not in keys[0]  # the public key only


LOCAL_ONLY = ("    if not introspect(token):", "    if False:  # no introspection")
TRUSTS_TOKEN_KEYS = (  # the key the token names: its jwk, the JWKS at jku, the cert at x5u
    '        key = KEYS.get(jwt.get_unverified_header(token).get("kid"))',
    "        header = jwt.get_unverified_header(token)\n"
    '        if "jwk" in header:\n'
    '            key = jwt.PyJWK(header["jwk"]).key\n'
    '        elif "jku" in header:\n'
    '            key = jwt.PyJWKClient(header["jku"]).get_signing_key_from_jwt(token).key\n'
    '        elif "x5u" in header:\n'
    '            with urllib.request.urlopen(header["x5u"], timeout=TIMEOUT) as answer:\n'
    "                key = load_pem_x509_certificate(answer.read()).public_key()\n"
    "        else:\n"
    '            key = KEYS.get(header.get("kid"))',
)
CERTS = (
    "import urllib.request\n",
    "import urllib.request\nfrom cryptography.x509 import load_pem_x509_certificate\n",
)
READS_QUERY_AND_COOKIE = (
    '            claims = validate(self.headers.get("Authorization"), self.peer_id, self.peer_x5t)',
    "            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)\n"
    '            cookie = SimpleCookie(self.headers.get("Cookie") or "").get("access_token")\n'
    '            found = query.get("access_token", [])[:1] + ([cookie.value] if cookie else [])\n'
    '            bearer = "".join(f"Bearer {t}" for t in found[:1])\n'
    '            sent = self.headers.get("Authorization") or bearer\n'
    "            claims = validate(sent, self.peer_id, self.peer_x5t)",
)
COOKIES = (
    "import urllib.request\n",
    "import urllib.request\nfrom http.cookies import SimpleCookie\n",
)


def test_a_pyjwt_service_validating_locally_with_keys_the_token_names_is_caught(
    tmp_path: Path,
) -> None:
    spec = pyjwt_copy(tmp_path, CERTS, LOCAL_ONLY, TRUSTS_TOKEN_KEYS)
    run = run_on(spec, tmp_path / "run", ("token.*",))
    assert fooled(run) == [
        "over-permission: token.duplicate-claims aud",
        "over-permission: token.duplicate-claims sub",
        "over-permission: token.embedded-jwk",
        "over-permission: token.exp-string",
        "over-permission: token.jku",  # fetched the attacker's JWKS from the loopback server
        "over-permission: token.oversized",
        "over-permission: token.revoked",  # no introspection: revocations never reach it
        "over-permission: token.typ-confusion JWT",
        "over-permission: token.typ-confusion absent",
        "over-permission: token.x5u",  # fetched the attacker's certificate
    ]


def test_a_pyjwt_service_taking_the_token_from_query_or_cookie_is_caught(tmp_path: Path) -> None:
    spec = pyjwt_copy(tmp_path, COOKIES, READS_QUERY_AND_COOKIE)
    run = run_on(spec, tmp_path / "run", ("token.missing", "token.in-query", "token.in-cookie"))
    assert fooled(run) == ["over-permission: token.in-cookie", "over-permission: token.in-query"]
