"""The bundled shop's services (examples/shop/services) as real child processes on loopback.

Each service is started the way the sandbox starts it (cwd = the spec's directory, configured only
by TRUSTPROOF_* variables) and spoken to in plain HTTP, as its gateway does. Most services here run
without ``TRUSTPROOF_GATEWAY_PROOF_KEY_FILE`` (so they believe the identity headers as they are);
``guarded`` runs storefront with a key, and this module signs as its gateway would. No PostgreSQL
here: database routes are pointed at a closed loopback port and must fail closed (503, explained).
The egress proxies are stood in for by small aiohttp servers in this process.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiohttp import web

from trustproof.gateway.proof import PROOF_HEADER, sign_proof

pytestmark = pytest.mark.integration

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"
SERVICES = SHOP / "services"
TIMEOUT = 5.0
ALICE = {"X-Trustproof-Principal": "alice", "X-Trustproof-Request-Id": "req-alice"}
PROOF_KEY = bytes(range(32))
FORGED = {  # everything a gateway would add, except the proof
    "X-Trustproof-Principal": "alice",
    "X-Trustproof-Principal-Kind": "persona",
    "X-Trustproof-Roles": "customer",
    "X-Trustproof-Request-Id": "req-forged",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def base_env(name: str, port: int) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "TRUSTPROOF_SERVICE": name,
        "TRUSTPROOF_SPIFFE_ID": f"spiffe://shop.test/{name}",
        "TRUSTPROOF_HOST": "127.0.0.1",
        "TRUSTPROOF_PORT": str(port),
    }


def unreachable_dsn() -> str:
    return f"host=127.0.0.1 port={free_port()} dbname=shop user=orders sslmode=verify-full"


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: Any


def call(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        payload = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=payload, headers=headers or {})
        response = conn.getresponse()
        return Answer(response.status, response.headers, json.loads(response.read()))
    finally:
        conn.close()


@dataclass
class Service:
    name: str
    port: int
    process: subprocess.Popen[str]

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Answer:
        return call(self.port, method, path, body, headers)


@contextmanager
def running(name: str, **extra: str) -> Iterator[Service]:
    """Start ``services/<name>.py`` and wait until /healthz answers; always kill it afterwards."""
    port = free_port()
    env = {**base_env(name, port), **extra}
    process = subprocess.Popen(
        [sys.executable, f"services/{name}.py"],
        cwd=SHOP,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"{name} exited with {process.returncode}: {process.communicate()[1]}")
            try:
                if call(port, "GET", "/healthz").status == 200:
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{name} did not become healthy within {TIMEOUT} s")
                time.sleep(0.01)
        yield Service(name, port, process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=TIMEOUT)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


@dataclass
class FakeEgress:
    """Stands in for the egress proxies: one aiohttp server per callee on loopback, answering
    scripted (status, JSON) per (callee, method, path) and recording what it received."""

    answers: dict[tuple[str, str, str], tuple[int, Any]] = field(default_factory=dict)
    seen: list[dict[str, Any]] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    runners: list[web.AppRunner] = field(default_factory=list)
    thread: threading.Thread | None = None

    def start(self, *callees: str) -> None:
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        for callee in callees:
            asyncio.run_coroutine_threadsafe(self._serve(callee), self.loop).result(TIMEOUT)

    def stop(self) -> None:
        for runner in self.runners:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), self.loop).result(TIMEOUT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self.thread is not None:
            self.thread.join(TIMEOUT)
        self.loop.close()

    def reset(self) -> None:
        self.answers.clear()
        self.seen.clear()

    async def _serve(self, callee: str) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", partial(self._handle, callee))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock).start()
        self.runners.append(runner)
        self.urls[callee] = f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def _handle(self, callee: str, request: web.Request) -> web.Response:
        raw = await request.read()
        self.seen.append(
            {
                "callee": callee,
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "json": json.loads(raw) if raw else None,
            }
        )
        status, body = self.answers.get(
            (callee, request.method, request.path), (404, {"error": "not scripted"})
        )
        return web.json_response(body, status=status)


@pytest.fixture(scope="module")
def fake_egress() -> Iterator[FakeEgress]:
    fake = FakeEgress()
    fake.start("orders", "payments")
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def egress(fake_egress: FakeEgress) -> FakeEgress:
    fake_egress.reset()
    return fake_egress


@pytest.fixture(scope="module")
def storefront(fake_egress: FakeEgress) -> Iterator[Service]:
    with running(
        "storefront",
        TRUSTPROOF_DB_SHOPDB_DSN=unreachable_dsn(),
        TRUSTPROOF_EGRESS_ORDERS=fake_egress.urls["orders"],
        TRUSTPROOF_EGRESS_PAYMENTS=fake_egress.urls["payments"],
    ) as service:
        yield service


@pytest.fixture(scope="module")
def orders() -> Iterator[Service]:
    with running("orders", TRUSTPROOF_DB_SHOPDB_DSN=unreachable_dsn()) as service:
        yield service


@pytest.fixture(scope="module")
def payments() -> Iterator[Service]:
    with running("payments", TRUSTPROOF_DB_SHOPDB_DSN=unreachable_dsn()) as service:
        yield service


@pytest.fixture(scope="module")
def proof_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("identity") / "gateway-proof.key"
    path.write_bytes(PROOF_KEY)
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def guarded(fake_egress: FakeEgress, proof_key_file: Path) -> Iterator[Service]:
    """storefront as the sandbox runs it: it holds its gateway's proof key."""
    with running(
        "storefront",
        TRUSTPROOF_GATEWAY_PROOF_KEY_FILE=str(proof_key_file),
        TRUSTPROOF_DB_SHOPDB_DSN=unreachable_dsn(),
        TRUSTPROOF_EGRESS_ORDERS=fake_egress.urls["orders"],
        TRUSTPROOF_EGRESS_PAYMENTS=fake_egress.urls["payments"],
    ) as service:
        yield service


