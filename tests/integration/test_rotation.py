"""A sandbox outlives its certificates: every identity it issues rotates at half-life.

With a 6-second certificate lifetime the sandbox stays up for four lifetimes while, every
half-second, the test makes a service-to-service call (through the caller's egress proxy, which
needs fresh tokens from the token service, to the callee's gateway and service), a direct call to
a gateway with a fresh certificate and token, an admin call to the token service with the admin
identity as a user reads it from ``<run>/admin``, and a PostgreSQL connection with the workload's
rotated files (``verify-full``): none may fail. Its twin stops the renewal of the token service's
and the admin's certificates and watches those calls fail once the certificates expire.

Everything runs on loopback; every loop is bounded in count and in time.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psycopg
import pytest
from cryptography import x509

from trustproof.sandbox.controller import Sandbox
from trustproof.tls import client_context
from trustproof.tokenservice.core import ADMIN_NAME, TOKEN_SERVICE_NAME

pytestmark = pytest.mark.integration

TTL_SECONDS = 6
LIFETIMES = 4
PAUSE = 0.5

SERVICE = (
    "import http.server, os\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = os.environ['TRUSTPROOF_SERVICE'].encode()\n"
    "        self.send_response(200); self.send_header('Content-Length', str(len(body)))\n"
    "        self.end_headers(); self.wfile.write(body)\n"
    "    def log_message(self, *a): pass\n"
    "http.server.ThreadingHTTPServer((os.environ['TRUSTPROOF_HOST'],"
    " int(os.environ['TRUSTPROOF_PORT'])), H).serve_forever()\n"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_spec(tmp_path: Path) -> Path:
    (tmp_path / "svc.py").write_text(SERVICE)
    (tmp_path / "app.cedar").write_text(
        '@id("w")\npermit (principal == Workload::"worker", action == Action::"GET", '
        'resource == Route::"api /");\n'
    )
    (tmp_path / "schema.sql").write_text("CREATE TABLE items (id integer PRIMARY KEY);\n")
    spec = tmp_path / "trustproof.yaml"
    spec.write_text(
        "trust_domain: t.test\n"
        f"ttl: {{certificate: {TTL_SECONDS}s, token: 4s}}\n"
        "services:\n"
        f"  api: {{command: [python, svc.py], port: {free_port()}, routes: [GET /]}}\n"
        f"  worker: {{command: [python, svc.py], port: {free_port()}, routes: [GET /],"
        " calls: [api]}\n"
        "datastores:\n"
        "  db: {schema: schema.sql, roles: {worker: {items: [select]}}}\n"
        "policies: {files: [app.cedar]}\n"
        "access:\n"
        "  services: {api: {worker: [GET /]}}\n"
        "  datastores: {db: {worker: {items: [select]}}}\n"
    )
    return spec


@dataclass
class Record:
    """What each kind of call saw: failures (never secrets) and the certificates presented."""

    ok: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    serials: dict[str, set[int]] = field(default_factory=dict)

    async def attempt(self, what: str, call: Callable[[], Awaitable[None]]) -> None:
        try:
            await call()
        except Exception as exc:  # the failure is the finding
            self.failures.append(f"{what}: {type(exc).__name__}: {exc}")
        else:
            self.ok[what] = self.ok.get(what, 0) + 1

    def saw(self, who: str, serial: int) -> None:
        self.serials.setdefault(who, set()).add(serial)


async def served_serial(url: str, bundle: bytes) -> int:
    """The serial of the certificate the TLS server at `url` presents on a new handshake."""
    host, port = url.removeprefix("https://").split("/")[0].rsplit(":", 1)
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(host, int(port), ssl=client_context(bundle)), 5
    )
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    return x509.load_der_x509_certificate(der).serial_number


class Calls:
    """The four calls, each on a fresh connection (so each sees the certificate served now)."""

    def __init__(self, sandbox: Sandbox, record: Record) -> None:
        self.sandbox = sandbox
        self.record = record
        assert sandbox.fabric is not None
        self.bundle = sandbox.fabric.ca.bundle_pem()

    async def _get(
        self, url: str, context: ssl.SSLContext | None, **kwargs: object
    ) -> tuple[int, str]:
        connector = aiohttp.TCPConnector(force_close=True)
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
            session.request(
                str(kwargs.pop("method", "GET")), url, ssl=context or False, **kwargs
            ) as response,
        ):
            return response.status, await response.text()

    async def egress(self) -> None:
        url = self.sandbox.endpoints["worker"].egress["api"]
        status, body = await self._get(url + "/", None)
        if (status, body) != (200, "api"):
            raise AssertionError(f"HTTP {status}: {body[:200]}")

    async def gateway(self) -> None:
        svid = self.sandbox.cert("worker")
        token = self.sandbox.token("worker", "api", cnf_x5t_s256=svid.x5t_s256)
        status, body = await self._get(
            self.sandbox.endpoints["api"].url + "/",
            client_context(self.bundle, svid),
            headers={"Authorization": f"Bearer {token}"},
        )
        if (status, body) != (200, "api"):
            raise AssertionError(f"HTTP {status}: {body[:200]}")

    async def admin(self) -> None:
        """What a user does with the files in <run>/admin: mint a token at the admin API."""
        admin = self.sandbox.run.path / "admin"
        context = ssl.create_default_context(cafile=admin / "bundle.pem")
        context.check_hostname = False
        context.load_cert_chain(admin / "cert.pem", admin / "key.pem")
        assert self.sandbox.fabric is not None
        status, body = await self._get(
            f"{self.sandbox.fabric.url}/admin/tokens",
            context,
            method="POST",
            json={"subject": "worker", "audience": "api"},
        )
        if status != 200 or "access_token" not in body:
            raise AssertionError(f"HTTP {status}: {body[:200]}")

    async def datastore(self) -> None:
        files = self.sandbox.rotators["worker"].files
        server = self.sandbox.datastores.servers["db"]
        dsn = server.connection_settings(
            "worker", cert=files.cert, key=files.key, bundle=files.bundle
        )

        def query() -> None:
            with psycopg.connect(dsn, connect_timeout=5) as conn:
                conn.execute("SELECT count(*) FROM items").fetchone()

        await asyncio.to_thread(query)
        svid = server.server_svid
        if svid is not None:
            self.record.saw("db", svid.serial)

    async def served(self) -> None:
        """Which certificates the token service and api's gateway present right now."""
        assert self.sandbox.fabric is not None
        for who, url in (
            (TOKEN_SERVICE_NAME, self.sandbox.fabric.url),
            ("api-gateway", self.sandbox.endpoints["api"].url),
        ):
            self.record.saw(who, await served_serial(url, self.bundle))

    async def all(self) -> None:
        for what, call in (
            ("egress", self.egress),
            ("gateway", self.gateway),
            ("admin", self.admin),
            ("datastore", self.datastore),
            ("served", self.served),
        ):
            await self.record.attempt(what, call)