def proven(
    method: str,
    target: str,
    headers: dict[str, str],
    *,
    key: bytes = PROOF_KEY,
    age: float = 0.0,
) -> dict[str, str]:
    """`headers` with the proof a gateway holding `key` would add, signed `age` seconds ago."""
    proof = sign_proof(key, method, target, headers.items(), time.time() - age)
    return {**headers, PROOF_HEADER: proof}


def stop_and_read_stderr(service: Service) -> str:
    service.process.send_signal(signal.SIGTERM)
    _, err = service.process.communicate(timeout=TIMEOUT)
    return err


# --- identity and routing -------------------------------------------------------------------


def test_health_check_answers_with_the_service_identity(storefront: Service) -> None:
    answer = storefront.call("GET", "/healthz")
    assert answer.status == 200
    assert answer.body["ok"] is True
    assert answer.body["spiffe_id"] == "spiffe://shop.test/storefront"
    assert answer.headers["X-Served-By"] == "storefront"
    assert answer.headers["X-Trustproof-Handler"] == "GET /healthz"


def test_the_handler_echoes_the_verified_caller_and_request_id(storefront: Service) -> None:
    identity = {"X-Trustproof-Principal": "ci", "X-Trustproof-Request-Id": "req-1"}
    answer = storefront.call("GET", "/admin/version", headers=identity)
    assert answer.status == 200
    assert answer.headers["X-Served-By"] == "storefront"
    assert answer.headers["X-Trustproof-Handler"] == "GET /admin/version"
    assert answer.body == {
        "served_by": "storefront",
        "route": "GET /admin/version",
        "caller": "ci",
        "request_id": "req-1",
        "version": "shop-1.0",
    }


def test_without_identity_headers_the_caller_is_null(storefront: Service) -> None:
    answer = storefront.call("GET", "/admin/version")
    assert answer.body["caller"] is None
    assert answer.body["request_id"] is None


@pytest.mark.parametrize("name", ["storefront", "orders", "payments"])
def test_unknown_routes_are_json_404s_from_the_named_service(
    name: str, request: pytest.FixtureRequest
) -> None:
    service: Service = request.getfixturevalue(name)
    answer = service.call("GET", "/no/such/route", headers=ALICE)
    assert answer.status == 404
    assert answer.headers["X-Served-By"] == name
    assert answer.headers["X-Trustproof-Handler"] == "none"
    assert answer.body["served_by"] == name
    assert answer.body["caller"] == "alice"
    assert "GET /no/such/route" in answer.body["error"]


def test_a_declared_path_with_another_method_is_405_with_allow(orders: Service) -> None:
    answer = orders.call("PUT", "/orders")
    assert answer.status == 405
    assert answer.headers["Allow"] == "GET, POST"
    assert answer.headers["X-Served-By"] == "orders"


def test_refunds_are_refused_even_if_a_gateway_let_the_call_through(payments: Service) -> None:
    answer = payments.call("POST", "/refunds", {"payment_id": 1})
    assert answer.status == 409
    assert answer.body["error"] == "refunds are not supported"
    assert answer.headers["X-Trustproof-Handler"] == "POST /refunds"


# --- only requests from the gateway are served (TRUSTPROOF_GATEWAY_PROOF_KEY_FILE) ------------


def test_a_request_with_a_valid_proof_is_served(guarded: Service) -> None:
    identity = {"X-Trustproof-Principal": "ci", "X-Trustproof-Request-Id": "req-1"}
    answer = guarded.call(
        "GET", "/admin/version", headers=proven("GET", "/admin/version", identity)
    )
    assert answer.status == 200, answer.body
    assert answer.headers["X-Trustproof-Handler"] == "GET /admin/version"
    assert (answer.body["caller"], answer.body["request_id"]) == ("ci", "req-1")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/admin/version", None),
        ("GET", "/products", None),  # would touch the database (503 here) if the handler ran
        ("POST", "/checkout", {"items": [{"product_id": 1, "quantity": 1}]}),  # would call orders
        ("GET", "/no/such/route", None),  # not even routing is revealed
    ],
)
def test_a_forged_identity_without_proof_is_refused_by_the_service(
    guarded: Service, egress: FakeEgress, method: str, path: str, body: Any
) -> None:
    answer = guarded.call(method, path, body, headers=FORGED)
    assert answer.status == 401
    assert answer.headers["X-Served-By"] == "storefront"  # the service itself refused
    assert answer.headers["X-Trustproof-Handler"] == "none"  # no handler ran
    assert answer.body == {
        "served_by": "storefront",
        "route": "none",
        "caller": None,  # the forged identity is not believed, not even echoed
        "request_id": None,
        "error": "not from the gateway",
        "reason": "missing",
    }
    assert egress.seen == []


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("valid", None),
        ("other-key", "bad-signature"),
        ("replayed-onto-another-path", "bad-signature"),
        ("replayed-onto-another-principal", "bad-signature"),
        ("stale", "stale"),
        ("malformed", "malformed"),
    ],
)
def test_each_proof_refusal_is_named(guarded: Service, case: str, reason: str | None) -> None:
    identity = {"X-Trustproof-Principal": "ci", "X-Trustproof-Request-Id": "req-2"}
    headers = {
        "valid": lambda: proven("GET", "/admin/version", identity),
        "other-key": lambda: proven("GET", "/admin/version", identity, key=bytes(32)),
        "replayed-onto-another-path": lambda: proven("GET", "/account/orders", identity),
        "replayed-onto-another-principal": lambda: {
            **proven("GET", "/admin/version", identity),
            "X-Trustproof-Principal": "alice",
        },
        "stale": lambda: proven("GET", "/admin/version", identity, age=60),
        "malformed": lambda: {**identity, PROOF_HEADER: "v1;t=now;sig=trust-me"},
    }[case]()
    answer = guarded.call("GET", "/admin/version", headers=headers)
    if reason is None:
        assert answer.status == 200, answer.body
    else:
        assert (answer.status, answer.body["reason"]) == (401, reason)
        assert answer.body["error"] == "not from the gateway"
        assert answer.body["caller"] is None


def test_the_health_check_needs_no_proof(guarded: Service) -> None:
    answer = guarded.call("GET", "/healthz", headers=FORGED)
    assert answer.status == 200
    assert answer.body["ok"] is True