def test_a_sandbox_outlives_several_certificate_lifetimes(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    record = Record()
    rotated: dict[str, set[int]] = {}
    admin_serials: set[int] = set()

    async def scenario() -> None:
        async with Sandbox.from_file(spec, run_dir=tmp_path / "run") as sandbox:
            calls = Calls(sandbox, record)
            rotated.update({name: {r.current.serial} for name, r in sandbox.rotators.items()})
            assert sandbox.fabric is not None
            fabric_rotators = sandbox.fabric.rotators
            admin_serials.add(fabric_rotators[ADMIN_NAME].current.serial)
            started = time.monotonic()
            for _ in range(int(LIFETIMES * TTL_SECONDS / PAUSE)):  # bounded in count...
                if time.monotonic() - started > LIFETIMES * TTL_SECONDS:  # ...and in time
                    break
                await calls.all()
                for name, rotator in sandbox.rotators.items():
                    rotated[name].add(rotator.current.serial)
                admin_serials.add(fabric_rotators[ADMIN_NAME].current.serial)
                await asyncio.sleep(PAUSE)
            assert time.monotonic() - started >= (LIFETIMES - 0.5) * TTL_SECONDS

    asyncio.run(scenario())
    assert record.failures == []
    assert set(record.ok) == {"egress", "gateway", "admin", "datastore", "served"}
    # Every identity was renewed several times: what the servers presented on the wire (token
    # service, api's gateway), the PostgreSQL server certificate, the workloads' and the admin's.
    for who in (TOKEN_SERVICE_NAME, "api-gateway", "db"):
        assert len(record.serials[who]) >= LIFETIMES, (who, record.serials[who])
    for name, serials in [*rotated.items(), (ADMIN_NAME, admin_serials)]:
        assert len(serials) >= LIFETIMES, (name, serials)


@pytest.mark.parametrize("frozen", [TOKEN_SERVICE_NAME, ADMIN_NAME])
def test_without_renewal_calls_fail_once_the_certificate_expires(
    tmp_path: Path, frozen: str
) -> None:
    """The twin: one of the fabric's identities is no longer renewed (as before the fix). Once
    its certificate expires, the token service's clients fail: the egress proxy has no token to
    send (503 token-unavailable), or the admin identity on disk is refused by the token service.
    """
    spec = write_spec(tmp_path)
    outcome: dict[str, str] = {}

    async def scenario() -> None:
        async with Sandbox.from_file(spec, run_dir=tmp_path / "run") as sandbox:
            assert sandbox.fabric is not None
            stale = sandbox.fabric.rotators.pop(frozen).current
            expires = stale.not_after.timestamp()
            calls = Calls(sandbox, Record())
            await calls.egress()  # all is well while the certificates are valid
            await calls.admin()
            deadline = time.monotonic() + 3 * TTL_SECONDS
            while time.monotonic() < deadline and "failed" not in outcome:  # bounded in time
                url = sandbox.endpoints["worker"].egress["api"]
                status, body = await calls._get(url + "/", None)
                if status != 200:
                    outcome["failed"] = f"egress: {status} {json.loads(body).get('reason')}"
                elif frozen == ADMIN_NAME:  # the token service itself is still renewed
                    try:
                        await calls.admin()
                    except aiohttp.ClientError as exc:
                        outcome["failed"] = f"admin: {type(exc).__name__}"
                        on_disk = (sandbox.run.path / "admin" / "cert.pem").read_bytes()
                        outcome["on_disk"] = str(
                            x509.load_pem_x509_certificate(on_disk).serial_number
                        )
                outcome["after_expiry"] = str(time.time() >= expires)
                outcome["stale"] = str(stale.serial)
                await asyncio.sleep(PAUSE)

    asyncio.run(scenario())
    assert outcome["after_expiry"] == "True"  # never while the certificate was valid
    if frozen == TOKEN_SERVICE_NAME:
        # The egress proxy needs a token bound to its renewed certificate and cannot get one.
        assert outcome["failed"] == "egress: 503 token-unavailable"
    else:
        # The token service (still serving: the egress call just before got its token) refuses
        # the admin identity on disk in the handshake: that certificate was never renewed and the
        # call failed only after its notAfter.
        assert outcome["failed"] in ("admin: ClientConnectorError", "admin: ClientOSError")
        assert outcome["on_disk"] == outcome["stale"]