def test_a_proven_request_on_a_kept_alive_connection_does_not_vouch_for_the_next(
    guarded: Service,
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", guarded.port, timeout=TIMEOUT)
    try:
        identity = {"X-Trustproof-Principal": "ci", "X-Trustproof-Request-Id": "req-3"}
        conn.request("GET", "/admin/version", headers=proven("GET", "/admin/version", identity))
        first = conn.getresponse()
        assert (first.status, json.loads(first.read())["caller"]) == (200, "ci")
        conn.request("GET", "/admin/version", headers=FORGED)
        second = conn.getresponse()
        assert (second.status, json.loads(second.read())["reason"]) == (401, "missing")
    finally:
        conn.close()


def test_without_a_key_the_service_warns_once_that_headers_are_unproven() -> None:
    with running("payments") as payments:
        err = stop_and_read_stderr(payments)
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert warnings == [
        "payments: warning: TRUSTPROOF_GATEWAY_PROOF_KEY_FILE is not set, so X-Trustproof-* "
        f"identity headers are trusted without proof: any local process reaching port "
        f"{payments.port} can claim any identity"
    ]


def test_with_a_key_there_is_no_warning(proof_key_file: Path) -> None:
    with running("payments", TRUSTPROOF_GATEWAY_PROOF_KEY_FILE=str(proof_key_file)) as payments:
        err = stop_and_read_stderr(payments)
    assert "warning" not in err


def test_a_short_proof_key_exits_2_naming_the_variable(tmp_path: Path) -> None:
    short = tmp_path / "gateway-proof.key"
    short.write_bytes(b"k" * 16)
    env = {**base_env("storefront", free_port()), "TRUSTPROOF_GATEWAY_PROOF_KEY_FILE": str(short)}
    result = subprocess.run(
        [sys.executable, "services/storefront.py"],
        cwd=SHOP,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == (
        f"storefront.py: TRUSTPROOF_GATEWAY_PROOF_KEY_FILE names {str(short)!r}, which holds "
        "16 bytes; a gateway-proof key has 32\n"
    )


# --- the database fails closed --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "method", "path", "route"),
    [
        ("storefront", "GET", "/products", "GET /products"),
        ("storefront", "GET", "/products/1", "GET /products/{id}"),
        ("orders", "GET", "/orders", "GET /orders"),
        ("orders", "GET", "/orders/1", "GET /orders/{id}"),
        ("orders", "DELETE", "/orders/1", "DELETE /orders/{id}"),
        ("payments", "GET", "/payments/1", "GET /payments/{id}"),
    ],
)
def test_an_unreachable_database_is_a_503_that_explains(
    name: str, method: str, path: str, route: str, request: pytest.FixtureRequest
) -> None:
    service: Service = request.getfixturevalue(name)
    answer = service.call(method, path)
    assert answer.status == 503
    assert answer.headers["X-Trustproof-Handler"] == route
    assert answer.body["error"] == "database unavailable"
    assert answer.body["sqlstate"] is None
    assert "connection" in answer.body["detail"]
    assert "Traceback" not in json.dumps(answer.body)


def test_bad_input_is_refused_before_the_database_is_touched(
    orders: Service, payments: Service
) -> None:
    assert orders.call("POST", "/orders", {"customer": "alice", "items": []}).status == 400
    assert orders.call("GET", "/orders/abc").status == 400
    assert orders.call("GET", "/orders/%C2%B2").status == 400  # '²' is a digit to str.isdigit
    assert payments.call("POST", "/payments", {"order_id": 1, "amount_cents": -1}).status == 400


def test_without_a_dsn_the_route_names_the_missing_variable() -> None:
    with running("storefront") as storefront:
        answer = storefront.call("GET", "/products")
    assert answer.status == 503
    assert "TRUSTPROOF_DB_SHOPDB_DSN is not set" in answer.body["error"]


def test_postgresql_refusals_keep_their_sqlstate() -> None:
    sys.path.insert(0, str(SERVICES))
    try:
        import shopkit  # noqa: PLC0415 (a script directory, not a package)
    finally:
        sys.path.remove(str(SERVICES))
    denied = shopkit.database_error(
        "shopdb", psycopg.errors.InsufficientPrivilege("permission denied for table orders"), "x"
    )
    assert (denied.status, denied.extra["sqlstate"]) == (403, "42501")
    assert denied.extra["detail"] == "permission denied for table orders"
    broken = shopkit.database_error("shopdb", psycopg.errors.UniqueViolation("dup"), "x")
    assert (broken.status, broken.error) == (503, "database error")
    assert broken.extra["sqlstate"] == "23505"


# --- calls through the egress proxies -------------------------------------------------------


def test_checkout_places_the_order_for_the_verified_caller(
    storefront: Service, egress: FakeEgress
) -> None:
    egress.answers[("orders", "POST", "/orders")] = (201, {"id": 7, "amount_cents": 3300})
    egress.answers[("payments", "POST", "/payments")] = (201, {"id": 9, "state": "authorized"})
    egress.answers[("orders", "GET", "/orders/7")] = (200, {"id": 7, "status": "placed"})
    body = {"customer": "mallory", "items": [{"product_id": 1, "quantity": 2}]}
    answer = storefront.call("POST", "/checkout", body, headers=ALICE)
    assert answer.status == 201, answer.body
    assert answer.headers["X-Trustproof-Handler"] == "POST /checkout"
    assert (answer.body["order_id"], answer.body["payment_id"]) == (7, 9)
    assert answer.body["caller"] == "alice"
    placed, paid, confirmed = egress.seen
    assert placed["json"] == {"customer": "alice", "items": [{"product_id": 1, "quantity": 2}]}
    assert paid["json"] == {"order_id": 7, "amount_cents": 3300}
    assert (confirmed["path"], confirmed["query"]) == ("/orders/7", {"payment": "9"})


def test_checkout_propagates_a_downstream_refusal_as_502(
    storefront: Service, egress: FakeEgress
) -> None:
    refusal = {"error": "access_denied", "reason": "policy-deny", "stage": "policy"}
    egress.answers[("orders", "POST", "/orders")] = (403, refusal)
    body = {"items": [{"product_id": 1, "quantity": 1}]}
    answer = storefront.call("POST", "/checkout", body, headers=ALICE)
    assert answer.status == 502
    assert answer.body["downstream"]["service"] == "orders"
    assert answer.body["downstream"]["status"] == 403
    assert answer.body["downstream"]["reason"] == "policy-deny"
    assert "HTTP 403 policy-deny" in answer.body["error"]
    assert [seen["callee"] for seen in egress.seen] == ["orders"]  # payments never called


def test_a_refused_payment_reports_the_order_already_placed(
    storefront: Service, egress: FakeEgress
) -> None:
    egress.answers[("orders", "POST", "/orders")] = (201, {"id": 8, "amount_cents": 300})
    egress.answers[("payments", "POST", "/payments")] = (401, {"reason": "token-expired"})
    body = {"items": [{"product_id": 2, "quantity": 1}]}
    answer = storefront.call("POST", "/checkout", body, headers=ALICE)
    assert answer.status == 502
    assert answer.body["order_id"] == 8
    assert answer.body["payment_id"] is None
    assert answer.body["downstream"] == {
        "service": "payments",
        "status": 401,
        "reason": "token-expired",
    }


def test_checkout_needs_a_caller_and_valid_items(storefront: Service, egress: FakeEgress) -> None:
    items = {"items": [{"product_id": 1, "quantity": 1}]}
    assert storefront.call("POST", "/checkout", items).status == 401
    bad = {"items": [{"product_id": 1, "quantity": 0}]}
    assert storefront.call("POST", "/checkout", bad, headers=ALICE).status == 400
    assert egress.seen == []


def test_account_orders_asks_orders_for_the_callers_orders_only(
    storefront: Service, egress: FakeEgress
) -> None:
    egress.answers[("orders", "GET", "/orders")] = (200, {"orders": [{"id": 1}]})
    answer = storefront.call("GET", "/account/orders?customer=bob", headers=ALICE)
    assert answer.status == 200
    assert answer.body["orders"] == [{"id": 1}]
    assert egress.seen[0]["query"] == {"customer": "alice"}


def test_an_unreachable_egress_proxy_is_a_502_not_a_success() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    with running("storefront", TRUSTPROOF_EGRESS_ORDERS=closed) as storefront:
        answer = storefront.call("GET", "/account/orders", headers=ALICE)
    assert answer.status == 502
    unreachable = {"service": "orders", "status": None, "reason": "unreachable"}
    assert answer.body["downstream"] == unreachable


# --- process lifecycle ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"TRUSTPROOF_PORT": None}, "TRUSTPROOF_PORT"),
        ({"TRUSTPROOF_SERVICE": None}, "TRUSTPROOF_SERVICE"),
        ({"TRUSTPROOF_PORT": "http"}, "TRUSTPROOF_PORT"),
        ({"TRUSTPROOF_HOST": "0.0.0.0"}, "TRUSTPROOF_HOST"),  # noqa: S104 (refused: not loopback)
        ({"TRUSTPROOF_EGRESS_ORDERS": "orders:443"}, "TRUSTPROOF_EGRESS_ORDERS"),
        (
            {"TRUSTPROOF_GATEWAY_PROOF_KEY_FILE": "/nonexistent/gateway-proof.key"},
            "TRUSTPROOF_GATEWAY_PROOF_KEY_FILE",
        ),
    ],
)
def test_a_broken_environment_exits_2_naming_the_variable(
    change: dict[str, str | None], named: str
) -> None:
    env = base_env("storefront", free_port())
    for key, value in change.items():
        if value is None:
            del env[key]
        else:
            env[key] = value
    result = subprocess.run(
        [sys.executable, "services/storefront.py"],
        cwd=SHOP,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"storefront.py: {named} ")


def test_sigterm_stops_within_a_second_and_the_log_holds_no_secret() -> None:
    with running("payments") as payments:
        idle = http.client.HTTPConnection("127.0.0.1", payments.port, timeout=TIMEOUT)
        idle.request("GET", "/healthz")  # a keep-alive connection left open must not hold it
        idle.getresponse().read()
        secret = {"Authorization": "Bearer sekrit-token", "X-Trustproof-Principal": "orders"}
        payments.call("POST", "/refunds", headers=secret)
        start = time.monotonic()
        payments.process.send_signal(signal.SIGTERM)
        payments.process.wait(timeout=TIMEOUT)
        elapsed = time.monotonic() - start
        out, _ = payments.process.communicate(timeout=TIMEOUT)
        idle.close()
    assert payments.process.returncode == 0
    assert elapsed < 1.0
    assert "payments POST /refunds 409 caller=orders" in out.splitlines()
    assert "sekrit" not in out
